// Policy runners for the evaluation: the same `act` interface over the TypeScript forward pass and over
// an ONNX model run by an injected onnxruntime module (onnxruntime-web in the PWA's worker and in the
// CLI: WASM, or WebGPU in a browser that has an adapter), so the gate's numbers come from one code path
// whichever runtime executes the model.
import { POLICY_LAYERS, policyForward, type ActionDistribution, type PolicyLora, type PolicyWeights } from '../policy/mlp.ts';
import { ONNX_INPUT_OBS, ONNX_OUTPUT_LOG_STD, ONNX_OUTPUT_MEAN, onnxLoraInputs } from '../policy/onnx.ts';
import { describe } from '../errors.ts';

export interface PolicyRunner {
  /** Action distributions for a batch of observations ([batch, obsDim] row-major). */
  act(input: { obs: Float32Array; batch: number }): Promise<ActionDistribution> | ActionDistribution;
}

export function tsPolicyRunner(options: { weights: PolicyWeights; lora?: PolicyLora }): PolicyRunner {
  const { weights, lora } = options;
  return { act: ({ obs, batch }) => policyForward({ weights, lora, obs, batch }) };
}

// The slice of the onnxruntime API we use (onnxruntime-web and onnxruntime-node share it).
export interface OrtTensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
}
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release?(): Promise<void>;
}
export interface OrtModuleLike {
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensorLike;
}

/**
 * One session of a policy model. `executionProviders` defaults to WASM (the CLI, and the browser without a
 * WebGPU adapter); the PWA's eval worker passes ['webgpu'] where the browser has one (workers/eval/backend.ts).
 * Exactly one provider is expected, so the report can name the backend that ran.
 */
export async function createOnnxPolicySession(options: { ort: OrtModuleLike; model: Uint8Array; executionProviders?: readonly string[] }): Promise<OrtSessionLike> {
  const { ort, model } = options;
  if (!(model instanceof Uint8Array)) throw new TypeError(`"model" expected Uint8Array, got ${describe(model)}`);
  const executionProviders = options.executionProviders ?? ['wasm'];
  if (!Array.isArray(executionProviders) || executionProviders.length === 0 || !executionProviders.every((p) => typeof p === 'string' && p.length > 0))
    throw new TypeError(`"executionProviders" expected non-empty array of names, got ${describe(executionProviders)}`);
  return ort.InferenceSession.create(model, { executionProviders: [...executionProviders], graphOptimizationLevel: 'all' });
}

/**
 * A runner over a reference-policy ONNX session (core/policy/onnx.ts) with one LoRA adapter bound to its
 * inputs. Without `lora`, rank-1 zero matrices are fed: the base policy. `shapes` gives the layer sizes.
 */
export function onnxPolicyRunner(options: {
  ort: OrtModuleLike;
  session: OrtSessionLike;
  shapes: { obsDim: number; hidden: number; actDim: number };
  lora?: PolicyLora;
}): PolicyRunner {
  const { ort, session, shapes, lora } = options;
  const dims = { fc1: [shapes.obsDim, shapes.hidden], fc2: [shapes.hidden, shapes.hidden], mean_head: [shapes.hidden, shapes.actDim] } as const;
  const fixed: Record<string, OrtTensorLike> = {};
  for (const name of POLICY_LAYERS) {
    const io = onnxLoraInputs(name);
    const [inF, outF] = dims[name];
    const l = lora?.[name];
    const r = l ? l.r : 1;
    fixed[io.A] = new ort.Tensor('float32', l ? l.A : new Float32Array(r * inF), [r, inF]);
    fixed[io.B] = new ort.Tensor('float32', l ? l.B : new Float32Array(outF * r), [outF, r]);
    fixed[io.scaling] = new ort.Tensor('float32', Float32Array.of(l ? l.scaling : 0), [1]);
  }
  return {
    async act({ obs, batch }) {
      if (obs.length !== batch * shapes.obsDim) throw new RangeError(`"obs" expected ${batch * shapes.obsDim} values, got ${obs.length}`);
      const out = await session.run({ ...fixed, [ONNX_INPUT_OBS]: new ort.Tensor('float32', obs, [batch, shapes.obsDim]) });
      const mean = out[ONNX_OUTPUT_MEAN]?.data;
      const logStd = out[ONNX_OUTPUT_LOG_STD]?.data;
      if (!(mean instanceof Float32Array) || mean.length !== batch * shapes.actDim || !(logStd instanceof Float32Array))
        throw new TypeError(`ONNX policy: expected outputs "${ONNX_OUTPUT_MEAN}" [${batch}, ${shapes.actDim}] and "${ONNX_OUTPUT_LOG_STD}" float32`);
      // log_std is state-independent ([actDim]) in the reference model; a customer model may give [batch, actDim].
      let ls: Float32Array;
      if (logStd.length === batch * shapes.actDim) ls = new Float32Array(logStd);
      else if (logStd.length === shapes.actDim) {
        ls = new Float32Array(batch * shapes.actDim);
        for (let b = 0; b < batch; b++) ls.set(logStd, b * shapes.actDim);
      } else throw new TypeError(`ONNX policy: "${ONNX_OUTPUT_LOG_STD}" has ${logStd.length} values for batch ${batch}`);
      return { mean: new Float32Array(mean), logStd: ls };
    },
  };
}
