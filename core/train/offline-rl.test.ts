// Offline RL (advantage-weighted regression): the shared LoRA backprop agrees with behaviour cloning's own
// gradients, the ridge value baseline recovers a linear target, bad logs are refused, and on a site-c log
// of mixed quality AWR beats plain BC trained on the same log, and the start policy, on held-out
// scenarios (fixed seeds: the numbers are deterministic; bench/train-stages.ts prints them).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initPolicyWeights, initialLora, loadPolicyWeights, POLICY_LAYERS, type PolicyLora } from '../policy/mlp.ts';
import { ADAPTER_SEED, REFERENCE_POLICY } from '../policy/reference.ts';
import { SeededRandom, seedFrom } from '../sim/random.ts';
import { scenarioSet } from '../sim/scenario.ts';
import { lossAndGradients, trainLoraPolicy } from './bc.ts';
import { backwardLora, forwardBatch, loraParameters } from './lora-backprop.ts';
import { collectTransitions, evaluateReturn, returnsToGo, type TransitionLog } from './transitions.ts';
import { advantageWeights, fitValueBaseline, trainOfflineRl } from './offline-rl.ts';

const MODELS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'static', 'models');
const weights = loadPolicyWeights({ bytes: new Uint8Array(readFileSync(join(MODELS, REFERENCE_POLICY.weightsFile))) });
const template = () => initialLora({ weights, r: REFERENCE_POLICY.loraRank, alpha: REFERENCE_POLICY.loraAlpha, seed: ADAPTER_SEED });

describe('LoRA backprop shared by the RL trainers', () => {
  it('gives behaviour cloning\'s gradients for dL/dmean = 2 (mean - a) / B', () => {
    const w = initPolicyWeights({ seed: seedFrom({ label: 'offline-rl.test/grad' }), hidden: 8 });
    const lora: PolicyLora = initialLora({ weights: w, r: 2, alpha: 4, seed: seedFrom({ label: 'offline-rl.test/grad-a' }) });
    const rng = new SeededRandom(seedFrom({ label: 'offline-rl.test/grad-b' }));
    for (const n of POLICY_LAYERS) for (let i = 0; i < lora[n]!.B.length; i++) lora[n]!.B[i] = 0.3 * rng.normal();
    const count = 12;
    const dataset = {
      obsDim: w.obsDim,
      actDim: w.actDim,
      count,
      obs: Float32Array.from({ length: count * w.obsDim }, () => rng.normal()),
      actions: Float32Array.from({ length: count * w.actDim }, () => rng.uniform(-1, 1)),
    };
    const indices = Uint32Array.from({ length: count }, (_, i) => i);
    const reference = lossAndGradients({ weights: w, lora, dataset, indices });
    const fwd = forwardBatch({ weights: w, lora, obs: dataset.obs, indices });
    const dMean = new Float64Array(count * w.actDim);
    for (let i = 0; i < dMean.length; i++) dMean[i] = (2 * (fwd.mean[i]! - dataset.actions[i]!)) / count;
    const params = loraParameters({ lora, freezeA: false });
    backwardLora({ forward: fwd, lora, dMean, params });
    for (const p of params) {
      const ref = reference.grads.get(p.name)!;
      for (let i = 0; i < ref.length; i++) expect(p.grad[i]).toBeCloseTo(ref[i]!, 10);
    }
  });
});

describe('value baseline', () => {
  it('ridge regression recovers a linear target and reports R^2', () => {
    const rng = new SeededRandom(seedFrom({ label: 'offline-rl.test/ridge' }));
    const dim = 5;
    const n = 400;
    const truth = [0.5, -1, 2, 0.25, 3];
    const phi = new Float64Array(n * dim);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      phi[i * dim] = 1;
      for (let a = 1; a < dim; a++) phi[i * dim + a] = rng.normal();
      for (let a = 0; a < dim; a++) y[i]! += truth[a]! * phi[i * dim + a]!;
    }
    const fit = fitValueBaseline({ phi, dim, targets: y, ridge: 0 });
    truth.forEach((t, a) => expect(fit.theta[a]).toBeCloseTo(t, 6));
    expect(fit.r2).toBeCloseTo(1, 9);
  });

  it('returns-to-go are discounted within, never across, episodes', () => {
    const log = { rewards: Float32Array.of(1, 1, 1, 5), episodeStart: Uint32Array.of(0, 2), episodeLength: Uint32Array.of(2, 2), count: 4 } as unknown as TransitionLog;
    expect(Array.from(returnsToGo({ log, gamma: 0.5 }))).toEqual([1.5, 1, 3.5, 5]);
  });
});

