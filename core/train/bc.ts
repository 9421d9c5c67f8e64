// Behaviour cloning for the reference policy with hand-written gradients: the whole MLP (building the
// base policy) or only its LoRA adapters (a robot fine-tuning on its own demonstrations).
//
// Loss: mean over the minibatch of || mean(obs) - expert action ||^2 (the Gaussian head's negative
// log-likelihood with a fixed std, up to constants). Per linear layer, forward
//   U = X A^T,  Z = X W^T + b + s U B^T,  H = tanh(Z) (not on mean_head)
// and backward, with G = dL/dZ (dL/dH * (1 - H^2) for tanh layers):
//   dW = G^T X,  db = sum_rows G                       (full training)
//   dB = s G^T U,  dA = (s G B)^T X                    (LoRA training; dA skipped when A is frozen)
//   dL/dX = G (W + s B A)                              (to the layer below)
// Optimiser: Adam (core/train/adam.ts); minibatches drawn with the seeded ChaCha20 stream.
import { POLICY_LAYERS, effectiveWeight, type LoraLayer, type PolicyLayer, type PolicyLora, type PolicyWeights } from '../policy/mlp.ts';
import { SeededRandom } from '../sim/random.ts';
import { Adam, type Parameter } from './adam.ts';
import type { Dataset } from './demos.ts';
import { describe, expectInteger } from '../errors.ts';

export interface TrainOptions {
  weights: PolicyWeights;
  dataset: Dataset;
  steps: number;
  batchSize?: number;
  learningRate?: number;
  /** Final learning rate as a fraction of the first (cosine decay). */
  finalLearningRateFraction?: number;
  seed: Uint8Array;
  onProgress?: (step: number, loss: number) => void;
}

export interface TrainResult {
  /** Mean minibatch loss over the first and last 10 % of steps. */
  initialLoss: number;
  finalLoss: number;
  steps: number;
}

interface LayerState {
  name: PolicyLayer;
  W: Float32Array;
  bias: Float32Array;
  lora?: LoraLayer;
  n: number;
  m: number;
  gW?: Float64Array;
  gb?: Float64Array;
  gA?: Float64Array;
  gB?: Float64Array;
}

function checkDataset(dataset: Dataset, weights: PolicyWeights): void {
  if (!dataset || !(dataset.obs instanceof Float32Array) || !(dataset.actions instanceof Float32Array))
    throw new TypeError(`"dataset" expected {obs, actions} Float32Arrays, got ${describe(dataset)}`);
  if (dataset.obsDim !== weights.obsDim || dataset.actDim !== weights.actDim)
    throw new RangeError(`"dataset" expected ${weights.obsDim} -> ${weights.actDim} pairs, got ${dataset.obsDim} -> ${dataset.actDim}`);
  if (dataset.count < 1) throw new RangeError('"dataset" expected at least one demonstration step, got 0');
}

