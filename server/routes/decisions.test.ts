// Officer decisions over HTTP: a round is released or rejected exactly once (409 `round_decided` for the
// second), Idempotency-Key replays give the first answer and never a second release, robots' fetches and
// reports show up as release status, and the PWA is served with its own CSP beside the API's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { bytesToHex, toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { signReleaseManifest } from '../../core/records/release-manifest.ts';
import { signRoundRejection } from '../../core/records/round-rejection.ts';
import type { RoundConfig } from '../../core/records/round-config.ts';
import {
  api,
  bootstrap,
  createFleet,
  createTestServer,
  enrollRobot,
  fakeCiphertexts,
  makePackage,
  makeRoundConfig,
  robotRequest,
  setupOfficer,
  type TestRobot,
  type TestServer,
} from '../testing/harness.ts';

describe('round decisions, idempotency and release status', () => {
  let server: TestServer;
  let token: string;
  let orgId: string;
  let fleetId: string;
  let officer: Awaited<ReturnType<typeof setupOfficer>>;
  let robots: TestRobot[];
  const rounds: Array<{ config: RoundConfig; fingerprint: Uint8Array }> = [];
  let pwaDir: string;

  async function finalizedRound() {
    const made = makeRoundConfig({ officer: officer.officer, orgId, fleetId, keyFingerprint: officer.keyFingerprint, now: server.clock.now, quorum: 2 });
    const res = await api({ server, method: 'POST', path: '/v1/rounds', token, body: { config: toBase64(made.bytes) } });
    expect(res.status).toBe(201);
    const r = { config: made.config, fingerprint: Uint8Array.from(Buffer.from(res.body.configFingerprint, 'hex')) };
    for (const robot of robots) {
      const pkg = makePackage({ robot, config: r.config, configFingerprint: r.fingerprint, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) });
      expect((await robotRequest({ server, robot, method: 'POST', path: `/v1/rounds/${r.config.roundId}/contributions`, body: pkg.bytes })).status).toBe(201);
    }
    expect((await api({ server, method: 'POST', path: `/v1/rounds/${r.config.roundId}/close`, token })).status).toBe(200);
    return r;
  }

  function releaseBody(roundId: string, releaseVersion: number, signer = officer.officer) {
    const payload = randomBytes(256);
    const manifest = signReleaseManifest({
      manifest: {
        releaseId: `rel-${randomUUID()}`,
        orgId,
        fleetId,
        roundId,
        releaseVersion,
        kind: 'release',
        rollbackOf: 0,
        adapterSha256: randomBytes(32),
        payloadSha256: sha256(payload),
        canaryFraction: 0.5,
        createdAt: server.clock.now,
        wraps: [],
      },
      secretKey: signer.secretKey,
      publicKey: signer.publicKey,
    });
    return { manifest: toBase64(manifest), payload: toBase64(payload) };
  }

  function rejectionBody(r: { config: RoundConfig; fingerprint: Uint8Array }, reason: string, signer = officer.officer) {
    const record = signRoundRejection({
      rejection: { roundId: r.config.roundId, orgId, fleetId, roundConfigFingerprint: r.fingerprint, aggregateSha256: new Uint8Array(32), reason, createdAt: server.clock.now },
      secretKey: signer.secretKey,
      publicKey: signer.publicKey,
    });
    return { record: toBase64(record) };
  }

  beforeAll(async () => {
    pwaDir = await mkdtemp(join(tmpdir(), 'tg-pwa-'));
    await mkdir(join(pwaDir, '_app', 'immutable'), { recursive: true });
    await writeFile(join(pwaDir, 'index.html'), '<!doctype html><html><body><script>window.boot=1</script><script type="module" src="/_app/immutable/start.js"></script></body></html>');
    await writeFile(join(pwaDir, '_app', 'immutable', 'start.js'), 'export {}');
    await writeFile(join(pwaDir, 'manifest.webmanifest'), '{}');
    process.env.TG_PWA_DIR = pwaDir;
    server = await createTestServer();
    delete process.env.TG_PWA_DIR;
    const admin = await bootstrap({ server });
    token = admin.token;
    orgId = admin.org.id;
    fleetId = (await createFleet({ server, token, name: 'arms' })).id;
    officer = await setupOfficer({ server, token, orgId });
    robots = [await enrollRobot({ server, token, fleetId }), await enrollRobot({ server, token, fleetId })];
    rounds.push(await finalizedRound(), await finalizedRound());
  });
  afterAll(async () => {
    await server.close();
    await rm(pwaDir, { recursive: true, force: true });
  });

  it('a release under an Idempotency-Key happens once; a resend gets the first answer', async () => {
    const body = releaseBody(rounds[0]!.config.roundId, 1);
    const first = await api({ server, method: 'POST', path: '/v1/releases', token, body, headers: { 'idempotency-key': 'outbox-1' } });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const again = await api({ server, method: 'POST', path: '/v1/releases', token, body, headers: { 'idempotency-key': 'outbox-1' } });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    const other = await api({ server, method: 'POST', path: '/v1/releases', token, body: releaseBody(rounds[1]!.config.roundId, 2), headers: { 'idempotency-key': 'outbox-1' } });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reused');
    const list = await api({ server, method: 'GET', path: `/v1/releases?fleet=${fleetId}`, token });
    expect(list.body).toHaveLength(1);
    const badKey = await api({ server, method: 'POST', path: '/v1/releases', token, body, headers: { 'idempotency-key': 'bad key with spaces' } });
    expect(badKey.status).toBe(400);
  });

  it('a round decided by a release refuses a rejection and a second release with round_decided', async () => {
    const rejected = await api({ server, method: 'POST', path: `/v1/rounds/${rounds[0]!.config.roundId}/rejection`, token, body: rejectionBody(rounds[0]!, 'late'), headers: { 'idempotency-key': 'outbox-2' } });
    expect(rejected.status).toBe(409);
    expect(rejected.body.error.code).toBe('round_decided');
    expect(rejected.body.error.details.decision).toBe('release');
    const second = await api({ server, method: 'POST', path: '/v1/releases', token, body: releaseBody(rounds[0]!.config.roundId, 2) });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('round_decided');
    // the same conflicting request again: the same answer (nothing was stored under its key)
    const retry = await api({ server, method: 'POST', path: `/v1/rounds/${rounds[0]!.config.roundId}/rejection`, token, body: rejectionBody(rounds[0]!, 'late'), headers: { 'idempotency-key': 'outbox-2b' } });
    expect(retry.body.error.code).toBe('round_decided');
    const decision = await api({ server, method: 'GET', path: `/v1/rounds/${rounds[0]!.config.roundId}/decision`, token });
    expect(decision.body.state).toBe('released');
  });

  it('a signed rejection decides a round once; a release of it is then round_decided', async () => {
    const r = rounds[1]!;
    const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    const forged = await api({ server, method: 'POST', path: `/v1/rounds/${r.config.roundId}/rejection`, token, body: rejectionBody(r, 'x', mallory) });
    expect(forged.status).toBe(401);
    const body = rejectionBody(r, 'lora_B norms 40x the previous round');
    const first = await api({ server, method: 'POST', path: `/v1/rounds/${r.config.roundId}/rejection`, token, body, headers: { 'idempotency-key': 'outbox-3' } });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body.state).toBe('rejected');
    const replay = await api({ server, method: 'POST', path: `/v1/rounds/${r.config.roundId}/rejection`, token, body, headers: { 'idempotency-key': 'outbox-3' } });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    const release = await api({ server, method: 'POST', path: '/v1/releases', token, body: releaseBody(r.config.roundId, 2) });
    expect(release.status).toBe(409);
    expect(release.body.error.code).toBe('round_decided');
    expect(release.body.error.details).toMatchObject({ decision: 'rejection', reason: 'lora_B norms 40x the previous round' });
    const decision = await api({ server, method: 'GET', path: `/v1/rounds/${r.config.roundId}/decision`, token });
    expect(decision.body).toMatchObject({ state: 'rejected', reason: 'lora_B norms 40x the previous round' });
    const audit = await api({ server, method: 'GET', path: '/v1/audit?limit=1000', token });
    expect(audit.body.entries.filter((e: { action: string }) => e.action === 'round.reject')).toHaveLength(1);
  });

  it('refuses a rejection of a round that is still open', async () => {
    const made = makeRoundConfig({ officer: officer.officer, orgId, fleetId, keyFingerprint: officer.keyFingerprint, now: server.clock.now, quorum: 2 });
    const res = await api({ server, method: 'POST', path: '/v1/rounds', token, body: { config: toBase64(made.bytes) } });
    const open = { config: made.config, fingerprint: Uint8Array.from(Buffer.from(res.body.configFingerprint, 'hex')) };
    const refused = await api({ server, method: 'POST', path: `/v1/rounds/${open.config.roundId}/rejection`, token, body: rejectionBody(open, 'no') });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('round_not_finalized');
    const undecided = await api({ server, method: 'GET', path: `/v1/rounds/${open.config.roundId}/decision`, token });
    expect(undecided.body.state).toBe('undecided');
  });

  it('release status shows which robots fetched the release and what they reported', async () => {
    const latest = await robotRequest({ server, robot: robots[0]!, method: 'GET', path: '/v1/releases/latest' });
    expect(latest.status).toBe(200);
    const releaseId = latest.body.releaseId;
    const report = new TextEncoder().encode(JSON.stringify({ status: 'applied' }));
    const reported = await robotRequest({ server, robot: robots[0]!, method: 'POST', path: `/v1/releases/${releaseId}/report`, body: report, contentType: 'application/json' });
    expect(reported.status).toBe(204);
    const wrongHash = new TextEncoder().encode(JSON.stringify({ status: 'applied', adapterSha256: bytesToHex(randomBytes(32)) }));
    expect((await robotRequest({ server, robot: robots[1]!, method: 'POST', path: `/v1/releases/${releaseId}/report`, body: wrongHash, contentType: 'application/json' })).status).toBe(400);
    const status = await api({ server, method: 'GET', path: `/v1/releases/${releaseId}/status`, token });
    expect(status.status).toBe(200);
    const byRobot = new Map(status.body.robots.map((r: { robotId: string }) => [r.robotId, r]));
    expect(byRobot.get(robots[0]!.id)).toMatchObject({ wrapped: false, status: 'applied' });
    expect((byRobot.get(robots[0]!.id) as { deliveredAt: number }).deliveredAt).toBeGreaterThan(0);
    expect(byRobot.get(robots[1]!.id)).toMatchObject({ deliveredAt: null, status: null });
  });

  it('serves the PWA with its own CSP (inline bootstrap hashed), the SPA fallback, and leaves the API alone', async () => {
    const page = await server.app.request('/');
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy')!;
    const hash = createHash('sha256').update('window.boot=1').digest('base64');
    expect(csp).toContain(`'sha256-${hash}'`);
    expect(csp).toContain("'wasm-unsafe-eval'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('strict-transport-security')).toContain('max-age=31536000');
    const deep = await server.app.request('/rounds/abc/review');
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('window.boot=1');
    const asset = await server.app.request('/_app/immutable/start.js');
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect(asset.headers.get('content-type')).toContain('javascript');
    expect((await server.app.request('/missing.js')).status).toBe(404);
    expect((await server.app.request('/..%2f..%2fpackage.json')).status).toBe(404);
    const apiMissing = await server.app.request('/v1/nothing-here');
    expect(apiMissing.status).toBe(404);
    expect(((await apiMissing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const health = await server.app.request('/healthz');
    expect(health.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});
