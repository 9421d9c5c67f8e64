// Robot safety sessions from the attacker's side (server/http/robot-session.ts): a session opened with
// one signed request, its key unwrapped only with the robot's ML-KEM secret key, then HMAC-authenticated
// validations. Forged MACs, another robot's session, replayed counters, expiry, revocation (in this
// process and via the status TTL), a robot of another fleet, another instance's session, oversize and
// malformed input are each refused with their code and change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { api, bootstrap, createFleet, createTestServer, robotRequest, type TestRobot, type TestServer } from '../testing/harness.ts';
import { createApp } from '../app.ts';
import { silentLogger } from '../logger.ts';
import { revokeRobot } from '../db/robots.ts';
import { saveHeartbeat } from '../db/cells.ts';
import { toBase64, fromBase64, bytesToHex } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { generateKemKeyPair, unwrapContentKey, type KemKeyPair } from '../../core/crypto/kem.ts';
import { SAFETY_SESSION_HEADERS, macSessionRequest, safetySessionContext } from '../../core/records/safety-session.ts';
import { DecryptionError } from '../../core/errors.ts';
import { BUDGET_FLUSH_MS, COUNTER_WINDOW, SESSION_TTL_MS, ROBOT_STATUS_TTL_MS, acceptCounter, counterWindow } from '../http/robot-session.ts';
import { SafetyClient } from '../../cli/lib/safety-client.ts';
import { onSafetyDecision, type SafetyDecisionEvent } from './safety.ts';
import { TWO_LINK_CELL, twoLinkPose } from '../../core/safety/test-cell.ts';

const CELL = TWO_LINK_CELL;
const pose = twoLinkPose;
const waypoints = [0, 0.5, 1].map((s) => ({ t: s, joints: [-0.8 + 0.6 * s, 0.5], links: pose(-0.8 + 0.6 * s, 0.5) }));
const REQUEST = { cellId: 'line-1', trajectory: { waypoints } };
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

interface KemRobot extends TestRobot {
  kem: KemKeyPair;
}
interface Session {
  robot: KemRobot;
  sessionId: string;
  key: Uint8Array;
  expiresAt: number;
  counter: number;
}

async function enrollWithKem(options: { server: TestServer; token: string; fleetId: string }): Promise<KemRobot> {
  const t = await api({ server: options.server, method: 'POST', path: `/v1/fleets/${options.fleetId}/enrollment-tokens`, token: options.token });
  const keys = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
  const kem = generateKemKeyPair();
  const res = await api({
    server: options.server,
    method: 'POST',
    path: '/v1/enroll',
    body: { token: t.body.token, name: `arm-${bytesToHex(randomBytes(3))}`, dsaPublicKey: toBase64(keys.publicKey), kemPublicKey: toBase64(kem.publicKey), attestation: toBase64(randomBytes(32)) },
  });
  expect(res.status).toBe(201);
  return { id: res.body.robotId, fleetId: res.body.fleetId, orgId: res.body.orgId, keys, kem };
}

async function openSession(server: TestServer, robot: KemRobot): Promise<Session> {
  const res = await robotRequest({ server, robot, method: 'POST', path: '/v1/safety/sessions' });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const key = unwrapContentKey({
    kemCiphertext: fromBase64(res.body.kemCiphertext),
    wrappedKey: fromBase64(res.body.wrappedKey),
    secretKey: robot.kem.secretKey,
    context: safetySessionContext({ sessionId: res.body.sessionId, robotId: robot.id, expiresAt: res.body.expiresAt }),
  });
  return { robot, sessionId: res.body.sessionId, key, expiresAt: res.body.expiresAt, counter: 0 };
}

