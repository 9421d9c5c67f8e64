// ISO/TS 15066 body-region data for power and force limiting, and the transferred-energy speed formula.
//
// Sources (as summarised in ../shared/REFERENCES.md, "Robot safety"): ISO/TS 15066:2016 Annex A, carried
// into ISO 10218-2:2025 Annex A.
//   - transient contact force limits F_T (Table A.2, transient = 2 x the quasi-static value);
//   - effective spring constants k (Table A.3), in N/mm here and N/m in the formulas;
//   - effective human body masses m_H (Table A.3);
//   - maximum relative speed from transferred energy (A.5): E = F^2 / (2k) = (1/2) mu v^2, so
//       v_max = F / sqrt(mu * k),  mu = (1/m_H + 1/m_R)^-1,  m_R = M/2 + m_L
//     with M the robot's moving mass and m_L the payload (both kg).
// The back/shoulders effective mass is not in REFERENCES.md; ISO/TS 15066 groups the back with the
// trunk (chest, abdomen, pelvis: 40 kg), which is what we use.

export const BODY_REGIONS = ['back_shoulders', 'chest', 'abdomen', 'pelvis', 'upper_arm', 'forearm', 'hand'] as const;
export type BodyRegion = (typeof BODY_REGIONS)[number];

export interface BodyRegionData {
  /** Transient contact force limit F_T, N. */
  transientForceN: number;
  /** Quasi-static (clamping) force limit, N: F_T / 2. */
  quasiStaticForceN: number;
  /** Effective spring constant, N/mm. */
  springNPerMm: number;
  /** Effective body mass m_H, kg. */
  effectiveMassKg: number;
}

const table = (transientForceN: number, springNPerMm: number, effectiveMassKg: number): BodyRegionData => ({
  transientForceN,
  quasiStaticForceN: transientForceN / 2,
  springNPerMm,
  effectiveMassKg,
});

export const BODY_REGION_DATA: Readonly<Record<BodyRegion, BodyRegionData>> = Object.freeze({
  back_shoulders: table(420, 35, 40),
  chest: table(280, 25, 40),
  abdomen: table(220, 10, 40),
  pelvis: table(360, 25, 40),
  upper_arm: table(300, 30, 3),
  forearm: table(320, 40, 2),
  hand: table(280, 75, 0.6),
});

export function isBodyRegion(value: unknown): value is BodyRegion {
  return typeof value === 'string' && (BODY_REGIONS as readonly string[]).includes(value);
}

/** m_R = M/2 + m_L (ISO/TS 15066 A.5, eq. A.4). */
export function robotEffectiveMass(options: { movingMassKg: number; payloadKg: number }): number {
  return options.movingMassKg / 2 + options.payloadKg;
}

/** mu = (1/m_H + 1/m_R)^-1, the reduced mass of the two-body collision; m_H = Infinity gives m_R. */
export function reducedMass(options: { humanMassKg: number; robotMassKg: number }): number {
  const { humanMassKg: mH, robotMassKg: mR } = options;
  if (!Number.isFinite(mH)) return mR;
  return (mH * mR) / (mH + mR);
}

/** v_max = F / sqrt(mu k): the highest relative speed whose transferred energy stays within F for region. */
export function maxTransientSpeed(options: { region: BodyRegion; movingMassKg: number; payloadKg: number; forceLimitN?: number }): number {
  const data = BODY_REGION_DATA[options.region];
  const mR = robotEffectiveMass(options);
  const mu = reducedMass({ humanMassKg: data.effectiveMassKg, robotMassKg: mR });
  const k = data.springNPerMm * 1000;
  return (options.forceLimitN ?? data.transientForceN) / Math.sqrt(mu * k);
}

/** The peak force of a transient contact at relative speed v (the same energy balance solved for F). */
export function transientForceAtSpeed(options: { region: BodyRegion; movingMassKg: number; payloadKg: number; speedMps: number }): number {
  const data = BODY_REGION_DATA[options.region];
  const mR = robotEffectiveMass(options);
  const mu = reducedMass({ humanMassKg: data.effectiveMassKg, robotMassKg: mR });
  return options.speedMps * Math.sqrt(mu * data.springNPerMm * 1000);
}
