// GET /metrics: every figure measured (requests by route template, contribution outcomes, ingest bytes,
// aggregation time, storage latency) or read from the database (rounds, DP epsilon, HE key age); one
// registry per app; and the Grafana dashboard in docs/ queries only metrics that are exported.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64 } from '../../core/bytes.ts';
import { api, bootstrap, createFleet, enrollRobot, fakeCiphertexts, makePackage, makeRoundConfig, setupOfficer, type TestRobot, type TestServer } from '../testing/harness.ts';
import { createOpsTestServer, parseExposition, upload } from '../operations/testing.ts';

const DOCS = resolve(import.meta.dirname, '../../docs');

async function scrape(server: TestServer) {
  const res = await server.app.request('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, ...parseExposition(text) };
}

describe('GET /metrics', () => {
  let server: TestServer;
  let other: TestServer;
  let robots: TestRobot[];
  let fleetId: string;
  let orgId: string;
  let packageBytes = 0;

  beforeAll(async () => {
    server = await createOpsTestServer();
    other = await createOpsTestServer();
    const admin = await bootstrap({ server });
    orgId = admin.org.id;
    fleetId = (await createFleet({ server, token: admin.token })).id;
    const officer = await setupOfficer({ server, token: admin.token, orgId });
    robots = [];
    for (let i = 0; i < 3; i++) robots.push(await enrollRobot({ server, token: admin.token, fleetId }));
    const dp = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, delta: 1e-5, epsilonBudget: 100 };
    const made = makeRoundConfig({ officer: officer.officer, orgId, fleetId, keyFingerprint: officer.keyFingerprint, now: server.clock.now, roundId: 'metrics-1', dp });
    const opened = await api({ server, method: 'POST', path: '/v1/rounds', token: admin.token, body: { config: toBase64(made.bytes) } });
    expect(opened.status).toBe(201);
    const fingerprint = Uint8Array.from(Buffer.from(opened.body.configFingerprint, 'hex'));
    for (const robot of robots.slice(0, 2)) {
      const pkg = makePackage({ robot, config: made.config, configFingerprint: fingerprint, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) });
      packageBytes += pkg.bytes.length;
      expect((await upload({ server, robot, roundId: 'metrics-1', body: pkg.bytes })).status).toBe(201);
    }
    const dup = makePackage({ robot: robots[0]!, config: made.config, configFingerprint: fingerprint, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) });
    expect((await upload({ server, robot: robots[0]!, roundId: 'metrics-1', body: dup.bytes })).status).toBe(409);
    const garbage = await upload({ server, robot: robots[2]!, roundId: 'metrics-1', body: new Uint8Array([1, 2, 3]) });
    expect(garbage.status).toBe(400);
    // A second, unknown round id: its id must never become a label value.
    expect((await api({ server, method: 'GET', path: '/v1/rounds/no-such-round-xyz', token: admin.token })).status).toBe(404);
    expect((await server.app.request('/v1/definitely/not/a/route')).status).toBe(404);
    expect((await server.app.request('/v1/rounds/metrics-1')).status).toBe(401); // refused by route middleware
  });
  afterAll(async () => {
    await server.close();
    await other.close();
  });

  it('counts requests by route template and status, never by raw URL', async () => {
    const { samples, text } = await scrape(server);
    expect(samples.get('tensorguard_http_requests_total{method="POST",route="/v1/rounds/:id/contributions",status="201"}')).toBe(2);
    expect(samples.get('tensorguard_http_requests_total{method="POST",route="/v1/rounds/:id/contributions",status="409"}')).toBe(1);
    expect(samples.get('tensorguard_http_requests_total{method="GET",route="/v1/rounds/:id",status="404"}')).toBe(1);
    expect(samples.get('tensorguard_http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(samples.get('tensorguard_http_requests_total{method="GET",route="/v1/rounds/:id",status="401"}')).toBe(1);
    expect(samples.get('tensorguard_http_request_duration_seconds_count{method="POST",route="/v1/rounds/:id/contributions",status="201"}')).toBe(2);
    expect(text).not.toContain('metrics-1');
    expect(text).not.toContain('no-such-round-xyz');
    expect(text).not.toContain('/definitely/');
  });

  it('counts contributions accepted, refused by reason, bytes ingested and aggregation time', async () => {
    const { samples } = await scrape(server);
    expect(samples.get('tensorguard_contributions_accepted_total')).toBe(2);
    expect(samples.get('tensorguard_contributions_refused_total{reason="duplicate_contribution"}')).toBe(1);
    expect(samples.get('tensorguard_contributions_refused_total{reason="malformed"}')).toBe(1);
    expect(samples.get('tensorguard_ingest_bytes_total')).toBe(packageBytes);
    expect(samples.get('tensorguard_aggregation_duration_seconds_count')).toBe(2);
    expect(samples.get('tensorguard_aggregation_duration_seconds_sum')).toBeGreaterThan(0);
  });

  it('reads rounds by state, DP epsilon per fleet and HE key age from the database on scrape', async () => {
    const { samples } = await scrape(server);
    expect(samples.get('tensorguard_rounds{state="open"}')).toBe(1);
    expect(samples.get('tensorguard_rounds{state="finalized"}')).toBe(0);
    const ledger = await api({ server, method: 'GET', path: `/v1/dp/ledger?fleet=${fleetId}`, token: (await bootstrapToken()) });
    const max = Math.max(...ledger.body.entries.map((e: { epsilonAfter: number }) => e.epsilonAfter));
    expect(samples.get(`tensorguard_dp_epsilon_spent{fleet="${fleetId}"}`)).toBeCloseTo(max, 12);
    server.clock.now += 90_000;
    const later = await scrape(server);
    const age = later.samples.get(`tensorguard_he_key_age_seconds{org="${orgId}",key_version="1"}`);
    expect(age).toBeGreaterThanOrEqual(90);
    expect(age).toBeLessThan(90 + 600);
  });

  it('times database operations and blob store calls, and exports the process metrics', async () => {
    const { samples, types } = await scrape(server);
    expect(samples.get('tensorguard_db_operation_duration_seconds_count{operation="query",outcome="ok"}')).toBeGreaterThan(10);
    expect(samples.get('tensorguard_db_operation_duration_seconds_count{operation="transaction",outcome="ok"}')).toBeGreaterThan(5);
    expect(samples.get('tensorguard_blob_operation_duration_seconds_count{operation="put",outcome="ok"}')).toBe(4);
    expect(samples.get('tensorguard_blob_store_circuit_state')).toBe(0);
    expect(samples.get('tensorguard_upload_bytes_in_flight')).toBe(0);
    expect(types.get('process_resident_memory_bytes')).toBe('gauge');
    expect(samples.get('process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  it('keeps one registry per app', async () => {
    const { samples } = await scrape(other);
    expect(samples.get('tensorguard_contributions_accepted_total')).toBe(0);
    expect(samples.get('tensorguard_rounds{state="open"}')).toBe(0);
    expect([...samples.keys()].some((k) => k.startsWith('tensorguard_http_requests_total{'))).toBe(false);
  });

  // The admin token of `server` (bootstrap answers only once, so sign in again).
  async function bootstrapToken(): Promise<string> {
    const res = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: 'correct horse battery' } });
    return res.body.token;
  }
});

