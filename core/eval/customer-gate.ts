// The evaluation gate with a customer's evaluation model: the same evaluatePolicy + gateVerdict +
// metric summary as the reference gate (core/eval/reference-gate.ts), run over the customer's decrypted
// scenario sets with the customer's ONNX policy, the deployed and the candidate adapter fed as LoRA inputs
// of ONE session. The officer CLI and the PWA's eval worker call runCustomerGateOnnx with their own `ort`
// module (onnxruntime-web, WASM); the model bytes and the record were checked against the officer's
// signature before this (core/records/eval-model.ts).
//
//   record (verified) + model bytes ──validateEvalModel──▶ contract (must equal the signed one)
//   contract + round tensors ──customerGateApplicability──▶ not applicable (reason) | applicable
//   deployed / candidate adapters ──contractPolicyRunner x 2──▶ evaluatePolicy(customer sets)
//   ──gateVerdict──▶ GateReport { evaluator "customer-model/v1:<record fingerprint>", evaluationModel }
import { bytesToHex } from '../bytes.ts';
import { canonicalJson } from '../audit/leaf.ts';
import { IntegrityError, describe } from '../errors.ts';
import { scaling as peftScaling, type PeftAdapter } from '../peft/adapter.ts';
import type { ActionDistribution } from '../policy/mlp.ts';
import { ONNX_INPUT_OBS, ONNX_OUTPUT_LOG_STD, ONNX_OUTPUT_MEAN } from '../policy/onnx.ts';
import type { EvalModelRecord } from '../records/eval-model.ts';
import { evaluatePolicy } from './evaluate.ts';
import { gateVerdict, resolveThresholds, type GateThresholds } from './gate.ts';
import { GATE_REPORT_FORMAT, gateMetricSummary, type GateReport } from './reference-gate.ts';
import { createOnnxPolicySession, type OrtModuleLike, type OrtSessionLike, type OrtTensorLike, type PolicyRunner } from './runners.ts';
import { customerGateApplicability, loraInputNames, validateEvalModel, type EvalModelContract } from './customer-contract.ts';
import { scenarioCounts, scenarioSetInputs, type ScenarioSetDocument } from './customer-scenarios.ts';

export const CUSTOMER_GATE_EVALUATOR = 'customer-model/v1';

/** Which customer model and scenario set a gate report was measured with. */
export interface EvaluationModelRef {
  id: string;
  name: string;
  /** Fingerprint of the officer-signed record (core/records/eval-model.ts), hex. */
  fingerprint: string;
  modelSha256: string;
  scenariosSha256: string;
  scenarioSetName: string;
}

export interface CustomerGateReport extends GateReport {
  evaluationModel: EvaluationModelRef;
}

/**
 * A runner over a customer model session: the adapter's LoRA tensors bound to the contract's inputs by
 * module name; modules the adapter does not adapt get rank-1 zeros with scaling 0 (the base model).
 */
export function contractPolicyRunner(options: { ort: OrtModuleLike; session: OrtSessionLike; contract: EvalModelContract; adapter?: PeftAdapter }): PolicyRunner {
  const { ort, session, contract, adapter } = options;
  const s = adapter ? peftScaling({ config: adapter.config }) : 0;
  const fixed: Record<string, OrtTensorLike> = {};
  for (const m of contract.modules) {
    const io = loraInputNames(m.name);
    const A = adapter?.tensors.get(io.A);
    const B = adapter?.tensors.get(io.B);
    if (A && B) {
      const [r, inF] = adapter!.shapes.get(io.A)!;
      const [outF] = adapter!.shapes.get(io.B)!;
      if (inF !== m.inFeatures || outF !== m.outFeatures) throw new RangeError(`module ${m.name}: adapter [${outF}, ${inF}] does not fit the model's [${m.outFeatures}, ${m.inFeatures}]`);
      fixed[io.A] = new ort.Tensor('float32', A, [r!, m.inFeatures]);
      fixed[io.B] = new ort.Tensor('float32', B, [m.outFeatures, r!]);
      fixed[io.scaling] = new ort.Tensor('float32', Float32Array.of(s), [1]);
    } else {
      fixed[io.A] = new ort.Tensor('float32', new Float32Array(m.inFeatures), [1, m.inFeatures]);
      fixed[io.B] = new ort.Tensor('float32', new Float32Array(m.outFeatures), [m.outFeatures, 1]);
      fixed[io.scaling] = new ort.Tensor('float32', Float32Array.of(0), [1]);
    }
  }
  const { obsDim, actDim } = contract;
  return {
    async act({ obs, batch }): Promise<ActionDistribution> {
      if (obs.length !== batch * obsDim) throw new RangeError(`"obs" expected ${batch * obsDim} values, got ${obs.length}`);
      const out = await session.run({ ...fixed, [ONNX_INPUT_OBS]: new ort.Tensor('float32', obs, [batch, obsDim]) });
      const mean = out[ONNX_OUTPUT_MEAN]?.data;
      const logStd = out[ONNX_OUTPUT_LOG_STD]?.data;
      if (!(mean instanceof Float32Array) || mean.length !== batch * actDim || !(logStd instanceof Float32Array))
        throw new TypeError(`evaluation model: expected outputs "${ONNX_OUTPUT_MEAN}" [${batch}, ${actDim}] and "${ONNX_OUTPUT_LOG_STD}" float32, got ${describe(mean)}`);
      for (let i = 0; i < mean.length; i++) if (!Number.isFinite(mean[i]!)) throw new RangeError(`evaluation model: "${ONNX_OUTPUT_MEAN}" has a non-finite value`);
      let ls: Float32Array;
      if (logStd.length === batch * actDim) ls = new Float32Array(logStd);
      else if (logStd.length === actDim) {
        ls = new Float32Array(batch * actDim);
        for (let b = 0; b < batch; b++) ls.set(logStd, b * actDim);
      } else throw new TypeError(`evaluation model: "${ONNX_OUTPUT_LOG_STD}" has ${logStd.length} values for batch ${batch}`);
      return { mean: new Float32Array(mean), logStd: ls };
    },
  };
}

