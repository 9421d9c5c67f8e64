// The CLI's answer to 403 `reauth_required`: a person's client asks for the password (the provider the
// CLI wires to TG_PASSWORD or a terminal prompt), proves it with POST /v1/sessions/reauth and repeats the
// sensitive request exactly once; a wrong password fails with the server's code and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiError } from './api.ts';
import { api, bootstrap, createTestServer, type TestServer } from '../server/testing/harness.ts';

const PASSWORD = 'correct horse battery';
let server: TestServer;
let http: ServerType;
let baseUrl: string;
let token: string;

beforeAll(async () => {
  server = await createTestServer();
  token = (await bootstrap({ server, password: PASSWORD })).token;
  http = serve({ fetch: server.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => http.once('listening', () => resolve()));
  baseUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  // The sign-in's password proof lapses: every sensitive action now needs a new one.
  server.clock.now += 6 * 60 * 1000;
});

afterAll(async () => {
  await new Promise<void>((resolve) => http.close(() => resolve()));
  await server.close();
});

async function userNames(): Promise<string[]> {
  const res = await api({ server, method: 'GET', path: '/v1/users', token });
  return (res.body as Array<{ name: string }>).map((u) => u.name);
}

describe('CLI client and reauth_required', () => {
  it('without a password provider the sensitive request fails with reauth_required', async () => {
    const client = new ApiClient(baseUrl, { kind: 'session', token });
    await expect(client.json('POST', '/v1/users', { user: 'carol', password: 'long enough password', roles: ['operator'] })).rejects.toMatchObject({ status: 403, code: 'reauth_required' });
    expect(await userNames()).not.toContain('carol');
  });

  it('a wrong password is refused with wrong_password and the request is not repeated', async () => {
    let asked = 0;
    const client = new ApiClient(baseUrl, { kind: 'session', token, reauth: async () => (asked++, 'not the password') });
    const err = await client.json('POST', '/v1/users', { user: 'dave', password: 'long enough password', roles: ['operator'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 401, code: 'wrong_password' });
    expect(asked).toBe(1);
    expect(await userNames()).not.toContain('dave');
  });

  it('the right password is proved once and the request repeated once', async () => {
    let asked = 0;
    const client = new ApiClient(baseUrl, { kind: 'session', token, reauth: async () => (asked++, PASSWORD) });
    const created = await client.json<{ name: string }>('POST', '/v1/users', { user: 'erin', password: 'long enough password', roles: ['auditor'] });
    expect(created).toMatchObject({ name: 'erin' });
    expect(asked).toBe(1);
    // Within the new window the next sensitive request needs no prompt.
    await client.json('POST', '/v1/users', { user: 'frank', password: 'long enough password', roles: ['auditor'] });
    expect(asked).toBe(1);
    expect(await userNames()).toEqual(expect.arrayContaining(['erin', 'frank']));
  });
});