describe('offline RL on a mixed-quality log', () => {
  // The robot's site-c log: half the episodes its base policy with actuation noise (it collides or times
  // out: site-c reverses the flow it was trained on), half noisy operator demonstrations.
  const logScenarios = scenarioSet({ name: 'site:site-c', seed: seedFrom({ label: 'offline-rl.test/log' }), count: 32 });
  const heldOut = scenarioSet({ name: 'site:site-c', seed: seedFrom({ label: 'offline-rl.test/held-out' }), count: 30 });
  const { log, results } = collectTransitions({
    scenarios: logScenarios,
    behaviours: [
      { kind: 'policy', weights, noise: 0.2 },
      { kind: 'expert', noise: 0.3 },
    ],
    seed: seedFrom({ label: 'offline-rl.test/noise' }),
  });

  it('weights the operator\'s steps above the failing policy\'s', () => {
    expect(results.filter((r, i) => i % 2 === 0 && r.success).length).toBe(0);
    expect(results.filter((r, i) => i % 2 === 1 && r.success).length).toBeGreaterThan(10);
    const aw = advantageWeights({ weights, log });
    expect(aw.valueR2).toBeGreaterThan(0.5);
    let own = 0;
    let ownN = 0;
    let expert = 0;
    let expertN = 0;
    for (let i = 0; i < log.count; i++) {
      if (log.episodes[i]! % 2 === 0) (own += aw.weights[i]!), ownN++;
      else (expert += aw.weights[i]!), expertN++;
    }
    expect(expert / expertN).toBeGreaterThan((1.5 * own) / ownN);
  });

  it('beats behaviour cloning on the same log and the start policy on held-out scenarios', () => {
    const start = evaluateReturn({ weights, scenarios: heldOut });
    const awr = template();
    const before = structuredClone(awr);
    const result = trainOfflineRl({ weights, lora: awr, log, steps: 400, batchSize: 64, learningRate: 1e-2, seed: seedFrom({ label: 'offline-rl.test/sgd' }) });
    expect(result.method).toBe('advantage_weighted_regression');
    expect(result.finalLoss).toBeLessThan(result.initialLoss);
    expect(awr.fc1!.B.some((v) => v !== 0)).toBe(true);
    const bc = template();
    trainLoraPolicy({ weights, lora: bc, dataset: { obsDim: log.obsDim, actDim: log.actDim, count: log.count, obs: log.obs, actions: log.actions }, steps: 400, batchSize: 64, learningRate: 1e-2, seed: seedFrom({ label: 'offline-rl.test/sgd' }) });
    const offline = evaluateReturn({ weights, lora: awr, scenarios: heldOut });
    const cloned = evaluateReturn({ weights, lora: bc, scenarios: heldOut });
    // Measured (bench/train-stages.ts, same seeds): mean return start -3.81, BC -3.83, AWR -1.98.
    expect(offline.meanReturn).toBeGreaterThan(start.meanReturn + 1);
    expect(offline.meanReturn).toBeGreaterThan(cloned.meanReturn + 1);
    expect(offline.meanCost).toBeLessThan(0.6 * cloned.meanCost);
    expect(offline.successRate).toBeGreaterThan(start.successRate);
    expect(offline.violationsPerRollout).toBeLessThan(0.5 * cloned.violationsPerRollout);
    // Deterministic given the seed: a second short run from the same start gives identical matrices.
    const again = [structuredClone(before), structuredClone(before)];
    for (const l of again) trainOfflineRl({ weights, lora: l, log, steps: 5, batchSize: 32, seed: seedFrom({ label: 'offline-rl.test/repeat' }) });
    expect(again[0]).toEqual(again[1]);
  });

  it('refuses a log that does not fit the policy or carries non-finite rewards, changing nothing', () => {
    const lora = template();
    const copy = structuredClone(lora);
    expect(() => trainOfflineRl({ weights, lora, log: { ...log, obsDim: 17 }, steps: 1, seed: seedFrom({ label: 'x' }) })).toThrow(RangeError);
    const rewards = new Float32Array(log.rewards);
    rewards[3] = Number.NaN;
    expect(() => trainOfflineRl({ weights, lora, log: { ...log, rewards }, steps: 1, seed: seedFrom({ label: 'x' }) })).toThrow(/finite/);
    expect(() => trainOfflineRl({ weights, lora, log: null as unknown as TransitionLog, steps: 1, seed: seedFrom({ label: 'x' }) })).toThrow(TypeError);
    const steps = new Uint16Array(log.steps);
    steps[5] = 99;
    expect(() => trainOfflineRl({ weights, lora, log: { ...log, steps }, steps: 1, seed: seedFrom({ label: 'x' }) })).toThrow(/row 5/);
    expect(() => trainOfflineRl({ weights, lora, log: { ...log, episodeLength: log.episodeLength.map((n, e) => (e === 0 ? n + 1 : n)) }, steps: 1, seed: seedFrom({ label: 'x' }) })).toThrow(RangeError);
    expect(() => trainOfflineRl({ weights, lora, log, steps: 0, seed: seedFrom({ label: 'x' }) })).toThrow(RangeError);
    expect(() => trainOfflineRl({ weights, lora, log, steps: 1, seed: seedFrom({ label: 'x' }), weighting: 'magic' as never })).toThrow(TypeError);
    expect(lora).toEqual(copy);
  });
});
