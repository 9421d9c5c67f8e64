// Opens the server's libsql database (embedded file or libsql server), applies the migrations, and
// checks the connection settings an acknowledged write depends on.
//
// Embedded file: WAL journal (persistent in the file), busy_timeout 5000 ms, synchronous=FULL (an
// acknowledged commit survives power loss), foreign_keys=ON. @libsql/client keeps a pool of
// connections, so per-connection PRAGMAs run through `execute` would reach only one of them; instead
// the pool opens every connection with `timeout: 5000` (its busy timeout), and libsql's build defaults
// are synchronous=FULL and foreign_keys=ON — which `openDatabase` verifies at start rather than assumes.
//
// Writes: the embedded client runs SQLite synchronously on the event loop thread, so a second write
// transaction waiting on SQLite's lock (busy_timeout) would block the very loop the first one needs
// to commit — a stall until SQLITE_BUSY. All write transactions therefore queue on one in-process
// async mutex before they BEGIN, and every write in server/db/ runs inside `db.transaction`.
// Reads run concurrently on the pool (WAL lets readers proceed beside the writer).
import { fileURLToPath } from 'node:url';
import { createClient, type Client } from '@libsql/client';
import { drizzle, type LibSQLDatabase } from 'drizzle-orm/libsql';
import { migrate } from 'drizzle-orm/libsql/migrator';
import * as schema from './schema.ts';
import { KeyedMutex } from '../concurrency/keyed-mutex.ts';

export type Database = LibSQLDatabase<typeof schema> & { $client: Client };

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations/', import.meta.url));

const BUSY_TIMEOUT_MS = 5000;

export async function openDatabase(options: { url: string; authToken?: string; migrate?: boolean }): Promise<Database> {
  const embedded = options.url.startsWith('file:') || options.url === ':memory:';
  const client = createClient({
    url: options.url,
    authToken: options.authToken,
    timeout: BUSY_TIMEOUT_MS,
    concurrency: 8,
  });
  try {
    if (embedded) await configureEmbedded({ client });
    const db = drizzle({ client, schema }) as Database;
    serializeWriteTransactions({ db });
    if (options.migrate !== false) await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
    return db;
  } catch (error) {
    client.close();
    throw error;
  }
}

function serializeWriteTransactions(options: { db: Database }): void {
  const { db } = options;
  const writers = new KeyedMutex();
  const begin = db.transaction.bind(db);
  db.transaction = ((task, config) => writers.run({ key: 'write', task: () => begin(task, config) })) as Database['transaction'];
}

async function configureEmbedded(options: { client: Client }): Promise<void> {
  const { client } = options;
  const mode = await client.execute('PRAGMA journal_mode=WAL');
  const journal = String(mode.rows[0]?.[0] ?? '').toLowerCase();
  if (journal !== 'wal' && journal !== 'memory') throw new Error(`database: journal_mode=WAL refused (got ${journal})`);
  await client.execute(`PRAGMA busy_timeout=${BUSY_TIMEOUT_MS}`);
  await client.execute('PRAGMA synchronous=FULL');
  await client.execute('PRAGMA foreign_keys=ON');
  // Fresh pool connections must carry the same settings (see the header): check one of them.
  const [sync, fk, busy] = await Promise.all([
    client.execute('PRAGMA synchronous'),
    client.execute('PRAGMA foreign_keys'),
    client.execute('PRAGMA busy_timeout'),
  ]);
  if (Number(sync.rows[0]?.[0]) !== 2) throw new Error('database: connections do not default to synchronous=FULL');
  if (Number(fk.rows[0]?.[0]) !== 1) throw new Error('database: connections do not default to foreign_keys=ON');
  if (Number(busy.rows[0]?.[0]) !== BUSY_TIMEOUT_MS) throw new Error('database: connections do not carry busy_timeout');
}

export function closeDatabase(options: { db: Database }): void {
  options.db.$client.close();
}
