// The content-addressed blob store: names are SHA-256, writes are durable renames, corruption is detected.
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createFsBlobStore, sweepTemporaryFiles, type BlobStore } from './fs-store.ts';

describe('createFsBlobStore', () => {
  let dir: string;
  let store: BlobStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tg-blobs-'));
    store = createFsBlobStore({ dir });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('stores by SHA-256 under ab/cdef..., reads back, deletes', async () => {
    const bytes = new TextEncoder().encode('hello blobs');
    const name = await store.put(bytes);
    expect(name).toBe(bytesToHex(sha256(bytes)));
    expect(await readdir(join(dir, name.slice(0, 2)))).toEqual([name.slice(2)]);
    expect(await store.has(name)).toBe(true);
    expect(await store.get(name)).toEqual(bytes);
    expect(await store.put(bytes)).toBe(name);
    await store.delete(name);
    expect(await store.has(name)).toBe(false);
    expect(await store.get(name)).toBeNull();
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });

  it('detects a corrupted blob on read', async () => {
    const name = await store.put(new Uint8Array([1, 2, 3]));
    await writeFile(join(dir, name.slice(0, 2), name.slice(2)), new Uint8Array([1, 2, 4]));
    await expect(store.get(name)).rejects.toThrow(/does not match/);
  });

  it('refuses names that are not SHA-256 hex (no path traversal)', async () => {
    await expect(store.get('../../etc/passwd')).rejects.toThrow(TypeError);
  });

  it('check() passes on a writable directory and fails on an unusable one', async () => {
    await expect(store.check()).resolves.toBeUndefined();
    const file = join(dir, 'plain-file');
    await writeFile(file, 'x');
    await expect(createFsBlobStore({ dir: file }).check()).rejects.toThrow();
  });

  it('sweeps temp files an interrupted write left behind, but not recent ones', async () => {
    const tmp = join(dir, 'tmp');
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, 'old.tmp'), 'torn');
    await writeFile(join(tmp, 'recent.tmp'), 'being written');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(tmp, 'old.tmp'), hourAgo, hourAgo);
    expect(await sweepTemporaryFiles({ dir })).toBe(1);
    expect(await readdir(tmp)).toEqual(['recent.tmp']);
    expect(await sweepTemporaryFiles({ dir: join(dir, 'no-such-dir') })).toBe(0);
  });
});
