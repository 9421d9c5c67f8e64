// `tensorguard admin backup --out FILE` and `tensorguard admin restore --from FILE --data-dir DIR`:
// a consistent snapshot of the server's database and of every blob it references, and its restore
// into a fresh data directory.
//
// Direct file access, on the server's host (or wherever DATA_DIR and the blob store are reachable):
// backups are the operator's business, and the data directory is theirs already — no route hands a
// whole-organization dump to a web session. It runs against a live server:
//   1. the database is snapshotted with SQLite's `VACUUM INTO` on its own connection: one read
//      transaction, so the copy is exactly the committed state at one instant (WAL lets the server keep
//      writing meanwhile);
//   2. then every blob the snapshot references (each value of a `*_sha256` column that names a stored
//      blob: packages, aggregates, release payloads, ...) is read from the blob store (fs or S3) and
//      re-hashed. Blobs are immutable and written before the transaction that names them commits, so
//      each one the snapshot names is already in the store — the pair is consistent.
// The server's audit checkpoint key (audit-signing-key.json) travels with it, so a restored server
// signs checkpoints that auditors' pinned keys still accept. A backup file is therefore as sensitive as
// the data directory: it is written mode 0600.
//
// File format (tensorguard-backup/v1): a sequence of records, each a u32 big-endian header length, a
// JSON header {kind, name, bytes, sha256} and `bytes` raw bytes; kinds `database`, `file`, `blob`, and
// last `end` {records, sha256 of everything before it}. Restore checks every record's hash and the end
// record, so a truncated or altered file is refused before anything is written.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createClient } from '@libsql/client';
import { CliError, type CommandContext } from '../context.ts';
import { blobStoreConfigFromEnv, createBlobStore, type BlobStoreConfig } from '../../server/blobs/select.ts';
import type { BlobStore } from '../../server/blobs/fs-store.ts';
import { closeDatabase, openDatabase } from '../../server/db/client.ts';

export const BACKUP_FORMAT = 'tensorguard-backup/v1';
const DB_FILE = 'tensorguard.db';
/** Files of the data directory that travel with the database. */
const DATA_FILES = ['audit-signing-key.json'];
const HEX64 = /^[0-9a-f]{64}$/;

interface RecordHeader {
  kind: 'format' | 'database' | 'file' | 'blob' | 'end';
  name: string;
  bytes: number;
  sha256: string;
  records?: number;
}

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function resolveDataDir(dataDir?: string): string {
  return resolve(dataDir ?? process.env.DATA_DIR ?? './data');
}

