// The ingest benchmark: N concurrent robots push signed update packages to a real server process on
// loopback, against a null-sink route on the same server (TG_BENCH_NULL_SINK=1: reads the body and
// answers 201, nothing else), in one run. Prints one JSON document: MB/s, requests/s, latency
// percentiles and refusals of each phase, their ratio, and the server's own CPU and RSS (from its
// /metrics). `--soak-seconds=N` adds a soak phase that samples the server's RSS while robots push, to
// show memory stays flat. Bounded in time: every phase has a fixed duration.
//
//   npm run bench -- ingest                        # 100 robots x 10 rounds, 4 ciphertexts (266 KB) per package, <= 15 s per phase
//   npm run bench -- ingest --robots=50 --ciphertexts=16 --seconds=20 --soak-seconds=180
//
// The packages and request signatures are built before the timed phases (the load generator shares the
// machine's two cores with the server, and building a package costs the client more than receiving it
// costs a null sink), and both phases send the same bytes, so the ratio isolates what the server does
// with an upload: verify two signatures, hash, check and add the ciphertexts, write the package and the
// aggregate durably, commit the transaction. Contributions go in waves, like a fleet pushing to its one
// open round: all robots push round k at once, round k+1 starts when round k is answered (the server
// folds a round's queued contributions by group commit — server/aggregation/contribution.ts — so a
// wave's latencies spread over a few batches). Each robot has `--rounds` packages ready; the phase
// ends at its time limit (the last wave completes) or when they run out. The null sink takes the same bytes, free-running, for the whole
// phase. The soak phase builds its (1-ciphertext) packages as it goes, which keeps its rate moderate
// and its client memory small.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { toBase64 } from '../core/bytes.ts';
import { randomBytes } from '../core/random.ts';
import { generateSigningKeyPair, type SigningKeyPair } from '../core/crypto/sign.ts';
import { generateKemKeyPair } from '../core/crypto/kem.ts';
import { ROBOT_HEADERS, signRobotRequest } from '../core/records/request-signature.ts';
import { keyRecordFingerprint, signKeyRecord } from '../core/records/key-record.ts';
import { buildUpdatePackage } from '../core/records/update-package.ts';
import { signRoundConfig, type RoundConfig } from '../core/records/round-config.ts';
import { parmsIdFor } from '../core/he/seal.ts';
import { PARAM_SET_ID, ciphertextCount, getParamSet, packingLayout } from '../core/he/params.ts';
import { fakeCiphertexts } from '../server/testing/harness.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const ROBOTS = Number(args.get('robots') ?? 100);
const CIPHERTEXTS = Number(args.get('ciphertexts') ?? 4);
const SECONDS = Number(args.get('seconds') ?? 15);
const SOAK_SECONDS = Number(args.get('soak-seconds') ?? 0);
const SOAK_ROBOTS = Number(args.get('soak-robots') ?? Math.min(ROBOTS, 20));
const ROUNDS = Number(args.get('rounds') ?? 10);
const BIN = resolve(import.meta.dirname, '../cli/bin.mjs');
const paramSet = getParamSet({ id: PARAM_SET_ID });

interface Server {
  url: string;
  child: ChildProcess;
}

