// Scenarios of the reference task and the seeded scenario sets: nominal, per-site variations and
// out-of-distribution (sensor noise, latency jitter, shifted layouts).
//
// The task (top view of a table cell): a planar 3-joint arm with its base at the origin picks an object
// on one side and places it at a goal on the other, while obstacles stand on the arc between them
// (the arm has to retract under them), a person works in a zone at the cell's edge, and the cell's
// boundary is a convex polygon. A scenario is plain JSON: every number the simulator needs, plus the
// hex seed of its noise streams, so a scenario set can be stored, shipped and replayed exactly.
import { SeededRandom, deriveSeed, seedToHex } from './random.ts';
import type { HalfPlane, Rect } from './geometry.ts';
import type { BodyRegion } from '../safety/body-regions.ts';
import { describe } from '../errors.ts';

export interface ArmSpec {
  linkLengths: number[];
  /** Every link is a capsule of this radius, m. */
  linkRadius: number;
  jointMin: number[];
  jointMax: number[];
  /** Joint speed limits, rad/s. Actions are joint speeds in units of these limits. */
  speedLimit: number[];
  /** Robot moving mass M (ISO/TS 15066 A.5), kg. */
  movingMassKg: number;
}

export interface Circle {
  x: number;
  y: number;
  radius: number;
}

export interface Scenario {
  id: string;
  /** The set it belongs to: nominal, site:<name>, ood:<kind>. */
  set: string;
  /** 64 hex digits: seeds the scenario's sensor-noise and latency streams. */
  seed: string;
  arm: ArmSpec;
  /** The cell boundary as half-planes n . p <= d (a convex polygon). */
  workspace: HalfPlane[];
  obstacles: Circle[];
  humanZone: Rect;
  /** The exposed body region of the person in the zone, as a disk. */
  human: Circle & { region: BodyRegion };
  object: { x: number; y: number; massKg: number };
  goal: { x: number; y: number };
  initialJoints: number[];
  dt: number;
  maxSteps: number;
  graspTolerance: number;
  placeTolerance: number;
  /** Standard deviation of the observation noise (rad for joints, m for positions). */
  sensorNoise: number;
  /** Each step applies the action of a uniformly drawn 0..latencyMaxSteps steps ago. */
  latencyMaxSteps: number;
}

export const REFERENCE_ARM: Readonly<ArmSpec> = Object.freeze({
  linkLengths: [0.4, 0.32, 0.22],
  linkRadius: 0.035,
  jointMin: [-1.0, -2.7, -2.7],
  jointMax: [Math.PI + 1.0, 2.7, 2.7],
  speedLimit: [1.2, 1.6, 2.0],
  movingMassKg: 12,
});

const WORKSPACE: HalfPlane[] = [
  { nx: 1, ny: 0, d: 1.05 },
  { nx: -1, ny: 0, d: 1.05 },
  { nx: 0, ny: 1, d: 1.05 },
  { nx: 0, ny: -1, d: 0.45 },
];

type Range = [number, number];
const deg = (d: number) => (d * Math.PI) / 180;

/** A distribution of layouts; angles in degrees from the +x axis, radii in metres from the base. */
export interface LayoutDistribution {
  objectAngle: Range;
  objectRadius: Range;
  goalAngle: Range;
  goalRadius: Range;
  obstacles: Array<{ angle: Range; radius: Range; size: Range }>;
  humanZone: Rect;
  human: { x: number; y: number; radius: number; region: BodyRegion };
  payloadKg: Range;
  initialAngle: Range;
  sensorNoise: number;
  latencyMaxSteps: number;
  maxSteps: number;
}

