// Command safety validation: a cell, a parsed request and the robot's last heartbeat -> approve or deny,
// with every check's result and a recommendation. Pure and deterministic (the clock comes in).
//
// Checks, in order:
//   joint_limits          every waypoint's joints within [min, max]
//   joint_speed           |q_i+1 - q_i| / dt and any declared joint velocity within maxSpeed
//   workspace             every swept link capsule inside one of the cell's convex volumes
//   collision             swept link capsules keep collisionMarginM from every static obstacle
//   power_force_limiting  predicted contact forces within ISO/TS 15066 limits (transient F_T,
//                         quasi-static F_T / 2), and, where contact with a person is possible, the arm's
//                         speed within v_max = F_T / sqrt(mu k) for every exposed body region
//   speed_separation      separation to each person >= S_p (core/safety/ssm.ts)
//   emergency_stop        heartbeat younger than estop.maxHeartbeatAgeMs with the e-stop armed
// How the two human checks combine is the cell's `collaboration`: `ssm` (separation required), `pfl`
// (contact allowed within force limits), `pfl_or_ssm` (default: either keeps the person safe, so a
// person closer than S_p is acceptable only while the arm is slow enough for PFL).
//
// Swept capsules: between waypoints, link endpoints are taken to move linearly. A link whose endpoints
// move at most D between two waypoints is sampled at m = ceil(D / (2 tol)) + 1 evenly spaced poses and
// each sample capsule is inflated by D / (2 m) <= tol: every point of the swept surface lies within
// D / (2 m) of the nearest sample segment, so the inflated samples cover the sweep (conservative).
import { BODY_REGION_DATA, maxTransientSpeed, type BodyRegion } from './body-regions.ts';
import type { CellObstacle, SafetyCell } from './cell.ts';
import { ballExcess, distance, lerp, pointBoxDistance, pointSegmentDistance, segmentBoxDistance, segmentSegmentDistance, type Vec3 } from './geometry.ts';
import type { SafetyRequest } from './request.ts';
import { maxSpeedForSeparation, protectiveSeparation } from './ssm.ts';

export const ESTOP_STATES = ['armed', 'engaged', 'fault', 'unavailable'] as const;
export type EstopState = (typeof ESTOP_STATES)[number];

export interface Heartbeat {
  receivedAt: number;
  estop: EstopState;
}

export type CheckName = 'joint_limits' | 'joint_speed' | 'workspace' | 'collision' | 'power_force_limiting' | 'speed_separation' | 'emergency_stop';

export interface CheckResult {
  name: CheckName;
  status: 'pass' | 'fail' | 'not_applicable';
  detail: string;
  /** Numbers behind the verdict (limits, measured values), for the report and the PWA charts. */
  values?: Record<string, number | string | null>;
}

export interface SafetyDecision {
  decision: 'approve' | 'deny';
  cellId: string;
  requestId: string | null;
  checks: CheckResult[];
  /** Names of the failed checks. */
  failed: CheckName[];
  recommendation: {
    /** Highest Cartesian speed of any arm point that would pass the human checks (m/s), or null if not limiting. */
    maxSpeedMps: number | null;
    /** Stretch the trajectory's times by this factor (>= 1) to pass the speed checks; null if slowing cannot help. */
    timeScale: number | null;
    actions: string[];
  };
}

interface SweptSample {
  link: number;
  waypoint: number;
  a: Vec3;
  b: Vec3;
  /** link radius + sweep inflation */
  radius: number;
}

function sweptSamples(cell: SafetyCell, request: SafetyRequest): SweptSample[] {
  const out: SweptSample[] = [];
  const w = request.waypoints;
  const tol = cell.sweepToleranceM;
  for (let l = 0; l < cell.linkRadii.length; l++) {
    const r = cell.linkRadii[l]!;
    if (w.length === 1) {
      out.push({ link: l, waypoint: 0, a: w[0]!.links[l]!, b: w[0]!.links[l + 1]!, radius: r });
      continue;
    }
    for (let i = 0; i + 1 < w.length; i++) {
      const a0 = w[i]!.links[l]!;
      const b0 = w[i]!.links[l + 1]!;
      const a1 = w[i + 1]!.links[l]!;
      const b1 = w[i + 1]!.links[l + 1]!;
      const D = Math.max(distance(a0, a1), distance(b0, b1));
      const intervals = Math.max(1, Math.ceil(D / (2 * tol)));
      const inflate = D / (2 * intervals);
      for (let j = i === 0 ? 0 : 1; j <= intervals; j++) {
        const tau = j / intervals;
        out.push({ link: l, waypoint: j === intervals ? i + 1 : i, a: lerp(a0, a1, tau), b: lerp(b0, b1, tau), radius: r + inflate });
      }
    }
  }
  return out;
}

