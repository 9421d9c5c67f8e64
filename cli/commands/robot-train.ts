// `tensorguard robot train`: the robot fine-tunes the reference policy's LoRA adapter with the round's
// training stage (core/train/stages.ts) and writes a PEFT adapter to `robot push`.
//
//   start adapter  --base DIR (e.g. from `robot start`: the round's base with its frozen lora_A), else the
//                  robot's pulled release (<home>/robot/base), else the shipped template
//                  (static/models/reference-policy-adapter)
//   scenarios      this robot's site layouts (--site NAME; default nominal), --episodes of them drawn
//                  from --seed (default: 32 fresh random bytes)
//   stage          --round ID (fetched) or --round-config FILE (the signed config bytes) names the stage;
//                  either is verified against the robot's pinned officer keys; else --stage (default
//                  imitation_learning). imitation_learning: behaviour cloning on the expert's
//                  demonstrations; offline_rl: advantage-weighted regression on the robot's logged
//                  transitions; on_policy_rl: PPO in the simulator (--iterations, --episodes per
//                  iteration), refused (`on_policy_not_approved`) unless the verified config carries the
//                  officer's approval
//   training       Adam on lora_B, and lora_A unless --freeze-a (FFA-LoRA: A stays bit-identical)
//   output         the adapter, its config naming the training stage (tensorguard_training_stage), and
//                  the success rate before and after on held-out scenarios of the same site
import { readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { exists, loadAdapterDir, readJson, saveAdapterDir } from '../home.ts';
import { randomBytes } from '../../core/random.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { deriveSeed, seedFrom } from '../../core/sim/random.ts';
import { scenarioSet, siteNames } from '../../core/sim/scenario.ts';
import { loadPolicyWeights, loraFromAdapter, POLICY_LAYERS, loraTensorName, type PolicyLora } from '../../core/policy/mlp.ts';
import { REFERENCE_POLICY, TRAINING_STAGES, type TrainingStage } from '../../core/policy/reference.ts';
import { robotClient, type RobotSession } from './robot.ts';
import { resolveTrainingStage, runTrainingStage, STAGE_DEFAULTS } from '../../core/train/stages.ts';
import { fromBase64 } from '../../core/bytes.ts';
import { evaluatePolicy } from '../../core/eval/evaluate.ts';
import { tsPolicyRunner } from '../../core/eval/runners.ts';
import { adapterFingerprint, type PeftAdapter } from '../../core/peft/adapter.ts';
import { rememberTrainDuration } from '../lib/timings.ts';

export const MODELS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'static', 'models');
const CHECK_SCENARIOS = 40;

export interface RobotTrainOptions {
  out: string;
  base?: string;
  episodes?: number;
  steps?: number;
  seed?: string;
  site?: string;
  freezeA?: boolean;
  stage?: string;
  round?: string;
  /** A signed round config file (the config.bin an officer wrote), verified against the pinned keys. */
  roundConfig?: string;
  /** on_policy_rl: PPO iterations. */
  iterations?: number;
}

/**
 * The stage to train: the round's signed one (--round fetched from the server, or --round-config FILE),
 * else --stage. core/train/stages.ts verifies the config against the robot's pinned officer keys and
 * refuses on-policy training without the officer's signed approval.
 */
