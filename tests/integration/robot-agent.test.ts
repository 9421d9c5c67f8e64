// `tensorguard robot agent` against the real server process: the robot's long-running loop.
// - On a terminal (the CLI as a child process): --once with --train trains for the open round with its
//   signed stage and pushes; a second --once does not push again; a long-running agent pulls the
//   release when the officer signs it, keeps polling without downloading it again, and stops on SIGTERM
//   with a summary.
// - In process: the keys are unsealed once for the agent's whole life (the passphrase is asked once over
//   several ticks, a push and a pull); after a push it precomputes as many encryptions of zero as the
//   push needed; a round the robot cannot push to (its adapter was trained by another stage than the
//   round's signed one) is refused once and not retried.
// - GET /v1/releases/latest answers 304 to the ETag of the newest release, 200 with the payload otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, runCli, startServerProcess } from '../helpers/cli.ts';
import { createContext } from '../../cli/context.ts';
import { exists, loadAdapterDir, saveAdapterDir } from '../../cli/home.ts';
import { robotClient, wipeRobotSession } from '../../cli/commands/robot.ts';
import { robotAgent, type AgentEvent } from '../../cli/commands/robot-agent.ts';
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
const home = (name: string) => join(root, name);
const cli = (h: string, ...args: string[]) => runCli([...args, '--json', '--home', h], env);
const ok = (r: Awaited<ReturnType<typeof runCli>>) => {
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return r.json;
};
const events = (stdout: string): AgentEvent[] =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as AgentEvent);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tg-agent-'));
  server = await startServerProcess({ dataDir: join(root, 'server-data') });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('robot agent', () => {
  let fleetId = '';
  let round1 = '';

  it('sets up an officer, a fleet and two enrolled robots', async () => {
    ok(await cli(home('officer'), 'admin', 'bootstrap', '--server', server.url, '--org', 'Acme Robotics', '--user', 'olivia'));
    fleetId = ok(await cli(home('officer'), 'fleet', 'create', '--name', 'alpha')).id;
    ok(await cli(home('officer'), 'officer', 'init'));
    for (const name of ['arm-a', 'arm-b']) {
      ok(await cli(home('officer'), 'officer', 'enroll-bundle', '--fleet', fleetId, '--out', join(root, `${name}.json`)));
      ok(await cli(home(name), 'robot', 'enroll', '--bundle', join(root, `${name}.json`), '--name', name));
    }
  }, 180_000);

  it('refuses to start without something to push', async () => {
    const r = await cli(home('arm-a'), 'robot', 'agent', '--once');
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/--adapter DIR .* or --train/);
  }, 60_000);

  it('--once --train: trains with the round\'s signed stage and pushes; the next --once pushes nothing', async () => {
    round1 = ok(await cli(home('officer'), 'officer', 'round', 'open', '--fleet', fleetId, '--template', TEMPLATE, '--quorum', '2')).roundId;
    const args = ['robot', 'agent', '--once', '--train', '--site', 'site-a', '--episodes', '4', '--steps', '40', '--base', TEMPLATE];
    const first = await cli(home('arm-a'), ...args);
    expect(first.code, first.stderr).toBe(0);
    const seen = events(first.stdout);
    expect(seen.map((e) => e.event)).toEqual(['started', 'trained', 'pushed', 'stopped']);
    expect(seen[1]).toMatchObject({ event: 'trained', roundId: round1, stage: 'imitation_learning' });
    expect(seen[2]).toMatchObject({ event: 'pushed', roundId: round1 });
    expect(seen[3]).toMatchObject({ event: 'stopped', ticks: 1, pushed: 1, pulled: 0, refused: 0 });
    const again = events((await cli(home('arm-a'), ...args)).stdout);
    expect(again.map((e) => e.event)).toEqual(['started', 'stopped']);
    expect(again[1]).toMatchObject({ pushed: 0 });
  }, 300_000);

  it('in process: one unseal for the agent\'s life; a push, a pull, and a round it cannot serve refused once', async () => {
    // arm-b pushes an adapter of its own (the template plus noise) to round 1 and, later, arm-a's
    // imitation-trained adapter to an offline-RL round: that one is refused (stage_mismatch), once.
    const base = await loadAdapterDir(TEMPLATE);
    const names = trainableTensorNames({ tensors: [...base.tensors.keys()].map((name) => ({ name })), freezeA: false });
    const own = perturbAdapter({ adapter: base, names, sigma: 0.01 }).adapter;
    delete (own.config as Record<string, unknown>).tensorguard_training_stage;
    await saveAdapterDir(join(root, 'arm-b-adapter'), own);

    const ctx = createContext({ home: home('arm-b'), json: true, quiet: true, passphrase: env.TG_PASSPHRASE });
    let asked = 0;
    const passphrase = ctx.passphrase;
    ctx.passphrase = (purpose) => (asked++, passphrase(purpose));
    const seen: AgentEvent[] = [];
    const stop = new AbortController();
    let crashed: unknown = null;
    const waitFor = async (pred: (e: AgentEvent) => boolean) => {
      for (let i = 0; i < 1200 && !seen.some(pred) && crashed === null; i++) await new Promise((r) => setTimeout(r, 100));
      expect(seen.some(pred), `${JSON.stringify(seen)} ${crashed === null ? '' : (crashed as Error).stack}`).toBe(true);
    };
    const agentDone = robotAgent(ctx, { adapter: join(root, 'arm-b-adapter'), base: TEMPLATE, pollSeconds: 1 }, { signal: stop.signal, emit: (e) => seen.push(e) });
    agentDone.catch((error: unknown) => (crashed = error));
    await waitFor((e) => e.event === 'pushed' && e.roundId === round1);
    // between rounds it precomputes the encryptions of zero the next push needs (as many as this one used)
    await waitFor((e) => e.event === 'precomputed');
    const precomputed = seen.find((e) => e.event === 'precomputed') as Extract<AgentEvent, { event: 'precomputed' }>;
    expect(precomputed.ciphertexts).toBeGreaterThan(0);
    expect(precomputed.pool).toBe(precomputed.ciphertexts);

    // the round completes: close, review, release, all by the officer's CLI
    ok(await cli(home('officer'), 'officer', 'round', 'close', '--round', round1));
    ok(await cli(home('officer'), 'officer', 'review', '--round', round1, '--out', join(root, 'review-1'), '--gate-scenarios', '2'));
    ok(await cli(home('officer'), 'officer', 'release', '--round', round1, '--override-gate', 'test: two gate scenarios only'));
    await waitFor((e) => e.event === 'pulled');
    const pulled = seen.find((e) => e.event === 'pulled') as Extract<AgentEvent, { event: 'pulled' }>;
    expect(pulled.releaseVersion).toBe(1);
    expect(await exists(join(pulled.out, 'adapter_model.safetensors'))).toBe(true);
    expect(JSON.parse(await readFile(join(home('arm-b'), 'robot', 'state.json'), 'utf8')).releaseVersion).toBe(1);

    // a round whose signed stage the pushed adapter was not trained with
    const arm = await loadAdapterDir(join(home('arm-a'), 'robot', 'agent', round1, 'trained'));
    expect((arm.config as Record<string, unknown>).tensorguard_training_stage).toBe('imitation_learning');
    await saveAdapterDir(join(root, 'arm-b-adapter'), arm);
    const round2 = ok(await cli(home('officer'), 'officer', 'round', 'open', '--fleet', fleetId, '--template', TEMPLATE, '--quorum', '1', '--stage', 'offline_rl')).roundId;
    await waitFor((e) => e.event === 'push_refused' && e.roundId === round2);
    const ticksAtRefusal = seen.filter((e) => e.event === 'push_refused').length;
    const ticks = () => seen.length;
    const before = ticks();
    await new Promise((r) => setTimeout(r, 2500)); // two more ticks
    stop.abort();
    const summary = await agentDone;

    expect(seen.filter((e) => e.event === 'push_refused')).toHaveLength(ticksAtRefusal);
    expect(seen.find((e) => e.event === 'push_refused')).toMatchObject({ code: 'stage_mismatch' });
    expect(seen.filter((e) => e.event === 'pulled')).toHaveLength(1); // the unchanged release is not pulled again
    expect(seen.length - before).toBe(1); // only `stopped` after the refusal: the quiet ticks emit nothing
    expect(summary).toMatchObject({ event: 'stopped', pushed: 1, pulled: 1, refused: 1 });
    expect((summary as { ticks: number }).ticks).toBeGreaterThanOrEqual(4);
    expect(asked).toBe(1);
  }, 900_000);

  it('GET /v1/releases/latest: 304 for the newest release\'s ETag, the payload for any other', async () => {
    const session = await robotClient(createContext({ home: home('arm-a'), json: true, quiet: true, passphrase: env.TG_PASSPHRASE }));
    try {
      const first = await session.api.jsonIfChanged<{ manifest: string; payload: string }>('/v1/releases/latest');
      expect(first?.etag).toMatch(/^"[^"]+"$/);
      expect(first!.body.payload.length).toBeGreaterThan(1000);
      expect(await session.api.jsonIfChanged('/v1/releases/latest', first!.etag!)).toBeNull();
      const stale = await session.api.jsonIfChanged<{ manifest: string }>('/v1/releases/latest', '"some-older-release"');
      expect(stale?.body.manifest).toBe(first!.body.manifest);
    } finally {
      wipeRobotSession(session);
    }
  }, 60_000);

  it('on a terminal: a long-running agent pulls the release, and SIGTERM ends it with a summary', async () => {
    const child = spawn(process.execPath, [BIN, 'robot', 'agent', '--adapter', join(root, 'arm-b-adapter'), '--base', TEMPLATE, '--poll-seconds', '1', '--json', '--home', home('arm-a')], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    for (let i = 0; i < 1200 && !events(out).some((e) => e.event === 'pulled') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    expect(events(out).some((e) => e.event === 'pulled'), out + err).toBe(true);
    const code = await new Promise<number | null>((done) => {
      child.once('exit', (c) => done(c));
      child.kill('SIGTERM');
    });
    expect(code, err).toBe(0);
    const seen = events(out);
    expect(seen.at(-1)).toMatchObject({ event: 'stopped', pulled: 1 });
    // arm-a contributed to round 1 already; round 2 (offline RL) refuses its imitation-trained adapter
    expect(seen.filter((e) => e.event === 'pushed')).toHaveLength(0);
    expect(JSON.parse(await readFile(join(home('arm-a'), 'robot', 'state.json'), 'utf8')).releaseVersion).toBe(1);
  }, 180_000);
});
