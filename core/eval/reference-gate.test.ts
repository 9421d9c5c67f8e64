// The gate inside the review: applicability from the adapter schema (never a made-up number), the same
// verdict through the ONNX session the CLI and the PWA worker use and through the TypeScript runner, and
// the release's gate field (a failed gate needs the officer's override reason).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { adapterSchema } from '../peft/adapter.ts';
import { adapterFromLora, initialLora, loadPolicyWeights, POLICY_LAYERS } from '../policy/mlp.ts';
import { REFERENCE_POLICY } from '../policy/reference.ts';
import { SeededRandom, seedFrom } from '../sim/random.ts';
import { tsPolicyRunner, type OrtModuleLike } from './runners.ts';
import {
  GateFailedError,
  gateReportSha256,
  loraOf,
  referenceGateApplicability,
  releaseGateOf,
  runReferenceGate,
  runReferenceGateOnnx,
} from './reference-gate.ts';

const MODELS = new URL('../../static/models/', import.meta.url);
const weights = loadPolicyWeights({ bytes: new Uint8Array(readFileSync(new URL(REFERENCE_POLICY.weightsFile, MODELS))) });
const counts = { nominal: 4, site: 3, ood: 3 };
const deployed = adapterFromLora({ lora: initialLora({ weights, r: 4, alpha: 8, seed: seedFrom({ label: 'gate-test-a' }) }), r: 4, alpha: 8 });
const candidateLora = initialLora({ weights, r: 4, alpha: 8, seed: seedFrom({ label: 'gate-test-a' }) });
const rng = new SeededRandom(seedFrom({ label: 'gate-test-b' }));
for (const n of POLICY_LAYERS) for (let i = 0; i < candidateLora[n]!.B.length; i++) candidateLora[n]!.B[i] = 0.05 * rng.normal();
const candidate = adapterFromLora({ lora: candidateLora, r: 4, alpha: 8 });

describe('reference gate applicability', () => {
  it('applies to the reference policy LoRA layout only, and says why not', () => {
    expect(referenceGateApplicability({ tensors: adapterSchema({ adapter: deployed }) })).toEqual({ applicable: true });
    const llama = referenceGateApplicability({ tensors: [{ name: 'base_model.model.layers.0.q_proj.lora_A.weight', shape: [8, 4096] }] });
    expect(llama.applicable).toBe(false);
    expect(!llama.applicable && llama.reason).toMatch(/not a LoRA adapter of the reference policy/);
    const wrongShape = referenceGateApplicability({ tensors: [{ name: 'base_model.model.fc1.lora_A.weight', shape: [4, 17] }, { name: 'base_model.model.fc1.lora_B.weight', shape: [64, 4] }] });
    expect(!wrongShape.applicable && wrongShape.reason).toMatch(/fc1/);
  });

  it('reports "not applicable" without any number for another schema', async () => {
    const report = await runReferenceGateOnnx({
      ort: ort as unknown as OrtModuleLike, model: new Uint8Array(0), roundId: 'r', tensors: [{ name: 'x.lora_A.weight', shape: [2, 2] }],
      deployed, candidate, candidateAdapterSha256: 'ab',
    });
    expect(report.applicable).toBe(false);
    expect(report.evaluation).toBeNull();
    expect(report.verdict).toBeNull();
    expect(report.metrics).toEqual([]);
    const gate = releaseGateOf({ report });
    expect(gate.status).toBe('not_applicable');
    expect(gate.detail).toMatch(/reference policy/);
  });
});

describe('reference gate on the ONNX session (the CLI and the PWA worker path)', () => {
  it('matches the TypeScript runner and names every failed check; a failure needs an override', async () => {
    ort.env.wasm.numThreads = 1;
    const viaOnnx = await runReferenceGateOnnx({
      ort: ort as unknown as OrtModuleLike,
      model: new Uint8Array(readFileSync(new URL(REFERENCE_POLICY.onnxFile, MODELS))),
      roundId: 'r-1', tensors: adapterSchema({ adapter: candidate }), deployed, candidate, candidateAdapterSha256: 'cd', counts,
    });
    const viaTs = await runReferenceGate({
      roundId: 'r-1', candidateAdapterSha256: 'cd', runtime: 'ts', counts,
      deployed: tsPolicyRunner({ weights, lora: loraOf({ adapter: deployed }) }),
      candidate: tsPolicyRunner({ weights, lora: loraOf({ adapter: candidate }) }),
    });
    expect(viaOnnx.applicable).toBe(true);
    expect(viaOnnx.evaluation!.sets.map((s) => s.name)).toEqual(['nominal', 'site:site-a', 'site:site-b', 'site:site-c', 'ood']);
    expect(viaOnnx.evaluation!.sets.map((s) => s.successRate)).toEqual(viaTs.evaluation!.sets.map((s) => s.successRate));
    expect(viaOnnx.verdict!.failed).toEqual(viaTs.verdict!.failed);
    expect(viaOnnx.evaluation!.sets[0]!.results).toHaveLength(4); // per-scenario results are in the report
    // The base policy cannot do site C's reversed flow: the gate fails and names the check.
    expect(viaOnnx.verdict!.pass).toBe(false);
    expect(viaOnnx.verdict!.failed).toContain('success_rate[site:site-c]');
    expect(viaOnnx.metrics.find((m) => m.name === 'kl_divergence')!.value).toBeGreaterThan(0);
    expect(() => releaseGateOf({ report: viaOnnx })).toThrow(GateFailedError);
    expect(() => releaseGateOf({ report: viaOnnx, candidateAdapterSha256: 'other', override: { reason: 'x' } })).toThrow(/another candidate/);
    const gate = releaseGateOf({ report: viaOnnx, override: { reason: 'site C pilot, canary only' } });
    expect(gate.status).toBe('failed');
    expect(gate.failed).toEqual(viaOnnx.verdict!.failed);
    expect(gate.override).toEqual({ reason: 'site C pilot, canary only' });
    expect(Buffer.from(gate.reportSha256).toString('hex')).toBe(gateReportSha256({ report: viaOnnx }));
    // A gate that passes (thresholds relaxed) needs and takes no override.
    const relaxed = await runReferenceGate({
      roundId: 'r-1', candidateAdapterSha256: 'cd', runtime: 'ts', counts, thresholds: { minSuccessRate: 0, maxViolationsPerRollout: 1000, maxKl: 1000, maxRegression: 1, minOodRobustness: 0, maxForceRatio: 100 },
      deployed: tsPolicyRunner({ weights, lora: loraOf({ adapter: deployed }) }),
      candidate: tsPolicyRunner({ weights, lora: loraOf({ adapter: candidate }) }),
    });
    expect(releaseGateOf({ report: relaxed }).status).toBe('passed');
    expect(() => releaseGateOf({ report: relaxed, override: { reason: 'x' } })).toThrow(/nothing to override/);
  }, 60_000);
});