function sameContract(a: EvalModelContract, b: EvalModelContract): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function reportBase(options: { record: EvalModelRecord; fingerprint: Uint8Array; document: ScenarioSetDocument; roundId: string; candidateAdapterSha256: string; thresholds?: Partial<GateThresholds> }) {
  const fp = bytesToHex(options.fingerprint);
  return {
    format: GATE_REPORT_FORMAT,
    evaluator: `${CUSTOMER_GATE_EVALUATOR}:${fp}`,
    roundId: options.roundId,
    candidateAdapterSha256: options.candidateAdapterSha256,
    scenarioSeed: null,
    counts: scenarioCounts({ document: options.document }),
    evaluationModel: {
      id: options.record.modelId,
      name: options.record.name,
      fingerprint: fp,
      modelSha256: bytesToHex(options.record.modelSha256),
      scenariosSha256: bytesToHex(options.record.scenariosSha256),
      scenarioSetName: options.document.name,
    },
  } as const;
}

/**
 * The gate with a customer model, as the review runs it in the CLI and the PWA's worker. `record` and
 * `fingerprint` come from openEvalModelRecord (signature checked against the pinned officer key),
 * `model` from verifyEvalModelBlobs, `document` from openScenarioSet. The model's contract is checked
 * again from the session and must equal the signed one (IntegrityError otherwise).
 */
export async function runCustomerGateOnnx(options: {
  ort: OrtModuleLike;
  model: Uint8Array;
  record: EvalModelRecord;
  fingerprint: Uint8Array;
  document: ScenarioSetDocument;
  roundId: string;
  tensors: ReadonlyArray<{ name: string; shape: readonly number[] }>;
  deployed: PeftAdapter;
  candidate: PeftAdapter;
  candidateAdapterSha256: string;
  runtime?: string;
  thresholds?: Partial<GateThresholds>;
  onProgress?: (done: number, total: number, phase: string) => void;
}): Promise<CustomerGateReport> {
  const { ort, model, record } = options;
  const base = reportBase(options);
  const contract = await validateEvalModel({ ort, model });
  if (!sameContract(contract, record.contract)) throw new IntegrityError('the evaluation model does not have the contract the officer signed');
  const applicability = customerGateApplicability({ contract, tensors: options.tensors });
  if (!applicability.applicable)
    return {
      ...base,
      runtime: null,
      applicable: false,
      reason: `evaluation model ${record.name}: ${applicability.reason}`,
      counts: null,
      thresholds: resolveThresholds({ overrides: options.thresholds }),
      evaluation: null,
      verdict: null,
      metrics: [],
    };
  const session = await createOnnxPolicySession({ ort, model });
  try {
    const evaluation = await evaluatePolicy({
      sets: scenarioSetInputs({ document: options.document }),
      candidate: contractPolicyRunner({ ort, session, contract, adapter: options.candidate }),
      deployed: contractPolicyRunner({ ort, session, contract, adapter: options.deployed }),
      onProgress: options.onProgress,
    });
    const verdict = gateVerdict({ report: evaluation, thresholds: options.thresholds });
    return {
      ...base,
      runtime: options.runtime ?? 'onnxruntime-web/wasm',
      applicable: true,
      reason: null,
      thresholds: verdict.thresholds,
      evaluation,
      verdict,
      metrics: gateMetricSummary({ evaluation, verdict }),
    };
  } finally {
    await session.release?.();
  }
}
