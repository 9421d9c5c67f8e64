// 3-D geometry for command safety validation: closest distances between segments (capsule axes),
// points, oriented boxes and convex volumes in half-space form. Units: metres.
//
// Segment-segment: Ericson, "Real-Time Collision Detection" (2005), 5.1.9 ClosestPtSegmentSegment.
// Segment-box: the segment is moved into the box frame (inverse rotation), where the box is axis-aligned
// and the squared distance is a piecewise quadratic of the segment parameter, minimised piece by piece.
// A capsule (segment + radius) is inside a convex volume {x : n_i . x <= d_i} iff both endpoints
// satisfy n_i . x <= d_i - r |n_i| for every i (the volume and the capsule are convex; the capsule is
// the Minkowski sum of its segment and a ball).

export type Vec3 = readonly [number, number, number];

export const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const scale = (a: Vec3, s: number): Vec3 => [a[0] * s, a[1] * s, a[2] * s];
export const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const norm = (a: Vec3): number => Math.sqrt(dot(a, a));
export const lerp = (a: Vec3, b: Vec3, t: number): Vec3 => [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), a[2] + t * (b[2] - a[2])];
export const distance = (a: Vec3, b: Vec3): number => norm(sub(a, b));

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
const EPS = 1e-12;

export function pointSegmentDistance(options: { p: Vec3; a: Vec3; b: Vec3 }): number {
  const { p, a, b } = options;
  const ab = sub(b, a);
  const len2 = dot(ab, ab);
  const t = len2 > EPS ? clamp01(dot(sub(p, a), ab) / len2) : 0;
  return distance(p, lerp(a, b, t));
}

/** Closest distance between segments p1-q1 and p2-q2 (Ericson 5.1.9). */
export function segmentSegmentDistance(options: { p1: Vec3; q1: Vec3; p2: Vec3; q2: Vec3 }): number {
  const { p1, q1, p2, q2 } = options;
  const d1 = sub(q1, p1);
  const d2 = sub(q2, p2);
  const r = sub(p1, p2);
  const a = dot(d1, d1);
  const e = dot(d2, d2);
  const f = dot(d2, r);
  let s: number;
  let t: number;
  if (a <= EPS && e <= EPS) return norm(r);
  if (a <= EPS) {
    s = 0;
    t = clamp01(f / e);
  } else {
    const c = dot(d1, r);
    if (e <= EPS) {
      t = 0;
      s = clamp01(-c / a);
    } else {
      const b = dot(d1, d2);
      const denom = a * e - b * b;
      s = denom > EPS ? clamp01((b * f - c * e) / denom) : 0;
      t = (b * s + f) / e;
      if (t < 0) {
        t = 0;
        s = clamp01(-c / a);
      } else if (t > 1) {
        t = 1;
        s = clamp01((b - c) / a);
      }
    }
  }
  return distance(add(p1, scale(d1, s)), add(p2, scale(d2, t)));
}

/** Unit quaternion [w, x, y, z] rotating box-frame vectors into the cell frame. */
export type Quaternion = readonly [number, number, number, number];

/** v rotated by the inverse of q (cell frame -> box frame). */
export function rotateInverse(q: Quaternion, v: Vec3): Vec3 {
  const [w, x, y, z] = q;
  // Inverse of a unit quaternion is its conjugate: rotate by (w, -x, -y, -z). v' = v + 2 w (u x v) + 2 u x (u x v), u = -(x, y, z).
  const ux = -x;
  const uy = -y;
  const uz = -z;
  const cx = uy * v[2] - uz * v[1];
  const cy = uz * v[0] - ux * v[2];
  const cz = ux * v[1] - uy * v[0];
  const ccx = uy * cz - uz * cy;
  const ccy = uz * cx - ux * cz;
  const ccz = ux * cy - uy * cx;
  return [v[0] + 2 * (w * cx + ccx), v[1] + 2 * (w * cy + ccy), v[2] + 2 * (w * cz + ccz)];
}

