// The server on a libsql server instead of an embedded file: two `tensorguard server` processes with
// DATABASE_URL pointing at a Hrana-over-HTTP endpoint (tests/scale/hrana-server.ts, a protocol fixture
// backed by a real SQLite file — not sqld, which this machine does not have) and one S3 store (s3rver).
// Instance A uses the http://host:port form, instance B libsql://host:port?tls=0 (libsql:// alone
// means TLS in @libsql/client). Checked, all through the remote path:
//   - both instances start at the same moment on an EMPTY database: the migrations apply once, over
//     Hrana, and the loser of the race starts too; no local database file appears;
//   - a real round with contributions spread over both instances, closed on both at once: every
//     contribution counted once, exactly one finalization (the lease), the aggregate equals the sum of
//     the stored packages and decrypts to the sum of the plaintexts;
//   - unique constraints: the same robot pushing two different packages to both instances at once gets
//     one 201 and one 409; a duplicate fleet name (caught only by the UNIQUE index) is a 409 whose
//     SQLite error crossed the wire as a Hrana SQLITE_CONSTRAINT error;
//   - the sign-in lockout counts failures made on both instances;
//   - a wrong or missing auth token, or libsql:// (TLS) against a plaintext server, fails the start with
//     a message that says so; a database that goes away after the start turns /readyz to 503.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { createClient, type Client } from '@libsql/client';
import { buildUpdatePackage, openUpdatePackage } from '../../core/records/update-package.ts';
import { createDecryptor, createEncryptor } from '../../core/he/seal.ts';
import { sumCiphertextBlocks } from '../../core/he/aggregate.ts';
import { PARAM_SET_ID, getParamSet } from '../../core/he/params.ts';
import { spawnServer, type ServerProcess } from '../crash/server-process.ts';
import { runCli } from '../helpers/cli.ts';
import { openRound, request, robotSignedHeaders, setupFleet, type FleetSetup, type PersonRequest } from '../crash/fixtures.ts';
import { startS3TestServer, type S3TestServer } from '../../server/blobs/s3-test-server.ts';
import { MIGRATIONS_FOLDER, closeDatabase, openDatabase } from '../../server/db/client.ts';
import { startHranaServer, type HranaTestServer } from './hrana-server.ts';
import { roundAuditActions } from './round-audit.ts';

