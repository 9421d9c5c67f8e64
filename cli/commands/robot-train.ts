// `tensorguard robot train`: the robot fine-tunes the reference policy's LoRA adapter on its own
// demonstrations (behaviour cloning, core/train/bc.ts) and writes a PEFT adapter to `robot push`.
//
//   start adapter  --base DIR (e.g. from `robot start`: the round's base with its frozen lora_A), else the
//                  robot's pulled release (<home>/robot/base), else the shipped template
//                  (static/models/reference-policy-adapter)
//   demonstrations the scripted expert on this robot's site layouts (--site NAME; default nominal),
//                  --episodes rollouts drawn from --seed (default: 32 fresh random bytes)
//   training       Adam on lora_B, and lora_A unless --freeze-a (FFA-LoRA: A stays bit-identical)
//   stage          --round ID takes the stage from the round's signed config (verified against the pinned
//                  officer keys), else --stage (default imitation_learning). Only imitation learning is
//                  built: offline_rl and on_policy_rl stop with `stage_not_built`; on_policy_rl is also
//                  refused without an officer-signed approval in the round config (`on_policy_not_approved`)
//   output         the adapter, its config naming the training stage (tensorguard_training_stage), and
//                  the success rate before and after on held-out scenarios of the same site
import { readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandContext } from '../context.ts';
import { CliError } from '../context.ts';
import { exists, loadAdapterDir, saveAdapterDir } from '../home.ts';
import { randomBytes } from '../../core/random.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { deriveSeed, seedFrom } from '../../core/sim/random.ts';
import { scenarioSet, siteNames } from '../../core/sim/scenario.ts';
import { loadPolicyWeights, loraFromAdapter, POLICY_LAYERS, loraTensorName, type PolicyLora } from '../../core/policy/mlp.ts';
import { BUILT_TRAINING_STAGES, REFERENCE_POLICY, TRAINING_STAGES, type TrainingStage } from '../../core/policy/reference.ts';
import { roundStage } from '../../core/records/round-config.ts';
import { fetchRound, robotClient } from './robot.ts';
import { collectDemonstrations } from '../../core/train/demos.ts';
import { trainLoraPolicy } from '../../core/train/bc.ts';
import { evaluatePolicy } from '../../core/eval/evaluate.ts';
import { tsPolicyRunner } from '../../core/eval/runners.ts';
import type { PeftAdapter } from '../../core/peft/adapter.ts';

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
}

/** The stage to train: the round's signed one (--round), else --stage; refuses what is not built or approved. */
async function trainingStage(ctx: CommandContext, opts: RobotTrainOptions): Promise<{ stage: TrainingStage; roundId: string | null }> {
  if (opts.stage !== undefined && !(TRAINING_STAGES as readonly string[]).includes(opts.stage))
    throw new CliError(`--stage expects one of ${TRAINING_STAGES.join(', ')}, got ${opts.stage}`, 'invalid_argument');
  let stage = (opts.stage ?? 'imitation_learning') as TrainingStage;
  let roundId: string | null = null;
  let approved = false;
  if (opts.round !== undefined) {
    const { identity, api, pinned } = await robotClient(ctx);
    const { config } = await fetchRound(api, identity, pinned, opts.round);
    if (opts.stage !== undefined && opts.stage !== roundStage(config)) throw new CliError(`--stage ${opts.stage} differs from the round's signed stage ${roundStage(config)}`, 'stage_mismatch');
    stage = roundStage(config);
    roundId = config.roundId;
    approved = !!config.onPolicyApproval?.reason;
  }
  if (stage === 'on_policy_rl' && !approved)
    throw new CliError('on-policy training needs an officer-signed approval in the round config: open the round with --stage on_policy_rl --approve-on-policy "reason" and train with --round ID', 'on_policy_not_approved');
  if (!BUILT_TRAINING_STAGES.includes(stage))
    throw new CliError(
      `the ${stage === 'offline_rl' ? 'offline RL' : 'on-policy RL'} trainer is not built yet; robot train implements imitation_learning (behaviour cloning) only`,
      'stage_not_built',
    );
  return { stage, roundId };
}

export async function robotTrain(ctx: CommandContext, opts: RobotTrainOptions): Promise<Record<string, unknown>> {
  const episodes = opts.episodes ?? 40;
  const steps = opts.steps ?? 1500;
  if (!Number.isSafeInteger(episodes) || episodes < 1 || episodes > 10_000) throw new CliError(`--episodes expects 1..10000, got ${episodes}`, 'invalid_argument');
  if (!Number.isSafeInteger(steps) || steps < 1 || steps > 1_000_000) throw new CliError(`--steps expects 1..1000000, got ${steps}`, 'invalid_argument');
  if (opts.site !== undefined && !siteNames().includes(opts.site)) throw new CliError(`--site expects one of ${siteNames().join(', ')}, got ${opts.site}`, 'invalid_argument');
  const { stage, roundId } = await trainingStage(ctx, opts);
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
  const progress = ctx.progress('demonstrations', episodes);
  const scenarios = scenarioSet({ name: setName, seed: deriveSeed({ seed, label: 'robot-train/demos' }), count: episodes });
  const demos = collectDemonstrations({ scenarios });
  progress.update(episodes);
  progress.stop();
  const check = [{ name: setName, role: opts.site ? ('site' as const) : ('nominal' as const), scenarios: scenarioSet({ name: setName, seed: deriveSeed({ seed, label: 'robot-train/check' }), count: CHECK_SCENARIOS }) }];
  const before = await evaluatePolicy({ sets: check, candidate: tsPolicyRunner({ weights, lora: loraFromAdapter({ adapter: start, weights }) }) });
  const bar = ctx.progress('training', steps);
  const t0 = performance.now();
  const result = trainLoraPolicy({
    weights,
    lora,
    dataset: demos.dataset,
    steps,
    batchSize: 64,
    learningRate: 5e-3,
    freezeA: opts.freezeA === true,
    seed: deriveSeed({ seed, label: 'robot-train/sgd' }),
    onProgress: (s) => s % 20 === 0 && bar.update(s),
  });
  bar.update(steps);
  bar.stop();
  const trainSeconds = (performance.now() - t0) / 1000;
  const after = await evaluatePolicy({ sets: check, candidate: tsPolicyRunner({ weights, lora }) });
  const trained = withLora(start, lora);
  trained.config = {
    ...trained.config,
    tensorguard_training_stage: stage,
    tensorguard_training: { method: 'behaviour_cloning', episodes, demonstrationSteps: demos.dataset.count, optimizerSteps: steps, site: opts.site ?? null, freezeA: opts.freezeA === true },
  };
  await saveAdapterDir(opts.out, trained);
  return {
    out: opts.out,
    base: baseDir,
    stage,
    roundId,
    site: opts.site ?? 'nominal',
    seed: bytesToHex(seed),
    episodes,
    demonstrationSteps: demos.dataset.count,
    optimizerSteps: steps,
    freezeA: opts.freezeA === true,
    loss: { initial: round(result.initialLoss), final: round(result.finalLoss) },
    trainSeconds: round(trainSeconds),
    successRate: { scenarios: CHECK_SCENARIOS, before: before.sets[0]!.successRate, after: after.sets[0]!.successRate },
    notBuilt: ['offline_rl', 'on_policy_rl'],
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
