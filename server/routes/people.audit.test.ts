// People changes and their audit leaves, exactly: user creation, sign-in, role change, disable/enable,
// password change, failed sign-in lockout, sign-out and re-authentication each append the expected leaf
// (actor, target, details with old and new roles), and role change / disable / password change end the
// target's sessions (the old token answers 401). Then the attacker's side: a non-admin cannot change
// roles, an admin of another organization gets 404 for this organization's user ids, nobody removes the
// last active admin (409 `last_admin`, also when two admins demote each other at once), and an expired,
// foreign-session or replayed re-authentication does not unlock a sensitive action.
//
// Denials (access.denied, session.fail, denial.suppressed) are written in the background by
// server/audit/denials.ts, so the exact comparisons look only at the leaves of the changes themselves.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, asc, eq, gt } from 'drizzle-orm';
import { api, bootstrap, createTestServer, type ApiResponse, type TestServer } from '../testing/harness.ts';
import { auditLog, organizations, users } from '../db/schema.ts';
import { hashPassword } from '../auth/password.ts';
import { newId } from '../auth/tokens.ts';
import { REAUTH_WINDOW_MS } from '../http/auth.ts';
import { DEFAULT_RATE_LIMITS } from '../http/rate-limit.ts';
import { updateUser } from '../db/session-security.ts';
import { createApp } from '../app.ts';
import { closeDatabase, openDatabase } from '../db/client.ts';
import { createFsBlobStore } from '../blobs/fs-store.ts';
import { silentLogger } from '../logger.ts';
import { checkServerConfig } from '../config.ts';

const PASSWORD = 'correct horse battery';
const DENIALS = new Set(['access.denied', 'session.fail', 'denial.suppressed']);

interface Leaf {
  actorType: string;
  actorId: string;
  action: string;
  target: string;
  details: Record<string, unknown>;
}

const sessionIdOf = (token: string) => token.split('.')[0]!;

