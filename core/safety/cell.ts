// A safety cell: the geometry and limits command validation checks a robot's motion against. Cells are
// configured per fleet by officers/admins (PUT /v1/fleets/:id/cells/:cellId) and stored as this JSON.
//
// Frames: one cell frame (metres, right-handed, z up). Trajectories give the robot's kinematic chain as
// points in this frame (base, each joint, tool tip), so link l is the capsule from point l to point l+1
// with radius linkRadii[l].
import { BODY_REGIONS, type BodyRegion } from './body-regions.ts';
import type { Box, HalfSpace, Vec3 } from './geometry.ts';
import { norm } from './geometry.ts';
import { arr, fail, int, num, obj, oneOf, optNum, str, vec3 } from './parse.ts';

export const CELL_FORMAT = 'tensorguard-safety-cell/v1';
export const COLLABORATION_MODES = ['pfl_or_ssm', 'pfl', 'ssm'] as const;
export type CollaborationMode = (typeof COLLABORATION_MODES)[number];

export interface CellJoint {
  name: string;
  min: number;
  max: number;
  /** rad/s (or m/s for a prismatic joint). */
  maxSpeed: number;
}

export type CellObstacle =
  | ({ name: string; shape: 'box' } & Box)
  | { name: string; shape: 'capsule'; a: Vec3; b: Vec3; radius: number }
  | { name: string; shape: 'sphere'; center: Vec3; radius: number };

export interface SafetyCell {
  format: typeof CELL_FORMAT;
  name: string;
  joints: CellJoint[];
  /** One radius per link (chain points - 1), m. */
  linkRadii: number[];
  /** The allowed space: a union of convex volumes; every swept capsule must lie inside one of them. */
  workspace: Array<{ name: string; planes: HalfSpace[] }>;
  obstacles: CellObstacle[];
  /** Required clearance between the arm's capsules and obstacles, m. */
  collisionMarginM: number;
  /** Largest gap between the sampled capsules of a swept motion, m (see docs/SAFETY.md). */
  sweepToleranceM: number;
  robot: { movingMassKg: number; maxPayloadKg: number };
  collaboration: CollaborationMode;
  /** Body regions that may be touched in this cell (ISO/TS 15066 body model). */
  exposedRegions: BodyRegion[];
  ssm: {
    reactionTimeS: number;
    stoppingTimeS: number;
    /** Measured stopping distance; null: v_r T_s / 2 (constant deceleration). */
    stoppingDistanceM: number | null;
    /** Human approach speed when the sensors give none: 1.6 m/s (ISO 13855). */
    humanSpeedMps: number;
    intrusionDistanceM: number;
    sensorUncertaintyM: number;
    robotUncertaintyM: number;
  };
  estop: { maxHeartbeatAgeMs: number };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._:-]*$/;

function parseObstacle(field: string, v: unknown, i: number): CellObstacle {
  const o = v as Record<string, unknown>;
  const shape = oneOf(`${field}.shape`, (o as { shape?: unknown })?.shape, ['box', 'capsule', 'sphere'] as const);
  const name = o.name === undefined ? `obstacle-${i}` : str(`${field}.name`, o.name, 64, NAME);
  if (shape === 'box') {
    obj(field, v, ['name', 'shape', 'center', 'halfExtents', 'rotation']);
    const halfExtents = vec3(`${field}.halfExtents`, o.halfExtents, 100);
    halfExtents.forEach((h, k) => h <= 0 && fail(`${field}.halfExtents[${k}]`, `expected a positive half extent, got ${h}`));
    let rotation: [number, number, number, number] | undefined;
    if (o.rotation !== undefined) {
      const q = arr(`${field}.rotation`, o.rotation, 4, 4).map((x, k) => num(`${field}.rotation[${k}]`, x, -1, 1)) as [number, number, number, number];
      const len = Math.hypot(...q);
      if (Math.abs(len - 1) > 1e-6) fail(`${field}.rotation`, `expected a unit quaternion [w, x, y, z], got one of length ${len}`);
      rotation = q;
    }
    return { name, shape, center: vec3(`${field}.center`, o.center), halfExtents, ...(rotation ? { rotation } : {}) };
  }
  if (shape === 'capsule') {
    obj(field, v, ['name', 'shape', 'a', 'b', 'radius']);
    return { name, shape, a: vec3(`${field}.a`, o.a), b: vec3(`${field}.b`, o.b), radius: num(`${field}.radius`, o.radius, 0, 100) };
  }
  obj(field, v, ['name', 'shape', 'center', 'radius']);
  return { name, shape, center: vec3(`${field}.center`, o.center), radius: num(`${field}.radius`, o.radius, 0, 100) };
}