function startServer(dataDir: string): Promise<Server> {
  return new Promise((done, fail) => {
    // TG_BENCH_SERVER_PROFILE=DIR: the server writes a V8 CPU profile there when it stops (node --cpu-prof).
    const profile = process.env.TG_BENCH_SERVER_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TG_BENCH_SERVER_PROFILE}`] : [];
    const child = spawn(process.execPath, [...profile, BIN, 'server', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--json'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      // The server's default operational limits (docs/OPERATIONS.md); backpressure refusals show up as
      // 503 in `statuses`. The per-user and per-robot rate limits are lifted (one admin enrolls 100
      // robots, each robot pushes many rounds a minute); their hits are still counted and written, so
      // their cost stays in the figures.
      env: {
        ...process.env,
        TG_BENCH_NULL_SINK: '1',
        TG_RATE_USER_PER_MIN: '100000',
        TG_RATE_ROBOT_PER_MIN: '100000',
        TG_RATE_ROBOT_CONTRIBUTIONS_PER_MIN: '100000',
      },
    });
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) done({ url: JSON.parse(line).url, child });
    });
    child.once('exit', (code) => fail(new Error(`server exited with ${code}`)));
  });
}

async function call(url: string, method: string, path: string, options: { token?: string; body?: unknown } = {}) {
  const res = await fetch(url + path, {
    method,
    headers: { ...(options.token ? { authorization: `Bearer ${options.token}` } : {}), ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const body = (await res.json()) as any;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** Server figures from its own /metrics (Prometheus text). */
async function serverFigures(url: string) {
  let text = '';
  for (let attempt = 0; ; attempt++) {
    try {
      text = await (await fetch(`${url}/metrics`)).text();
      break;
    } catch (error) {
      // A pooled keep-alive connection the server just closed (its keep-alive timeout): try a new one.
      if (attempt >= 2) throw error;
    }
  }
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  /** Sum of a metric's samples whose labels contain `labels` (e.g. a histogram's _sum over outcomes). */
  const total = (name: string, labels = '') => {
    let sum = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm'))) if ((m[1] ?? '').includes(labels)) sum += Number(m[2]);
    return sum;
  };
  return {
    cpuSeconds: value('process_cpu_seconds_total'),
    rssBytes: value('process_resident_memory_bytes'),
    accepted: value('tensorguard_contributions_accepted_total'),
    // Seconds spent, summed over operations, in what a contribution does (server/metrics/registry.ts).
    spent: {
      request: total('tensorguard_http_request_duration_seconds_sum', 'route="/v1/rounds/:id/contributions",status="201"'),
      aggregation: total('tensorguard_aggregation_duration_seconds_sum'),
      blobPut: total('tensorguard_blob_operation_duration_seconds_sum', 'operation="put"'),
      blobGet: total('tensorguard_blob_operation_duration_seconds_sum', 'operation="get"'),
      dbTransaction: total('tensorguard_db_operation_duration_seconds_sum', 'operation="transaction"'),
      dbQuery: total('tensorguard_db_operation_duration_seconds_sum', 'operation="query"'),
    },
  };
}

interface Robot {
  id: string;
  keys: SigningKeyPair;
  ciphertexts: Uint8Array;
  round: number;
}

async function setup(url: string) {
  const boot = await call(url, 'POST', '/v1/bootstrap', { body: { org: 'Bench Robotics', user: 'bench', password: 'bench password 1' } });
  const token = boot.token as string;
  const orgId = boot.org.id as string;
  // The fleet's envelope sized for the packages (the default allows 5 MB; --ciphertexts=244 is 16 MB).
  const maxUpdateBytes = Math.max(5_000_000, CIPHERTEXTS * 65_649 + 64 * 1024);
  const envelope = { updateBytes: { max: maxUpdateBytes, target: Math.min(500_000, maxUpdateBytes), min: 10_000 }, maxTrainableParams: Math.max(10_000_000, CIPHERTEXTS * 8192) };
  const fleetId = (await call(url, 'POST', '/v1/fleets', { token, body: { name: 'arms', envelope } })).id as string;
  const officer = generateSigningKeyPair({ algorithm: 'ml-dsa-65' });
  await call(url, 'POST', '/v1/officer-keys', { token, body: { publicKey: toBase64(officer.publicKey) } });
  // The server checks ciphertext headers and coefficients against the key's parms id; it never needs
  // the public key itself, so a stand-in public key keeps the setup fast.
  const parmsId = await parmsIdFor({ paramSetId: PARAM_SET_ID });
  const record = { orgId, keyVersion: 1, paramSetId: PARAM_SET_ID, parmsId, publicKey: randomBytes(1024), createdAt: Date.now() };
  await call(url, 'POST', '/v1/he-keys', { token, body: { record: toBase64(signKeyRecord({ record, secretKey: officer.secretKey, publicKey: officer.publicKey })) } });
  const keyFingerprint = keyRecordFingerprint({ record });
  const robots: Robot[] = [];
  const ciphertexts = fakeCiphertexts({ parmsId, count: CIPHERTEXTS });
  for (let i = 0; i < ROBOTS; i++) {
    const t = await call(url, 'POST', `/v1/fleets/${fleetId}/enrollment-tokens`, { token });
    const keys = generateSigningKeyPair({ algorithm: 'ml-dsa-44' });
    const res = await call(url, 'POST', '/v1/enroll', {
      body: { token: t.token, name: `bench-${i}`, dsaPublicKey: toBase64(keys.publicKey), kemPublicKey: toBase64(generateKemKeyPair().publicKey), attestation: toBase64(randomBytes(32)) },
    });
    robots.push({ id: res.robotId, keys, ciphertexts, round: 0 });
  }
  // Rounds are opened on demand: every robot contributes once per round and moves on to the next.
  // A round of c ciphertexts carries c x 4096 slots of 8-bit fields packed for up to 1,024 contributors.
  const layout = packingLayout({ fieldBits: 8, maxContributors: 1024, encoding: 'offset' });
  const valueCountFor = (c: number) => c * paramSet.slotCount * layout.fieldsPerSlot;
  const rounds = new Map<string, Promise<{ roundId: string; fingerprint: Uint8Array }>>();
  const round = (k: number, c: number) => {
    let r = rounds.get(`${c}:${k}`);
    if (!r) {
      const valueCount = valueCountFor(c);
      if (ciphertextCount({ valueCount, layout }) !== c) throw new Error('bench: packing arithmetic is off');
      const config: RoundConfig = {
        roundId: `bench-${c}-${k}`,
        orgId,
        fleetId,
        createdAt: Date.now(),
        deadline: 0,
        quorum: 1,
        maxContributors: 1024,
        keyVersion: 1,
        heKeyFingerprint: keyFingerprint,
        baseAdapterSha256: randomBytes(32),
        tensors: [{ name: 'base_model.model.layer.lora_B.weight', shape: [valueCount, 1] }],
        freezeA: true,
        aSeed: randomBytes(32),
        maskSeed: randomBytes(32),
        sparsity: 1,
        quant: { fieldBits: 8, scale: 64, encoding: 'offset' },
        dp: { mode: 'off', clip: 1, noiseMultiplier: 1, delta: 1e-5, epsilonBudget: 10 },
        valueCount,
        ciphertextCount: c,
      };
      const bytes = signRoundConfig({ config, secretKey: officer.secretKey, publicKey: officer.publicKey });
      r = call(url, 'POST', '/v1/rounds', { token, body: { config: toBase64(bytes) } }).then((b) => ({ roundId: config.roundId, fingerprint: Uint8Array.from(Buffer.from(b.configFingerprint, 'hex')) }));
      rounds.set(`${c}:${k}`, r);
    }
    return r;
  };
  return { robots, round, fleetId, valueCountFor };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

interface Prepared {
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Builds one robot's package for round k and signs its upload request. */
async function preparePush(ctx: Awaited<ReturnType<typeof setup>>, robot: Robot, k: number, ciphertexts = robot.ciphertexts): Promise<Prepared> {
  const c = ciphertexts.length / paramSet.ciphertextBytes;
  const { roundId, fingerprint } = await ctx.round(k, c);
  const body = buildUpdatePackage({
    meta: {
      roundId,
      robotId: robot.id,
      fleetId: ctx.fleetId,
      keyVersion: 1,
      roundConfigFingerprint: fingerprint,
      valueCount: ctx.valueCountFor(c),
      ciphertextCount: c,
      createdAt: Date.now(),
    },
    ciphertexts,
    secretKey: robot.keys.secretKey,
    publicKey: robot.keys.publicKey,
  }).bytes;
  const path = `/v1/rounds/${roundId}/contributions`;
  const signed = signRobotRequest({ method: 'POST', path, body, secretKey: robot.keys.secretKey });
  const headers = {
    [ROBOT_HEADERS.robot]: robot.id,
    [ROBOT_HEADERS.timestamp]: String(signed.timestamp),
    [ROBOT_HEADERS.nonce]: signed.nonce,
    [ROBOT_HEADERS.signature]: toBase64(signed.signature),
    'content-type': 'application/octet-stream',
  };
  return { path, headers, body };
}

async function phase(options: {
  url: string;
  target: 'null-sink' | 'contributions';
  robots: Robot[];
  seconds: number;
  /** The robot's index-th request (prepared ahead, or built now); null when it has none left. */
  next: (robot: Robot, index: number) => Promise<Prepared | null>;
  /**
   * Waves: every robot sends its index-th request, and the next wave starts when all are answered —
   * a fleet pushing to its one open round at once. Otherwise each robot sends as fast as it is answered.
   */
  waves?: boolean;
}) {
  const { url, target, robots } = options;
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let bytes = 0;
  const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  /** Sends one prepared request until it gets a final answer (backpressure 503s and lost connections are retried). */
  const deliver = async (push: Prepared) => {
    const path = target === 'null-sink' ? '/v1/bench/null-sink' : push.path;
    for (;;) {
      const t0 = performance.now();
      let res: Response;
      try {
        res = await fetch(url + path, { method: 'POST', headers: push.headers, body: push.body as Uint8Array<ArrayBuffer> });
        await res.arrayBuffer();
      } catch {
        count(0); // connection error: counted as status 0 and sent again
        continue;
      }
      latencies.push(performance.now() - t0);
      count(res.status);
      if (res.status === 503) {
        await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? 1) * 1000));
        continue;
      }
      if (res.status === 201) bytes += push.body.length;
      return;
    }
  };
  const before = await serverFigures(url);
  const started = performance.now();
  const end = started + options.seconds * 1000;
  if (options.waves) {
    for (let i = 0; performance.now() < end; i++) {
      const pushes = await Promise.all(robots.map((robot) => options.next(robot, i)));
      if (pushes.every((p) => p === null)) break;
      await Promise.all(pushes.map((push) => push && deliver(push)));
    }
  } else {
    await Promise.all(
      robots.map(async (robot) => {
        for (let i = 0; performance.now() < end; i++) {
          const push = await options.next(robot, i);
          if (!push) break;
          await deliver(push);
        }
      }),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  const after = await serverFigures(url);
  latencies.sort((a, b) => a - b);
  const accepted = statuses.get(201) ?? 0;
  return {
    target,
    robots: robots.length,
    seconds: round2(seconds),
    requests: latencies.length,
    accepted,
    errors: [...statuses].reduce((n, [status, k]) => n + (status === 201 ? 0 : k), 0),
    statuses: Object.fromEntries(statuses),
    megabytes: round2(bytes / 1e6),
    mbPerSecond: round2(bytes / 1e6 / seconds),
    acceptedPerSecond: round2(accepted / seconds),
    latencyMs: { p50: round2(percentile(latencies, 50)), p90: round2(percentile(latencies, 90)), p99: round2(percentile(latencies, 99)), max: round2(latencies.at(-1) ?? NaN) },
    serverCpuSecondsPerSecond: round2((after.cpuSeconds - before.cpuSeconds) / seconds),
    // Server-side milliseconds per accepted contribution, from its own histograms (operations overlap
    // across requests, so these are sums of latencies, not shares of the wall clock).
    ...(target === 'contributions' && accepted > 0
      ? { serverMsPerContribution: Object.fromEntries(Object.entries(after.spent).map(([k, v]) => [k, round2(((v - before.spent[k as keyof typeof before.spent]) * 1000) / accepted)])) }
      : {}),
    serverRssMb: round2(after.rssBytes / 1e6),
  };
}

async function soak(options: { url: string; robots: Robot[]; seconds: number; ctx: Awaited<ReturnType<typeof setup>>; firstRound: number }) {
  const small = options.robots[0]!.ciphertexts.subarray(0, paramSet.ciphertextBytes);
  const next = (robot: Robot, i: number) => preparePush(options.ctx, robot, options.firstRound + i, small);
  const samples: Array<{ t: number; rssMb: number }> = [];
  const t0 = performance.now();
  let stop = false;
  const sampler = (async () => {
    while (!stop) {
      const f = await serverFigures(options.url);
      samples.push({ t: round2((performance.now() - t0) / 1000), rssMb: round2(f.rssBytes / 1e6) });
      await new Promise((r) => setTimeout(r, 5000));
    }
  })();
  const result = await phase({ url: options.url, target: 'contributions', robots: options.robots, seconds: options.seconds, next, waves: true });
  stop = true;
  await sampler;
  // Least-squares slope of RSS over the second half (after warm-up), in MB per minute.
  const tail = samples.slice(Math.floor(samples.length / 2));
  const mt = tail.reduce((s, x) => s + x.t, 0) / tail.length;
  const mr = tail.reduce((s, x) => s + x.rssMb, 0) / tail.length;
  const slope = tail.reduce((s, x) => s + (x.t - mt) * (x.rssMb - mr), 0) / Math.max(1e-9, tail.reduce((s, x) => s + (x.t - mt) ** 2, 0));
  const rss = samples.map((s) => s.rssMb);
  return {
    ...result,
    rssMb: { first: rss[0], atHalf: rss[Math.floor(rss.length / 2)], last: rss.at(-1), min: Math.min(...rss), max: Math.max(...rss) },
    rssSlopeMbPerMinuteSecondHalf: round2(slope * 60),
    samples,
  };
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'tg-bench-ingest-'));
  const server = await startServer(join(dir, 'data'));
  try {
    const ctx = await setup(server.url);
    // Every robot's packages for ROUNDS rounds, built and signed before anything is timed.
    const prepared = new Map<string, Prepared[]>();
    for (const robot of ctx.robots) {
      const list: Prepared[] = [];
      for (let k = 0; k < ROUNDS; k++) list.push(await preparePush(ctx, robot, k));
      prepared.set(robot.id, list);
    }
    const packageBytes = prepared.get(ctx.robots[0]!.id)![0]!.body.length;
    const fromPrepared = async (robot: Robot, i: number) => prepared.get(robot.id)![i] ?? null;
    // The null sink keeps nothing, so it can take the same bytes again for the whole phase.
    const cycling = async (robot: Robot, i: number) => prepared.get(robot.id)![i % ROUNDS]!;
    // Warm-up (JIT, connection pools), then the two measured phases back to back on the same bytes.
    await phase({ url: server.url, target: 'null-sink', robots: ctx.robots, seconds: 2, next: cycling });
    const nullSink = await phase({ url: server.url, target: 'null-sink', robots: ctx.robots, seconds: SECONDS, next: cycling });
    const contributions = await phase({ url: server.url, target: 'contributions', robots: ctx.robots, seconds: SECONDS, next: fromPrepared, waves: true });
    prepared.clear();
    const soaked = SOAK_SECONDS > 0 ? await soak({ url: server.url, robots: ctx.robots.slice(0, SOAK_ROBOTS), seconds: SOAK_SECONDS, ctx, firstRound: ROUNDS }) : null;
    const out = {
      bench: 'ingest',
      node: process.version,
      robots: ROBOTS,
      roundsPrepared: ROUNDS,
      ciphertextsPerPackage: CIPHERTEXTS,
      packageBytes,
      contributions,
      nullSink,
      ratio: { mbPerSecond: round2(contributions.mbPerSecond / nullSink.mbPerSecond), p99Latency: round2(contributions.latencyMs.p99 / nullSink.latencyMs.p99) },
      ...(soaked ? { soak: soaked } : {}),
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
