// The reference-task simulator: one rollout of a scenario, stepped by joint-speed actions.
//
// Step t:  action a (one value per joint, in units of the joint's speed limit)
//   -> latency: the controller applies the action of d_t steps ago, d_t ~ U{0..latencyMaxSteps}
//   -> speed limit: |a_i| > 1 is a speed-limit violation; the drive saturates at the limit
//   -> integrate q += qdot dt; leaving [jointMin, jointMax] is a joint-limit violation (clamped)
//   -> 4 sub-steps of the motion: link capsules against obstacles and the person (contact ends the
//      rollout with a protective stop; the peak force comes from core/sim/contact.ts), and against the
//      person's zone (intrusion) and the cell boundary (workspace exit)
//   -> grasp when the gripper is within graspTolerance of the object; success when the held object
//      is within placeTolerance of the goal.
// Observations (OBS_DIM values, all O(1)) are what the robot's sensors give, with Gaussian noise of
// scenario.sensorNoise on joint angles and perceived positions.
import { SeededRandom } from './random.ts';
import { cellAngle, forwardKinematics, halfPlaneExcess, pointRectDistance, pointSegment, segmentRectDistance, type Vec2 } from './geometry.ts';
import { fixtureContactForce, humanContactForce } from './contact.ts';
import type { Scenario } from './scenario.ts';
import { hexToBytes } from '../bytes.ts';

export const OBS_DIM = 18;
export const ACT_DIM = 3;
const SUBSTEPS = 4;
const CLEARANCE_SCALE = 0.2;

export type Termination = 'placed' | 'collision' | 'human_contact' | 'timeout';

export interface Violations {
  jointLimit: number;
  speedLimit: number;
  workspaceExit: number;
  humanZone: number;
  collision: number;
}

export interface ContactRecord {
  step: number;
  kind: 'obstacle' | 'human';
  /** ISO/TS 15066 body region for contacts with the person. */
  region: string | null;
  /** Relative normal speed at first touch, m/s. */
  speedMps: number;
  peakForceN: number;
  /** Transient force limit of the region, N (null for fixtures). */
  limitN: number | null;
  /** peakForceN / limitN, or null. */
  ratio: number | null;
}

export interface RolloutResult {
  id: string;
  set: string;
  success: boolean;
  termination: Termination;
  steps: number;
  violations: Violations;
  /** Sum of the violation counts. */
  violationCount: number;
  contacts: ContactRecord[];
  peakForceN: number;
  /** Highest peak force / limit over contacts with the person (0 when none). */
  peakForceRatio: number;
}

export function reach(scenario: Scenario): number {
  return scenario.arm.linkLengths.reduce((a, b) => a + b, 0);
}

export class ReferenceTaskEnv {
  readonly scenario: Scenario;
  q: Float64Array;
  qdot: Float64Array;
  points: Vec2[];
  holding = false;
  done = false;
  step = 0;
  termination: Termination = 'timeout';
  readonly violations: Violations = { jointLimit: 0, speedLimit: 0, workspaceExit: 0, humanZone: 0, collision: 0 };
  readonly contacts: ContactRecord[] = [];
  private readonly noise: SeededRandom;
  private readonly latency: SeededRandom;
  private readonly history: Float64Array[] = [];
  private readonly reachM: number;

  constructor(scenario: Scenario) {
    this.scenario = scenario;
    const n = scenario.arm.linkLengths.length;
    if (n !== ACT_DIM) throw new RangeError(`"scenario.arm.linkLengths" expected ${ACT_DIM} links for the reference task, got ${n}`);
    const seed = hexToBytes(scenario.seed);
    const root = new SeededRandom(seed);
    this.noise = root.derive('sensor');
    this.latency = root.derive('latency');
    this.q = Float64Array.from(scenario.initialJoints);
    this.qdot = new Float64Array(n);
    this.points = forwardKinematics({ joints: this.q, linkLengths: scenario.arm.linkLengths });
    this.reachM = reach(scenario);
  }

  get ee(): Vec2 {
    return this.points[this.points.length - 1]!;
  }

  /** The current target: the object until it is held, then the goal. */
  get target(): Vec2 {
    return this.holding ? this.scenario.goal : this.scenario.object;
  }

