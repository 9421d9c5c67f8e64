// The contract of a customer's ONNX evaluation model, checked from the input/output metadata an
// onnxruntime session reports (onnxruntime-web in the CLI and the PWA's eval worker; the `ort` module is
// injected, core does no I/O), and the fit between a contract and a round's adapter schema.
//
//   model bytes ──ort.InferenceSession.create──▶ inputMetadata / outputMetadata
//     ──evalModelContract──▶ EvalModelContract | EvalModelContractError (every mismatch named)
//   contract + round tensors ──customerGateApplicability──▶ applicable | not applicable (reason)
//
// The contract is the reference policy's I/O (core/policy/onnx.ts) generalised to any set of adapted
// modules: `obs` [batch, OBS_DIM]; per module M `base_model.model.M.lora_A.weight` [r, in],
// `base_model.model.M.lora_B.weight` [out, r] (r the same symbolic dimension, so any LoRA rank can be fed)
// and `M.lora_scaling` [1]; outputs `mean` [batch, ACT_DIM] (the Gaussian action mean) and `log_std`
// [ACT_DIM] or [batch, ACT_DIM]. Float32 everywhere, nothing else: an extra input would have to be fed
// with something we do not have, an extra output is something the gate would ignore.
import { TensorGuardError, describe } from '../errors.ts';
import { ACT_DIM, OBS_DIM } from '../sim/env.ts';
import { ONNX_INPUT_OBS, ONNX_OUTPUT_LOG_STD, ONNX_OUTPUT_MEAN } from '../policy/onnx.ts';
import type { GateApplicability } from './reference-gate.ts';
import type { OrtModuleLike } from './runners.ts';

/** Largest ONNX model a customer may register (bytes). */
export const MAX_EVAL_MODEL_BYTES = 32 * 1024 * 1024;
export const MAX_EVAL_MODEL_MODULES = 256;
const MAX_FEATURES = 1 << 20;
const MODULE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.]{0,199}$/;
const LORA_INPUT = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/;
const SCALING_INPUT = /^(.+)\.lora_scaling$/;

/** A customer model that does not meet the contract; `details.mismatches` lists every mismatch. */
export class EvalModelContractError extends TensorGuardError {
  constructor(message: string, details: { mismatches: string[] }, cause?: unknown) {
    super({ message, code: 'eval_model_contract', status: 422, details, cause });
  }
}

export interface EvalModelModule {
  /** The module path, e.g. "fc1" for base_model.model.fc1.lora_A.weight. */
  name: string;
  inFeatures: number;
  outFeatures: number;
}

export interface EvalModelContract {
  obsDim: number;
  actDim: number;
  /** log_std is [batch, actDim] (true) or state-independent [actDim] (false). */
  logStdPerState: boolean;
  /** Sorted by name. */
  modules: EvalModelModule[];
}

/** What onnxruntime reports per input/output (onnxruntime-common InferenceSession.ValueMetadata). */
export interface OrtValueMetadataLike {
  name: string;
  isTensor: boolean;
  type?: string;
  shape?: ReadonlyArray<number | string>;
}

export interface OrtSessionWithMetadata {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly OrtValueMetadataLike[];
  readonly outputMetadata?: readonly OrtValueMetadataLike[];
  release?(): Promise<void>;
}

export const loraInputNames = (module: string) => ({
  A: `base_model.model.${module}.lora_A.weight`,
  B: `base_model.model.${module}.lora_B.weight`,
  scaling: `${module}.lora_scaling`,
});

const fmt = (shape: ReadonlyArray<number | string> | undefined) => (shape ? `[${shape.map((d) => (typeof d === 'number' ? String(d) : JSON.stringify(d))).join(', ')}]` : 'unknown shape');
const isSymbolic = (d: number | string | undefined) => typeof d === 'string' || d === -1;

/**
 * The contract of a model from its session metadata, or EvalModelContractError naming every input or
 * output that does not fit. Pure: takes what the session reports.
 */
