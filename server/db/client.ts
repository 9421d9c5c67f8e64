// Opens the server's libsql database (embedded file or libsql server), applies the migrations, and
// checks the connection settings an acknowledged write depends on.
//
// Embedded file: WAL journal (persistent in the file), busy_timeout 5000 ms, synchronous=FULL (an
// acknowledged commit survives power loss), foreign_keys=ON. @libsql/client keeps a pool of
// connections, so per-connection PRAGMAs run through `execute` would reach only one of them; instead
// the pool opens every connection with `timeout: 5000` (its busy timeout), and libsql's build defaults
// are synchronous=FULL and foreign_keys=ON — which `openDatabase` verifies at start rather than assumes.
//
// libsql server (DATABASE_URL=libsql://host, https://host, or for a plaintext server http://host:port
// or libsql://host:port?tls=0; DATABASE_AUTH_TOKEN as the bearer token): @libsql/client speaks Hrana
// over HTTP, and every statement outside a transaction runs on a fresh server-side connection (an
// interactive transaction keeps one, tied to its baton). So no per-connection PRAGMA can be set from
// here: journal mode, synchronous and busy handling belong to the server (sqld runs WAL and makes a
// writer wait for the write lock instead of failing at once). What is checked at start: the server
// answers and accepts the token (a refusal becomes a clear error naming DATABASE_AUTH_TOKEN), and its
// connections enforce foreign keys (libsql is built with SQLITE_DEFAULT_FOREIGN_KEYS=1; a server
// without it is refused, as an embedded file would be). Migrations: drizzle applies them in one
// transaction; when several instances start at once on an empty database, the losers of that race fail
// on tables the winner created, so the remote path re-runs the migrator once (it then finds them applied).
//
// Writes: the embedded client runs SQLite synchronously on the event loop thread, so a second write
// transaction waiting on SQLite's lock (busy_timeout) would block the very loop the first one needs
// to commit — a stall until SQLITE_BUSY. All write transactions therefore queue on one in-process
// async mutex before they BEGIN, and every write in server/db/ runs inside `db.transaction`. On a
// libsql server the same queue keeps one instance to one write transaction at a time (no self-inflicted
// lock waits); instances contend only with each other, on the server's lock.
// Reads run concurrently on the pool (WAL lets readers proceed beside the writer).
import { fileURLToPath } from 'node:url';
import { createClient, type Client } from '@libsql/client';
import { drizzle, type LibSQLDatabase } from 'drizzle-orm/libsql';
import { migrate } from 'drizzle-orm/libsql/migrator';
import * as schema from './schema.ts';
import { KeyedMutex } from '../concurrency/keyed-mutex.ts';
import { jitterFraction } from '../random-jitter.ts';

export type Database = LibSQLDatabase<typeof schema> & { $client: Client };

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations/', import.meta.url));

const BUSY_TIMEOUT_MS = 5000;

export async function openDatabase(options: { url: string; authToken?: string; migrate?: boolean }): Promise<Database> {
  const embedded = options.url.startsWith('file:') || options.url === ':memory:';
  let client: Client;
  try {
    client = createClient({
      url: options.url,
      authToken: options.authToken,
      timeout: BUSY_TIMEOUT_MS,
      concurrency: 8,
    });
  } catch (error) {
    if (embedded) throw error;
    const redacted = redactDatabaseUrl(options.url);
    // The client's message may quote the URL, credentials and all.
    throw new Error(`database: DATABASE_URL ${redacted} is not a usable libsql URL: ${(error as Error).message.split(options.url).join(redacted)}`);
  }
  try {
    if (embedded) await configureEmbedded({ client });
    else await checkRemote({ client, url: options.url, authToken: options.authToken });
    const db = drizzle({ client, schema }) as Database;
    serializeWriteTransactions({ db });
    if (options.migrate !== false) {
      if (embedded) await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
      else await migrateRemote({ db });
    }
    return db;
  } catch (error) {
    client.close();
    throw error;
  }
}

/** The URL without credentials: userinfo and an `authToken` query parameter are masked. */
export function redactDatabaseUrl(url: string): string {
  return url.replace(/\/\/[^@/?#]*@/, '//***@').replace(/([?&]authToken=)[^&#]*/i, '$1***');
}

/** Walks an error's cause chain (fetch wraps the socket error; the client wraps the HTTP status). */
function causes(error: unknown): Array<{ message: string; code?: unknown; status?: unknown }> {
  const out: Array<{ message: string; code?: unknown; status?: unknown }> = [];
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 6; e = (e as { cause?: unknown }).cause, depth++)
    out.push({ message: String((e as { message?: unknown }).message ?? ''), code: (e as { code?: unknown }).code, status: (e as { status?: unknown }).status });
  return out;
}

/** One round trip before anything else, so a wrong URL or token fails the start with a message that says which. */
async function checkRemote(options: { client: Client; url: string; authToken?: string }): Promise<void> {
  const where = `the libsql server at ${redactDatabaseUrl(options.url)}`;
  let foreignKeys: number;
  try {
    const res = await options.client.execute('PRAGMA foreign_keys');
    foreignKeys = Number(res.rows[0]?.[0]);
  } catch (error) {
    const chain = causes(error);
    const status = chain.map((c) => c.status).find((s) => typeof s === 'number') as number | undefined;
    if (status === 401 || status === 403)
      throw new Error(
        options.authToken
          ? `database: ${where} refused DATABASE_AUTH_TOKEN (HTTP ${status}); set the token this server accepts`
          : `database: ${where} requires a token (HTTP ${status}); set DATABASE_AUTH_TOKEN`,
        { cause: error },
      );
    if (status !== undefined) throw new Error(`database: ${where} answered HTTP ${status}: ${chain[0]!.message}`, { cause: error });
    const detail = chain.map((c) => (typeof c.code === 'string' ? `${c.code}: ${c.message}` : c.message)).filter(Boolean).join(' <- ');
    const tlsHint =
      options.url.startsWith('libsql:') && !/[?&]tls=0/.test(options.url) && /ssl|tls|EPROTO|wrong version/i.test(detail)
        ? ' (libsql:// connects over TLS; for a plaintext server use http://host:port or libsql://host:port?tls=0)'
        : '';
    throw new Error(`database: cannot use ${where}: ${detail}${tlsHint}`, { cause: error });
  }
  if (foreignKeys !== 1) throw new Error(`database: ${where} does not enforce foreign keys on its connections (PRAGMA foreign_keys = ${foreignKeys}); run a libsql server built with its default SQLITE_DEFAULT_FOREIGN_KEYS=1`);
}

async function migrateRemote(options: { db: Database }): Promise<void> {
  try {
    await migrate(options.db, { migrationsFolder: MIGRATIONS_FOLDER });
  } catch (first) {
    // Another instance may have applied the same migrations a moment earlier (its transaction won, ours
    // rolled back on "table ... already exists"); the migrator skips what the journal table records.
    await new Promise((r) => setTimeout(r, 100 + Math.floor(jitterFraction() * 200)));
    try {
      await migrate(options.db, { migrationsFolder: MIGRATIONS_FOLDER });
    } catch (second) {
      throw new Error(`database: migrations failed on the libsql server: ${(second as Error).message}`, { cause: new AggregateError([first, second]) });
    }
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
