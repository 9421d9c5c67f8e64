// Offline RL on a robot's logged transitions: advantage-weighted regression (AWR; Peng, Kumar, Zhang,
// Levine 2019, "Advantage-Weighted Regression: Simple and Scalable Off-Policy Reinforcement Learning",
// Algorithm 1, one iteration on a fixed log) of the policy's LoRA matrices.
//
//   log (core/train/transitions.ts: obs, action, reward = progress - safety cost, per step of each episode)
//     -> returns-to-go   G_t = sum_k gamma^k r_{t+k}        (Monte Carlo, per episode)
//     -> value baseline  V(s) = theta . phi(s), ridge least squares on (phi(s_t), G_t)  (closed form)
//     -> advantages      A_t = G_t - V(s_t), standardised over the log
//     -> weights         w_t = min(exp(A_t / beta), W_MAX), normalised to mean 1
//     -> policy          Adam on lora_B (and lora_A unless frozen) minimising
//                        sum_t w_t || mean(s_t) - a_t ||^2 / N
// The last line is the weighted negative log-likelihood of the Gaussian head with its fixed,
// state-independent std (up to constants): exactly behaviour cloning's loss (core/train/bc.ts) with
// weights. With w_t = 1 it IS behaviour cloning; AWR shifts the fit towards the actions that did better
// than the state's average, which is what lets it beat BC on a log of mixed quality (noisy expert,
// base-policy runs into fixtures). The loss gradient is backpropagated by core/train/lora-backprop.ts.
//
// Why a linear value on fixed features rather than a value MLP: the features phi(s) =
// [1, obs, h2(obs), t/T, (t/T)^2] reuse the frozen base policy's penultimate layer h2 (64 tanh units
// trained on the task, so they already encode where the arm is relative to object, goal and obstacles)
// plus the elapsed fraction of the episode's step limit (returns depend on the time left). Fitting
// theta is then a (85 x 85) ridge solve: deterministic, no second optimiser, no extra seeds or epochs to
// tune, and on a log of a few thousand steps it cannot overfit the way a fresh MLP on the same returns
// would. The fit's R^2 is reported so a useless baseline is visible.
import type { PolicyLora, PolicyWeights } from '../policy/mlp.ts';
import { SeededRandom } from '../sim/random.ts';
import { Adam } from './adam.ts';
import { backwardLora, forwardBatch, loraParameters } from './lora-backprop.ts';
import { returnsToGo, type TransitionLog } from './transitions.ts';
import { describe, expectFinite, expectInteger } from '../errors.ts';

export const AWR_DEFAULTS = Object.freeze({ gamma: 0.99, temperature: 0.5, maxWeight: 20, ridge: 1e-3, batchSize: 128, learningRate: 3e-3 });

export interface ValueBaseline {
  /** theta over the features of valueFeatures(). */
  theta: Float64Array;
  /** Coefficient of determination of the fit on the log. */
  r2: number;
}

/** phi(s) for each row of the log: [1, obs, h2(obs) of the base policy, t/T, (t/T)^2]. */
export function valueFeatures(options: { weights: PolicyWeights; log: TransitionLog }): { phi: Float64Array; dim: number } {
  const { weights, log } = options;
  const dim = 1 + log.obsDim + weights.hidden + 2;
  const phi = new Float64Array(log.count * dim);
  const chunk = 2048;
  for (let start = 0; start < log.count; start += chunk) {
    const n = Math.min(chunk, log.count - start);
    const { features } = forwardBatch({ weights, obs: log.obs.subarray(start * log.obsDim, (start + n) * log.obsDim), batch: n });
    for (let b = 0; b < n; b++) {
      const row = (start + b) * dim;
      const i = start + b;
      const tau = log.steps[i]! / Math.max(1, log.maxSteps[log.episodes[i]!]!);
      phi[row] = 1;
      for (let k = 0; k < log.obsDim; k++) phi[row + 1 + k] = log.obs[i * log.obsDim + k]!;
      for (let k = 0; k < weights.hidden; k++) phi[row + 1 + log.obsDim + k] = features[b * weights.hidden + k]!;
      phi[row + dim - 2] = tau;
      phi[row + dim - 1] = tau * tau;
    }
  }
  return { phi, dim };
}

