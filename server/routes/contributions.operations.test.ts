// Contribution uploads under operational stress: idempotent retries (Idempotency-Key), backpressure on
// upload bytes and on the aggregation queue (503 + Retry-After, nothing queued without bound), and the
// blob store circuit breaker (503 `blob_store_unavailable`, then recovery through a half-open probe).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64 } from '../../core/bytes.ts';
import type { RoundConfig } from '../../core/records/round-config.ts';
import type { BlobStore } from '../blobs/fs-store.ts';
import { api, bootstrap, createFleet, enrollRobot, fakeCiphertexts, makePackage, makeRoundConfig, setupOfficer, type TestRobot, type TestServer } from '../testing/harness.ts';
import { createOpsTestServer, heldUpload, parseExposition, upload } from '../operations/testing.ts';
import type { OperationalLimits } from '../operations/limits.ts';

/** A server with an org, a fleet, an HE key, `robotCount` robots and an open round. */
async function setup(options: { limits?: Partial<OperationalLimits>; wrapBlobs?: (s: BlobStore) => BlobStore; robotCount?: number; maxContributors?: number }) {
  const server = await createOpsTestServer({ limits: options.limits, wrapBlobs: options.wrapBlobs });
  const admin = await bootstrap({ server });
  const fleet = await createFleet({ server, token: admin.token });
  const officer = await setupOfficer({ server, token: admin.token, orgId: admin.org.id });
  const robots: TestRobot[] = [];
  for (let i = 0; i < (options.robotCount ?? 4); i++) robots.push(await enrollRobot({ server, token: admin.token, fleetId: fleet.id }));
  const openRound = async (roundId: string) => {
    const made = makeRoundConfig({
      officer: officer.officer,
      orgId: admin.org.id,
      fleetId: fleet.id,
      keyFingerprint: officer.keyFingerprint,
      now: server.clock.now,
      roundId,
      quorum: 2,
      maxContributors: options.maxContributors ?? 4,
    });
    const res = await api({ server, method: 'POST', path: '/v1/rounds', token: admin.token, body: { config: toBase64(made.bytes) } });
    expect(res.status).toBe(201);
    return { config: made.config, fingerprint: Uint8Array.from(Buffer.from(res.body.configFingerprint, 'hex')) };
  };
  const packageFor = (robot: TestRobot, round: { config: RoundConfig; fingerprint: Uint8Array }) =>
    makePackage({ robot, config: round.config, configFingerprint: round.fingerprint, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) }).bytes;
  const round = await openRound('round-ops');
  return { server, admin, robots, round, openRound, packageFor };
}

