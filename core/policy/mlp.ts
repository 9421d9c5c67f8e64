// The reference policy: a small MLP with a Gaussian action head and LoRA adapters on its linear layers.
//
//   h1   = tanh(fc1(obs))            fc1: OBS_DIM -> hidden
//   h2   = tanh(fc2(h1))             fc2: hidden -> hidden
//   mean = mean_head(h2)             mean_head: hidden -> ACT_DIM
//   std  = exp(log_std)              a learned, state-independent vector
// Each linear layer computes W x + b + scaling * B (A x) (peft/tuners/lora/layer.py Linear.forward), with
// A [r, in] and B [out, r]: the adapter tensors are `base_model.model.<layer>.lora_A.weight` /
// `.lora_B.weight`, so a policy adapter IS a PEFT adapter (core/peft/adapter.ts) and travels through
// rounds like any other. Weights are stored as PyTorch does, weight [out, in] row-major.
import type { PeftAdapter, PeftAdapterConfig } from '../peft/adapter.ts';
import { scaling as peftScaling } from '../peft/adapter.ts';
import { readSafetensors, writeSafetensors } from '../safetensors/safetensors.ts';
import { FormatError, describe } from '../errors.ts';
import { SeededRandom } from '../sim/random.ts';
import { ACT_DIM, OBS_DIM } from '../sim/env.ts';

export const POLICY_LAYERS = ['fc1', 'fc2', 'mean_head'] as const;
export type PolicyLayer = (typeof POLICY_LAYERS)[number];
export const POLICY_BASE_MODEL_NAME = 'tensorguard/reference-policy';

export interface LinearWeights {
  inFeatures: number;
  outFeatures: number;
  /** [out, in], row-major. */
  weight: Float32Array;
  bias: Float32Array;
}

export interface PolicyWeights {
  obsDim: number;
  hidden: number;
  actDim: number;
  layers: Record<PolicyLayer, LinearWeights>;
  logStd: Float32Array;
}

export interface LoraLayer {
  r: number;
  /** [r, in] */
  A: Float32Array;
  /** [out, r] */
  B: Float32Array;
  scaling: number;
}

export type PolicyLora = Partial<Record<PolicyLayer, LoraLayer>>;

export interface ActionDistribution {
  /** [batch, actDim] */
  mean: Float32Array;
  /** [batch, actDim] */
  logStd: Float32Array;
}

export function layerShapes(options: { obsDim: number; hidden: number; actDim: number }): Record<PolicyLayer, { inFeatures: number; outFeatures: number }> {
  const { obsDim, hidden, actDim } = options;
  return {
    fc1: { inFeatures: obsDim, outFeatures: hidden },
    fc2: { inFeatures: hidden, outFeatures: hidden },
    mean_head: { inFeatures: hidden, outFeatures: actDim },
  };
}

/** PyTorch nn.Linear's default initialisation (U(-1/sqrt(in), 1/sqrt(in)) for weight and bias), seeded. */
export function initPolicyWeights(options: { seed: Uint8Array; hidden?: number; obsDim?: number; actDim?: number; logStd?: number }): PolicyWeights {
  const obsDim = options.obsDim ?? OBS_DIM;
  const actDim = options.actDim ?? ACT_DIM;
  const hidden = options.hidden ?? 64;
  const rng = new SeededRandom(options.seed);
  const shapes = layerShapes({ obsDim, hidden, actDim });
  const layers = {} as Record<PolicyLayer, LinearWeights>;
  for (const name of POLICY_LAYERS) {
    const { inFeatures, outFeatures } = shapes[name];
    const bound = 1 / Math.sqrt(inFeatures);
    const weight = new Float32Array(inFeatures * outFeatures);
    for (let i = 0; i < weight.length; i++) weight[i] = rng.uniform(-bound, bound);
    const bias = new Float32Array(outFeatures);
    for (let i = 0; i < bias.length; i++) bias[i] = rng.uniform(-bound, bound);
    layers[name] = { inFeatures, outFeatures, weight, bias };
  }
  return { obsDim, hidden, actDim, layers, logStd: new Float32Array(actDim).fill(options.logStd ?? -1) };
}

/** W + scaling * B A, the merged weight of a layer (what PEFT's merge_and_unload computes). */
export function effectiveWeight(options: { layer: LinearWeights; lora?: LoraLayer }): Float32Array {
  const { layer, lora } = options;
  if (!lora) return layer.weight;
  const { inFeatures: n, outFeatures: m } = layer;
  const out = new Float32Array(layer.weight);
  const { r, A, B, scaling } = lora;
  for (let o = 0; o < m; o++) {
    for (let k = 0; k < r; k++) {
      const b = scaling * B[o * r + k]!;
      if (b === 0) continue;
      const row = o * n;
      const arow = k * n;
      for (let i = 0; i < n; i++) out[row + i]! += b * A[arow + i]!;
    }
  }
  return out;
}

