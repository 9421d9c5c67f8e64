// Runs a policy over scenario sets and reports what the gate needs: per-scenario results, success
// rates, constraint violations, peak contact forces against the ISO/TS 15066 limits, the KL divergence
// from the deployed policy over the states the candidate visits, and the deployed policy's own results
// on the same scenarios (the baseline for the regression check).
//
// All rollouts of a set advance in lockstep, so each time step is ONE batched `act` call (one ONNX
// session.run for the whole set). Actions are the Gaussian head's mean (deterministic evaluation).
//
// KL(candidate || deployed) per state for diagonal Gaussians, closed form:
//   sum_j [ log s_d,j - log s_c,j + (s_c,j^2 + (m_c,j - m_d,j)^2) / (2 s_d,j^2) - 1/2 ]
import { ACT_DIM, OBS_DIM, ReferenceTaskEnv, type RolloutResult, type Violations } from '../sim/env.ts';
import type { Scenario } from '../sim/scenario.ts';
import type { ActionDistribution } from '../policy/mlp.ts';
import type { PolicyRunner } from './runners.ts';
import { describe } from '../errors.ts';

export const EVALUATION_REPORT_VERSION = 1;

export type SetRole = 'nominal' | 'site' | 'ood';

export interface ScenarioSetInput {
  name: string;
  role: SetRole;
  scenarios: Scenario[];
}

export interface ForceRecord {
  scenario: string;
  kind: 'obstacle' | 'human';
  region: string | null;
  speedMps: number;
  peakForceN: number;
  limitN: number | null;
  ratio: number | null;
}

export interface SetSummary {
  name: string;
  role: SetRole;
  count: number;
  successRate: number;
  violationsPerRollout: number;
  violations: Violations;
  contacts: number;
  humanContacts: number;
  /** Highest peak force over all contacts, N. */
  peakForceN: number;
  /** Highest peak force / ISO/TS 15066 transient limit over contacts with people (0 if none). */
  peakForceRatio: number;
}

export interface SetReport extends SetSummary {
  forces: ForceRecord[];
  results: RolloutResult[];
}

export interface EvaluationReport {
  version: number;
  sets: SetReport[];
  /** KL(candidate || deployed) averaged over the candidate's visited states; null without a deployed policy. */
  kl: { mean: number; max: number; states: number } | null;
  /** The deployed policy on the same scenarios; null without one. */
  baseline: { sets: SetSummary[] } | null;
}

export function gaussianKl(options: { meanP: ArrayLike<number>; logStdP: ArrayLike<number>; meanQ: ArrayLike<number>; logStdQ: ArrayLike<number>; offset?: number; dim: number }): number {
  const { meanP, logStdP, meanQ, logStdQ, dim } = options;
  const o = options.offset ?? 0;
  let kl = 0;
  for (let j = 0; j < dim; j++) {
    const lp = logStdP[o + j]!;
    const lq = logStdQ[o + j]!;
    const vp = Math.exp(2 * lp);
    const vq = Math.exp(2 * lq);
    const d = meanP[o + j]! - meanQ[o + j]!;
    kl += lq - lp + (vp + d * d) / (2 * vq) - 0.5;
  }
  return kl;
}

async function runSet(options: {
  scenarios: Scenario[];
  policy: PolicyRunner;
  deployed?: PolicyRunner;
  kl?: { sum: number; max: number; states: number };
}): Promise<RolloutResult[]> {
  const { scenarios, policy, deployed, kl } = options;
  const envs = scenarios.map((s) => new ReferenceTaskEnv(s));
  for (;;) {
    const active = envs.filter((e) => !e.done);
    if (active.length === 0) break;
    const obs = new Float32Array(active.length * OBS_DIM);
    active.forEach((e, i) => obs.set(e.observe(), i * OBS_DIM));
    const dist = await policy.act({ obs, batch: active.length });
    checkDistribution(dist, active.length);
    if (deployed && kl) {
      const ref = await deployed.act({ obs, batch: active.length });
      checkDistribution(ref, active.length);
      for (let i = 0; i < active.length; i++) {
        const v = gaussianKl({ meanP: dist.mean, logStdP: dist.logStd, meanQ: ref.mean, logStdQ: ref.logStd, offset: i * ACT_DIM, dim: ACT_DIM });
        kl.sum += v;
        kl.max = Math.max(kl.max, v);
        kl.states++;
      }
    }
    active.forEach((e, i) => e.act(dist.mean.subarray(i * ACT_DIM, (i + 1) * ACT_DIM)));
  }
  return envs.map((e) => e.result());
}

