// A full round on one machine: N robots x P parameters, from the officer opening the round to the
// signed release, through the CLI's own command functions (officer round open, robot push, officer
// close, review = verify manifest + re-add + decrypt + unpack + report, officer release) against a real
// server process (`tensorguard server`) on a loopback port. Prints one JSON object.
//
//   npm run bench -- full-round [--robots=100] [--params=1000000] [--workers=4] [--per-worker=2] [--field-bits=B] [--unseal-per-push] [--no-precompute] [--quick]
//
// Data flow. The main thread is the officer; the robots are simulated by a pool of worker threads
// (this file again, entered through full-round-robot.mjs), each holding a share of the robots' homes.
// Robots run as `robot agent` does (cli/commands/robot-agent.ts): before the round each unseals its keys
// once and precomputes the encryptions of zero its push will need (`agent_start`, reported apart); every
// push is the robot CLI's `robotPush` with that session and pool (fetch and verify the round and the HE
// key record, encode, add the scaled plaintext, sign, outbox, upload). `--unseal-per-push` runs one-shot
// commands instead (each unseals, nothing precomputed); `--no-precompute` keeps the agents' sessions
// without the pool. Several robots are in flight at once (--workers threads x --per-worker each), like a
// fleet whose robots push independently; on this 2-core machine they share the cores with the server and the officer. The
// server is its own process (its own event loop and I/O thread pool, as in deployment), with the
// per-user and per-robot rate limits lifted (one officer enrolls the whole fleet within a minute).
//
// Before the round (reported apart, not in the timed figure): server start, bootstrap, officer keys,
// enrollment (each robot seals its keys with scrypt N=2^17), the agents' start, and each robot's synthetic "local
// training" (a random perturbation of the template adapter, saved as its trained adapter: the round's
// start adapter is the template, freezeA off). Timed, open to signed release: round open, every robot's
// push, close, review, release — wall clock. After it (reported apart): every robot pulls the release.
// `--quick` (what `npm run bench` with no arguments uses) runs 10 robots x 100,000 parameters.
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir, availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { createContext, type CommandContext } from '../cli/context.ts';
import { adminBootstrap, fleetCreate } from '../cli/commands/session.ts';
import { officerInit, officerEnrollBundle, officerRoundOpen, officerRoundClose, officerReview, officerRelease } from '../cli/commands/officer.ts';
import { robotClient, robotEnroll, robotPush, robotPull, type RobotSession } from '../cli/commands/robot.ts';
import { RobotAgent } from '../cli/commands/robot-agent.ts';
import { planRound } from '../core/round/plan.ts';
import { loadAdapterDir, saveAdapterDir } from '../cli/home.ts';
import { syntheticAdapter, perturbAdapter } from '../cli/synthetic-adapter.ts';
import { bytesToHex } from '../core/bytes.ts';
import { randomBytes } from '../core/random.ts';
import { trainableTensorNames } from '../core/round/mask.ts';

/** Messages from the officer (main thread) to a robot worker, and the worker's answers. */
type Job =
  | { kind: 'enroll'; robots: Array<{ index: number; home: string; bundle: string }> }
  | { kind: 'agent_start'; robots: Array<{ index: number; home: string }>; precompute: number; templateDir: string; roundDir: string }
  | { kind: 'train'; robots: Array<{ index: number; home: string }>; templateDir: string; roundDir: string }
  | { kind: 'push'; robots: Array<{ index: number; home: string }>; templateDir: string; roundDir: string; roundId: string }
  | { kind: 'pull'; robots: Array<{ index: number; home: string }>; roundDir: string };
interface JobResult {
  ok: boolean;
  error?: string;
  /** Per robot: milliseconds of the command, and what the command reported (push: its timingsMs). */
  robots: Array<{ index: number; ms: number; detail?: Record<string, unknown> }>;
}

function arg(name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (!hit) return fallback;
  const value = Number(hit.slice(name.length + 3));
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`"--${name}" expected a positive integer, got ${hit}`);
  return value;
}

// ---------------------------------------------------------------------------------------------------
// Robot worker: runs the robot CLI's commands for the robots it is given, `perWorker` at a time.

