// Logged transitions of the reference task and the reward the RL trainers optimise: the simulator's task
// progress and its safety costs (constraint violations, contacts, contact forces over the ISO/TS 15066
// limits) folded into one scalar per step.
//
//   behaviour policy (noisy scripted expert | policy mean + Gaussian noise)  ->  env.act
//   per step: obs (the robot's noisy sensors, before the action), action (as commanded), reward, cost,
//             step index, episode index   ->   TransitionLog (what a robot keeps of its own operation)
//
// Reward of one step (s -> s'):
//   r = phi(s') - phi(s) - TIME_COST + GRASP_BONUS [grasped] + SUCCESS_BONUS [placed] - cost
//   phi(s) = -(holding ? |ee - goal| : |ee - object| + |object - goal|) / reach
// phi is a potential, so the progress term is potential-based shaping (Ng, Harada, Russell 1999, "Policy
// invariance under reward transformations", Theorem 1): it adds a dense signal without changing which
// policy is optimal. The safety cost of the step is
//   cost = sum_k VIOLATION_COST[k] * (new violations of kind k)          speed/joint limit, workspace, zone
//        + COLLISION_COST                        on a contact with a fixture (protective stop)
//        + HUMAN_CONTACT_COST + FORCE_COST * max(0, F/F_limit - 1) * 10   on a contact with the person
// so a contact with the person costs more than the progress and bonuses of a typical episode (about 3),
// a contact above the body region's transient limit more still, and a contact with a fixture more than
// running out of time (160 steps x TIME_COST = 1.6).
import { ACT_DIM, OBS_DIM, ReferenceTaskEnv, reach, type RolloutResult, type Violations } from '../sim/env.ts';
import type { Scenario } from '../sim/scenario.ts';
import { SeededRandom } from '../sim/random.ts';
import type { PolicyLora, PolicyWeights } from '../policy/mlp.ts';
import { expertAction } from './expert.ts';
import { forwardBatch } from './lora-backprop.ts';
import { describe, expectFinite } from '../errors.ts';

export const REWARD = Object.freeze({
  TIME_COST: 0.01,
  GRASP_BONUS: 0.25,
  SUCCESS_BONUS: 1,
  VIOLATION_COST: Object.freeze({ speedLimit: 0.05, jointLimit: 0.05, workspaceExit: 0.1, humanZone: 0.1, collision: 0 } satisfies Violations),
  COLLISION_COST: 2,
  HUMAN_CONTACT_COST: 4,
  FORCE_COST: 0.5,
});

export interface TransitionLog {
  obsDim: number;
  actDim: number;
  count: number;
  /** [count, obsDim] observations before each action. */
  obs: Float32Array;
  /** [count, actDim] the commanded actions. */
  actions: Float32Array;
  /** Task reward minus safety cost, per step. */
  rewards: Float32Array;
  /** Safety cost per step (already subtracted in rewards; kept for reporting and constraints). */
  costs: Float32Array;
  /** Step index within its episode. */
  steps: Uint16Array;
  /** Episode index of each step. */
  episodes: Uint32Array;
  /** Per episode: first row, length and the scenario's step limit. */
  episodeStart: Uint32Array;
  episodeLength: Uint32Array;
  maxSteps: Uint16Array;
}

/** The potential phi(s) of the shaping term. */
export function progressPotential(env: ReferenceTaskEnv): number {
  const s = env.scenario;
  const ee = env.ee;
  const R = reach(s);
  const toGoal = (p: { x: number; y: number }) => Math.hypot(p.x - s.goal.x, p.y - s.goal.y);
  if (env.holding || env.termination === 'placed') return -toGoal(ee) / R;
  return -(Math.hypot(ee.x - s.object.x, ee.y - s.object.y) + toGoal(s.object)) / R;
}

interface StepSnapshot {
  potential: number;
  holding: boolean;
  violations: Violations;
  contacts: number;
}

function snapshot(env: ReferenceTaskEnv): StepSnapshot {
  return { potential: progressPotential(env), holding: env.holding, violations: { ...env.violations }, contacts: env.contacts.length };
}

