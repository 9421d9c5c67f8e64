// The scripted expert that demonstrates the reference task (core/sim): resolved-rate control of the
// gripper in polar coordinates around the base, with the privileged (noise-free) state of the simulator.
//
//   target   = object until held, then goal
//   blocking = first obstacle on the angular path (core/sim/env.ts blockingObstacle)
//   radius   -> min(target radius, blocking.safeRadius): retract under the obstacle, extend after it
//   angle    -> target angle, held while the arm is still too far out next to a blocking obstacle
//   near the target (< 12 cm, nothing blocking): straight-line approach
//   joints   = damped least squares J^T (J J^T + lambda^2 I)^-1 v, plus a null-space term that pulls the
//              wrist towards the base (keeps the folded arm under obstacles), scaled into the speed limits
//              with 20 % margin, so a learner's imitation error rarely asks for more than the drives may do.
import { ACT_DIM, type ReferenceTaskEnv } from '../sim/env.ts';
import { blockingObstacle } from '../sim/env.ts';
import { cellAngle, pointJacobian, pointRectDistance } from '../sim/geometry.ts';

const K_ANGLE = 2.5; // 1/s
const K_RADIUS = 3.5; // 1/s
const K_APPROACH = 4; // 1/s
const V_MAX = 0.6; // m/s, gripper
const HOLD_GAP = 0.12; // rad: stop turning this close to a blocking obstacle until retracted
const DAMPING = 0.05; // DLS lambda, m
const K_NULL = 3;
const K_LIMIT = 6;
const LIMIT_MARGIN = 0.4; // rad
const ACTION_MAX = 0.8;

export function expertAction(env: ReferenceTaskEnv): Float64Array {
  const s = env.scenario;
  const arm = s.arm;
  const pts = env.points;
  const ee = env.ee;
  const target = env.target;
  const phiE = cellAngle(ee);
  const rE = Math.hypot(ee.x, ee.y);
  const phiT = cellAngle(target);
  const rT = Math.hypot(target.x, target.y);
  const blocking = blockingObstacle({ ee, target, obstacles: s.obstacles, linkRadius: arm.linkRadius });
  let vx: number;
  let vy: number;
  const dx = target.x - ee.x;
  const dy = target.y - ee.y;
  if (!blocking && Math.hypot(dx, dy) < 0.12) {
    vx = K_APPROACH * dx;
    vy = K_APPROACH * dy;
  } else {
    let rDes = rT;
    let phiDot = K_ANGLE * (phiT - phiE);
    if (blocking) {
      // The wrist may stand further out than the gripper: retract the gripper by that excess too.
      let outer = rE;
      for (let k = 2; k < pts.length; k++) outer = Math.max(outer, Math.hypot(pts[k]!.x, pts[k]!.y));
      rDes = Math.min(rT, blocking.safeRadius - (outer - rE));
      if (blocking.angularGap > 0 && blocking.angularGap < HOLD_GAP && outer > blocking.safeRadius) phiDot = 0;
    }
    const rDot = K_RADIUS * (rDes - rE);
    const er = { x: Math.cos(phiE), y: Math.sin(phiE) };
    vx = rDot * er.x - rE * phiDot * er.y;
    vy = rDot * er.y + rE * phiDot * er.x;
  }
  // Keep clear of the person's zone: push the gripper away inside 10 cm of it.
  const zone = pointRectDistance({ p: ee, rect: s.humanZone });
  if (zone.distance < 0.1 && zone.distance > 0) {
    const push = (0.1 - zone.distance) * 8;
    vx += (push * (ee.x - zone.closest.x)) / zone.distance;
    vy += (push * (ee.y - zone.closest.y)) / zone.distance;
  }
  const speed = Math.hypot(vx, vy);
  if (speed > V_MAX) {
    vx *= V_MAX / speed;
    vy *= V_MAX / speed;
  }
  const n = ACT_DIM;
  const J = pointJacobian({ points: pts, k: n, n });
  // (J J^T + l^2 I)^-1 for the 2 x 2 case
  let a11 = DAMPING * DAMPING;
  let a12 = 0;
  let a22 = DAMPING * DAMPING;
  for (let j = 0; j < n; j++) {
    a11 += J[j]! * J[j]!;
    a12 += J[j]! * J[n + j]!;
    a22 += J[n + j]! * J[n + j]!;
  }
  const det = a11 * a22 - a12 * a12;
  const i11 = a22 / det;
  const i12 = -a12 / det;
  const i22 = a11 / det;
  const pinv = (wx: number, wy: number, out: Float64Array) => {
    const ux = i11 * wx + i12 * wy;
    const uy = i12 * wx + i22 * wy;
    for (let j = 0; j < n; j++) out[j] = J[j]! * ux + J[n + j]! * uy;
  };
  const qdot = new Float64Array(n);
  pinv(vx, vy, qdot);
  // Null space: descend 0.5 |wrist|^2, projected so the gripper's motion is unchanged: z - J+ J z.
  const wrist = pts[n - 1]!;
  const Jw = pointJacobian({ points: pts, k: n - 1, n });
  const z = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    z[j] = -K_NULL * (Jw[j]! * wrist.x + Jw[n + j]! * wrist.y);
    // and away from the joint limits (quadratic barrier inside LIMIT_MARGIN of either end)
    const lo = arm.jointMin[j]! + LIMIT_MARGIN;
    const hi = arm.jointMax[j]! - LIMIT_MARGIN;
    if (env.q[j]! < lo) z[j]! += K_LIMIT * (lo - env.q[j]!);
    if (env.q[j]! > hi) z[j]! += K_LIMIT * (hi - env.q[j]!);
  }
  let jzx = 0;
  let jzy = 0;
  for (let j = 0; j < n; j++) {
    jzx += J[j]! * z[j]!;
    jzy += J[n + j]! * z[j]!;
  }
  const back = new Float64Array(n);
  pinv(jzx, jzy, back);
  for (let j = 0; j < n; j++) qdot[j]! += z[j]! - back[j]!;
  // Never drive into a limit: within 0.05 rad of one, motion towards it stops.
  for (let j = 0; j < n; j++) {
    if (env.q[j]! < arm.jointMin[j]! + 0.05) qdot[j] = Math.max(qdot[j]!, 0);
    if (env.q[j]! > arm.jointMax[j]! - 0.05) qdot[j] = Math.min(qdot[j]!, 0);
  }
  const action = new Float64Array(n);
  let peak = 0;
  for (let j = 0; j < n; j++) {
    action[j] = qdot[j]! / arm.speedLimit[j]!;
    peak = Math.max(peak, Math.abs(action[j]!));
  }
  if (peak > ACTION_MAX) for (let j = 0; j < n; j++) action[j]! *= ACTION_MAX / peak;
  return action;
}