export interface Box {
  center: Vec3;
  halfExtents: Vec3;
  rotation?: Quaternion;
}

/** Distance from a point given in the box frame to the axis-aligned box [-h, h]. */
function pointAabbDistance(p: Vec3, h: Vec3): number {
  const dx = Math.max(Math.abs(p[0]) - h[0], 0);
  const dy = Math.max(Math.abs(p[1]) - h[1], 0);
  const dz = Math.max(Math.abs(p[2]) - h[2], 0);
  return Math.sqrt(dx * dx + dy * dy + dz * dz);
}

export function pointBoxDistance(options: { p: Vec3; box: Box }): number {
  const { p, box } = options;
  const local = box.rotation ? rotateInverse(box.rotation, sub(p, box.center)) : sub(p, box.center);
  return pointAabbDistance(local, box.halfExtents);
}

/**
 * Closest distance between segment a-b and a (possibly rotated) box; 0 when they intersect.
 * In the box frame the squared distance of p(t) = a + t d to [-h, h] is sum_i max(|a_i + t d_i| - h_i, 0)^2:
 * a convex, piecewise-quadratic function of t whose pieces change only where a coordinate crosses +-h_i.
 * Between consecutive breakpoints each axis is in a fixed state (below, inside, above), so the piece is
 * one quadratic; its minimum on the piece is exact. At most 6 breakpoints, 7 pieces.
 */
export function segmentBoxDistance(options: { a: Vec3; b: Vec3; box: Box }): number {
  const { box } = options;
  const a = box.rotation ? rotateInverse(box.rotation, sub(options.a, box.center)) : sub(options.a, box.center);
  const b = box.rotation ? rotateInverse(box.rotation, sub(options.b, box.center)) : sub(options.b, box.center);
  const h = box.halfExtents;
  const cuts = [0, 1];
  for (let i = 0; i < 3; i++) {
    const d = b[i]! - a[i]!;
    if (d === 0) continue;
    const t1 = (h[i]! - a[i]!) / d;
    const t2 = (-h[i]! - a[i]!) / d;
    if (t1 > 0 && t1 < 1) cuts.push(t1);
    if (t2 > 0 && t2 < 1) cuts.push(t2);
  }
  cuts.sort((x, y) => x - y);
  let best = Infinity;
  for (let k = 0; k + 1 < cuts.length; k++) {
    const lo = cuts[k]!;
    const hi = cuts[k + 1]!;
    const mid = (lo + hi) / 2;
    // On this piece: sum over axes outside the slab of (a_i + t d_i -+ h_i)^2 = A t^2 + B t + C.
    let A = 0;
    let B = 0;
    let C = 0;
    for (let i = 0; i < 3; i++) {
      const d = b[i]! - a[i]!;
      const v = a[i]! + mid * d;
      if (v > h[i]!) {
        const c0 = a[i]! - h[i]!;
        A += d * d;
        B += 2 * c0 * d;
        C += c0 * c0;
      } else if (v < -h[i]!) {
        const c0 = a[i]! + h[i]!;
        A += d * d;
        B += 2 * c0 * d;
        C += c0 * c0;
      }
    }
    let t = A > 0 ? -B / (2 * A) : lo;
    if (t < lo) t = lo;
    else if (t > hi) t = hi;
    const value = Math.max(0, A * t * t + B * t + C);
    if (value < best) best = value;
    if (best === 0) return 0;
  }
  return Math.sqrt(best);
}

export interface HalfSpace {
  /** Outward normal (need not be unit). */
  normal: Vec3;
  /** The volume is n . x <= offset. */
  offset: number;
}

/** Largest signed excess of a ball (centre p, radius r) outside the convex volume (<= 0: inside). */
export function ballExcess(options: { p: Vec3; radius: number; planes: readonly HalfSpace[] }): number {
  const { p, radius, planes } = options;
  let worst = -Infinity;
  for (const h of planes) {
    const n = norm(h.normal);
    const e = (dot(h.normal, p) - h.offset) / n + radius;
    if (e > worst) worst = e;
  }
  return worst;
}
