// Canary bucketing and rollback triggers.
import { describe, expect, it } from 'vitest';
import { canaryBucket, rollbackTriggers, selectCanaryRobots } from './canary.ts';

describe('canary', () => {
  const robots = Array.from({ length: 200 }, (_, i) => `rbt_${i.toString(16).padStart(4, '0')}`);

  it('buckets deterministically and uniformly, a fresh set per release', () => {
    expect(canaryBucket({ releaseId: 'r1', robotId: 'a' })).toBe(canaryBucket({ releaseId: 'r1', robotId: 'a' }));
    const buckets = robots.map((robotId) => canaryBucket({ releaseId: 'r1', robotId }));
    expect(buckets.every((b) => b >= 0 && b < 1)).toBe(true);
    const mean = buckets.reduce((s, b) => s + b, 0) / buckets.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.06);
    const a = selectCanaryRobots({ releaseId: 'r1', robotIds: robots, fraction: 0.1 });
    const b = selectCanaryRobots({ releaseId: 'r2', robotIds: robots, fraction: 0.1 });
    expect(a).toHaveLength(20);
    expect(a).toEqual(selectCanaryRobots({ releaseId: 'r1', robotIds: [...robots].reverse(), fraction: 0.1 }));
    expect(a).not.toEqual(b);
    expect(selectCanaryRobots({ releaseId: 'r1', robotIds: robots.slice(0, 3), fraction: 0.01 })).toHaveLength(1);
    expect(selectCanaryRobots({ releaseId: 'r1', robotIds: robots, fraction: 0 })).toEqual([]);
    expect(() => selectCanaryRobots({ releaseId: 'r1', robotIds: robots, fraction: 1.5 })).toThrow(/"fraction"/);
  });

  it('fires the design defaults: error rate > 0.05, p99 > 500 ms, > 3 safety events', () => {
    const ok = rollbackTriggers({ telemetry: [{ robotId: 'a', runs: 100, errors: 5, latencyP99Ms: 500, safetyEvents: 3 }] });
    expect(ok.rollback).toBe(false);
    const bad = rollbackTriggers({
      telemetry: [
        { robotId: 'a', runs: 100, errors: 9, latencyP99Ms: 200, safetyEvents: 2 },
        { robotId: 'b', runs: 100, errors: 2, latencyP99Ms: 650, safetyEvents: 2 },
      ],
    });
    expect(bad.triggers.map((t) => [t.name, t.robots])).toEqual([
      ['error_rate', ['a']],
      ['latency_p99', ['b']],
      ['safety_events', ['a', 'b']],
    ]);
    expect(rollbackTriggers({ telemetry: [{ robotId: 'a', runs: 10, errors: 1, latencyP99Ms: 0, safetyEvents: 0 }], thresholds: { maxErrorRate: 0.2 } }).rollback).toBe(false);
    expect(() => rollbackTriggers({ telemetry: [{ robotId: 'a', runs: 1, errors: 2, latencyP99Ms: 0, safetyEvents: 0 }] })).toThrow(/errors/);
  });
});