/** Every distinct value of the database's `*_sha256` text columns (candidates for blob names). */
async function referencedHashes(options: { dbPath: string }): Promise<string[]> {
  const client = createClient({ url: `file:${options.dbPath}` });
  try {
    const tables = await client.execute(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__drizzle%'`);
    const found = new Set<string>();
    for (const t of tables.rows) {
      const table = String(t[0]);
      const columns = await client.execute(`SELECT name FROM pragma_table_info(?)`, [table]);
      for (const c of columns.rows) {
        const column = String(c[0]);
        if (!/sha256$/i.test(column)) continue;
        const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
        const values = await client.execute(`SELECT DISTINCT ${q(column)} FROM ${q(table)} WHERE typeof(${q(column)}) = 'text'`);
        for (const v of values.rows) if (HEX64.test(String(v[0]))) found.add(String(v[0]));
      }
    }
    return [...found].sort();
  } finally {
    client.close();
  }
}

class RecordWriter {
  readonly #hash = createHash('sha256');
  records = 0;
  constructor(readonly handle: Awaited<ReturnType<typeof open>>) {}
  async write(header: Omit<RecordHeader, 'sha256' | 'bytes'>, body: Uint8Array): Promise<void> {
    const head = Buffer.from(JSON.stringify({ ...header, bytes: body.length, sha256: sha256Hex(body) }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(head.length);
    for (const part of [length, head, body]) {
      this.#hash.update(part);
      await this.handle.write(part);
    }
    this.records++;
  }
  async end(): Promise<void> {
    const head = Buffer.from(JSON.stringify({ kind: 'end', name: '', bytes: 0, sha256: this.#hash.digest('hex'), records: this.records }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(head.length);
    await this.handle.write(length);
    await this.handle.write(head);
  }
}

export async function adminBackup(
  ctx: CommandContext,
  opts: { out: string; dataDir?: string; blobStore?: BlobStoreConfig },
): Promise<Record<string, unknown>> {
  const started = performance.now();
  const dataDir = resolveDataDir(opts.dataDir);
  if (process.env.DATABASE_URL && !process.env.DATABASE_URL.startsWith('file:'))
    throw new CliError('admin backup snapshots the embedded database file; for a libsql server (DATABASE_URL=libsql://…) use the server\'s own snapshots, then back up the blobs', 'unsupported');
  const dbPath = join(dataDir, DB_FILE);
  try {
    await access(dbPath, constants.R_OK);
  } catch {
    throw new CliError(`no database at ${dbPath} (pass --data-dir or set DATA_DIR)`, 'not_found');
  }
  const out = resolve(opts.out);
  const work = await mkdtemp(join(dirname(out), '.tg-backup-'));
  const tmpOut = `${out}.tmp`;
  let store: BlobStore | null = null;
  try {
    // 1. The database at one instant: VACUUM INTO runs as one read transaction on its own connection.
    const snapshot = join(work, DB_FILE);
    const source = createClient({ url: `file:${dbPath}` });
    try {
      await source.execute('PRAGMA busy_timeout = 5000');
      await source.execute({ sql: 'VACUUM INTO ?', args: [snapshot] });
    } finally {
      source.close();
    }
    const database = new Uint8Array(await readFile(snapshot));

    // 2. The blobs that snapshot references.
    const config = opts.blobStore ?? blobStoreConfigFromEnv({ env: process.env, dataDir });
    store = createBlobStore({ config });
    const candidates = await referencedHashes({ dbPath: snapshot });
    const handle = await open(tmpOut, 'w', 0o600);
    const writer = new RecordWriter(handle);
    let blobs = 0;
    let blobBytes = 0;
    try {
      await writer.write({ kind: 'format', name: BACKUP_FORMAT }, Buffer.from(JSON.stringify({ createdAt: new Date().toISOString(), blobStore: config.kind })));
      await writer.write({ kind: 'database', name: DB_FILE }, database);
      for (const name of DATA_FILES) {
        const bytes = await readFile(join(dataDir, name)).catch(() => null);
        if (bytes) await writer.write({ kind: 'file', name }, bytes);
      }
      const bar = ctx.progress('Copying blobs', candidates.length);
      for (const [i, name] of candidates.entries()) {
        const bytes = await store.get(name); // re-hashed by the store: a corrupted blob fails the backup
        if (bytes) {
          await writer.write({ kind: 'blob', name }, bytes);
          blobs++;
          blobBytes += bytes.length;
        }
        bar.update(i + 1);
      }
      bar.stop();
      await writer.end();
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmpOut, out);
    const result = { out, database: { bytes: database.length, sha256: sha256Hex(database) }, blobs, blobBytes, bytes: (await stat(out)).size, seconds: (performance.now() - started) / 1000 };
    ctx.log(`backup written to ${out}: database ${database.length} bytes, ${blobs} blobs (${blobBytes} bytes)`);
    return result;
  } catch (error) {
    await rm(tmpOut, { force: true });
    throw error;
  } finally {
    (store as { destroy?: () => void } | null)?.destroy?.();
    await rm(work, { recursive: true, force: true });
  }
}

/** Reads and checks every record of a backup file (hashes, end record) before anything is restored. */
async function readBackup(path: string): Promise<Array<{ header: RecordHeader; body: Uint8Array }>> {
  const bytes = new Uint8Array(await readFile(path));
  const records: Array<{ header: RecordHeader; body: Uint8Array }> = [];
  const hash = createHash('sha256');
  let offset = 0;
  for (;;) {
    if (offset + 4 > bytes.length) throw new CliError(`${path}: truncated backup (no end record)`, 'backup_corrupt');
    const headLength = new DataView(bytes.buffer, bytes.byteOffset + offset).getUint32(0);
    if (headLength > 64 * 1024 || offset + 4 + headLength > bytes.length) throw new CliError(`${path}: malformed record header at byte ${offset}`, 'backup_corrupt');
    let header: RecordHeader;
    try {
      header = JSON.parse(Buffer.from(bytes.subarray(offset + 4, offset + 4 + headLength)).toString('utf8'));
    } catch {
      throw new CliError(`${path}: malformed record header at byte ${offset}`, 'backup_corrupt');
    }
    if (header.kind === 'end') {
      if (hash.digest('hex') !== header.sha256 || header.records !== records.length) throw new CliError(`${path}: the end record does not match the contents`, 'backup_corrupt');
      if (offset + 4 + headLength !== bytes.length) throw new CliError(`${path}: trailing bytes after the end record`, 'backup_corrupt');
      break;
    }
    const start = offset + 4 + headLength;
    if (!Number.isSafeInteger(header.bytes) || header.bytes < 0 || start + header.bytes > bytes.length) throw new CliError(`${path}: truncated record ${header.name}`, 'backup_corrupt');
    const body = bytes.subarray(start, start + header.bytes);
    if (sha256Hex(body) !== header.sha256) throw new CliError(`${path}: record ${header.kind} ${header.name} does not match its SHA-256`, 'backup_corrupt');
    if (header.kind === 'blob' && header.name !== header.sha256) throw new CliError(`${path}: blob ${header.name} is not named by its SHA-256`, 'backup_corrupt');
    hash.update(bytes.subarray(offset, start + header.bytes));
    records.push({ header, body });
    offset = start + header.bytes;
  }
  if (records[0]?.header.kind !== 'format' || records[0].header.name !== BACKUP_FORMAT) throw new CliError(`${path} is not a ${BACKUP_FORMAT} file`, 'backup_corrupt');
  return records;
}

export async function adminRestore(
  ctx: CommandContext,
  opts: { from: string; dataDir: string; blobStore?: BlobStoreConfig },
): Promise<Record<string, unknown>> {
  const started = performance.now();
  const dataDir = resolve(opts.dataDir);
  const records = await readBackup(resolve(opts.from));
  const dbPath = join(dataDir, DB_FILE);
  if (await stat(dbPath).then(() => true, () => false)) throw new CliError(`${dbPath} exists: restore only into a fresh data directory`, 'exists');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const config = opts.blobStore ?? blobStoreConfigFromEnv({ env: process.env, dataDir });
  if (config.kind === 'fs') await mkdir(config.dir!, { recursive: true, mode: 0o700 });
  const store = createBlobStore({ config });
  try {
    let blobs = 0;
    for (const { header, body } of records) {
      if (header.kind === 'blob') {
        if ((await store.put(body)) !== header.name) throw new CliError(`blob ${header.name} stored under another name`, 'backup_corrupt');
        blobs++;
      } else if (header.kind === 'file') {
        if (!DATA_FILES.includes(header.name)) throw new CliError(`${opts.from}: unexpected file ${header.name}`, 'backup_corrupt');
        await writeFile(join(dataDir, header.name), body, { mode: 0o600 });
      }
    }
    // The database last, written durably: a restore cut short leaves no database, so no server starts on half a restore.
    const database = records.find((r) => r.header.kind === 'database');
    if (!database) throw new CliError(`${opts.from}: no database record`, 'backup_corrupt');
    const tmp = `${dbPath}.restore-tmp`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(database.body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, dbPath);
    // Open it the way the server does (WAL, migrations of a newer version applied), and check that every
    // blob it references is now in the store.
    const db = await openDatabase({ url: `file:${dbPath}` });
    closeDatabase({ db });
    const missing: string[] = [];
    const restored = new Set(records.filter((r) => r.header.kind === 'blob').map((r) => r.header.name));
    for (const name of await referencedHashes({ dbPath })) if (restored.has(name) && !(await store.has(name))) missing.push(name);
    if (missing.length > 0) throw new CliError(`restore: ${missing.length} blobs did not reach the store (first ${missing[0]})`, 'restore_incomplete');
    ctx.log(`restored into ${dataDir}: database ${database.body.length} bytes, ${blobs} blobs`);
    return { dataDir, database: { bytes: database.body.length, sha256: database.header.sha256 }, blobs, blobStore: config.kind, seconds: (performance.now() - started) / 1000 };
  } finally {
    (store as { destroy?: () => void }).destroy?.();
  }
}
