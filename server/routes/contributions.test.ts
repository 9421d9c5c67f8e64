// The encrypted round over HTTP: open, contribute (robot-signed packages), refuse what must be refused,
// finalize, and serve an aggregate that is exactly the sum of the stored packages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToHex, fromBase64, toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { openUpdatePackage } from '../../core/records/update-package.ts';
import { decodeContributionManifest } from '../../core/records/contribution-manifest.ts';
import { signReleaseManifest } from '../../core/records/release-manifest.ts';
import { sumCiphertextBlocks } from '../../core/he/aggregate.ts';
import { getParamSet, PARAM_SET_ID } from '../../core/he/params.ts';
import { privacySpent } from '../../core/dp/round-privacy.ts';
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

describe('rounds and contributions', () => {
  let server: TestServer;
  let token: string;
  let orgId: string;
  let fleet: { id: string };
  let otherFleet: { id: string };
  let officer: Awaited<ReturnType<typeof setupOfficer>>;
  let robots: TestRobot[];
  let stranger: TestRobot;
  let round: { config: RoundConfig; fingerprint: Uint8Array };

  async function openRound(options: Partial<Parameters<typeof makeRoundConfig>[0]> = {}) {
    const made = makeRoundConfig({ officer: officer.officer, orgId, fleetId: fleet.id, keyFingerprint: officer.keyFingerprint, now: server.clock.now, ...options });
    const res = await api({ server, method: 'POST', path: '/v1/rounds', token, body: { config: toBase64(made.bytes) } });
    return { res, config: made.config, fingerprint: res.status === 201 ? Uint8Array.from(Buffer.from(res.body.configFingerprint, 'hex')) : new Uint8Array(32) };
  }

  function contribute(robot: TestRobot, r: { config: RoundConfig; fingerprint: Uint8Array }, ciphertexts?: Uint8Array, overrides?: Parameters<typeof makePackage>[0]['overrides']) {
    const pkg = makePackage({ robot, config: r.config, configFingerprint: r.fingerprint, ciphertexts: ciphertexts ?? fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }), overrides });
    return robotRequest({ server, robot, method: 'POST', path: `/v1/rounds/${r.config.roundId}/contributions`, body: pkg.bytes });
  }

  beforeAll(async () => {
    server = await createTestServer();
    const admin = await bootstrap({ server });
    token = admin.token;
    orgId = admin.org.id;
    fleet = await createFleet({ server, token, name: 'arms' });
    otherFleet = await createFleet({ server, token, name: 'carts' });
    officer = await setupOfficer({ server, token, orgId });
    robots = [];
    for (let i = 0; i < 4; i++) robots.push(await enrollRobot({ server, token, fleetId: fleet.id, name: `arm-${i}` }));
    stranger = await enrollRobot({ server, token, fleetId: otherFleet.id, name: 'cart-1' });
    const opened = await openRound({ roundId: 'round-main', quorum: 2, maxContributors: 4 });
    expect(opened.res.status).toBe(201);
    expect(opened.res.body.state).toBe('open');
    round = opened;
  });
  afterAll(() => server.close());

  it('serves the HE key record to people and robots', async () => {
    const current = await api({ server, method: 'GET', path: '/v1/he-keys/current', token });
    expect(current.status).toBe(200);
    expect(current.body.version).toBe(1);
    expect(current.body.fingerprint).toBe(bytesToHex(officer.keyFingerprint));
    const byRobot = await robotRequest({ server, robot: robots[0]!, method: 'GET', path: '/v1/he-keys/1' });
    expect(byRobot.status).toBe(200);
    expect(byRobot.body.record).toBe(current.body.record);
    const keys = await robotRequest({ server, robot: robots[0]!, method: 'GET', path: '/v1/officer-keys' });
    expect(keys.body[0].publicKey).toBe(toBase64(officer.officer.publicKey));
  });

  it('refuses a key record whose version does not follow, and one signed by an unregistered key', async () => {
    const { signKeyRecord } = await import('../../core/records/key-record.ts');
    const record = { ...officer.record, keyVersion: 3 };
    const skip = signKeyRecord({ record, secretKey: officer.officer.secretKey, publicKey: officer.officer.publicKey });
    const res = await api({ server, method: 'POST', path: '/v1/he-keys', token, body: { record: toBase64(skip) } });
    expect(res.status).toBe(409);
    const rogue = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    const untrusted = signKeyRecord({ record: { ...officer.record, keyVersion: 2 }, secretKey: rogue.secretKey, publicKey: rogue.publicKey });
    const res2 = await api({ server, method: 'POST', path: '/v1/he-keys', token, body: { record: toBase64(untrusted) } });
    expect(res2.status).toBe(401);
    expect(res2.body.error.code).toBe('untrusted_signer');
  });

  it('refuses round configs that break the rules', async () => {
    const reused = await openRound({ roundId: 'round-main' });
    expect(reused.res.status).toBe(409);
    const rogue = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    const unsigned = makeRoundConfig({ officer: rogue, orgId, fleetId: fleet.id, keyFingerprint: officer.keyFingerprint, now: server.clock.now });
    const res = await api({ server, method: 'POST', path: '/v1/rounds', token, body: { config: toBase64(unsigned.bytes) } });
    expect(res.status).toBe(401);
    const wrongKey = await openRound({ keyFingerprint: randomBytes(32) });
    expect(wrongKey.res.status).toBe(400);
    expect(wrongKey.res.body.error.code).toBe('integrity');
    const tooShort = await openRound({ deadline: server.clock.now + 60_000 });
    expect(tooShort.res.status).toBe(422);
    expect(tooShort.res.body.error.code).toBe('envelope_violation');
    const noFleet = await openRound({ fleetId: 'flt_000000000000000000000000' });
    expect(noFleet.res.status).toBe(404);
  });

  it('accepts a contribution, then refuses a duplicate with 409', async () => {
    const first = await contribute(robots[0]!, round);
    expect(first.status).toBe(201);
    expect(first.body.count).toBe(1);
    const dup = await contribute(robots[0]!, round);
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('duplicate_contribution');
  });

  it('refuses a robot of another fleet with 403 wrong_fleet', async () => {
    const res = await contribute(stranger, round);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('wrong_fleet');
  });

  it('refuses a package signed by another key, or naming another robot, with 401', async () => {
    const impostor = { ...robots[1]!, keys: generateSigningKeyPair({ algorithm: 'ml-dsa-44' }) };
    const pkg = makePackage({ robot: impostor, config: round.config, configFingerprint: round.fingerprint, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) });
    // The request itself is correctly signed by robot 1; only the package's signature is foreign.
    const res = await robotRequest({ server, robot: robots[1]!, method: 'POST', path: `/v1/rounds/${round.config.roundId}/contributions`, body: pkg.bytes });
    expect(res.status).toBe(401);
    const named = await contribute(robots[1]!, round, undefined, { robotId: robots[2]!.id });
    expect(named.status).toBe(401);
  });

  it('refuses packages that do not match the round (400 integrity), malformed bytes (400) and bad ciphertexts (400)', async () => {
    const wrongCount = await contribute(robots[1]!, round, undefined, { valueCount: 999 });
    expect(wrongCount.status).toBe(400);
    expect(wrongCount.body.error.code).toBe('integrity');
    const junk = await robotRequest({ server, robot: robots[1]!, method: 'POST', path: `/v1/rounds/${round.config.roundId}/contributions`, body: randomBytes(200) });
    expect(junk.status).toBe(400);
    expect(junk.body.error.code).toBe('malformed');
    const bad = fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 });
    const headerBytes = getParamSet({ id: PARAM_SET_ID }).headerBytes;
    bad.fill(0xff, headerBytes, headerBytes + 8); // coefficient 2^64 - 1 >= q
    const res = await contribute(robots[1]!, round, bad);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('bad_ciphertext');
    const foreignParms = await contribute(robots[1]!, round, fakeCiphertexts({ parmsId: randomBytes(32), count: 1 }));
    expect(foreignParms.status).toBe(400);
  });

  it('refuses an oversize body with 413 before reading it', async () => {
    const res = await robotRequest({ server, robot: robots[1]!, method: 'POST', path: `/v1/rounds/${round.config.roundId}/contributions`, body: new Uint8Array(5_000_000 + 16 * 1024 + 1) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('oversize');
  });

  it('serializes concurrent contributions: no add is lost', async () => {
    const results = await Promise.all([robots[1]!, robots[2]!, robots[3]!].map((r) => contribute(r, round)));
    expect(results.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(results.map((r) => r.body.count).sort()).toEqual([2, 3, 4]);
    const full = await contribute(await enrollRobot({ server, token, fleetId: fleet.id, name: 'late' }), round);
    expect(full.status).toBe(409);
    expect(full.body.error.code).toBe('round_full');
  });

  it('serves the aggregate only once finalized; it equals the sum of the stored packages', async () => {
    const early = await api({ server, method: 'GET', path: `/v1/rounds/${round.config.roundId}/aggregate`, token });
    expect(early.status).toBe(409);
    const closed = await api({ server, method: 'POST', path: `/v1/rounds/${round.config.roundId}/close`, token });
    expect(closed.status).toBe(200);
    expect(closed.body.state).toBe('finalized');

    const agg = await api({ server, method: 'GET', path: `/v1/rounds/${round.config.roundId}/aggregate`, token });
    expect(agg.status).toBe(200);
    const manifest = decodeContributionManifest({ bytes: fromBase64(agg.body.manifest) });
    expect(manifest.roundId).toBe('round-main');
    expect(manifest.entries.map((e) => e.robotId).sort()).toEqual(robots.map((r) => r.id).sort());
    expect(bytesToHex(manifest.aggregateSha256)).toBe(agg.body.aggregateSha256);

    const ct = await server.app.request(`/v1/rounds/${round.config.roundId}/aggregate/ciphertext`, { headers: { authorization: `Bearer ${token}` } });
    expect(ct.status).toBe(200);
    const aggregate = new Uint8Array(await ct.arrayBuffer());
    expect(bytesToHex(sha256(aggregate))).toBe(agg.body.aggregateSha256);

    const list = await api({ server, method: 'GET', path: `/v1/rounds/${round.config.roundId}/contributions`, token });
    let sum: Uint8Array | null = null;
    for (const entry of list.body) {
      const res = await server.app.request(`/v1/rounds/${round.config.roundId}/contributions/${entry.id}/package`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const robot = robots.find((r) => r.id === entry.robotId)!;
      const opened = openUpdatePackage({ bytes, robotPublicKey: robot.keys.publicKey });
      sum = sumCiphertextBlocks({ accumulator: sum, addend: opened.ciphertexts, parmsId: officer.record.parmsId });
    }
    expect(bytesToHex(sum!)).toBe(bytesToHex(aggregate));

    const late = await contribute(robots[0]!, round);
    expect(late.status).toBe(409);
  });

  it('finalizes a round on read once its deadline passed with quorum, closes it below quorum', async () => {
    const deadline = server.clock.now + 20 * 60_000;
    const r1 = await openRound({ roundId: 'round-deadline', quorum: 2, deadline });
    const r2 = await openRound({ roundId: 'round-starved', quorum: 3, deadline });
    expect(r1.res.status).toBe(201);
    expect(r2.res.status).toBe(201);
    for (const r of robots.slice(0, 2)) {
      expect((await contribute(r, r1)).status).toBe(201);
      expect((await contribute(r, r2)).status).toBe(201);
    }
    const closeEarly = await api({ server, method: 'POST', path: '/v1/rounds/round-starved/close', token });
    expect(closeEarly.status).toBe(409);
    expect(closeEarly.body.error.code).toBe('quorum_not_met');
    server.clock.now = deadline + 1;
    const late = await contribute(robots[2]!, r1);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe('round_closed');
    expect((await api({ server, method: 'GET', path: '/v1/rounds/round-deadline', token })).body.state).toBe('finalized');
    const listed = await api({ server, method: 'GET', path: `/v1/rounds?fleet=${fleet.id}&state=closed`, token });
    expect(listed.body.map((r: { roundId: string }) => r.roundId)).toEqual(['round-starved']);
    const robotView = await robotRequest({ server, robot: robots[0]!, method: 'GET', path: '/v1/rounds?state=finalized' });
    expect(robotView.body.map((r: { roundId: string }) => r.roundId).sort()).toEqual(['round-deadline', 'round-main']);
  });

  it('enforces the robot DP budget (403) and records the ledger', async () => {
    const dp = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, delta: 1e-5, epsilonBudget: 1 };
    const params = { ...dp, quorum: 2, dimension: 1000, scale: 64 };
    const one = privacySpent({ rounds: [params], delta: dp.delta }).epsilon;
    const two = privacySpent({ rounds: [params, params], delta: dp.delta }).epsilon;
    const budget = (one + two) / 2;
    const a = await openRound({ roundId: 'dp-1', quorum: 2, dp: { ...dp, epsilonBudget: budget } });
    const b = await openRound({ roundId: 'dp-2', quorum: 2, dp: { ...dp, epsilonBudget: budget } });
    expect(a.res.status).toBe(201);
    expect(b.res.status).toBe(201);
    const ok = await contribute(robots[0]!, a);
    expect(ok.status).toBe(201);
    expect(ok.body.epsilonAfter).toBeCloseTo(one, 6);
    const spent = await contribute(robots[0]!, b);
    expect(spent.status).toBe(403);
    expect(spent.body.error.code).toBe('dp_budget_exhausted');
    expect((await contribute(robots[1]!, b)).status).toBe(201);
    const ledger = await api({ server, method: 'GET', path: `/v1/dp/ledger?fleet=${fleet.id}`, token });
    expect(ledger.status).toBe(200);
    expect(ledger.body.entries.filter((e: { robotId: string }) => e.robotId === robots[0]!.id)).toHaveLength(1);
    expect(ledger.body.totals.find((t: { robotId: string }) => t.robotId === robots[0]!.id).epsilon).toBeCloseTo(one, 6);
  });

  it('enforces the fleet DP budget when a round opens (403)', async () => {
    const dp = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, delta: 1e-5, epsilonBudget: 100 };
    const params = { ...dp, quorum: 2, dimension: 1000, scale: 64 };
    const one = privacySpent({ rounds: [params], delta: dp.delta }).epsilon;
    const two = privacySpent({ rounds: [params, params], delta: dp.delta }).epsilon;
    const capped = await createFleet({ server, token, name: 'capped', dpEpsilonBudget: (one + two) / 2 });
    const first = await openRound({ fleetId: capped.id, roundId: 'cap-1', dp });
    expect(first.res.status).toBe(201);
    const second = await openRound({ fleetId: capped.id, roundId: 'cap-2', dp });
    expect(second.res.status).toBe(403);
    expect(second.res.body.error.code).toBe('dp_budget_exhausted');
  });

  it('publishes a release for a finalized round and serves it to the fleet', async () => {
    const payload = randomBytes(4096);
    const manifest = {
      releaseId: 'rel-1',
      orgId,
      fleetId: fleet.id,
      roundId: 'round-main',
      releaseVersion: 1,
      kind: 'release' as const,
      rollbackOf: 0,
      adapterSha256: randomBytes(32),
      payloadSha256: sha256(payload),
      canaryFraction: 0.1,
      createdAt: server.clock.now,
      wraps: [],
    };
    const signed = signReleaseManifest({ manifest, secretKey: officer.officer.secretKey, publicKey: officer.officer.publicKey });
    const wrongPayload = await api({ server, method: 'POST', path: '/v1/releases', token, body: { manifest: toBase64(signed), payload: toBase64(randomBytes(10)) } });
    expect(wrongPayload.status).toBe(400);
    const res = await api({ server, method: 'POST', path: '/v1/releases', token, body: { manifest: toBase64(signed), payload: toBase64(payload) } });
    expect(res.status).toBe(201);
    const skip = signReleaseManifest({ manifest: { ...manifest, releaseId: 'rel-3', releaseVersion: 3 }, secretKey: officer.officer.secretKey, publicKey: officer.officer.publicKey });
    expect((await api({ server, method: 'POST', path: '/v1/releases', token, body: { manifest: toBase64(skip), payload: toBase64(payload) } })).status).toBe(409);
    const open = signReleaseManifest({ manifest: { ...manifest, releaseId: 'rel-2', releaseVersion: 2, roundId: 'dp-2' }, secretKey: officer.officer.secretKey, publicKey: officer.officer.publicKey });
    expect((await api({ server, method: 'POST', path: '/v1/releases', token, body: { manifest: toBase64(open), payload: toBase64(payload) } })).status).toBe(409);

    const latest = await robotRequest({ server, robot: robots[0]!, method: 'GET', path: '/v1/releases/latest' });
    expect(latest.status).toBe(200);
    expect(latest.body.manifest).toBe(toBase64(signed));
    expect(latest.body.payload).toBe(toBase64(payload));
    const none = await robotRequest({ server, robot: stranger, method: 'GET', path: '/v1/releases/latest' });
    expect(none.status).toBe(404);
    const hidden = await robotRequest({ server, robot: stranger, method: 'GET', path: '/v1/releases/rel-1' });
    expect(hidden.status).toBe(404);
  });
});