export function evalModelContract(options: { inputs: readonly OrtValueMetadataLike[]; outputs: readonly OrtValueMetadataLike[] }): EvalModelContract {
  const { inputs, outputs } = options;
  if (!Array.isArray(inputs)) throw new TypeError(`"inputs" expected array, got ${describe(inputs)}`);
  if (!Array.isArray(outputs)) throw new TypeError(`"outputs" expected array, got ${describe(outputs)}`);
  const mismatches: string[] = [];
  const modules = new Map<string, { A?: OrtValueMetadataLike; B?: OrtValueMetadataLike; scaling?: OrtValueMetadataLike }>();
  let obs: OrtValueMetadataLike | undefined;
  const floatTensor = (v: OrtValueMetadataLike, kind: string) => {
    if (!v.isTensor || v.type !== 'float32') {
      mismatches.push(`${kind} "${v.name}" must be a float32 tensor, is ${v.isTensor ? (v.type ?? 'untyped') : 'not a tensor'}`);
      return false;
    }
    if (!Array.isArray(v.shape) || v.shape.length === 0) {
      mismatches.push(`${kind} "${v.name}" has no declared shape`);
      return false;
    }
    return true;
  };
  for (const v of inputs) {
    let m: RegExpExecArray | null;
    if (v.name === ONNX_INPUT_OBS) obs = v;
    else if ((m = LORA_INPUT.exec(v.name))) {
      const e = modules.get(m[1]!) ?? {};
      e[m[2] as 'A' | 'B'] = v;
      modules.set(m[1]!, e);
    } else if ((m = SCALING_INPUT.exec(v.name))) {
      const e = modules.get(m[1]!) ?? {};
      e.scaling = v;
      modules.set(m[1]!, e);
    } else
      mismatches.push(
        `input "${v.name}" is not part of the contract (expected "${ONNX_INPUT_OBS}" and per module M: base_model.model.M.lora_A.weight, base_model.model.M.lora_B.weight, M.lora_scaling)`,
      );
  }
  if (!obs) mismatches.push(`input "${ONNX_INPUT_OBS}" [batch, ${OBS_DIM}] is missing`);
  else if (floatTensor(obs, 'input')) {
    const s = obs.shape!;
    if (s.length !== 2 || !isSymbolic(s[0]) || s[1] !== OBS_DIM) mismatches.push(`input "${ONNX_INPUT_OBS}" must be [batch, ${OBS_DIM}] (symbolic batch), is ${fmt(s)}`);
  }
  if (modules.size === 0) mismatches.push('the model has no LoRA inputs (base_model.model.<module>.lora_A.weight / lora_B.weight / <module>.lora_scaling)');
  if (modules.size > MAX_EVAL_MODEL_MODULES) mismatches.push(`the model adapts ${modules.size} modules, at most ${MAX_EVAL_MODEL_MODULES} are allowed`);
  const out: EvalModelModule[] = [];
  for (const [name, e] of [...modules.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const io = loraInputNames(name);
    if (!MODULE_NAME.test(name)) {
      mismatches.push(`module name ${JSON.stringify(name.slice(0, 80))} is not a module path (letters, digits, "_" and ".", at most 200)`);
      continue;
    }
    if (!e.A || !e.B || !e.scaling) {
      const missing = [!e.A && io.A, !e.B && io.B, !e.scaling && io.scaling].filter(Boolean);
      mismatches.push(`module ${name}: input${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')} missing`);
      continue;
    }
    if (!floatTensor(e.A, 'input') || !floatTensor(e.B, 'input') || !floatTensor(e.scaling, 'input')) continue;
    const a = e.A.shape!;
    const b = e.B.shape!;
    const sc = e.scaling.shape!;
    const inF = a[1];
    const outF = b[0];
    if (a.length !== 2 || b.length !== 2 || typeof inF !== 'number' || typeof outF !== 'number' || inF < 1 || outF < 1 || inF > MAX_FEATURES || outF > MAX_FEATURES) {
      mismatches.push(`module ${name}: "${io.A}" must be [r, in] and "${io.B}" [out, r] with fixed in/out, are ${fmt(a)} and ${fmt(b)}`);
      continue;
    }
    if (!isSymbolic(a[0]) || !isSymbolic(b[1]) || (typeof a[0] === 'string' && a[0] !== b[1])) {
      mismatches.push(`module ${name}: the rank r of "${io.A}" ${fmt(a)} and "${io.B}" ${fmt(b)} must be one symbolic dimension`);
      continue;
    }
    if (sc.length !== 1 || sc[0] !== 1) {
      mismatches.push(`module ${name}: "${io.scaling}" must be [1], is ${fmt(sc)}`);
      continue;
    }
    out.push({ name, inFeatures: inF, outFeatures: outF });
  }
  const mean = outputs.find((v) => v.name === ONNX_OUTPUT_MEAN);
  const logStd = outputs.find((v) => v.name === ONNX_OUTPUT_LOG_STD);
  for (const v of outputs)
    if (v.name !== ONNX_OUTPUT_MEAN && v.name !== ONNX_OUTPUT_LOG_STD) mismatches.push(`output "${v.name}" is not part of the contract (expected "${ONNX_OUTPUT_MEAN}" and "${ONNX_OUTPUT_LOG_STD}")`);
  if (!mean) mismatches.push(`output "${ONNX_OUTPUT_MEAN}" [batch, ${ACT_DIM}] (the Gaussian action mean) is missing`);
  else if (floatTensor(mean, 'output')) {
    const s = mean.shape!;
    if (s.length !== 2 || !isSymbolic(s[0]) || s[1] !== ACT_DIM) mismatches.push(`output "${ONNX_OUTPUT_MEAN}" must be [batch, ${ACT_DIM}] (symbolic batch), is ${fmt(s)}`);
  }
  let logStdPerState = false;
  if (!logStd) mismatches.push(`output "${ONNX_OUTPUT_LOG_STD}" [${ACT_DIM}] or [batch, ${ACT_DIM}] is missing`);
  else if (floatTensor(logStd, 'output')) {
    const s = logStd.shape!;
    if (s.length === 1 && s[0] === ACT_DIM) logStdPerState = false;
    else if (s.length === 2 && isSymbolic(s[0]) && s[1] === ACT_DIM) logStdPerState = true;
    else mismatches.push(`output "${ONNX_OUTPUT_LOG_STD}" must be [${ACT_DIM}] or [batch, ${ACT_DIM}], is ${fmt(s)}`);
  }
  if (mismatches.length > 0)
    throw new EvalModelContractError(`the evaluation model does not meet the contract: ${mismatches.join('; ')}`, { mismatches });
  return { obsDim: OBS_DIM, actDim: ACT_DIM, logStdPerState, modules: out };
}

/**
 * Loads the model in an onnxruntime session (the injected module: onnxruntime-web's WASM backend) and
 * checks its contract. A model onnxruntime cannot load is an EvalModelContractError too.
 */
export async function validateEvalModel(options: { ort: OrtModuleLike; model: Uint8Array }): Promise<EvalModelContract> {
  const { ort, model } = options;
  if (!(model instanceof Uint8Array)) throw new TypeError(`"model" expected Uint8Array, got ${describe(model)}`);
  if (model.length === 0 || model.length > MAX_EVAL_MODEL_BYTES)
    throw new EvalModelContractError(`the evaluation model must be 1..${MAX_EVAL_MODEL_BYTES} bytes, is ${model.length}`, { mismatches: ['size'] });
  let session: OrtSessionWithMetadata;
  try {
    session = (await ort.InferenceSession.create(model, { executionProviders: ['wasm'] })) as unknown as OrtSessionWithMetadata;
  } catch (cause) {
    const why = String((cause as Error)?.message ?? cause).slice(0, 300);
    throw new EvalModelContractError(`onnxruntime cannot load the evaluation model: ${why}`, { mismatches: [`load: ${why}`] }, cause);
  }
  try {
    if (!session.inputMetadata || !session.outputMetadata) throw new TypeError('the onnxruntime module does not report input/output metadata (onnxruntime-web >= 1.22 needed)');
    return evalModelContract({ inputs: session.inputMetadata, outputs: session.outputMetadata });
  } finally {
    await session.release?.();
  }
}

/**
 * Whether a round's adapter can be evaluated with a customer model: every tensor is the lora_A or lora_B
 * of a module of the contract, A [r, in] and B [out, r] with the module's features. Modules the adapter
 * does not adapt get zero LoRA inputs (the base model).
 */
export function customerGateApplicability(options: { contract: EvalModelContract; tensors: ReadonlyArray<{ name: string; shape: readonly number[] }> }): GateApplicability {
  const mods = new Map(options.contract.modules.map((m) => [m.name, m]));
  const byModule = new Map<string, { A?: readonly number[]; B?: readonly number[] }>();
  for (const t of options.tensors) {
    const m = LORA_INPUT.exec(t.name);
    if (!m) return { applicable: false, reason: `tensor ${t.name} is not a LoRA tensor (base_model.model.<module>.lora_A/B.weight)` };
    if (!mods.has(m[1]!))
      return { applicable: false, reason: `the adapter adapts module ${m[1]}, which the evaluation model has no LoRA inputs for (it has ${[...mods.keys()].join(', ')})` };
    const e = byModule.get(m[1]!) ?? {};
    e[m[2] as 'A' | 'B'] = t.shape;
    byModule.set(m[1]!, e);
  }
  if (byModule.size === 0) return { applicable: false, reason: 'the adapter has no LoRA tensors' };
  for (const [name, { A, B }] of byModule) {
    const mod = mods.get(name)!;
    if (!A || !B) return { applicable: false, reason: `module ${name} has only one of lora_A / lora_B` };
    if (A.length !== 2 || B.length !== 2 || A[1] !== mod.inFeatures || B[0] !== mod.outFeatures || A[0] !== B[1])
      return { applicable: false, reason: `module ${name}: lora_A [${A}] / lora_B [${B}] do not fit the evaluation model's [${mod.outFeatures}, ${mod.inFeatures}] module` };
  }
  return { applicable: true };
}
