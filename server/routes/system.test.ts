// /healthz and /readyz: readiness names the failing part (database, blob store, shutting down) with a
// 503 while liveness stays 200; the benchmark null sink exists only when asked for.
import { afterEach, describe, expect, it } from 'vitest';
import { closeDatabase } from '../db/client.ts';
import type { BlobStore } from '../blobs/fs-store.ts';
import { createOpsTestServer } from '../operations/testing.ts';
import type { TestServer } from '../testing/harness.ts';
import { createApp } from '../app.ts';
import { silentLogger } from '../logger.ts';
import { Admission } from '../operations/admission.ts';
import { resolveLimits } from '../operations/limits.ts';

describe('readiness', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('is ready with a working database and blob store', async () => {
    server = await createOpsTestServer();
    const res = await server.app.request('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });

  it('answers 503 naming the database when it cannot be queried, while /healthz stays 200', async () => {
    server = await createOpsTestServer();
    closeDatabase({ db: server.db });
    const res = await server.app.request('/readyz');
    expect(res.status).toBe(503);
    const body = await res.json();
    expect(body.failing).toEqual(['database']);
    expect(body.error.code).toBe('not_ready');
    expect((await server.app.request('/healthz')).status).toBe(200);
  });

  it('names both parts when both fail', async () => {
    const failing: BlobStore = {
      put: async () => Promise.reject(new Error('EIO')),
      get: async () => Promise.reject(new Error('EIO')),
      has: async () => Promise.reject(new Error('EIO')),
      delete: async () => Promise.reject(new Error('EIO')),
      check: async () => Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })),
    };
    server = await createOpsTestServer({ wrapBlobs: () => failing });
    closeDatabase({ db: server.db });
    const body = await (await server.app.request('/readyz')).json();
    expect(body.failing).toEqual(['database', 'blob_store']);
  });

  it('reports shutting_down while draining, and refuses other routes with 503 and Connection: close', async () => {
    server = await createOpsTestServer();
    const app = createApp({ db: server.db, blobs: server.blobs, logger: silentLogger });
    // server/main.ts shares one admission controller with its app and drains it on SIGTERM.
    const shared = new Admission({ limits: resolveLimits() });
    const draining = createApp({ db: server.db, blobs: server.blobs, logger: silentLogger, admission: shared });
    shared.startDraining();
    const ready = await draining.request('/readyz');
    expect(ready.status).toBe(503);
    expect((await ready.json()).failing).toEqual(['shutting_down']);
    expect((await draining.request('/healthz')).status).toBe(200);
    const other = await draining.request('/v1/me');
    expect(other.status).toBe(503);
    expect(other.headers.get('connection')).toBe('close');
    expect(other.headers.get('retry-after')).toBe('2');
    expect((await other.json()).error.code).toBe('shutting_down');
    expect((await app.request('/readyz')).status).toBe(200);
  });

  it('mounts the benchmark null sink only when asked', async () => {
    server = await createOpsTestServer();
    const body = new Uint8Array(100_000);
    expect((await server.app.request('/v1/bench/null-sink', { method: 'POST', body })).status).toBe(404);
    const bench = createApp({ db: server.db, blobs: server.blobs, logger: silentLogger, benchNullSink: true });
    const res = await bench.request('/v1/bench/null-sink', { method: 'POST', body });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ bytes: 100_000 });
  });
});
