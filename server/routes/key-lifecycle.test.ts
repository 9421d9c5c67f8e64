// HE key lifecycle and robot re-enrollment through the routes: rotation (new rounds pin the newest
// version, the round-to-key mapping is listed), officer-signed revocation (checked from the attacker's
// side), 409 `key_revoked` for round opens and contributions, and a revoked robot coming back as a new
// identity.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { keyRecordFingerprint, signKeyRecord, type HeKeyRecord } from '../../core/records/key-record.ts';
import { openRoundConfig, signRoundConfig, type RoundConfig } from '../../core/records/round-config.ts';
import { findKeyRevocation, signKeyRevocation, type KeyRevocation } from '../../core/records/revocation.ts';
import { PARAM_SET_ID } from '../../core/he/params.ts';
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

describe('HE key rotation and revocation', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;
  let officer: Awaited<ReturnType<typeof setupOfficer>>;
  let fleet: { id: string };
  let robots: TestRobot[];
  let v2: HeKeyRecord;
  let round1: { config: RoundConfig; bytes: Uint8Array };

  const openRound = (config: RoundConfig) =>
    api({ server, method: 'POST', path: '/v1/rounds', token: admin.token, body: { config: toBase64(signRoundConfig({ config, secretKey: officer.officer.secretKey, publicKey: officer.officer.publicKey })) } });
  const roundUnder = (record: HeKeyRecord) => {
    const { config } = makeRoundConfig({ officer: officer.officer, orgId: admin.org.id, fleetId: fleet.id, keyFingerprint: keyRecordFingerprint({ record }), now: server.clock.now });
    return { ...config, keyVersion: record.keyVersion };
  };
  const contribute = (robot: TestRobot, config: RoundConfig, parmsId: Uint8Array) => {
    const bytes = signRoundConfig({ config, secretKey: officer.officer.secretKey, publicKey: officer.officer.publicKey });
    const pkg = makePackage({ robot, config, configFingerprint: openRoundConfig({ bytes }).fingerprint, ciphertexts: fakeCiphertexts({ parmsId, count: 1 }) });
    return robotRequest({ server, robot, method: 'POST', path: `/v1/rounds/${config.roundId}/contributions`, body: pkg.bytes });
  };
  const revocationOf = (record: HeKeyRecord, over: Partial<KeyRevocation> = {}, signer = officer.officer) =>
    toBase64(
      signKeyRevocation({
        revocation: { orgId: admin.org.id, keyVersion: record.keyVersion, heKeyFingerprint: keyRecordFingerprint({ record }), reason: 'officer laptop stolen', revokedAt: server.clock.now, ...over },
        secretKey: signer.secretKey,
        publicKey: signer.publicKey,
      }),
    );

  beforeAll(async () => {
    server = await createTestServer();
    admin = await bootstrap({ server });
    officer = await setupOfficer({ server, token: admin.token, orgId: admin.org.id });
    fleet = await createFleet({ server, token: admin.token });
    robots = [await enrollRobot({ server, token: admin.token, fleetId: fleet.id }), await enrollRobot({ server, token: admin.token, fleetId: fleet.id })];
    round1 = { config: roundUnder(officer.record), bytes: new Uint8Array() };
    expect((await openRound(round1.config)).status).toBe(201);
  });
  afterAll(() => server.close());

  it('rotates: version 2 becomes current, new rounds must pin it, old rounds keep theirs', async () => {
    v2 = { ...officer.record, keyVersion: 2, parmsId: randomBytes(32), publicKey: randomBytes(1024) };
    const signed = signKeyRecord({ record: v2, secretKey: officer.officer.secretKey, publicKey: officer.officer.publicKey });
    expect((await api({ server, method: 'POST', path: '/v1/he-keys', token: admin.token, body: { record: toBase64(signed) } })).status).toBe(201);
    const stale = await openRound(roundUnder(officer.record));
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('stale_key_version');
    const r2 = roundUnder(v2);
    expect((await openRound(r2)).status).toBe(201);
    // A round opened under v1 still takes contributions under v1.
    expect((await contribute(robots[0]!, round1.config, officer.record.parmsId)).status).toBe(201);

    const list = await api({ server, method: 'GET', path: '/v1/he-keys', token: admin.token });
    expect(list.status).toBe(200);
    expect(list.body.map((k: { version: number }) => k.version)).toEqual([1, 2]);
    expect(list.body[0].rounds.map((r: { roundId: string }) => r.roundId)).toEqual([round1.config.roundId]);
    expect(list.body[1].rounds.map((r: { roundId: string }) => r.roundId)).toEqual([r2.roundId]);
    expect(list.body[0].revoked).toBeNull();
    expect((await robotRequest({ server, robot: robots[0]!, method: 'GET', path: '/v1/he-keys' })).status).toBe(403);
  });

  it('refuses revocations that are forged, mismatched or for another organization', async () => {
    const mallory = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
    const post = (version: number, record: string) => api({ server, method: 'POST', path: `/v1/he-keys/${version}/revoke`, token: admin.token, body: { record } });
    const forged = await post(1, revocationOf(officer.record, {}, mallory));
    expect([forged.status, forged.body.error.code]).toEqual([401, 'untrusted_signer']);
    expect((await post(2, revocationOf(officer.record))).body.error.code).toBe('integrity'); // path names v2, record v1
    expect((await post(1, revocationOf(officer.record, { heKeyFingerprint: randomBytes(32) }))).body.error.code).toBe('integrity');
    expect((await post(1, revocationOf(officer.record, { orgId: 'org_other' }))).body.error.code).toBe('integrity');
    expect((await post(9, revocationOf({ ...officer.record, keyVersion: 9 }))).status).toBe(404);
    expect((await post(1, 'AAAA')).status).toBe(400);
    const notOfficer = await api({ server, method: 'POST', path: '/v1/users', token: admin.token, body: { user: 'aud', password: 'auditor password', roles: ['auditor'] } });
    expect(notOfficer.status).toBe(201);
    const aud = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'aud', password: 'auditor password' } })).body.token;
    expect((await api({ server, method: 'POST', path: '/v1/he-keys/1/revoke', token: aud, body: { record: revocationOf(officer.record) } })).status).toBe(403);
  });

  it('revokes version 1: contributions to its rounds are refused with 409 key_revoked', async () => {
    const res = await api({ server, method: 'POST', path: '/v1/he-keys/1/revoke', token: admin.token, body: { record: revocationOf(officer.record) } });
    expect(res.status).toBe(201);
    const again = await api({ server, method: 'POST', path: '/v1/he-keys/1/revoke', token: admin.token, body: { record: revocationOf(officer.record) } });
    expect([again.status, again.body.error.code]).toEqual([409, 'key_already_revoked']);
    const refused = await contribute(robots[1]!, round1.config, officer.record.parmsId);
    expect([refused.status, refused.body.error.code]).toEqual([409, 'key_revoked']);
    expect((await api({ server, method: 'GET', path: '/v1/he-keys/1', token: admin.token })).body.revokedAt).toBe(server.clock.now);
    const list = (await api({ server, method: 'GET', path: '/v1/he-keys', token: admin.token })).body;
    expect(list[0].revoked).toMatchObject({ reason: 'officer laptop stolen' });
  });

  it('serves revocations to robots, who believe only those signed by their pinned officer key', async () => {
    const res = await robotRequest({ server, robot: robots[0]!, method: 'GET', path: '/v1/he-keys/revocations' });
    expect(res.status).toBe(200);
    const records = (res.body as Array<{ record: string; version: number }>).map((r) => fromBase64(r.record));
    const base = { revocations: records, orgId: admin.org.id, keyVersion: 1, heKeyFingerprint: keyRecordFingerprint({ record: officer.record }) };
    expect(findKeyRevocation({ ...base, trustedKeys: [officer.officer.publicKey] })?.reason).toBe('officer laptop stolen');
    expect(findKeyRevocation({ ...base, trustedKeys: [generateSigningKeyPair({ algorithm: 'ml-dsa-65' }).publicKey] })).toBeNull();
  });

  it('refuses to open a round under a revoked current key until the officer rotates', async () => {
    expect((await api({ server, method: 'POST', path: '/v1/he-keys/2/revoke', token: admin.token, body: { record: revocationOf(v2) } })).status).toBe(201);
    const res = await openRound(roundUnder(v2));
    expect([res.status, res.body.error.code]).toEqual([409, 'key_revoked']);
    const v3 = { ...v2, keyVersion: 3, parmsId: randomBytes(32) };
    const signed = signKeyRecord({ record: v3, secretKey: officer.officer.secretKey, publicKey: officer.officer.publicKey });
    expect((await api({ server, method: 'POST', path: '/v1/he-keys', token: admin.token, body: { record: toBase64(signed) } })).status).toBe(201);
    expect((await openRound(roundUnder(v3))).status).toBe(201);
  });

  it('records every step in the audit log', async () => {
    const entries = (await api({ server, method: 'GET', path: '/v1/audit?limit=1000', token: admin.token })).body.entries as Array<{ action: string; target: string }>;
    expect(entries.filter((e) => e.action === 'he_key.add').map((e) => e.target)).toEqual(['v1', 'v2', 'v3']);
    expect(entries.filter((e) => e.action === 'he_key.revoke').map((e) => e.target)).toEqual(['v1', 'v2']);
  });
});