/** Ridge regression theta = (Phi^T Phi + lambda N I)^-1 Phi^T y (bias unpenalised), by Cholesky. */
export function fitValueBaseline(options: { phi: Float64Array; dim: number; targets: Float64Array; ridge?: number }): ValueBaseline {
  const { phi, dim, targets } = options;
  const n = targets.length;
  if (phi.length !== n * dim) throw new RangeError(`"phi" expected ${n * dim} values, got ${phi.length}`);
  const lambda = expectFinite('ridge', options.ridge ?? AWR_DEFAULTS.ridge, 0, 1e6) * n;
  const M = new Float64Array(dim * dim);
  const v = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const row = i * dim;
    const y = targets[i]!;
    for (let a = 0; a < dim; a++) {
      const pa = phi[row + a]!;
      if (pa === 0) continue;
      v[a]! += pa * y;
      for (let b = a; b < dim; b++) M[a * dim + b]! += pa * phi[row + b]!;
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = 0; b < a; b++) M[a * dim + b] = M[b * dim + a]!;
    if (a > 0) M[a * dim + a]! += lambda;
    M[a * dim + a]! += 1e-9 * n; // keeps the bias row positive definite on a constant log
  }
  const theta = choleskySolve(M, v, dim);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += targets[i]!;
  mean /= n;
  let ssRes = 0;
  let ssTot = 0;
  for (let i = 0; i < n; i++) {
    let p = 0;
    for (let a = 0; a < dim; a++) p += theta[a]! * phi[i * dim + a]!;
    ssRes += (targets[i]! - p) ** 2;
    ssTot += (targets[i]! - mean) ** 2;
  }
  return { theta, r2: ssTot > 0 ? 1 - ssRes / ssTot : 1 };
}

function choleskySolve(M: Float64Array, v: Float64Array, n: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = M[i * n + j]!;
      for (let k = 0; k < j; k++) s -= L[i * n + k]! * L[j * n + k]!;
      if (i === j) {
        if (!(s > 0)) throw new RangeError('value baseline: the feature matrix is not positive definite (raise "ridge")');
        L[i * n + i] = Math.sqrt(s);
      } else L[i * n + j] = s / L[j * n + j]!;
    }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = v[i]!;
    for (let k = 0; k < i; k++) s -= L[i * n + k]! * y[k]!;
    y[i] = s / L[i * n + i]!;
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= L[k * n + i]! * x[k]!;
    x[i] = s / L[i * n + i]!;
  }
  return x;
}

export function predictValues(options: { baseline: ValueBaseline; phi: Float64Array; dim: number }): Float64Array {
  const { baseline, phi, dim } = options;
  const n = phi.length / dim;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let p = 0;
    for (let a = 0; a < dim; a++) p += baseline.theta[a]! * phi[i * dim + a]!;
    out[i] = p;
  }
  return out;
}