describe('Idempotency-Key on uploads', () => {
  let ctx: Awaited<ReturnType<typeof setup>>;
  beforeAll(async () => {
    ctx = await setup({});
  });
  afterAll(() => ctx.server.close());

  it('answers a retried upload with its original 201, not a duplicate, and counts it once', async () => {
    const { server, robots, round, packageFor } = ctx;
    const body = packageFor(robots[0]!, round);
    const headers = { 'idempotency-key': 'push-7f3a-0001' };
    const first = await upload({ server, robot: robots[0]!, roundId: 'round-ops', body, headers });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const retry = await upload({ server, robot: robots[0]!, roundId: 'round-ops', body, headers });
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    // Without the key the same body is the duplicate it always was.
    const bare = await upload({ server, robot: robots[0]!, roundId: 'round-ops', body });
    expect(bare.status).toBe(409);
    expect(bare.body.error.code).toBe('duplicate_contribution');
    const state = await api({ server, method: 'GET', path: '/v1/rounds/round-ops', token: ctx.admin.token });
    expect(state.body.contributions).toBe(1);
    const metrics = parseExposition(await (await server.app.request('/metrics')).text()).samples;
    expect(metrics.get('tensorguard_contributions_accepted_total')).toBe(1);
    expect(metrics.get('tensorguard_contributions_replayed_total')).toBe(1);
  });

  it('refuses the same key with a different body (422) and keys are per robot', async () => {
    const { server, robots, round, packageFor } = ctx;
    const headers = { 'idempotency-key': 'push-7f3a-0001' };
    const other = await upload({ server, robot: robots[0]!, roundId: 'round-ops', body: packageFor(robots[0]!, round), headers });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reused');
    // Another robot may use the same key string: it is its own key.
    const robot1 = await upload({ server, robot: robots[1]!, roundId: 'round-ops', body: packageFor(robots[1]!, round), headers });
    expect(robot1.status).toBe(201);
    expect(robot1.body.count).toBe(2);
  });

  it('answers concurrent twins of one upload with the same 201', async () => {
    const { server, robots, round, packageFor } = ctx;
    const body = packageFor(robots[2]!, round);
    const headers = { 'idempotency-key': 'twin' };
    const answers = await Promise.all([0, 1, 2].map(() => upload({ server, robot: robots[2]!, roundId: 'round-ops', body, headers })));
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201]);
    expect(new Set(answers.map((a) => a.body.contributionId)).size).toBe(1);
    expect(answers.filter((a) => a.headers.get('idempotent-replayed') === 'true')).toHaveLength(2);
  });

  it('refuses a malformed key with 400, and a key reused for another round with 422', async () => {
    const { server, robots, packageFor, openRound } = ctx;
    const second = await openRound('round-ops-2');
    const bad = await upload({ server, robot: robots[3]!, roundId: 'round-ops-2', body: packageFor(robots[3]!, second), headers: { 'idempotency-key': 'bad key with spaces' } });
    expect(bad.status).toBe(400);
    const reused = await upload({ server, robot: robots[2]!, roundId: 'round-ops-2', body: packageFor(robots[2]!, second), headers: { 'idempotency-key': 'twin' } });
    expect(reused.status).toBe(422);
  });

  it('still answers the original 201 after the round was finalized', async () => {
    const { server, robots, admin } = ctx;
    const close = await api({ server, method: 'POST', path: '/v1/rounds/round-ops/close', token: admin.token });
    expect(close.status).toBe(200);
    expect(close.body.state).toBe('finalized');
    const list = await api({ server, method: 'GET', path: '/v1/rounds/round-ops/contributions', token: admin.token });
    const pkg = await server.app.request(`/v1/rounds/round-ops/contributions/${list.body[0].id}/package`, { headers: { authorization: `Bearer ${admin.token}` } });
    const original = new Uint8Array(await pkg.arrayBuffer());
    const retry = await upload({ server, robot: robots[0]!, roundId: 'round-ops', body: original, headers: { 'idempotency-key': 'push-7f3a-0001' } });
    expect(retry.status).toBe(201);
    expect(retry.body.contributionId).toBe(list.body[0].id);
  });
});

describe('backpressure', () => {
  it('refuses uploads beyond the in-flight byte bound with 503 overloaded + Retry-After, and admits them once bytes drain', async () => {
    const ctx = await setup({ limits: { maxInflightUploadBytes: 100_000, retryAfterSeconds: 3 } });
    try {
      const { server, robots, round, packageFor } = ctx;
      const first = packageFor(robots[0]!, round);
      expect(first.length).toBeGreaterThan(60_000); // one 65,649-byte ciphertext plus the signed header
      const held = heldUpload({ server, robot: robots[0]!, roundId: 'round-ops', body: first });
      await new Promise((r) => setTimeout(r, 50)); // the held request has reserved its bytes
      const second = packageFor(robots[1]!, round);
      const refused = await upload({ server, robot: robots[1]!, roundId: 'round-ops', body: second });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('overloaded');
      expect(refused.body.error.details.resource).toBe('upload_bytes');
      expect(refused.headers.get('retry-after')).toBe('3');
      held.finish();
      expect((await held.response).status).toBe(201);
      const retried = await upload({ server, robot: robots[1]!, roundId: 'round-ops', body: second });
      expect(retried.status).toBe(201);
      const metrics = parseExposition(await (await server.app.request('/metrics')).text()).samples;
      expect(metrics.get('tensorguard_backpressure_refusals_total{resource="upload_bytes"}')).toBe(1);
      expect(metrics.get('tensorguard_contributions_refused_total{reason="overloaded"}')).toBe(1);
      expect(metrics.get('tensorguard_upload_bytes_in_flight')).toBe(0);
    } finally {
      await ctx.server.close();
    }
  });

  it('refuses contributions beyond the aggregation queue bound while earlier ones are still being folded in', async () => {
    // A blob store whose writes wait for a gate: the first contribution holds its aggregation slot.
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    let gated = false;
    const ctx = await setup({
      limits: { maxPendingAggregations: 1 },
      wrapBlobs: (store) => ({
        ...store,
        put: async (bytes) => {
          if (gated) await gate;
          return store.put(bytes);
        },
      }),
    });
    try {
      const { server, robots, round, packageFor } = ctx;
      gated = true;
      const first = upload({ server, robot: robots[0]!, roundId: 'round-ops', body: packageFor(robots[0]!, round) });
      await new Promise((r) => setTimeout(r, 100));
      const refused = await upload({ server, robot: robots[1]!, roundId: 'round-ops', body: packageFor(robots[1]!, round) });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe('overloaded');
      expect(refused.body.error.details.resource).toBe('aggregation_queue');
      expect(refused.headers.get('retry-after')).toBe('2');
      openGate();
      expect((await first).status).toBe(201);
      expect((await upload({ server, robot: robots[1]!, roundId: 'round-ops', body: packageFor(robots[1]!, round) })).status).toBe(201);
    } finally {
      await ctx.server.close();
    }
  });

  it('keeps memory bounded under a burst: every upload is answered 201 or 503, none waits in an unbounded queue', async () => {
    const ctx = await setup({ limits: { maxInflightUploadBytes: 150_000, maxPendingAggregations: 2 }, robotCount: 12, maxContributors: 16 });
    try {
      const { server, robots, round, packageFor } = ctx;
      const bodies = robots.map((r) => packageFor(r, round));
      const answers = await Promise.all(robots.map((robot, i) => upload({ server, robot, roundId: 'round-ops', body: bodies[i]! })));
      const statuses = answers.map((a) => a.status);
      expect(statuses.every((s) => s === 201 || s === 503)).toBe(true);
      expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
      // Retrying the refused ones (as the robot CLI does) gets every contribution in exactly once.
      for (let attempt = 0; attempt < 20; attempt++) {
        const left = robots.map((_, i) => i).filter((i) => answers[i]!.status !== 201);
        if (left.length === 0) break;
        for (const i of left) answers[i] = await upload({ server, robot: robots[i]!, roundId: 'round-ops', body: bodies[i]! });
      }
      expect(answers.every((a) => a.status === 201)).toBe(true);
      const state = await api({ server, method: 'GET', path: '/v1/rounds/round-ops', token: ctx.admin.token });
      expect(state.body.contributions).toBe(12);
    } finally {
      await ctx.server.close();
    }
  });
});

