// Demonstrations for behaviour cloning: (observation, expert action) pairs from rollouts of the reference
// task. Plain BC rolls out the expert; a DAgger iteration (Ross, Gordon, Bagnell 2011, "A Reduction of
// Imitation Learning and Structured Prediction to No-Regret Online Learning") rolls out a mixture of the
// learner and the expert and labels every visited state with the expert's action.
import { ACT_DIM, OBS_DIM, ReferenceTaskEnv, type RolloutResult } from '../sim/env.ts';
import type { Scenario } from '../sim/scenario.ts';
import { SeededRandom } from '../sim/random.ts';
import { expertAction } from './expert.ts';

export interface Dataset {
  obsDim: number;
  actDim: number;
  count: number;
  /** [count, obsDim] */
  obs: Float32Array;
  /** [count, actDim] expert actions */
  actions: Float32Array;
}

export type SyncPolicy = (obs: Float32Array) => ArrayLike<number>;

export function collectDemonstrations(options: {
  scenarios: Scenario[];
  /** Learner to roll out (DAgger); without it the expert drives. */
  learner?: SyncPolicy;
  /** Probability that the expert's action is executed at a step when a learner is given. */
  expertProbability?: number;
  seed?: Uint8Array;
}): { dataset: Dataset; results: RolloutResult[] } {
  const { scenarios, learner } = options;
  const beta = learner ? (options.expertProbability ?? 0) : 1;
  const rng = options.seed ? new SeededRandom(options.seed) : null;
  if (learner && beta > 0 && beta < 1 && !rng) throw new TypeError('"seed" expected Uint8Array(32) when mixing expert and learner');
  const obs: number[] = [];
  const actions: number[] = [];
  const results: RolloutResult[] = [];
  for (const scenario of scenarios) {
    const env = new ReferenceTaskEnv(scenario);
    while (!env.done) {
      const o = env.observe();
      const expert = expertAction(env);
      for (let i = 0; i < OBS_DIM; i++) obs.push(o[i]!);
      for (let i = 0; i < ACT_DIM; i++) actions.push(expert[i]!);
      const useExpert = !learner || beta >= 1 || (beta > 0 && rng!.next() < beta);
      env.act(useExpert ? expert : learner(o));
    }
    results.push(env.result());
  }
  return {
    dataset: { obsDim: OBS_DIM, actDim: ACT_DIM, count: actions.length / ACT_DIM, obs: Float32Array.from(obs), actions: Float32Array.from(actions) },
    results,
  };
}

export function concatDatasets(options: { datasets: Dataset[] }): Dataset {
  const { datasets } = options;
  const count = datasets.reduce((n, d) => n + d.count, 0);
  const obs = new Float32Array(count * OBS_DIM);
  const actions = new Float32Array(count * ACT_DIM);
  let off = 0;
  for (const d of datasets) {
    obs.set(d.obs, off * OBS_DIM);
    actions.set(d.actions, off * ACT_DIM);
    off += d.count;
  }
  return { obsDim: OBS_DIM, actDim: ACT_DIM, count, obs, actions };
}
