// People, roles and tenancy: bootstrap once, login, sessions, role checks, cross-tenant 404s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, bootstrap, createFleet, createTestServer, type TestServer } from '../testing/harness.ts';
import { hashPassword } from '../auth/password.ts';
import { newId } from '../auth/tokens.ts';

describe('people', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;

  beforeAll(async () => {
    server = await createTestServer();
    admin = await bootstrap({ server });
  });
  afterAll(() => server.close());

  it('bootstraps once only', async () => {
    expect(admin.user.roles).toEqual(['admin', 'officer']);
    expect(admin.token).toMatch(/^ses_[0-9a-f]{24}\.[A-Za-z0-9_-]{43}$/);
    const again = await api({ server, method: 'POST', path: '/v1/bootstrap', body: { org: 'Evil', user: 'mallory', password: 'longpassword' } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_bootstrapped');
  });

  it('answers /healthz and /readyz, with a request id and security headers', async () => {
    const h = await api({ server, method: 'GET', path: '/healthz' });
    expect(h.status).toBe(200);
    expect(h.body).toEqual({ status: 'ok' });
    expect(h.headers.get('x-request-id')).toBeTruthy();
    expect(h.headers.get('strict-transport-security')).toContain('max-age=31536000');
    const r = await api({ server, method: 'GET', path: '/readyz' });
    expect(r.status).toBe(200);
  });

  it('logs in, refuses a wrong password with 401, logs out', async () => {
    const bad = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: 'wrong password' } });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('unauthenticated');
    const unknown = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'nobody', password: 'wrong password' } });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.message).toBe(bad.body.error.message);

    const ok = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: 'correct horse battery' } });
    expect(ok.status).toBe(201);
    const me = await api({ server, method: 'GET', path: '/v1/me', token: ok.body.token });
    expect(me.status).toBe(200);
    expect(me.body.user.name).toBe('alice');
    expect(me.body.org.id).toBe(admin.org.id);

    const out = await api({ server, method: 'DELETE', path: '/v1/sessions/current', token: ok.body.token });
    expect(out.status).toBe(204);
    expect((await api({ server, method: 'GET', path: '/v1/me', token: ok.body.token })).status).toBe(401);
  });

  it('refuses a token with a wrong secret, and an expired session', async () => {
    const forged = admin.token.slice(0, -4) + 'AAAA';
    expect((await api({ server, method: 'GET', path: '/v1/me', token: forged })).status).toBe(401);
    const s = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: 'correct horse battery' } });
    const saved = server.clock.now;
    server.clock.now = s.body.expiresAt + 1;
    try {
      expect((await api({ server, method: 'GET', path: '/v1/me', token: s.body.token })).status).toBe(401);
    } finally {
      server.clock.now = saved;
    }
  });

  it('validates bodies: malformed JSON and bad fields are 400 malformed', async () => {
    const res = await server.app.request('/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('malformed');
    const bad = await api({ server, method: 'POST', path: '/v1/users', token: admin.token, body: { user: 'x', password: 'short', roles: ['admin'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('malformed');
  });

  it('refuses an oversize JSON body with 413 oversize', async () => {
    const res = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: 'x'.repeat(70_000) } });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('oversize');
  });

  it('enforces roles', async () => {
    const created = await api({ server, method: 'POST', path: '/v1/users', token: admin.token, body: { user: 'otto', password: 'operator password', roles: ['operator'] } });
    expect(created.status).toBe(201);
    const dup = await api({ server, method: 'POST', path: '/v1/users', token: admin.token, body: { user: 'otto', password: 'operator password', roles: ['operator'] } });
    expect(dup.status).toBe(409);
    const login = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'otto', password: 'operator password' } });
    const operator = login.body.token as string;
    expect((await api({ server, method: 'GET', path: '/v1/users', token: operator })).status).toBe(403);
    expect((await api({ server, method: 'POST', path: '/v1/fleets', token: operator, body: { name: 'nope' } })).status).toBe(403);
    expect((await api({ server, method: 'GET', path: '/v1/audit', token: operator })).status).toBe(403);
    expect((await api({ server, method: 'GET', path: '/v1/fleets', token: operator })).status).toBe(200);
    const users = await api({ server, method: 'GET', path: '/v1/users', token: admin.token });
    expect(users.body.map((u: { name: string }) => u.name).sort()).toEqual(['alice', 'otto']);
    expect(JSON.stringify(users.body)).not.toContain('scrypt');
  });

  it('accepts the session cookie, but not for a cross-site unsafe request', async () => {
    const cookie = { cookie: `tg_session=${admin.token}` };
    expect((await api({ server, method: 'GET', path: '/v1/me', headers: cookie })).status).toBe(200);
    const cross = await api({ server, method: 'POST', path: '/v1/fleets', headers: { ...cookie, 'sec-fetch-site': 'cross-site' }, body: { name: 'csrf' } });
    expect(cross.status).toBe(403);
    const noHeaders = await api({ server, method: 'POST', path: '/v1/fleets', headers: cookie, body: { name: 'csrf' } });
    expect(noHeaders.status).toBe(403);
    const same = await api({ server, method: 'POST', path: '/v1/fleets', headers: { ...cookie, 'sec-fetch-site': 'same-origin' }, body: { name: 'cookie-fleet' } });
    expect(same.status).toBe(201);
  });

  it('isolates tenants: ids of org A are 404 to org B and nothing changes', async () => {
    const fleetA = await createFleet({ server, token: admin.token, name: 'tenant-a-fleet' });
    // A second organization, created directly (bootstrap is one-shot; org creation is a later admin issue).
    const { organizations, users } = await import('../db/schema.ts');
    const orgB = newId({ prefix: 'org' });
    await server.db.insert(organizations).values({ id: orgB, name: 'Other Corp', createdAt: server.clock.now }).run();
    await server.db
      .insert(users)
      .values({ id: newId({ prefix: 'usr' }), orgId: orgB, name: 'bob', passwordHash: await hashPassword({ password: 'bob password 1' }), roles: ['admin', 'officer', 'auditor'], createdAt: server.clock.now })
      .run();
    const bob = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'bob', password: 'bob password 1' } })).body.token as string;

    expect((await api({ server, method: 'GET', path: `/v1/fleets/${fleetA.id}`, token: bob })).status).toBe(404);
    expect((await api({ server, method: 'GET', path: `/v1/robots?fleet=${fleetA.id}`, token: bob })).status).toBe(404);
    expect((await api({ server, method: 'GET', path: `/v1/rounds?fleet=${fleetA.id}`, token: bob })).status).toBe(404);
    expect((await api({ server, method: 'GET', path: `/v1/dp/ledger?fleet=${fleetA.id}`, token: bob })).status).toBe(404);
    const tokenTry = await api({ server, method: 'POST', path: `/v1/fleets/${fleetA.id}/enrollment-tokens`, token: bob });
    expect(tokenTry.status).toBe(404);
    const fleetsB = await api({ server, method: 'GET', path: '/v1/fleets', token: bob });
    expect(fleetsB.body).toEqual([]);
    const auditB = await api({ server, method: 'GET', path: '/v1/audit', token: bob });
    expect(auditB.body.entries.map((e: { action: string }) => e.action)).toEqual(['session.create']);
    // Org A's audit shows no enrollment token was created by bob's attempt.
    const auditA = await api({ server, method: 'GET', path: '/v1/audit?limit=1000', token: admin.token });
    expect(auditA.body.entries.some((e: { action: string }) => e.action === 'enrollment_token.create')).toBe(false);
    // Same fleet name in another org is fine (unique per org).
    expect((await createFleet({ server, token: bob, name: 'tenant-a-fleet' })).id).not.toBe(fleetA.id);
  });

  it('documents itself in /openapi.json and validates through the shared hook (400 malformed naming the field)', async () => {
    const doc = (await api({ server, method: 'GET', path: '/openapi.json' })).body;
    const people: Array<[string, string]> = [
      ['post', '/v1/bootstrap'],
      ['post', '/v1/sessions'],
      ['post', '/v1/sessions/reauth'],
      ['delete', '/v1/sessions/current'],
      ['get', '/v1/me'],
      ['post', '/v1/users'],
      ['get', '/v1/users'],
      ['patch', '/v1/users/{id}'],
      ['post', '/v1/users/me/password'],
    ];
    for (const [method, path] of people) {
      const op = doc.paths[path]?.[method];
      expect(op, `${method} ${path}`).toBeTruthy();
      expect(op.tags).toEqual(['people']);
      expect(op.responses.default.content['application/json'].schema.$ref).toBe('#/components/schemas/ApiError');
      // Sign-in and bootstrap take no credential; every other people route takes the token or the cookie.
      const open = path === '/v1/bootstrap' || path === '/v1/sessions';
      expect(op.security, `${method} ${path}`).toEqual(open ? [] : [{ bearer: [] }, { sessionCookie: [] }]);
    }
    expect(doc.paths['/v1/sessions'].post.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/SignIn');
    expect(doc.components.schemas.UserCreation.properties.user.pattern).toBeTruthy();
    expect(doc.paths['/v1/users/{id}'].patch.parameters).toEqual([expect.objectContaining({ in: 'path', name: 'id', required: true })]);

    const shortPassword = await api({ server, method: 'POST', path: '/v1/bootstrap', body: { org: 'x', user: 'y', password: 'short' } });
    expect(shortPassword.status).toBe(400);
    expect(shortPassword.body.error).toMatchObject({ code: 'malformed', details: { field: 'password' } });
    const extra = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: 'x', admin: true } });
    expect(extra.status).toBe(400);
    expect(extra.body.error.code).toBe('malformed');
    // Authentication runs before validation: an anonymous bad request is 401, not 400.
    expect((await api({ server, method: 'PATCH', path: '/v1/users/bad%20id', body: {} })).status).toBe(401);
    expect((await api({ server, method: 'POST', path: '/v1/sessions/reauth', token: admin.token, body: { password: 'correct horse battery' } })).status).toBe(200);
    const badId = await api({ server, method: 'PATCH', path: '/v1/users/bad%20id', token: admin.token, body: { disabled: true } });
    expect(badId.status).toBe(400);
    expect(badId.body.error).toMatchObject({ code: 'malformed', details: { field: 'id' } });
    const neither = await api({ server, method: 'PATCH', path: `/v1/users/${admin.user.id}`, token: admin.token, body: {} });
    expect(neither.status).toBe(400);
    expect(neither.body.error.message).toMatch(/give roles, disabled or both/);
  });

  it('keeps an append-only audit log with RFC 6962 leaf hashes', async () => {
    const res = await api({ server, method: 'GET', path: '/v1/audit', token: admin.token });
    expect(res.status).toBe(200);
    const first = res.body.entries[0];
    expect(first.action).toBe('org.bootstrap');
    expect(first.leafHash).toMatch(/^[0-9a-f]{64}$/);
    const { auditLog } = await import('../db/schema.ts');
    await expect(server.db.delete(auditLog).run()).rejects.toThrow();
    await expect(server.db.update(auditLog).set({ action: 'x' }).run()).rejects.toThrow();
  });
});
