// ApiClient.binary('GET') reads large bodies through node:http (cli/api.ts download): the bytes arrive
// whole with and without Content-Length; a robot's request carries a signature that verifies; the
// server's JSON error becomes an ApiError with its code and status; a 403 reauth_required is proved and
// repeated once; a body cut short and a closed port are `unreachable`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiError } from './api.ts';
import { generateSigningKeyPair } from '../core/crypto/sign.ts';
import { ROBOT_HEADERS, verifyRobotRequest } from '../core/records/request-signature.ts';
import { fromBase64 } from '../core/bytes.ts';
import { randomBytes } from '../core/random.ts';

const payload = randomBytes(16 * 1024 * 1024 + 3);
const robot = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
let server: Server;
let base = '';
let reauthProved = 0;
let lastRobotCheck: string | null = null;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '';
  if (url === '/sized') return void res.writeHead(200, { 'content-length': payload.length }).end(payload);
  if (url === '/chunked') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    for (let at = 0; at < payload.length; at += 1_000_000) res.write(payload.subarray(at, at + 1_000_000));
    return void res.end();
  }
  if (url === '/robot') {
    try {
      verifyRobotRequest({
        method: 'GET', path: url, timestamp: Number(req.headers[ROBOT_HEADERS.timestamp]), nonce: String(req.headers[ROBOT_HEADERS.nonce]),
        body: new Uint8Array(0), signature: fromBase64(String(req.headers[ROBOT_HEADERS.signature])), publicKey: robot.publicKey,
      });
      lastRobotCheck = `ok ${req.headers[ROBOT_HEADERS.robot]}`;
    } catch (err) {
      lastRobotCheck = (err as Error).message;
    }
    return void res.writeHead(200, { 'content-length': 2 }).end('ok');
  }
  if (url === '/missing') return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: 'contribution not found' } }));
  if (url === '/sensitive') {
    if (req.headers.authorization !== 'Bearer proved') return void res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'reauth_required', message: 'prove the password' } }));
    return void res.writeHead(200, { 'content-length': 4 }).end('data');
  }
  if (url === '/v1/sessions/reauth') {
    reauthProved++;
    return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  }
  if (url === '/cut') {
    res.writeHead(200, { 'content-length': 1_000_000 });
    res.write(payload.subarray(0, 1000));
    setTimeout(() => res.socket?.destroy(), 20);
    return;
  }
  res.writeHead(500).end();
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((done) => server.close(() => done()));
});

describe('ApiClient binary GET through node:http', () => {
  it('reads the whole body, with Content-Length and chunked', async () => {
    const client = new ApiClient(base, { kind: 'none' });
    for (const path of ['/sized', '/chunked']) {
      const got = await client.binary('GET', path);
      expect(got.length, path).toBe(payload.length);
      expect(Buffer.compare(Buffer.from(got), Buffer.from(payload)), path).toBe(0);
    }
  });

  it('signs a robot\'s request like every other call', async () => {
    const client = new ApiClient(base, { kind: 'robot', robotId: 'robot-7', secretKey: robot.secretKey });
    expect(new TextDecoder().decode(await client.binary('GET', '/robot'))).toBe('ok');
    expect(lastRobotCheck).toBe('ok robot-7');
  });

  it('turns the server\'s JSON error into an ApiError with its status and code', async () => {
    const err = await new ApiClient(base, { kind: 'none' }).binary('GET', '/missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('answers reauth_required once, then repeats the download', async () => {
    let asked = 0;
    const auth = { kind: 'session' as const, token: 'stale', reauth: async () => (asked++, auth.token = 'proved', 'pw') };
    const client = new ApiClient(base, auth);
    // the token is read per request: the proof (here a test server that accepts any) upgrades it
    expect(new TextDecoder().decode(await client.binary('GET', '/sensitive'))).toBe('data');
    expect(asked).toBe(1);
    expect(reauthProved).toBe(1);
  });

  it('a body cut short and a closed port are unreachable', async () => {
    await expect(new ApiClient(base, { kind: 'none' }).binary('GET', '/cut')).rejects.toMatchObject({ code: 'unreachable' });
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((done) => closed.close(() => done()));
    await expect(new ApiClient(`http://127.0.0.1:${port}`, { kind: 'none' }).binary('GET', '/sized')).rejects.toMatchObject({ status: 0, code: 'unreachable' });
  });
});
