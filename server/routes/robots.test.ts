// Robot enrollment and request signatures: one-time tokens, tampered body, replayed nonce, stale timestamp, revocation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBase64 } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { generateKemKeyPair } from '../../core/crypto/kem.ts';
import { api, bootstrap, createFleet, createTestServer, enrollRobot, robotRequest, type TestRobot, type TestServer } from '../testing/harness.ts';

describe('robots', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;
  let fleet: { id: string };
  let robot: TestRobot;

  beforeAll(async () => {
    server = await createTestServer();
    admin = await bootstrap({ server });
    fleet = await createFleet({ server, token: admin.token });
    robot = await enrollRobot({ server, token: admin.token, fleetId: fleet.id, name: 'arm-1' });
  });
  afterAll(() => server.close());

  function enrollBody(token: string) {
    return {
      token,
      name: 'arm-x',
      dsaPublicKey: toBase64(generateSigningKeyPair({ algorithm: 'ml-dsa-44' }).publicKey),
      kemPublicKey: toBase64(generateKemKeyPair().publicKey),
      attestation: toBase64(randomBytes(32)),
    };
  }

  it('consumes an enrollment token exactly once, even under a race', async () => {
    const t = await api({ server, method: 'POST', path: `/v1/fleets/${fleet.id}/enrollment-tokens`, token: admin.token });
    expect(t.status).toBe(201);
    expect(t.body.tokenId).toMatch(/^enr_/);
    const body = enrollBody(t.body.token);
    const results = await Promise.all([1, 2, 3].map(() => api({ server, method: 'POST', path: '/v1/enroll', body })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 401, 401]);
    const again = await api({ server, method: 'POST', path: '/v1/enroll', body });
    expect(again.status).toBe(401);
  });

  it('refuses a wrong secret and an expired token', async () => {
    const t = await api({ server, method: 'POST', path: `/v1/fleets/${fleet.id}/enrollment-tokens`, token: admin.token });
    const wrong = `${t.body.tokenId}.${'A'.repeat(43)}`;
    expect((await api({ server, method: 'POST', path: '/v1/enroll', body: enrollBody(wrong) })).status).toBe(401);
    const saved = server.clock.now;
    server.clock.now = t.body.expiresAt + 1;
    try {
      expect((await api({ server, method: 'POST', path: '/v1/enroll', body: enrollBody(t.body.token) })).status).toBe(401);
    } finally {
      server.clock.now = saved;
    }
    // The wrong secret did not burn the token.
    expect((await api({ server, method: 'POST', path: '/v1/enroll', body: enrollBody(t.body.token) })).status).toBe(201);
  });

  it('serves GET /robots/me to a correctly signed request', async () => {
    const res = await robotRequest({ server, robot, method: 'GET', path: '/v1/robots/me' });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(robot.id);
    expect(res.body.fleetId).toBe(fleet.id);
    const people = await api({ server, method: 'GET', path: `/v1/robots?fleet=${fleet.id}`, token: admin.token });
    expect(people.body.some((r: { id: string }) => r.id === robot.id)).toBe(true);
  });

  it('refuses a tampered body with 401', async () => {
    const res = await robotRequest({
      server,
      robot,
      method: 'POST',
      path: '/v1/rounds/none/contributions',
      body: new Uint8Array([1, 2, 3]),
      tamper: { body: new Uint8Array([1, 2, 4]) },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('bad_signature');
  });

  it('refuses a replayed nonce with 401 replay', async () => {
    const nonce = Buffer.from(randomBytes(16)).toString('hex');
    const first = await robotRequest({ server, robot, method: 'GET', path: '/v1/robots/me', nonce });
    expect(first.status).toBe(200);
    const replay = await robotRequest({ server, robot, method: 'GET', path: '/v1/robots/me', nonce });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('replay');
  });

  it('refuses a stale or future timestamp with 401', async () => {
    const stale = await robotRequest({ server, robot, method: 'GET', path: '/v1/robots/me', timestamp: server.clock.now - 5 * 60_000 - 1000 });
    expect(stale.status).toBe(401);
    expect(stale.body.error.code).toBe('replay');
    const future = await robotRequest({ server, robot, method: 'GET', path: '/v1/robots/me', timestamp: server.clock.now + 6 * 60_000 });
    expect(future.status).toBe(401);
  });

  it('refuses a request signed for another path, and an unknown robot', async () => {
    const keys = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
    const ghost = await robotRequest({ server, robot: { ...robot, id: 'rbt_000000000000000000000000', keys }, method: 'GET', path: '/v1/robots/me' });
    expect(ghost.status).toBe(401);
    const otherKey = await robotRequest({ server, robot: { ...robot, keys }, method: 'GET', path: '/v1/robots/me' });
    expect(otherKey.status).toBe(401);
  });

  it('refuses a revoked robot with 401', async () => {
    const r2 = await enrollRobot({ server, token: admin.token, fleetId: fleet.id, name: 'arm-revoked' });
    expect((await robotRequest({ server, robot: r2, method: 'GET', path: '/v1/robots/me' })).status).toBe(200);
    expect((await api({ server, method: 'DELETE', path: `/v1/robots/${r2.id}`, token: admin.token })).status).toBe(204);
    expect((await robotRequest({ server, robot: r2, method: 'GET', path: '/v1/robots/me' })).status).toBe(401);
  });

  it('keeps robots off people routes and people off robot routes', async () => {
    expect((await robotRequest({ server, robot, method: 'GET', path: '/v1/users' })).status).toBe(403);
    expect((await api({ server, method: 'GET', path: '/v1/robots/me', token: admin.token })).status).toBe(403);
  });
});
