// Rate limits and replay protection from the attacker's side, with the state shared the way several
// server instances share it: two apps over one database file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createApp } from '../../server/app.ts';
import { closeDatabase, openDatabase, type Database } from '../../server/db/client.ts';
import { createFsBlobStore } from '../../server/blobs/fs-store.ts';
import { silentLogger } from '../../server/logger.ts';
import { serverAuditKeyFromSeed } from '../../server/audit/server-key.ts';
import { randomBytes } from '../../core/random.ts';
import { api, bootstrap, createFleet, createTestServer, enrollRobot, robotRequest, type TestServer } from '../../server/testing/harness.ts';

const PASSWORD = 'correct horse battery';

describe('rate limits and replay, shared across instances', () => {
  let a: TestServer;
  let b: TestServer;
  let dbB: Database;
  let admin: Awaited<ReturnType<typeof bootstrap>>;

  beforeAll(async () => {
    a = await createTestServer();
    // A second instance on the same database file, with its own clock object kept in step.
    dbB = await openDatabase({ url: `file:${join(a.dir, 'tensorguard.db')}` });
    const clock = a.clock;
    const app = createApp({ db: dbB, blobs: createFsBlobStore({ dir: join(a.dir, 'blobs') }), now: () => clock.now, logger: silentLogger, auditKey: serverAuditKeyFromSeed({ seed: randomBytes(32) }) });
    b = { ...a, app, db: dbB };
    admin = await bootstrap({ server: a, password: PASSWORD });
  });
  afterAll(async () => {
    closeDatabase({ db: dbB });
    await a.close();
  });

  it('allows 5 failed sign-ins per account per 15 minutes, counted across instances; then 429 with Retry-After', async () => {
    const attempt = (server: TestServer, password: string, headers: Record<string, string> = {}) =>
      api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password }, headers });
    for (let i = 0; i < 5; i++) expect((await attempt(i % 2 ? a : b, 'wrong')).status).toBe(401);
    const locked = await attempt(a, PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.body.error.code).toBe('throttled');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await attempt(b, PASSWORD)).status).toBe(429);
    a.clock.now += 15 * 60 * 1000;
    expect((await attempt(b, PASSWORD)).status).toBe(201);
  });

  it('limits failed sign-ins per address too, whatever account they try', async () => {
    a.clock.now += 15 * 60 * 1000;
    // In-process requests have no socket: they all share the address "unknown".
    for (let i = 0; i < 5; i++) expect((await api({ server: i % 2 ? a : b, method: 'POST', path: '/v1/sessions', body: { user: `guess-${i}`, password: 'x' } })).status).toBe(401);
    expect((await api({ server: a, method: 'POST', path: '/v1/sessions', body: { user: 'someone-else', password: 'x' } })).status).toBe(429);
    a.clock.now += 15 * 60 * 1000;
  });

  it('allows 100 requests a minute per user across instances, then 429 until the window ends', async () => {
    a.clock.now = Math.ceil(a.clock.now / 60_000) * 60_000 + 1;
    const token = (await api({ server: a, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: PASSWORD } })).body.token;
    const statuses = await Promise.all(Array.from({ length: 100 }, (_, i) => api({ server: i % 2 ? a : b, method: 'GET', path: '/v1/me', token }).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    const over = await api({ server: b, method: 'GET', path: '/v1/me', token });
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    a.clock.now += 60_000;
    expect((await api({ server: a, method: 'GET', path: '/v1/me', token })).status).toBe(200);
  });

  it('gives each robot its own budget and refuses a replayed nonce on either instance', async () => {
    a.clock.now += 60_000;
    const token = (await api({ server: a, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: PASSWORD } })).body.token;
    const fleet = await createFleet({ server: a, token, name: 'budget' });
    const robot = await enrollRobot({ server: a, token, fleetId: fleet.id });
    a.clock.now = Math.ceil(a.clock.now / 60_000) * 60_000 + 1;
    const nonce = 'ab'.repeat(16);
    expect((await robotRequest({ server: a, robot, method: 'GET', path: '/v1/robots/me', nonce })).status).toBe(200);
    const replayA = await robotRequest({ server: a, robot, method: 'GET', path: '/v1/robots/me', nonce });
    const replayB = await robotRequest({ server: b, robot, method: 'GET', path: '/v1/robots/me', nonce });
    expect([replayA.status, replayA.body.error.code]).toEqual([401, 'replay']);
    expect([replayB.status, replayB.body.error.code]).toEqual([401, 'replay']);
    // Concurrent copies of one request: exactly one is served.
    const twin = 'cd'.repeat(16);
    const twins = await Promise.all([0, 1, 2].map((i) => robotRequest({ server: i === 1 ? b : a, robot, method: 'GET', path: '/v1/robots/me', nonce: twin })));
    expect(twins.map((t) => t.status).sort()).toEqual([200, 401, 401]);
    // 600 signed requests a minute in all (replays that got past the in-memory set were signed requests
    // too and counted), then 429.
    const results = await Promise.all(Array.from({ length: 600 }, (_, i) => robotRequest({ server: i % 2 ? a : b, robot, method: 'GET', path: '/v1/robots/me' }).then((r) => r.status)));
    const served = results.filter((s) => s === 200).length;
    expect(results.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(served).toBeGreaterThanOrEqual(594);
    expect(served).toBeLessThanOrEqual(598);
    const over = await robotRequest({ server: a, robot, method: 'GET', path: '/v1/robots/me' });
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toMatch(/^\d+$/);
  }, 120_000);
});