const NOMINAL: LayoutDistribution = {
  objectAngle: [15, 70],
  objectRadius: [0.45, 0.85],
  goalAngle: [110, 165],
  goalRadius: [0.45, 0.85],
  obstacles: [{ angle: [82, 98], radius: [0.66, 0.78], size: [0.05, 0.08] }],
  humanZone: { minX: -1.05, minY: 0.7, maxX: -0.6, maxY: 1.05 },
  human: { x: -0.68, y: 0.8, radius: 0.05, region: 'hand' },
  payloadKg: [0.2, 1.0],
  initialAngle: [-20, 10],
  sensorNoise: 0,
  latencyMaxSteps: 0,
  maxSteps: 160,
};

/** Per-site variations: the layouts a robot meets at one customer site (its own demonstrations come from here). */
export const SITE_LAYOUTS: Readonly<Record<string, LayoutDistribution>> = Object.freeze({
  // Two pillars: one near the pick area, one past the middle.
  'site-a': {
    ...NOMINAL,
    objectAngle: [15, 45],
    goalAngle: [135, 165],
    obstacles: [
      { angle: [58, 68], radius: [0.66, 0.74], size: [0.05, 0.07] },
      { angle: [105, 118], radius: [0.66, 0.74], size: [0.05, 0.07] },
    ],
  },
  // Goal station close to the person's zone, heavier parts, forearm exposed.
  'site-b': {
    ...NOMINAL,
    goalAngle: [115, 135],
    goalRadius: [0.72, 0.86],
    payloadKg: [1.5, 2.5],
    humanZone: { minX: -1.05, minY: 0.78, maxX: -0.52, maxY: 1.05 },
    human: { x: -0.6, y: 0.86, radius: 0.06, region: 'forearm' },
  },
  // Reversed flow: pick on the left, place on the right.
  'site-c': {
    ...NOMINAL,
    objectAngle: [110, 165],
    goalAngle: [15, 70],
    initialAngle: [170, 190],
  },
});

/** Out-of-distribution variations of the nominal layouts. */
export const OOD_LAYOUTS: Readonly<Record<string, LayoutDistribution>> = Object.freeze({
  // 3 cm / 0.03 rad Gaussian noise on every joint reading and perceived position.
  noise: { ...NOMINAL, sensorNoise: 0.03 },
  // Actions applied 0..4 steps (0..200 ms) late, drawn per step.
  latency: { ...NOMINAL, latencyMaxSteps: 4 },
  // Wider pick and place arcs, nearer and farther parts, a larger obstacle anywhere in the middle.
  shift: {
    ...NOMINAL,
    objectAngle: [5, 80],
    objectRadius: [0.35, 0.9],
    goalAngle: [100, 175],
    goalRadius: [0.35, 0.9],
    obstacles: [{ angle: [70, 110], radius: [0.6, 0.82], size: [0.08, 0.11] }],
  },
});

export const SCENARIO_SET_NAMES = ['nominal', 'ood', ...Object.keys(SITE_LAYOUTS).map((s) => `site:${s}`)] as const;

function sample(rng: SeededRandom, r: Range): number {
  return rng.uniform(r[0], r[1]);
}

function polar(angleDeg: number, radius: number) {
  return { x: radius * Math.cos(deg(angleDeg)), y: radius * Math.sin(deg(angleDeg)) };
}

function rectDistance(p: { x: number; y: number }, r: Rect): number {
  const dx = Math.max(r.minX - p.x, 0, p.x - r.maxX);
  const dy = Math.max(r.minY - p.y, 0, p.y - r.maxY);
  return Math.hypot(dx, dy);
}

