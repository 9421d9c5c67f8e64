// The evaluation gate inside the officer's review, on the reference task: the deployed policy (the round's
// start adapter) and the candidate (start + decrypted mean update) run in ONE ONNX session of the shipped
// reference policy, fed different LoRA inputs, over the held-out scenario sets (nominal, every site
// variation, OOD). The officer CLI (`officer review`, onnxruntime-web's WASM backend in Node) and the PWA's
// eval worker (onnxruntime-web in a browser worker: WebGPU where the browser has an adapter, else WASM;
// the report's `runtime` names which) call runReferenceGateOnnx with their own `ort` module and model
// bytes; everything else — sets, runners, report, verdict, metric summary, hash — is this file.
//
//   round tensors ──referenceGateApplicability──▶ not applicable (reason) | applicable
//   deployed + candidate adapters ──loraOf──▶ onnxPolicyRunner x 2 ──evaluatePolicy──▶ EvaluationReport
//   ──gateVerdict──▶ verdict (every failed check named) ──▶ GateReport (+ metric summary, SHA-256)
//   GateReport + override ──releaseGateOf──▶ the `gate` of the signed release manifest (v2)
// An adapter whose schema is not the reference policy's LoRA layout gets "not applicable" with the reason:
// never a number that was not measured.
import { bytesToHex, utf8ToBytes } from '../bytes.ts';
import { sha256 } from '../codec/fingerprint.ts';
import { canonicalJson } from '../audit/leaf.ts';
import { TensorGuardError, expectInteger } from '../errors.ts';
import { POLICY_LAYERS, layerShapes, loraFromAdapter, loraTensorName, type PolicyLora, type PolicyWeights } from '../policy/mlp.ts';
import { EVALUATION_SEED } from '../policy/reference.ts';
import { scenarioSet, siteNames } from '../sim/scenario.ts';
import type { PeftAdapter } from '../peft/adapter.ts';
import type { ReleaseGate } from '../records/release-manifest.ts';
import { evaluatePolicy, type EvaluationReport, type ScenarioSetInput } from './evaluate.ts';
import { gateVerdict, resolveThresholds, type GateThresholds, type GateVerdict } from './gate.ts';
import { createOnnxPolicySession, onnxPolicyRunner, type OrtModuleLike, type PolicyRunner } from './runners.ts';

export const GATE_REPORT_FORMAT = 'tensorguard-gate-report/v1';
export const REFERENCE_GATE_EVALUATOR = 'reference-task/v1';

/** A failing gate without the officer's signed override. */
export class GateFailedError extends TensorGuardError {
  constructor(message: string, details?: Record<string, unknown>) {
    super({ message, code: 'gate_failed', status: 409, details });
  }
}

export interface PolicyShapes {
  obsDim: number;
  hidden: number;
  actDim: number;
}

/** The reference policy's sizes (core/policy/reference.ts; static/models/reference-policy.json). */
export const REFERENCE_SHAPES: Readonly<PolicyShapes> = Object.freeze({ obsDim: 18, hidden: 64, actDim: 3 });

/** Scenarios per held-out set. Defaults keep a review to a few seconds on one core. */
export interface GateSetCounts {
  nominal: number;
  site: number;
  ood: number;
}
export const DEFAULT_GATE_COUNTS: Readonly<GateSetCounts> = Object.freeze({ nominal: 60, site: 30, ood: 45 });

/** The held-out sets of the reference task, from EVALUATION_SEED (never used for training). */
export function referenceGateSets(options: { counts?: Partial<GateSetCounts>; seed?: Uint8Array } = {}): ScenarioSetInput[] {
  const c = { ...DEFAULT_GATE_COUNTS, ...options.counts };
  for (const k of ['nominal', 'site', 'ood'] as const) expectInteger(`counts.${k}`, c[k], 1, 10_000);
  const seed = options.seed ?? EVALUATION_SEED;
  return [
    { name: 'nominal', role: 'nominal', scenarios: scenarioSet({ name: 'nominal', seed, count: c.nominal }) },
    ...siteNames().map((s) => ({ name: `site:${s}`, role: 'site' as const, scenarios: scenarioSet({ name: `site:${s}`, seed, count: c.site }) })),
    { name: 'ood', role: 'ood', scenarios: scenarioSet({ name: 'ood', seed, count: c.ood }) },
  ];
}

export type GateApplicability = { applicable: true } | { applicable: false; reason: string };

/**
 * Whether a round's adapter schema is the reference policy's LoRA layout: every tensor is
 * base_model.model.<fc1|fc2|mean_head>.lora_<A|B>.weight with A [r, in], B [out, r] of that layer.
 */