async function trainingStage(ctx: CommandContext, opts: RobotTrainOptions, session?: RobotSession): Promise<{ stage: TrainingStage; roundId: string | null; approval: { reason: string; approvedAt: number } | null }> {
  if (opts.stage !== undefined && !(TRAINING_STAGES as readonly string[]).includes(opts.stage))
    throw new CliError(`--stage expects one of ${TRAINING_STAGES.join(', ')}, got ${opts.stage}`, 'invalid_argument');
  if (opts.round !== undefined && opts.roundConfig !== undefined) throw new CliError('--round and --round-config are exclusive', 'invalid_argument');
  if (opts.round === undefined && opts.roundConfig === undefined) return resolveTrainingStage({ requested: opts.stage });
  let bytes: Uint8Array;
  let identity: { fleetId: string; orgId: string; officerPublicKeys: string[] };
  if (opts.round !== undefined) {
    const client = session ?? (await robotClient(ctx));
    identity = client.identity;
    const round = await client.api.json<{ config: string }>('GET', `/v1/rounds/${encodeURIComponent(opts.round)}`);
    bytes = fromBase64(round.config);
  } else {
    const id = await readJson<{ fleetId: string; orgId: string; officerPublicKeys: string[] }>(join(ctx.home, 'robot', 'identity.json'));
    if (!id) throw new CliError(`no robot is enrolled in ${ctx.home}: --round-config is verified against the officer keys pinned at enrollment`, 'not_enrolled');
    identity = id;
    bytes = new Uint8Array(await readFile(opts.roundConfig!));
  }
  return resolveTrainingStage({ requested: opts.stage, roundConfig: bytes, trustedKeys: identity.officerPublicKeys.map((k) => fromBase64(k)), robot: identity });
}

