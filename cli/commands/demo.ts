// `tensorguard demo`: a complete federated round (or several) over HTTP against a real server on a
// loopback port, with one officer home and N robot homes in a temporary directory. It drives the same
// command functions the CLI runs, then compares the decrypted mean with the plaintext mean.
//
// --task reference (default): the template is the reference policy's adapter; robot i trains it with
// `robot train` on its own site (site-a, site-b, site-c in turn) with the round's training stage
// (--stage: behaviour cloning by default, offline RL, or on-policy RL under the officer's signed
// approval, core/train/stages.ts); the officer's review
// runs the evaluation gate (ONNX, onnxruntime-web WASM); and the demo measures the reference policy's
// held-out success before the round (deployed), after it (the decrypted, possibly DP-noised aggregate)
// and with the same round aggregated in plaintext (the mean of the robots' adapters, computed here), all
// on the gate's held-out scenarios through the same ONNX session — so the cost of encryption, quantization,
// sparsification and DP in task success is a measured number. A failing gate is released under a
// demo override (signed into the manifest, audited) so the round can be measured end to end.
// --task synthetic: Llama-style synthetic adapters perturbed at random (throughput of the round itself).
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createContext, type CommandContext } from '../context.ts';
import { startServer } from '../../server/main.ts';
import { silentLogger } from '../../server/logger.ts';
import { adminBootstrap, fleetCreate } from './session.ts';
import { officerInit, officerEnrollBundle, officerRoundOpen, officerRoundClose, officerReview, officerRelease } from './officer.ts';
import { robotEnroll, robotPush, robotPull, robotStart } from './robot.ts';
import { robotTrain, MODELS_DIR } from './robot-train.ts';
import { reviewGate } from './officer.ts';
import { REFERENCE_POLICY } from '../../core/policy/reference.ts';
import { siteNames } from '../../core/sim/scenario.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { utf8ToBytes } from '../../core/bytes.ts';
import type { GateReport } from '../../core/eval/reference-gate.ts';
import type { PeftAdapter } from '../../core/peft/adapter.ts';
import { loadAdapterDir, saveAdapterDir, readFile } from '../home.ts';
import { syntheticAdapter, perturbAdapter } from '../synthetic-adapter.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { trainableTensorNames, sparsificationMask } from '../../core/round/mask.ts';
import { flattenTensors } from '../../core/peft/adapter.ts';
import { openRoundConfig } from '../../core/records/round-config.ts';
import type { DpMode, RoundStage } from '../../core/records/round-config.ts';