/** One scenario drawn from a layout distribution (rejection-samples layouts that are not solvable by construction). */
export function sampleScenario(options: { layout: LayoutDistribution; seed: Uint8Array; id: string; set: string }): Scenario {
  const { layout, id, set } = options;
  const rng = new SeededRandom(options.seed);
  const arm: ArmSpec = structuredClone(REFERENCE_ARM) as ArmSpec;
  for (let attempt = 0; attempt < 1000; attempt++) {
    const obstacles = layout.obstacles.map((o) => ({ ...polar(sample(rng, o.angle), sample(rng, o.radius)), radius: sample(rng, o.size) }));
    const object = polar(sample(rng, layout.objectAngle), sample(rng, layout.objectRadius));
    const goal = polar(sample(rng, layout.goalAngle), sample(rng, layout.goalRadius));
    const clear = (p: { x: number; y: number }) =>
      obstacles.every((o) => Math.hypot(p.x - o.x, p.y - o.y) > o.radius + 0.14) && rectDistance(p, layout.humanZone) > 0.12;
    if (!clear(object) || !clear(goal)) continue;
    const base = deg(sample(rng, layout.initialAngle));
    // Folded arm; the elbow bends so the links trail the gripper on its way from the pick side.
    const fold = base < Math.PI / 2 ? 1 : -1;
    const initialJoints = [base, fold * (1.3 + rng.uniform(-0.2, 0.2)), fold * (1.2 + rng.uniform(-0.2, 0.2))];
    return {
      id,
      set,
      seed: seedToHex(rng.deriveSeed('noise')),
      arm,
      workspace: WORKSPACE.map((p) => ({ ...p })),
      obstacles,
      humanZone: { ...layout.humanZone },
      human: { ...layout.human },
      object: { ...object, massKg: sample(rng, layout.payloadKg) },
      goal,
      initialJoints,
      dt: 0.05,
      maxSteps: layout.maxSteps,
      graspTolerance: 0.045,
      placeTolerance: 0.05,
      sensorNoise: layout.sensorNoise,
      latencyMaxSteps: layout.latencyMaxSteps,
    };
  }
  throw new Error(`scenario ${id}: no valid layout after 1000 draws`);
}

/**
 * A scenario set by name: `nominal`, `site:<name>` (SITE_LAYOUTS), `ood` (the OOD kinds in turn) or
 * `ood:<kind>`. Scenario i of a set is drawn from HKDF(seed, "<name>/<i>"), so sets are reproducible
 * from (name, seed, count) and a prefix of a larger set equals the smaller set.
 */
export function scenarioSet(options: { name: string; seed: Uint8Array; count: number }): Scenario[] {
  const { name, seed, count } = options;
  if (!Number.isSafeInteger(count) || count < 1 || count > 100_000) throw new RangeError(`"count" expected integer in [1, 100000], got ${describe(count)}`);
  const layoutFor = (i: number): { layout: LayoutDistribution; set: string } => {
    if (name === 'nominal') return { layout: NOMINAL, set: 'nominal' };
    if (name.startsWith('site:')) {
      const site = SITE_LAYOUTS[name.slice(5)];
      if (!site) throw new RangeError(`"name" expected nominal, ood, ood:<${Object.keys(OOD_LAYOUTS).join('|')}> or site:<${Object.keys(SITE_LAYOUTS).join('|')}>, got ${describe(name)}`);
      return { layout: site, set: name };
    }
    if (name === 'ood') {
      const kinds = Object.keys(OOD_LAYOUTS);
      const kind = kinds[i % kinds.length]!;
      return { layout: OOD_LAYOUTS[kind]!, set: `ood:${kind}` };
    }
    if (name.startsWith('ood:') && OOD_LAYOUTS[name.slice(4)]) return { layout: OOD_LAYOUTS[name.slice(4)]!, set: name };
    throw new RangeError(`"name" expected nominal, ood, ood:<${Object.keys(OOD_LAYOUTS).join('|')}> or site:<${Object.keys(SITE_LAYOUTS).join('|')}>, got ${describe(name)}`);
  };
  const out: Scenario[] = [];
  for (let i = 0; i < count; i++) {
    const { layout, set } = layoutFor(i);
    out.push(sampleScenario({ layout, seed: deriveSeed({ seed, label: `${name}/${i}` }), id: `${name}/${i}`, set }));
  }
  return out;
}

export function siteNames(): string[] {
  return Object.keys(SITE_LAYOUTS);
}
