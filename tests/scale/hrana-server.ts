// TEST-ONLY protocol fixture: a Hrana-over-HTTP server (the protocol sqld, the libsql server, speaks)
// backed by a real SQLite database file through the `libsql` native binding — the same engine
// @libsql/client uses for embedded files. It is NOT sqld: no replication, no namespaces, no JWT
// verification, no protobuf encoding. It exists so the server's remote database path
// (DATABASE_URL=http://… or libsql://…?tls=0) can be exercised on a machine where no sqld binary exists.
//
// Data flow (mirrors libsql-server/src/hrana/http/{mod,stream,request}.rs and hrana/stmt.rs):
//   POST /v2/pipeline | /v3/pipeline  {baton?, requests[]}  -> {baton, base_url, results[]}
//   POST /v3/cursor                   {baton?, batch}       -> newline-delimited JSON entries
//   GET  /v2, /v3 (version probes, unauthenticated), /health; /v3-protobuf answers 404 so a probing
//   client falls back to JSON (the installed @libsql/client never probes: it speaks v2 JSON).
// - Auth: every POST needs `Authorization: Bearer <authToken>`; a missing or wrong token is answered
//   401 with sqld's body shape {"error": "Unauthorized: …"} (the client raises LibsqlError
//   code SERVER_ERROR, cause HttpServerError status 401).
// - Streams and batons: a request without a baton opens a stream, which owns ONE SQLite connection
//   for its lifetime, so BEGIN IMMEDIATE … COMMIT spread over several HTTP requests is a real
//   interactive transaction. Each response carries a fresh baton (stream id + sequence number, HMAC'd);
//   an old or forged baton is a 400 protocol error, a stream idle for `streamExpiryMs` (sqld: 10 s)
//   expires (its connection rolls back) and its baton then gets 500 STREAM_EXPIRED. `close` ends the
//   stream (baton null); a connection left inside a transaction is rolled back, as when sqld drops it.
// - Requests: execute, batch (conditions ok/error/not/and/or/is_autocommit, per-step results and
//   errors), sequence, describe, store_sql/close_sql (50 texts of ≤ 5 kB, as sqld), get_autocommit and
//   is_autocommit (v3 only), close.
// - Values: null / integer (decimal string, bound as INTEGER) / float (bound as REAL) / text / blob
//   (base64), read back with safe integers so 64-bit values round-trip.
// - Errors: a SQLite failure becomes a per-request (or per-step) Hrana error {message: "SQLite error:
//   <sqlite message>", code: <PRIMARY result code name>} — sqld reports primary codes, so a UNIQUE
//   violation arrives as code SQLITE_CONSTRAINT with "UNIQUE constraint failed: t.c" in the message
//   (what server/db/common.ts isUniqueViolation matches). Statement-shape problems use sqld's codes
//   (SQL_NO_STATEMENT, SQL_MANY_STATEMENTS, ARGS_INVALID, ARGS_BOTH_POSITIONAL_AND_NAMED).
// - Locking: SQLite calls are synchronous on this event loop, so a connection must never wait inside
//   SQLite (busy_timeout is 0: blocking there would stall the very stream that has to COMMIT). The
//   fixture queues the write lock itself, as sqld's lock-stealing busy handler does: a statement that
//   takes the write lock (BEGIN IMMEDIATE/EXCLUSIVE, INSERT/UPDATE/DELETE/REPLACE/CREATE/DROP/ALTER,
//   WITH …) waits asynchronously while another stream's transaction holds it; a waiter may steal the
//   lock from a write transaction older than `txnTimeoutMs` (sqld: TXN_TIMEOUT, 5 s): the holder is
//   rolled back and its next statement fails TRANSACTION_TIMEOUT. A SQLITE_BUSY that still happens
//   (a writer outside the fixture) is retried on a fresh connection outside a transaction, and answered
//   SQLITE_BUSY inside one. (libsql leaves a statement whose step failed BUSY active, which makes every
//   later COMMIT on that connection fail; such connections are retired.)
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import Database from 'libsql';

type Connection = InstanceType<typeof Database>;

/** Hrana JSON value (hrana-client shared/json_encode.js Value). */
type WireValue =
  | { type: 'null' }
  | { type: 'integer'; value: string }
  | { type: 'float'; value: number }
  | { type: 'text'; value: string }
  | { type: 'blob'; base64: string };
type SqlValue = null | bigint | number | string | Uint8Array;

interface WireStmt {
  sql?: string;
  sql_id?: number;
  args?: WireValue[];
  named_args?: Array<{ name: string; value: WireValue }>;
  want_rows?: boolean;
}
type WireCond =
  | { type: 'ok' | 'error'; step: number }
  | { type: 'not'; cond: WireCond }
  | { type: 'and' | 'or'; conds: WireCond[] }
  | { type: 'is_autocommit' };
