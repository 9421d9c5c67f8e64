// The round latency breakdown through the real CLI and the real server process: `robot train` remembers
// its training, `robot push` reports train, compress, encrypt and upload after the server acknowledged
// the contribution, `officer review` reports decrypt and review, `robot pull` reports apply, and the
// server records aggregate when the round is finalized. A timing report the server does not take
// (here a proxy answers 503 for it) never fails the push: it is kept and sent by the next command.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startServerProcess } from '../helpers/cli.ts';
import { loadAdapterDir, readSession, saveAdapterDir } from '../../cli/home.ts';
import { perturbAdapter } from '../../cli/synthetic-adapter.ts';
import { trainableTensorNames } from '../../core/round/mask.ts';
import { MODELS_DIR } from '../../cli/commands/robot-train.ts';
import { REFERENCE_POLICY } from '../../core/policy/reference.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';

const env = { TG_PASSPHRASE: `pp-${bytesToHex(randomBytes(8))}`, TG_PASSWORD: `pw-${bytesToHex(randomBytes(8))}` };
const TEMPLATE = join(MODELS_DIR, REFERENCE_POLICY.adapterDir);

let root: string;
let server: { url: string; stop(): Promise<void> };
/** Forwards to the server; while `failTimings` is set it answers 503 to POST /v1/rounds/:id/timings. */
let proxy: Server;
let proxyUrl = '';
let failTimings = false;
const officerHome = () => join(root, 'officer');
const robotHome = () => join(root, 'robot-0');
const cli = (home: string, ...args: string[]) => runCli([...args, '--json', '--home', home], env);
const ok = (r: Awaited<ReturnType<typeof runCli>>) => {
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return r.json;
};

async function breakdown(roundId: string) {
  const session = await readSession(officerHome());
  const res = await fetch(`${server.url}/v1/rounds/${roundId}/timings`, { headers: { authorization: `Bearer ${session.token}` } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { stages: Array<{ stage: string; count: number; p50Ms: number | null; maxMs: number | null }>; reports: number; actors: Record<string, number> };
  return { ...body, by: Object.fromEntries(body.stages.map((s) => [s.stage, s])) };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tg-timings-'));
  server = await startServerProcess({ dataDir: join(root, 'server-data') });
  proxy = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (failTimings && req.method === 'POST' && /^\/v1\/rounds\/[^/]+\/timings$/.test(req.url ?? '')) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'unavailable', message: 'test: timings refused' } }));
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
    const upstream = await fetch(new URL(req.url!, server.url), { method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks) });
    const out: Record<string, string> = {};
    upstream.headers.forEach((v, k) => {
      if (k !== 'content-length' && k !== 'content-encoding' && k !== 'transfer-encoding') out[k] = v;
    });
    res.writeHead(upstream.status, out);
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await new Promise<void>((done) => (proxy ? proxy.close(() => done()) : done()));
  await server?.stop();
});

