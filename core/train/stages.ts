// The training stages of the original design, dispatched from a round's stage: which trainer runs, on
// what data, and the gate in front of on-policy training.
//
//   stage source   the round's officer-signed config (verified here against the robot's pinned officer
//                  keys, and checked to name the robot's fleet and organization), else the requested stage
//   imitation_learning  behaviour cloning (core/train/bc.ts) on the scripted expert's demonstrations
//   offline_rl     advantage-weighted regression (core/train/offline-rl.ts) on the robot's logged
//                  transitions: in the simulator, its operation on its site layouts, half the episodes
//                  driven by its own start policy with actuation noise, half by operator demonstrations
//                  (the scripted expert, noisy): a log of mixed quality, as a real robot's would be
//   on_policy_rl   PPO-clip (core/train/on-policy.ts) in the simulator on the site layouts, with the safety
//                  costs in the reward and the KL to the start policy penalised and bounded; refused with
//                  OnPolicyNotApprovedError unless the round config carries the officer's approval and its
//                  signature verifies against a pinned officer key (so a server cannot forge or strip it)
// Every stage trains the LoRA matrices in place (lora_A too unless freezeA) and is deterministic given
// the seed. Pure: the caller loads weights and adapters and writes the result.
import { openRoundConfig, roundStage, type RoundConfig } from '../records/round-config.ts';
import { IntegrityError, TensorGuardError, describe } from '../errors.ts';
import { TRAINING_STAGES, type TrainingStage } from '../policy/reference.ts';
import type { PolicyLora, PolicyWeights } from '../policy/mlp.ts';
import type { Scenario } from '../sim/scenario.ts';
import { deriveSeed } from '../sim/random.ts';
import { collectDemonstrations } from './demos.ts';
import { trainLoraPolicy } from './bc.ts';
import { trainOfflineRl, AWR_DEFAULTS } from './offline-rl.ts';
import { trainOnPolicy, PPO_DEFAULTS } from './on-policy.ts';
import { collectTransitions, episodeTotals } from './transitions.ts';
import { cloneLora } from './lora-backprop.ts';

/** On-policy training without a verified, officer-signed approval in the round config. */
export class OnPolicyNotApprovedError extends TensorGuardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super({ message, code: 'on_policy_not_approved', status: 403, details });
  }
}

/** The requested stage differs from the one the round's signed config names. */
export class StageMismatchError extends TensorGuardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super({ message, code: 'stage_mismatch', status: 409, details });
  }
}

export interface ResolvedStage {
  stage: TrainingStage;
  roundId: string | null;
  /** The officer's approval, present exactly for on_policy_rl (from a config whose signature verified). */
  approval: { reason: string; approvedAt: number } | null;
}

export function isTrainingStage(value: unknown): value is TrainingStage {
  return typeof value === 'string' && (TRAINING_STAGES as readonly string[]).includes(value);
}

/**
 * The stage to train and its authorisation. `roundConfig` is the signed round config as the robot got it
 * (bytes); it is opened against `trustedKeys` (the robot's pinned officer keys) here, so a forged,
 * re-signed or tampered config never reaches a trainer (SignatureInvalidError / UntrustedSignerError).
 */
export function resolveTrainingStage(options: {
  requested?: string;
  roundConfig?: Uint8Array;
  trustedKeys?: readonly Uint8Array[];
  robot?: { fleetId: string; orgId: string };
}): ResolvedStage {
  const { requested } = options;
  if (requested !== undefined && !isTrainingStage(requested)) throw new TypeError(`"stage" expected ${TRAINING_STAGES.join(', ')}, got ${describe(requested)}`);
  if (options.roundConfig === undefined) {
    const stage = requested ?? 'imitation_learning';
    if (stage === 'on_policy_rl')
      throw new OnPolicyNotApprovedError('on-policy training needs an officer-signed approval in the round config: the officer opens the round with --stage on_policy_rl --approve-on-policy "reason", and the robot trains with --round ID (or --round-config FILE)');
    return { stage, roundId: null, approval: null };
  }
  const keys = options.trustedKeys;
  if (!Array.isArray(keys) || keys.length === 0) throw new TypeError(`"trustedKeys" expected the robot's pinned officer keys, got ${describe(keys)}`);
  const { record } = openRoundConfig({ bytes: options.roundConfig, trustedKeys: keys });
  return stageOfVerifiedConfig({ config: record, requested, robot: options.robot });
}

