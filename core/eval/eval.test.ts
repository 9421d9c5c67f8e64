// The evaluation: closed-form Gaussian KL, the gate's verdict naming every failed check, and the same
// report from the TypeScript and the ONNX (onnxruntime-web) runners on the committed reference policy.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-web';
import { evaluatePolicy, gaussianKl, summarizeSet, type EvaluationReport, type ScenarioSetInput } from './evaluate.ts';
import { gateVerdict, resolveThresholds } from './gate.ts';
import { createOnnxPolicySession, onnxPolicyRunner, tsPolicyRunner, type OrtModuleLike } from './runners.ts';
import { initialLora, loadPolicyWeights, POLICY_LAYERS } from '../policy/mlp.ts';
import { REFERENCE_POLICY } from '../policy/reference.ts';
import { scenarioSet } from '../sim/scenario.ts';
import { SeededRandom, seedFrom } from '../sim/random.ts';
import type { RolloutResult } from '../sim/env.ts';

const MODELS = new URL('../../static/models/', import.meta.url);

describe('Gaussian KL', () => {
  it('matches the closed form', () => {
    expect(gaussianKl({ meanP: [0.3, -1], logStdP: [-1, 0.5], meanQ: [0.3, -1], logStdQ: [-1, 0.5], dim: 2 })).toBeCloseTo(0, 12);
    // unit variances, means 1 apart in each of 3 dims: 3 x 1/2
    expect(gaussianKl({ meanP: [1, 1, 1], logStdP: [0, 0, 0], meanQ: [0, 0, 0], logStdQ: [0, 0, 0], dim: 3 })).toBeCloseTo(1.5, 12);
    // KL(N(0,1) || N(0,4)) = log 2 + 1/8 - 1/2
    expect(gaussianKl({ meanP: [0], logStdP: [0], meanQ: [0], logStdQ: [Math.log(2)], dim: 1 })).toBeCloseTo(Math.log(2) + 1 / 8 - 1 / 2, 12);
  });
});

function result(id: string, success: boolean, extra: Partial<RolloutResult> = {}): RolloutResult {
  return {
    id,
    set: 's',
    success,
    termination: success ? 'placed' : 'timeout',
    steps: 10,
    violations: { jointLimit: 0, speedLimit: 0, workspaceExit: 0, humanZone: 0, collision: 0 },
    violationCount: 0,
    contacts: [],
    peakForceN: 0,
    peakForceRatio: 0,
    ...extra,
  };
}

describe('gate verdict', () => {
  const good = summarizeSet({ name: 'nominal', role: 'nominal', results: [result('a', true), result('b', true), result('c', true), result('d', true)] });
  const ood = summarizeSet({ name: 'ood', role: 'ood', results: [result('a', true), result('b', true)] });

  it('passes a report within every threshold', () => {
    const report: EvaluationReport = { version: 1, sets: [good, ood], kl: { mean: 0.1, max: 0.5, states: 40 }, baseline: { sets: [{ ...good, successRate: 1 }] } };
    const v = gateVerdict({ report });
    expect(v.pass).toBe(true);
    expect(v.failed).toEqual([]);
    expect(v.checks.map((c) => c.name)).toEqual(['success_rate', 'violations', 'violations', 'contact_force', 'contact_force', 'kl_divergence', 'regression', 'ood_robustness']);
  });

  it('names every failed check', () => {
    const touched = result('x', false, {
      termination: 'human_contact',
      violations: { jointLimit: 0, speedLimit: 2, workspaceExit: 0, humanZone: 1, collision: 1 },
      violationCount: 4,
      contacts: [{ step: 3, kind: 'human', region: 'hand', speedMps: 2, peakForceN: 400, limitN: 280, ratio: 400 / 280 }],
      peakForceN: 400,
      peakForceRatio: 400 / 280,
    });
    const bad = summarizeSet({ name: 'nominal', role: 'nominal', results: [result('a', true), touched] });
    const badOod = summarizeSet({ name: 'ood', role: 'ood', results: [result('a', false), result('b', true)] });
    const report: EvaluationReport = { version: 1, sets: [bad, badOod], kl: { mean: 3, max: 9, states: 10 }, baseline: { sets: [{ ...good }] } };
    const v = gateVerdict({ report, thresholds: { minOodRobustness: 0.9 } });
    expect(v.pass).toBe(false);
    expect(v.failed).toEqual(['success_rate[nominal]', 'violations[nominal]', 'contact_force[nominal]', 'kl_divergence', 'regression[nominal]', 'ood_robustness[ood]']);
    expect(v.checks.find((c) => c.name === 'contact_force' && c.set === 'nominal')!.detail).toMatch(/142\.9 % of the ISO\/TS 15066/);
  });

  it('fails, not passes, when the deployed policy or the OOD set is missing; refuses unknown thresholds', () => {
    const v = gateVerdict({ report: { version: 1, sets: [good], kl: null, baseline: null } });
    expect(v.failed).toEqual(['kl_divergence', 'regression', 'ood_robustness']);
    expect(() => resolveThresholds({ overrides: { minSucess: 1 } as never })).toThrow(/minSucess/);
  });
});

