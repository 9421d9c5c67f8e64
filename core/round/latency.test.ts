// Round latency breakdown: report validation and statistics, against values computed by hand.
import { describe, expect, it } from 'vitest';
import { MAX_STAGE_DURATION_MS, criticalPath, latencyBreakdown, nearestRankPercentile, stageStats, validateStageReport, type StageTiming } from './latency.ts';

describe('validateStageReport', () => {
  it('accepts the stages each actor kind measures', () => {
    expect(validateStageReport({ actorKind: 'robot', stages: [{ stage: 'train', durationMs: 12.5 }, { stage: 'upload', durationMs: 0 }] })).toEqual([
      { stage: 'train', durationMs: 12.5 },
      { stage: 'upload', durationMs: 0 },
    ]);
    expect(validateStageReport({ actorKind: 'officer', stages: [{ stage: 'decrypt', durationMs: 1 }, { stage: 'review', durationMs: 2 }] })).toHaveLength(2);
    expect(validateStageReport({ actorKind: 'server', stages: [{ stage: 'aggregate', durationMs: MAX_STAGE_DURATION_MS - 1 }] })).toHaveLength(1);
  });

  it('refuses a stage of another actor kind, naming the field', () => {
    expect(() => validateStageReport({ actorKind: 'robot', stages: [{ stage: 'train', durationMs: 1 }, { stage: 'decrypt', durationMs: 1 }] })).toThrow(/"stages\[1\]\.stage" expected one of the robot stages .*got "decrypt"/);
    expect(() => validateStageReport({ actorKind: 'officer', stages: [{ stage: 'aggregate', durationMs: 1 }] })).toThrow(RangeError);
    expect(() => validateStageReport({ actorKind: 'robot', stages: [{ stage: 'aggregate', durationMs: 1 }] })).toThrow(/"stages\[0\]\.stage"/);
  });

  it('refuses unknown stages, repeated stages, bad durations and bad shapes', () => {
    const robot = (stages: unknown) => () => validateStageReport({ actorKind: 'robot', stages });
    expect(robot([{ stage: 'Train', durationMs: 1 }])).toThrow(/"stages\[0\]\.stage" expected one of/);
    expect(robot([{ stage: 'train', durationMs: 1 }, { stage: 'train', durationMs: 2 }])).toThrow(/"stages\[1\]\.stage" expected each stage once/);
    expect(robot([{ stage: 'train', durationMs: -0.001 }])).toThrow(/"stages\[0\]\.durationMs" expected number in \[0, 86400000\)/);
    expect(robot([{ stage: 'train', durationMs: MAX_STAGE_DURATION_MS }])).toThrow(RangeError);
    expect(robot([{ stage: 'train', durationMs: Number.NaN }])).toThrow(/expected finite number, got NaN/);
    expect(robot([{ stage: 'train', durationMs: Number.POSITIVE_INFINITY }])).toThrow(TypeError);
    expect(robot([{ stage: 'train', durationMs: '5' }])).toThrow(/got "5"/);
    expect(robot([])).toThrow(/"stages" expected 1 to 8 entries, got 0/);
    expect(robot(new Array(9).fill({ stage: 'train', durationMs: 1 }))).toThrow(/got 9/);
    expect(robot('train')).toThrow(/"stages" expected array/);
    expect(robot([null])).toThrow(/"stages\[0\]" expected object, got null/);
    expect(() => validateStageReport({ actorKind: 'admin' as never, stages: [] })).toThrow(/"actorKind"/);
  });
});

