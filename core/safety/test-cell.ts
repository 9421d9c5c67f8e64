// Test fixture only (no product code imports it): the two-link arm on a table that the safety tests of
// core/, the server routes, the CLI and the authorization suite share — base at (0, 0, 0.5) m, links
// 0.5 m and 0.4 m with 0.05 m radii, a 2 m x 2 m x 1.5 m workspace and one pillar obstacle — and its
// planar forward kinematics, so the hand-computed expectations of every suite refer to one geometry.
import type { Vec3 } from './geometry.ts';

export const TWO_LINK_CELL = {
  name: 'line-1',
  joints: [
    { name: 'shoulder', min: -3, max: 3, maxSpeed: 2 },
    { name: 'elbow', min: -2.5, max: 2.5, maxSpeed: 2 },
  ],
  linkRadii: [0.05, 0.05],
  workspace: [
    {
      name: 'table',
      planes: [
        { normal: [1, 0, 0], offset: 1 },
        { normal: [-1, 0, 0], offset: 1 },
        { normal: [0, 1, 0], offset: 1 },
        { normal: [0, -1, 0], offset: 1 },
        { normal: [0, 0, 1], offset: 1.5 },
        { normal: [0, 0, -1], offset: 0 },
      ],
    },
  ],
  obstacles: [{ name: 'pillar', shape: 'box', center: [0, 0.8, 0.5], halfExtents: [0.1, 0.1, 0.5] }],
  robot: { movingMassKg: 20, maxPayloadKg: 5 },
};

/** Link endpoints of the planar arm at joint angles (q0, q1), at height 0.5 m. */
export function twoLinkPose(q0: number, q1: number): Vec3[] {
  const p1: Vec3 = [0.5 * Math.cos(q0), 0.5 * Math.sin(q0), 0.5];
  const p2: Vec3 = [p1[0] + 0.4 * Math.cos(q0 + q1), p1[1] + 0.4 * Math.sin(q0 + q1), 0.5];
  return [[0, 0, 0.5], p1, p2];
}