  /** The sensor reading for the policy (noisy when the scenario says so). */
  observe(): Float32Array {
    const s = this.scenario;
    const sigma = s.sensorNoise;
    const nz = () => (sigma > 0 ? sigma * this.noise.normal() : 0);
    const qObs = Array.from(this.q, (v) => v + nz());
    const pts = sigma > 0 ? forwardKinematics({ joints: qObs, linkLengths: s.arm.linkLengths }) : this.points;
    const ee = pts[pts.length - 1]!;
    const target = { x: this.target.x + nz(), y: this.target.y + nz() };
    const obstacles = s.obstacles.map((o) => ({ x: o.x + nz(), y: o.y + nz(), radius: o.radius }));
    const R = this.reachM;
    const o = new Float32Array(OBS_DIM);
    for (let i = 0; i < 3; i++) {
      o[i] = qObs[i]! / Math.PI;
      o[3 + i] = this.qdot[i]! / s.arm.speedLimit[i]!;
    }
    o[6] = ee.x / R;
    o[7] = ee.y / R;
    o[8] = (target.x - ee.x) / R;
    o[9] = (target.y - ee.y) / R;
    o[10] = this.holding ? 1 : 0;
    const blocking = blockingObstacle({ ee, target, obstacles, linkRadius: s.arm.linkRadius });
    if (blocking) {
      o[11] = blocking.x / R;
      o[12] = blocking.y / R;
      o[13] = blocking.radius / R;
      o[14] = 1;
    }
    o[15] = Math.min(2, Math.max(0, armClearance({ points: pts, obstacles, linkRadius: s.arm.linkRadius }) / CLEARANCE_SCALE));
    const zone = pointRectDistance({ p: ee, rect: s.humanZone }).closest;
    o[16] = (zone.x - ee.x) / R;
    o[17] = (zone.y - ee.y) / R;
    return o;
  }

  /** Applies one action (length ACT_DIM, units of the speed limits). No-op once done. */
  act(action: ArrayLike<number>): void {
    if (this.done) return;
    const s = this.scenario;
    const arm = s.arm;
    const n = ACT_DIM;
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = action[i]!;
      a[i] = Number.isFinite(v) ? v : 0;
    }
    this.history.push(a);
    let applied: ArrayLike<number> = a;
    if (s.latencyMaxSteps > 0) {
      const d = this.latency.int(s.latencyMaxSteps + 1);
      const idx = this.history.length - 1 - d;
      applied = idx >= 0 ? this.history[idx]! : new Float64Array(n);
    }
    let speedViolation = false;
    const qdot = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let u = applied[i]!;
      if (Math.abs(u) > 1 + 1e-9) {
        speedViolation = true;
        u = Math.sign(u);
      }
      qdot[i] = u * arm.speedLimit[i]!;
    }
    if (speedViolation) this.violations.speedLimit++;
    const qNew = new Float64Array(n);
    let jointViolation = false;
    for (let i = 0; i < n; i++) {
      let v = this.q[i]! + qdot[i]! * s.dt;
      if (v < arm.jointMin[i]! || v > arm.jointMax[i]!) {
        jointViolation = true;
        v = Math.min(arm.jointMax[i]!, Math.max(arm.jointMin[i]!, v));
      }
      qNew[i] = v;
      qdot[i] = (v - this.q[i]!) / s.dt;
    }
    if (jointViolation) this.violations.jointLimit++;

    // Sub-steps: contacts are looked for along the motion, not only at its end.
    let prev = this.points;
    let inZone = false;
    let outside = false;
    const qSub = new Float64Array(n);
    for (let k = 1; k <= SUBSTEPS && !this.done; k++) {
      const tau = k / SUBSTEPS;
      for (let i = 0; i < n; i++) qSub[i] = this.q[i]! + tau * (qNew[i]! - this.q[i]!);
      const pts = forwardKinematics({ joints: qSub, linkLengths: arm.linkLengths });
      this.checkContacts(prev, pts, s.dt / SUBSTEPS);
      for (let l = 1; l < pts.length; l++) {
        if (segmentRectDistance({ a: pts[l - 1]!, b: pts[l]!, rect: s.humanZone }) < arm.linkRadius) inZone = true;
        for (const plane of s.workspace) if (halfPlaneExcess({ p: pts[l]!, plane }) > -arm.linkRadius) outside = true;
      }
      prev = pts;
    }
    if (inZone) this.violations.humanZone++;
    if (outside) this.violations.workspaceExit++;
    this.q = qNew;
    this.qdot = qdot;
    this.points = forwardKinematics({ joints: this.q, linkLengths: arm.linkLengths });
    this.step++;
    if (this.done) return;
    const ee = this.ee;
    if (!this.holding && Math.hypot(ee.x - s.object.x, ee.y - s.object.y) < s.graspTolerance) this.holding = true;
    else if (this.holding && Math.hypot(ee.x - s.goal.x, ee.y - s.goal.y) < s.placeTolerance) {
      this.done = true;
      this.termination = 'placed';
      return;
    }
    if (this.step >= s.maxSteps) {
      this.done = true;
      this.termination = 'timeout';
    }
  }

  private checkContacts(before: Vec2[], after: Vec2[], h: number): void {
    const s = this.scenario;
    const bodies = [
      ...s.obstacles.map((o) => ({ kind: 'obstacle' as const, disk: o })),
      { kind: 'human' as const, disk: s.human },
    ];
    for (const body of bodies) {
      for (let l = 1; l < after.length; l++) {
        const a = after[l - 1]!;
        const b = after[l]!;
        const hit = pointSegment({ p: body.disk, a, b });
        if (hit.distance >= s.arm.linkRadius + body.disk.radius) continue;
        // Velocity of the touching point (same segment parameter) and its component toward the body.
        const a0 = before[l - 1]!;
        const b0 = before[l]!;
        const p0 = { x: a0.x + hit.t * (b0.x - a0.x), y: a0.y + hit.t * (b0.y - a0.y) };
        const vx = (hit.closest.x - p0.x) / h;
        const vy = (hit.closest.y - p0.y) / h;
        const nx = body.disk.x - hit.closest.x;
        const ny = body.disk.y - hit.closest.y;
        const norm = Math.hypot(nx, ny) || 1;
        const speed = Math.max(0, (vx * nx + vy * ny) / norm);
        const payloadKg = this.holding ? s.object.massKg : 0;
        const force =
          body.kind === 'human'
            ? humanContactForce({ region: s.human.region, movingMassKg: s.arm.movingMassKg, payloadKg, speedMps: speed })
            : fixtureContactForce({ movingMassKg: s.arm.movingMassKg, payloadKg, speedMps: speed });
        this.contacts.push({
          step: this.step,
          kind: body.kind,
          region: body.kind === 'human' ? s.human.region : null,
          speedMps: speed,
          peakForceN: force.peakForceN,
          limitN: force.limitN,
          ratio: force.limitN === null ? null : force.peakForceN / force.limitN,
        });
        this.violations.collision++;
        // A contact triggers the protective stop: the rollout ends here.
        this.done = true;
        this.termination = body.kind === 'human' ? 'human_contact' : 'collision';
        return;
      }
    }
  }

  result(): RolloutResult {
    const v = this.violations;
    let peakForceN = 0;
    let peakForceRatio = 0;
    for (const c of this.contacts) {
      peakForceN = Math.max(peakForceN, c.peakForceN);
      if (c.ratio !== null) peakForceRatio = Math.max(peakForceRatio, c.ratio);
    }
    return {
      id: this.scenario.id,
      set: this.scenario.set,
      success: this.termination === 'placed',
      termination: this.termination,
      steps: this.step,
      violations: { ...v },
      violationCount: v.jointLimit + v.speedLimit + v.workspaceExit + v.humanZone + v.collision,
      contacts: this.contacts.map((c) => ({ ...c })),
      peakForceN,
      peakForceRatio,
    };
  }
}