/** Steps `env` with `action` and returns the step's reward and safety cost. */
export function actWithReward(env: ReferenceTaskEnv, action: ArrayLike<number>): { reward: number; cost: number } {
  const before = snapshot(env);
  env.act(action);
  let cost = 0;
  for (const k of Object.keys(REWARD.VIOLATION_COST) as Array<keyof Violations>) cost += REWARD.VIOLATION_COST[k] * (env.violations[k] - before.violations[k]);
  for (let c = before.contacts; c < env.contacts.length; c++) {
    const contact = env.contacts[c]!;
    if (contact.kind === 'human') cost += REWARD.HUMAN_CONTACT_COST + REWARD.FORCE_COST * 10 * Math.max(0, (contact.ratio ?? 0) - 1);
    else cost += REWARD.COLLISION_COST;
  }
  let reward = progressPotential(env) - before.potential - REWARD.TIME_COST - cost;
  if (!before.holding && env.holding) reward += REWARD.GRASP_BONUS;
  if (env.termination === 'placed' && env.done) reward += REWARD.SUCCESS_BONUS;
  return { reward, cost };
}

/**
 * How an episode of a log is driven: the scripted expert (privileged state) or a policy's mean, each
 * with Gaussian action noise of standard deviation `noise` (in units of the speed limits).
 */
export type Behaviour =
  | { kind: 'expert'; noise: number }
  | { kind: 'policy'; weights: PolicyWeights; lora?: PolicyLora; noise: number };

/** A log of the given behaviours, episode i driven by behaviours[i % behaviours.length], seeded. */
export function collectTransitions(options: { scenarios: Scenario[]; behaviours: Behaviour[]; seed: Uint8Array }): { log: TransitionLog; results: RolloutResult[]; behaviourOf: number[] } {
  const { scenarios, behaviours } = options;
  if (!Array.isArray(scenarios) || scenarios.length === 0) throw new TypeError(`"scenarios" expected a non-empty array, got ${describe(scenarios)}`);
  if (!Array.isArray(behaviours) || behaviours.length === 0) throw new TypeError(`"behaviours" expected a non-empty array, got ${describe(behaviours)}`);
  for (const b of behaviours) expectFinite('behaviour.noise', b.noise, 0, 2);
  const rng = new SeededRandom(options.seed);
  const builder = new LogBuilder();
  const results: RolloutResult[] = [];
  const behaviourOf: number[] = [];
  scenarios.forEach((scenario, e) => {
    const which = e % behaviours.length;
    const behaviour = behaviours[which]!;
    const env = new ReferenceTaskEnv(scenario);
    builder.startEpisode(scenario.maxSteps);
    const action = new Float64Array(ACT_DIM);
    while (!env.done) {
      const o = env.observe();
      const clean = behaviour.kind === 'expert' ? expertAction(env) : forwardBatch({ weights: behaviour.weights, lora: behaviour.lora, obs: o, batch: 1 }).mean;
      for (let j = 0; j < ACT_DIM; j++) action[j] = clean[j]! + (behaviour.noise > 0 ? behaviour.noise * rng.normal() : 0);
      const t = env.step;
      const { reward, cost } = actWithReward(env, action);
      builder.push(o, action, reward, cost, t);
    }
    results.push(env.result());
    behaviourOf.push(which);
  });
  return { log: builder.finish(), results, behaviourOf };
}

/** Grows a TransitionLog row by row. */
export class LogBuilder {
  private obs: number[] = [];
  private actions: number[] = [];
  private rewards: number[] = [];
  private costs: number[] = [];
  private steps: number[] = [];
  private episodes: number[] = [];
  private starts: number[] = [];
  private maxSteps: number[] = [];

  startEpisode(maxSteps: number): number {
    this.starts.push(this.rewards.length);
    this.maxSteps.push(maxSteps);
    return this.starts.length - 1;
  }

  push(obs: ArrayLike<number>, action: ArrayLike<number>, reward: number, cost: number, step: number, episode = this.starts.length - 1): void {
    for (let i = 0; i < OBS_DIM; i++) this.obs.push(obs[i]!);
    for (let j = 0; j < ACT_DIM; j++) this.actions.push(action[j]!);
    this.rewards.push(reward);
    this.costs.push(cost);
    this.steps.push(step);
    this.episodes.push(episode);
  }