describe('the Grafana dashboard and the Prometheus config in docs/', () => {
  it('query only metrics that /metrics exports', async () => {
    const server = await createOpsTestServer();
    try {
      const { types } = await scrape(server);
      const exported = new Set(types.keys());
      const dashboard = JSON.parse(await readFile(resolve(DOCS, 'grafana/tensorguard.json'), 'utf8'));
      const exprs: string[] = [];
      const walk = (v: unknown) => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (k === 'expr' || k === 'query') && typeof x === 'string' ? exprs.push(x) : walk(x);
      };
      walk(dashboard);
      expect(exprs.length).toBeGreaterThan(10);
      const used = new Set<string>();
      for (const expr of exprs) {
        // Metric names: identifiers of our namespaces outside label matchers and strings.
        const stripped = expr.replace(/\{[^}]*\}/g, '').replace(/"[^"]*"/g, '');
        for (const m of stripped.matchAll(/\b((?:tensorguard|process|nodejs)_[a-zA-Z0-9_]+)/g)) used.add(m[1]!);
      }
      const missing = [...used].filter((name) => {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        return !exported.has(name) && !(exported.has(base) && types.get(base) === 'histogram');
      });
      expect(missing).toEqual([]);
      // Every tensorguard_* metric has a panel.
      const unused = [...exported].filter((n) => n.startsWith('tensorguard_') && ![...used].some((u) => u.replace(/_(bucket|sum|count)$/, '') === n));
      expect(unused).toEqual([]);

      const prometheus = await readFile(resolve(DOCS, 'prometheus.yml'), 'utf8');
      expect(prometheus).toMatch(/metrics_path:\s*\/metrics/);
      expect(prometheus).toMatch(/job_name:\s*tensorguard/);
    } finally {
      await server.close();
    }
  });
});