/** The first obstacle on the angular path from the gripper to the target (what the arm must pass under). */
export function blockingObstacle(options: {
  ee: Vec2;
  target: Vec2;
  obstacles: Array<{ x: number; y: number; radius: number }>;
  linkRadius: number;
}): { x: number; y: number; radius: number; angularGap: number; safeRadius: number } | null {
  const { ee, target, obstacles, linkRadius } = options;
  const phiE = cellAngle(ee);
  const phiT = cellAngle(target);
  const dir = Math.sign(phiT - phiE) || 1;
  let best: { x: number; y: number; radius: number; angularGap: number; safeRadius: number } | null = null;
  for (const o of obstacles) {
    const ro = Math.hypot(o.x, o.y);
    const margin = o.radius + linkRadius + 0.06;
    const half = Math.asin(Math.min(1, margin / ro));
    const phiO = cellAngle(o);
    // Signed angular distance from the gripper to the obstacle's near edge along the direction of travel.
    const gap = dir * (phiO - phiE) - half;
    const beyondTarget = dir * (phiO - phiT) - half > 0;
    if (gap + 2 * half < 0 || beyondTarget) continue; // behind the gripper, or past the target
    if (!best || gap < best.angularGap) best = { x: o.x, y: o.y, radius: o.radius, angularGap: gap, safeRadius: ro - margin };
  }
  return best;
}

/** Smallest distance between the arm's capsules and the obstacles' surfaces (m). */
export function armClearance(options: { points: Vec2[]; obstacles: Array<{ x: number; y: number; radius: number }>; linkRadius: number }): number {
  const { points, obstacles, linkRadius } = options;
  let best = Infinity;
  for (const o of obstacles)
    for (let l = 1; l < points.length; l++)
      best = Math.min(best, pointSegment({ p: o, a: points[l - 1]!, b: points[l]! }).distance - o.radius - linkRadius);
  return best === Infinity ? 10 : best;
}