/** One minibatch: forward, loss, backward into the layers' gradient buffers. Returns the loss. */
function minibatchStep(layers: LayerState[], dataset: Dataset, indices: Uint32Array, trainBase: boolean, freezeA: boolean): number {
  const B = indices.length;
  const obsDim = dataset.obsDim;
  const actDim = dataset.actDim;
  const X0 = new Float64Array(B * obsDim);
  for (let b = 0; b < B; b++) for (let i = 0; i < obsDim; i++) X0[b * obsDim + i] = dataset.obs[indices[b]! * obsDim + i]!;
  const inputs: Float64Array[] = [];
  const outputs: Float64Array[] = [];
  const lowRank: (Float64Array | null)[] = [];
  const merged: Float32Array[] = [];
  let X = X0;
  for (let l = 0; l < layers.length; l++) {
    const L = layers[l]!;
    const Weff = effectiveWeight({ layer: { inFeatures: L.n, outFeatures: L.m, weight: L.W, bias: L.bias }, lora: L.lora });
    merged.push(Weff);
    let U: Float64Array | null = null;
    if (L.lora) {
      const { r, A } = L.lora;
      U = new Float64Array(B * r);
      for (let b = 0; b < B; b++)
        for (let k = 0; k < r; k++) {
          let s = 0;
          for (let i = 0; i < L.n; i++) s += A[k * L.n + i]! * X[b * L.n + i]!;
          U[b * r + k] = s;
        }
    }
    lowRank.push(U);
    const Z = new Float64Array(B * L.m);
    for (let b = 0; b < B; b++)
      for (let o = 0; o < L.m; o++) {
        let s = L.bias[o]!;
        for (let i = 0; i < L.n; i++) s += Weff[o * L.n + i]! * X[b * L.n + i]!;
        Z[b * L.m + o] = l < layers.length - 1 ? Math.tanh(s) : s;
      }
    inputs.push(X);
    outputs.push(Z);
    X = Z;
  }
  // Loss and dL/d(mean)
  const mean = outputs[outputs.length - 1]!;
  let loss = 0;
  let G = new Float64Array(B * actDim);
  for (let b = 0; b < B; b++)
    for (let j = 0; j < actDim; j++) {
      const d = mean[b * actDim + j]! - dataset.actions[indices[b]! * actDim + j]!;
      loss += d * d;
      G[b * actDim + j] = (2 * d) / B;
    }
  loss /= B;
  for (let l = layers.length - 1; l >= 0; l--) {
    const L = layers[l]!;
    const Xin = inputs[l]!;
    if (l < layers.length - 1) {
      const H = outputs[l]!;
      for (let i = 0; i < G.length; i++) G[i]! *= 1 - H[i]! * H[i]!;
    }
    if (trainBase) {
      const gW = L.gW!;
      const gb = L.gb!;
      for (let b = 0; b < B; b++)
        for (let o = 0; o < L.m; o++) {
          const g = G[b * L.m + o]!;
          if (g === 0) continue;
          gb[o]! += g;
          const row = o * L.n;
          const xo = b * L.n;
          for (let i = 0; i < L.n; i++) gW[row + i]! += g * Xin[xo + i]!;
        }
    }
    if (L.lora) {
      const { r, B: Bm, scaling: s } = L.lora;
      const U = lowRank[l]!;
      const gB = L.gB!;
      for (let b = 0; b < B; b++)
        for (let o = 0; o < L.m; o++) {
          const g = s * G[b * L.m + o]!;
          for (let k = 0; k < r; k++) gB[o * r + k]! += g * U[b * r + k]!;
        }
      if (!freezeA) {
        const gA = L.gA!;
        const GU = new Float64Array(r);
        for (let b = 0; b < B; b++) {
          GU.fill(0);
          for (let o = 0; o < L.m; o++) {
            const g = s * G[b * L.m + o]!;
            for (let k = 0; k < r; k++) GU[k]! += g * Bm[o * r + k]!;
          }
          for (let k = 0; k < r; k++) {
            const gu = GU[k]!;
            for (let i = 0; i < L.n; i++) gA[k * L.n + i]! += gu * Xin[b * L.n + i]!;
          }
        }
      }
    }
    if (l > 0) {
      const Weff = merged[l]!;
      const next = new Float64Array(B * L.n);
      for (let b = 0; b < B; b++)
        for (let o = 0; o < L.m; o++) {
          const g = G[b * L.m + o]!;
          if (g === 0) continue;
          for (let i = 0; i < L.n; i++) next[b * L.n + i]! += g * Weff[o * L.n + i]!;
        }
      G = next;
    }
  }
  return loss;
}

function run(options: TrainOptions, layers: LayerState[], params: Parameter[], trainBase: boolean, freezeA: boolean): TrainResult {
  const { dataset } = options;
  const steps = expectInteger('steps', options.steps, 1, 10_000_000);
  const batchSize = Math.min(dataset.count, expectInteger('batchSize', options.batchSize ?? 256, 1, 65536));
  const lr0 = options.learningRate ?? 1e-3;
  const lrFinal = lr0 * (options.finalLearningRateFraction ?? 0.1);
  const rng = new SeededRandom(options.seed);
  const adam = new Adam(params, { learningRate: lr0 });
  const idx = new Uint32Array(batchSize);
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    for (let b = 0; b < batchSize; b++) idx[b] = rng.int(dataset.count);
    adam.zeroGrad();
    const loss = minibatchStep(layers, dataset, idx, trainBase, freezeA);
    const lr = lrFinal + 0.5 * (lr0 - lrFinal) * (1 + Math.cos((Math.PI * step) / steps));
    adam.step(lr);
    losses.push(loss);
    options.onProgress?.(step + 1, loss);
  }
  const k = Math.max(1, Math.floor(steps / 10));
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { initialLoss: avg(losses.slice(0, k)), finalLoss: avg(losses.slice(-k)), steps };
}

function baseLayers(weights: PolicyWeights): { layers: LayerState[]; params: Parameter[] } {
  const layers: LayerState[] = POLICY_LAYERS.map((name) => {
    const l = weights.layers[name];
    return { name, W: l.weight, bias: l.bias, n: l.inFeatures, m: l.outFeatures, gW: new Float64Array(l.weight.length), gb: new Float64Array(l.bias.length) };
  });
  const params: Parameter[] = layers.flatMap((L) => [
    { name: `${L.name}.weight`, data: L.W, grad: L.gW! },
    { name: `${L.name}.bias`, data: L.bias, grad: L.gb! },
  ]);
  return { layers, params };
}

