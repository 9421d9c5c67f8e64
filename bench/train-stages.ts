// The training stages benchmark: what offline RL and on-policy RL buy on held-out scenarios of the
// simulator, with the configurations (sets, seeds, sizes) of core/train/offline-rl.test.ts and
// core/train/on-policy.test.ts, and the wall time of each trainer in the same run. Prints one JSON
// document: per policy, the mean return (the RL reward: progress - safety cost), mean safety cost,
// success rate and violations per rollout under deterministic (mean-action) evaluation.
//   offline   site-c log of mixed quality (base policy + noise, noisy scripted expert), AWR vs plain BC
//             (core/train/bc.ts) on the same log vs the start policy
//   onPolicy  PPO-clip from the start policy on nominal layouts vs the start policy
//   npm run bench -- train-stages [--offline-steps=N] [--ppo-iterations=N] [--ppo-seed-tags=x,y,z]
//                                 [--ppo-max-kl=K] [--ppo-acceptance=0]
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPolicyWeights, initialLora, type PolicyLora } from '../core/policy/mlp.ts';
import { ADAPTER_SEED, REFERENCE_POLICY } from '../core/policy/reference.ts';
import { scenarioSet } from '../core/sim/scenario.ts';
import { seedFrom } from '../core/sim/random.ts';
import { collectTransitions, evaluateReturn } from '../core/train/transitions.ts';
import { trainOfflineRl } from '../core/train/offline-rl.ts';
import { trainOnPolicy } from '../core/train/on-policy.ts';
import { trainLoraPolicy } from '../core/train/bc.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const here = dirname(fileURLToPath(import.meta.url));
const weights = loadPolicyWeights({ bytes: new Uint8Array(readFileSync(join(here, '..', 'static', 'models', REFERENCE_POLICY.weightsFile))) });
const template = () => initialLora({ weights, r: REFERENCE_POLICY.loraRank, alpha: REFERENCE_POLICY.loraAlpha, seed: ADAPTER_SEED });
const r3 = (x: number) => Number(x.toFixed(3));

function evaluate(lora: PolicyLora | undefined, scenarios: ReturnType<typeof scenarioSet>) {
  const e = evaluateReturn({ weights, lora, scenarios });
  return { meanReturn: r3(e.meanReturn), meanCost: r3(e.meanCost), successRate: r3(e.successRate), violationsPerRollout: r3(e.violationsPerRollout), meanStepsToPlace: e.meanStepsToPlace === null ? null : r3(e.meanStepsToPlace) };
}

function timed<T>(fn: () => T): { value: T; seconds: number } {
  const t = performance.now();
  const value = fn();
  return { value, seconds: r3((performance.now() - t) / 1000) };
}

// Offline RL: the configuration of core/train/offline-rl.test.ts.
const offlineSteps = Number(args.get('offline-steps') ?? 400);
const logScenarios = scenarioSet({ name: 'site:site-c', seed: seedFrom({ label: 'offline-rl.test/log' }), count: 32 });
const offlineHeldOut = scenarioSet({ name: 'site:site-c', seed: seedFrom({ label: 'offline-rl.test/held-out' }), count: 30 });
const collected = timed(() =>
  collectTransitions({ scenarios: logScenarios, behaviours: [{ kind: 'policy', weights, noise: 0.2 }, { kind: 'expert', noise: 0.3 }], seed: seedFrom({ label: 'offline-rl.test/noise' }) }),
);
const { log, results } = collected.value;
const awr = template();
const awrRun = timed(() => trainOfflineRl({ weights, lora: awr, log, steps: offlineSteps, batchSize: 64, learningRate: 1e-2, seed: seedFrom({ label: 'offline-rl.test/sgd' }) }));
const bc = template();
const bcRun = timed(() =>
  trainLoraPolicy({ weights, lora: bc, dataset: { obsDim: log.obsDim, actDim: log.actDim, count: log.count, obs: log.obs, actions: log.actions }, steps: offlineSteps, batchSize: 64, learningRate: 1e-2, seed: seedFrom({ label: 'offline-rl.test/sgd' }) }),
);
const offline = {
  set: 'site:site-c',
  log: { episodes: logScenarios.length, transitions: log.count, successRate: r3(results.filter((r) => r.success).length / results.length), seconds: collected.seconds },
  heldOutScenarios: offlineHeldOut.length,
  steps: offlineSteps,
  start: evaluate(undefined, offlineHeldOut),
  behaviourCloning: { ...evaluate(bc, offlineHeldOut), seconds: bcRun.seconds },
  offlineRl: { ...evaluate(awr, offlineHeldOut), seconds: awrRun.seconds, valueR2: r3(awrRun.value.valueR2 ?? 0), effectiveSampleFraction: r3(awrRun.value.effectiveSampleFraction) },
};

// On-policy RL: the configuration of core/train/on-policy.test.ts.
const iterations = Number(args.get('ppo-iterations') ?? 6);
const perIteration = 16;
// --ppo-max-kl=K / --ppo-acceptance=0: ablations of the KL bound and the acceptance test.
const ablation = {
  ...(args.has('ppo-max-kl') ? { maxKl: Number(args.get('ppo-max-kl')) } : {}),
  ...(args.get('ppo-acceptance') === '0' ? { acceptance: false } : {}),
};
const pool = scenarioSet({ name: 'nominal', seed: seedFrom({ label: 'on-policy.test/train' }), count: iterations * perIteration });
const ppoHeldOut = scenarioSet({ name: 'nominal', seed: seedFrom({ label: 'on-policy.test/held-out' }), count: 40 });
const ppo = template();
const ppoRun = timed(() => trainOnPolicy({ weights, lora: ppo, scenarios: pool, iterations, episodesPerIteration: perIteration, seed: seedFrom({ label: 'on-policy.test/ppo' }), ...ablation }));
// --ppo-seed-tags=x,y,z: the same training with other pools and seeds (labels + tag), for the spread.
const tags = (args.get('ppo-seed-tags') ?? '').split(',').filter((t) => t.length > 0);
const spread = tags.map((tag) => {
  const lora = template();
  const tagPool = scenarioSet({ name: 'nominal', seed: seedFrom({ label: `on-policy.test/train${tag}` }), count: iterations * perIteration });
  trainOnPolicy({ weights, lora, scenarios: tagPool, iterations, episodesPerIteration: perIteration, seed: seedFrom({ label: `on-policy.test/ppo${tag}` }), ...ablation });
  return { tag, ...evaluate(lora, ppoHeldOut) };
});
const onPolicy = {
  set: 'nominal',
  ablation,
  iterations,
  episodes: ppoRun.value.episodes,
  transitions: ppoRun.value.transitions,
  heldOutScenarios: ppoHeldOut.length,
  start: evaluate(undefined, ppoHeldOut),
  onPolicyRl: { ...evaluate(ppo, ppoHeldOut), seconds: ppoRun.seconds, klToStart: r3(ppoRun.value.finalKlToStart) },
  exploringReturnByIteration: ppoRun.value.iterations.map((s) => r3(s.meanReturn)),
  acceptedStepFractions: ppoRun.value.iterations.map((s) => s.stepFraction),
  klBoundHits: ppoRun.value.iterations.filter((s) => s.klBoundHit).length,
  otherSeeds: spread,
};

console.log(JSON.stringify({ bench: 'train-stages', node: process.version, offline, onPolicy }, null, 2));
