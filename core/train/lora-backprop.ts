// Forward and backward passes of the reference policy's mean over a batch, with LoRA gradients for an
// arbitrary gradient of the loss with respect to the mean: what the offline RL (core/train/offline-rl.ts)
// and on-policy (core/train/on-policy.ts) trainers share. Behaviour cloning (core/train/bc.ts) fixes that
// gradient to 2 (mean - target) / B; the RL losses set it per sample:
//   advantage-weighted regression   dL/dmean_i = w_i (mean_i - a_i) / sum w       (offline RL)
//   PPO-clip surrogate + KL penalty dL/dmean_i = -c_i (a_i - mean_i) / sigma^2 + beta (mean_i - base_i) / sigma^2
// Per linear layer (same algebra as bc.ts), forward
//   U = X A^T,  Z = X W^T + b + s U B^T,  H = tanh(Z) (not on mean_head)
// and backward with G = dL/dZ:  dB = s G^T U,  dA = (s G B)^T X,  dL/dX = G (W + s B A).
// The base weights are never written; the LoRA matrices are updated by the caller's optimiser.
import { POLICY_LAYERS, effectiveWeight, type PolicyLora, type PolicyWeights } from '../policy/mlp.ts';
import type { Parameter } from './adam.ts';

interface LayerCache {
  n: number;
  m: number;
  /** Input rows [B, n]. */
  X: Float64Array;
  /** Output rows [B, m] (after tanh on hidden layers). */
  Z: Float64Array;
  /** Low-rank activations X A^T [B, r], or null for a layer without LoRA. */
  U: Float64Array | null;
  /** W + s B A. */
  merged: Float32Array;
}

export interface BatchForward {
  batch: number;
  /** Gaussian means [batch, actDim]. */
  mean: Float64Array;
  /** Penultimate activations h2 [batch, hidden] (features for value baselines). */
  features: Float64Array;
  layers: LayerCache[];
}

/** Means for `batch` observation rows (taken at `indices` of `obs` if given), keeping what backward needs. */
export function forwardBatch(options: { weights: PolicyWeights; lora?: PolicyLora; obs: Float32Array; indices?: ArrayLike<number>; batch?: number }): BatchForward {
  const { weights, lora, obs, indices } = options;
  const obsDim = weights.obsDim;
  const batch = indices ? indices.length : (options.batch ?? obs.length / obsDim);
  if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`"batch" expected a positive integer, got ${batch}`);
  let X = new Float64Array(batch * obsDim);
  for (let b = 0; b < batch; b++) {
    const row = (indices ? indices[b]! : b) * obsDim;
    if (row + obsDim > obs.length) throw new RangeError(`"indices" expected rows below ${obs.length / obsDim}, got ${row / obsDim}`);
    for (let i = 0; i < obsDim; i++) X[b * obsDim + i] = obs[row + i]!;
  }
  const layers: LayerCache[] = [];
  let features = X;
  for (let l = 0; l < POLICY_LAYERS.length; l++) {
    const name = POLICY_LAYERS[l]!;
    const layer = weights.layers[name];
    const ll = lora?.[name];
    const n = layer.inFeatures;
    const m = layer.outFeatures;
    const merged = effectiveWeight({ layer, lora: ll });
    const bias = layer.bias;
    const Xin = X;
    let U: Float64Array | null = null;
    if (ll) {
      const r = ll.r;
      const A = ll.A;
      U = new Float64Array(batch * r);
      for (let b = 0; b < batch; b++)
        for (let k = 0; k < r; k++) {
          let s = 0;
          for (let i = 0; i < n; i++) s += A[k * n + i]! * Xin[b * n + i]!;
          U[b * r + k] = s;
        }
    }
    const Z = new Float64Array(batch * m);
    const hidden = l < POLICY_LAYERS.length - 1;
    for (let b = 0; b < batch; b++) {
      const xo = b * n;
      for (let o = 0; o < m; o++) {
        let s = bias[o]!;
        const wo = o * n;
        for (let i = 0; i < n; i++) s += merged[wo + i]! * Xin[xo + i]!;
        Z[b * m + o] = hidden ? Math.tanh(s) : s;
      }
    }
    layers.push({ n, m, X: Xin, Z, U, merged });
    if (l === POLICY_LAYERS.length - 2) features = Z;
    X = Z;
  }
  return { batch, mean: X, features, layers };
}

