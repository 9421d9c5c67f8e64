// Content-addressed blob store on the filesystem: ciphertexts, aggregates, update packages, release payloads.
//
// A blob's name is the SHA-256 of its bytes, stored at <dir>/ab/cdef... . put() writes a temp file,
// fsyncs it, renames it into place and fsyncs the directory before it resolves, so a blob that put()
// acknowledged survives a crash; a torn write leaves only a temp file (swept by sweepTemporaryFiles at
// start). That sequence runs on a writer thread (server/blobs/durable-writer.ts), not as one event-loop
// turn per filesystem call. get() re-hashes what it reads. Hashing uses node:crypto (native SHA-256: the server hashes
// every upload twice, and the pure-JS hash costs tens of ms per 8 MB package).
import { mkdir, readFile, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { IntegrityError } from '../../core/errors.ts';
import { writeDurablyOffThread } from './durable-writer.ts';

const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

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

/**
 * Removes temp files a crash left behind in <dir>/tmp (writes that never reached their rename), older
 * than `olderThanMs` so a write in progress in another process is not pulled from under it. Returns
 * how many it removed.
 */
export async function sweepTemporaryFiles(options: { dir: string; olderThanMs?: number; now?: number }): Promise<number> {
  const tmpDir = join(options.dir, 'tmp');
  const cutoff = (options.now ?? Date.now()) - (options.olderThanMs ?? 60_000);
  let names: string[];
  try {
    names = await readdir(tmpDir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!name.endsWith('.tmp')) continue;
    const path = join(tmpDir, name);
    try {
      if ((await stat(path)).mtimeMs <= cutoff) {
        await unlink(path);
        removed++;
      }
    } catch {
      /* gone already */
    }
  }
  return removed;
}

export function createFsBlobStore(options: { dir: string }): BlobStore {
  const root = options.dir;
  const tmpDir = join(root, 'tmp');
  const pathOf = (name: string) => join(root, name.slice(0, 2), name.slice(2));

  // Directories known to exist: a put on the hot path skips the stat + mkdir round trips through the
  // thread pool (each waits for an event-loop turn on a busy server). Forgotten if a write finds one gone.
  const knownDirs = new Set<string>();
  async function ensureDir(dir: string): Promise<boolean> {
    if (knownDirs.has(dir)) return false;
    const existed = await stat(dir).then(
      () => true,
      () => false,
    );
    await mkdir(dir, { recursive: true });
    knownDirs.add(dir);
    return !existed;
  }

  async function writeDurably(target: string, bytes: Uint8Array, retried = false): Promise<void> {
    const dir = join(target, '..');
    try {
      await ensureDir(tmpDir);
      const created = await ensureDir(dir);
      const tmp = join(tmpDir, `${randomBytes(12).toString('hex')}.tmp`);
      // Temp file, write, fsync, rename into place, fsync the directory (and the root when the
      // directory is new): all on a writer thread (server/blobs/durable-writer.ts), resolved after the fsyncs.
      await writeDurablyOffThread({ tmp, target, dir, root: created ? root : null, bytes });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (!retried && (code === 'ENOENT' || code === 'ENOTDIR') && knownDirs.size > 0) {
        knownDirs.clear(); // a directory was removed under us: look again once
        return writeDurably(target, bytes, true);
      }
      throw error;
    }
  }

  const store: BlobStore = {
    async put(bytes) {
      if (!(bytes instanceof Uint8Array)) throw new TypeError('"bytes" expected Uint8Array');
      const name = sha256Hex(bytes);
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
        const read = await readFile(pathOf(name));
        bytes = new Uint8Array(read.buffer, read.byteOffset, read.byteLength); // a view, not a copy of tens of MB
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
      if (sha256Hex(bytes) !== name) throw new IntegrityError(`blob ${name} does not match its SHA-256 (corrupted on disk)`);
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
      const name = sha256Hex(probe);
      await writeDurably(pathOf(name), probe);
      const back = await store.get(name);
      if (back === null || Buffer.compare(back, probe) !== 0) throw new Error('blob store: probe did not read back');
      await store.delete(name);
    },
  };
  return store;
}