/**
 * Distance from a sample's axis to an obstacle's surface; once the cheap lower bound (box: distance to
 * its centre minus its circumradius) is already >= `cutoff`, that bound is returned instead.
 */
function obstacleDistance(s: SweptSample, o: CellObstacle, cutoff: number): number {
  if (o.shape === 'box') {
    const h = o.halfExtents;
    const lower = pointSegmentDistance({ p: o.center, a: s.a, b: s.b }) - Math.sqrt(h[0] * h[0] + h[1] * h[1] + h[2] * h[2]);
    if (lower >= cutoff) return lower;
    return segmentBoxDistance({ a: s.a, b: s.b, box: o });
  }
  if (o.shape === 'capsule') return segmentSegmentDistance({ p1: s.a, q1: s.b, p2: o.a, q2: o.b }) - o.radius;
  return pointSegmentDistance({ p: o.center, a: s.a, b: s.b }) - o.radius;
}

/** Highest speed of any chain point between consecutive waypoints, m/s. */
function peakCartesianSpeed(request: SafetyRequest): number {
  let v = 0;
  const w = request.waypoints;
  for (let i = 0; i + 1 < w.length; i++) {
    const dt = w[i + 1]!.t - w[i]!.t;
    for (let k = 0; k < w[i]!.links.length; k++) v = Math.max(v, distance(w[i + 1]!.links[k]!, w[i]!.links[k]!) / dt);
  }
  return v;
}