export function referenceGateApplicability(options: { tensors: ReadonlyArray<{ name: string; shape: readonly number[] }>; shapes?: PolicyShapes }): GateApplicability {
  const shapes = layerShapes(options.shapes ?? REFERENCE_SHAPES);
  const byName = new Map(options.tensors.map((t) => [t.name, t.shape]));
  const known = new Set<string>();
  let layers = 0;
  for (const layer of POLICY_LAYERS) {
    const a = loraTensorName(layer, 'A');
    const b = loraTensorName(layer, 'B');
    known.add(a).add(b);
    const sa = byName.get(a);
    const sb = byName.get(b);
    if (!sa && !sb) continue;
    if (!sa || !sb) return { applicable: false, reason: `layer ${layer} has only one of lora_A / lora_B` };
    const { inFeatures, outFeatures } = shapes[layer];
    if (sa.length !== 2 || sb.length !== 2 || sa[1] !== inFeatures || sb[0] !== outFeatures || sa[0] !== sb[1])
      return { applicable: false, reason: `layer ${layer}: lora_A [${sa}] / lora_B [${sb}] do not fit the reference policy's [${outFeatures}, ${inFeatures}] layer` };
    layers++;
  }
  const foreign = options.tensors.find((t) => !known.has(t.name));
  if (foreign)
    return {
      applicable: false,
      reason: `the adapter is not a LoRA adapter of the reference policy (tensor ${foreign.name} is not one of its layers ${POLICY_LAYERS.join(', ')}); no evaluation model for this schema is registered, so the reference gate cannot evaluate it`,
    };
  if (layers === 0) return { applicable: false, reason: 'the adapter has no LoRA layer of the reference policy' };
  return { applicable: true };
}

/** The policy's LoRA inputs of an adapter (shape checks against the layer sizes only). */
export function loraOf(options: { adapter: PeftAdapter; shapes?: PolicyShapes }): PolicyLora {
  // loraFromAdapter reads only the layer sizes of the weights.
  const sizes = { layers: layerShapes(options.shapes ?? REFERENCE_SHAPES) } as unknown as PolicyWeights;
  return loraFromAdapter({ adapter: options.adapter, weights: sizes });
}

export interface GateMetric {
  name: string;
  value: number;
}

export interface GateReport {
  format: typeof GATE_REPORT_FORMAT;
  evaluator: string;
  /** What ran the model, e.g. "onnxruntime-web/wasm"; null when nothing ran. */
  runtime: string | null;
  applicable: boolean;
  /** Why the gate is not applicable; null when it is. */
  reason: string | null;
  roundId: string;
  candidateAdapterSha256: string;
  scenarioSeed: string | null;
  counts: GateSetCounts | null;
  thresholds: GateThresholds;
  /** Per-set results with every scenario (success, violations, contacts, forces against limits), KL, baseline. */
  evaluation: EvaluationReport | null;
  verdict: GateVerdict | null;
  /** Summary carried by the signed release manifest. */
  metrics: GateMetric[];
}

/** name[set] -> value for every measured check, plus the deployed policy's success per set and the peak forces. */
export function gateMetricSummary(options: { evaluation: EvaluationReport; verdict: GateVerdict }): GateMetric[] {
  const out: GateMetric[] = [];
  for (const c of options.verdict.checks) if (c.value !== null && Number.isFinite(c.value)) out.push({ name: c.set ? `${c.name}[${c.set}]` : c.name, value: c.value });
  for (const s of options.evaluation.baseline?.sets ?? []) out.push({ name: `deployed_success_rate[${s.name}]`, value: s.successRate });
  for (const s of options.evaluation.sets) out.push({ name: `peak_force_n[${s.name}]`, value: s.peakForceN });
  return out;
}

/** SHA-256 of the report's canonical JSON (keys sorted, core/audit/leaf.ts canonicalJson), hex. */
export function gateReportSha256(options: { report: GateReport }): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(options.report))));
}

/** The report of a round whose adapter the reference gate cannot evaluate. */
export function notApplicableGateReport(options: { roundId: string; candidateAdapterSha256: string; reason: string; thresholds?: Partial<GateThresholds> }): GateReport {
  return {
    format: GATE_REPORT_FORMAT,
    evaluator: REFERENCE_GATE_EVALUATOR,
    runtime: null,
    applicable: false,
    reason: options.reason,
    roundId: options.roundId,
    candidateAdapterSha256: options.candidateAdapterSha256,
    scenarioSeed: null,
    counts: null,
    thresholds: resolveThresholds({ overrides: options.thresholds }),
    evaluation: null,
    verdict: null,
    metrics: [],
  };
}

/**
 * Runs the reference gate with the given runners (deployed = the round's start adapter, candidate = the
 * reviewed adapter). Use runReferenceGateOnnx unless you already hold runners (tests with the TS runner).
 */
export async function runReferenceGate(options: {
  roundId: string;
  candidateAdapterSha256: string;
  deployed: PolicyRunner;
  candidate: PolicyRunner;
  runtime: string;
  counts?: Partial<GateSetCounts>;
  seed?: Uint8Array;
  thresholds?: Partial<GateThresholds>;
  onProgress?: (done: number, total: number, phase: string) => void;
}): Promise<GateReport> {
  const counts = { ...DEFAULT_GATE_COUNTS, ...options.counts };
  const seed = options.seed ?? EVALUATION_SEED;
  const sets = referenceGateSets({ counts, seed });
  const evaluation = await evaluatePolicy({ sets, candidate: options.candidate, deployed: options.deployed, onProgress: options.onProgress });
  const verdict = gateVerdict({ report: evaluation, thresholds: options.thresholds });
  return {
    format: GATE_REPORT_FORMAT,
    evaluator: REFERENCE_GATE_EVALUATOR,
    runtime: options.runtime,
    applicable: true,
    reason: null,
    roundId: options.roundId,
    candidateAdapterSha256: options.candidateAdapterSha256,
    scenarioSeed: bytesToHex(seed),
    counts,
    thresholds: verdict.thresholds,
    evaluation,
    verdict,
    metrics: gateMetricSummary({ evaluation, verdict }),
  };
}