describe('stage timings from the CLI', () => {
  let fleetId = '';
  let roundA = '';
  let roundB = '';

  it('sets up an organization, an officer, a fleet and one enrolled robot', async () => {
    ok(await cli(officerHome(), 'admin', 'bootstrap', '--server', proxyUrl, '--org', 'Acme Robotics', '--user', 'olivia'));
    fleetId = ok(await cli(officerHome(), 'fleet', 'create', '--name', 'alpha')).id;
    ok(await cli(officerHome(), 'officer', 'init'));
    ok(await cli(officerHome(), 'officer', 'enroll-bundle', '--fleet', fleetId, '--out', join(root, 'bundle.json')));
    ok(await cli(robotHome(), 'robot', 'enroll', '--bundle', join(root, 'bundle.json'), '--name', 'arm-0'));
  }, 120_000);

  it('a real train + push reports the four robot stages; a refused report does not fail the push and goes with the next command', async () => {
    roundA = ok(await cli(officerHome(), 'officer', 'round', 'open', '--fleet', fleetId, '--template', TEMPLATE, '--quorum', '1')).roundId;
    roundB = ok(await cli(officerHome(), 'officer', 'round', 'open', '--fleet', fleetId, '--template', TEMPLATE, '--quorum', '1')).roundId;

    // round A: trained for the round, pushed while the server refuses timing reports
    ok(await cli(robotHome(), 'robot', 'start', '--out', join(root, 'start-a'), '--base', TEMPLATE, '--round', roundA));
    const trained = ok(await cli(robotHome(), 'robot', 'train', '--out', join(root, 'trained-a'), '--base', join(root, 'start-a'), '--round', roundA, '--episodes', '4', '--steps', '40'));
    expect(trained.roundId).toBe(roundA);
    failTimings = true;
    const pushA = await cli(robotHome(), 'robot', 'push', '--adapter', join(root, 'trained-a'), '--base', TEMPLATE, '--round', roundA);
    failTimings = false;
    expect(pushA.code, pushA.stderr + pushA.stdout).toBe(0);
    expect(pushA.json.contributionId).toBeTruthy();
    expect(pushA.json.stageTimingsPending).toBe(1);
    const pending = JSON.parse(await readFile(join(robotHome(), 'robot', 'timings-pending.json'), 'utf8'));
    expect(pending.reports.map((r: { roundId: string }) => r.roundId)).toEqual([roundA]);
    expect(pending.reports[0].stages.map((s: { stage: string }) => s.stage)).toEqual(['train', 'compress', 'encrypt', 'upload']);
    expect((await breakdown(roundA)).reports).toBe(0);

    // round B: an adapter this robot did not train (the template plus noise): no train stage; the pending report of A goes first
    const base = await loadAdapterDir(TEMPLATE);
    const names = trainableTensorNames({ tensors: [...base.tensors.keys()].map((name) => ({ name })), freezeA: false });
    const untrained = perturbAdapter({ adapter: base, names, sigma: 0.01 }).adapter;
    delete (untrained.config as Record<string, unknown>).tensorguard_training_stage;
    await saveAdapterDir(join(root, 'untrained-b'), untrained);
    const pushB = ok(await cli(robotHome(), 'robot', 'push', '--adapter', join(root, 'untrained-b'), '--base', TEMPLATE, '--round', roundB));
    expect(pushB.stageTimingsPending).toBe(0);
    const a = await breakdown(roundA);
    for (const stage of ['train', 'compress', 'encrypt', 'upload']) {
      expect(a.by[stage]!.count, stage).toBe(1);
      expect(a.by[stage]!.p50Ms, stage).toBeGreaterThan(0);
    }
    // what was measured is what arrived
    expect(a.by.train!.p50Ms).toBeCloseTo(pending.reports[0].stages[0].durationMs, 6);
    expect(a.by.upload!.p50Ms).toBeCloseTo(pending.reports[0].stages[3].durationMs, 6);
    expect(a.actors.robot).toBe(1);
    const b = await breakdown(roundB);
    expect(b.by.train!.count).toBe(0);
    expect(['compress', 'encrypt', 'upload'].map((s) => b.by[s]!.count)).toEqual([1, 1, 1]);
    expect(JSON.parse(await readFile(join(robotHome(), 'robot', 'timings-pending.json'), 'utf8')).reports).toEqual([]);
  }, 300_000);

  it('close, officer review, release and robot pull complete the breakdown: aggregate, decrypt, review, apply', async () => {
    ok(await cli(officerHome(), 'officer', 'round', 'close', '--round', roundA));
    ok(await cli(officerHome(), 'officer', 'review', '--round', roundA, '--out', join(root, 'review-a'), '--gate-scenarios', '2'));
    ok(await cli(officerHome(), 'officer', 'release', '--round', roundA, '--override-gate', 'test: two gate scenarios only'));
    ok(await cli(robotHome(), 'robot', 'pull', '--out', join(root, 'pulled-a')));
    const a = await breakdown(roundA);
    expect(a.stages.map((s) => [s.stage, s.count])).toEqual([
      ['train', 1],
      ['compress', 1],
      ['encrypt', 1],
      ['upload', 1],
      ['aggregate', 1],
      ['decrypt', 1],
      ['review', 1],
      ['apply', 1],
    ]);
    expect(a.actors).toEqual({ robot: 1, officer: 1, server: 1 });
    // a second review of the same round keeps the first measurement (409, dropped quietly)
    ok(await cli(officerHome(), 'officer', 'review', '--round', roundA, '--out', join(root, 'review-a2'), '--gate-scenarios', '2'));
    const again = await breakdown(roundA);
    expect(again.by.review!.maxMs).toBe(a.by.review!.maxMs);
    expect(JSON.parse(await readFile(join(officerHome(), 'officer', 'timings-pending.json'), 'utf8')).reports).toEqual([]);
  }, 300_000);
});