/** A session request; `override` tampers with what is sent after the MAC was computed. */
async function send(options: {
  server: TestServer;
  session: Session;
  path?: string;
  body?: unknown;
  counter?: number;
  override?: Partial<Record<'robot' | 'session' | 'counter' | 'mac', string | undefined>> & { body?: Uint8Array };
}) {
  const { server, session } = options;
  const path = options.path ?? '/v1/safety/validate';
  const body = options.body instanceof Uint8Array ? options.body : enc(options.body ?? REQUEST);
  const counter = options.counter ?? ++session.counter;
  const mac = macSessionRequest({ key: session.key, sessionId: session.sessionId, method: 'POST', path, counter, body });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const fields = { robot: session.robot.id, session: session.sessionId, counter: String(counter), mac, ...options.override };
  for (const name of ['robot', 'session', 'counter', 'mac'] as const) if (fields[name] !== undefined) headers[SAFETY_SESSION_HEADERS[name]] = fields[name]!;
  const res = await server.app.request(path, { method: 'POST', headers, body: (options.override?.body ?? body) as Uint8Array<ArrayBuffer> });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

describe('robot safety sessions', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;
  let fleet: { id: string };
  let other: { id: string };
  let robot: KemRobot;
  let peer: KemRobot;
  let stranger: KemRobot;
  const events: SafetyDecisionEvent[] = [];
  let unsubscribe: () => void;

  const auditActions = async () => (await api({ server, method: 'GET', path: '/v1/audit?limit=1000', token: admin.token })).body.entries as Array<{ action: string; actor: { id: string }; details: Record<string, unknown> }>;

  beforeAll(async () => {
    server = await createTestServer();
    admin = await bootstrap({ server });
    fleet = await createFleet({ server, token: admin.token });
    other = await createFleet({ server, token: admin.token, name: 'other' });
    expect((await api({ server, method: 'PUT', path: `/v1/fleets/${fleet.id}/cells/line-1`, token: admin.token, body: CELL })).status).toBe(201);
    expect((await api({ server, method: 'PUT', path: `/v1/fleets/${other.id}/cells/other-cell`, token: admin.token, body: CELL })).status).toBe(201);
    robot = await enrollWithKem({ server, token: admin.token, fleetId: fleet.id });
    peer = await enrollWithKem({ server, token: admin.token, fleetId: fleet.id });
    stranger = await enrollWithKem({ server, token: admin.token, fleetId: other.id });
    unsubscribe = onSafetyDecision((e) => events.push(e));
  });
  afterAll(async () => {
    unsubscribe();
    await server.close();
  });

  it('opens with one signed request, audits the opening, and validates by MAC with the same checks and counting', async () => {
    const session = await openSession(server, robot);
    expect(session.sessionId).toMatch(/^ss1\.[0-9a-f]{16}\.[0-9a-f]{32}$/);
    expect(session.expiresAt).toBe(server.clock.now + SESSION_TTL_MS);
    const opened = (await auditActions()).filter((e) => e.action === 'robot.safety_session.open');
    expect(opened.at(-1)).toMatchObject({ actor: { id: robot.id }, details: { sessionId: session.sessionId, expiresAt: session.expiresAt } });
    expect(JSON.stringify(opened)).not.toContain(bytesToHex(session.key));

    // No heartbeat yet: denied and audited exactly like the signed form.
    const denied = await send({ server, session, body: { ...REQUEST, requestId: 'no-heartbeat' } });
    expect(denied.status).toBe(200);
    expect(denied.body.failed).toEqual(['emergency_stop']);
    expect((await auditActions()).some((e) => e.action === 'safety.deny' && e.details.requestId === 'no-heartbeat')).toBe(true);

    expect((await send({ server, session, path: '/v1/robots/me/heartbeat', body: { estop: 'armed' } })).status).toBe(200);
    const before = events.length;
    const ok = await send({ server, session });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ decision: 'approve', cellId: 'line-1', cellVersion: 1 });
    expect(events.slice(before)).toMatchObject([{ decision: 'approve', robotId: robot.id, fleetId: fleet.id }]);
    const batch = await send({ server, session, path: '/v1/safety/validate/batch', body: { requests: [REQUEST, REQUEST] } });
    expect(batch.body).toMatchObject({ approved: 2, denied: 0 });

    // The signed per-request form keeps working beside sessions.
    const signed = await robotRequest({ server, robot, method: 'POST', path: '/v1/safety/validate', body: enc(REQUEST), contentType: 'application/json' });
    expect(signed.body.decision).toBe('approve');
  });

  it('binds the wrapped key to the session id, robot and expiry, and to the robot\'s own KEM key', async () => {
    const res = await robotRequest({ server, robot, method: 'POST', path: '/v1/safety/sessions' });
    const unwrap = (secretKey: Uint8Array, expiresAt: number, robotId = robot.id) =>
      unwrapContentKey({ kemCiphertext: fromBase64(res.body.kemCiphertext), wrappedKey: fromBase64(res.body.wrappedKey), secretKey, context: safetySessionContext({ sessionId: res.body.sessionId, robotId, expiresAt }) });
    expect(unwrap(robot.kem.secretKey, res.body.expiresAt)).toHaveLength(32);
    expect(() => unwrap(robot.kem.secretKey, res.body.expiresAt + 1)).toThrow(DecryptionError);
    expect(() => unwrap(robot.kem.secretKey, res.body.expiresAt, peer.id)).toThrow(DecryptionError);
    expect(() => unwrap(peer.kem.secretKey, res.body.expiresAt)).toThrow(DecryptionError);
  });

  it('refuses forged MACs, a tampered body, path or counter, and a MAC under another robot\'s session', async () => {
    const session = await openSession(server, robot);
    const theirs = await openSession(server, peer);
    const auditBefore = (await auditActions()).length;
    const eventsBefore = events.length;
    const forged = await send({ server, session, override: { mac: bytesToHex(randomBytes(32)) } });
    expect(forged).toMatchObject({ status: 401, body: { error: { code: 'bad_mac' } } });
    const tampered = await send({ server, session, override: { body: enc({ ...REQUEST, payloadKg: 4 }) } });
    expect(tampered.body.error.code).toBe('bad_mac');
    const wrongCounter = await send({ server, session, counter: 50, override: { counter: '51' } });
    expect(wrongCounter.body.error.code).toBe('bad_mac');
    // A MAC computed for the batch route does not authenticate the single route.
    const mac = macSessionRequest({ key: session.key, sessionId: session.sessionId, method: 'POST', path: '/v1/safety/validate/batch', counter: 60, body: enc(REQUEST) });
    expect((await send({ server, session, counter: 60, override: { mac } })).body.error.code).toBe('bad_mac');
    // robot's key under peer's session id, claiming to be peer: the key is not peer's session key.
    const asPeer = await send({ server, session: { ...session, sessionId: theirs.sessionId }, override: { robot: peer.id } });
    expect(asPeer.body.error.code).toBe('bad_mac');
    // peer's valid session, but presented by robot: the session is not robot's.
    const stolenId = await send({ server, session: theirs, override: { robot: robot.id } });
    expect(stolenId).toMatchObject({ status: 401, body: { error: { code: 'bad_mac' } } });
    // None of these reached validation, the decision counter or the audit log beyond auth failures.
    expect(events.length).toBe(eventsBefore);
    const added = (await auditActions()).slice(auditBefore).map((e) => e.action);
    expect(added.every((a) => a === 'robot.auth_fail')).toBe(true);
    // The session still works for its owner afterwards (failed attempts do not consume counters).
    expect((await send({ server, session })).status).toBe(200);
  });

  it('accepts each counter once: replays and counters below the window are 401 `replay`', async () => {
    const session = await openSession(server, robot);
    expect((await send({ server, session, counter: 5 })).status).toBe(200);
    const replay = await send({ server, session, counter: 5 });
    expect(replay).toMatchObject({ status: 401, body: { error: { code: 'replay' } } });
    expect((await send({ server, session, counter: 3 })).status).toBe(200); // late, inside the window
    expect((await send({ server, session, counter: 3 })).body.error.code).toBe('replay');
    expect((await send({ server, session, counter: 2000 })).status).toBe(200);
    expect((await send({ server, session, counter: 2000 - COUNTER_WINDOW })).body.error.code).toBe('replay'); // outside
    expect((await send({ server, session, counter: 2001 - COUNTER_WINDOW })).status).toBe(200); // oldest inside
    expect((await send({ server, session, counter: 2001 - COUNTER_WINDOW })).body.error.code).toBe('replay');
    // The window logic alone (32 counters), against a reference that remembers every counter.
    const state = counterWindow({ size: 32 });
    const seen = new Set<number>();
    let highest = 0;
    const sequence = [1, 3, 2, 3, 40, 5, 9, 39, 40, 38, 8, 41, 100, 70, 69, 68, 69, 101, 99, 60, 133, 102, 101, 1000, 969, 968, 1000, 990];
    for (const c of sequence) {
      const want = !seen.has(c) && c > highest - 32;
      expect(acceptCounter(state, c), `counter ${c}`).toBe(want);
      if (want) {
        seen.add(c);
        highest = Math.max(highest, c);
      }
    }
  });

  it('refuses an expired session with `session_expired` and forgets it', async () => {
    const session = await openSession(server, robot);
    server.clock.now += SESSION_TTL_MS;
    try {
      expect((await send({ server, session })).body.error.code).toBe('session_expired');
      expect((await send({ server, session })).body.error.code).toBe('session_unknown');
    } finally {
      server.clock.now -= SESSION_TTL_MS;
    }
  });

  it('ends a revoked robot\'s sessions at once in this process, and within the status TTL when revoked elsewhere', async () => {
    const doomed = await enrollWithKem({ server, token: admin.token, fleetId: fleet.id });
    const session = await openSession(server, doomed);
    expect((await send({ server, session })).status).toBe(200);
    expect((await api({ server, method: 'DELETE', path: `/v1/robots/${doomed.id}`, token: admin.token })).status).toBe(204);
    const after = await send({ server, session });
    expect(after.status).toBe(401);
    expect(['session_unknown', 'unauthenticated']).toContain(after.body.error.code);
    expect((await robotRequest({ server, robot: doomed, method: 'POST', path: '/v1/safety/sessions' })).status).toBe(401);

    // Revoked directly in the database (another instance did it): refused once the cached status ages out.
    const elsewhere = await enrollWithKem({ server, token: admin.token, fleetId: fleet.id });
    const s2 = await openSession(server, elsewhere);
    expect((await send({ server, session: s2 })).status).toBe(200);
    await revokeRobot({ db: server.db, orgId: elsewhere.orgId, robotId: elsewhere.id, actor: { type: 'user', id: admin.user.id }, now: server.clock.now });
    server.clock.now += ROBOT_STATUS_TTL_MS;
    expect(await send({ server, session: s2 })).toMatchObject({ status: 401, body: { error: { code: 'unauthenticated' } } });
    expect((await send({ server, session: s2 })).body.error.code).toBe('session_unknown');
  });

  it('validates a robot only against its own fleet\'s cells', async () => {
    const session = await openSession(server, stranger);
    const res = await send({ server, session, body: { ...REQUEST, cellId: 'line-1' } });
    expect(res).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    // Its own cell works.
    expect((await send({ server, session, body: { ...REQUEST, cellId: 'other-cell' } })).status).toBe(200);
  });

  it('answers `session_unknown` for a session of another instance (same database)', async () => {
    const session = await openSession(server, robot);
    const second = { ...server, app: createApp({ db: server.db, blobs: server.blobs, now: () => server.clock.now, logger: silentLogger }) };
    const res = await send({ server: second, session });
    expect(res).toMatchObject({ status: 401, body: { error: { code: 'session_unknown' } } });
    expect(res.body.error.message).toContain('another server instance');
  });

  it('spends the robot\'s rate budget (shared with signed requests) and answers 429 past it', async () => {
    const limited = { ...server, app: createApp({ db: server.db, blobs: server.blobs, now: () => server.clock.now, logger: silentLogger, rateLimits: { robotPerMinute: 6 } }) };
    const fresh = await enrollWithKem({ server, token: admin.token, fleetId: fleet.id });
    // Start of a fresh window, so every hit below lands in the same one.
    const before = server.clock.now;
    server.clock.now = Math.ceil(server.clock.now / 60_000) * 60_000 + 1;
    try {
      const session = await openSession(limited, fresh); // hit 1 (signed)
      expect((await robotRequest({ server: limited, robot: fresh, method: 'GET', path: '/v1/robots/me' })).status).toBe(200); // hit 2 (signed)
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await send({ server: limited, session })).status);
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
      // Signed requests see the session hits in the shared counter once they are flushed.
      await new Promise((r) => setTimeout(r, BUDGET_FLUSH_MS + 200));
      expect((await robotRequest({ server: limited, robot: fresh, method: 'GET', path: '/v1/robots/me' })).status).toBe(429);
    } finally {
      server.clock.now = before + 60_000;
    }
  });

  it('reads heartbeats another instance stored: a read that can only deny is reused briefly, one that approves never', async () => {
    const arm = await enrollWithKem({ server, token: admin.token, fleetId: fleet.id });
    const session = await openSession(server, arm);
    expect((await send({ server, session })).body.failed).toEqual(['emergency_stop']); // no heartbeat anywhere
    const beat = (estop: 'armed' | 'engaged', previous: 'armed' | 'engaged' | null) =>
      saveHeartbeat({ db: server.db, orgId: arm.orgId, heartbeat: { robotId: arm.id, fleetId: fleet.id, estop, robotTime: null, receivedAt: server.clock.now }, previous });
    await beat('armed', null); // through another instance
    expect((await send({ server, session })).body.decision).toBe('deny'); // the miss is remembered (safe side)
    server.clock.now += 1000;
    expect((await send({ server, session })).body.decision).toBe('approve');
    await beat('engaged', 'armed'); // e-stop pressed, seen by another instance
    expect((await send({ server, session })).body.failed).toEqual(['emergency_stop']); // at once
  });

  it('refuses oversized bodies (413) and malformed headers or bodies (400 naming the field)', async () => {
    const session = await openSession(server, robot);
    const huge = new Uint8Array(512 * 1024 + 1).fill(0x20);
    expect((await send({ server, session, body: huge })).status).toBe(413);
    const cases: Array<[Partial<Record<'robot' | 'session' | 'counter' | 'mac', string | undefined>>, string]> = [
      [{ counter: '0' }, 'x-tg-counter'],
      [{ counter: '007' }, 'x-tg-counter'],
      [{ counter: '99999999999999999' }, 'x-tg-counter'],
      [{ counter: undefined }, 'x-tg-counter'],
      [{ mac: 'ABCD' }, 'x-tg-mac'],
      [{ mac: undefined }, 'x-tg-mac'],
      [{ session: 'ss1.nothex' }, 'x-tg-session'],
      [{ robot: undefined }, 'x-tg-robot'],
    ];
    for (const [override, field] of cases) {
      const res = await send({ server, session, override });
      expect(res, JSON.stringify(override)).toMatchObject({ status: 400, body: { error: { code: 'malformed', details: { field } } } });
    }
    const noTrajectory = await send({ server, session, body: { cellId: 'line-1' } });
    expect(noTrajectory).toMatchObject({ status: 400, body: { error: { code: 'malformed', details: { field: 'trajectory' } } } });
    const notJson = await send({ server, session, body: new TextEncoder().encode('{"cellId":') });
    expect(notJson).toMatchObject({ status: 400, body: { error: { code: 'malformed' } } });
    // Opening takes no body.
    const withBody = await robotRequest({ server, robot, method: 'POST', path: '/v1/safety/sessions', body: enc({ ttl: 1e9 }), contentType: 'application/json' });
    expect(withBody).toMatchObject({ status: 400, body: { error: { code: 'malformed', details: { field: 'ttl' } } } });
    // People cannot open robot sessions.
    expect((await api({ server, method: 'POST', path: '/v1/safety/sessions', token: admin.token })).status).toBe(403);
  });

  it('the robot client opens, renews after the server loses the session, and never reuses a counter', async () => {
    const http = serve({ fetch: server.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => http.once('listening', r));
    const port = (http.address() as AddressInfo).port;
    try {
      let clientAhead = 0;
      const client = new SafetyClient({ serverUrl: `http://127.0.0.1:${port}`, robotId: robot.id, dsaSecretKey: robot.keys.secretKey, kemSecretKey: robot.kem.secretKey, now: () => server.clock.now + clientAhead });
      expect(await client.heartbeat({ estop: 'armed' })).toMatchObject({ estop: 'armed' });
      // Concurrent calls share one opening and take distinct counters.
      const [a, b] = await Promise.all([client.validate<{ decision: string }>(REQUEST), client.validate<{ decision: string }>(REQUEST)]);
      expect([a.decision, b.decision]).toEqual(['approve', 'approve']);
      expect(client.opened).toBe(1);
      expect(client.session!.counter).toBe(3);
      // Within RENEW_BEFORE_MS of expiry (by the robot's clock) the client opens a new session first.
      clientAhead = SESSION_TTL_MS - 1000;
      expect((await client.validate<{ requestId: string }>({ ...REQUEST, requestId: 'renewed' })).requestId).toBe('renewed');
      expect(client.opened).toBe(2);
      clientAhead = 0;
      // A session the server does not know (another instance's id): 401 `session_unknown`, one re-open.
      client.session!.sessionId = `ss1.${'0'.repeat(16)}.${'0'.repeat(32)}`;
      expect((await client.validate<{ requestId: string }>({ ...REQUEST, requestId: 'reopened' })).requestId).toBe('reopened');
      expect(client.opened).toBe(3);
      expect(client.session!.counter).toBe(1);
      // Over the socket the Content-Length decides the 413 before any body is read.
      const big = await client.validate({ ...REQUEST, pad: 'x'.repeat(600 * 1024) }).catch((e: unknown) => e);
      expect(big).toMatchObject({ status: 413, code: 'oversize' });
    } finally {
      await new Promise((r) => http.close(r));
    }
  });
});
