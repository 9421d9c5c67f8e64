// A robot's command safety request: the motion it intends to execute and what it knows about the
// people around it. Parsed against the cell it names, so a request that cannot be physical for that
// cell (wrong joint count, time running backwards, links that change length, a payload above the
// robot's rating, absurd speeds) is refused as malformed with the field named, before any check runs.
import { BODY_REGIONS, type BodyRegion } from './body-regions.ts';
import type { SafetyCell } from './cell.ts';
import { distance, type Vec3 } from './geometry.ts';
import { arr, fail, num, obj, oneOf, str, vec3 } from './parse.ts';

export const MAX_WAYPOINTS = 512;
/** Rigid links keep their length between waypoints within this tolerance (m). */
export const LINK_LENGTH_TOLERANCE_M = 0.005;
/** Faster than any industrial arm: a request claiming it is not physical. */
const MAX_CARTESIAN_SPEED_MPS = 20;
const MAX_HUMAN_SPEED_MPS = 10;

export interface Waypoint {
  /** Seconds from the start of the motion. */
  t: number;
  joints: number[];
  /** Kinematic chain points in the cell frame: base, joints..., tool tip (linkRadii.length + 1 points). */
  links: Vec3[];
  jointVelocities?: number[];
}

export interface HumanObservation {
  id: string;
  /** Nearest point of the person as the cell's sensors report it (with `radius`: centre of a sphere). */
  position: Vec3;
  radius: number;
  velocity: Vec3 | null;
  /** Body regions that could be touched; default: the cell's exposed regions. */
  regions: BodyRegion[] | null;
}

export interface PredictedContact {
  region: BodyRegion;
  forceN: number;
  kind: 'transient' | 'quasi_static';
}

export interface SafetyRequest {
  cellId: string;
  requestId: string | null;
  waypoints: Waypoint[];
  payloadKg: number;
  humans: HumanObservation[];
  predictedContacts: PredictedContact[];
}

export function parseSafetyRequest(options: { value: unknown; cell: SafetyCell; field?: string }): SafetyRequest {
  const { cell } = options;
  const root = options.field ?? '';
  const at = (f: string) => (root ? `${root}.${f}` : f);
  const r = obj(root, options.value, ['cellId', 'requestId', 'trajectory', 'payloadKg', 'humans', 'predictedContacts']);
  const cellId = str(at('cellId'), r.cellId, 64);
  const requestId = r.requestId === undefined ? null : str(at('requestId'), r.requestId, 128);
  const traj = obj(at('trajectory'), r.trajectory, ['waypoints']);
  const nJoints = cell.joints.length;
  const nPoints = cell.linkRadii.length + 1;
  const waypoints = arr(at('trajectory.waypoints'), traj.waypoints, 1, MAX_WAYPOINTS).map((w, i): Waypoint => {
    const f = at(`trajectory.waypoints[${i}]`);
    const o = obj(f, w, ['t', 'joints', 'links', 'jointVelocities']);
    const t = num(`${f}.t`, o.t, 0, 86_400);
    const joints = arr(`${f}.joints`, o.joints, nJoints, nJoints).map((q, k) => num(`${f}.joints[${k}]`, q, -1000, 1000));
    const links = arr(`${f}.links`, o.links, nPoints, nPoints).map((p, k) => vec3(`${f}.links[${k}]`, p));
    const jointVelocities =
      o.jointVelocities === undefined ? undefined : arr(`${f}.jointVelocities`, o.jointVelocities, nJoints, nJoints).map((v, k) => num(`${f}.jointVelocities[${k}]`, v, -1000, 1000));
    return { t, joints, links, ...(jointVelocities ? { jointVelocities } : {}) };
  });
  // Physical consistency of the motion.
  for (let i = 1; i < waypoints.length; i++) {
    const prev = waypoints[i - 1]!;
    const w = waypoints[i]!;
    const f = at(`trajectory.waypoints[${i}]`);
    if (!(w.t > prev.t)) fail(`${f}.t`, `expected a time after waypoint ${i - 1} (${prev.t} s), got ${w.t}`);
    const dt = w.t - prev.t;
    for (let k = 0; k < nPoints; k++) {
      const v = distance(w.links[k]!, prev.links[k]!) / dt;
      if (v > MAX_CARTESIAN_SPEED_MPS) fail(`${f}.links[${k}]`, `moves at ${v.toFixed(1)} m/s since waypoint ${i - 1}, beyond any physical arm (${MAX_CARTESIAN_SPEED_MPS} m/s)`);
    }
  }
  const first = waypoints[0]!;
  for (let i = 1; i < waypoints.length; i++) {
    for (let k = 0; k + 1 < nPoints; k++) {
      const l0 = distance(first.links[k]!, first.links[k + 1]!);
      const li = distance(waypoints[i]!.links[k]!, waypoints[i]!.links[k + 1]!);
      if (Math.abs(li - l0) > LINK_LENGTH_TOLERANCE_M)
        fail(at(`trajectory.waypoints[${i}].links[${k + 1}]`), `makes link ${k} ${li.toFixed(3)} m long, ${l0.toFixed(3)} m at waypoint 0: a rigid link cannot change length`);
    }
  }
  const payloadKg = num(at('payloadKg'), r.payloadKg ?? 0, 0, 100_000);
  if (payloadKg > cell.robot.maxPayloadKg) fail(at('payloadKg'), `expected at most the robot's rated payload ${cell.robot.maxPayloadKg} kg, got ${payloadKg}`);
  const humans = (r.humans === undefined ? [] : arr(at('humans'), r.humans, 0, 64)).map((h, i): HumanObservation => {
    const f = at(`humans[${i}]`);
    const o = obj(f, h, ['id', 'position', 'radius', 'velocity', 'regions']);
    const velocity = o.velocity === undefined || o.velocity === null ? null : vec3(`${f}.velocity`, o.velocity, MAX_HUMAN_SPEED_MPS);
    if (velocity && Math.hypot(...velocity) > MAX_HUMAN_SPEED_MPS) fail(`${f}.velocity`, `expected a human speed up to ${MAX_HUMAN_SPEED_MPS} m/s`);
    return {
      id: o.id === undefined ? `human-${i}` : str(`${f}.id`, o.id, 64),
      position: vec3(`${f}.position`, o.position),
      radius: o.radius === undefined ? 0 : num(`${f}.radius`, o.radius, 0, 2),
      velocity,
      regions: o.regions === undefined ? null : arr(`${f}.regions`, o.regions, 1, BODY_REGIONS.length).map((x, k) => oneOf(`${f}.regions[${k}]`, x, BODY_REGIONS)),
    };
  });
  const predictedContacts = (r.predictedContacts === undefined ? [] : arr(at('predictedContacts'), r.predictedContacts, 0, 256)).map((c, i): PredictedContact => {
    const f = at(`predictedContacts[${i}]`);
    const o = obj(f, c, ['region', 'forceN', 'kind']);
    return {
      region: oneOf(`${f}.region`, o.region, BODY_REGIONS),
      forceN: num(`${f}.forceN`, o.forceN, 0, 1e6),
      kind: o.kind === undefined ? 'transient' : oneOf(`${f}.kind`, o.kind, ['transient', 'quasi_static'] as const),
    };
  });
  return { cellId, requestId, waypoints, payloadKg, humans, predictedContacts };
}
