// `tensorguard demo`: a complete federated round (or several) over HTTP against a real server on a
// loopback port, with one officer home and N robot homes in a temporary directory. It drives the same
// command functions the CLI runs, then compares the decrypted mean with the plaintext mean.
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createContext, type CommandContext } from '../context.ts';
import { startServer } from '../../server/main.ts';
import { silentLogger } from '../../server/logger.ts';
import { adminBootstrap, fleetCreate } from './session.ts';
import { officerInit, officerEnrollBundle, officerRoundOpen, officerRoundClose, officerReview, officerRelease } from './officer.ts';
import { robotEnroll, robotPush, robotPull, robotStart } from './robot.ts';
import { loadAdapterDir, saveAdapterDir, readFile } from '../home.ts';
import { syntheticAdapter, perturbAdapter } from '../synthetic-adapter.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { trainableTensorNames, sparsificationMask } from '../../core/round/mask.ts';
import { flattenTensors } from '../../core/peft/adapter.ts';
import { openRoundConfig } from '../../core/records/round-config.ts';
import type { DpMode } from '../../core/records/round-config.ts';

export interface DemoOptions {
  robots: number;
  params: number;
  rounds: number;
  dpMode: DpMode;
  freezeA?: boolean;
  sparsity?: number;
  fieldBits?: number;
  keep?: string;
}