/** The AWR weights of every logged step (mean 1), with the value fit behind them. */
export function advantageWeights(options: {
  weights: PolicyWeights;
  log: TransitionLog;
  gamma?: number;
  temperature?: number;
  maxWeight?: number;
  ridge?: number;
}): { weights: Float64Array; advantages: Float64Array; valueR2: number; effectiveSampleFraction: number } {
  const { log } = options;
  const gamma = options.gamma ?? AWR_DEFAULTS.gamma;
  const beta = expectFinite('temperature', options.temperature ?? AWR_DEFAULTS.temperature, 1e-3, 1e3);
  const wMax = expectFinite('maxWeight', options.maxWeight ?? AWR_DEFAULTS.maxWeight, 1, 1e6);
  const G = returnsToGo({ log, gamma });
  const { phi, dim } = valueFeatures({ weights: options.weights, log });
  const baseline = fitValueBaseline({ phi, dim, targets: G, ridge: options.ridge });
  const V = predictValues({ baseline, phi, dim });
  const A = new Float64Array(log.count);
  let mean = 0;
  for (let i = 0; i < log.count; i++) mean += (A[i] = G[i]! - V[i]!);
  mean /= log.count;
  let varA = 0;
  for (let i = 0; i < log.count; i++) varA += (A[i]! - mean) ** 2;
  const std = Math.sqrt(varA / log.count) || 1;
  const w = new Float64Array(log.count);
  let sum = 0;
  for (let i = 0; i < log.count; i++) sum += (w[i] = Math.min(wMax, Math.exp((A[i]! - mean) / std / beta)));
  let sum2 = 0;
  for (let i = 0; i < log.count; i++) {
    w[i] = (w[i]! * log.count) / sum;
    sum2 += w[i]! * w[i]!;
  }
  // Kish's effective sample size over N: how much of the log the weighted fit still uses.
  return { weights: w, advantages: A, valueR2: baseline.r2, effectiveSampleFraction: log.count / sum2 };
}

export interface OfflineRlOptions {
  weights: PolicyWeights;
  /** Trained in place (B, and A unless freezeA). */
  lora: PolicyLora;
  log: TransitionLog;
  steps: number;
  seed: Uint8Array;
  freezeA?: boolean;
  batchSize?: number;
  learningRate?: number;
  gamma?: number;
  /** beta, in standard deviations of the advantage. */
  temperature?: number;
  maxWeight?: number;
  ridge?: number;
  /** 'awr' (default) or 'uniform' (w = 1: behaviour cloning through the same code, for ablations). */
  weighting?: 'awr' | 'uniform';
  onProgress?: (step: number, loss: number) => void;
}

export interface OfflineRlResult {
  method: 'advantage_weighted_regression' | 'behaviour_cloning';
  steps: number;
  transitions: number;
  episodes: number;
  /** Weighted loss over the first and last 10 % of steps. */
  initialLoss: number;
  finalLoss: number;
  valueR2: number | null;
  effectiveSampleFraction: number;
}

function checkLog(log: TransitionLog, weights: PolicyWeights): void {
  if (!log || !(log.obs instanceof Float32Array) || !(log.actions instanceof Float32Array) || !(log.rewards instanceof Float32Array))
    throw new TypeError(`"log" expected a TransitionLog, got ${describe(log)}`);
  if (log.obsDim !== weights.obsDim || log.actDim !== weights.actDim)
    throw new RangeError(`"log" expected ${weights.obsDim} -> ${weights.actDim} transitions, got ${log.obsDim} -> ${log.actDim}`);
  if (log.count < 2 || log.obs.length !== log.count * log.obsDim || log.actions.length !== log.count * log.actDim || log.rewards.length !== log.count)
    throw new RangeError(`"log" expected at least 2 consistent transitions, got ${log.count}`);
  for (let i = 0; i < log.rewards.length; i++) if (!Number.isFinite(log.rewards[i]!)) throw new RangeError(`"log.rewards" expected finite values, got ${log.rewards[i]} at ${i}`);
  for (let i = 0; i < log.obs.length; i++) if (!Number.isFinite(log.obs[i]!)) throw new RangeError(`"log.obs" expected finite values, got ${log.obs[i]} at ${i}`);
  for (let i = 0; i < log.actions.length; i++) if (!Number.isFinite(log.actions[i]!)) throw new RangeError(`"log.actions" expected finite values, got ${log.actions[i]} at ${i}`);
  // Episodes tile the rows in order, and every row's (episode, step) agrees with that tiling.
  const E = log.episodeStart?.length ?? 0;
  if (E < 1 || log.episodeLength?.length !== E || log.maxSteps?.length !== E || log.steps?.length !== log.count || log.episodes?.length !== log.count)
    throw new RangeError('"log" expected episode tables (episodeStart, episodeLength, maxSteps) and per-row steps and episodes');
  let next = 0;
  for (let e = 0; e < E; e++) {
    if (log.episodeStart[e] !== next || log.episodeLength[e]! < 1) throw new RangeError(`"log.episodeStart" expected contiguous episodes, episode ${e} starts at ${log.episodeStart[e]}, expected ${next}`);
    for (let k = 0; k < log.episodeLength[e]!; k++)
      if (log.episodes[next + k] !== e || log.steps[next + k] !== k) throw new RangeError(`"log" row ${next + k} expected episode ${e} step ${k}`);
    next += log.episodeLength[e]!;
  }
  if (next !== log.count) throw new RangeError(`"log.episodeLength" expected to sum to ${log.count}, got ${next}`);
}