describe('people: audit leaves and session revocation', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;
  let marks = new Map<string, number>();

  const call = (options: { method: string; path: string; token?: string; body?: unknown; headers?: Record<string, string> }) => api({ server, ...options });
  const signIn = (user: string, password = PASSWORD) => call({ method: 'POST', path: '/v1/sessions', body: { user, password } });
  const me = async (token: string) => (await call({ method: 'GET', path: '/v1/me', token })).status;
  const patchUser = (token: string, id: string, body: unknown) => call({ method: 'PATCH', path: `/v1/users/${id}`, token, body });

  /** The change leaves of org A appended since the last call (denials left out, see the header). */
  async function newLeaves(orgId = admin.org.id): Promise<Leaf[]> {
    const rows = await server.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.orgId, orgId), gt(auditLog.seq, marks.get(orgId) ?? 0)))
      .orderBy(asc(auditLog.seq))
      .all();
    if (rows.length > 0) marks.set(orgId, rows[rows.length - 1]!.seq);
    return rows
      .filter((r) => !DENIALS.has(r.action))
      .map((r) => ({ actorType: r.actorType, actorId: r.actorId, action: r.action, target: r.target, details: JSON.parse(r.details) as Record<string, unknown> }));
  }

  async function addUser(name: string, roles: string[]): Promise<string> {
    const res = await call({ method: 'POST', path: '/v1/users', token: admin.token, body: { user: name, password: PASSWORD, roles } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.id as string;
  }

  async function tokenOf(res: Promise<ApiResponse>): Promise<string> {
    const r = await res;
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.token as string;
  }

  async function rolesOf(userId: string): Promise<{ roles: string[]; disabledAt: number | null }> {
    const row = await server.db.select().from(users).where(eq(users.id, userId)).get();
    return { roles: row!.roles, disabledAt: row!.disabledAt };
  }

  beforeEach(async () => {
    server = await createTestServer();
    marks = new Map();
    admin = await bootstrap({ server, password: PASSWORD });
    await newLeaves();
  });
  afterEach(async () => {
    await server.close();
  });

  it('creation, sign-in, role change, no-op, disable, enable: exact leaves, and the old tokens end', async () => {
    const bobId = await addUser('bob', ['officer']);
    expect(await newLeaves()).toEqual([{ actorType: 'user', actorId: admin.user.id, action: 'user.create', target: bobId, details: { name: 'bob', roles: ['officer'] } }]);

    const bob1 = await tokenOf(signIn('bob'));
    const bob2 = await tokenOf(signIn('bob'));
    const expiresAt = server.clock.now + 12 * 60 * 60 * 1000;
    expect(await newLeaves()).toEqual(
      [bob1, bob2].map((t) => ({ actorType: 'user', actorId: bobId, action: 'session.create', target: sessionIdOf(t), details: { userId: bobId, reason: 'signin', expiresAt } })),
    );

    const changed = await patchUser(admin.token, bobId, { roles: ['auditor', 'operator'] });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ id: bobId, roles: ['auditor', 'operator'], disabled: false, revokedSessions: 2 });
    expect(await newLeaves()).toEqual([
      { actorType: 'user', actorId: admin.user.id, action: 'user.roles', target: bobId, details: { name: 'bob', oldRoles: ['officer'], newRoles: ['auditor', 'operator'], revokedSessions: 2 } },
    ]);
    expect(await me(bob1)).toBe(401);
    expect(await me(bob2)).toBe(401);

    // The same roles in another order: no change, nothing revoked, nothing audited.
    const bob3 = await tokenOf(signIn('bob'));
    await newLeaves();
    const same = await patchUser(admin.token, bobId, { roles: ['operator', 'auditor', 'operator'] });
    expect(same.body).toMatchObject({ roles: ['auditor', 'operator'], revokedSessions: 0 });
    expect(await newLeaves()).toEqual([]);
    expect(await me(bob3)).toBe(200);

    expect((await patchUser(admin.token, bobId, { disabled: true })).body).toMatchObject({ disabled: true, revokedSessions: 1 });
    expect(await newLeaves()).toEqual([{ actorType: 'user', actorId: admin.user.id, action: 'user.disable', target: bobId, details: { name: 'bob', revokedSessions: 1 } }]);
    expect(await me(bob3)).toBe(401);
    expect((await signIn('bob')).status).toBe(401);
    const listed = await call({ method: 'GET', path: '/v1/users', token: admin.token });
    expect(listed.body.find((u: { id: string }) => u.id === bobId)).toMatchObject({ name: 'bob', roles: ['auditor', 'operator'], disabled: true, disabledAt: server.clock.now });

    expect((await patchUser(admin.token, bobId, { disabled: false })).body).toMatchObject({ disabled: false, revokedSessions: 0 });
    expect(await newLeaves()).toEqual([{ actorType: 'user', actorId: admin.user.id, action: 'user.enable', target: bobId, details: { name: 'bob', revokedSessions: 0 } }]);
    const bob4 = await tokenOf(signIn('bob'));
    await newLeaves();

    // Both at once: roles first (ending the session), then the disable.
    expect((await patchUser(admin.token, bobId, { roles: ['officer'], disabled: true })).body).toMatchObject({ roles: ['officer'], disabled: true, revokedSessions: 1 });
    expect(await newLeaves()).toEqual([
      { actorType: 'user', actorId: admin.user.id, action: 'user.roles', target: bobId, details: { name: 'bob', oldRoles: ['auditor', 'operator'], newRoles: ['officer'], revokedSessions: 1 } },
      { actorType: 'user', actorId: admin.user.id, action: 'user.disable', target: bobId, details: { name: 'bob', revokedSessions: 0 } },
    ]);
    expect(await me(bob4)).toBe(401);
  });

  it('password change, re-authentication, sign-out: exact leaves; the old tokens end', async () => {
    const bobId = await addUser('bob', ['officer']);
    const bob1 = await tokenOf(signIn('bob'));
    const bob2 = await tokenOf(signIn('bob'));
    await newLeaves();

    const wrong = await call({ method: 'POST', path: '/v1/users/me/password', token: bob1, body: { currentPassword: 'not my password', newPassword: 'a brand new password' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('wrong_password');
    expect(await newLeaves()).toEqual([{ actorType: 'user', actorId: bobId, action: 'session.reauth_fail', target: sessionIdOf(bob1), details: { userId: bobId, purpose: 'password_change' } }]);
    expect(await me(bob1)).toBe(200); // a wrong password does not end the session

    const changed = await call({ method: 'POST', path: '/v1/users/me/password', token: bob1, body: { currentPassword: PASSWORD, newPassword: 'a brand new password' } });
    expect(changed.status).toBe(200);
    expect(changed.body.revokedSessions).toBe(2);
    const bob3 = changed.body.token as string;
    expect(await newLeaves()).toEqual([
      { actorType: 'user', actorId: bobId, action: 'user.password', target: bobId, details: { revokedSessions: 2 } },
      { actorType: 'user', actorId: bobId, action: 'session.create', target: sessionIdOf(bob3), details: { userId: bobId, reason: 'password_change', expiresAt: changed.body.expiresAt } },
    ]);
    expect(await me(bob1)).toBe(401);
    expect(await me(bob2)).toBe(401);
    expect(await me(bob3)).toBe(200);

    const badReauth = await call({ method: 'POST', path: '/v1/sessions/reauth', token: bob3, body: { password: PASSWORD } }); // the old password
    expect(badReauth.status).toBe(401);
    expect(badReauth.body.error.code).toBe('wrong_password');
    const reauth = await call({ method: 'POST', path: '/v1/sessions/reauth', token: bob3, body: { password: 'a brand new password' } });
    expect(reauth.status).toBe(200);
    expect(reauth.body).toEqual({ reauthAt: server.clock.now });
    expect(await newLeaves()).toEqual([
      { actorType: 'user', actorId: bobId, action: 'session.reauth_fail', target: sessionIdOf(bob3), details: { userId: bobId, purpose: 'reauth' } },
      { actorType: 'user', actorId: bobId, action: 'session.reauth', target: sessionIdOf(bob3), details: { userId: bobId } },
    ]);

    const out = await call({ method: 'DELETE', path: '/v1/sessions/current', token: bob3 });
    expect(out.status).toBe(204);
    expect(await newLeaves()).toEqual([{ actorType: 'user', actorId: bobId, action: 'session.delete', target: sessionIdOf(bob3), details: { userId: bobId, reason: 'signout' } }]);
    expect(await me(bob3)).toBe(401);
    // Signing out twice, or re-authenticating on the ended session (a replay), changes and records nothing.
    expect((await call({ method: 'DELETE', path: '/v1/sessions/current', token: bob3 })).status).toBe(401);
    const replay = await call({ method: 'POST', path: '/v1/sessions/reauth', token: bob3, body: { password: 'a brand new password' } });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('unauthenticated');
    expect(await newLeaves()).toEqual([]);
  });

  it('locks an account after the allowed failed sign-ins and audits the lockout once; re-auth failures count too', async () => {
    const bobId = await addUser('bob', ['officer']);
    await newLeaves();
    const limit = DEFAULT_RATE_LIMITS.signinFailures;
    const windowMs = DEFAULT_RATE_LIMITS.signinWindowMs;
    const lockedUntil = Math.floor(server.clock.now / windowMs) * windowMs + windowMs;
    for (let i = 1; i < limit; i++) expect((await signIn('bob', `guess number ${i}`)).status).toBe(401);
    expect(await newLeaves()).toEqual([]); // failures before the lockout are denials only
    expect((await signIn('bob', 'last guess')).status).toBe(401);
    const lockout = { actorType: 'system', actorId: 'signin-limiter', action: 'user.lockout', target: bobId, details: { failures: limit, lockedUntil } };
    expect(await newLeaves()).toEqual([lockout]);
    const locked = await signIn('bob'); // even the right password, until the window ends
    expect(locked.status).toBe(429);
    expect(locked.body.error.code).toBe('throttled');
    expect(await newLeaves()).toEqual([]);
    // The failed sign-ins are audited as (bounded) denials in the background.
    await expect.poll(async () => (await server.db.select().from(auditLog).where(and(eq(auditLog.orgId, admin.org.id), eq(auditLog.action, 'session.fail'))).all()).length).toBeGreaterThan(0);

    // Wrong passwords on a signed-in session count against the same account budget.
    server.clock.now = lockedUntil + 1;
    expect((await call({ method: 'POST', path: '/v1/sessions/reauth', token: admin.token, body: { password: PASSWORD } })).status).toBe(200);
    const carolId = await addUser('carol', ['auditor']);
    const carol = await tokenOf(signIn('carol'));
    await newLeaves();
    for (let i = 1; i <= limit; i++) {
      const r = await call({ method: 'POST', path: '/v1/sessions/reauth', token: carol, body: { password: `guess ${i}` } });
      expect(r.status).toBe(401);
    }
    const leaves = await newLeaves();
    expect(leaves.filter((l) => l.action === 'session.reauth_fail')).toHaveLength(limit);
    expect(leaves.at(-1)).toEqual({ actorType: 'system', actorId: 'signin-limiter', action: 'user.lockout', target: carolId, details: { failures: limit, lockedUntil: lockedUntil + windowMs } });
    expect((await call({ method: 'POST', path: '/v1/sessions/reauth', token: carol, body: { password: PASSWORD } })).status).toBe(429);
    expect((await signIn('carol')).status).toBe(429);
  });

  it('a non-admin cannot change roles, disable or create users (403), and nothing changes', async () => {
    const bobId = await addUser('bob', ['officer']);
    const carolId = await addUser('carol', ['auditor']);
    const bob = await tokenOf(signIn('bob'));
    const carol = await tokenOf(signIn('carol'));
    await newLeaves();
    const attempts = [
      () => patchUser(bob, bobId, { roles: ['admin', 'officer'] }), // self-promotion
      () => patchUser(bob, carolId, { roles: ['officer'] }),
      () => patchUser(bob, carolId, { disabled: true }),
      () => patchUser(bob, admin.user.id, { roles: ['auditor'] }),
      () => call({ method: 'POST', path: '/v1/users', token: bob, body: { user: 'mallory', password: PASSWORD, roles: ['admin'] } }),
      () => call({ method: 'GET', path: '/v1/users', token: bob }),
    ];
    for (const attempt of attempts) {
      const res = await attempt();
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
    expect(await newLeaves()).toEqual([]);
    expect(await rolesOf(bobId)).toEqual({ roles: ['officer'], disabledAt: null });
    expect(await rolesOf(carolId)).toEqual({ roles: ['auditor'], disabledAt: null });
    expect(await rolesOf(admin.user.id)).toEqual({ roles: ['admin', 'officer'], disabledAt: null });
    expect(await me(carol)).toBe(200);
    expect(await me(admin.token)).toBe(200);
    // The refusals are audited as denials of the caller.
    await expect
      .poll(async () => (await server.db.select().from(auditLog).where(and(eq(auditLog.action, 'access.denied'), eq(auditLog.actorId, bobId))).all()).length)
      .toBeGreaterThan(0);
  });

  it("an admin of another organization gets 404 for this organization's user ids, and nothing changes", async () => {
    const bobId = await addUser('bob', ['officer']);
    const bob = await tokenOf(signIn('bob'));
    const orgB = newId({ prefix: 'org' });
    await server.db.insert(organizations).values({ id: orgB, name: 'Other Corp', createdAt: server.clock.now }).run();
    const eveId = newId({ prefix: 'usr' });
    await server.db.insert(users).values({ id: eveId, orgId: orgB, name: 'eve', passwordHash: await hashPassword({ password: PASSWORD }), roles: ['admin'], createdAt: server.clock.now }).run();
    const eve = await tokenOf(signIn('eve'));
    await newLeaves();

    for (const [id, body] of [
      [bobId, { roles: ['admin'] }],
      [bobId, { disabled: true }],
      [admin.user.id, { roles: ['auditor'] }],
    ] as const) {
      const res = await patchUser(eve, id, body);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    const list = await call({ method: 'GET', path: '/v1/users', token: eve });
    expect(list.body.map((u: { name: string }) => u.name)).toEqual(['eve']);
    expect(await newLeaves()).toEqual([]);
    expect(await newLeaves(orgB)).toEqual([{ actorType: 'user', actorId: eveId, action: 'session.create', target: sessionIdOf(eve), details: expect.objectContaining({ reason: 'signin' }) }]);
    expect(await rolesOf(bobId)).toEqual({ roles: ['officer'], disabledAt: null });
    expect(await me(bob)).toBe(200); // not revoked
  });

  it('nobody removes the last active admin (409 last_admin); an admin may step down while another remains', async () => {
    // Alone: demoting oneself is 409 and changes nothing (the session survives); disabling oneself is 403.
    const alone = await patchUser(admin.token, admin.user.id, { roles: ['officer'] });
    expect(alone.status).toBe(409);
    expect(alone.body.error.code).toBe('last_admin');
    expect((await patchUser(admin.token, admin.user.id, { disabled: true })).status).toBe(403);
    expect(await rolesOf(admin.user.id)).toEqual({ roles: ['admin', 'officer'], disabledAt: null });
    expect(await me(admin.token)).toBe(200);

    // A disabled admin does not count.
    const carolId = await addUser('carol', ['admin']);
    await patchUser(admin.token, carolId, { disabled: true });
    await newLeaves();
    expect((await patchUser(admin.token, admin.user.id, { roles: ['officer'] })).body.error.code).toBe('last_admin');
    expect(await newLeaves()).toEqual([]);

    // With carol active again, alice may step down; her own session ends and its cookie is cleared.
    await patchUser(admin.token, carolId, { disabled: false });
    await newLeaves();
    const stepDown = await patchUser(admin.token, admin.user.id, { roles: ['officer'] });
    expect(stepDown.status).toBe(200);
    expect(stepDown.body).toMatchObject({ roles: ['officer'], revokedSessions: 1 });
    expect(stepDown.headers.get('set-cookie')).toMatch(/tg_session=;.*Max-Age=0/);
    expect(await newLeaves()).toEqual([
      { actorType: 'user', actorId: admin.user.id, action: 'user.roles', target: admin.user.id, details: { name: 'alice', oldRoles: ['admin', 'officer'], newRoles: ['officer'], revokedSessions: 1 } },
    ]);
    expect(await me(admin.token)).toBe(401);

    // Now carol is the last admin; neither her own demotion nor (via the repository) anyone else's passes.
    const carol = await tokenOf(signIn('carol'));
    const last = await patchUser(carol, carolId, { roles: ['auditor'] });
    expect(last.status).toBe(409);
    expect(last.body.error.code).toBe('last_admin');
    expect(await rolesOf(carolId)).toEqual({ roles: ['admin'], disabledAt: null });
  });

  it('two admins demoting each other at once leave one admin: the actor is re-checked inside the transaction', async () => {
    const bobId = await addUser('bob', ['admin']);
    const bob = await tokenOf(signIn('bob'));
    const [a, b] = await Promise.all([patchUser(admin.token, bobId, { roles: ['officer'] }), patchUser(bob, admin.user.id, { roles: ['officer'] })]);
    expect([a.status, b.status].filter((s) => s === 200)).toHaveLength(1);
    expect([401, 403]).toContain([a.status, b.status].find((s) => s !== 200));
    const admins = (await server.db.select().from(users).where(eq(users.orgId, admin.org.id)).all()).filter((u) => u.roles.includes('admin') && u.disabledAt === null);
    expect(admins).toHaveLength(1);
    // The repository refuses an actor who is not (or no longer) an active admin, whatever the route saw.
    const demoted = admins[0]!.id === bobId ? admin.user.id : bobId;
    await expect(updateUser({ db: server.db, orgId: admin.org.id, actorId: demoted, userId: admins[0]!.id, roles: ['auditor'], now: server.clock.now })).rejects.toMatchObject({ status: 403 });
  });

  it('an expired, foreign-session or failed re-authentication does not unlock a sensitive action', async () => {
    const bobId = await addUser('bob', ['officer']);
    const second = await tokenOf(signIn('alice'));
    await newLeaves();
    server.clock.now += REAUTH_WINDOW_MS + 1;

    // Use keeps the session alive but is no password proof.
    expect(await me(admin.token)).toBe(200);
    const expired = await patchUser(admin.token, bobId, { roles: ['auditor'] });
    expect(expired.status).toBe(403);
    expect(expired.body.error.code).toBe('reauth_required');

    // A wrong password proves nothing.
    expect((await call({ method: 'POST', path: '/v1/sessions/reauth', token: admin.token, body: { password: 'not it at all' } })).body.error.code).toBe('wrong_password');
    expect((await patchUser(admin.token, bobId, { roles: ['auditor'] })).body.error.code).toBe('reauth_required');

    // A proof on one session does not count for another session of the same user.
    expect((await call({ method: 'POST', path: '/v1/sessions/reauth', token: admin.token, body: { password: PASSWORD } })).status).toBe(200);
    expect((await patchUser(second, bobId, { roles: ['auditor'] })).body.error.code).toBe('reauth_required');
    expect((await call({ method: 'POST', path: '/v1/users', token: second, body: { user: 'carol', password: PASSWORD, roles: ['auditor'] } })).body.error.code).toBe('reauth_required');
    expect(await rolesOf(bobId)).toEqual({ roles: ['officer'], disabledAt: null });
    expect((await newLeaves()).map((l) => l.action)).toEqual(['session.reauth_fail', 'session.reauth']);

    // The proof lapses after the window: exactly at the edge it still counts, one millisecond later not.
    server.clock.now += REAUTH_WINDOW_MS;
    expect((await patchUser(admin.token, bobId, { roles: ['auditor'] })).status).toBe(200);
    server.clock.now += 1;
    expect((await patchUser(admin.token, bobId, { roles: ['officer'] })).body.error.code).toBe('reauth_required');
    expect(await rolesOf(bobId)).toEqual({ roles: ['auditor'], disabledAt: null });

    // A replayed re-authentication with a token the role change revoked is 401 and records nothing.
    server.clock.now += 1;
    const bobOld = await tokenOf(signIn('bob'));
    expect((await call({ method: 'POST', path: '/v1/sessions/reauth', token: admin.token, body: { password: PASSWORD } })).status).toBe(200);
    expect((await patchUser(admin.token, bobId, { roles: ['operator'] })).status).toBe(200);
    await newLeaves();
    const replay = await call({ method: 'POST', path: '/v1/sessions/reauth', token: bobOld, body: { password: PASSWORD } });
    expect(replay.status).toBe(401);
    expect(replay.body.error.code).toBe('unauthenticated');
    expect(await newLeaves()).toEqual([]);
  });
});

describe('TG_REAUTH_WINDOW_MS (development only)', () => {
  it('is refused in production and validated elsewhere', () => {
    const prod = checkServerConfig({ TG_ENV: 'production', TG_PUBLIC_URL: 'https://tg.example.com', TG_REAUTH_WINDOW_MS: '2000' });
    expect(prod.problems.join('\n')).toMatch(/TG_REAUTH_WINDOW_MS is set.*unset it in production/);
    expect(prod.reauthWindowMs).toBeUndefined();
    expect(checkServerConfig({ TG_ENV: 'test', TG_REAUTH_WINDOW_MS: '2000' })).toMatchObject({ reauthWindowMs: 2000, problems: [] });
    expect(checkServerConfig({}).reauthWindowMs).toBeUndefined();
    for (const bad of ['abc', '999', '300001', '2e3', '-5'])
      expect(checkServerConfig({ TG_REAUTH_WINDOW_MS: bad }).problems.join('\n'), bad).toMatch(/TG_REAUTH_WINDOW_MS=.* is not a whole number of milliseconds/);
  });

  it('shortens the window the sensitive routes enforce', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tg-reauth-window-'));
    const db = await openDatabase({ url: `file:${join(dir, 'tensorguard.db')}` });
    try {
      const clock = { now: Date.now() };
      const app = createApp({ db, blobs: createFsBlobStore({ dir: join(dir, 'blobs') }), now: () => clock.now, logger: silentLogger, reauthWindowMs: 2000 });
      const server: TestServer = { app, db, blobs: createFsBlobStore({ dir: join(dir, 'blobs') }), dir, clock, close: async () => undefined };
      const admin = await bootstrap({ server, password: PASSWORD });
      const create = (user: string) => api({ server, method: 'POST', path: '/v1/users', token: admin.token, body: { user, password: PASSWORD, roles: ['auditor'] } });
      clock.now += 2000;
      expect((await create('bob')).status).toBe(201);
      clock.now += 2001;
      expect((await create('carol')).body.error.code).toBe('reauth_required');
    } finally {
      closeDatabase({ db });
      await rm(dir, { recursive: true, force: true });
    }
  });
});