/**
 * The gate as the review runs it, in the CLI and in the PWA's worker: applicability from the round's
 * tensor schema, then one ONNX session of the reference policy (`model`, run by the injected `ort`:
 * onnxruntime-web, WASM by default; the PWA's worker passes WebGPU where the browser has an adapter)
 * with the deployed and the candidate LoRA inputs.
 */
export async function runReferenceGateOnnx(options: {
  ort: OrtModuleLike;
  model: Uint8Array;
  roundId: string;
  tensors: ReadonlyArray<{ name: string; shape: readonly number[] }>;
  deployed: PeftAdapter;
  candidate: PeftAdapter;
  candidateAdapterSha256: string;
  runtime?: string;
  /** onnxruntime execution providers (default ['wasm']); `runtime` must name the one that runs. */
  executionProviders?: readonly string[];
  counts?: Partial<GateSetCounts>;
  seed?: Uint8Array;
  thresholds?: Partial<GateThresholds>;
  onProgress?: (done: number, total: number, phase: string) => void;
}): Promise<GateReport> {
  const applicability = referenceGateApplicability({ tensors: options.tensors });
  if (!applicability.applicable)
    return notApplicableGateReport({ roundId: options.roundId, candidateAdapterSha256: options.candidateAdapterSha256, reason: applicability.reason, thresholds: options.thresholds });
  const session = await createOnnxPolicySession({ ort: options.ort, model: options.model, executionProviders: options.executionProviders });
  try {
    const shapes = REFERENCE_SHAPES;
    return await runReferenceGate({
      roundId: options.roundId,
      candidateAdapterSha256: options.candidateAdapterSha256,
      deployed: onnxPolicyRunner({ ort: options.ort, session, shapes, lora: loraOf({ adapter: options.deployed }) }),
      candidate: onnxPolicyRunner({ ort: options.ort, session, shapes, lora: loraOf({ adapter: options.candidate }) }),
      runtime: options.runtime ?? 'onnxruntime-web/wasm',
      counts: options.counts,
      seed: options.seed,
      thresholds: options.thresholds,
      onProgress: options.onProgress,
    });
  } finally {
    await session.release?.();
  }
}

/** One line per failed check, for errors and the UI. */
export function describeFailedGate(options: { report: GateReport }): string {
  const v = options.report.verdict;
  if (!v) return options.report.reason ?? 'no verdict';
  return v.checks
    .filter((c) => !c.pass)
    .map((c) => `${c.set ? `${c.name}[${c.set}]` : c.name}: ${c.detail}`)
    .join('; ');
}

/**
 * The `gate` field of a release manifest from a review's gate report. A failed gate needs the officer's
 * override reason (GateFailedError otherwise, naming every failed check); a passed gate takes none.
 */
export function releaseGateOf(options: { report: GateReport; candidateAdapterSha256?: string; override?: { reason: string } | null }): ReleaseGate {
  const { report } = options;
  if (report.format !== GATE_REPORT_FORMAT) throw new TypeError(`"report" expected ${GATE_REPORT_FORMAT}, got ${String(report.format)}`);
  if (options.candidateAdapterSha256 !== undefined && options.candidateAdapterSha256 !== report.candidateAdapterSha256)
    throw new GateFailedError('the gate report is for another candidate adapter: review the round again', { report: report.candidateAdapterSha256, candidate: options.candidateAdapterSha256 });
  const reason = options.override?.reason?.trim() ?? '';
  const reportSha256 = sha256(utf8ToBytes(canonicalJson(report)));
  const evaluator = report.runtime ? `${report.evaluator} ${report.runtime}` : report.evaluator;
  if (!report.applicable || !report.verdict)
    return { status: 'not_applicable', evaluator, reportSha256, detail: report.reason ?? '', failed: [], metrics: [], override: reason ? { reason } : null };
  if (report.verdict.pass) {
    if (reason) throw new RangeError('the gate passed: there is nothing to override');
    return { status: 'passed', evaluator, reportSha256, detail: '', failed: [], metrics: report.metrics, override: null };
  }
  if (!reason)
    throw new GateFailedError(`the evaluation gate failed (${report.verdict.failed.join(', ')}); the release is blocked unless the officer signs an override with a reason`, {
      failed: report.verdict.failed,
    });
  return { status: 'failed', evaluator, reportSha256, detail: describeFailedGate({ report }).slice(0, 2000), failed: report.verdict.failed, metrics: report.metrics, override: { reason } };
}
