// The BlobStore contract, run against every implementation: the filesystem store and the S3 store
// (against s3rver, a real S3 REST server on a loopback port).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createFsBlobStore, type BlobStore } from './fs-store.ts';
import { createS3BlobStore } from './s3-store.ts';
import { startS3TestServer, type S3TestServer } from './s3-test-server.ts';
import { blobStoreConfigFromEnv } from './select.ts';

interface Subject {
  store: BlobStore;
  /** Overwrites a stored blob's bytes behind the store's back. */
  corrupt(name: string, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

const subjects: Record<string, () => Promise<Subject>> = {
  fs: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tg-contract-'));
    const { writeFile } = await import('node:fs/promises');
    return {
      store: createFsBlobStore({ dir }),
      corrupt: (name, bytes) => writeFile(join(dir, name.slice(0, 2), name.slice(2)), bytes),
      close: () => rm(dir, { recursive: true, force: true }),
    };
  },
  s3: async () => {
    const server: S3TestServer = await startS3TestServer();
    const store = createS3BlobStore(server.options);
    const { PutObjectCommand, S3Client } = await import('@aws-sdk/client-s3');
    const raw = new S3Client({ endpoint: server.options.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: server.options });
    return {
      store,
      corrupt: async (name, bytes) => {
        await raw.send(new PutObjectCommand({ Bucket: server.options.bucket, Key: `${name.slice(0, 2)}/${name.slice(2)}`, Body: bytes }));
      },
      close: async () => {
        raw.destroy();
        store.destroy();
        await server.close();
      },
    };
  },
};

for (const [kind, make] of Object.entries(subjects)) {
  describe(`BlobStore contract: ${kind}`, () => {
    let subject: Subject;
    beforeAll(async () => {
      subject = await make();
    }, 30_000);
    afterAll(() => subject?.close());

    it('names a blob by its SHA-256, reads it back, is idempotent, deletes', async () => {
      const { store } = subject;
      const bytes = new TextEncoder().encode(`hello ${kind}`);
      const name = await store.put(bytes);
      expect(name).toBe(bytesToHex(sha256(bytes)));
      expect(await store.has(name)).toBe(true);
      expect(await store.get(name)).toEqual(bytes);
      expect(await store.put(bytes)).toBe(name);
      await store.delete(name);
      expect(await store.has(name)).toBe(false);
      expect(await store.get(name)).toBeNull();
      await store.delete(name); // deleting an absent blob is not an error
    });

    it('round-trips large and empty blobs byte for byte', async () => {
      const { store } = subject;
      const big = new Uint8Array(5 * 1024 * 1024 + 17);
      for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
      const name = await store.put(big);
      expect(Buffer.compare(Buffer.from((await store.get(name))!), Buffer.from(big))).toBe(0);
      const empty = await store.put(new Uint8Array(0));
      expect(await store.get(empty)).toEqual(new Uint8Array(0));
    });

    it('stores concurrent puts of distinct blobs', async () => {
      const { store } = subject;
      const blobs = Array.from({ length: 16 }, (_, i) => new TextEncoder().encode(`blob ${i} ${kind}`));
      const names = await Promise.all(blobs.map((b) => store.put(b)));
      for (let i = 0; i < blobs.length; i++) expect(await store.get(names[i]!)).toEqual(blobs[i]);
    });

    it('detects a corrupted blob on read', async () => {
      const { store } = subject;
      const name = await store.put(new Uint8Array([1, 2, 3, kind.length]));
      await subject.corrupt(name, new Uint8Array([9, 9, 9]));
      await expect(store.get(name)).rejects.toThrow(/does not match/);
    });

    it('refuses names that are not SHA-256 hex', async () => {
      await expect(subject.store.get('../../etc/passwd')).rejects.toThrow(TypeError);
      await expect(subject.store.has('ABC')).rejects.toThrow(TypeError);
    });

    it('check() writes, reads back and deletes a probe', async () => {
      await expect(subject.store.check()).resolves.toBeUndefined();
    });
  });
}

describe('S3 store failures', () => {
  it('check() and put() fail when the service is unreachable or the bucket is missing', async () => {
    const server = await startS3TestServer();
    const missing = createS3BlobStore({ ...server.options, bucket: 'no-such-bucket' });
    await expect(missing.put(new Uint8Array([1]))).rejects.toThrow();
    missing.destroy();
    const endpoint = server.options.endpoint!;
    await server.close();
    const down = createS3BlobStore({ ...server.options, endpoint, requestTimeoutMs: 2000 });
    await expect(down.check()).rejects.toThrow();
    down.destroy();
  }, 30_000);
});

describe('blobStoreConfigFromEnv', () => {
  it('defaults to the filesystem under the data directory', () => {
    expect(blobStoreConfigFromEnv({ env: {}, dataDir: '/d' })).toEqual({ kind: 'fs', dir: join('/d', 'blobs') });
  });
  it('reads the S3 settings and refuses incomplete ones', () => {
    const env = { TG_BLOB_STORE: 's3', S3_BUCKET: 'b', S3_ENDPOINT: 'http://127.0.0.1:9', S3_ACCESS_KEY_ID: 'a', S3_SECRET_ACCESS_KEY: 's' };
    expect(blobStoreConfigFromEnv({ env, dataDir: '/d' }).s3).toMatchObject({ bucket: 'b', region: 'us-east-1', forcePathStyle: true, prefix: '' });
    expect(blobStoreConfigFromEnv({ env: { ...env, S3_FORCE_PATH_STYLE: 'false' }, dataDir: '/d' }).s3!.forcePathStyle).toBe(false);
    expect(() => blobStoreConfigFromEnv({ env: { ...env, S3_BUCKET: '' }, dataDir: '/d' })).toThrow(/S3_BUCKET/);
    expect(() => blobStoreConfigFromEnv({ env: { TG_BLOB_STORE: 'gcs' }, dataDir: '/d' })).toThrow(RangeError);
  });
});