interface WireBatch {
  steps: Array<{ condition?: WireCond | null; stmt: WireStmt }>;
}
interface WireError {
  message: string;
  code: string;
}
interface StmtResult {
  cols: Array<{ name: string; decltype: string | null }>;
  rows: WireValue[][];
  affected_row_count: number;
  last_insert_rowid: string | null;
}

export interface HranaServerStats {
  /** HTTP pipeline requests (v2 + v3) and cursor requests answered. */
  pipelineRequests: number;
  cursorRequests: number;
  /** Pipeline/cursor requests that continued an existing stream with a baton (interactive transactions). */
  batonRequests: number;
  streamsOpened: number;
  /** Requests refused 401 (missing or wrong token). */
  unauthorized: number;
  /** Statements that met SQLITE_BUSY and waited for the write lock; transactions whose lock was stolen. */
  lockWaits: number;
  lockSteals: number;
  /** Longest time one stream held the write lock (ms), and the most statements it ran meanwhile. */
  maxWriteHoldMs: number;
  maxWriteStatements: number;
  /** The statements of the longest-held write transaction (first 40), to see what held the lock. */
  longestWriteSql: string[];
  /** Hrana errors answered, by code (SQLITE_CONSTRAINT, SQL_MANY_STATEMENTS, ...). */
  errorsByCode: Record<string, number>;
  /** Every SQL text executed, when `recordSql` is on. */
  sql: string[];
}

export interface HranaTestServer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  stats: HranaServerStats;
  /** Streams currently open (each holds one SQLite connection). */
  openStreams(): number;
  /** Stops listening, expires every stream (rolling back open transactions) and closes the connections. */
  close(): Promise<void>;
}

class ProtocolError extends Error {}
class StreamExpiredError extends Error {}
/** A Hrana error answered to one request or one batch step. */
class HranaError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

// sqld's hrana/stmt.rs sqlite_error_code: the PRIMARY result code names (extended code & 0xff).
const PRIMARY_CODES: Record<number, string> = {
  1: 'SQLITE_ERROR', 2: 'SQLITE_INTERNAL', 3: 'SQLITE_PERM', 4: 'SQLITE_ABORT', 5: 'SQLITE_BUSY', 6: 'SQLITE_LOCKED',
  7: 'SQLITE_NOMEM', 8: 'SQLITE_READONLY', 9: 'SQLITE_INTERRUPT', 10: 'SQLITE_IOERR', 11: 'SQLITE_CORRUPT',
  12: 'SQLITE_NOTFOUND', 13: 'SQLITE_FULL', 14: 'SQLITE_CANTOPEN', 15: 'SQLITE_PROTOCOL', 17: 'SQLITE_SCHEMA',
  18: 'SQLITE_TOOBIG', 19: 'SQLITE_CONSTRAINT', 20: 'SQLITE_MISMATCH', 21: 'SQLITE_MISUSE', 22: 'SQLITE_NOLFS',
  23: 'SQLITE_AUTH', 25: 'SQLITE_RANGE', 26: 'SQLITE_NOTADB',
};
const SQLITE_BUSY = 5;
const SQLITE_BUSY_SNAPSHOT = 517;
const MAX_STORED_SQL = 50;
const MAX_STORED_SQL_BYTES = 5 * 1000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;

function rawCodeOf(error: unknown): number | null {
  const raw = (error as { rawCode?: unknown }).rawCode;
  return typeof raw === 'number' ? raw : null;
}

/** A SQLite exception as sqld's StmtError::SqliteError renders it. */
function sqliteError(error: unknown): HranaError {
  if (error instanceof HranaError) return error;
  const raw = rawCodeOf(error);
  if (raw === null) return new HranaError(`SQLite error: ${(error as Error).message}`, 'SQLITE_UNKNOWN');
  return new HranaError(`SQLite error: ${(error as Error).message}`, PRIMARY_CODES[raw & 0xff] ?? 'SQLITE_UNKNOWN');
}

// ---------------------------------------------------------------------------------------------
// SQL text scanning: statement boundaries (sqld parses to refuse zero or several statements in an
// `execute`, and to split a `sequence`) and parameter names (for `describe`).

interface ScannedStatement {
  sql: string;
  /** First keyword, upper-case (SELECT, INSERT, BEGIN, WITH, ...). */
  keyword: string;
  /** Second keyword, upper-case (IMMEDIATE in BEGIN IMMEDIATE). */
  keyword2: string;
  params: string[];
}