describe('robot revocation and re-enrollment', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;
  let fleet: { id: string };

  beforeAll(async () => {
    server = await createTestServer();
    admin = await bootstrap({ server });
    fleet = await createFleet({ server, token: admin.token });
  });
  afterAll(() => server.close());

  it('a revoked robot is refused everywhere and comes back only as a new identity with a new bundle', async () => {
    const old = await enrollRobot({ server, token: admin.token, fleetId: fleet.id, name: 'arm-7' });
    expect((await robotRequest({ server, robot: old, method: 'GET', path: '/v1/robots/me' })).status).toBe(200);
    expect((await api({ server, method: 'DELETE', path: `/v1/robots/${old.id}`, token: admin.token })).status).toBe(204);
    for (const [method, path] of [['GET', '/v1/robots/me'], ['GET', '/v1/he-keys/revocations'], ['GET', `/v1/rounds?fleet=${fleet.id}`], ['POST', '/v1/rounds/any/contributions']] as const) {
      const res = await robotRequest({ server, robot: old, method, path, body: method === 'POST' ? new Uint8Array([1]) : undefined });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.body.error.code).toBe('unauthenticated');
    }
    // Re-enrollment: a new one-time token, new keys, a new robot id; the old id stays revoked.
    const again = await enrollRobot({ server, token: admin.token, fleetId: fleet.id, name: 'arm-7' });
    expect(again.id).not.toBe(old.id);
    expect((await robotRequest({ server, robot: again, method: 'GET', path: '/v1/robots/me' })).status).toBe(200);
    expect((await robotRequest({ server, robot: old, method: 'GET', path: '/v1/robots/me' })).status).toBe(401);
    // The old keys cannot impersonate the new identity.
    expect((await robotRequest({ server, robot: { ...again, keys: old.keys }, method: 'GET', path: '/v1/robots/me' })).status).toBe(401);
    const listed = (await api({ server, method: 'GET', path: `/v1/robots?fleet=${fleet.id}`, token: admin.token })).body as Array<{ id: string; revokedAt: number | null }>;
    expect(listed.find((r) => r.id === old.id)?.revokedAt).not.toBeNull();
    expect(listed.find((r) => r.id === again.id)?.revokedAt).toBeNull();
    const actions = ((await api({ server, method: 'GET', path: '/v1/audit?limit=1000', token: admin.token })).body.entries as Array<{ action: string; target: string }>).map((e) => `${e.action} ${e.target}`);
    expect(actions).toContain(`robot.revoke ${old.id}`);
    expect(actions).toContain(`robot.enroll ${again.id}`);
  });
});