function loraLayers(weights: PolicyWeights, lora: PolicyLora, freezeA: boolean): { layers: LayerState[]; params: Parameter[] } {
  const layers: LayerState[] = POLICY_LAYERS.map((name) => {
    const l = weights.layers[name];
    const ll = lora[name];
    return {
      name,
      W: l.weight,
      bias: l.bias,
      n: l.inFeatures,
      m: l.outFeatures,
      lora: ll,
      gA: ll ? new Float64Array(ll.A.length) : undefined,
      gB: ll ? new Float64Array(ll.B.length) : undefined,
    };
  });
  if (layers.every((L) => !L.lora)) throw new RangeError('"lora" expected at least one adapted layer, got none');
  const params: Parameter[] = [];
  for (const L of layers) {
    if (!L.lora) continue;
    params.push({ name: `${L.name}.lora_B`, data: L.lora.B, grad: L.gB! });
    if (!freezeA) params.push({ name: `${L.name}.lora_A`, data: L.lora.A, grad: L.gA! });
  }
  return { layers, params };
}

/**
 * The minibatch loss and its gradients (by parameter name: `<layer>.weight|bias` or `<layer>.lora_A|B`)
 * for the rows `indices` of the dataset: what one training step uses (exposed for gradient checks).
 */
export function lossAndGradients(options: { weights: PolicyWeights; lora?: PolicyLora; freezeA?: boolean; dataset: Dataset; indices: Uint32Array }): { loss: number; grads: Map<string, Float64Array> } {
  const { weights, lora, dataset, indices } = options;
  checkDataset(dataset, weights);
  const { layers, params } = lora ? loraLayers(weights, lora, options.freezeA === true) : baseLayers(weights);
  const loss = minibatchStep(layers, dataset, indices, !lora, options.freezeA === true);
  return { loss, grads: new Map(params.map((p) => [p.name, p.grad])) };
}

/** Trains every weight of the MLP in place; log_std is then set to the log RMS residual per action. */
export function trainBasePolicy(options: TrainOptions): TrainResult {
  const { weights, dataset } = options;
  checkDataset(dataset, weights);
  const { layers, params } = baseLayers(weights);
  const result = run(options, layers, params, true, false);
  fitLogStd({ weights, dataset });
  return result;
}

/**
 * Trains the LoRA adapters (B, and A unless `freezeA`) in place; the base weights stay untouched.
 * With FFA-LoRA (`freezeA`), A keeps the round's seeded values exactly.
 */
export function trainLoraPolicy(options: TrainOptions & { lora: PolicyLora; freezeA?: boolean }): TrainResult {
  const { weights, dataset, lora } = options;
  checkDataset(dataset, weights);
  const freezeA = options.freezeA === true;
  const { layers, params } = loraLayers(weights, lora, freezeA);
  return run(options, layers, params, false, freezeA);
}

/** log_std := log of the RMS residual of the trained mean on the dataset, per action dimension. */
export function fitLogStd(options: { weights: PolicyWeights; dataset: Dataset }): void {
  const { weights, dataset } = options;
  const sum = new Float64Array(weights.actDim);
  const chunk = 4096;
  for (let start = 0; start < dataset.count; start += chunk) {
    const n = Math.min(chunk, dataset.count - start);
    const obs = dataset.obs.subarray(start * weights.obsDim, (start + n) * weights.obsDim);
    const { mean } = forwardMean(weights, obs, n);
    for (let b = 0; b < n; b++)
      for (let j = 0; j < weights.actDim; j++) {
        const d = mean[b * weights.actDim + j]! - dataset.actions[(start + b) * weights.actDim + j]!;
        sum[j]! += d * d;
      }
  }
  for (let j = 0; j < weights.actDim; j++) weights.logStd[j] = Math.log(Math.max(1e-3, Math.sqrt(sum[j]! / dataset.count)));
}

function forwardMean(weights: PolicyWeights, obs: Float32Array, batch: number): { mean: Float64Array } {
  let X: Float64Array = Float64Array.from(obs);
  POLICY_LAYERS.forEach((name, l) => {
    const L = weights.layers[name];
    const Z = new Float64Array(batch * L.outFeatures);
    for (let b = 0; b < batch; b++)
      for (let o = 0; o < L.outFeatures; o++) {
        let s = L.bias[o]!;
        for (let i = 0; i < L.inFeatures; i++) s += L.weight[o * L.inFeatures + i]! * X[b * L.inFeatures + i]!;
        Z[b * L.outFeatures + o] = l < POLICY_LAYERS.length - 1 ? Math.tanh(s) : s;
      }
    X = Z;
  });
  return { mean: X };
}

