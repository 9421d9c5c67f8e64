// Speed and separation monitoring (ISO/TS 15066:2016 5.5.4.2.3, constant-speed form of eq. 1):
//   S_p = S_h + S_r + S_s + C + Z_d + Z_r
//   S_h = v_h (T_r + T_s)   the person approaching during the robot's reaction and stopping time
//   S_r = v_r T_r           the robot moving during its reaction time
//   S_s                     the robot's stopping distance (measured, or v_r T_s / 2 at constant deceleration)
//   C                       intrusion distance (ISO 13855: reach past the sensing field)
//   Z_d, Z_r                position uncertainty of the person (sensor) and of the robot
// v_h defaults to 1.6 m/s (ISO 13855's walking speed) when the sensors give none.
import type { SafetyCell } from './cell.ts';

export interface SeparationTerms {
  humanTravelM: number;
  robotReactionTravelM: number;
  robotStoppingM: number;
  intrusionM: number;
  sensorUncertaintyM: number;
  robotUncertaintyM: number;
  protectiveSeparationM: number;
}

export function protectiveSeparation(options: { ssm: SafetyCell['ssm']; robotSpeedMps: number; humanSpeedMps?: number }): SeparationTerms {
  const { ssm, robotSpeedMps: vr } = options;
  const vh = options.humanSpeedMps ?? ssm.humanSpeedMps;
  const humanTravelM = vh * (ssm.reactionTimeS + ssm.stoppingTimeS);
  const robotReactionTravelM = vr * ssm.reactionTimeS;
  const robotStoppingM = ssm.stoppingDistanceM ?? (vr * ssm.stoppingTimeS) / 2;
  const protectiveSeparationM = humanTravelM + robotReactionTravelM + robotStoppingM + ssm.intrusionDistanceM + ssm.sensorUncertaintyM + ssm.robotUncertaintyM;
  return { humanTravelM, robotReactionTravelM, robotStoppingM, intrusionM: ssm.intrusionDistanceM, sensorUncertaintyM: ssm.sensorUncertaintyM, robotUncertaintyM: ssm.robotUncertaintyM, protectiveSeparationM };
}

/** The highest robot speed for which `separationM` >= S_p (0 when even a standing robot is too close). */
export function maxSpeedForSeparation(options: { ssm: SafetyCell['ssm']; separationM: number; humanSpeedMps?: number }): number {
  const { ssm, separationM } = options;
  const vh = options.humanSpeedMps ?? ssm.humanSpeedMps;
  const fixed = vh * (ssm.reactionTimeS + ssm.stoppingTimeS) + ssm.intrusionDistanceM + ssm.sensorUncertaintyM + ssm.robotUncertaintyM + (ssm.stoppingDistanceM ?? 0);
  const perSpeed = ssm.reactionTimeS + (ssm.stoppingDistanceM === null ? ssm.stoppingTimeS / 2 : 0);
  const room = separationM - fixed;
  if (room < 0) return 0;
  return perSpeed > 0 ? room / perSpeed : Infinity;
}
