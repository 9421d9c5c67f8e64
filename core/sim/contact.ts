// The simulator's contact model: a transient impact between the arm and a body (a human body region or a
// fixture) as a linear spring-damper between two effective masses, integrated through the compression
// phase to find the peak contact force.
//
//   mu x'' = -(k x + c x'),  x(0) = 0, x'(0) = v (relative normal speed at first touch),
//   c = 2 zeta sqrt(k mu),   F(t) = max(0, k x + c x') while x > 0.
// With zeta = 0 the peak is v sqrt(mu k): exactly the energy balance ISO/TS 15066 A.5 uses
// (core/safety/body-regions.ts), so the simulator and the command validator agree on the physics.
// Damping dissipates energy during compression and lowers the peak (~12 % at zeta = 0.1): the ISO
// formula is the conservative bound of the simulated force.
import { BODY_REGION_DATA, reducedMass, robotEffectiveMass, type BodyRegion } from '../safety/body-regions.ts';

/** Fixtures (tables, pillars, racks): stiff, immovable; reported without a biomechanical limit. */
export const FIXTURE_SPRING_N_PER_M = 150_000;
export const CONTACT_DAMPING_RATIO = 0.1;

export function impactPeakForce(options: { reducedMassKg: number; springNPerM: number; speedMps: number; dampingRatio?: number }): number {
  const { reducedMassKg: mu, springNPerM: k } = options;
  const v0 = Math.max(0, options.speedMps);
  if (v0 === 0) return 0;
  const zeta = options.dampingRatio ?? CONTACT_DAMPING_RATIO;
  const c = 2 * zeta * Math.sqrt(k * mu);
  const period = 2 * Math.PI * Math.sqrt(mu / k);
  const steps = 4000;
  const h = period / steps;
  // RK4 on (x, v); the compression phase lasts at most half a period.
  let x = 0;
  let v = v0;
  let peak = c * v0;
  const acc = (px: number, pv: number) => -(k * px + c * pv) / mu;
  for (let i = 0; i < steps; i++) {
    const k1x = v;
    const k1v = acc(x, v);
    const k2x = v + (h / 2) * k1v;
    const k2v = acc(x + (h / 2) * k1x, v + (h / 2) * k1v);
    const k3x = v + (h / 2) * k2v;
    const k3v = acc(x + (h / 2) * k2x, v + (h / 2) * k2v);
    const k4x = v + h * k3v;
    const k4v = acc(x + h * k3x, v + h * k3v);
    x += (h / 6) * (k1x + 2 * k2x + 2 * k3x + k4x);
    v += (h / 6) * (k1v + 2 * k2v + 2 * k3v + k4v);
    if (x <= 0) break;
    const f = k * x + c * v;
    if (f > peak) peak = f;
    else if (v < 0) break; // past the peak
  }
  return peak;
}

export interface ContactForce {
  peakForceN: number;
  /** The transient limit for the body region, or null for a fixture. */
  limitN: number | null;
}

/** Peak force of the arm hitting a human body region (ISO/TS 15066 masses and spring constants). */
export function humanContactForce(options: { region: BodyRegion; movingMassKg: number; payloadKg: number; speedMps: number }): ContactForce {
  const data = BODY_REGION_DATA[options.region];
  const mu = reducedMass({ humanMassKg: data.effectiveMassKg, robotMassKg: robotEffectiveMass(options) });
  return { peakForceN: impactPeakForce({ reducedMassKg: mu, springNPerM: data.springNPerMm * 1000, speedMps: options.speedMps }), limitN: data.transientForceN };
}

/** Peak force of the arm hitting a fixed obstacle (infinite mass, stiff spring). */
export function fixtureContactForce(options: { movingMassKg: number; payloadKg: number; speedMps: number }): ContactForce {
  const mu = robotEffectiveMass(options);
  return { peakForceN: impactPeakForce({ reducedMassKg: mu, springNPerM: FIXTURE_SPRING_N_PER_M, speedMps: options.speedMps }), limitN: null };
}