describe('blob store circuit breaker', () => {
  it('answers 503 blob_store_unavailable after repeated failures, then recovers through a half-open probe', async () => {
    const broken = { on: false };
    const ctx = await setup({
      // A contribution writes its package and aggregate at once: two failures per refused upload.
      limits: { blobBreakerFailures: 3, blobBreakerCooldownMs: 200 },
      wrapBlobs: (store) => {
        const fail = async () => {
          throw Object.assign(new Error('EIO: i/o error, open'), { code: 'EIO' });
        };
        return {
          put: (b) => (broken.on ? fail() : store.put(b)),
          get: (n) => (broken.on ? fail() : store.get(n)),
          has: (n) => (broken.on ? fail() : store.has(n)),
          delete: (n) => (broken.on ? fail() : store.delete(n)),
          check: () => (broken.on ? fail() : store.check()),
        };
      },
    });
    try {
      const { server, robots, round, packageFor } = ctx;
      broken.on = true;
      const statuses: number[] = [];
      const codes: string[] = [];
      for (const robot of robots.slice(0, 3)) {
        const res = await upload({ server, robot, roundId: 'round-ops', body: packageFor(robot, round) });
        statuses.push(res.status);
        codes.push(res.body.error.code);
      }
      expect(statuses).toEqual([500, 500, 503]);
      expect(codes[2]).toBe('blob_store_unavailable');
      const ready = await (await server.app.request('/readyz')).json();
      expect(ready.failing).toEqual(['blob_store']);
      let metrics = parseExposition(await (await server.app.request('/metrics')).text()).samples;
      expect(metrics.get('tensorguard_blob_store_circuit_state')).toBe(2);

      broken.on = false;
      await new Promise((r) => setTimeout(r, 250));
      const recovered = await upload({ server, robot: robots[0]!, roundId: 'round-ops', body: packageFor(robots[0]!, round) });
      expect(recovered.status).toBe(201);
      metrics = parseExposition(await (await server.app.request('/metrics')).text()).samples;
      expect(metrics.get('tensorguard_blob_store_circuit_state')).toBe(0);
      expect(metrics.get('tensorguard_contributions_refused_total{reason="blob_store_unavailable"}')).toBe(1);
      expect(metrics.get('tensorguard_backpressure_refusals_total{resource="blob_store"}')).toBeGreaterThanOrEqual(1);
    } finally {
      await ctx.server.close();
    }
  });
});
