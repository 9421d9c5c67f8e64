// HTTP hardening checked per response type and per route: security headers on API JSON, the PWA page,
// a worker script, a static asset and the docs page; request ids on every response; a body limit on
// every route that takes a body (from the route table); one error handler that never leaks a stack;
// structured logs without secrets over a full flow; the OpenAPI document covering every route.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { api, bootstrap, createFleet, createTestServer, enrollRobot, robotRequest, type TestServer } from '../../server/testing/harness.ts';
import { createJsonLogger } from '../../server/logger.ts';
import { createErrorHandler } from '../../server/http/errors.ts';
import { DEFAULT_PWA_DIR } from '../../server/routes/pwa.ts';
import { openApiPath } from '../../server/http/openapi.ts';
import { routeKeys } from './fixture.ts';

const PASSWORD = 'correct horse battery';

async function firstFile(dir: string, pattern: RegExp): Promise<string> {
  const names = await readdir(dir, { recursive: true });
  const hit = names.find((n) => pattern.test(n));
  if (!hit) throw new Error(`no ${pattern} under ${dir} (build the PWA: npm run build)`);
  return hit.split('\\').join('/');
}

describe('HTTP hardening', () => {
  let server: TestServer;
  const lines: string[] = [];
  let admin: Awaited<ReturnType<typeof bootstrap>>;

  beforeAll(async () => {
    server = await createTestServer({ logger: createJsonLogger({ write: (l) => lines.push(l) }) });
    admin = await bootstrap({ server, password: PASSWORD });
  });
  afterAll(async () => {
    await server.close();
  });

  it('sends the security headers on every response type', async () => {
    const worker = await firstFile(DEFAULT_PWA_DIR, /worker.*\.js$/);
    const asset = await firstFile(join(DEFAULT_PWA_DIR, '_app'), /\.css$/);
    const cases: Array<{ path: string; type: RegExp; csp: RegExp }> = [
      { path: '/v1/me', type: /application\/json/, csp: /default-src 'none'/ },
      { path: '/v1/nope', type: /application\/json/, csp: /default-src 'none'/ },
      { path: '/', type: /text\/html/, csp: /script-src 'self'/ },
      { path: `/${worker}`, type: /javascript/, csp: /default-src 'none'|script-src/ },
      { path: `/_app/${asset}`, type: /text\/css/, csp: /default-src/ },
      { path: '/docs', type: /text\/html/, csp: /script-src 'self'/ },
      { path: '/openapi.json', type: /application\/json/, csp: /default-src 'none'/ },
    ];
    for (const c of cases) {
      const res = await api({ server, method: 'GET', path: c.path, token: admin.token });
      const h = res.headers;
      expect(h.get('content-type'), c.path).toMatch(c.type);
      expect(h.get('strict-transport-security'), c.path).toBe('max-age=31536000; includeSubDomains');
      expect(h.get('x-content-type-options'), c.path).toBe('nosniff');
      expect(h.get('referrer-policy'), c.path).toBe('no-referrer');
      expect(h.get('cross-origin-opener-policy'), c.path).toBe('same-origin');
      expect(h.get('content-security-policy'), c.path).toMatch(c.csp);
      expect(h.get('content-security-policy'), c.path).toMatch(/frame-ancestors 'none'/);
      expect(h.get('x-request-id'), c.path).toMatch(/^[\w-]{8,}$/);
    }
  });

  it('puts a request id on every response, errors included, and on the log line of the request', async () => {
    lines.length = 0;
    const res = await api({ server, method: 'GET', path: '/v1/rounds/nope', token: admin.token });
    expect(res.status).toBe(404);
    const id = res.headers.get('x-request-id')!;
    expect(id).toBeTruthy();
    const line = lines.map((l) => JSON.parse(l)).find((l) => l.requestId === id && l.message === 'request');
    expect(line).toMatchObject({ level: 'info', method: 'GET', route: '/v1/rounds/:id', status: 404, userId: admin.user.id, orgId: admin.org.id });
    expect(typeof line.durationMs).toBe('number');
  });

  it('refuses a body over the route limit with 413 on every route that takes one (from the route table)', async () => {
    const unsafe = routeKeys(server.app).filter((k) => /^(POST|PUT|PATCH|DELETE) /.test(k));
    expect(unsafe.length).toBeGreaterThan(30);
    const unlimited: string[] = [];
    for (const key of unsafe) {
      const [method, template] = key.split(' ') as [string, string];
      const path = template.replace(/:[A-Za-z]+/g, 'x1');
      // 100 MiB, streamed without a Content-Length: only a limit stops it.
      let sent = 0;
      const chunk = new Uint8Array(1024 * 1024).fill(32);
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 100 * 1024 * 1024) return controller.close();
          sent += chunk.length;
          controller.enqueue(chunk);
        },
      });
      const res = await server.app.request(path, { method, body, headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.token}` }, duplex: 'half' } as RequestInit);
      if (res.status !== 413) unlimited.push(`${key}: ${res.status} after ${sent} bytes`);
      else expect((await res.json()).error.code).toBe('oversize');
    }
    expect(unlimited).toEqual([]);
  }, 120_000);

  it('answers 500 with a stable code and an error id, never the stack; the log has the error under that id', async () => {
    const logged: string[] = [];
    const app = new Hono();
    app.onError(createErrorHandler({ logger: createJsonLogger({ write: (l) => logged.push(l) }) }));
    app.get('/boom', () => {
      throw new Error('database password=hunter2 at /srv/secret/path', { cause: new Error('inner') });
    });
    const res = await app.request('/boom');
    expect(res.status).toBe(500);
    const text = await res.text();
    const body = JSON.parse(text);
    expect(body).toEqual({ error: { code: 'internal', message: 'internal error', errorId: expect.stringMatching(/^[0-9a-f-]{36}$/) } });
    expect(text).not.toMatch(/hunter2|\/srv|at |Error:|stack/);
    const entry = JSON.parse(logged.find((l) => l.includes(body.error.errorId))!);
    expect(entry.error.message).toContain('hunter2'); // the full error goes to the log only
    expect(entry.error.stack).toBeTruthy();
  });

  it('keeps passwords, tokens, cookies, signatures and enrollment tokens out of the logs over a full flow', async () => {
    lines.length = 0;
    const login = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: PASSWORD } });
    const token = login.body.token as string;
    await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'alice', password: 'wrong-secret-guess' } });
    await api({ server, method: 'POST', path: '/v1/sessions/reauth', token, body: { password: PASSWORD } });
    await api({ server, method: 'GET', path: '/v1/me', headers: { cookie: `tg_session=${token}` } });
    const fleet = await createFleet({ server, token, name: 'logged' });
    const t = await api({ server, method: 'POST', path: `/v1/fleets/${fleet.id}/enrollment-tokens`, token });
    const robot = await enrollRobot({ server, token, fleetId: fleet.id });
    const signed = await robotRequest({ server, robot, method: 'POST', path: '/v1/safety/validate', body: new TextEncoder().encode('{"bad":1}'), contentType: 'application/json' });
    expect(signed.status).toBe(400);
    await api({ server, method: 'POST', path: '/v1/users/me/password', token, body: { currentPassword: PASSWORD, newPassword: 'another long password' } });
    await api({ server, method: 'GET', path: '/v1/me', headers: { authorization: 'Bearer ses_000000000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    const log = lines.join('\n');
    expect(lines.length).toBeGreaterThan(8);
    const secrets = [PASSWORD, 'wrong-secret-guess', 'another long password', token, token.split('.')[1]!, t.body.token, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', admin.token];
    for (const s of secrets) expect(log.includes(s), `a secret reached the log: ${s.slice(0, 12)}…`).toBe(false);
    expect(log).not.toMatch(/bearer |x-tg-signature|authorization|set-cookie/i);
    for (const l of lines) {
      const parsed = JSON.parse(l);
      expect(parsed).toHaveProperty('level');
      expect(parsed).toHaveProperty('time');
      if (parsed.message === 'request') expect(parsed.requestId).toBeTruthy();
    }
  });

  it('serves an OpenAPI 3.1 document with every route of the app, and a docs page that renders it', async () => {
    const doc = (await api({ server, method: 'GET', path: '/openapi.json' })).body;
    expect(doc.openapi).toBe('3.1.0');
    const missing: string[] = [];
    for (const key of routeKeys(server.app)) {
      const [method, template] = key.split(' ') as [string, string];
      const op = doc.paths[openApiPath(template)]?.[method.toLowerCase()];
      if (!op) missing.push(key);
    }
    expect(missing).toEqual([]);
    expect(doc.paths['/v1/users/{id}'].patch.requestBody.content['application/json'].schema.properties.roles.items.enum).toEqual(['admin', 'officer', 'operator', 'auditor']);
    const page = await api({ server, method: 'GET', path: '/docs' });
    expect(page.status).toBe(200);
    expect(page.body).toContain('/docs/render.js');
    expect(page.body).not.toMatch(/https?:\/\/(?!localhost)/); // no CDN
    expect((await api({ server, method: 'GET', path: '/docs/render.js' })).body).toContain("fetch('/openapi.json')");
  });
});
