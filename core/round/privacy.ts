// The bridge from a round config to the DP module's RoundPrivacyParams, so the robot, the server and
// the officer compute one round's privacy cost from the same numbers.
import type { RoundConfig } from '../records/round-config.ts';
import type { RoundPrivacyParams } from '../dp/round-privacy.ts';

export function roundPrivacyParams(options: { config: RoundConfig }): RoundPrivacyParams {
  const { config } = options;
  return {
    mode: config.dp.mode,
    clip: config.dp.clip,
    noiseMultiplier: config.dp.noiseMultiplier,
    delta: config.dp.delta,
    epsilonBudget: config.dp.epsilonBudget,
    quorum: config.quorum,
    dimension: config.valueCount,
    scale: config.quant.scale,
  };
}