/** The stage rules on a config whose signature the caller has verified against the pinned keys. */
export function stageOfVerifiedConfig(options: { config: RoundConfig; requested?: string; robot?: { fleetId: string; orgId: string } }): ResolvedStage {
  const { config, requested, robot } = options;
  if (robot && (config.fleetId !== robot.fleetId || config.orgId !== robot.orgId)) throw new IntegrityError('the round config names another fleet or organization');
  const stage = roundStage(config);
  if (requested !== undefined && requested !== stage) throw new StageMismatchError(`the requested stage ${requested} differs from the round's signed stage ${stage}`, { requested, stage });
  let approval: ResolvedStage['approval'] = null;
  if (stage === 'on_policy_rl') {
    const a = config.onPolicyApproval;
    // decode already refuses an on_policy_rl config without one; checked again where it matters.
    if (!a || typeof a.reason !== 'string' || !a.reason.trim()) throw new OnPolicyNotApprovedError(`round ${config.roundId} is on_policy_rl but carries no officer approval`);
    approval = { reason: a.reason, approvedAt: a.approvedAt };
  }
  return { stage, roundId: config.roundId, approval };
}

/** Work per stage when the caller leaves it open. */
export const STAGE_DEFAULTS = Object.freeze({
  imitation_learning: { episodes: 40, steps: 1500, batchSize: 64, learningRate: 5e-3 },
  offline_rl: { episodes: 40, steps: 600, batchSize: 64, learningRate: 1e-2 },
  /** episodes = per PPO iteration. */
  on_policy_rl: { episodes: PPO_DEFAULTS.episodesPerIteration, iterations: 10, learningRate: 5e-3 },
});

