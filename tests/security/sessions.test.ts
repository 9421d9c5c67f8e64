// Sessions from the attacker's side (ASVS 7.x): idle and absolute timeouts, a new token per sign-in,
// revocation on sign-out, role change, disable and password change, re-authentication for sensitive
// actions, the HttpOnly cookie and its CSRF rule.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, bootstrap, createTestServer, type TestServer } from '../../server/testing/harness.ts';
import { REAUTH_WINDOW_MS, SESSION_IDLE_MS, SESSION_TTL_MS } from '../../server/http/auth.ts';

const PASSWORD = 'correct horse battery';

describe('sessions', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;
  const signIn = (user: string, password = PASSWORD) => api({ server, method: 'POST', path: '/v1/sessions', body: { user, password } });
  const me = (token: string) => api({ server, method: 'GET', path: '/v1/me', token });

  beforeEach(async () => {
    server = await createTestServer();
    admin = await bootstrap({ server, password: PASSWORD });
  });
  afterEach(async () => {
    await server.close();
  });

  async function addUser(name: string, roles: string[]) {
    const res = await api({ server, method: 'POST', path: '/v1/users', token: admin.token, body: { user: name, password: PASSWORD, roles } });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }

  it('issues a new token on every sign-in and sets it as an HttpOnly SameSite=Lax cookie', async () => {
    const a = await signIn('alice');
    const b = await signIn('alice');
    expect(a.body.token).not.toBe(b.body.token);
    const cookie = a.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^tg_session=ses_[0-9a-f]{24}\.[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toMatch(/Secure/); // plain http, not production
    const https = await server.app.request('https://tg.example/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice', password: PASSWORD }) });
    expect(https.headers.get('set-cookie')).toMatch(/Secure/);
  });

  it('ends a session after 30 idle minutes, and after 12 hours however busy', async () => {
    const t = (await signIn('alice')).body.token;
    server.clock.now += SESSION_IDLE_MS - 60_000;
    expect((await me(t)).status).toBe(200);
    server.clock.now += SESSION_IDLE_MS - 60_000; // used 29 minutes ago: still alive
    expect((await me(t)).status).toBe(200);
    server.clock.now += SESSION_IDLE_MS + 1;
    expect((await me(t)).status).toBe(401);

    const busy = (await signIn('alice')).body.token;
    const start = server.clock.now;
    while (server.clock.now + 20 * 60_000 < start + SESSION_TTL_MS) {
      server.clock.now += 20 * 60_000;
      expect((await me(busy)).status).toBe(200);
    }
    server.clock.now = start + SESSION_TTL_MS;
    expect((await me(busy)).status).toBe(401);
  });

  it('revokes on sign-out and clears the cookie', async () => {
    const t = (await signIn('alice')).body.token;
    const out = await api({ server, method: 'DELETE', path: '/v1/sessions/current', token: t });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/tg_session=;.*Max-Age=0/);
    expect((await me(t)).status).toBe(401);
  });

  it('revokes every session of a user whose roles change or who is disabled; a disabled user cannot sign in', async () => {
    const bobId = await addUser('bob', ['officer']);
    const bob1 = (await signIn('bob')).body.token;
    const bob2 = (await signIn('bob')).body.token;
    const patch = await api({ server, method: 'PATCH', path: `/v1/users/${bobId}`, token: admin.token, body: { roles: ['auditor'] } });
    expect(patch.status).toBe(200);
    expect(patch.body).toMatchObject({ roles: ['auditor'], revokedSessions: 2 });
    expect((await me(bob1)).status).toBe(401);
    expect((await me(bob2)).status).toBe(401);
    const bob3 = (await signIn('bob')).body.token;
    expect((await me(bob3)).body.user.roles).toEqual(['auditor']);
    expect((await api({ server, method: 'PATCH', path: `/v1/users/${bobId}`, token: admin.token, body: { disabled: true } })).status).toBe(200);
    expect((await me(bob3)).status).toBe(401);
    expect((await signIn('bob')).status).toBe(401);
    // An admin cannot lock themself out.
    expect((await api({ server, method: 'PATCH', path: `/v1/users/${admin.user.id}`, token: admin.token, body: { disabled: true } })).status).toBe(403);
  });

  it('revokes every session on a password change and hands the caller a new one', async () => {
    const other = (await signIn('alice')).body.token;
    const wrong = await api({ server, method: 'POST', path: '/v1/users/me/password', token: admin.token, body: { currentPassword: 'not it', newPassword: 'a brand new password' } });
    expect(wrong.status).toBe(401);
    const changed = await api({ server, method: 'POST', path: '/v1/users/me/password', token: admin.token, body: { currentPassword: PASSWORD, newPassword: 'a brand new password' } });
    expect(changed.status).toBe(200);
    expect((await me(admin.token)).status).toBe(401);
    expect((await me(other)).status).toBe(401);
    expect((await me(changed.body.token)).status).toBe(200);
    expect((await signIn('alice')).status).toBe(401);
    expect((await signIn('alice', 'a brand new password')).status).toBe(201);
  });

  it('requires the password within 5 minutes for user creation, role changes and HE key rotation/revocation', async () => {
    const bobId = await addUser('bob', ['operator']);
    server.clock.now += REAUTH_WINDOW_MS + 1;
    const sensitive = [
      { method: 'POST', path: '/v1/users', body: { user: 'carol', password: PASSWORD, roles: ['auditor'] } },
      { method: 'PATCH', path: `/v1/users/${bobId}`, body: { roles: ['auditor'] } },
      { method: 'POST', path: '/v1/he-keys', body: { record: 'AAAA' } },
      { method: 'POST', path: '/v1/he-keys/1/revoke', body: { record: 'AAAA' } },
    ];
    for (const r of sensitive) {
      const res = await api({ server, ...r, token: admin.token });
      expect(res.status, r.path).toBe(403);
      expect(res.body.error.code).toBe('reauth_required');
    }
    expect((await api({ server, method: 'POST', path: '/v1/sessions/reauth', token: admin.token, body: { password: 'wrong' } })).status).toBe(401);
    expect((await api({ server, method: 'POST', path: '/v1/sessions/reauth', token: admin.token, body: { password: PASSWORD } })).status).toBe(200);
    expect((await api({ server, ...sensitive[0]!, token: admin.token })).status).toBe(201);
    expect((await api({ server, ...sensitive[1]!, token: admin.token })).status).toBe(200);
    expect((await api({ server, ...sensitive[2]!, token: admin.token })).status).toBe(400); // past auth: the record is junk
  });

  it('accepts the cookie only from the same origin for unsafe methods (CSRF)', async () => {
    const cookie = { cookie: `tg_session=${admin.token}` };
    expect((await api({ server, method: 'GET', path: '/v1/me', headers: cookie })).status).toBe(200);
    const crossSite = await api({ server, method: 'POST', path: '/v1/fleets', headers: { ...cookie, 'sec-fetch-site': 'cross-site' }, body: { name: 'x' } });
    expect(crossSite.status).toBe(403);
    const badOrigin = await api({ server, method: 'POST', path: '/v1/fleets', headers: { ...cookie, origin: 'https://evil.example' }, body: { name: 'x' } });
    expect(badOrigin.status).toBe(403);
    expect((await api({ server, method: 'POST', path: '/v1/fleets', headers: cookie, body: { name: 'x' } })).status).toBe(403);
    const same = await api({ server, method: 'POST', path: '/v1/fleets', headers: { ...cookie, 'sec-fetch-site': 'same-origin' }, body: { name: 'x' } });
    expect(same.status).toBe(201);
  });
});
