// Command safety validation: hand-computed geometry, the published ISO/TS 15066 limits and formula, the
// SSM distance, and the validator's verdicts and field-named refusals.
import { describe, expect, it } from 'vitest';
import { ballExcess, pointBoxDistance, segmentBoxDistance, segmentSegmentDistance, type Vec3 } from './geometry.ts';
import { BODY_REGION_DATA, maxTransientSpeed, transientForceAtSpeed } from './body-regions.ts';
import { maxSpeedForSeparation, protectiveSeparation } from './ssm.ts';
import { parseSafetyCell, type SafetyCell } from './cell.ts';
import { parseSafetyRequest } from './request.ts';
import { validateCommand, type Heartbeat } from './validate.ts';
import { SafetyRequestError } from './parse.ts';
import { TWO_LINK_CELL, twoLinkPose } from './test-cell.ts';

describe('geometry', () => {
  it('segment-segment distances', () => {
    const d = (p1: Vec3, q1: Vec3, p2: Vec3, q2: Vec3) => segmentSegmentDistance({ p1, q1, p2, q2 });
    expect(d([0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0])).toBeCloseTo(1, 12); // parallel, 1 apart
    expect(d([0, 0, 0], [1, 0, 0], [0.5, -1, 1], [0.5, 1, 1])).toBeCloseTo(1, 12); // skew, z offset 1
    expect(d([0, 0, 0], [2, 2, 0], [0, 2, 0], [2, 0, 0])).toBeCloseTo(0, 12); // crossing at (1, 1, 0)
    expect(d([0, 0, 0], [1, 0, 0], [2, 1, 0], [3, 1, 0])).toBeCloseTo(Math.SQRT2, 12); // endpoint to endpoint
    expect(d([0, 0, 0], [0, 0, 0], [3, 4, 0], [3, 4, 0])).toBeCloseTo(5, 12); // degenerate: points 3-4-5
  });

  it('segment-box and point-box distances, axis-aligned and rotated', () => {
    const box = { center: [0, 0, 0] as Vec3, halfExtents: [1, 1, 1] as Vec3 };
    expect(segmentBoxDistance({ a: [2, 0, 0], b: [3, 0, 0], box })).toBeCloseTo(1, 9);
    expect(segmentBoxDistance({ a: [2, 2, 0], b: [2, 3, 0], box })).toBeCloseTo(Math.SQRT2, 9); // edge (1,1,z)
    expect(segmentBoxDistance({ a: [-3, 0.5, 0.5], b: [3, 0.5, 0.5], box })).toBe(0); // passes through
    expect(segmentBoxDistance({ a: [2, 2, 2], b: [3, 3, 3], box })).toBeCloseTo(Math.sqrt(3), 9); // corner
    // 45 degrees about z: q = [cos 22.5, 0, 0, sin 22.5]; the box's corner now points along +x at sqrt(2).
    const rotated = { ...box, rotation: [Math.cos(Math.PI / 8), 0, 0, Math.sin(Math.PI / 8)] as const };
    expect(pointBoxDistance({ p: [3, 0, 0], box: rotated })).toBeCloseTo(3 - Math.SQRT2, 9);
    expect(segmentBoxDistance({ a: [3, -1, 0], b: [3, 1, 0], box: rotated })).toBeCloseTo(3 - Math.SQRT2, 9);
  });

  it('a ball inside a convex volume in half-space form', () => {
    const cube = [
      { normal: [1, 0, 0] as Vec3, offset: 1 },
      { normal: [-1, 0, 0] as Vec3, offset: 1 },
      { normal: [0, 1, 0] as Vec3, offset: 1 },
      { normal: [0, -1, 0] as Vec3, offset: 1 },
      { normal: [0, 0, 2] as Vec3, offset: 2 }, // non-unit normal: z <= 1
      { normal: [0, 0, -1] as Vec3, offset: 1 },
    ];
    expect(ballExcess({ p: [0, 0, 0], radius: 0.5, planes: cube })).toBeCloseTo(-0.5, 12);
    expect(ballExcess({ p: [0, 0, 0.9], radius: 0.2, planes: cube })).toBeCloseTo(0.1, 12);
  });
});