/** AWR on a fixed log; trains `lora` in place and returns what it measured. */
export function trainOfflineRl(options: OfflineRlOptions): OfflineRlResult {
  const { weights, lora, log } = options;
  checkLog(log, weights);
  const steps = expectInteger('steps', options.steps, 1, 10_000_000);
  const batchSize = Math.min(log.count, expectInteger('batchSize', options.batchSize ?? AWR_DEFAULTS.batchSize, 1, 65536));
  const lr0 = expectFinite('learningRate', options.learningRate ?? AWR_DEFAULTS.learningRate, 1e-7, 1);
  const weighting = options.weighting ?? 'awr';
  if (weighting !== 'awr' && weighting !== 'uniform') throw new TypeError(`"weighting" expected awr or uniform, got ${describe(weighting)}`);
  const aw =
    weighting === 'awr'
      ? advantageWeights({ weights, log, gamma: options.gamma, temperature: options.temperature, maxWeight: options.maxWeight, ridge: options.ridge })
      : { weights: new Float64Array(log.count).fill(1), valueR2: null, effectiveSampleFraction: 1 };
  const params = loraParameters({ lora, freezeA: options.freezeA === true });
  const adam = new Adam(params, { learningRate: lr0 });
  const rng = new SeededRandom(options.seed);
  const idx = new Uint32Array(batchSize);
  const actDim = log.actDim;
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    for (let b = 0; b < batchSize; b++) idx[b] = rng.int(log.count);
    adam.zeroGrad();
    const fwd = forwardBatch({ weights, lora, obs: log.obs, indices: idx });
    const dMean = new Float64Array(batchSize * actDim);
    let loss = 0;
    for (let b = 0; b < batchSize; b++) {
      const i = idx[b]!;
      const w = aw.weights[i]!;
      for (let j = 0; j < actDim; j++) {
        const d = fwd.mean[b * actDim + j]! - log.actions[i * actDim + j]!;
        loss += (w * d * d) / batchSize;
        dMean[b * actDim + j] = (2 * w * d) / batchSize;
      }
    }
    backwardLora({ forward: fwd, lora, dMean, params });
    // Cosine decay to 10 % of the first rate, as bc.ts does.
    adam.step(0.1 * lr0 + 0.45 * lr0 * (1 + Math.cos((Math.PI * step) / steps)));
    losses.push(loss);
    options.onProgress?.(step + 1, loss);
  }
  const k = Math.max(1, Math.floor(steps / 10));
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    method: weighting === 'awr' ? 'advantage_weighted_regression' : 'behaviour_cloning',
    steps,
    transitions: log.count,
    episodes: log.episodeStart.length,
    initialLoss: avg(losses.slice(0, k)),
    finalLoss: avg(losses.slice(-k)),
    valueR2: aw.valueR2,
    effectiveSampleFraction: aw.effectiveSampleFraction,
  };
}