const fmt = (x: number, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

export function validateCommand(options: { cell: SafetyCell; request: SafetyRequest; heartbeat: Heartbeat | null; now: number }): SafetyDecision {
  const { cell, request, heartbeat, now } = options;
  const checks: CheckResult[] = [];
  const actions: string[] = [];
  let timeScale = 1;
  let maxSpeed: number | null = null;
  const w = request.waypoints;

  // joint_limits
  {
    let worst: { i: number; j: number; q: number } | null = null;
    for (let i = 0; i < w.length && !worst; i++)
      for (let j = 0; j < cell.joints.length; j++) {
        const q = w[i]!.joints[j]!;
        const J = cell.joints[j]!;
        if (q < J.min || q > J.max) {
          worst = { i, j, q };
          break;
        }
      }
    if (worst) {
      const J = cell.joints[worst.j]!;
      checks.push({ name: 'joint_limits', status: 'fail', detail: `waypoint ${worst.i}: joint ${J.name} at ${fmt(worst.q)} outside [${J.min}, ${J.max}]`, values: { waypoint: worst.i, joint: J.name, position: worst.q, min: J.min, max: J.max } });
      actions.push(`keep joint ${J.name} within [${J.min}, ${J.max}]`);
    } else checks.push({ name: 'joint_limits', status: 'pass', detail: `${w.length} waypoints within the limits of ${cell.joints.length} joints` });
  }

  // joint_speed
  {
    let ratio = 0;
    let where: { i: number; j: number; v: number } | null = null;
    for (let i = 0; i < w.length; i++) {
      for (let j = 0; j < cell.joints.length; j++) {
        const limit = cell.joints[j]!.maxSpeed;
        const speeds: number[] = [];
        if (i + 1 < w.length) speeds.push(Math.abs(w[i + 1]!.joints[j]! - w[i]!.joints[j]!) / (w[i + 1]!.t - w[i]!.t));
        if (w[i]!.jointVelocities) speeds.push(Math.abs(w[i]!.jointVelocities![j]!));
        for (const v of speeds)
          if (v / limit > ratio) {
            ratio = v / limit;
            where = { i, j, v };
          }
      }
    }
    if (ratio > 1 && where) {
      const J = cell.joints[where.j]!;
      checks.push({ name: 'joint_speed', status: 'fail', detail: `waypoint ${where.i}: joint ${J.name} at ${fmt(where.v)} over its limit ${J.maxSpeed}`, values: { waypoint: where.i, joint: J.name, speed: where.v, limit: J.maxSpeed, ratio } });
      timeScale = Math.max(timeScale, ratio);
    } else checks.push({ name: 'joint_speed', status: 'pass', detail: `highest joint speed at ${fmt(100 * ratio, 1)} % of its limit`, values: { ratio } });
  }

  const samples = sweptSamples(cell, request);

  // workspace
  {
    let out: SweptSample | null = null;
    let excessAt = 0;
    for (const s of samples) {
      let inside = false;
      let best = Infinity;
      for (const v of cell.workspace) {
        const e = Math.max(ballExcess({ p: s.a, radius: s.radius, planes: v.planes }), ballExcess({ p: s.b, radius: s.radius, planes: v.planes }));
        best = Math.min(best, e);
        if (e <= 0) {
          inside = true;
          break;
        }
      }
      if (!inside) {
        out = s;
        excessAt = best;
        break;
      }
    }
    if (out) {
      checks.push({ name: 'workspace', status: 'fail', detail: `link ${out.link} near waypoint ${out.waypoint} leaves the cell's volumes by ${fmt(excessAt)} m`, values: { link: out.link, waypoint: out.waypoint, excessM: excessAt } });
      actions.push('keep the arm inside the cell boundary');
    } else checks.push({ name: 'workspace', status: 'pass', detail: `${samples.length} swept capsules inside the cell's ${cell.workspace.length} volume(s)` });
  }

  // collision
  {
    let worst = Infinity;
    let at: { s: SweptSample; o: CellObstacle } | null = null;
    for (const s of samples)
      for (const o of cell.obstacles) {
        // Only the smallest clearance matters: a bound already above it needs no exact distance.
        const d = obstacleDistance(s, o, worst + s.radius) - s.radius;
        if (d < worst) {
          worst = d;
          at = { s, o };
        }
      }
    if (at && worst < cell.collisionMarginM) {
      checks.push({
        name: 'collision',
        status: 'fail',
        detail: `link ${at.s.link} near waypoint ${at.s.waypoint} comes within ${fmt(Math.max(worst, 0))} m of obstacle ${at.o.name} (margin ${cell.collisionMarginM} m)${worst <= 0 ? ': contact' : ''}`,
        values: { link: at.s.link, waypoint: at.s.waypoint, obstacle: at.o.name, clearanceM: worst, marginM: cell.collisionMarginM },
      });
      actions.push(`re-plan around obstacle ${at.o.name}`);
    } else checks.push({ name: 'collision', status: 'pass', detail: cell.obstacles.length ? `clearance ${fmt(worst)} m to the nearest obstacle` : 'no obstacles in the cell', values: { clearanceM: Number.isFinite(worst) ? worst : null } });
  }

  // Human checks share the arm's speed and the separation to each person.
  const vr = peakCartesianSpeed(request);
  const people = request.humans.map((h) => {
    let sep = Infinity;
    for (const s of samples) sep = Math.min(sep, pointSegmentDistance({ p: h.position, a: s.a, b: s.b }) - s.radius - h.radius);
    const vh = h.velocity ? Math.hypot(...h.velocity) : cell.ssm.humanSpeedMps;
    const terms = protectiveSeparation({ ssm: cell.ssm, robotSpeedMps: vr, humanSpeedMps: vh });
    const regions = (h.regions ?? cell.exposedRegions).filter((r) => cell.exposedRegions.includes(r));
    return { h, sep: Math.max(0, sep), vh, terms, regions, ssmOk: Math.max(0, sep) >= terms.protectiveSeparationM };
  });

  // power_force_limiting
  let pflSpeedOk = true;
  {
    const failures: string[] = [];
    const values: Record<string, number | string | null> = { robotSpeedMps: vr };
    for (const c of request.predictedContacts) {
      const limit = c.kind === 'transient' ? BODY_REGION_DATA[c.region].transientForceN : BODY_REGION_DATA[c.region].quasiStaticForceN;
      if (c.forceN > limit) failures.push(`predicted ${c.kind.replace('_', '-')} contact on ${c.region} at ${fmt(c.forceN, 1)} N over the ${limit} N limit`);
      if (!cell.exposedRegions.includes(c.region)) failures.push(`predicted contact on ${c.region}, which this cell does not allow to be touched`);
    }
    const contactPossible = people.filter((p) => cell.collaboration === 'pfl' || (cell.collaboration === 'pfl_or_ssm' && !p.ssmOk));
    let vAllowed = Infinity;
    let limiting: BodyRegion | null = null;
    for (const p of contactPossible)
      for (const region of p.regions.length ? p.regions : cell.exposedRegions) {
        const v = maxTransientSpeed({ region, movingMassKg: cell.robot.movingMassKg, payloadKg: request.payloadKg });
        if (v < vAllowed) {
          vAllowed = v;
          limiting = region;
        }
      }
    if (contactPossible.length > 0) {
      values.maxSpeedMps = vAllowed;
      values.limitingRegion = limiting;
      if (vr > vAllowed) {
        pflSpeedOk = false;
        if (cell.collaboration === 'pfl') failures.push(`arm at ${fmt(vr)} m/s; a contact on ${limiting} stays within ${BODY_REGION_DATA[limiting!].transientForceN} N only up to ${fmt(vAllowed)} m/s (ISO/TS 15066 A.5)`);
      }
      maxSpeed = maxSpeed === null ? vAllowed : Math.min(maxSpeed, vAllowed);
    }
    if (failures.length) checks.push({ name: 'power_force_limiting', status: 'fail', detail: failures.join('; '), values });
    else if (contactPossible.length === 0 && request.predictedContacts.length === 0)
      checks.push({ name: 'power_force_limiting', status: 'not_applicable', detail: people.length ? 'every person is beyond the protective separation distance' : 'no person reported near the cell', values });
    else
      checks.push({
        name: 'power_force_limiting',
        status: 'pass',
        detail: contactPossible.length
          ? pflSpeedOk
            ? `arm at ${fmt(vr)} m/s within the ${fmt(vAllowed)} m/s that keeps a contact on ${limiting} within its limit`
            : `arm at ${fmt(vr)} m/s over the ${fmt(vAllowed)} m/s PFL speed for ${limiting} (see speed_separation)`
          : 'predicted contact forces within the ISO/TS 15066 limits',
        values,
      });
  }

  // speed_separation
  {
    if (people.length === 0) checks.push({ name: 'speed_separation', status: 'not_applicable', detail: 'no person reported near the cell' });
    else {
      const worst = people.reduce((a, b) => (b.sep - b.terms.protectiveSeparationM < a.sep - a.terms.protectiveSeparationM ? b : a));
      const values = { human: worst.h.id, separationM: worst.sep, humanSpeedMps: worst.vh, robotSpeedMps: vr, ...worst.terms };
      const vSsm = Math.min(...people.map((p) => maxSpeedForSeparation({ ssm: cell.ssm, separationM: p.sep, humanSpeedMps: p.vh })));
      const text = `${worst.h.id} at ${fmt(worst.sep)} m, protective separation S_p = ${fmt(worst.terms.protectiveSeparationM)} m`;
      if (cell.collaboration === 'pfl') checks.push({ name: 'speed_separation', status: 'not_applicable', detail: `${text} (cell collaborates by power and force limiting)`, values });
      else if (people.every((p) => p.ssmOk)) checks.push({ name: 'speed_separation', status: 'pass', detail: text, values });
      else if (cell.collaboration === 'pfl_or_ssm' && pflSpeedOk)
        checks.push({ name: 'speed_separation', status: 'pass', detail: `${text}: closer than S_p, but slow enough for power and force limiting`, values });
      else {
        checks.push({ name: 'speed_separation', status: 'fail', detail: `${text}: too close at ${fmt(vr)} m/s`, values: { ...values, maxSpeedMps: vSsm } });
        const allowed = cell.collaboration === 'pfl_or_ssm' ? Math.max(vSsm, maxSpeed ?? 0) : vSsm;
        maxSpeed = cell.collaboration === 'pfl_or_ssm' ? allowed : maxSpeed === null ? vSsm : Math.min(maxSpeed, vSsm);
        if (allowed > 0) timeScale = Math.max(timeScale, vr / allowed);
        else {
          timeScale = Infinity;
          actions.push('hold until the person is further away');
        }
      }
    }
  }

  // emergency_stop
  {
    const maxAge = cell.estop.maxHeartbeatAgeMs;
    if (!heartbeat) {
      checks.push({ name: 'emergency_stop', status: 'fail', detail: 'no heartbeat from this robot: e-stop availability unknown' });
      actions.push('send heartbeats (POST /v1/robots/me/heartbeat)');
    } else {
      const age = now - heartbeat.receivedAt;
      const values = { heartbeatAgeMs: age, maxHeartbeatAgeMs: maxAge, estop: heartbeat.estop };
      if (age > maxAge) {
        checks.push({ name: 'emergency_stop', status: 'fail', detail: `last heartbeat ${age} ms ago (at most ${maxAge} ms)`, values });
        actions.push('send heartbeats (POST /v1/robots/me/heartbeat)');
      } else if (heartbeat.estop !== 'armed') {
        checks.push({ name: 'emergency_stop', status: 'fail', detail: `e-stop is ${heartbeat.estop}`, values });
        actions.push(heartbeat.estop === 'engaged' ? 'release the e-stop after the cell is clear' : 'repair the e-stop circuit');
      } else checks.push({ name: 'emergency_stop', status: 'pass', detail: `e-stop armed, heartbeat ${age} ms old`, values });
    }
  }

  const failed = checks.filter((c) => c.status === 'fail').map((c) => c.name);
  const speedOnly = failed.every((n) => n === 'joint_speed' || n === 'speed_separation' || n === 'power_force_limiting');
  if (timeScale > 1 && Number.isFinite(timeScale)) actions.push(`slow the motion: stretch its times by ${fmt(timeScale)}x`);
  return {
    decision: failed.length === 0 ? 'approve' : 'deny',
    cellId: request.cellId,
    requestId: request.requestId,
    checks,
    failed,
    recommendation: {
      maxSpeedMps: maxSpeed === null ? null : fmt(maxSpeed, 4),
      timeScale: failed.length === 0 ? 1 : speedOnly && Number.isFinite(timeScale) && timeScale > 1 ? fmt(timeScale, 4) : null,
      actions,
    },
  };
}

export { pointBoxDistance };