describe('ISO/TS 15066 power and force limiting', () => {
  it('carries the published limits, spring constants and masses', () => {
    expect(BODY_REGION_DATA.hand).toEqual({ transientForceN: 280, quasiStaticForceN: 140, springNPerMm: 75, effectiveMassKg: 0.6 });
    expect(BODY_REGION_DATA.chest.transientForceN).toBe(280);
    expect(BODY_REGION_DATA.abdomen).toMatchObject({ transientForceN: 220, springNPerMm: 10, effectiveMassKg: 40 });
    expect(BODY_REGION_DATA.back_shoulders.transientForceN).toBe(420);
    expect(BODY_REGION_DATA.pelvis.transientForceN).toBe(360);
    expect(BODY_REGION_DATA.upper_arm).toMatchObject({ transientForceN: 300, springNPerMm: 30, effectiveMassKg: 3 });
    expect(BODY_REGION_DATA.forearm).toMatchObject({ transientForceN: 320, springNPerMm: 40, effectiveMassKg: 2 });
  });

  it('v = F / sqrt(mu k) by hand', () => {
    // Hand, M = 20 kg, no payload: m_R = 10, mu = 0.6 * 10 / 10.6 = 0.566038, k = 75 000 N/m,
    // sqrt(mu k) = 206.041, v = 280 / 206.041 = 1.35895 m/s.
    expect(maxTransientSpeed({ region: 'hand', movingMassKg: 20, payloadKg: 0 })).toBeCloseTo(1.35895, 4);
    // Chest, M = 20 kg, 2 kg payload: m_R = 12, mu = 40 * 12 / 52 = 9.23077, k = 25 000 N/m,
    // sqrt(mu k) = 480.384, v = 280 / 480.384 = 0.582868 m/s.
    expect(maxTransientSpeed({ region: 'chest', movingMassKg: 20, payloadKg: 2 })).toBeCloseTo(0.582868, 5);
    // and back: the force at that speed is the limit
    expect(transientForceAtSpeed({ region: 'chest', movingMassKg: 20, payloadKg: 2, speedMps: 0.582868 })).toBeCloseTo(280, 2);
  });

  it('S_p = S_h + S_r + S_s + C + Z_d + Z_r by hand', () => {
    const ssm = { reactionTimeS: 0.1, stoppingTimeS: 0.3, stoppingDistanceM: null, humanSpeedMps: 1.6, intrusionDistanceM: 0.2, sensorUncertaintyM: 0.05, robotUncertaintyM: 0.02 };
    // S_h = 1.6 * 0.4 = 0.64, S_r = 1.0 * 0.1 = 0.1, S_s = 1.0 * 0.3 / 2 = 0.15, C + Z = 0.27 -> 1.16 m
    const t = protectiveSeparation({ ssm, robotSpeedMps: 1 });
    expect(t.humanTravelM).toBeCloseTo(0.64, 12);
    expect(t.robotStoppingM).toBeCloseTo(0.15, 12);
    expect(t.protectiveSeparationM).toBeCloseTo(1.16, 12);
    expect(maxSpeedForSeparation({ ssm, separationM: 1.16 })).toBeCloseTo(1, 12);
    expect(maxSpeedForSeparation({ ssm, separationM: 0.5 })).toBe(0); // closer than the fixed terms (0.91 m)
    expect(maxSpeedForSeparation({ ssm: { ...ssm, stoppingDistanceM: 0.2 }, separationM: 1.21 })).toBeCloseTo(1, 12); // (1.21 - 0.91 - 0.2) / 0.1
  });
});

// The shared two-link arm (core/safety/test-cell.ts) with separation-monitoring and e-stop settings.
const CELL_DOC = {
  ...TWO_LINK_CELL,
  name: 'test-cell',
  ssm: { reactionTimeS: 0.1, stoppingTimeS: 0.3, intrusionDistanceM: 0.2, sensorUncertaintyM: 0.05, robotUncertaintyM: 0.02 },
  estop: { maxHeartbeatAgeMs: 1000 },
};

const pose = twoLinkPose;

function motion(from: [number, number], to: [number, number], seconds: number, steps = 4) {
  return Array.from({ length: steps + 1 }, (_, i) => {
    const s = i / steps;
    const q: [number, number] = [from[0] + s * (to[0] - from[0]), from[1] + s * (to[1] - from[1])];
    return { t: s * seconds, joints: q, links: pose(q[0], q[1]) };
  });
}