function checkObs(obs: unknown, batch: unknown, dim: number): void {
  if (!(obs instanceof Float32Array)) throw new TypeError(`"obs" expected Float32Array, got ${describe(obs)}`);
  if (typeof batch !== 'number' || !Number.isSafeInteger(batch) || batch < 1) throw new TypeError(`"batch" expected positive integer, got ${describe(batch)}`);
  if (obs.length !== batch * dim) throw new RangeError(`"obs" expected ${batch * dim} values (batch ${batch} x ${dim}), got ${obs.length}`);
}

/**
 * The policy's forward pass for a batch. Layer by layer as the ONNX graph computes it
 * (W x + b + s B (A x), with the LoRA path unmerged), in float64 arithmetic rounded to float32 per layer.
 */
export function policyForward(options: { weights: PolicyWeights; lora?: PolicyLora; obs: Float32Array; batch: number }): ActionDistribution {
  const { weights, lora, obs, batch } = options;
  checkObs(obs, batch, weights.obsDim);
  let x: Float32Array = obs;
  for (const name of POLICY_LAYERS) {
    const layer = weights.layers[name];
    const y = linearForward({ layer, lora: lora?.[name], x, batch });
    if (name !== 'mean_head') for (let i = 0; i < y.length; i++) y[i] = Math.tanh(y[i]!);
    x = y;
  }
  const logStd = new Float32Array(batch * weights.actDim);
  for (let b = 0; b < batch; b++) logStd.set(weights.logStd, b * weights.actDim);
  return { mean: x, logStd };
}

export function linearForward(options: { layer: LinearWeights; lora?: LoraLayer; x: Float32Array; batch: number }): Float32Array {
  const { layer, lora, x, batch } = options;
  const { inFeatures: n, outFeatures: m, weight: W, bias } = layer;
  const y = new Float32Array(batch * m);
  const u = lora ? new Float64Array(lora.r) : null;
  for (let b = 0; b < batch; b++) {
    const xo = b * n;
    if (lora && u) {
      for (let k = 0; k < lora.r; k++) {
        let s = 0;
        const ao = k * n;
        for (let i = 0; i < n; i++) s += lora.A[ao + i]! * x[xo + i]!;
        u[k] = Math.fround(s);
      }
    }
    for (let o = 0; o < m; o++) {
      let s = 0;
      const wo = o * n;
      for (let i = 0; i < n; i++) s += W[wo + i]! * x[xo + i]!;
      let v = Math.fround(s) + bias[o]!;
      if (lora && u) {
        let t = 0;
        for (let k = 0; k < lora.r; k++) t += lora.B[o * lora.r + k]! * u[k]!;
        v += lora.scaling * Math.fround(t);
      }
      y[b * m + o] = v;
    }
  }
  return y;
}

// ---------------------------------------------------------------------------------------------------------
// PEFT adapters

export const loraTensorName = (layer: PolicyLayer, part: 'A' | 'B') => `base_model.model.${layer}.lora_${part}.weight`;

/** The policy's LoRA layers from a PEFT adapter (checks every module is a policy layer of the right shape). */
export function loraFromAdapter(options: { adapter: PeftAdapter; weights: PolicyWeights }): PolicyLora {
  const { adapter, weights } = options;
  const s = peftScaling({ config: adapter.config });
  const out: PolicyLora = {};
  const known = new Set<string>();
  for (const name of POLICY_LAYERS) {
    const aName = loraTensorName(name, 'A');
    const bName = loraTensorName(name, 'B');
    known.add(aName).add(bName);
    const A = adapter.tensors.get(aName);
    const B = adapter.tensors.get(bName);
    if (!A && !B) continue;
    if (!A || !B) throw new FormatError(`policy adapter: layer ${name} needs both lora_A and lora_B`);
    const layer = weights.layers[name];
    const [r, inF] = adapter.shapes.get(aName)!;
    const [outF, rB] = adapter.shapes.get(bName)!;
    if (inF !== layer.inFeatures || outF !== layer.outFeatures || r !== rB)
      throw new FormatError(`policy adapter: ${name} has A [${r}, ${inF}] and B [${outF}, ${rB}], the policy layer is [${layer.outFeatures}, ${layer.inFeatures}]`);
    out[name] = { r: r!, A, B, scaling: s };
  }
  for (const t of adapter.tensors.keys()) if (!known.has(t)) throw new FormatError(`policy adapter: tensor ${t} is not a LoRA tensor of the reference policy`);
  return out;
}

