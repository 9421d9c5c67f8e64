// Behaviour cloning: hand-written gradients against finite differences, FFA-LoRA keeps A bit-identical,
// and LoRA training on a site's demonstrations lowers the loss without touching the base weights.
import { describe, expect, it } from 'vitest';
import { initPolicyWeights, initialLora, POLICY_LAYERS, type PolicyLora, type PolicyWeights } from '../policy/mlp.ts';
import { SeededRandom, seedFrom } from '../sim/random.ts';
import { scenarioSet } from '../sim/scenario.ts';
import { collectDemonstrations, type Dataset } from './demos.ts';
import { lossAndGradients, trainLoraPolicy } from './bc.ts';
import { Adam } from './adam.ts';

function toyDataset(weights: PolicyWeights, n: number): Dataset {
  const rng = new SeededRandom(seedFrom({ label: 'toy' }));
  return {
    obsDim: weights.obsDim,
    actDim: weights.actDim,
    count: n,
    obs: Float32Array.from({ length: n * weights.obsDim }, () => rng.normal()),
    actions: Float32Array.from({ length: n * weights.actDim }, () => rng.uniform(-1, 1)),
  };
}

/** Central differences of the loss in float64 views of a float32 parameter: compare where |g| is sizeable. */
function checkGradients(params: Map<string, Float32Array>, grads: Map<string, Float64Array>, loss: () => number) {
  for (const [name, data] of params) {
    const g = grads.get(name)!;
    for (const i of new Set([0, 3, Math.floor(data.length / 2), data.length - 1].filter((k) => k < data.length))) {
      const keep = data[i]!;
      const h = 1e-2;
      data[i] = keep + h;
      const up = loss();
      data[i] = keep - h;
      const down = loss();
      data[i] = keep;
      const numeric = (up - down) / (2 * h);
      expect(Math.abs(numeric - g[i]!), `${name}[${i}]`).toBeLessThan(2e-3 + 0.05 * Math.abs(numeric));
    }
  }
}

describe('behaviour cloning gradients', () => {
  const weights = initPolicyWeights({ seed: seedFrom({ label: 'grad' }), hidden: 8 });
  const dataset = toyDataset(weights, 16);
  const indices = Uint32Array.from({ length: 16 }, (_, i) => i);

  it('full-network gradients match finite differences', () => {
    const { grads } = lossAndGradients({ weights, dataset, indices });
    const params = new Map(POLICY_LAYERS.flatMap((n) => [[`${n}.weight`, weights.layers[n].weight], [`${n}.bias`, weights.layers[n].bias]] as Array<[string, Float32Array]>));
    checkGradients(params, grads, () => lossAndGradients({ weights, dataset, indices }).loss);
  });

  it('LoRA A and B gradients match finite differences', () => {
    const lora: PolicyLora = initialLora({ weights, r: 2, alpha: 4, seed: seedFrom({ label: 'grad-lora' }) });
    const rng = new SeededRandom(seedFrom({ label: 'grad-b' }));
    for (const n of POLICY_LAYERS) for (let i = 0; i < lora[n]!.B.length; i++) lora[n]!.B[i] = 0.3 * rng.normal();
    const { grads } = lossAndGradients({ weights, lora, dataset, indices });
    const params = new Map(POLICY_LAYERS.flatMap((n) => [[`${n}.lora_A`, lora[n]!.A], [`${n}.lora_B`, lora[n]!.B]] as Array<[string, Float32Array]>));
    checkGradients(params, grads, () => lossAndGradients({ weights, lora, dataset, indices }).loss);
  });
});

describe('LoRA behaviour cloning', () => {
  it('learns from site demonstrations, keeps the base weights, and with freezeA keeps A bit-identical', () => {
    const weights = initPolicyWeights({ seed: seedFrom({ label: 'lora-train' }), hidden: 16 });
    const baseCopy = structuredClone(weights);
    const { dataset } = collectDemonstrations({ scenarios: scenarioSet({ name: 'site:site-c', seed: seedFrom({ label: 'demos' }), count: 4 }) });
    expect(dataset.count).toBeGreaterThan(100);
    for (const freezeA of [false, true]) {
      const lora = initialLora({ weights, r: 4, alpha: 8, seed: seedFrom({ label: 'a' }) });
      const aBefore = POLICY_LAYERS.map((n) => new Float32Array(lora[n]!.A));
      const r = trainLoraPolicy({ weights, lora, dataset, steps: 150, batchSize: 32, learningRate: 5e-3, seed: seedFrom({ label: 'sgd' }), freezeA });
      expect(r.finalLoss).toBeLessThan(r.initialLoss * 0.8);
      const aSame = POLICY_LAYERS.every((n, i) => lora[n]!.A.every((v, k) => v === aBefore[i]![k]));
      expect(aSame).toBe(freezeA);
      expect(lora.fc1!.B.some((v) => v !== 0)).toBe(true);
    }
    expect(weights).toEqual(baseCopy);
  });

  it('Adam minimises a quadratic', () => {
    const data = new Float32Array([3, -2]);
    const grad = new Float64Array(2);
    const adam = new Adam([{ name: 'x', data, grad }], { learningRate: 0.1 });
    for (let i = 0; i < 500; i++) {
      adam.zeroGrad();
      grad[0] = 2 * (data[0]! - 1);
      grad[1] = 2 * (data[1]! + 1);
      adam.step();
    }
    expect(data[0]).toBeCloseTo(1, 2);
    expect(data[1]).toBeCloseTo(-1, 2);
  });
});