async function robotWorker(): Promise<void> {
  const { secret, perWorker } = workerData as { secret: string; perWorker: number };
  const ctxOf = (home: string): CommandContext => createContext({ home, json: true, passphrase: secret, password: secret, quiet: true });
  let template: { dir: string; adapter: Awaited<ReturnType<typeof loadAdapterDir>> } | null = null;
  // Robots running `robot agent` (cli/commands/robot-agent.ts): keys unsealed once when the agent
  // starts, before the round opens, and used by every push and pull. Without agents (--unseal-per-push)
  // each push and pull is a one-shot command that unseals the keys itself.
  const sessions = new Map<number, RobotSession>();
  const agents = new Map<number, RobotAgent>();
  const run = async (job: Job, robot: { index: number; home: string; bundle?: string }): Promise<Record<string, unknown> | undefined> => {
    const ctx = ctxOf(robot.home);
    if (job.kind === 'enroll') {
      await robotEnroll(ctx, { bundle: robot.bundle!, name: `robot-${robot.index}` });
      return undefined;
    }
    if (job.kind === 'agent_start') {
      // What `robot agent` does when it starts and while it waits for a round: unseal once, then
      // precompute the encryptions of zero the next push will use (its pool, in memory).
      const session = await robotClient(ctx);
      sessions.set(robot.index, session);
      const agent = new RobotAgent(ctx, session, { adapter: join(job.roundDir, `trained-${robot.index}`), base: job.templateDir, precompute: job.precompute }, () => {});
      agents.set(robot.index, agent);
      const t = performance.now();
      await agent.precompute();
      return { precomputeMs: performance.now() - t, pooled: agent.zeroPool.size };
    }
    if (job.kind === 'train') {
      if (template?.dir !== job.templateDir) template = { dir: job.templateDir, adapter: await loadAdapterDir(job.templateDir) };
      const base = template.adapter;
      const names = trainableTensorNames({ tensors: [...base.shapes].map(([name, shape]) => ({ name, shape })), freezeA: false });
      const trained = perturbAdapter({ adapter: base, names, sigma: 0.01 }).adapter;
      await saveAdapterDir(join(job.roundDir, `trained-${robot.index}`), trained);
      return undefined;
    }
    if (job.kind === 'push') {
      const zeroPool = agents.get(robot.index)?.zeroPool;
      const pushed = await robotPush(ctx, { adapter: join(job.roundDir, `trained-${robot.index}`), base: job.templateDir, round: job.roundId }, sessions.get(robot.index), { zeroPool });
      return { packageBytes: pushed.packageBytes, attempts: pushed.attempts, timingsMs: pushed.timingsMs, precomputedZerosUsed: pushed.precomputedZerosUsed ?? 0 };
    }
    const pulled = await robotPull(ctx, { out: join(job.roundDir, `pulled-${robot.index}`) }, sessions.get(robot.index));
    return { releaseVersion: pulled.releaseVersion };
  };
  parentPort!.on('message', async (job: Job) => {
    const results: JobResult['robots'] = [];
    try {
      const queue = [...job.robots];
      await Promise.all(
        Array.from({ length: Math.min(perWorker, queue.length) }, async () => {
          for (let robot = queue.shift(); robot; robot = queue.shift()) {
            const t = performance.now();
            // A connection the server's keep-alive timer closed under the client's feet surfaces as
            // "unreachable" (cli/api.ts does not retry); the robot runs its command again, as its
            // scheduler would — safe: a push resends its outbox entry byte for byte, never a new package.
            let detail: Record<string, unknown> | undefined;
            for (let attempt = 1; ; attempt++) {
              try {
                detail = await run(job, robot);
                if (attempt > 1) detail = { ...detail, commandRetries: attempt - 1 };
                break;
              } catch (error) {
                if (attempt >= 3 || (error as { code?: string }).code !== 'unreachable') throw error;
                await new Promise((r) => setTimeout(r, 200));
              }
            }
            results.push({ index: robot.index, ms: performance.now() - t, detail });
          }
        }),
      );
      parentPort!.postMessage({ ok: true, robots: results } satisfies JobResult);
    } catch (error) {
      parentPort!.postMessage({ ok: false, error: (error as Error).stack ?? String(error), robots: results } satisfies JobResult);
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// Officer (main thread).

/** The last few KB of the server's log, printed if the bench fails. */
let serverLogTail = '';

function startServerProcess(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const bin = resolve(import.meta.dirname, '../cli/bin.mjs');
  return new Promise((done, fail) => {
    // TG_BENCH_SERVER_PROFILE=DIR: the server writes a V8 CPU profile there when it stops.
    const profile = process.env.TG_BENCH_SERVER_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.TG_BENCH_SERVER_PROFILE] : [];
    const child = spawn(process.execPath, [...profile, bin, 'server', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'], // its request log is not part of the figures (the tail is kept for errors)
      env: { ...process.env, TG_RATE_USER_PER_MIN: '100000', TG_RATE_ROBOT_PER_MIN: '100000', TG_RATE_ROBOT_CONTRIBUTIONS_PER_MIN: '100000' },
    });
    let out = '';
    child.stderr!.on('data', (d) => {
      serverLogTail = (serverLogTail + d).slice(-4000);
    });
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) done({ url: JSON.parse(line).url, child });
    });
    child.once('exit', (code) => fail(new Error(`server exited with ${code}`)));
  });
}