export async function robotTrain(ctx: CommandContext, opts: RobotTrainOptions, session?: RobotSession): Promise<Record<string, unknown>> {
  if (opts.site !== undefined && !siteNames().includes(opts.site)) throw new CliError(`--site expects one of ${siteNames().join(', ')}, got ${opts.site}`, 'invalid_argument');
  const { stage, roundId, approval } = await trainingStage(ctx, opts, session);
  const onPolicy = stage === 'on_policy_rl';
  const iterations = opts.iterations ?? STAGE_DEFAULTS.on_policy_rl.iterations;
  // --episodes: demonstrations (imitation), logged episodes (offline RL), rollouts per PPO iteration (on-policy).
  const episodes = opts.episodes ?? STAGE_DEFAULTS[stage].episodes;
  const steps = opts.steps ?? (onPolicy ? 0 : STAGE_DEFAULTS[stage as Exclude<TrainingStage, 'on_policy_rl'>].steps);
  if (!Number.isSafeInteger(episodes) || episodes < 1 || episodes > 10_000) throw new CliError(`--episodes expects 1..10000, got ${episodes}`, 'invalid_argument');
  if (!onPolicy && (!Number.isSafeInteger(steps) || steps < 1 || steps > 1_000_000)) throw new CliError(`--steps expects 1..1000000, got ${steps}`, 'invalid_argument');
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 1000) throw new CliError(`--iterations expects 1..1000, got ${iterations}`, 'invalid_argument');
  const scenarioCount = onPolicy ? episodes * iterations : episodes;
  if (scenarioCount > 100_000) throw new CliError(`--episodes x --iterations expects at most 100000 rollouts, got ${scenarioCount}`, 'invalid_argument');
  let seed: Uint8Array;
  try {
    seed = opts.seed !== undefined ? seedFrom({ hex: opts.seed }) : randomBytes(32);
  } catch (e) {
    throw new CliError(`--seed expects 64 hex digits (32 bytes), got ${opts.seed}`, 'invalid_argument');
  }
  const weights = loadPolicyWeights({ bytes: new Uint8Array(await readFile(join(MODELS_DIR, REFERENCE_POLICY.weightsFile))) });
  const pulled = join(ctx.home, 'robot', 'base');
  const baseDir = opts.base ?? ((await exists(pulled)) ? pulled : join(MODELS_DIR, REFERENCE_POLICY.adapterDir));
  const start = await loadAdapterDir(baseDir);
  let lora: PolicyLora;
  try {
    lora = loraFromAdapter({ adapter: start, weights });
  } catch (e) {
    throw new CliError(`${baseDir} is not an adapter of the reference policy: ${(e as Error).message}`, 'not_reference_adapter');
  }
  // Train copies; the start adapter's arrays stay as they were.
  for (const name of POLICY_LAYERS) {
    const l = lora[name];
    if (l) lora[name] = { ...l, A: new Float32Array(l.A), B: new Float32Array(l.B) };
  }
  const setName = opts.site ? `site:${opts.site}` : 'nominal';
  const scenarios = scenarioSet({ name: setName, seed: deriveSeed({ seed, label: 'robot-train/demos' }), count: scenarioCount });
  // The stage's data (demonstrations, the transition log, simulator rollouts) is collected inside
  // runTrainingStage and timed with the optimisation in trainSeconds.
  const demoMs = 0;
  const check = [{ name: setName, role: opts.site ? ('site' as const) : ('nominal' as const), scenarios: scenarioSet({ name: setName, seed: deriveSeed({ seed, label: 'robot-train/check' }), count: CHECK_SCENARIOS }) }];
  const before = await evaluatePolicy({ sets: check, candidate: tsPolicyRunner({ weights, lora: loraFromAdapter({ adapter: start, weights }) }) });
  const total = onPolicy ? iterations : steps;
  const bar = ctx.progress(`training (${stage})`, total);
  const t0 = performance.now();
  const result = runTrainingStage({
    stage,
    weights,
    lora,
    scenarios,
    steps: onPolicy ? undefined : steps,
    iterations: onPolicy ? iterations : undefined,
    freezeA: opts.freezeA === true,
    seed: deriveSeed({ seed, label: 'robot-train/sgd' }),
    onProgress: (done) => bar.update(done),
  });
  bar.update(total);
  bar.stop();
  const trainSeconds = (performance.now() - t0) / 1000;
  const after = await evaluatePolicy({ sets: check, candidate: tsPolicyRunner({ weights, lora }) });
  const trained = withLora(start, lora);
  trained.config = {
    ...trained.config,
    tensorguard_training_stage: stage,
    tensorguard_training: {
      method: result.method,
      episodes: result.episodes,
      ...(stage === 'imitation_learning' ? { demonstrationSteps: result.transitions } : { transitions: result.transitions }),
      optimizerSteps: result.optimizerSteps,
      ...(onPolicy ? { iterations } : {}),
      site: opts.site ?? null,
      freezeA: opts.freezeA === true,
      ...(approval ? { onPolicyApproval: approval } : {}),
    },
  };
  await saveAdapterDir(opts.out, trained);
  // The round's `train` stage (cli/lib/timings.ts): demonstrations + optimizer steps, reported by the push of this adapter.
  await rememberTrainDuration({ home: ctx.home, roundId, adapterSha256: bytesToHex(adapterFingerprint({ adapter: trained })), durationMs: demoMs + trainSeconds * 1000, log: (m) => ctx.log(m) });
  return {
    out: opts.out,
    base: baseDir,
    stage,
    roundId,
    site: opts.site ?? 'nominal',
    seed: bytesToHex(seed),
    method: result.method,
    episodes: result.episodes,
    ...(stage === 'imitation_learning' ? { demonstrationSteps: result.transitions } : { transitions: result.transitions }),
    optimizerSteps: result.optimizerSteps,
    freezeA: opts.freezeA === true,
    loss: result.loss ? { initial: round(result.loss.initial), final: round(result.loss.final) } : null,
    trainSeconds: round(trainSeconds),
    successRate: { scenarios: CHECK_SCENARIOS, before: before.sets[0]!.successRate, after: after.sets[0]!.successRate },
    approval,
    training: result.details,
  };
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}

/** The start adapter with its LoRA tensors replaced by the trained ones (config and other tensors kept). */
function withLora(start: PeftAdapter, lora: PolicyLora): PeftAdapter {
  const tensors = new Map(start.tensors);
  for (const name of POLICY_LAYERS) {
    const l = lora[name];
    if (!l) continue;
    tensors.set(loraTensorName(name, 'A'), l.A);
    tensors.set(loraTensorName(name, 'B'), l.B);
  }
  return { config: structuredClone(start.config), tensors, shapes: new Map(start.shapes) };
}