function scanSql(sql: string): ScannedStatement[] {
  const out: ScannedStatement[] = [];
  let start = 0;
  let words: string[] = [];
  let params: string[] = [];
  let significant = false;
  let inTrigger = false;
  let lastWord = '';
  const finish = (end: number) => {
    if (significant) out.push({ sql: sql.slice(start, end).trim(), keyword: words[0] ?? '', keyword2: words[1] ?? '', params });
    start = end + 1;
    words = [];
    params = [];
    significant = false;
    inTrigger = false;
    lastWord = '';
  };
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl + 1;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const endc = sql.indexOf('*/', i + 2);
      i = endc < 0 ? sql.length : endc + 2;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === ';') {
      if (inTrigger && lastWord !== 'END') {
        i++;
        continue;
      }
      finish(i);
      i++;
      continue;
    }
    significant = true;
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      for (;;) {
        if (j >= sql.length) break;
        if (sql[j] === close) {
          if (close !== ']' && sql[j + 1] === close) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      i = j + 1;
      lastWord = '';
      continue;
    }
    if (c === '?') {
      let j = i + 1;
      while (j < sql.length && /[0-9]/.test(sql[j]!)) j++;
      params.push(sql.slice(i, j));
      i = j;
      continue;
    }
    if ((c === ':' || c === '@' || c === '$') && /[A-Za-z0-9_]/.test(sql[i + 1] ?? '')) {
      let j = i + 1;
      while (j < sql.length && /[A-Za-z0-9_$:]/.test(sql[j]!)) j++;
      params.push(sql.slice(i, j));
      i = j;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < sql.length && /[A-Za-z0-9_$]/.test(sql[j]!)) j++;
      const word = sql.slice(i, j).toUpperCase();
      if (words.length < 4) words.push(word);
      if (word === 'TRIGGER' && words[0] === 'CREATE' && words.length <= 4) inTrigger = true;
      lastWord = word;
      i = j;
      continue;
    }
    lastWord = '';
    i++;
  }
  finish(sql.length);
  return out;
}

/** Parameter slots as sqlite3_bind_parameter_name reports them: index i -> name, or null for `?`. */
function parameterSlots(params: string[]): Array<string | null> {
  const slots: Array<string | null> = [];
  const named = new Map<string, number>();
  for (const p of params) {
    if (p === '?') slots.push(null);
    else if (p.startsWith('?')) {
      const n = Number(p.slice(1));
      while (slots.length < n) slots.push(null);
      slots[n - 1] = p;
    } else if (!named.has(p)) {
      slots.push(p);
      named.set(p, slots.length);
    }
  }
  return slots;
}

const WRITE_KEYWORDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'CREATE', 'DROP', 'ALTER', 'REINDEX']);
const DML_KEYWORDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'REPLACE']);

// ---------------------------------------------------------------------------------------------

interface Stream {
  id: bigint;
  seq: bigint;
  conn: Connection | null;
  sqls: Map<number, string>;
  state: 'available' | 'acquired' | 'expired';
  expiry: NodeJS.Timeout | null;
  /** Set while this stream's connection holds the write lock (heuristically: wrote inside a transaction). */
  writeSince: number | null;
  /** Statements run since writeSince (their text, up to 40). */
  writeStatements: number;
  writeSql: string[];
  /** Its write transaction was rolled back by a lock thief; the next statement reports it. */
  stolen: boolean;
}