/** User + system CPU-seconds a process has used so far (Linux /proc; clock ticks are 100 per second there). */
async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const robots = arg('robots', quick ? 10 : 100);
  const params = arg('params', quick ? 100_000 : 1_000_000);
  const workers = Math.min(robots, arg('workers', Math.max(2, 2 * availableParallelism())));
  const perWorker = arg('per-worker', 2);
  const fieldBitsArg = process.argv.find((a) => a.startsWith('--field-bits='));
  const fieldBits = fieldBitsArg ? arg('field-bits', 0) : undefined;
  const agents = !process.argv.includes('--unseal-per-push');
  const precompute = agents && !process.argv.includes('--no-precompute');
  if (robots > 1024) throw new RangeError(`"--robots" expected 1..1024, got ${robots}`);
  if (params < 1000 || params > 10_000_000) throw new RangeError(`"--params" expected 1000..10000000, got ${params}`);

  const started = performance.now();
  const root = await mkdtemp(join(tmpdir(), 'tg-bench-full-round-'));
  // Fresh random secrets for this run only: nothing here is a fixed credential.
  const secret = bytesToHex(randomBytes(16));
  const stages: Record<string, number> = {};
  /** CPU-seconds per timed stage: [bench process (robots + officer), server process]. */
  const stageCpu: Record<string, [number, number]> = {};
  let serverPid = 0;
  const time = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    const server0 = serverPid ? await processCpuSeconds(serverPid) : 0;
    try {
      return await fn();
    } finally {
      stages[name] = Math.round((stages[name] ?? 0) + performance.now() - t);
      const cpu = process.cpuUsage(cpu0);
      const server = serverPid ? (await processCpuSeconds(serverPid)) - server0 : 0;
      stageCpu[name] = [Math.round((cpu.user + cpu.system) / 1e4) / 100, Math.round(server * 100) / 100];
    }
  };
  const server = await time('server_start', () => startServerProcess(join(root, 'server-data')));
  serverPid = server.child.pid!;
  const pool = Array.from({ length: workers }, () => new Worker(new URL('./full-round-robot.mjs', import.meta.url), { workerData: { secret, perWorker } }));
  /** Runs one job kind over every robot, robots dealt round-robin to the workers; per-robot results. */
  const everywhere = async (make: (robots: Array<{ index: number; home: string; bundle: string }>) => Job): Promise<JobResult['robots']> => {
    const shares = pool.map((_, w) => Array.from({ length: robots }, (_, i) => i).filter((i) => i % workers === w));
    const answers = await Promise.all(
      pool.map(
        (worker, w) =>
          new Promise<JobResult>((done, fail) => {
            worker.once('message', done);
            worker.once('error', fail);
            worker.postMessage(make(shares[w]!.map((index) => ({ index, home: join(root, `robot-${index}`), bundle: join(root, `bundle-${index}.json`) }))));
          }),
      ),
    );
    const failed = answers.find((a) => !a.ok);
    if (failed) throw new Error(`a robot worker failed: ${failed.error}`);
    return answers.flatMap((a) => a.robots).sort((a, b) => a.index - b.index);
  };
  try {
    const officer = createContext({ home: join(root, 'officer'), json: true, passphrase: secret, password: secret, quiet: true });
    await time('bootstrap', () => adminBootstrap(officer, { server: server.url, org: 'Bench Robotics', user: 'officer' }));
    const estimate = Math.ceil(params / 4096 + 2) * 65649 * 2 + 64 * 1024;
    const fleet = await fleetCreate(officer, { name: 'bench-fleet', maxUpdateBytes: Math.max(5_000_000, estimate), maxParams: Math.max(10_000_000, params * 2) });
    await time('officer_keygen', () => officerInit(officer));
    await time('enroll', async () => {
      // Bundles from the officer (each unseals the officer's keys: one command each), a few at a time.
      const indices = Array.from({ length: robots }, (_, i) => i);
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = indices.shift(); i !== undefined; i = indices.shift()) await officerEnrollBundle(officer, { fleet: fleet.id, out: join(root, `bundle-${i}.json`) });
        }),
      );
      await everywhere((share) => ({ kind: 'enroll', robots: share }));
    });
    const templateDir = join(root, 'template');
    await saveAdapterDir(templateDir, syntheticAdapter({ params }));
    const roundDir = join(root, 'round');
    await time('robot_local_training', () => everywhere((share) => ({ kind: 'train', robots: share, templateDir, roundDir })));
    // The round's ciphertext count, as the officer's round open will plan it (checked after the open):
    // agents precompute as many encryptions of zero as their last round needed, here this one's.
    const template = await loadAdapterDir(templateDir);
    const expected = planRound({
      tensors: [...template.shapes].map(([name, shape]) => ({ name, shape })), freezeA: false, maskSeed: randomBytes(32), sparsity: 1,
      maxContributors: Math.max(2, robots), fieldBits, dp: { mode: 'off', clip: 0, noiseMultiplier: 0 },
    }).ciphertextCount;
    let agentStarts: JobResult['robots'] = [];
    if (agents) agentStarts = await time('robot_agents_start', () => everywhere((share) => ({ kind: 'agent_start', robots: share, precompute: precompute ? expected : 0, templateDir, roundDir })));

    // ---- timed: open to signed release ----
    const t0 = performance.now();
    const cpu0 = { bench: process.cpuUsage(), server: await processCpuSeconds(server.child.pid!) };
    const opened = await time('round_open', () => officerRoundOpen(officer, { fleet: fleet.id, template: templateDir, quorum: robots, maxContributors: Math.max(2, robots), dpMode: 'off', fieldBits }));
    if (opened.ciphertextCount !== expected) throw new Error(`the round planned ${opened.ciphertextCount} ciphertexts, the agents precomputed for ${expected}`);
    const pushes = await time('robot_pushes', () => everywhere((share) => ({ kind: 'push', robots: share, templateDir, roundDir, roundId: opened.roundId })));
    await time('round_close', () => officerRoundClose(officer, { round: opened.roundId }));
    const review = await time('officer_review', () => officerReview(officer, { round: opened.roundId, out: join(roundDir, 'review') }));
    await time('officer_release', () => officerRelease(officer, { round: opened.roundId, canary: 1 }));
    const openToReleaseMs = performance.now() - t0;
    const benchCpu = process.cpuUsage(cpu0.bench);
    const serverCpuSeconds = (await processCpuSeconds(server.child.pid!)) - cpu0.server;
    // ---- end of the timed part ----

    const pulls = await time('robot_pulls', () => everywhere((share) => ({ kind: 'pull', robots: share, roundDir })));
    const pushMs = pushes.map((p) => p.ms).sort((a, b) => a - b);
    const commandRetries = [...pushes, ...pulls].reduce((n, p) => n + ((p.detail?.commandRetries as number) ?? 0), 0);
    const pushStages: Record<string, number> = {};
    for (const p of pushes) for (const [k, v] of Object.entries((p.detail?.timingsMs ?? {}) as Record<string, number>)) pushStages[k] = (pushStages[k] ?? 0) + v;
    const packageBytes = pushes.reduce((n, p) => n + (p.detail?.packageBytes as number), 0);
    const trainable = opened.valueCount;
    const reviewTimings = (review as { timingsMs?: Record<string, number> }).timingsMs;
    console.log(
      JSON.stringify(
        {
          bench: 'full-round',
          node: process.version,
          robots,
          paramsPerRobot: trainable,
          quick,
          concurrency: { workers, perWorker, robotsInFlight: workers * perWorker, cores: availableParallelism() },
          // agent: robots run `robot agent` (keys unsealed when it starts, before the round);
          // per-push: each push and pull is a one-shot command that unseals the keys (scrypt) itself.
          robotKeys: agents ? 'agent' : 'per-push',
          // agents keep encryptions of zero ready between rounds (cli/robot-zero-pool.ts): how many each
          // pooled before the round, and how many the pushes used (each at most once).
          precomputedZeros: { perRobot: precompute ? expected : 0, usedByPushes: pushes.reduce((n, p) => n + ((p.detail?.precomputedZerosUsed as number) ?? 0), 0), precomputeMsSum: Math.round(agentStarts.reduce((n, a) => n + ((a.detail?.precomputeMs as number) ?? 0), 0)) },
          fieldsPerSlot: opened.fieldsPerSlot,
          ciphertextsPerRobot: opened.ciphertextCount,
          openToReleaseSeconds: Math.round(openToReleaseMs) / 1000,
          targetFirstBarSeconds: 60,
          targetGoalSeconds: 15,
          // CPU-seconds spent between open and signed release (2 cores give 2 per wall second): the robots'
          // worker threads and the officer share the bench process; the server is its own process.
          cpuSecondsOpenToRelease: {
            robotsAndOfficer: Math.round((benchCpu.user + benchCpu.system) / 1e4) / 100,
            server: Math.round(serverCpuSeconds * 100) / 100,
            byStage: Object.fromEntries(['round_open', 'robot_pushes', 'round_close', 'officer_review', 'officer_release'].map((k) => [k, { robotsAndOfficer: stageCpu[k]?.[0], server: stageCpu[k]?.[1] }])),
          },
          stageMs: {
            roundOpen: stages.round_open,
            robotPushes: stages.robot_pushes,
            roundClose: stages.round_close,
            officerReview: stages.officer_review,
            officerRelease: stages.officer_release,
          },
          perRobotPushMs: { p50: Math.round(pushMs[Math.floor(pushMs.length / 2)]!), max: Math.round(pushMs.at(-1)!), mean: Math.round(pushMs.reduce((a, b) => a + b, 0) / pushMs.length) },
          // Summed over robots (they overlap in time): where a push's own time goes (cli/commands/robot.ts).
          robotPushStagesMsSum: pushStages,
          officerReviewStagesMs: reviewTimings,
          outsideTheRound: {
            serverStartMs: stages.server_start,
            bootstrapMs: stages.bootstrap,
            officerKeygenMs: stages.officer_keygen,
            enrollMs: stages.enroll,
            robotLocalTrainingMs: stages.robot_local_training,
            robotAgentsStartMs: stages.robot_agents_start ?? null,
            robotPullsMs: stages.robot_pulls,
            robotsPulled: pulls.length,
          },
          paramsPerSecondOpenToRelease: Math.round((robots * trainable) / (openToReleaseMs / 1000)),
          wireBytesPerParam: packageBytes / (trainable * robots),
          commandRetries,
          wallSeconds: Math.round(performance.now() - started) / 1000,
        },
        null,
        2,
      ),
    );
  } catch (error) {
    process.stderr.write(`server exit code: ${server.child.exitCode}; last server log lines:\n${serverLogTail}\n`);
    throw error;
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await rm(root, { recursive: true, force: true });
  }
}

if (isMainThread) await main();
else await robotWorker();