describe('validateCommand', () => {
  const cell: SafetyCell = parseSafetyCell({ value: CELL_DOC });
  const now = 1_000_000;
  const armed: Heartbeat = { receivedAt: now - 100, estop: 'armed' };
  const request = (body: Record<string, unknown>) => parseSafetyRequest({ value: { cellId: 'c1', ...body }, cell });
  const run = (body: Record<string, unknown>, heartbeat: Heartbeat | null = armed) => validateCommand({ cell, request: request(body), heartbeat, now });

  it('approves a slow motion in free space with the e-stop armed', () => {
    // shoulder -0.8 -> -0.2 rad in 1 s (0.6 rad/s), elbow fixed at 0.5: away from the pillar at +y.
    const d = run({ trajectory: { waypoints: motion([-0.8, 0.5], [-0.2, 0.5], 1) } });
    expect(d.decision).toBe('approve');
    expect(d.failed).toEqual([]);
    expect(d.checks.map((c) => c.name)).toEqual(['joint_limits', 'joint_speed', 'workspace', 'collision', 'power_force_limiting', 'speed_separation', 'emergency_stop']);
  });

  it('denies joint limits and names the joint', () => {
    const d = run({ trajectory: { waypoints: motion([0, 2.0], [0, 2.6], 1) } });
    expect(d.decision).toBe('deny');
    expect(d.failed).toContain('joint_limits');
    expect(d.checks.find((c) => c.name === 'joint_limits')!.detail).toMatch(/elbow at 2\.6/);
  });

  it('denies a joint speed over its limit and recommends the time stretch', () => {
    // shoulder 1.2 rad in 0.3 s = 4 rad/s against 2 rad/s: stretch by 2.
    const d = run({ trajectory: { waypoints: motion([-1.2, 0.5], [0, 0.5], 0.3, 1) } });
    expect(d.failed).toEqual(['joint_speed']);
    expect(d.recommendation.timeScale).toBeCloseTo(2, 6);
  });

  it('denies leaving the workspace (tool tip past x = 1 m with its radius)', () => {
    // Stretched arm along +x reaches x = 0.9; a 0.05 m radius tip stays inside; 0.95 m + radius does not.
    const inside = run({ trajectory: { waypoints: [{ t: 0, joints: [0, 0], links: pose(0, 0) }] } });
    expect(inside.failed).toEqual([]);
    const shifted = [{ t: 0, joints: [0, 0], links: pose(0, 0).map((p) => [p[0] + 0.06, p[1], p[2]]) }];
    const d = run({ trajectory: { waypoints: shifted } });
    expect(d.failed).toEqual(['workspace']);
    expect(d.checks.find((c) => c.name === 'workspace')!.values!.excessM).toBeCloseTo(0.01, 9); // 0.96 + 0.05 - 1
  });

  it('predicts the collision of a swept link with the pillar', () => {
    // Sweeping the stretched arm from -0.5 rad to pi/2 passes through the pillar at (0, 0.8): contact.
    const d = run({ trajectory: { waypoints: motion([-0.5, 0], [Math.PI / 2, 0], 3, 2) } });
    expect(d.failed).toEqual(['collision']);
    expect(d.checks.find((c) => c.name === 'collision')!.detail).toMatch(/pillar.*contact/);
    // Pointing at the pillar (face at y = 0.7) but folded back (tip at y = 0.5 - 0.4 cos(0.1 pi) = 0.12): no contact.
    const folded = run({ trajectory: { waypoints: [{ t: 0, joints: [Math.PI / 2, Math.PI * 0.9], links: pose(Math.PI / 2, Math.PI * 0.9) }] } });
    expect(folded.failed).toEqual(['joint_limits']); // 2.83 rad over the elbow limit, but no collision
  });

  it('power and force limiting: predicted forces against the transient and quasi-static limits', () => {
    const waypoints = motion([-0.8, 0.5], [-0.2, 0.5], 1);
    expect(run({ trajectory: { waypoints }, predictedContacts: [{ region: 'hand', forceN: 270 }] }).decision).toBe('approve');
    const d = run({ trajectory: { waypoints }, predictedContacts: [{ region: 'hand', forceN: 150, kind: 'quasi_static' }] });
    expect(d.failed).toEqual(['power_force_limiting']);
    expect(d.checks.find((c) => c.name === 'power_force_limiting')!.detail).toMatch(/140 N/);
  });

  it('a person closer than S_p: approved while slow enough for PFL, denied (with the passing speed) when not', () => {
    // Person 0.6 m from the tool's path: S_p at the arm's speed is > 0.91 m, so contact is possible.
    const waypoints = motion([-0.8, 0.5], [-0.2, 0.5], 1); // tip speed ~0.6 * 0.81 m/s
    const humans = [{ id: 'op', position: [0.9, -0.9, 0.5], regions: ['chest'] }];
    const slow = run({ trajectory: { waypoints }, humans });
    const pfl = slow.checks.find((c) => c.name === 'power_force_limiting')!;
    const vChest = maxTransientSpeed({ region: 'chest', movingMassKg: 20, payloadKg: 0 });
    expect(pfl.values!.maxSpeedMps).toBeCloseTo(vChest, 9);
    const vr = pfl.values!.robotSpeedMps as number;
    expect(vr).toBeLessThan(vChest);
    expect(slow.decision).toBe('approve');
    const fast = run({ trajectory: { waypoints: motion([-0.8, 0.5], [-0.2, 0.5], 0.35) }, humans });
    expect(fast.decision).toBe('deny');
    expect(fast.failed).toEqual(['speed_separation']);
    expect(fast.recommendation.maxSpeedMps).toBeCloseTo(vChest, 4);
    expect(fast.recommendation.timeScale!).toBeGreaterThan(1);
  });

  it('SSM-only cells deny a person inside S_p whatever the speed', () => {
    const ssmCell = parseSafetyCell({ value: { ...CELL_DOC, collaboration: 'ssm' } });
    const req = parseSafetyRequest({ value: { cellId: 'c1', trajectory: { waypoints: motion([-0.8, 0.5], [-0.2, 0.5], 4) }, humans: [{ position: [0.9, -0.9, 0.5] }] }, cell: ssmCell });
    const d = validateCommand({ cell: ssmCell, request: req, heartbeat: armed, now });
    expect(d.failed).toEqual(['speed_separation']);
    const far = parseSafetyRequest({ value: { cellId: 'c1', trajectory: { waypoints: motion([-0.8, 0.5], [-0.2, 0.5], 4) }, humans: [{ position: [5, 5, 0.5] }] }, cell: ssmCell });
    expect(validateCommand({ cell: ssmCell, request: far, heartbeat: armed, now }).decision).toBe('approve');
  });

  it('emergency stop: missing, stale and engaged heartbeats deny', () => {
    const body = { trajectory: { waypoints: motion([-0.8, 0.5], [-0.2, 0.5], 1) } };
    expect(run(body, null).failed).toEqual(['emergency_stop']);
    expect(run(body, { receivedAt: now - 1001, estop: 'armed' }).failed).toEqual(['emergency_stop']);
    expect(run(body, { receivedAt: now - 10, estop: 'engaged' }).checks.find((c) => c.name === 'emergency_stop')!.detail).toMatch(/engaged/);
  });

  it('refuses malformed and physically impossible requests, naming the field', () => {
    const field = (body: Record<string, unknown>) => {
      try {
        request(body);
      } catch (e) {
        expect(e).toBeInstanceOf(SafetyRequestError);
        expect((e as SafetyRequestError).status).toBe(400);
        return (e as SafetyRequestError).field;
      }
      throw new Error('expected a refusal');
    };
    const w = motion([-0.8, 0.5], [-0.2, 0.5], 1);
    expect(field({ trajectory: { waypoints: [w[0], { ...w[1], t: 0 }] } })).toBe('trajectory.waypoints[1].t');
    expect(field({ trajectory: { waypoints: [w[0], { ...w[1], joints: [0] }] } })).toBe('trajectory.waypoints[1].joints');
    const stretched = { ...w[1], links: [w[1]!.links[0], w[1]!.links[1], [3, 3, 0.5]] };
    expect(field({ trajectory: { waypoints: [w[0], stretched] } })).toMatch(/^trajectory\.waypoints\[1\]\.links\[2\]$/);
    expect(field({ trajectory: { waypoints: w }, payloadKg: 6 })).toBe('payloadKg');
    expect(field({ trajectory: { waypoints: w }, payloadKg: -1 })).toBe('payloadKg');
    expect(field({ trajectory: { waypoints: w }, humans: [{ position: [0, 0, Number.NaN] }] })).toBe('humans[0].position[2]');
    expect(field({ trajectory: { waypoints: w }, predictedContacts: [{ region: 'skull', forceN: 10 }] })).toBe('predictedContacts[0].region');
    expect(field({ trajectory: { waypoints: w }, speed: 3 })).toBe('speed');
  });

  it('refuses malformed cells, naming the field', () => {
    expect(() => parseSafetyCell({ value: { ...CELL_DOC, joints: [{ min: 1, max: 0, maxSpeed: 1 }] } })).toThrow(/"joints\[0\]\.max"/);
    expect(() => parseSafetyCell({ value: { ...CELL_DOC, obstacles: [{ shape: 'box', center: [0, 0, 0], halfExtents: [1, 1, 1], rotation: [1, 1, 0, 0] }] } })).toThrow(/"obstacles\[0\]\.rotation"/);
    expect(() => parseSafetyCell({ value: { ...CELL_DOC, workspace: [{ planes: [{ normal: [0, 0, 0], offset: 1 }, ...CELL_DOC.workspace[0]!.planes] }] } })).toThrow(/"workspace\[0\]\.planes\[0\]\.normal"/);
  });
});
