// startServer over a real socket: port 0, migrations, health and readiness (503 naming the blob store).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from './main.ts';
import { silentLogger } from './logger.ts';

describe('startServer', () => {
  let dir: string;
  let server: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tg-main-'));
    server = await startServer({ port: 0, dataDir: join(dir, 'data'), logger: silentLogger });
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens on the port it was given (0 = any) and reports it', async () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('is ready with a working database and blob store, and bootstraps over HTTP', async () => {
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const res = await fetch(`${server.url}/v1/bootstrap`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ org: 'Acme', user: 'root', password: 'root password 1' }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('answers 503 naming the blob store when it cannot be written', async () => {
    // Replace the blob directory with a plain file: unwritable even for root (chmod is not).
    const blobs = join(dir, 'data', 'blobs');
    await rm(blobs, { recursive: true, force: true });
    await writeFile(blobs, 'not a directory');
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body.failing).toEqual(['blob_store']);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('reopens an existing data directory (migrations are idempotent)', async () => {
    const again = await startServer({ port: 0, dataDir: join(dir, 'data2'), logger: silentLogger });
    await again.close();
    const third = await startServer({ port: 0, dataDir: join(dir, 'data2'), logger: silentLogger });
    expect((await fetch(`${third.url}/healthz`)).status).toBe(200);
    await third.close();
  });
});