describe('statistics', () => {
  it('nearest-rank percentiles', () => {
    const sorted = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    // p50: ceil(0.5 * 10) = 5th value; p95: ceil(9.5) = 10th; p10: 1st; p11: ceil(1.1) = 2nd
    expect(nearestRankPercentile({ sorted, q: 0.5 })).toBe(50);
    expect(nearestRankPercentile({ sorted, q: 0.95 })).toBe(100);
    expect(nearestRankPercentile({ sorted, q: 0.1 })).toBe(10);
    expect(nearestRankPercentile({ sorted, q: 0.11 })).toBe(20);
    expect(nearestRankPercentile({ sorted: [7], q: 0.5 })).toBe(7);
    // three values: p50 = ceil(1.5) = 2nd, p95 = ceil(2.85) = 3rd
    expect(nearestRankPercentile({ sorted: [1, 2, 3], q: 0.5 })).toBe(2);
    expect(nearestRankPercentile({ sorted: [1, 2, 3], q: 0.95 })).toBe(3);
    expect(() => nearestRankPercentile({ sorted: [], q: 0.5 })).toThrow(RangeError);
    expect(() => nearestRankPercentile({ sorted: [1], q: 0 })).toThrow(RangeError);
  });

  it('per-stage count, p50, p95, max and total', () => {
    // 20 values 1..20 given out of order: p50 = 10th = 10, p95 = ceil(19) = 19th = 19, total = 210
    const durations = Array.from({ length: 20 }, (_, i) => ((i * 7) % 20) + 1);
    expect(new Set(durations).size).toBe(20);
    expect(stageStats({ stage: 'upload', durations })).toEqual({ stage: 'upload', count: 20, p50Ms: 10, p95Ms: 19, maxMs: 20, totalMs: 210 });
    expect(stageStats({ stage: 'apply', durations: [] })).toEqual({ stage: 'apply', count: 0, p50Ms: null, p95Ms: null, maxMs: null, totalMs: 0 });
  });

  const rows: StageTiming[] = [
    // robot r1: contribute 100 + 10 + 20 + 30 = 160, apply 5
    { actorKind: 'robot', actorId: 'r1', stage: 'train', durationMs: 100 },
    { actorKind: 'robot', actorId: 'r1', stage: 'compress', durationMs: 10 },
    { actorKind: 'robot', actorId: 'r1', stage: 'encrypt', durationMs: 20 },
    { actorKind: 'robot', actorId: 'r1', stage: 'upload', durationMs: 30 },
    { actorKind: 'robot', actorId: 'r1', stage: 'apply', durationMs: 5 },
    // robot r2: no train reported; contribute 40 + 50 + 80 = 170 (the slowest), apply 9
    { actorKind: 'robot', actorId: 'r2', stage: 'compress', durationMs: 40 },
    { actorKind: 'robot', actorId: 'r2', stage: 'encrypt', durationMs: 50 },
    { actorKind: 'robot', actorId: 'r2', stage: 'upload', durationMs: 80 },
    { actorKind: 'robot', actorId: 'r2', stage: 'apply', durationMs: 9 },
    // robot r3: contribute 1 + 2 + 3 = 6
    { actorKind: 'robot', actorId: 'r3', stage: 'compress', durationMs: 1 },
    { actorKind: 'robot', actorId: 'r3', stage: 'encrypt', durationMs: 2 },
    { actorKind: 'robot', actorId: 'r3', stage: 'upload', durationMs: 3 },
    { actorKind: 'server', actorId: 'host:1:abc', stage: 'aggregate', durationMs: 4 },
    // two officers reviewed: 300 + 700 = 1000 and 600 + 500 = 1100 (the slowest)
    { actorKind: 'officer', actorId: 'u1', stage: 'decrypt', durationMs: 300 },
    { actorKind: 'officer', actorId: 'u1', stage: 'review', durationMs: 700 },
    { actorKind: 'officer', actorId: 'u2', stage: 'decrypt', durationMs: 600 },
    { actorKind: 'officer', actorId: 'u2', stage: 'review', durationMs: 500 },
  ];

  it('critical path: the slowest actor of each segment, segments in sequence', () => {
    const path = criticalPath({ timings: rows });
    expect(path.segments).toEqual([
      { segment: 'contribute', stages: ['train', 'compress', 'encrypt', 'upload'], actorKind: 'robot', actorId: 'r2', ms: 170 },
      { segment: 'aggregate', stages: ['aggregate'], actorKind: 'server', actorId: null, ms: 4 },
      { segment: 'review', stages: ['decrypt', 'review'], actorKind: 'officer', actorId: 'u2', ms: 1100 },
      { segment: 'apply', stages: ['apply'], actorKind: 'robot', actorId: 'r2', ms: 9 },
    ]);
    // 170 + 4 + 1100 + 9
    expect(path.totalMs).toBe(1283);
    expect(criticalPath({ timings: [] })).toEqual({ totalMs: 0, segments: [] });
    // ties go to the smaller actor id whatever the row order
    const tie: StageTiming[] = [
      { actorKind: 'robot', actorId: 'rb', stage: 'apply', durationMs: 3 },
      { actorKind: 'robot', actorId: 'ra', stage: 'apply', durationMs: 3 },
    ];
    expect(criticalPath({ timings: tie }).segments[0]!.actorId).toBe('ra');
  });

  it('the breakdown: every stage in round order with its statistics, reports and actors', () => {
    const b = latencyBreakdown({ timings: rows });
    expect(b.stages.map((s) => s.stage)).toEqual(['train', 'compress', 'encrypt', 'upload', 'aggregate', 'decrypt', 'review', 'apply']);
    const by = Object.fromEntries(b.stages.map((s) => [s.stage, s]));
    // compress 1, 10, 40: p50 = 2nd = 10, p95 = 3rd = 40, total 51
    expect(by.compress).toEqual({ stage: 'compress', count: 3, p50Ms: 10, p95Ms: 40, maxMs: 40, totalMs: 51 });
    // upload 3, 30, 80
    expect(by.upload).toEqual({ stage: 'upload', count: 3, p50Ms: 30, p95Ms: 80, maxMs: 80, totalMs: 113 });
    // apply 5, 9: p50 = ceil(1) = 1st = 5, p95 = ceil(1.9) = 2nd = 9
    expect(by.apply).toEqual({ stage: 'apply', count: 2, p50Ms: 5, p95Ms: 9, maxMs: 9, totalMs: 14 });
    expect(by.train).toEqual({ stage: 'train', count: 1, p50Ms: 100, p95Ms: 100, maxMs: 100, totalMs: 100 });
    expect(by.decrypt).toEqual({ stage: 'decrypt', count: 2, p50Ms: 300, p95Ms: 600, maxMs: 600, totalMs: 900 });
    expect(b.reports).toBe(17);
    expect(b.actors).toEqual({ robot: 3, officer: 2, server: 1 });
    expect(b.criticalPath.totalMs).toBe(1283);
    const empty = latencyBreakdown({ timings: [] });
    expect(empty.stages.every((s) => s.count === 0 && s.p50Ms === null)).toBe(true);
    expect(empty.reports).toBe(0);
  });
});
