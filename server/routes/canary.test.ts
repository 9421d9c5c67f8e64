// Canary and registry over HTTP: robot telemetry (only from robots a release wraps for), rollback
// triggers with default and per-fleet thresholds, promotion and rollback as the next signed versions,
// the registry's lineage and base models, the safety-decision summary, and roles.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { randomBytes } from '../../core/random.ts';
import { KEM_SIZES } from '../../core/crypto/kem.ts';
import { signReleaseManifest, type ReleaseManifest } from '../../core/records/release-manifest.ts';
import { api, bootstrap, createFleet, createTestServer, enrollRobot, fakeCiphertexts, makePackage, makeRoundConfig, robotRequest, setupOfficer, type TestRobot, type TestServer } from '../testing/harness.ts';

describe('canary, rollout and registry routes', () => {
  let server: TestServer;
  let token: string;
  let orgId: string;
  let fleetId: string;
  let officer: Awaited<ReturnType<typeof setupOfficer>>;
  let robots: TestRobot[];
  const adapterA = randomBytes(32);
  const adapterB = randomBytes(32);
  const roundIds: string[] = [];

  async function finalizedRound() {
    const made = makeRoundConfig({ officer: officer.officer, orgId, fleetId, keyFingerprint: officer.keyFingerprint, now: server.clock.now, quorum: 2 });
    const res = await api({ server, method: 'POST', path: '/v1/rounds', token, body: { config: toBase64(made.bytes) } });
    expect(res.status).toBe(201);
    const fp = Uint8Array.from(Buffer.from(res.body.configFingerprint, 'hex'));
    for (const robot of robots) {
      const pkg = makePackage({ robot, config: made.config, configFingerprint: fp, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) });
      expect((await robotRequest({ server, robot, method: 'POST', path: `/v1/rounds/${made.config.roundId}/contributions`, body: pkg.bytes })).status).toBe(201);
    }
    expect((await api({ server, method: 'POST', path: `/v1/rounds/${made.config.roundId}/close`, token })).status).toBe(200);
    return made.config.roundId;
  }

  function signed(m: Partial<ReleaseManifest> & { roundId: string; releaseVersion: number; adapterSha256: Uint8Array; wrapFor: string[] }) {
    const payload = randomBytes(256);
    const { wrapFor, ...rest } = m;
    const manifest = signReleaseManifest({
      manifest: {
        releaseId: `rel-${randomUUID()}`,
        orgId,
        fleetId,
        kind: 'release',
        rollbackOf: 0,
        payloadSha256: sha256(payload),
        canaryFraction: 1,
        createdAt: server.clock.now,
        wraps: wrapFor.map((robotId) => ({ robotId, kemCiphertext: randomBytes(KEM_SIZES.ciphertext), wrappedKey: randomBytes(KEM_SIZES.wrappedKey) })),
        ...rest,
      },
      secretKey: officer.officer.secretKey,
      publicKey: officer.officer.publicKey,
    });
    return { body: { manifest: toBase64(manifest), payload: toBase64(payload) } };
  }

  const telemetry = (robot: TestRobot, releaseId: string, body: unknown) =>
    robotRequest({ server, robot, method: 'POST', path: `/v1/releases/${releaseId}/telemetry`, body: new TextEncoder().encode(JSON.stringify(body)), contentType: 'application/json' });

  beforeAll(async () => {
    server = await createTestServer();
    const boot = await bootstrap({ server });
    token = boot.token;
    orgId = boot.org.id;
    fleetId = (await createFleet({ server, token })).id;
    officer = await setupOfficer({ server, token, orgId });
    robots = [];
    for (let i = 0; i < 3; i++) robots.push(await enrollRobot({ server, token, fleetId, name: `arm-${i}` }));
    roundIds.push(await finalizedRound(), await finalizedRound());
  });
  afterAll(async () => {
    await server?.close();
  });

  let v1 = '';
  let v2 = '';
  it('takes telemetry only from robots the release wraps for, and flags the triggers', async () => {
    const r1 = signed({ roundId: roundIds[0]!, releaseVersion: 1, adapterSha256: adapterA, wrapFor: robots.map((r) => r.id) });
    const p1 = await api({ server, method: 'POST', path: '/v1/releases', token, body: r1.body });
    expect(p1.status).toBe(201);
    v1 = p1.body.releaseId;
    const r2 = signed({ roundId: roundIds[1]!, releaseVersion: 2, adapterSha256: adapterB, canaryFraction: 0.34, wrapFor: [robots[0]!.id] });
    const p2 = await api({ server, method: 'POST', path: '/v1/releases', token, body: r2.body });
    expect(p2.status).toBe(201);
    v2 = p2.body.releaseId;

    expect((await telemetry(robots[0]!, v2, { runs: 100, errors: 2, latencyP99Ms: 120, safetyEvents: 2 })).status).toBe(201);
    let status = await api({ server, method: 'GET', path: `/v1/releases/${v2}/canary`, token });
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ stage: 'canary', liveVersion: 2, verdict: { rollback: false }, thresholds: { maxErrorRate: 0.05, maxP99Ms: 500, maxSafetyEvents: 3, source: 'default' } });
    expect(status.body.robots.filter((r: { canary: boolean }) => r.canary).map((r: { robotId: string }) => r.robotId)).toEqual([robots[0]!.id]);

    const other = await telemetry(robots[1]!, v2, { runs: 10, errors: 0, latencyP99Ms: 1, safetyEvents: 0 });
    expect(other.status).toBe(409);
    const bad = await telemetry(robots[0]!, v2, { runs: 10, errors: 11, latencyP99Ms: 1, safetyEvents: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('malformed');
    expect((await telemetry(robots[0]!, 'rel-missing', { runs: 1, errors: 0, latencyP99Ms: 1, safetyEvents: 0 })).status).toBe(404);

    expect((await telemetry(robots[0]!, v2, { runs: 50, errors: 1, latencyP99Ms: 640, safetyEvents: 2 })).status).toBe(201);
    status = await api({ server, method: 'GET', path: `/v1/releases/${v2}/canary`, token });
    expect(status.body.verdict.rollback).toBe(true);
    expect(status.body.verdict.triggers.map((t: { name: string }) => t.name)).toEqual(['latency_p99', 'safety_events']);
    expect(status.body.verdict.totals).toMatchObject({ runs: 150, errors: 3, safetyEvents: 4, worstP99Ms: 640 });
    expect(status.body.telemetry).toHaveLength(2);

    // per-fleet thresholds
    const put = await api({ server, method: 'PUT', path: `/v1/fleets/${fleetId}/rollout-policy`, token, body: { maxErrorRate: 0.1, maxP99Ms: 1000, maxSafetyEvents: 10 } });
    expect(put.status).toBe(200);
    expect(put.body.source).toBe('fleet');
    status = await api({ server, method: 'GET', path: `/v1/releases/${v2}/canary`, token });
    expect(status.body.verdict.rollback).toBe(false);
    expect((await api({ server, method: 'PUT', path: `/v1/fleets/${fleetId}/rollout-policy`, token, body: { maxErrorRate: 0.05, maxP99Ms: 500, maxSafetyEvents: 3 } })).status).toBe(200);
    expect((await api({ server, method: 'PUT', path: `/v1/fleets/${fleetId}/rollout-policy`, token, body: { maxErrorRate: 2, maxP99Ms: 500, maxSafetyEvents: 3 } })).status).toBe(400);
  });

  it('stores a promotion and a rollback as the next versions and checks what it can', async () => {
    // a promotion must carry the promoted adapter, for the whole fleet, as the next version
    const wrong = signed({ roundId: roundIds[1]!, releaseVersion: 3, adapterSha256: adapterA, wrapFor: robots.map((r) => r.id) });
    expect((await api({ server, method: 'POST', path: `/v1/releases/${v2}/promote`, token, body: wrong.body })).body.error.code).toBe('integrity');
    const stale = signed({ roundId: roundIds[1]!, releaseVersion: 2, adapterSha256: adapterB, wrapFor: robots.map((r) => r.id) });
    expect((await api({ server, method: 'POST', path: `/v1/releases/${v2}/promote`, token, body: stale.body })).status).toBe(409);
    const promo = signed({ roundId: roundIds[1]!, releaseVersion: 3, adapterSha256: adapterB, wrapFor: robots.map((r) => r.id) });
    const p3 = await api({ server, method: 'POST', path: `/v1/releases/${v2}/promote`, token, body: promo.body });
    expect(p3.status, JSON.stringify(p3.body)).toBe(201);
    expect(p3.body).toMatchObject({ releaseVersion: 3, kind: 'release', wrappedRobots: 3 });
    expect((await api({ server, method: 'GET', path: `/v1/releases/${v2}/canary`, token })).body.stage).toBe('promoted');

    // a rollback restores version 1's adapter as version 4
    const notOld = signed({ roundId: roundIds[0]!, releaseVersion: 4, kind: 'rollback', rollbackOf: 1, adapterSha256: adapterB, wrapFor: robots.map((r) => r.id) });
    expect((await api({ server, method: 'POST', path: `/v1/fleets/${fleetId}/rollback`, token, body: notOld.body })).body.error.code).toBe('integrity');
    const rb = signed({ roundId: roundIds[0]!, releaseVersion: 4, kind: 'rollback', rollbackOf: 1, adapterSha256: adapterA, wrapFor: robots.map((r) => r.id) });
    const p4 = await api({ server, method: 'POST', path: `/v1/fleets/${fleetId}/rollback`, token, body: rb.body });
    expect(p4.status, JSON.stringify(p4.body)).toBe(201);
    expect(p4.body).toMatchObject({ releaseVersion: 4, kind: 'rollback' });
    const latest = await robotRequest({ server, robot: robots[2]!, method: 'GET', path: '/v1/releases/latest' });
    expect(latest.body.releaseVersion).toBe(4);
    expect(latest.body.kind).toBe('rollback');
  });

  it('lists the lineage of every model version and the registered base models', async () => {
    const fp = 'ab'.repeat(32);
    const reg = await api({ server, method: 'POST', path: '/v1/registry/models', token, body: { fingerprint: fp, name: 'reference policy', taskTypes: ['reach', 'place'], version: '1.0.0' } });
    expect(reg.status).toBe(201);
    expect((await api({ server, method: 'POST', path: '/v1/registry/models', token, body: { fingerprint: fp, name: 'again', taskTypes: ['reach'], version: '1' } })).status).toBe(409);
    expect((await api({ server, method: 'POST', path: '/v1/registry/models', token, body: { fingerprint: 'xyz', name: 'bad', taskTypes: ['reach'], version: '1' } })).status).toBe(400);
    expect((await api({ server, method: 'GET', path: '/v1/registry/models', token })).body).toHaveLength(1);
    const lineage = await api({ server, method: 'GET', path: `/v1/registry/lineage?fleet=${fleetId}`, token });
    expect(lineage.status).toBe(200);
    expect(lineage.body.liveVersion).toBe(4);
    expect(lineage.body.versions.map((v: { modelVersion: number; kind: string; stage: string }) => [v.modelVersion, v.kind, v.stage])).toEqual([
      [4, 'rollback', 'full'],
      [3, 'release', 'superseded'],
      [2, 'release', 'promoted'],
      [1, 'release', 'superseded'],
    ]);
    const v4 = lineage.body.versions[0];
    expect(v4).toMatchObject({ rollbackOf: 1, rollout: { kind: 'rollback', restoresVersion: 1 }, round: { roundId: roundIds[0], contributions: 3 }, review: { decision: 'release' } });
    expect(lineage.body.versions[2].review.gate).not.toBeUndefined();
    expect((await api({ server, method: 'GET', path: '/v1/registry/lineage?fleet=flt_nope', token })).status).toBe(404);
    expect((await api({ server, method: 'GET', path: '/v1/registry/lineage', token })).status).toBe(400);
  });

  it('summarizes safety decisions and keeps robots and other roles out', async () => {
    const s = await api({ server, method: 'GET', path: `/v1/safety/decisions?fleet=${fleetId}&hours=24`, token });
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({ approvals: 0, denials: 0, recentDenials: [] });
    expect((await robotRequest({ server, robot: robots[0]!, method: 'GET', path: `/v1/registry/lineage?fleet=${fleetId}` })).status).toBe(403);
    expect((await api({ server, method: 'GET', path: `/v1/releases/${v2}/canary` })).status).toBe(401);
    const user = await api({ server, method: 'POST', path: '/v1/users', token, body: { name: 'oscar', password: 'correct horse battery 2', roles: ['operator'] } });
    if (user.status === 201) {
      const login = await api({ server, method: 'POST', path: '/v1/login', body: { org: orgId, user: 'oscar', password: 'correct horse battery 2' } });
      if (login.status === 200 || login.status === 201) expect((await api({ server, method: 'GET', path: `/v1/releases/${v2}/canary`, token: login.body.token })).status).toBe(403);
    }
  });
});