export async function startHranaServer(options: {
  /** SQLite database file (created if missing; put in WAL mode like sqld's). */
  path: string;
  authToken: string;
  port?: number;
  host?: string;
  /** How long a write transaction keeps the lock before a waiter may steal it (sqld TXN_TIMEOUT: 5 s). */
  txnTimeoutMs?: number;
  /** An idle stream expires after this long (sqld: 10 s). */
  streamExpiryMs?: number;
  recordSql?: boolean;
}): Promise<HranaTestServer> {
  if (!options.authToken) throw new TypeError('"authToken" expected a non-empty string, got ""');
  const txnTimeoutMs = options.txnTimeoutMs ?? 5000;
  const streamExpiryMs = options.streamExpiryMs ?? 10_000;
  const batonKey = randomBytes(32);
  const expectedAuth = Buffer.from(`Bearer ${options.authToken}`);
  const streams = new Map<bigint, Stream>();
  const idle: Connection[] = [];
  const lockWaiters = new Set<() => void>();
  /** Connections holding a statement libsql never reset (a step that failed SQLITE_BUSY); retired, never pooled. */
  const poisoned = new WeakSet<Connection>();
  let closed = false;
  const stats: HranaServerStats = {
    pipelineRequests: 0,
    cursorRequests: 0,
    batonRequests: 0,
    streamsOpened: 0,
    unauthorized: 0,
    lockWaits: 0,
    lockSteals: 0,
    maxWriteHoldMs: 0,
    maxWriteStatements: 0,
    longestWriteSql: [],
    errorsByCode: {},
    sql: [],
  };

  // sqld keeps one connection open for the database's lifetime; this one also sets WAL (persistent).
  const anchor = new Database(options.path, { timeout: 0 });
  // (.all(), never .get(): a statement stepped only to its first row stays active and holds a read lock.)
  const mode = (anchor.prepare('PRAGMA journal_mode=WAL').raw(true).all() as unknown[][])[0]!;
  if (String(mode[0]).toLowerCase() !== 'wal') throw new Error(`hrana fixture: journal_mode=WAL refused (${String(mode[0])})`);

  const openConnection = (): Connection => idle.pop() ?? new Database(options.path, { timeout: 0 });

  function releaseConnection(conn: Connection): void {
    if (poisoned.has(conn)) {
      conn.close();
      return;
    }
    if (conn.inTransaction) {
      try {
        conn.exec('ROLLBACK');
      } catch {
        conn.close();
        return;
      }
    }
    if (closed || idle.length >= 8) conn.close();
    else idle.push(conn);
  }

  function lockReleased(): void {
    for (const wake of [...lockWaiters]) wake();
  }

  /** The stream ended its write transaction (commit, rollback, close or expiry): wake the waiters. */
  function settleWriteState(stream: Stream): void {
    if (stream.writeSince !== null && !(stream.conn?.inTransaction ?? false)) endWrite(stream);
  }

  function endWrite(stream: Stream): void {
    if (stream.writeSince === null) return;
    if (Date.now() - stream.writeSince >= stats.maxWriteHoldMs) {
      stats.maxWriteHoldMs = Date.now() - stream.writeSince;
      stats.longestWriteSql = stream.writeSql;
    }
    stats.maxWriteStatements = Math.max(stats.maxWriteStatements, stream.writeStatements);
    stream.writeSince = null;
    lockReleased();
  }

  function dropStream(stream: Stream, state: 'expired' | 'gone'): void {
    if (stream.expiry) clearTimeout(stream.expiry);
    stream.expiry = null;
    const conn = stream.conn;
    stream.conn = null;
    if (conn) releaseConnection(conn);
    endWrite(stream);
    if (state === 'expired') {
      stream.state = 'expired';
      // sqld keeps expired handles for 5 minutes to say "expired" instead of "invalid baton".
      stream.expiry = setTimeout(() => streams.delete(stream.id), 5 * 60_000);
      stream.expiry.unref();
    } else streams.delete(stream.id);
  }

  function encodeBaton(stream: Stream): string {
    const payload = Buffer.alloc(16);
    payload.writeBigUInt64BE(stream.id, 0);
    payload.writeBigUInt64BE(stream.seq, 8);
    const mac = createHmac('sha256', batonKey).update(payload).digest();
    return Buffer.concat([payload, mac]).toString('base64').replace(/=+$/, '');
  }

  function acquireStream(baton: string | null | undefined): Stream {
    if (baton === undefined || baton === null) {
      let id: bigint;
      do id = randomBytes(8).readBigUInt64BE(0);
      while (streams.has(id));
      const stream: Stream = { id, seq: randomBytes(8).readBigUInt64BE(0), conn: openConnection(), sqls: new Map(), state: 'acquired', expiry: null, writeSince: null, writeStatements: 0, writeSql: [], stolen: false };
      streams.set(id, stream);
      stats.streamsOpened++;
      return stream;
    }
    const data = Buffer.from(baton, 'base64');
    if (data.length !== 48) throw new ProtocolError('Received an invalid baton');
    const mac = createHmac('sha256', batonKey).update(data.subarray(0, 16)).digest();
    if (!timingSafeEqual(mac, data.subarray(16))) throw new ProtocolError('Received an invalid baton');
    const id = data.readBigUInt64BE(0);
    const seq = data.readBigUInt64BE(8);
    const stream = streams.get(id);
    if (!stream) throw new ProtocolError('Received an invalid baton');
    if (stream.state === 'expired') throw new StreamExpiredError('The stream has expired due to inactivity');
    if (stream.state === 'acquired' || stream.seq !== seq) throw new ProtocolError('Received a baton that has already been used');
    if (stream.expiry) clearTimeout(stream.expiry);
    stream.expiry = null;
    stream.state = 'acquired';
    stream.seq = (stream.seq + 1n) & 0xffff_ffff_ffff_ffffn;
    stats.batonRequests++;
    return stream;
  }

  /** Ends a request's hold on the stream: a new baton, or null once it was closed. */
  function releaseStream(stream: Stream): string | null {
    if (stream.conn === null) {
      dropStream(stream, 'gone');
      return null;
    }
    stream.state = 'available';
    stream.expiry = setTimeout(() => dropStream(stream, 'expired'), streamExpiryMs);
    stream.expiry.unref();
    return encodeBaton(stream);
  }

  function decodeValue(v: WireValue): SqlValue {
    if (!v || typeof v !== 'object') throw new ProtocolError('Expected a value object');
    switch (v.type) {
      case 'null':
        return null;
      case 'integer':
        if (typeof v.value !== 'string' || !/^-?[0-9]+$/.test(v.value)) throw new ProtocolError('Integer value must be a decimal string');
        return BigInt(v.value);
      case 'float':
        if (typeof v.value !== 'number') throw new ProtocolError('Float value must be a number');
        return v.value;
      case 'text':
        if (typeof v.value !== 'string') throw new ProtocolError('Text value must be a string');
        return v.value;
      case 'blob':
        if (typeof v.base64 !== 'string') throw new ProtocolError('Blob value must be base64');
        return new Uint8Array(Buffer.from(v.base64, 'base64'));
      default:
        throw new ProtocolError(`Unknown value type ${JSON.stringify((v as { type?: unknown }).type)}`);
    }
  }

  function encodeValue(v: unknown): WireValue {
    if (v === null || v === undefined) return { type: 'null' };
    if (typeof v === 'bigint') return { type: 'integer', value: v.toString() };
    if (typeof v === 'number') return { type: 'float', value: v };
    if (typeof v === 'string') return { type: 'text', value: v };
    if (v instanceof Uint8Array) return { type: 'blob', base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
    throw new Error(`hrana fixture: unexpected SQLite value ${typeof v}`);
  }

  function resolveSql(stream: Stream, sql: string | undefined, sqlId: number | undefined): string {
    if (sql !== undefined && sqlId !== undefined) throw new ProtocolError('Both `sql` and `sql_id` given');
    if (sql !== undefined) {
      if (typeof sql !== 'string') throw new ProtocolError('`sql` must be a string');
      return sql;
    }
    if (sqlId === undefined) throw new ProtocolError('Neither `sql` nor `sql_id` given');
    const stored = stream.sqls.get(sqlId);
    if (stored === undefined) throw new ProtocolError(`SQL text with id ${sqlId} was not found`);
    return stored;
  }

  interface PreparedQuery {
    scanned: ScannedStatement;
    args: SqlValue[] | Record<string, SqlValue>;
    wantRows: boolean;
  }

  /** Validates a statement the way sqld's proto_stmt_to_query does (before anything runs). */
  function toQuery(stream: Stream, stmt: WireStmt): PreparedQuery {
    if (!stmt || typeof stmt !== 'object') throw new ProtocolError('Expected a statement object');
    const sql = resolveSql(stream, stmt.sql, stmt.sql_id);
    const scanned = scanSql(sql);
    if (scanned.length === 0) throw new HranaError('SQL string does not contain any statement', 'SQL_NO_STATEMENT');
    if (scanned.length > 1) throw new HranaError('SQL string contains more than one statement', 'SQL_MANY_STATEMENTS');
    const positional = stmt.args ?? [];
    const named = stmt.named_args ?? [];
    if (!Array.isArray(positional) || !Array.isArray(named)) throw new ProtocolError('`args` and `named_args` must be arrays');
    if (positional.length > 0 && named.length > 0) throw new HranaError('Specifying both positional and named arguments is not supported', 'ARGS_BOTH_POSITIONAL_AND_NAMED');
    let args: PreparedQuery['args'];
    if (named.length > 0) {
      const record: Record<string, SqlValue> = {};
      // Names may carry their prefix (":a") or not ("a"); the binding takes the bare name.
      for (const arg of named) record[/^[:@$]/.test(arg.name) ? arg.name.slice(1) : arg.name] = decodeValue(arg.value);
      args = record;
    } else args = positional.map(decodeValue);
    return { scanned: scanned[0]!, args, wantRows: stmt.want_rows ?? true };
  }

  /** The stream whose connection holds the write lock, other than `self`. */
  function lockHolder(self: Stream): Stream | undefined {
    for (const s of streams.values()) if (s !== self && s.writeSince !== null && s.conn !== null) return s;
    return undefined;
  }

  /** Waits for the holder to finish; steals the lock once it held it for txnTimeoutMs (sqld's busy handler). */
  async function waitForHolder(holder: Stream): Promise<void> {
    stats.lockWaits++;
    if (Date.now() - holder.writeSince! >= txnTimeoutMs) {
      stats.lockSteals++;
      try {
        holder.conn!.exec('ROLLBACK');
      } catch {
        poisoned.add(holder.conn!);
      }
      endWrite(holder);
      holder.stolen = true;
      return;
    }
    await sleepUntilLockChange(holder.writeSince! + txnTimeoutMs - Date.now());
  }

  function sleepUntilLockChange(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        lockWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(1, Math.min(ms, 25)));
      lockWaiters.add(wake);
    });
  }

  /** Runs one validated statement on the stream's connection (sqld execute_stmt). */
  async function runQuery(stream: Stream, query: PreparedQuery): Promise<StmtResult> {
    if (!stream.conn) throw new ProtocolError('The stream was closed');
    if (stream.stolen) {
      stream.stolen = false;
      throw new HranaError('Transaction timed out', 'TRANSACTION_TIMEOUT');
    }
    if (options.recordSql) stats.sql.push(query.scanned.sql);
    const { keyword, keyword2 } = query.scanned;
    const takesWriteLock = WRITE_KEYWORDS.has(keyword) || keyword === 'WITH' || (keyword === 'BEGIN' && (keyword2 === 'IMMEDIATE' || keyword2 === 'EXCLUSIVE'));
    const deadline = Date.now() + txnTimeoutMs;
    for (;;) {
      let conn = stream.conn;
      if (!conn) throw new ProtocolError('The stream was closed');
      // A connection with a statement libsql left active (see `poisoned`) gets replaced between transactions.
      if (poisoned.has(conn) && !conn.inTransaction) {
        conn.close();
        conn = stream.conn = openConnection();
      }
      // The write lock is queued here, not inside SQLite: a statement is not even tried while another
      // stream's transaction holds the lock.
      if (takesWriteLock && stream.writeSince === null) {
        const holder = lockHolder(stream);
        if (holder) {
          await waitForHolder(holder);
          continue;
        }
      }
      try {
        const statement = conn.prepare(query.scanned.sql);
        if (statement.reader) statement.raw(true).safeIntegers(true);
        // One argument, always: the array (positional) or the record (named). libsql's spread form
        // would take a lone null or blob argument for a record of named parameters.
        let rows: unknown[][] = [];
        if (statement.reader) rows = statement.all(query.args) as unknown[][];
        else statement.run(query.args);
        const [changes, rowid] = (conn.prepare('SELECT changes(), last_insert_rowid()').raw(true).safeIntegers(true).all() as Array<[bigint, bigint]>)[0]!;
        const dml = DML_KEYWORDS.has(keyword) || (keyword === 'WITH' && !statement.reader);
        if (conn.inTransaction && stream.writeSince === null && takesWriteLock) {
          stream.writeSince = Date.now();
          stream.writeStatements = 0;
          stream.writeSql = [];
        }
        if (stream.writeSince !== null) {
          stream.writeStatements++;
          if (stream.writeSql.length < 40) stream.writeSql.push(`${Date.now() - stream.writeSince}ms ${query.scanned.sql.slice(0, 80)}`);
        }
        settleWriteState(stream);
        const cols = statement.reader ? statement.columns().map((c) => ({ name: c.name, decltype: c.type })) : [];
        return {
          cols,
          rows: query.wantRows ? rows.map((row) => row.map(encodeValue)) : [],
          affected_row_count: dml ? Number(changes) : 0,
          last_insert_rowid: rowid.toString(),
        };
      } catch (error) {
        if (error instanceof HranaError || error instanceof ProtocolError) throw error;
        const raw = rawCodeOf(error);
        if (raw !== null && (raw & 0xff) === SQLITE_BUSY) {
          // libsql leaves a statement that failed to step active until it is garbage-collected, and an
          // active statement makes every later COMMIT on the connection fail ("SQL statements in
          // progress"): the connection is retired once out of its transaction.
          poisoned.add(conn);
          // Outside a transaction nothing is lost by retrying on a fresh connection (a writer outside
          // this fixture, or a statement the keyword check did not see as a write); inside one, the
          // snapshot may be stale (SQLITE_BUSY_SNAPSHOT), so the error goes to the client as on sqld.
          if (!conn.inTransaction && raw !== SQLITE_BUSY_SNAPSHOT && !closed && Date.now() < deadline) {
            stats.lockWaits++;
            await sleepUntilLockChange(10);
            continue;
          }
        }
        settleWriteState(stream);
        throw sqliteError(error);
      }
    }
  }

  function toWireError(error: HranaError): WireError {
    stats.errorsByCode[error.code] = (stats.errorsByCode[error.code] ?? 0) + 1;
    return { message: error.message, code: error.code };
  }

  function evalCond(cond: WireCond, stepIndex: number, results: Array<StmtResult | null>, errors: Array<WireError | null>, stream: Stream, version: number): boolean {
    switch (cond.type) {
      case 'ok':
      case 'error':
        if (!Number.isInteger(cond.step) || cond.step < 0 || cond.step >= stepIndex) throw new ProtocolError(`Batch condition refers to step ${cond.step}, which is not before step ${stepIndex}`);
        return cond.type === 'ok' ? results[cond.step] !== null : errors[cond.step] !== null;
      case 'not':
        return !evalCond(cond.cond, stepIndex, results, errors, stream, version);
      case 'and':
        return cond.conds.every((c) => evalCond(c, stepIndex, results, errors, stream, version));
      case 'or':
        return cond.conds.some((c) => evalCond(c, stepIndex, results, errors, stream, version));
      case 'is_autocommit':
        if (version < 3) throw new ProtocolError('The `is_autocommit` condition is supported only on protocol version 3 and higher');
        return !(stream.conn?.inTransaction ?? false);
      default:
        throw new ProtocolError(`Unknown batch condition ${JSON.stringify((cond as { type?: unknown }).type)}`);
    }
  }

  /** Runs a batch step by step; `onStep` sees each executed step (the cursor streams them). */
  async function runBatch(stream: Stream, batch: WireBatch, version: number, onStep?: (index: number, result: StmtResult | null, error: WireError | null) => void) {
    if (!batch || !Array.isArray(batch.steps)) throw new ProtocolError('Expected a batch with steps');
    // sqld converts the whole batch to a program first: a malformed statement fails the request.
    const queries = batch.steps.map((step) => toQuery(stream, step.stmt));
    const results: Array<StmtResult | null> = [];
    const errors: Array<WireError | null> = [];
    for (const [i, step] of batch.steps.entries()) {
      results.push(null);
      errors.push(null);
      if (step.condition && !evalCond(step.condition, i, results, errors, stream, version)) continue;
      try {
        results[i] = await runQuery(stream, queries[i]!);
      } catch (error) {
        if (!(error instanceof HranaError)) throw error;
        errors[i] = toWireError(error);
      }
      onStep?.(i, results[i]!, errors[i]!);
    }
    return { step_results: results, step_errors: errors };
  }

  async function handleRequest(stream: Stream, request: { type: string; [k: string]: unknown }, version: number): Promise<object> {
    const needConn = () => {
      if (!stream.conn) throw new ProtocolError('The stream has already been closed');
      return stream.conn;
    };
    switch (request.type) {
      case 'close': {
        const conn = stream.conn;
        stream.conn = null;
        if (conn) releaseConnection(conn);
        endWrite(stream);
        return { type: 'close' };
      }
      case 'execute':
        needConn();
        return { type: 'execute', result: await runQuery(stream, toQuery(stream, request.stmt as WireStmt)) };
      case 'batch':
        needConn();
        return { type: 'batch', result: await runBatch(stream, request.batch as WireBatch, version) };
      case 'sequence': {
        needConn();
        const sql = resolveSql(stream, request.sql as string | undefined, request.sql_id as number | undefined);
        for (const scanned of scanSql(sql)) await runQuery(stream, { scanned, args: [], wantRows: false });
        return { type: 'sequence' };
      }
      case 'describe': {
        const conn = needConn();
        const sql = resolveSql(stream, request.sql as string | undefined, request.sql_id as number | undefined);
        const scanned = scanSql(sql);
        if (scanned.length === 0) throw new HranaError('SQL string does not contain any statement', 'SQL_NO_STATEMENT');
        if (scanned.length > 1) throw new HranaError('SQL string contains more than one statement', 'SQL_MANY_STATEMENTS');
        const first = scanned[0]!;
        try {
          const statement = conn.prepare(first.sql);
          const cols = statement.reader ? statement.columns().map((c) => ({ name: c.name, decltype: c.type })) : [];
          const isExplain = first.keyword === 'EXPLAIN';
          // sqlite3_stmt_readonly, approximated from the program: no write transaction, no write cursor.
          let isReadonly = true;
          if (!isExplain) {
            const program = conn.prepare(`EXPLAIN ${first.sql}`).all() as Array<{ opcode: string; p2: number }>;
            isReadonly = !program.some((op) => op.opcode === 'OpenWrite' || (op.opcode === 'Transaction' && Number(op.p2) !== 0));
          }
          return { type: 'describe', result: { params: parameterSlots(first.params).map((name) => ({ name })), cols, is_explain: isExplain, is_readonly: isReadonly } };
        } catch (error) {
          throw sqliteError(error);
        }
      }
      case 'store_sql': {
        const sqlId = request.sql_id as number;
        const sql = request.sql as string;
        if (!Number.isInteger(sqlId) || typeof sql !== 'string') throw new ProtocolError('store_sql needs `sql_id` and `sql`');
        if (stream.sqls.has(sqlId)) throw new ProtocolError(`SQL text with id ${sqlId} already exists`);
        if (stream.sqls.size >= MAX_STORED_SQL) throw new HranaError(`The server already stores ${stream.sqls.size} SQL texts, it cannot store more`, 'SQL_STORE_TOO_MANY');
        if (Buffer.byteLength(sql) > MAX_STORED_SQL_BYTES) throw new HranaError('The statement is too large to be stored', 'SQL_STORE_TOO_LARGE');
        stream.sqls.set(sqlId, sql);
        return { type: 'store_sql' };
      }
      case 'close_sql':
        stream.sqls.delete(request.sql_id as number);
        return { type: 'close_sql' };
      case 'get_autocommit':
        if (version < 3) throw new ProtocolError('The `get_autocommit` request is supported only on protocol version 3 and higher');
        return { type: 'get_autocommit', is_autocommit: !needConn().inTransaction };
      default:
        throw new ProtocolError(`Unknown stream request type ${JSON.stringify(request.type)}`);
    }
  }

  async function readJson(req: IncomingMessage): Promise<any> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) throw new ProtocolError('Request body is too large');
      chunks.push(chunk as Buffer);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (error) {
      throw new ProtocolError(`Could not deserialize JSON request body: ${(error as Error).message}`);
    }
  }

  function send(res: ServerResponse, status: number, type: string, body: string): void {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  async function handlePipeline(req: IncomingMessage, res: ServerResponse, version: number): Promise<void> {
    stats.pipelineRequests++;
    const body = await readJson(req);
    if (!body || typeof body !== 'object' || !Array.isArray(body.requests)) throw new ProtocolError('Expected {baton, requests}');
    const stream = acquireStream(body.baton);
    const results: object[] = [];
    try {
      for (const request of body.requests as Array<{ type: string }>) {
        try {
          results.push({ type: 'ok', response: await handleRequest(stream, request, version) });
        } catch (error) {
          if (!(error instanceof HranaError)) throw error;
          results.push({ type: 'error', error: toWireError(error) });
        }
      }
    } catch (error) {
      // A protocol violation drops the stream, as sqld drops the guard without releasing it.
      dropStream(stream, 'gone');
      throw error;
    }
    const baton = releaseStream(stream);
    send(res, 200, 'application/json', JSON.stringify({ baton, base_url: null, results }));
  }

  async function handleCursor(req: IncomingMessage, res: ServerResponse, version: number): Promise<void> {
    stats.cursorRequests++;
    const body = await readJson(req);
    if (!body || typeof body !== 'object') throw new ProtocolError('Expected {baton, batch}');
    const stream = acquireStream(body.baton);
    const lines: object[] = [];
    try {
      if (!stream.conn) throw new ProtocolError('The stream has already been closed');
      await runBatch(stream, body.batch as WireBatch, version, (step, result, error) => {
        if (error) lines.push({ type: 'step_error', step, error });
        else if (result) {
          lines.push({ type: 'step_begin', step, cols: result.cols });
          for (const row of result.rows) lines.push({ type: 'row', row });
          lines.push({ type: 'step_end', affected_row_count: result.affected_row_count, last_insert_rowid: result.last_insert_rowid });
        }
      });
    } catch (error) {
      if (error instanceof HranaError) lines.push({ type: 'error', error: toWireError(error) });
      else {
        dropStream(stream, 'gone');
        throw error;
      }
    }
    const baton = releaseStream(stream);
    const text = [{ baton, base_url: null }, ...lines].map((line) => JSON.stringify(line) + '\n').join('');
    send(res, 200, 'text/plain', text);
  }

  function authorized(req: IncomingMessage): boolean {
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === expectedAuth.length && timingSafeEqual(given, expectedAuth);
  }

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const run = async () => {
      if (closed) return send(res, 503, 'text/plain', 'shutting down');
      if (req.method === 'GET') {
        if (path === '/' || path === '/v2' || path === '/v3') return send(res, 200, 'text/plain', 'Hello, this is HTTP API v2 (Hrana over HTTP)');
        if (path === '/health') return send(res, 200, 'text/plain', '');
        return send(res, 404, 'text/plain', 'Not found (this Hrana test fixture speaks JSON only: no /v3-protobuf)');
      }
      const route = req.method === 'POST' ? { '/v2/pipeline': [2, 'pipeline'], '/v3/pipeline': [3, 'pipeline'], '/v3/cursor': [3, 'cursor'] }[path] : undefined;
      if (!route) return send(res, 404, 'text/plain', 'Not found');
      if (!authorized(req)) {
        stats.unauthorized++;
        req.resume();
        return send(res, 401, 'application/json', JSON.stringify({ error: 'Unauthorized: `The JWT is invalid`' }));
      }
      const [version, kind] = route as [number, string];
      if (kind === 'pipeline') await handlePipeline(req, res, version);
      else await handleCursor(req, res, version);
    };
    run().catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (error instanceof ProtocolError) send(res, 400, 'text/plain', error.message);
      else if (error instanceof StreamExpiredError) send(res, 500, 'application/json', JSON.stringify({ message: error.message, code: 'STREAM_EXPIRED' }));
      else send(res, 500, 'application/json', JSON.stringify({ error: `Internal Error: \`${(error as Error).message}\`` }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats,
    openStreams: () => [...streams.values()].filter((s) => s.state !== 'expired').length,
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const stream of [...streams.values()]) dropStream(stream, 'gone');
      for (const conn of idle.splice(0)) conn.close();
      lockReleased();
      anchor.close();
    },
  };
}