export interface DemoOptions {
  robots: number;
  params: number;
  rounds: number;
  /** reference (default): trained robots on the reference task; synthetic: random perturbations of a Llama-style adapter. */
  task?: 'reference' | 'synthetic';
  /** reference task: demonstration episodes and optimizer steps per robot, held-out scenarios per set. */
  episodes?: number;
  trainSteps?: number;
  /** Reference task: the training stage of every round (on_policy_rl rounds carry the officer's signed approval). */
  stage?: RoundStage;
  gateScenarios?: number;
  clip?: number;
  noiseMultiplier?: number;
  epsilonBudget?: number;
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
  const task = opts.task ?? 'reference';
  if (task !== 'reference' && task !== 'synthetic') throw new RangeError(`"--task" expected reference or synthetic, got ${String(task)}`);
  const reference = task === 'reference';
  const stage = opts.stage ?? 'imitation_learning';
  if (!['imitation_learning', 'offline_rl', 'on_policy_rl'].includes(stage)) throw new RangeError(`"--stage" expected imitation_learning, offline_rl or on_policy_rl, got ${String(stage)}`);
  if (!reference && stage !== 'imitation_learning') throw new RangeError('"--stage" applies to the reference task only');
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
    const base = reference ? await loadAdapterDir(join(MODELS_DIR, REFERENCE_POLICY.adapterDir)) : syntheticAdapter({ params: opts.params });
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
        officerRoundOpen(officer, {
          fleet: fleet.id,
          template: templateDir,
          quorum: opts.robots,
          maxContributors: Math.max(2, opts.robots),
          freezeA: opts.freezeA,
          dpMode: opts.dpMode,
          sparsity: opts.sparsity,
          fieldBits: opts.fieldBits,
          clip: opts.clip,
          noiseMultiplier: opts.noiseMultiplier,
          epsilonBudget: opts.epsilonBudget,
          stage,
          approveOnPolicy: stage === 'on_policy_rl' ? 'demo: simulated cell, no hardware moves' : undefined,
        }),
      );
      const roundDir = join(root, `round-${r}`);
      const config = openRoundConfig({ bytes: new Uint8Array(await readFile(join(officer.home, 'officer', 'rounds', opened.roundId, 'config.bin'))) }).record;
      const names = trainableTensorNames({ tensors: config.tensors, freezeA: config.freezeA });
      let sum: Float64Array | null = null;
      const trainedAdapters: PeftAdapter[] = [];
      const training: Array<Record<string, unknown>> = [];
      const pushTimings: Record<string, number> = {};
      ctx.log(`round ${r + 1}/${opts.rounds} open: ${opened.valueCount} values in ${opened.ciphertextCount} ciphertexts per robot`);
      const pushBar = ctx.progress(`Round ${r + 1}: robots pushing`, robots.length);
      for (const [i, robot] of robots.entries()) {
        const startDir = join(roundDir, `start-${i}`);
        await robotStart(robot, { out: startDir, base: r === 0 ? templateDir : undefined, round: opened.roundId });
        const start = await loadAdapterDir(startDir);
        const trainedDir = join(roundDir, `trained-${i}`);
        let trained: PeftAdapter;
        if (reference) {
          // Each robot learns from its own site's demonstrations (the robot train command, unchanged).
          const site = siteNames()[i % siteNames().length]!;
          const seed = sha256(utf8ToBytes(`tensorguard/demo/${r}/${i}`));
          const t = await time('robot_train', () =>
            robotTrain(robot, { out: trainedDir, base: startDir, site, episodes: opts.episodes, steps: opts.trainSteps, seed: bytesToHex(seed), freezeA: opts.freezeA, round: opened.roundId }),
          );
          training.push({ robot: i, site, stage: t.stage, successOnOwnSite: t.successRate, loss: t.loss });
          trained = await loadAdapterDir(trainedDir);
        } else {
          trained = perturbAdapter({ adapter: start, names, sigma: 0.01 }).adapter;
          await saveAdapterDir(trainedDir, trained);
        }
        trainedAdapters.push(trained);
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
      const report = await time('officer_review', () => officerReview(officer, { round: opened.roundId, out: reviewDir, gateScenarios: opts.gateScenarios }));
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
      let taskSuccess: Record<string, unknown> | null = null;
      const gate = report.gate as GateReport;
      let overrideGate: string | undefined;
      if (gate.applicable && gate.verdict && !gate.verdict.pass)
        overrideGate = `demo: released over the failed gate to measure the round end to end (failed: ${gate.verdict.failed.join(', ')})`;
      if (reference && gate.applicable) {
        // The same round aggregated in plaintext: the mean of the robots' adapters, computed here.
        const plainAdapter = meanAdapter(trainedAdapters);
        const plain = await time('plaintext_eval', async () =>
          reviewGate(ctx, { config, deployed: await loadAdapterDir(templateDir), candidate: plainAdapter, candidateAdapterSha256: 'plaintext-mean', counts: opts.gateScenarios ? { nominal: opts.gateScenarios, site: opts.gateScenarios, ood: opts.gateScenarios } : undefined }),
        );
        taskSuccess = successTable({ encrypted: gate, plaintext: plain, dp: report.dp as Record<string, unknown> });
        const o = taskSuccess.overall as { deployed: number; encrypted: number; plaintext: number };
        ctx.log(`round ${r + 1}: held-out success ${pct(o.deployed)} before -> ${pct(o.encrypted)} after (HE${opts.dpMode === 'off' ? '' : ` + DP ${opts.dpMode}`}); plaintext mean ${pct(o.plaintext)}`);
      }
      const release = await time('officer_release', () => officerRelease(officer, { round: opened.roundId, canary: 1, overrideGate }));
      await time('robot_pull', async () => {
        for (const [i, robot] of robots.entries()) await robotPull(robot, { out: join(roundDir, `pulled-${i}`) });
      });
      ctx.log(`round ${r + 1}: release ${release.releaseVersion} signed, verified and applied by ${robots.length} robots; max error ${maxAbsError.toExponential(2)}`);
      templateDir = reviewDir;
      rounds.push({
        roundId: opened.roundId,
        reviewDir,
        task,
        stage: opened.stage,
        ...(reference ? { training } : {}),
        gate: gate.applicable ? { status: gate.verdict!.pass ? 'passed' : 'failed', failed: gate.verdict!.failed, override: release.gate.override, scenarios: gate.counts } : { status: 'not_applicable', reason: gate.reason },
        taskSuccess,
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
    for (const round of rounds) delete round.reviewDir;
    return {
      server: server.url,
      task,
      robots: opts.robots,
      trainableParams: trainable,
      rounds,
      heKeyVersion: keys.keyVersion,
      paramSet: keys.paramSetId,
      wireBytesPerParam: wireBytes / (trainable * opts.robots * opts.rounds),
      dpMode: opts.dpMode,
      stageMs: stages,
      dataDir: opts.keep ? root : null,
    };
  } finally {
    await server.close();
    if (!opts.keep) await rm(root, { recursive: true, force: true });
  }
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)} %`;
}

/** The plaintext aggregate: the element-wise mean of the robots' adapters (config of the first). */
function meanAdapter(adapters: PeftAdapter[]): PeftAdapter {
  const first = adapters[0]!;
  const tensors = new Map<string, Float32Array>();
  for (const [name, t] of first.tensors) {
    const m = new Float64Array(t.length);
    for (const a of adapters) {
      const v = a.tensors.get(name)!;
      for (let k = 0; k < m.length; k++) m[k]! += v[k]!;
    }
    tensors.set(name, Float32Array.from(m, (x) => x / adapters.length));
  }
  return { config: structuredClone(first.config), tensors, shapes: new Map(first.shapes) };
}

/**
 * Held-out success per set: the deployed policy (before the round), the decrypted aggregate (after, with
 * HE and DP) and the plaintext mean, on the same scenarios; overall = over every scenario of every set.
 */
function successTable(options: { encrypted: GateReport; plaintext: GateReport; dp: Record<string, unknown> }): Record<string, unknown> {
  const enc = options.encrypted.evaluation!;
  const plain = options.plaintext.evaluation!;
  const sets = enc.sets.map((s, i) => ({
    set: s.name,
    scenarios: s.count,
    deployed: enc.baseline!.sets[i]!.successRate,
    encrypted: s.successRate,
    plaintext: plain.sets[i]!.successRate,
  }));
  const total = sets.reduce((a, s) => a + s.scenarios, 0);
  const overall = (k: 'deployed' | 'encrypted' | 'plaintext') => sets.reduce((a, s) => a + s[k] * s.scenarios, 0) / total;
  const perRound = options.dp.perRound as { epsilon: number } | undefined;
  return {
    sets,
    overall: { deployed: overall('deployed'), encrypted: overall('encrypted'), plaintext: overall('plaintext') },
    /** plaintext - encrypted: what encryption, quantization, masking and DP cost in task success. */
    costOfPrivacy: overall('plaintext') - overall('encrypted'),
    gain: { encrypted: overall('encrypted') - overall('deployed'), plaintext: overall('plaintext') - overall('deployed') },
    dp: { mode: options.dp.mode, epsilonPerRound: perRound?.epsilon ?? null, delta: options.dp.delta ?? null },
    gate: { encrypted: options.encrypted.verdict!.failed, plaintext: options.plaintext.verdict!.failed },
    klEncrypted: enc.kl?.mean ?? null,
    klPlaintext: plain.kl?.mean ?? null,
  };
}
