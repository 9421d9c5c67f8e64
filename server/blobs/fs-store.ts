// Content-addressed blob store on the filesystem: ciphertexts, aggregates, update packages, release payloads.
//
// A blob's name is the SHA-256 of its bytes, stored at <dir>/ab/cdef... . put() writes a temp file,
// fsyncs it, renames it into place and fsyncs the directory before it resolves, so a blob that put()
// acknowledged survives a crash; a torn write leaves only a temp file. get() re-hashes what it reads.
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { IntegrityError } from '../../core/errors.ts';

export interface BlobStore {
  /** Stores the bytes durably; resolves with their SHA-256 hex. */
  put(bytes: Uint8Array): Promise<string>;
  get(sha256: string): Promise<Uint8Array | null>;
  has(sha256: string): Promise<boolean>;
  delete(sha256: string): Promise<void>;
  /** Throws unless a blob can be written, read back and deleted. */
  check(): Promise<void>;
}

const HEX64 = /^[0-9a-f]{64}$/;

function checkName(name: string): string {
  if (typeof name !== 'string' || !HEX64.test(name)) throw new TypeError(`"sha256" expected 64 lowercase hex digits, got ${String(name).slice(0, 80)}`);
  return name;
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function createFsBlobStore(options: { dir: string }): BlobStore {
  const root = options.dir;
  const tmpDir = join(root, 'tmp');
  const pathOf = (name: string) => join(root, name.slice(0, 2), name.slice(2));

  async function writeDurably(target: string, bytes: Uint8Array): Promise<void> {
    await mkdir(tmpDir, { recursive: true });
    const dir = join(target, '..');
    const dirExisted = await stat(dir).then(
      () => true,
      () => false,
    );
    await mkdir(dir, { recursive: true });
    const tmp = join(tmpDir, `${randomBytes(12).toString('hex')}.tmp`);
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, target);
    } catch (error) {
      await unlink(tmp).catch(() => {});
      throw error;
    }
    await fsyncPath(dir);
    if (!dirExisted) await fsyncPath(root);
  }

  const store: BlobStore = {
    async put(bytes) {
      if (!(bytes instanceof Uint8Array)) throw new TypeError('"bytes" expected Uint8Array');
      const name = bytesToHex(sha256(bytes));
      const target = pathOf(name);
      // Same name, same content: an existing blob is already durable.
      if (await store.has(name)) return name;
      await writeDurably(target, bytes);
      return name;
    },
    async get(name) {
      checkName(name);
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(pathOf(name)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
      if (bytesToHex(sha256(bytes)) !== name) throw new IntegrityError(`blob ${name} does not match its SHA-256 (corrupted on disk)`);
      return bytes;
    },
    async has(name) {
      checkName(name);
      try {
        return (await stat(pathOf(name))).isFile();
      } catch {
        return false;
      }
    },
    async delete(name) {
      checkName(name);
      await rm(pathOf(name), { force: true });
    },
    async check() {
      const probe = new Uint8Array(randomBytes(32));
      const name = bytesToHex(sha256(probe));
      await writeDurably(pathOf(name), probe);
      const back = await store.get(name);
      if (back === null || bytesToHex(back) !== bytesToHex(probe)) throw new Error('blob store: probe did not read back');
      await store.delete(name);
    },
  };
  return store;
}