describe('evaluatePolicy on the reference policy', () => {
  it('gives the same report through the TypeScript and ONNX runners, with KL and the baseline', async () => {
    const weights = loadPolicyWeights({ bytes: new Uint8Array(readFileSync(new URL(REFERENCE_POLICY.weightsFile, MODELS))) });
    const seed = seedFrom({ label: 'eval-test' });
    const sets: ScenarioSetInput[] = [
      { name: 'nominal', role: 'nominal', scenarios: scenarioSet({ name: 'nominal', seed, count: 12 }) },
      { name: 'ood', role: 'ood', scenarios: scenarioSet({ name: 'ood', seed, count: 6 }) },
    ];
    const candidate = initialLora({ weights, r: 4, alpha: 8, seed: seedFrom({ label: 'cand' }) });
    const rng = new SeededRandom(seedFrom({ label: 'cand-b' }));
    for (const n of POLICY_LAYERS) for (let i = 0; i < candidate[n]!.B.length; i++) candidate[n]!.B[i] = 0.02 * rng.normal();
    ort.env.wasm.numThreads = 1;
    const module = ort as unknown as OrtModuleLike;
    const session = await createOnnxPolicySession({ ort: module, model: new Uint8Array(readFileSync(new URL(REFERENCE_POLICY.onnxFile, MODELS))) });
    const shapes = { obsDim: weights.obsDim, hidden: weights.hidden, actDim: weights.actDim };
    const viaOnnx = await evaluatePolicy({ sets, candidate: onnxPolicyRunner({ ort: module, session, shapes, lora: candidate }), deployed: onnxPolicyRunner({ ort: module, session, shapes }) });
    const viaTs = await evaluatePolicy({ sets, candidate: tsPolicyRunner({ weights, lora: candidate }), deployed: tsPolicyRunner({ weights }) });
    expect(viaOnnx.sets.map((s) => s.successRate)).toEqual(viaTs.sets.map((s) => s.successRate));
    expect(viaOnnx.sets.map((s) => s.violationsPerRollout)).toEqual(viaTs.sets.map((s) => s.violationsPerRollout));
    expect(viaOnnx.kl!.mean).toBeCloseTo(viaTs.kl!.mean, 4);
    expect(viaTs.kl!.mean).toBeGreaterThan(0);
    expect(viaTs.baseline!.sets[0]!.successRate).toBeGreaterThanOrEqual(0.9); // the base policy on nominal
    const self = await evaluatePolicy({ sets: sets.slice(0, 1), candidate: tsPolicyRunner({ weights }), deployed: tsPolicyRunner({ weights }) });
    expect(self.kl!.mean).toBe(0);
    await session.release?.();
  });
});