function checkDistribution(d: ActionDistribution, batch: number): void {
  if (!d || !(d.mean instanceof Float32Array) || !(d.logStd instanceof Float32Array) || d.mean.length !== batch * ACT_DIM || d.logStd.length !== batch * ACT_DIM)
    throw new TypeError(`policy runner: expected {mean, logStd} Float32Array(${batch * ACT_DIM}), got ${describe(d)}`);
}

export function summarizeSet(options: { name: string; role: SetRole; results: RolloutResult[] }): SetReport {
  const { name, role, results } = options;
  const violations: Violations = { jointLimit: 0, speedLimit: 0, workspaceExit: 0, humanZone: 0, collision: 0 };
  const forces: ForceRecord[] = [];
  let success = 0;
  let total = 0;
  let peakForceN = 0;
  let peakForceRatio = 0;
  for (const r of results) {
    if (r.success) success++;
    for (const k of Object.keys(violations) as Array<keyof Violations>) violations[k] += r.violations[k];
    total += r.violationCount;
    for (const c of r.contacts) {
      forces.push({ scenario: r.id, kind: c.kind, region: c.region, speedMps: c.speedMps, peakForceN: c.peakForceN, limitN: c.limitN, ratio: c.ratio });
      peakForceN = Math.max(peakForceN, c.peakForceN);
      if (c.ratio !== null) peakForceRatio = Math.max(peakForceRatio, c.ratio);
    }
  }
  const n = Math.max(1, results.length);
  return {
    name,
    role,
    count: results.length,
    successRate: success / n,
    violationsPerRollout: total / n,
    violations,
    contacts: forces.length,
    humanContacts: forces.filter((f) => f.kind === 'human').length,
    peakForceN,
    peakForceRatio,
    forces,
    results,
  };
}

function summaryOnly(s: SetReport): SetSummary {
  const { forces: _f, results: _r, ...rest } = s;
  return rest;
}

export async function evaluatePolicy(options: {
  sets: ScenarioSetInput[];
  candidate: PolicyRunner;
  /** The policy robots run now: KL reference and regression baseline. */
  deployed?: PolicyRunner;
  onProgress?: (done: number, total: number, phase: 'candidate' | 'baseline') => void;
}): Promise<EvaluationReport> {
  const { sets, candidate, deployed } = options;
  if (!Array.isArray(sets) || sets.length === 0) throw new TypeError(`"sets" expected non-empty array, got ${describe(sets)}`);
  const total = sets.length * (deployed ? 2 : 1);
  let done = 0;
  const kl = { sum: 0, max: 0, states: 0 };
  const reports: SetReport[] = [];
  for (const set of sets) {
    const results = await runSet({ scenarios: set.scenarios, policy: candidate, deployed, kl: deployed ? kl : undefined });
    reports.push(summarizeSet({ name: set.name, role: set.role, results }));
    options.onProgress?.(++done, total, 'candidate');
  }
  let baseline: EvaluationReport['baseline'] = null;
  if (deployed) {
    const summaries: SetSummary[] = [];
    for (const set of sets) {
      const results = await runSet({ scenarios: set.scenarios, policy: deployed });
      summaries.push(summaryOnly(summarizeSet({ name: set.name, role: set.role, results })));
      options.onProgress?.(++done, total, 'baseline');
    }
    baseline = { sets: summaries };
  }
  return {
    version: EVALUATION_REPORT_VERSION,
    sets: reports,
    kl: deployed ? { mean: kl.states ? kl.sum / kl.states : 0, max: kl.max, states: kl.states } : null,
    baseline,
  };
}