export async function runDemo(ctx: CommandContext, opts: DemoOptions): Promise<Record<string, unknown>> {
  if (opts.robots < 1 || opts.robots > 1024) throw new RangeError(`"--robots" expected 1..1024, got ${opts.robots}`);
  if (opts.params < 1000 || opts.params > 10_000_000) throw new RangeError(`"--params" expected 1000..10000000, got ${opts.params}`);
  if (opts.rounds < 1 || opts.rounds > 100) throw new RangeError(`"--rounds" expected 1..100, got ${opts.rounds}`);
  const root = opts.keep ? resolve(opts.keep) : await mkdtemp(join(tmpdir(), 'tensorguard-demo-'));
  await mkdir(root, { recursive: true });
  // Fresh random secrets for this demo only: nothing here is a fixed credential.
  const secret = bytesToHex(randomBytes(16));
  const sub = (home: string) => createContext({ home, json: true, passphrase: secret, password: secret, quiet: true });
  const stages: Record<string, number> = {};
  const time = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await fn();
    } finally {
      stages[name] = Math.round((stages[name] ?? 0) + performance.now() - t);
    }
  };
  const server = await time('server_start', () => startServer({ port: 0, host: '127.0.0.1', dataDir: join(root, 'server-data'), logger: silentLogger }));
  ctx.log(`server on ${server.url}, data in ${root}`);
  try {
    const officer = sub(join(root, 'officer'));
    await time('bootstrap', () => adminBootstrap(officer, { server: server.url, org: 'Demo Robotics', user: 'officer' }));
    const base = syntheticAdapter({ params: opts.params });
    const estimate = Math.ceil(opts.params / 4096 + 2) * 65649 * 2 + 64 * 1024;
    const fleet = await fleetCreate(officer, { name: 'demo-fleet', maxUpdateBytes: Math.max(5_000_000, estimate), maxParams: Math.max(10_000_000, opts.params * 2) });
    const keys = await time('officer_keygen', () => officerInit(officer));
    const robots: CommandContext[] = [];
    ctx.log(`officer keys ready (HE key version ${keys.keyVersion}); enrolling ${opts.robots} robots`);
    await time('enroll', async () => {
      const bar = ctx.progress('Enrolling robots', opts.robots);
      for (let i = 0; i < opts.robots; i++) {
        const robot = sub(join(root, `robot-${i}`));
        const bundle = join(root, `bundle-${i}.json`);
        await officerEnrollBundle(officer, { fleet: fleet.id, out: bundle });
        await robotEnroll(robot, { bundle, name: `robot-${i}` });
        robots.push(robot);
        bar.update(i + 1);
      }
      bar.stop();
    });
    let templateDir = join(root, 'template');
    await saveAdapterDir(templateDir, base);
    const rounds: Array<Record<string, unknown>> = [];
    let wireBytes = 0;
    let trainable = 0;
    for (let r = 0; r < opts.rounds; r++) {
      const opened = await time('round_open', () =>
        officerRoundOpen(officer, { fleet: fleet.id, template: templateDir, quorum: opts.robots, maxContributors: Math.max(2, opts.robots), freezeA: opts.freezeA, dpMode: opts.dpMode, sparsity: opts.sparsity, fieldBits: opts.fieldBits }),
      );
      const roundDir = join(root, `round-${r}`);
      const config = openRoundConfig({ bytes: new Uint8Array(await readFile(join(officer.home, 'officer', 'rounds', opened.roundId, 'config.bin'))) }).record;
      const names = trainableTensorNames({ tensors: config.tensors, freezeA: config.freezeA });
      let sum: Float64Array | null = null;
      const pushTimings: Record<string, number> = {};
      ctx.log(`round ${r + 1}/${opts.rounds} open: ${opened.valueCount} values in ${opened.ciphertextCount} ciphertexts per robot`);
      const pushBar = ctx.progress(`Round ${r + 1}: robots pushing`, robots.length);
      for (const [i, robot] of robots.entries()) {
        const startDir = join(roundDir, `start-${i}`);
        await robotStart(robot, { out: startDir, base: r === 0 ? templateDir : undefined, round: opened.roundId });
        const start = await loadAdapterDir(startDir);
        const { adapter: trained } = perturbAdapter({ adapter: start, names, sigma: 0.01 });
        const trainedDir = join(roundDir, `trained-${i}`);
        await saveAdapterDir(trainedDir, trained);
        const delta = flattenTensors({ adapter: trained, names });
        const before = flattenTensors({ adapter: start, names });
        if (!sum) sum = new Float64Array(delta.length);
        for (let k = 0; k < delta.length; k++) sum[k]! += delta[k]! - before[k]!;
        const pushed = await time('robot_push', () => robotPush(robot, { adapter: trainedDir, base: r === 0 ? templateDir : undefined, round: opened.roundId }));
        wireBytes += pushed.packageBytes as number;
        trainable = sum.length;
        for (const [k, v] of Object.entries(pushed.timingsMs as Record<string, number>)) pushTimings[k] = (pushTimings[k] ?? 0) + v;
        pushBar.update(i + 1);
      }
      pushBar.stop();
      ctx.log(`round ${r + 1}: closed; the officer verifies, re-adds and decrypts`);
      await time('round_close', () => officerRoundClose(officer, { round: opened.roundId }));
      const reviewDir = join(roundDir, 'review');
      const report = await time('officer_review', () => officerReview(officer, { round: opened.roundId, out: reviewDir }));
      // Compare against the plaintext mean of the values the mask sent (unsent values stay on robots).
      const candidate = await loadAdapterDir(reviewDir);
      const start = await loadAdapterDir(join(roundDir, 'start-0'));
      const after = flattenTensors({ adapter: candidate, names });
      const before = flattenTensors({ adapter: start, names });
      const mask = sparsificationMask({ seed: config.maskSeed, length: after.length, sparsity: config.sparsity });
      let maxAbsError = 0;
      for (let m = 0; m < mask.length; m++) {
        const k = mask[m]!;
        const err = Math.abs(after[k]! - before[k]! - sum![k]! / robots.length);
        if (err > maxAbsError) maxAbsError = err;
      }
      const release = await time('officer_release', () => officerRelease(officer, { round: opened.roundId, canary: 1 }));
      await time('robot_pull', async () => {
        for (const [i, robot] of robots.entries()) await robotPull(robot, { out: join(roundDir, `pulled-${i}`) });
      });
      ctx.log(`round ${r + 1}: release ${release.releaseVersion} signed, verified and applied by ${robots.length} robots; max error ${maxAbsError.toExponential(2)}`);
      templateDir = reviewDir;
      rounds.push({
        roundId: opened.roundId,
        contributors: report.contributors,
        valueCount: opened.valueCount,
        ciphertexts: opened.ciphertextCount,
        fieldsPerSlot: opened.fieldsPerSlot,
        maxAbsErrorVsPlaintextMean: maxAbsError,
        quantizationBound: report.quantizationBound,
        withinBound: opts.dpMode === 'off' ? maxAbsError <= (report.quantizationBound as number) : null,
        releaseVersion: release.releaseVersion,
        robotPushStageMs: pushTimings,
        reviewStageMs: report.timingsMs,
      });
    }
    return {
      server: server.url,
      robots: opts.robots,
      trainableParams: trainable,
      rounds,
      heKeyVersion: keys.keyVersion,
      paramSet: keys.paramSetId,
      wireBytesPerParam: wireBytes / (trainable * opts.robots * opts.rounds),
      stageMs: stages,
      dataDir: opts.keep ? root : null,
    };
  } finally {
    await server.close();
    if (!opts.keep) await rm(root, { recursive: true, force: true });
  }
}
