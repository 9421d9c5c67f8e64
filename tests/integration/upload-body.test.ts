// Contribution uploads are read straight from the socket when they declare a Content-Length
// (server/http/body.ts readBodyFromSocket). From the attacker's side, against the real server process:
// a body cut short of its declared length, a declared length over the route's limit and a chunked body
// (no length) each get their answer or a closed connection, change nothing, and leave the server serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServerProcess } from '../helpers/cli.ts';

let root: string;
let server: { url: string; stop(): Promise<void> };

/** Sends raw bytes on a fresh connection; resolves with what came back before the server closed it (or after `waitMs`). */
function raw(head: string, body: Buffer, options: { endAfterBody?: boolean; waitMs?: number } = {}): Promise<string> {
  const { port, hostname } = new URL(server.url);
  return new Promise((done) => {
    const socket = connect(Number(port), hostname);
    let answer = '';
    const timer = setTimeout(() => (socket.destroy(), done(answer)), options.waitMs ?? 3000);
    socket.on('data', (d) => (answer += d));
    socket.on('error', () => undefined);
    socket.on('close', () => (clearTimeout(timer), done(answer)));
    socket.write(head + '\r\n\r\n');
    socket.write(body);
    if (options.endAfterBody) socket.end();
  });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tg-upload-body-'));
  server = await startServerProcess({ dataDir: join(root, 'data') });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('contribution upload bodies from the socket', () => {
  const path = '/v1/rounds/round-none/contributions';
  const headers = (extra: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n${extra}`;

  it('a body that stops short of its Content-Length gets no 2xx and the server keeps serving', async () => {
    const answer = await raw(headers('Content-Length: 100000'), Buffer.alloc(1000, 1), { endAfterBody: true });
    expect(answer).not.toMatch(/^HTTP\/1\.1 2/);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('a declared length over the limit is 413 oversize before the body is read', async () => {
    const answer = await raw(headers('Content-Length: 9999999999'), Buffer.alloc(10), { waitMs: 2000 });
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer).toContain('"oversize"');
  });

  it('a chunked body (no length) goes the streaming way and is refused for what it is: no robot signature', async () => {
    const chunk = Buffer.alloc(5000, 2);
    const body = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n0\r\n\r\n')]);
    const answer = await raw(headers('Transfer-Encoding: chunked\r\nConnection: close'), body);
    expect(answer).toMatch(/^HTTP\/1\.1 401/);
  });

  it('a complete unsigned body of its declared length is read and refused by authentication (401), not by the reader', async () => {
    const answer = await raw(headers('Content-Length: 5000\r\nConnection: close'), Buffer.alloc(5000, 3));
    expect(answer).toMatch(/^HTTP\/1\.1 401/);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