/** LoRA gradient buffers (B, and A unless frozen) of every adapted layer, as Adam parameters. */
export function loraParameters(options: { lora: PolicyLora; freezeA: boolean }): Parameter[] {
  const { lora, freezeA } = options;
  const params: Parameter[] = [];
  for (const name of POLICY_LAYERS) {
    const l = lora[name];
    if (!l) continue;
    params.push({ name: `${name}.lora_B`, data: l.B, grad: new Float64Array(l.B.length) });
    if (!freezeA) params.push({ name: `${name}.lora_A`, data: l.A, grad: new Float64Array(l.A.length) });
  }
  if (params.length === 0) throw new RangeError('"lora" expected at least one adapted layer, got none');
  return params;
}

/**
 * Accumulates into `params` (from loraParameters) the LoRA gradients of a loss whose gradient with respect
 * to the batch's means is `dMean` [batch, actDim]. `forward` must come from the same lora values.
 */
export function backwardLora(options: { forward: BatchForward; lora: PolicyLora; dMean: Float64Array; params: Parameter[] }): void {
  const { forward, lora, params } = options;
  const byName = new Map(params.map((p) => [p.name, p.grad]));
  const B = forward.batch;
  let G = Float64Array.from(options.dMean);
  for (let l = POLICY_LAYERS.length - 1; l >= 0; l--) {
    const name = POLICY_LAYERS[l]!;
    const { n, m, X, Z, U, merged } = forward.layers[l]!;
    if (l < POLICY_LAYERS.length - 1) for (let i = 0; i < G.length; i++) G[i]! *= 1 - Z[i]! * Z[i]!;
    const ll = lora[name];
    if (ll && U) {
      const { r, B: Bm, scaling: s } = ll;
      const gB = byName.get(`${name}.lora_B`);
      const gA = byName.get(`${name}.lora_A`);
      if (gB)
        for (let b = 0; b < B; b++)
          for (let o = 0; o < m; o++) {
            const g = s * G[b * m + o]!;
            if (g === 0) continue;
            for (let k = 0; k < r; k++) gB[o * r + k]! += g * U[b * r + k]!;
          }
      if (gA) {
        const GU = new Float64Array(r);
        for (let b = 0; b < B; b++) {
          GU.fill(0);
          for (let o = 0; o < m; o++) {
            const g = s * G[b * m + o]!;
            if (g === 0) continue;
            for (let k = 0; k < r; k++) GU[k]! += g * Bm[o * r + k]!;
          }
          for (let k = 0; k < r; k++) {
            const gu = GU[k]!;
            if (gu === 0) continue;
            for (let i = 0; i < n; i++) gA[k * n + i]! += gu * X[b * n + i]!;
          }
        }
      }
    }
    if (l > 0) {
      const next = new Float64Array(B * n);
      for (let b = 0; b < B; b++)
        for (let o = 0; o < m; o++) {
          const g = G[b * m + o]!;
          if (g === 0) continue;
          const wo = o * n;
          const xo = b * n;
          for (let i = 0; i < n; i++) next[xo + i]! += g * merged[wo + i]!;
        }
      G = next;
    }
  }
}

/** Deep copy of LoRA layers (the trainers update copies, never the caller's start adapter). */
export function cloneLora(lora: PolicyLora): PolicyLora {
  const out: PolicyLora = {};
  for (const name of POLICY_LAYERS) {
    const l = lora[name];
    if (l) out[name] = { r: l.r, scaling: l.scaling, A: new Float32Array(l.A), B: new Float32Array(l.B) };
  }
  return out;
}