const ROBOTS = 8;
const TOKEN = `hrana-test-token-${randomUUID()}`;
const paramSet = getParamSet({ id: PARAM_SET_ID });
const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('server instances on a libsql server (Hrana over HTTP) with a shared S3 store', () => {
  let root: string;
  let dataDir: string;
  let s3: S3TestServer;
  let hrana: HranaTestServer;
  let direct: Client;
  let a: ServerProcess;
  let b: ServerProcess;
  let setup: FleetSetup;
  const personAt =
    (url: () => string) =>
    (token: string | undefined): PersonRequest =>
    (method, path, body) =>
      request({ url: url(), method, path, body, token });
  /** Server environment for the remote database; `token: null` leaves DATABASE_AUTH_TOKEN unset. */
  const remoteEnv = (url: string, token: string | null = TOKEN): Record<string, string> => ({
    ...s3.env,
    DATABASE_URL: url,
    ...(token === null ? {} : { DATABASE_AUTH_TOKEN: token }),
  });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tg-libsql-remote-'));
    dataDir = join(root, 'data');
    s3 = await startS3TestServer();
    hrana = await startHranaServer({ path: join(root, 'remote.db'), authToken: TOKEN });
    // The test's own view of the remote database goes through the same protocol.
    direct = createClient({ url: hrana.url, authToken: TOKEN });
    // Both start at once on the empty database (one audit key file: the data directory is shared).
    [a, b] = await Promise.all([
      spawnServer({ dataDir, env: remoteEnv(hrana.url) }),
      spawnServer({ dataDir, env: remoteEnv(`libsql://127.0.0.1:${hrana.port}?tls=0`) }),
    ]);
    setup = await setupFleet({ person: personAt(() => a.url), robotCount: ROBOTS, realHeKey: true });
  }, 240_000);

  afterAll(async () => {
    const exits = await Promise.all([a?.kill('SIGTERM'), b?.kill('SIGTERM')]);
    for (const exit of exits) if (exit) expect(exit.code).toBe(0);
    direct?.close();
    await hrana?.close();
    await s3?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('applies the migrations from empty over the remote path, once, with both instances starting together', async () => {
    const journal = JSON.parse(await readFile(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
    const applied = await direct.execute('SELECT count(*) AS n FROM __drizzle_migrations');
    expect(Number(applied.rows[0]!.n)).toBe(journal.entries.length);
    const tables = (await direct.execute(`SELECT name FROM sqlite_master WHERE type = 'table'`)).rows.map((r) => String(r.name));
    for (const table of ['rounds', 'contributions', 'leases', 'rate_limit_counters', 'audit_log']) expect(tables).toContain(table);
    // Nothing local: no embedded database file was created in the data directory.
    expect((await readdir(dataDir)).filter((name) => name.startsWith('tensorguard.db'))).toEqual([]);
    // The servers used interactive transactions (batons), not only one-shot statements.
    expect(hrana.stats.batonRequests).toBeGreaterThan(0);
    expect(hrana.stats.streamsOpened).toBeGreaterThan(0);
    expect(hrana.stats.unauthorized).toBe(0);
    for (const server of [a, b]) expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it('runs a round over both instances: each contribution once, one finalization, the exact sum', async () => {
    const asA = personAt(() => a.url)(setup.token);
    const asB = personAt(() => b.url)(setup.token);
    const roundId = `remote-${randomUUID().slice(0, 8)}`;
    const { config, fingerprint } = await openRound({ setup, person: asB, roundId, quorum: ROBOTS, maxContributors: ROBOTS + 1 });
    expect((await asA('GET', `/v1/rounds/${roundId}`)).body.state).toBe('open');

    const encryptor = await createEncryptor({ publicKey: setup.he.publicKey, paramSetId: PARAM_SET_ID });
    const expected = new BigUint64Array(paramSet.slotCount);
    const makePackage = (r: number, salt: number, count: boolean) => {
      const slots = new BigUint64Array(paramSet.slotCount);
      for (let i = 0; i < slots.length; i++) {
        slots[i] = BigInt((i * 7919 + r * 104729 + salt) % 2 ** 20);
        if (count) expected[i]! += slots[i]!;
      }
      const meta = { roundId, robotId: setup.robots[r]!.id, fleetId: setup.fleetId, keyVersion: 1, roundConfigFingerprint: fingerprint, valueCount: config.valueCount, ciphertextCount: 1, createdAt: Date.now() };
      return buildUpdatePackage({ meta, ciphertexts: encryptor.encryptSlots({ slots }), secretKey: setup.robots[r]!.keys.secretKey, publicKey: setup.robots[r]!.keys.publicKey }).bytes;
    };
    const packages = setup.robots.map((_, r) => makePackage(r, 0, r !== 0));
    const rival = makePackage(0, 17, false); // robot 0's second, different package

    const path = `/v1/rounds/${roundId}/contributions`;
    const push = async (url: string, r: number, body: Uint8Array, key: string) => {
      const res = await fetch(url + path, {
        method: 'POST',
        headers: { ...robotSignedHeaders({ robot: setup.robots[r]!, method: 'POST', path, body }), 'content-type': 'application/octet-stream', 'idempotency-key': key },
        body: body as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.timeout(90_000),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    // Robot 0 pushes two different packages (two idempotency keys) to both instances at the same moment.
    const [first, second, ...rest] = await Promise.all([
      push(a.url, 0, packages[0]!, `p-${roundId}-0`),
      push(b.url, 0, rival, `p-${roundId}-0-rival`),
      ...setup.robots.slice(1).map((_, i) => push(i % 2 ? a.url : b.url, i + 1, packages[i + 1]!, `p-${roundId}-${i + 1}`)),
    ]);
    const serverErrors = () => [a, b].flatMap((x) => x.stderr().split('\n').filter((line) => line.includes('"error"'))).join('\n');
    for (const [i, answer] of rest.entries()) expect(answer.status, `robot ${i + 1}: ${JSON.stringify(answer.body)}\n${serverErrors()}`).toBe(201);
    expect([first!.status, second!.status].sort()).toEqual([201, 409]);
    const loser = first!.status === 409 ? first! : second!;
    expect(loser.body.error.code).toBe('duplicate_contribution');
    // Whichever of robot 0's packages won is the one that counts.
    const winner = first!.status === 201 ? packages[0]! : rival;

    // Both instances close the round at the same moment: the lease lets one finalize; both answer finalized.
    const closes = await Promise.all([asA('POST', `/v1/rounds/${roundId}/close`), asB('POST', `/v1/rounds/${roundId}/close`)]);
    for (const closed of closes) {
      expect(closed.status, `${JSON.stringify(closed.body)}\n${serverErrors()}`).toBe(200);
      expect(closed.body.state).toBe('finalized');
    }
    expect((await direct.execute('SELECT count(*) AS n FROM leases')).rows[0]!.n).toBe(0); // released after the work

    const rows = (await asA('GET', `/v1/rounds/${roundId}/contributions`)).body as Array<{ id: string; seq: number; robotId: string; packageSha256: string; aggregateSha256: string }>;
    expect(rows.map((row) => row.seq)).toEqual(Array.from({ length: ROBOTS }, (_, i) => i + 1));
    expect(new Set(rows.map((row) => row.robotId))).toEqual(new Set(setup.robots.map((robot) => robot.id)));
    let sum: Uint8Array | null = null;
    for (const [i, row] of rows.entries()) {
      const pkg = await (i % 2 ? asA : asB)('GET', `/v1/rounds/${roundId}/contributions/${row.id}/package`);
      expect(pkg.status).toBe(200);
      expect(sha256Hex(pkg.body)).toBe(row.packageSha256);
      const robot = setup.robots.find((x) => x.id === row.robotId)!;
      sum = sumCiphertextBlocks({ accumulator: sum, addend: openUpdatePackage({ bytes: pkg.body, robotPublicKey: robot.keys.publicKey }).ciphertexts, parmsId: setup.he.parmsId, paramSet });
      expect(sha256Hex(sum)).toBe(row.aggregateSha256);
      if (row.robotId === setup.robots[0]!.id) expect(pkg.body).toEqual(winner);
    }
    const aggregate = await asB('GET', `/v1/rounds/${roundId}/aggregate/ciphertext`);
    expect(aggregate.status).toBe(200);
    expect(Buffer.compare(aggregate.body, sum!)).toBe(0);
    // Robot 0's contribution is whichever package won: add its plaintext to the expectation.
    const decryptor = await createDecryptor({ secretKey: setup.he.secretKey, paramSetId: PARAM_SET_ID });
    try {
      const salt = winner === rival ? 17 : 0;
      for (let i = 0; i < expected.length; i++) expected[i]! += BigInt((i * 7919 + salt) % 2 ** 20);
      const slots = decryptor.decryptSlots({ ciphertexts: aggregate.body });
      let mismatches = 0;
      for (let i = 0; i < expected.length; i++) if (slots[i] !== expected[i]) mismatches++;
      expect(mismatches).toBe(0);
    } finally {
      decryptor.destroy();
      encryptor.destroy();
    }

    const actions = await roundAuditActions(asA, roundId);
    expect(actions.filter((x) => x === 'contribution.accept').length).toBe(ROBOTS);
    expect(actions.filter((x) => x === 'round.finalize').length).toBe(1);
  }, 240_000);

  it('answers a UNIQUE violation raised by the libsql server with 409', async () => {
    const asA = personAt(() => a.url)(setup.token);
    const asB = personAt(() => b.url)(setup.token);
    const before = hrana.stats.errorsByCode.SQLITE_CONSTRAINT ?? 0;
    expect((await asA('POST', '/v1/fleets', { name: 'wrists' })).status).toBe(201);
    const dup = await asB('POST', '/v1/fleets', { name: 'wrists' });
    expect(dup.status, JSON.stringify(dup.body)).toBe(409);
    expect(dup.body.error.code).toBe('fleet_exists');
    // The refusal came from the server's UNIQUE index, as a Hrana error (sqld reports the primary code).
    expect(hrana.stats.errorsByCode.SQLITE_CONSTRAINT ?? 0).toBeGreaterThan(before);
    await expect(direct.execute({ sql: 'INSERT INTO fleets SELECT * FROM fleets LIMIT 1' })).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT', message: expect.stringMatching(/UNIQUE constraint failed|PRIMARY KEY/) });
  });

  it('counts failed sign-ins on both instances toward one lockout', async () => {
    const attempt = (server: ServerProcess, password: string) => request({ url: server.url, method: 'POST', path: '/v1/sessions', body: { user: 'olivia', password } });
    for (let i = 0; i < 5; i++) expect((await attempt(i % 2 ? a : b, 'not the password')).status).toBe(401);
    for (const server of [a, b]) {
      const locked = await attempt(server, 'fixture password 1');
      expect(locked.status).toBe(429);
      expect(locked.body.error.code).toBe('throttled');
    }
    const counters = await direct.execute(`SELECT count AS n FROM rate_limit_counters WHERE key = 'signin:user:olivia'`);
    expect(Number(counters.rows[0]!.n)).toBe(5);
  });

  it('refuses to start with a wrong or missing token, or TLS against a plaintext server, and says why', async () => {
    const refusedBefore = hrana.stats.unauthorized;
    // `tensorguard server` exits with the error instead of listening (a regression that starts anyway
    // would keep running and time the test out).
    const failures = await Promise.all(
      [remoteEnv(hrana.url, 'not-the-token'), remoteEnv(hrana.url, null), remoteEnv(`libsql://127.0.0.1:${hrana.port}`)].map(async (env) => {
        const run = await runCli(['server', '--port', '0', '--host', '127.0.0.1', '--data-dir', join(root, `refused-${randomUUID().slice(0, 6)}`), '--json'], env);
        expect(run.code).not.toBe(0);
        return run.stdout + run.stderr;
      }),
    );
    expect(failures[0]).toMatch(/refused DATABASE_AUTH_TOKEN \(HTTP 401\)/);
    expect(failures[1]).toMatch(/requires a token \(HTTP 401\); set DATABASE_AUTH_TOKEN/);
    expect(failures[2]).toMatch(/libsql:\/\/ connects over TLS; for a plaintext server use http:\/\/host:port or libsql:\/\/host:port\?tls=0/);
    for (const message of failures) expect(message).not.toContain(TOKEN);
    expect(hrana.stats.unauthorized).toBeGreaterThanOrEqual(refusedBefore + 2);
  }, 120_000);

  it('turns /readyz to 503 when the libsql server goes away', async () => {
    for (const server of [a, b]) expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    await hrana.close();
    for (const server of [a, b]) {
      const res = await fetch(`${server.url}/readyz`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { failing: string[] }).failing).toContain('database');
    }
  });
});

// The fixture itself, driven the way @libsql/client drives it (and, for the v3-only requests the
// installed client does not send, with raw Hrana JSON), so the results above rest on a protocol
// implementation that is checked, not assumed.
describe('the Hrana fixture and server/db/client.ts over it', () => {
  let root: string;
  let hrana: HranaTestServer;
  const clients: Client[] = [];
  const connect = (options: { token?: string; intMode?: 'number' | 'bigint' } = {}) => {
    const client = createClient({ url: hrana.url, authToken: options.token ?? TOKEN, intMode: options.intMode });
    clients.push(client);
    return client;
  };
  const pipeline = async (path: string, body: unknown, token = TOKEN) => {
    const res = await fetch(hrana.url + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tg-hrana-'));
    hrana = await startHranaServer({ path: join(root, 'fixture.db'), authToken: TOKEN, txnTimeoutMs: 2500, streamExpiryMs: 3000 });
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await hrana?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('migrates an empty database from three openDatabase calls at once (the losers re-run the migrator)', async () => {
    const dbs = await Promise.all([0, 1, 2].map(() => openDatabase({ url: hrana.url, authToken: TOKEN })));
    const journal = JSON.parse(await readFile(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
    expect(Number((await dbs[0]!.$client.execute('SELECT count(*) FROM __drizzle_migrations')).rows[0]![0])).toBe(journal.entries.length);
    for (const db of dbs) closeDatabase({ db });
  });

  it('round-trips values and maps SQLite errors to the codes sqld sends', async () => {
    const client = connect({ intMode: 'bigint' });
    await client.execute('CREATE TABLE vals (id INTEGER PRIMARY KEY, i INTEGER, f REAL, t TEXT UNIQUE, b BLOB, n)');
    const big = 2n ** 62n + 7n;
    const res = await client.execute({ sql: 'INSERT INTO vals (i, f, t, b, n) VALUES (?, ?, ?, ?, ?) RETURNING i, f, t, b, n, typeof(f)', args: [big, 1.5, 'héllo', new Uint8Array([0, 1, 255]), null] });
    expect(res.rowsAffected).toBe(1);
    expect(res.lastInsertRowid).toBe(1n);
    const row = res.rows[0]!;
    expect([row.i, row.f, row.t, new Uint8Array(row.b as ArrayBuffer), row.n, row[5]]).toEqual([big, 1.5, 'héllo', new Uint8Array([0, 1, 255]), null, 'real']);
    expect((await client.execute({ sql: 'SELECT :a + @b AS s', args: { a: 2, b: 3 } })).rows[0]!.s).toBe(5);
    await expect(client.execute({ sql: 'INSERT INTO vals (t) VALUES (?)', args: ['héllo'] })).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT', message: expect.stringContaining('UNIQUE constraint failed: vals.t') });
    await expect(client.execute('SELECT 1; SELECT 2')).rejects.toMatchObject({ code: 'SQL_MANY_STATEMENTS' });
    await expect(client.execute('-- nothing')).rejects.toMatchObject({ code: 'SQL_NO_STATEMENT' });
    await expect(client.execute('SELEC 1')).rejects.toMatchObject({ code: 'SQLITE_ERROR' });
    // A batch is atomic: the failing step rolls the earlier one back.
    await expect(client.batch(["INSERT INTO vals (t) VALUES ('x')", "INSERT INTO vals (t) VALUES ('héllo')"], 'write')).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT' });
    expect((await client.execute("SELECT count(*) FROM vals WHERE t = 'x'")).rows[0]![0]).toBe(0n);
    await client.executeMultiple("INSERT INTO vals (t) VALUES ('m1'); INSERT INTO vals (t) VALUES ('m2');");
    expect((await client.execute("SELECT count(*) FROM vals WHERE t LIKE 'm%'")).rows[0]![0]).toBe(2n);
    expect((await client.execute('PRAGMA foreign_keys')).rows[0]![0]).toBe(1n);
  });

  it('holds one connection per stream: a second writer waits for the first COMMIT, and a stalled writer loses the lock', async () => {
    const one = connect();
    const two = connect();
    await one.execute('CREATE TABLE IF NOT EXISTS queue (who TEXT, at INTEGER)');
    const first = await one.transaction('write');
    await first.execute({ sql: 'INSERT INTO queue VALUES (?, ?)', args: ['first', Date.now()] });
    let secondDone = 0;
    const second = (async () => {
      const tx = await two.transaction('write');
      await tx.execute({ sql: 'INSERT INTO queue VALUES (?, ?)', args: ['second', Date.now()] });
      await tx.commit();
      secondDone = Date.now();
    })();
    await new Promise((r) => setTimeout(r, 300));
    expect(secondDone).toBe(0); // still queued behind the open transaction
    // Outside the transaction nothing of it is visible yet (its own stream sees its write).
    expect((await two.execute("SELECT count(*) FROM queue WHERE who = 'first'")).rows[0]![0]).toBe(0);
    expect((await first.execute("SELECT count(*) FROM queue WHERE who = 'first'")).rows[0]![0]).toBe(1);
    await first.commit();
    const committedAt = Date.now();
    await second;
    expect(secondDone).toBeGreaterThanOrEqual(committedAt);
    expect((await one.execute('SELECT who FROM queue ORDER BY rowid')).rows.map((r) => r.who)).toEqual(['first', 'second']);

    // A writer that keeps the lock past txnTimeoutMs (2.5 s here, 5 s on sqld) is rolled back when
    // someone waits for the lock; its next statement reports TRANSACTION_TIMEOUT.
    const stalled = await one.transaction('write');
    await stalled.execute("INSERT INTO queue VALUES ('stalled', 0)");
    const began = Date.now();
    while (Date.now() - began < 2600) {
      await new Promise((r) => setTimeout(r, 500));
      await stalled.execute('SELECT 1'); // keeps the stream alive (expiry 3 s) while the transaction ages
    }
    const steals = hrana.stats.lockSteals;
    await two.execute("INSERT INTO queue VALUES ('thief', 0)");
    expect(hrana.stats.lockSteals).toBe(steals + 1);
    await expect(stalled.execute('SELECT 1')).rejects.toMatchObject({ code: 'TRANSACTION_TIMEOUT' });
    stalled.close();
    expect((await two.execute("SELECT count(*) FROM queue WHERE who = 'stalled'")).rows[0]![0]).toBe(0);
  });

  it('checks batons and tokens, expires idle streams, and speaks the v3 requests', async () => {
    expect((await fetch(`${hrana.url}/v2`)).status).toBe(200);
    expect((await fetch(`${hrana.url}/v3-protobuf`)).status).toBe(404); // JSON only: probing clients fall back
    const refused = await pipeline('/v2/pipeline', { requests: [{ type: 'execute', stmt: { sql: 'SELECT 1' } }] }, 'wrong');
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.text).error).toMatch(/Unauthorized/);

    const opened = await pipeline('/v3/pipeline', {
      requests: [
        { type: 'store_sql', sql_id: 1, sql: 'SELECT ? AS v' },
        { type: 'execute', stmt: { sql: 'BEGIN' } },
        { type: 'get_autocommit' },
        { type: 'execute', stmt: { sql_id: 1, args: [{ type: 'integer', value: '41' }] } },
        { type: 'describe', sql: 'INSERT INTO queue (who, at) VALUES (:who, ?2)' },
      ],
    });
    expect(opened.status).toBe(200);
    const body = JSON.parse(opened.text);
    expect(body.results.map((r: { type: string }) => r.type)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(body.results[2].response.is_autocommit).toBe(false);
    expect(body.results[3].response.result.rows).toEqual([[{ type: 'integer', value: '41' }]]);
    expect(body.results[4].response.result).toMatchObject({ params: [{ name: ':who' }, { name: '?2' }], is_readonly: false, is_explain: false });
    // The baton continues the stream once; reusing it is a protocol error.
    const next = await pipeline('/v3/cursor', { baton: body.baton, batch: { steps: [{ stmt: { sql: 'SELECT 1 AS one' } }, { condition: { type: 'not', cond: { type: 'is_autocommit' } }, stmt: { sql: 'ROLLBACK' } }, { condition: { type: 'is_autocommit' }, stmt: { sql: 'SELECT 2' } }] } });
    expect(next.status).toBe(200);
    const lines = next.text.trim().split('\n').map((line) => JSON.parse(line));
    expect(lines[0].baton).toEqual(expect.any(String));
    expect(lines.slice(1).map((l: { type: string }) => l.type)).toEqual(['step_begin', 'row', 'step_end', 'step_begin', 'step_end', 'step_begin', 'row', 'step_end']);
    expect((await pipeline('/v3/pipeline', { baton: body.baton, requests: [{ type: 'close' }] })).status).toBe(400);
    // v2 refuses the v3-only request; an idle stream expires.
    expect((await pipeline('/v2/pipeline', { requests: [{ type: 'get_autocommit' }] })).status).toBe(400);
    await new Promise((r) => setTimeout(r, 3500));
    const expired = await pipeline('/v3/pipeline', { baton: lines[0].baton, requests: [{ type: 'close' }] });
    expect(expired.status).toBe(500);
    expect(JSON.parse(expired.text).code).toBe('STREAM_EXPIRED');
  });
});