/** A PEFT adapter from LoRA layers (copies), with the config PEFT would write for this policy. */
export function adapterFromLora(options: { lora: PolicyLora; r: number; alpha: number; extraConfig?: Record<string, unknown> }): PeftAdapter {
  const { lora, r, alpha } = options;
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  const targets: string[] = [];
  for (const name of POLICY_LAYERS) {
    const l = lora[name];
    if (!l) continue;
    targets.push(name);
    const inF = l.A.length / l.r;
    const outF = l.B.length / l.r;
    tensors.set(loraTensorName(name, 'A'), new Float32Array(l.A));
    shapes.set(loraTensorName(name, 'A'), [l.r, inF]);
    tensors.set(loraTensorName(name, 'B'), new Float32Array(l.B));
    shapes.set(loraTensorName(name, 'B'), [outF, l.r]);
  }
  const config: PeftAdapterConfig = {
    peft_type: 'LORA',
    r,
    lora_alpha: alpha,
    lora_dropout: 0,
    target_modules: targets,
    base_model_name_or_path: POLICY_BASE_MODEL_NAME,
    bias: 'none',
    task_type: null,
    use_rslora: false,
    use_dora: false,
    fan_in_fan_out: false,
    init_lora_weights: true,
    ...options.extraConfig,
  };
  return { config, tensors, shapes };
}

/** PEFT's initial adapter: A kaiming-uniform (bound 1/sqrt(in)) from the seed, B = 0, on every layer. */
export function initialLora(options: { weights: PolicyWeights; r: number; alpha: number; seed: Uint8Array }): PolicyLora {
  const { weights, r, alpha } = options;
  const rng = new SeededRandom(options.seed);
  const out: PolicyLora = {};
  for (const name of POLICY_LAYERS) {
    const layer = weights.layers[name];
    const bound = 1 / Math.sqrt(layer.inFeatures);
    const A = new Float32Array(r * layer.inFeatures);
    for (let i = 0; i < A.length; i++) A[i] = rng.uniform(-bound, bound);
    out[name] = { r, A, B: new Float32Array(layer.outFeatures * r), scaling: alpha / r };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Base weights as safetensors: fc1.weight [hidden, obs], fc1.bias, ..., log_std [act]

export function savePolicyWeights(options: { weights: PolicyWeights; metadata?: Record<string, string> }): Uint8Array {
  const w = options.weights;
  const tensors = [];
  for (const name of POLICY_LAYERS) {
    const l = w.layers[name];
    tensors.push({ name: `${name}.weight`, shape: [l.outFeatures, l.inFeatures], data: l.weight });
    tensors.push({ name: `${name}.bias`, shape: [l.outFeatures], data: l.bias });
  }
  tensors.push({ name: 'log_std', shape: [w.actDim], data: w.logStd });
  return writeSafetensors({ tensors, metadata: { format: 'pt', ...options.metadata } });
}

export function loadPolicyWeights(options: { bytes: Uint8Array }): PolicyWeights {
  const file = readSafetensors({ bytes: options.bytes });
  const get = (name: string, rank: number) => {
    const t = file.tensors.get(name);
    if (!t || t.shape.length !== rank) throw new FormatError(`policy weights: tensor ${name} missing or not of rank ${rank}`);
    return t;
  };
  const fc1 = get('fc1.weight', 2);
  const head = get('mean_head.weight', 2);
  const obsDim = fc1.shape[1]!;
  const hidden = fc1.shape[0]!;
  const actDim = head.shape[0]!;
  const shapes = layerShapes({ obsDim, hidden, actDim });
  const layers = {} as Record<PolicyLayer, LinearWeights>;
  for (const name of POLICY_LAYERS) {
    const w = get(`${name}.weight`, 2);
    const b = get(`${name}.bias`, 1);
    const { inFeatures, outFeatures } = shapes[name];
    if (w.shape[0] !== outFeatures || w.shape[1] !== inFeatures || b.shape[0] !== outFeatures)
      throw new FormatError(`policy weights: ${name} has shape [${w.shape}] / [${b.shape}], expected [${outFeatures}, ${inFeatures}]`);
    layers[name] = { inFeatures, outFeatures, weight: w.data, bias: b.data };
  }
  const logStd = get('log_std', 1);
  if (logStd.shape[0] !== actDim) throw new FormatError(`policy weights: log_std has ${logStd.shape[0]} values, expected ${actDim}`);
  return { obsDim, hidden, actDim, layers, logStd: logStd.data };
}
