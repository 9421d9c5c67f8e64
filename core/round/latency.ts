// The round latency breakdown, pure: which stages a round has, who may report which, how a report is
// validated, and the statistics the round page charts.
//
//   robot   train -> compress -> encrypt -> upload          (per robot, measured by `robot train`/`push`)
//   server  aggregate                                        (the finalization, measured by the server)
//   officer decrypt -> review                                (measured by `officer review` or the PWA)
//   robot   apply                                            (per robot, measured by `robot pull`)
//
// Reports arrive as { stages: [{ stage, durationMs }] } from one actor (server/routes/timings.ts); the
// server stores one row per (round, actor, stage) and hands the rows to `latencyBreakdown`, which gives
// per stage count, p50, p95, max and total (nearest-rank percentiles), and a critical-path estimate:
// the slowest actor of each phase, phases one after another (see `criticalPath`).

export const LATENCY_STAGES = ['train', 'compress', 'encrypt', 'upload', 'aggregate', 'decrypt', 'review', 'apply'] as const;
export type LatencyStage = (typeof LATENCY_STAGES)[number];

export const STAGE_ACTOR_KINDS = ['robot', 'officer', 'server'] as const;
export type StageActorKind = (typeof STAGE_ACTOR_KINDS)[number];

/** The stages each kind of actor measures (and may report). */
export const STAGES_BY_ACTOR: Readonly<Record<StageActorKind, readonly LatencyStage[]>> = Object.freeze({
  robot: Object.freeze(['train', 'compress', 'encrypt', 'upload', 'apply'] as const),
  officer: Object.freeze(['decrypt', 'review'] as const),
  server: Object.freeze(['aggregate'] as const),
});

/** A stage that took a day or more is a broken clock or a made-up number, not a measurement. */
export const MAX_STAGE_DURATION_MS = 24 * 60 * 60 * 1000;

export interface StageReport {
  stage: LatencyStage;
  durationMs: number;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return value.length > 40 ? `string(${value.length})` : JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `array(${value.length})`;
  return typeof value;
}

export function isLatencyStage(value: unknown): value is LatencyStage {
  return typeof value === 'string' && (LATENCY_STAGES as readonly string[]).includes(value);
}

/**
 * Checks one actor's report: 1..8 entries, each a known stage the actor kind measures, each stage at
 * most once, each duration a finite number in [0, 24 h). Throws TypeError/RangeError naming the field
 * (`"stages[1].stage" …`); returns the entries as typed values.
 */
export function validateStageReport(options: { actorKind: StageActorKind; stages: unknown }): StageReport[] {
  const { actorKind, stages } = options;
  if (!(STAGE_ACTOR_KINDS as readonly string[]).includes(actorKind)) throw new TypeError(`"actorKind" expected one of ${STAGE_ACTOR_KINDS.join(', ')}, got ${describeValue(actorKind)}`);
  if (!Array.isArray(stages)) throw new TypeError(`"stages" expected array, got ${describeValue(stages)}`);
  if (stages.length < 1 || stages.length > LATENCY_STAGES.length) throw new RangeError(`"stages" expected 1 to ${LATENCY_STAGES.length} entries, got ${stages.length}`);
  const allowed = STAGES_BY_ACTOR[actorKind];
  const seen = new Set<string>();
  return stages.map((entry, i) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new TypeError(`"stages[${i}]" expected object, got ${describeValue(entry)}`);
    const { stage, durationMs } = entry as { stage?: unknown; durationMs?: unknown };
    if (!isLatencyStage(stage)) throw new TypeError(`"stages[${i}].stage" expected one of ${LATENCY_STAGES.join(', ')}, got ${describeValue(stage)}`);
    if (!allowed.includes(stage)) throw new RangeError(`"stages[${i}].stage" expected one of the ${actorKind} stages (${allowed.join(', ')}), got ${JSON.stringify(stage)}`);
    if (seen.has(stage)) throw new RangeError(`"stages[${i}].stage" expected each stage once, got ${JSON.stringify(stage)} again`);
    seen.add(stage);
    if (typeof durationMs !== 'number' || !Number.isFinite(durationMs)) throw new TypeError(`"stages[${i}].durationMs" expected finite number, got ${describeValue(durationMs)}`);
    if (durationMs < 0 || durationMs >= MAX_STAGE_DURATION_MS) throw new RangeError(`"stages[${i}].durationMs" expected number in [0, ${MAX_STAGE_DURATION_MS}), got ${durationMs}`);
    return { stage, durationMs };
  });
}

/** One stored measurement. */
export interface StageTiming {
  actorKind: StageActorKind;
  actorId: string;
  stage: LatencyStage;
  durationMs: number;
}

