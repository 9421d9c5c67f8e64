// Graceful shutdown of the real server process: on SIGTERM it stops accepting connections, finishes the
// upload in flight (committed and answered), closes the database (its WAL checkpointed away) and exits
// 0; a restart finds the contribution. An upload that never finishes is cut after TG_SHUTDOWN_TIMEOUT_MS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildUpdatePackage } from '../../core/records/update-package.ts';
import { fakeCiphertexts } from '../../server/testing/harness.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { openRound, request, robotSignedHeaders, setupFleet, type FleetSetup, type PersonRequest } from './fixtures.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `body` in two halves, the second only when `sendRest()` is called; resolves with the answer. */
function slowUpload(options: { url: string; path: string; headers: Record<string, string>; body: Uint8Array }) {
  let sendRest!: () => void;
  const gate = new Promise<void>((r) => (sendRest = r));
  const answer = new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const u = new URL(options.url + options.path);
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { ...options.headers, 'content-length': String(options.body.length) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const half = Math.floor(options.body.length / 2);
    req.write(options.body.subarray(0, half));
    void gate.then(() => req.end(options.body.subarray(half)));
  });
  return { sendRest, answer };
}

function connectRefused(url: string): Promise<boolean> {
  return fetch(url + '/healthz', { signal: AbortSignal.timeout(5000) }).then(
    () => false,
    (error: Error) => /ECONNREFUSED/.test(String((error.cause as Error | undefined)?.message ?? error.message) + String((error.cause as { code?: string } | undefined)?.code)),
  );
}

describe('graceful shutdown on SIGTERM', () => {
  let root: string;
  let proc: ServerProcess;
  let setup: FleetSetup;
  let url: string;
  const personAs = (token: string | undefined): PersonRequest => (method, path, body) => request({ url, method, path, body, token });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tg-shutdown-'));
    proc = await spawnServer({ dataDir: join(root, 'data') });
    url = proc.url;
    setup = await setupFleet({ person: personAs, robotCount: 2, realHeKey: false });
  }, 120_000);
  afterAll(async () => {
    await proc?.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });

  it('stops accepting, finishes the upload in flight, closes the database, exits 0; the contribution survives', async () => {
    const person = personAs(setup.token);
    const { config, fingerprint } = await openRound({ setup, person, roundId: 'drain-1', quorum: 1, maxContributors: 2 });
    const robot = setup.robots[0]!;
    const pkg = buildUpdatePackage({
      meta: { roundId: 'drain-1', robotId: robot.id, fleetId: setup.fleetId, keyVersion: 1, roundConfigFingerprint: fingerprint, valueCount: config.valueCount, ciphertextCount: 1, createdAt: Date.now() },
      ciphertexts: fakeCiphertexts({ parmsId: setup.he.parmsId, count: 1 }),
      secretKey: robot.keys.secretKey,
      publicKey: robot.keys.publicKey,
    }).bytes;
    const path = '/v1/rounds/drain-1/contributions';
    const upload = slowUpload({ url, path, body: pkg, headers: { ...robotSignedHeaders({ robot, method: 'POST', path, body: pkg }), 'content-type': 'application/octet-stream' } });
    await sleep(200); // the first half is in; the request is in flight

    const exitedAt = proc.exited.then((exit) => ({ ...exit, at: Date.now() }));
    proc.child.kill('SIGTERM');
    await sleep(300);
    expect(proc.child.exitCode).toBeNull(); // still draining: the upload is not finished
    expect(await connectRefused(url)).toBe(true); // no new connections

    upload.sendRest();
    const answer = await upload.answer;
    const answeredAt = Date.now();
    expect(answer.status, answer.body).toBe(201);
    expect(JSON.parse(answer.body).count).toBe(1);
    expect(answer.headers.connection).toBe('close');

    const exit = await exitedAt;
    expect(exit.code).toBe(0);
    expect(exit.at).toBeGreaterThanOrEqual(answeredAt - 50);
    expect(proc.stderr().split('\n').some((line) => line.includes('"message":"shutdown complete"') && line.includes('"drained":true'))).toBe(true);
    // The database was closed: SQLite checkpoints the WAL into the main file and removes it.
    const wal = await stat(join(root, 'data', 'tensorguard.db-wal')).then((s) => s.size, () => 0);
    expect(wal).toBe(0);

    proc = await spawnServer({ dataDir: join(root, 'data') });
    url = proc.url;
    const round = await personAs(setup.token)('GET', '/v1/rounds/drain-1');
    expect(round.body.contributions).toBe(1);
  });

  it('cuts an upload that does not finish within TG_SHUTDOWN_TIMEOUT_MS and still exits 0', async () => {
    await proc.kill('SIGTERM');
    proc = await spawnServer({ dataDir: join(root, 'data'), env: { TG_SHUTDOWN_TIMEOUT_MS: '300' } });
    url = proc.url;
    const robot = setup.robots[1]!;
    const body = new Uint8Array(200_000);
    const path = '/v1/rounds/drain-1/contributions';
    const upload = slowUpload({ url, path, body, headers: { ...robotSignedHeaders({ robot, method: 'POST', path, body }), 'content-type': 'application/octet-stream' } });
    const cut = upload.answer.then(() => 'answered', () => 'cut');
    await sleep(200);
    const t0 = Date.now();
    proc.child.kill('SIGTERM');
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await cut).toBe('cut');
    expect(proc.stderr()).toMatch(/shutdown timeout: cutting the connections/);
    proc = await spawnServer({ dataDir: join(root, 'data') });
    url = proc.url;
    expect((await personAs(setup.token)('GET', '/v1/rounds/drain-1')).body.contributions).toBe(1);
  });
});
