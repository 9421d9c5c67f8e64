// Planar geometry for the simulator: forward kinematics of a serial planar arm, segment distances,
// half-planes and rectangles. Points are (x, y) in metres, angles in radians.

export interface Vec2 {
  x: number;
  y: number;
}

/** Joint and tip positions of a planar serial arm with its base at the origin: n + 1 points. */
export function forwardKinematics(options: { joints: ArrayLike<number>; linkLengths: readonly number[] }): Vec2[] {
  const { joints, linkLengths } = options;
  const points: Vec2[] = [{ x: 0, y: 0 }];
  let angle = 0;
  let x = 0;
  let y = 0;
  for (let i = 0; i < linkLengths.length; i++) {
    angle += joints[i]!;
    x += linkLengths[i]! * Math.cos(angle);
    y += linkLengths[i]! * Math.sin(angle);
    points.push({ x, y });
  }
  return points;
}

/**
 * The 2 x n Jacobian of point `points[k]` (k = 1..n) with respect to the joint angles, row-major
 * [dx/dq_0..dx/dq_{n-1}, dy/dq_0..]. For a revolute joint j at p_j: d p / d q_j = z x (p - p_j) for j < k.
 */
export function pointJacobian(options: { points: Vec2[]; k: number; n: number }): Float64Array {
  const { points, k, n } = options;
  const p = points[k]!;
  const J = new Float64Array(2 * n);
  for (let j = 0; j < Math.min(k, n); j++) {
    const pj = points[j]!;
    J[j] = -(p.y - pj.y);
    J[n + j] = p.x - pj.x;
  }
  return J;
}

/** Closest point parameter t in [0, 1] on segment a-b to point p, and the distance. */
export function pointSegment(options: { p: Vec2; a: Vec2; b: Vec2 }): { t: number; distance: number; closest: Vec2 } {
  const { p, a, b } = options;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len2 = dx * dx + dy * dy;
  let t = len2 > 0 ? ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2 : 0;
  t = Math.min(1, Math.max(0, t));
  const closest = { x: a.x + t * dx, y: a.y + t * dy };
  return { t, distance: Math.hypot(p.x - closest.x, p.y - closest.y), closest };
}

export interface Rect {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

export function pointRectDistance(options: { p: Vec2; rect: Rect }): { distance: number; closest: Vec2 } {
  const { p, rect } = options;
  const closest = { x: Math.min(rect.maxX, Math.max(rect.minX, p.x)), y: Math.min(rect.maxY, Math.max(rect.minY, p.y)) };
  return { distance: Math.hypot(p.x - closest.x, p.y - closest.y), closest };
}

function segmentsIntersect(a: Vec2, b: Vec2, c: Vec2, d: Vec2): boolean {
  const cross = (o: Vec2, p: Vec2, q: Vec2) => (p.x - o.x) * (q.y - o.y) - (p.y - o.y) * (q.x - o.x);
  const d1 = cross(c, d, a);
  const d2 = cross(c, d, b);
  const d3 = cross(a, b, c);
  const d4 = cross(a, b, d);
  return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0));
}

/** Distance between segment a-b and an axis-aligned rectangle (0 when they overlap). */
export function segmentRectDistance(options: { a: Vec2; b: Vec2; rect: Rect }): number {
  const { a, b, rect } = options;
  const inside = (p: Vec2) => p.x >= rect.minX && p.x <= rect.maxX && p.y >= rect.minY && p.y <= rect.maxY;
  if (inside(a) || inside(b)) return 0;
  const corners: Vec2[] = [
    { x: rect.minX, y: rect.minY },
    { x: rect.maxX, y: rect.minY },
    { x: rect.maxX, y: rect.maxY },
    { x: rect.minX, y: rect.maxY },
  ];
  let best = Infinity;
  for (let i = 0; i < 4; i++) {
    const c = corners[i]!;
    const d = corners[(i + 1) % 4]!;
    if (segmentsIntersect(a, b, c, d)) return 0;
    best = Math.min(best, pointSegment({ p: c, a, b }).distance);
  }
  best = Math.min(best, pointRectDistance({ p: a, rect }).distance, pointRectDistance({ p: b, rect }).distance);
  return best;
}

/** A half-plane n . p <= d (n need not be unit length; distances use |n|). */
export interface HalfPlane {
  nx: number;
  ny: number;
  d: number;
}

/** Signed distance of p outside the half-plane (negative inside). */
export function halfPlaneExcess(options: { p: Vec2; plane: HalfPlane }): number {
  const { p, plane } = options;
  return (plane.nx * p.x + plane.ny * p.y - plane.d) / Math.hypot(plane.nx, plane.ny);
}

export function wrapAngle(a: number): number {
  return Math.atan2(Math.sin(a), Math.cos(a));
}

/** Polar angle of p in [-pi/2, 3pi/2): continuous over the cell (the base faces +y; nothing lies behind it). */
export function cellAngle(p: Vec2): number {
  const a = Math.atan2(p.y, p.x);
  return a < -Math.PI / 2 ? a + 2 * Math.PI : a;
}