export interface StageStats {
  stage: LatencyStage;
  /** Number of reports of this stage (one per actor). */
  count: number;
  p50Ms: number | null;
  p95Ms: number | null;
  maxMs: number | null;
  totalMs: number;
}

/**
 * Nearest-rank percentile (the smallest value with at least q of the values at or below it):
 * sorted[ceil(q * n) - 1]. Always one of the measured values, so a p95 of a few reports is the max.
 */
export function nearestRankPercentile(options: { sorted: readonly number[]; q: number }): number {
  const { sorted, q } = options;
  if (sorted.length === 0) throw new RangeError('"sorted" expected at least one value, got array(0)');
  if (!(q > 0 && q <= 1)) throw new RangeError(`"q" expected number in (0, 1], got ${q}`);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

export interface CriticalPathSegment {
  /** contribute (train..upload on one robot), aggregate, review (decrypt+review), apply. */
  segment: 'contribute' | 'aggregate' | 'review' | 'apply';
  stages: LatencyStage[];
  actorKind: StageActorKind;
  /** The slowest actor of the segment (null for the server: its instance id is not shown). */
  actorId: string | null;
  ms: number;
}

export interface CriticalPath {
  totalMs: number;
  segments: CriticalPathSegment[];
}

const SEGMENTS: ReadonlyArray<{ segment: CriticalPathSegment['segment']; actorKind: StageActorKind; stages: LatencyStage[] }> = [
  { segment: 'contribute', actorKind: 'robot', stages: ['train', 'compress', 'encrypt', 'upload'] },
  { segment: 'aggregate', actorKind: 'server', stages: ['aggregate'] },
  { segment: 'review', actorKind: 'officer', stages: ['decrypt', 'review'] },
  { segment: 'apply', actorKind: 'robot', stages: ['apply'] },
];

/**
 * Critical-path estimate of a round: within a segment the stages run one after another on one actor,
 * actors of a segment run side by side and the round waits for the slowest; segments follow one
 * another. The estimate counts measured work only — not the time a round waits for its quorum, its
 * deadline or the officer's attention — so it is a lower bound of open-to-applied, not the wall clock.
 */
export function criticalPath(options: { timings: readonly StageTiming[] }): CriticalPath {
  const segments: CriticalPathSegment[] = [];
  for (const def of SEGMENTS) {
    const perActor = new Map<string, number>();
    for (const t of options.timings) {
      if (t.actorKind !== def.actorKind || !def.stages.includes(t.stage)) continue;
      perActor.set(t.actorId, (perActor.get(t.actorId) ?? 0) + t.durationMs);
    }
    let slowest: { actorId: string; ms: number } | null = null;
    // Ties go to the smaller actor id, so the answer does not depend on row order.
    for (const [actorId, ms] of perActor) if (!slowest || ms > slowest.ms || (ms === slowest.ms && actorId < slowest.actorId)) slowest = { actorId, ms };
    if (slowest) segments.push({ segment: def.segment, stages: [...def.stages], actorKind: def.actorKind, actorId: def.actorKind === 'server' ? null : slowest.actorId, ms: slowest.ms });
  }
  return { totalMs: segments.reduce((s, x) => s + x.ms, 0), segments };
}

export interface LatencyBreakdown {
  /** Every stage in round order, also those nobody reported yet (count 0, null statistics). */
  stages: StageStats[];
  criticalPath: CriticalPath;
  /** Stored measurements (rows) in all, and the distinct actors that reported per kind. */
  reports: number;
  actors: Record<StageActorKind, number>;
}

export function stageStats(options: { stage: LatencyStage; durations: readonly number[] }): StageStats {
  const sorted = [...options.durations].sort((a, b) => a - b);
  if (sorted.length === 0) return { stage: options.stage, count: 0, p50Ms: null, p95Ms: null, maxMs: null, totalMs: 0 };
  return {
    stage: options.stage,
    count: sorted.length,
    p50Ms: nearestRankPercentile({ sorted, q: 0.5 }),
    p95Ms: nearestRankPercentile({ sorted, q: 0.95 }),
    maxMs: sorted[sorted.length - 1]!,
    totalMs: sorted.reduce((s, x) => s + x, 0),
  };
}

/** The breakdown of one round's stored timings. */
export function latencyBreakdown(options: { timings: readonly StageTiming[] }): LatencyBreakdown {
  const { timings } = options;
  const stages = LATENCY_STAGES.map((stage) => stageStats({ stage, durations: timings.filter((t) => t.stage === stage).map((t) => t.durationMs) }));
  const actors = { robot: new Set<string>(), officer: new Set<string>(), server: new Set<string>() };
  for (const t of timings) actors[t.actorKind].add(t.actorId);
  return {
    stages,
    criticalPath: criticalPath({ timings }),
    reports: timings.length,
    actors: { robot: actors.robot.size, officer: actors.officer.size, server: actors.server.size },
  };
}