  finish(): TransitionLog {
    const count = this.rewards.length;
    const E = this.starts.length;
    // Rows may arrive interleaved (lockstep rollouts): order them by episode, then step.
    const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => this.episodes[a]! - this.episodes[b]! || this.steps[a]! - this.steps[b]!);
    const log: TransitionLog = {
      obsDim: OBS_DIM,
      actDim: ACT_DIM,
      count,
      obs: new Float32Array(count * OBS_DIM),
      actions: new Float32Array(count * ACT_DIM),
      rewards: new Float32Array(count),
      costs: new Float32Array(count),
      steps: new Uint16Array(count),
      episodes: new Uint32Array(count),
      episodeStart: new Uint32Array(E),
      episodeLength: new Uint32Array(E),
      maxSteps: Uint16Array.from(this.maxSteps),
    };
    order.forEach((src, dst) => {
      for (let i = 0; i < OBS_DIM; i++) log.obs[dst * OBS_DIM + i] = this.obs[src * OBS_DIM + i]!;
      for (let j = 0; j < ACT_DIM; j++) log.actions[dst * ACT_DIM + j] = this.actions[src * ACT_DIM + j]!;
      log.rewards[dst] = this.rewards[src]!;
      log.costs[dst] = this.costs[src]!;
      log.steps[dst] = this.steps[src]!;
      log.episodes[dst] = this.episodes[src]!;
    });
    for (let i = 0; i < count; i++) log.episodeLength[log.episodes[i]!]!++;
    let off = 0;
    for (let e = 0; e < E; e++) {
      log.episodeStart[e] = off;
      off += log.episodeLength[e]!;
    }
    return log;
  }
}

/** Discounted returns-to-go G_t = sum_k gamma^k r_{t+k} within each episode of the log. */
export function returnsToGo(options: { log: TransitionLog; gamma: number }): Float64Array {
  const { log } = options;
  const gamma = expectFinite('gamma', options.gamma, 0, 1);
  const G = new Float64Array(log.count);
  for (let e = 0; e < log.episodeStart.length; e++) {
    const start = log.episodeStart[e]!;
    let acc = 0;
    for (let i = start + log.episodeLength[e]! - 1; i >= start; i--) {
      acc = log.rewards[i]! + gamma * acc;
      G[i] = acc;
    }
  }
  return G;
}

/** Per-episode sums of reward and cost (undiscounted). */
export function episodeTotals(log: TransitionLog): { returns: number[]; costs: number[] } {
  const returns: number[] = [];
  const costs: number[] = [];
  for (let e = 0; e < log.episodeStart.length; e++) {
    let r = 0;
    let c = 0;
    for (let i = log.episodeStart[e]!; i < log.episodeStart[e]! + log.episodeLength[e]!; i++) {
      r += log.rewards[i]!;
      c += log.costs[i]!;
    }
    returns.push(r);
    costs.push(c);
  }
  return { returns, costs };
}

/**
 * Deterministic evaluation (the Gaussian head's mean, as core/eval/evaluate.ts runs it) on `scenarios`,
 * with the RL reward: mean return, mean safety cost, success rate, violations and contacts per rollout.
 */
export function evaluateReturn(options: { weights: PolicyWeights; lora?: PolicyLora; scenarios: Scenario[] }): {
  meanReturn: number;
  meanCost: number;
  successRate: number;
  violationsPerRollout: number;
  contacts: number;
  /** Mean steps of the successful rollouts (cycle time / dt), or null without any. */
  meanStepsToPlace: number | null;
  results: RolloutResult[];
} {
  const { weights, lora, scenarios } = options;
  const envs = scenarios.map((s) => new ReferenceTaskEnv(s));
  const ret = new Float64Array(envs.length);
  const cost = new Float64Array(envs.length);
  const obs = new Float32Array(envs.length * OBS_DIM);
  for (;;) {
    const live = envs.map((e, i) => (e.done ? -1 : i)).filter((i) => i >= 0);
    if (live.length === 0) break;
    live.forEach((i, b) => obs.set(envs[i]!.observe(), b * OBS_DIM));
    const { mean } = forwardBatch({ weights, lora, obs: obs.subarray(0, live.length * OBS_DIM), batch: live.length });
    live.forEach((i, b) => {
      const r = actWithReward(envs[i]!, mean.subarray(b * ACT_DIM, (b + 1) * ACT_DIM));
      ret[i]! += r.reward;
      cost[i]! += r.cost;
    });
  }
  const results = envs.map((e) => e.result());
  const placed = results.filter((r) => r.success);
  const n = envs.length;
  return {
    meanReturn: ret.reduce((a, b) => a + b, 0) / n,
    meanCost: cost.reduce((a, b) => a + b, 0) / n,
    successRate: results.filter((r) => r.success).length / n,
    violationsPerRollout: results.reduce((a, r) => a + r.violationCount, 0) / n,
    contacts: results.reduce((a, r) => a + r.contacts.length, 0),
    meanStepsToPlace: placed.length ? placed.reduce((a, r) => a + r.steps, 0) / placed.length : null,
    results,
  };
}
