// Canary rollout, pure: deterministic bucketing of a fleet's robots for a release, and the rollback
// triggers over the canary robots' telemetry (the original design's defaults: error rate > 0.05,
// p99 latency > 500 ms, more than 3 safety events; configurable).
//
// bucket(release, robot) = first 53 bits of SHA-256("tensorguard/canary/v1" || 0x00 || releaseId ||
// 0x00 || robotId) / 2^53, uniform in [0, 1). A robot is in the canary of a release when its bucket is
// among the ceil(fraction * n) smallest of the fleet's robots (at least one robot when fraction > 0), so
// every party (server, officer, robot) computes the same set from public ids, and each release draws a
// fresh set.
import { sha256 } from '../codec/fingerprint.ts';
import { utf8ToBytes, concatBytes } from '../bytes.ts';
import { describe, expectFinite } from '../errors.ts';

export function canaryBucket(options: { releaseId: string; robotId: string }): number {
  const { releaseId, robotId } = options;
  if (typeof releaseId !== 'string' || releaseId.length === 0) throw new TypeError(`"releaseId" expected non-empty string, got ${describe(releaseId)}`);
  if (typeof robotId !== 'string' || robotId.length === 0) throw new TypeError(`"robotId" expected non-empty string, got ${describe(robotId)}`);
  const h = sha256(concatBytes(utf8ToBytes('tensorguard/canary/v1'), new Uint8Array([0]), utf8ToBytes(releaseId), new Uint8Array([0]), utf8ToBytes(robotId)));
  const view = new DataView(h.buffer, h.byteOffset, 8);
  return (view.getUint32(0) * 2 ** 21 + (view.getUint32(4) >>> 11)) / 2 ** 53;
}

/** The canary robots of a release: the ceil(fraction * n) robots with the smallest buckets (ties by id). */
export function selectCanaryRobots(options: { releaseId: string; robotIds: readonly string[]; fraction: number }): string[] {
  const { releaseId, robotIds } = options;
  const fraction = expectFinite('fraction', options.fraction, 0, 1);
  if (!Array.isArray(robotIds)) throw new TypeError(`"robotIds" expected array, got ${describe(robotIds)}`);
  const unique = [...new Set(robotIds)];
  if (fraction === 0 || unique.length === 0) return [];
  const count = Math.min(unique.length, Math.max(1, Math.ceil(fraction * unique.length)));
  return unique
    .map((robotId) => ({ robotId, bucket: canaryBucket({ releaseId, robotId }) }))
    .sort((a, b) => a.bucket - b.bucket || (a.robotId < b.robotId ? -1 : 1))
    .slice(0, count)
    .map((x) => x.robotId)
    .sort();
}

export interface CanaryTelemetry {
  robotId: string;
  /** Episodes or commands run with the release. */
  runs: number;
  errors: number;
  latencyP99Ms: number;
  safetyEvents: number;
}

export interface RollbackThresholds {
  maxErrorRate: number;
  maxP99Ms: number;
  maxSafetyEvents: number;
}

export const DEFAULT_ROLLBACK_THRESHOLDS: Readonly<RollbackThresholds> = Object.freeze({ maxErrorRate: 0.05, maxP99Ms: 500, maxSafetyEvents: 3 });

export interface RollbackVerdict {
  rollback: boolean;
  triggers: Array<{ name: 'error_rate' | 'latency_p99' | 'safety_events'; value: number; threshold: number; robots: string[] }>;
  totals: { robots: number; runs: number; errors: number; errorRate: number; worstP99Ms: number; safetyEvents: number };
}

/** Fleet-level triggers over the canary's reports: overall error rate, worst p99, total safety events. */
export function rollbackTriggers(options: { telemetry: readonly CanaryTelemetry[]; thresholds?: Partial<RollbackThresholds> }): RollbackVerdict {
  const t = { ...DEFAULT_ROLLBACK_THRESHOLDS, ...options.thresholds };
  const rows = options.telemetry;
  if (!Array.isArray(rows)) throw new TypeError(`"telemetry" expected array, got ${describe(rows)}`);
  rows.forEach((r, i) => {
    for (const k of ['runs', 'errors', 'latencyP99Ms', 'safetyEvents'] as const) expectFinite(`telemetry[${i}].${k}`, r[k], 0);
    if (r.errors > r.runs) throw new RangeError(`"telemetry[${i}].errors" expected at most runs (${r.runs}), got ${r.errors}`);
  });
  const runs = rows.reduce((s, r) => s + r.runs, 0);
  const errors = rows.reduce((s, r) => s + r.errors, 0);
  const safetyEvents = rows.reduce((s, r) => s + r.safetyEvents, 0);
  const worstP99Ms = rows.reduce((m, r) => Math.max(m, r.latencyP99Ms), 0);
  const errorRate = runs > 0 ? errors / runs : 0;
  const triggers: RollbackVerdict['triggers'] = [];
  if (errorRate > t.maxErrorRate) triggers.push({ name: 'error_rate', value: errorRate, threshold: t.maxErrorRate, robots: rows.filter((r) => r.runs > 0 && r.errors / r.runs > t.maxErrorRate).map((r) => r.robotId) });
  if (worstP99Ms > t.maxP99Ms) triggers.push({ name: 'latency_p99', value: worstP99Ms, threshold: t.maxP99Ms, robots: rows.filter((r) => r.latencyP99Ms > t.maxP99Ms).map((r) => r.robotId) });
  if (safetyEvents > t.maxSafetyEvents) triggers.push({ name: 'safety_events', value: safetyEvents, threshold: t.maxSafetyEvents, robots: rows.filter((r) => r.safetyEvents > 0).map((r) => r.robotId) });
  return { rollback: triggers.length > 0, triggers, totals: { robots: rows.length, runs, errors, errorRate, worstP99Ms, safetyEvents } };
}