/** Validates a cell document (PUT body); errors name the field. */
export function parseSafetyCell(options: { value: unknown }): SafetyCell {
  const c = obj('', options.value, ['format', 'name', 'joints', 'linkRadii', 'workspace', 'obstacles', 'collisionMarginM', 'sweepToleranceM', 'robot', 'collaboration', 'exposedRegions', 'ssm', 'estop']);
  if (c.format !== undefined && c.format !== CELL_FORMAT) fail('format', `expected "${CELL_FORMAT}", got ${JSON.stringify(c.format)}`);
  const joints = arr('joints', c.joints, 1, 32).map((j, i) => {
    const f = `joints[${i}]`;
    const o = obj(f, j, ['name', 'min', 'max', 'maxSpeed']);
    const min = num(`${f}.min`, o.min, -1000, 1000);
    const max = num(`${f}.max`, o.max, -1000, 1000);
    if (max <= min) fail(`${f}.max`, `expected a value above min (${min}), got ${max}`);
    return { name: o.name === undefined ? `j${i}` : str(`${f}.name`, o.name, 64, NAME), min, max, maxSpeed: num(`${f}.maxSpeed`, o.maxSpeed, 1e-6, 100) };
  });
  const linkRadii = arr('linkRadii', c.linkRadii, 1, 33).map((r, i) => num(`linkRadii[${i}]`, r, 0, 5));
  const workspace = arr('workspace', c.workspace, 1, 64).map((w, i) => {
    const f = `workspace[${i}]`;
    const o = obj(f, w, ['name', 'planes']);
    const planes = arr(`${f}.planes`, o.planes, 4, 64).map((p, k) => {
      const pf = `${f}.planes[${k}]`;
      const po = obj(pf, p, ['normal', 'offset']);
      const normal = vec3(`${pf}.normal`, po.normal);
      if (norm(normal) < 1e-9) fail(`${pf}.normal`, 'expected a non-zero normal');
      return { normal, offset: num(`${pf}.offset`, po.offset, -1000, 1000) };
    });
    return { name: o.name === undefined ? `volume-${i}` : str(`${f}.name`, o.name, 64, NAME), planes };
  });
  const obstacles = c.obstacles === undefined ? [] : arr('obstacles', c.obstacles, 0, 256).map((o, i) => parseObstacle(`obstacles[${i}]`, o, i));
  const robot = obj('robot', c.robot, ['movingMassKg', 'maxPayloadKg']);
  const ssmIn = c.ssm === undefined ? {} : obj('ssm', c.ssm, ['reactionTimeS', 'stoppingTimeS', 'stoppingDistanceM', 'humanSpeedMps', 'intrusionDistanceM', 'sensorUncertaintyM', 'robotUncertaintyM']);
  const estop = c.estop === undefined ? {} : obj('estop', c.estop, ['maxHeartbeatAgeMs']);
  const exposed = c.exposedRegions === undefined ? [...BODY_REGIONS] : arr('exposedRegions', c.exposedRegions, 1, BODY_REGIONS.length).map((r, i) => oneOf(`exposedRegions[${i}]`, r, BODY_REGIONS));
  return {
    format: CELL_FORMAT,
    name: c.name === undefined ? 'cell' : str('name', c.name, 64, NAME),
    joints,
    linkRadii,
    workspace,
    obstacles,
    collisionMarginM: optNum('collisionMarginM', c.collisionMarginM, 0, 10, 0.02),
    sweepToleranceM: optNum('sweepToleranceM', c.sweepToleranceM, 0.001, 1, 0.01),
    robot: { movingMassKg: num('robot.movingMassKg', robot.movingMassKg, 0.01, 100_000), maxPayloadKg: num('robot.maxPayloadKg', robot.maxPayloadKg, 0, 100_000) },
    collaboration: c.collaboration === undefined ? 'pfl_or_ssm' : oneOf('collaboration', c.collaboration, COLLABORATION_MODES),
    exposedRegions: [...new Set(exposed)],
    ssm: {
      reactionTimeS: optNum('ssm.reactionTimeS', ssmIn.reactionTimeS, 0, 10, 0.1),
      stoppingTimeS: optNum('ssm.stoppingTimeS', ssmIn.stoppingTimeS, 0, 10, 0.3),
      stoppingDistanceM: ssmIn.stoppingDistanceM === undefined || ssmIn.stoppingDistanceM === null ? null : num('ssm.stoppingDistanceM', ssmIn.stoppingDistanceM, 0, 100),
      humanSpeedMps: optNum('ssm.humanSpeedMps', ssmIn.humanSpeedMps, 0, 10, 1.6),
      intrusionDistanceM: optNum('ssm.intrusionDistanceM', ssmIn.intrusionDistanceM, 0, 10, 0.2),
      sensorUncertaintyM: optNum('ssm.sensorUncertaintyM', ssmIn.sensorUncertaintyM, 0, 10, 0.05),
      robotUncertaintyM: optNum('ssm.robotUncertaintyM', ssmIn.robotUncertaintyM, 0, 10, 0.02),
    },
    estop: { maxHeartbeatAgeMs: estop.maxHeartbeatAgeMs === undefined ? 2000 : int('estop.maxHeartbeatAgeMs', estop.maxHeartbeatAgeMs, 1, 3_600_000) },
  };
}

export const cellIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