export interface StageRunOptions {
  stage: TrainingStage;
  weights: PolicyWeights;
  /** Trained in place. */
  lora: PolicyLora;
  /** Training scenarios of the robot's site: demonstrations, logged episodes, or a PPO pool. */
  scenarios: Scenario[];
  /** Behaviour cloning's minibatch seed as given; the RL stages derive their streams from it. */
  seed: Uint8Array;
  freezeA?: boolean;
  /** BC and offline RL: optimizer steps. */
  steps?: number;
  /** On-policy: PPO iterations; the pool is split into iterations x (scenarios / iterations) rollouts. */
  iterations?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface StageRunResult {
  stage: TrainingStage;
  method: 'behaviour_cloning' | 'advantage_weighted_regression' | 'ppo_clip';
  /** The training data: demonstration steps, logged transitions, or simulator transitions. */
  transitions: number;
  episodes: number;
  optimizerSteps: number;
  loss: { initial: number; final: number } | null;
  details: Record<string, unknown>;
}

/** Runs the stage's trainer on `lora` (in place). */
export function runTrainingStage(options: StageRunOptions): StageRunResult {
  const { stage, weights, lora, scenarios, seed } = options;
  if (!isTrainingStage(stage)) throw new TypeError(`"stage" expected ${TRAINING_STAGES.join(', ')}, got ${describe(stage)}`);
  if (!Array.isArray(scenarios) || scenarios.length === 0) throw new TypeError(`"scenarios" expected a non-empty array, got ${describe(scenarios)}`);
  const freezeA = options.freezeA === true;
  if (stage === 'imitation_learning') {
    const d = STAGE_DEFAULTS.imitation_learning;
    const steps = options.steps ?? d.steps;
    const demos = collectDemonstrations({ scenarios });
    const r = trainLoraPolicy({
      weights,
      lora,
      dataset: demos.dataset,
      steps,
      batchSize: d.batchSize,
      learningRate: d.learningRate,
      freezeA,
      seed,
      onProgress: (s) => s % 20 === 0 && options.onProgress?.(s, steps),
    });
    return { stage, method: 'behaviour_cloning', transitions: demos.dataset.count, episodes: scenarios.length, optimizerSteps: steps, loss: { initial: r.initialLoss, final: r.finalLoss }, details: {} };
  }
  if (stage === 'offline_rl') {
    const d = STAGE_DEFAULTS.offline_rl;
    const steps = options.steps ?? d.steps;
    const { log, results, behaviourOf } = collectTransitions({
      scenarios,
      behaviours: [
        { kind: 'policy', weights, lora: cloneLora(lora), noise: 0.2 },
        { kind: 'expert', noise: 0.3 },
      ],
      seed: deriveSeed({ seed, label: 'stage/offline/log' }),
    });
    const totals = episodeTotals(log);
    const byBehaviour = (k: number) => {
      const idx = behaviourOf.map((b, i) => (b === k ? i : -1)).filter((i) => i >= 0);
      return {
        episodes: idx.length,
        successRate: idx.length ? idx.filter((i) => results[i]!.success).length / idx.length : 0,
        meanReturn: idx.length ? idx.reduce((a, i) => a + totals.returns[i]!, 0) / idx.length : 0,
      };
    };
    const r = trainOfflineRl({
      weights,
      lora,
      log,
      steps,
      batchSize: d.batchSize,
      learningRate: d.learningRate,
      freezeA,
      seed: deriveSeed({ seed, label: 'stage/offline/sgd' }),
      onProgress: (s) => s % 20 === 0 && options.onProgress?.(s, steps),
    });
    return {
      stage,
      method: 'advantage_weighted_regression',
      transitions: log.count,
      episodes: scenarios.length,
      optimizerSteps: steps,
      loss: { initial: r.initialLoss, final: r.finalLoss },
      details: {
        log: { ownPolicy: byBehaviour(0), operatorDemonstrations: byBehaviour(1), constraintCost: totals.costs.reduce((a, b) => a + b, 0) },
        valueR2: r.valueR2,
        effectiveSampleFraction: r.effectiveSampleFraction,
        temperature: AWR_DEFAULTS.temperature,
        gamma: AWR_DEFAULTS.gamma,
      },
    };
  }
  const d = STAGE_DEFAULTS.on_policy_rl;
  const iterations = options.iterations ?? d.iterations;
  const perIteration = Math.max(1, Math.floor(scenarios.length / iterations));
  const r = trainOnPolicy({
    weights,
    lora,
    scenarios,
    iterations,
    episodesPerIteration: perIteration,
    learningRate: d.learningRate,
    freezeA,
    seed: deriveSeed({ seed, label: 'stage/on-policy' }),
    onIteration: (s) => options.onProgress?.(s.iteration, iterations),
  });
  const it = r.iterations;
  return {
    stage,
    method: 'ppo_clip',
    transitions: r.transitions,
    episodes: r.episodes,
    optimizerSteps: it.reduce((a, s) => a + s.epochsRun * Math.ceil(s.transitions / PPO_DEFAULTS.batchSize), 0),
    loss: null,
    details: {
      iterations: iterations,
      episodesPerIteration: perIteration,
      exploringReturn: { first: it[0]!.meanReturn, last: it[it.length - 1]!.meanReturn },
      exploringSuccess: { first: it[0]!.successRate, last: it[it.length - 1]!.successRate },
      klToStart: r.finalKlToStart,
      klBoundHits: it.filter((s) => s.klBoundHit).length,
      maxKl: PPO_DEFAULTS.maxKl,
      klPenalty: PPO_DEFAULTS.klPenalty,
      explorationSigma: r.sigma,
    },
  };
}
