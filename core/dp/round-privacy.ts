// What one round costs each contributor in (epsilon, delta), and the budget check: the same code runs
// on the robot (before a contribution leaves it) and on the server (before it is accepted).
//
// Modes and why each uses its encoding (docs/ARCHITECTURE.md, "Quantization"):
// - local: each robot clips its update to L2 norm C and adds Gaussian noise of std z*C itself, so its
//   contribution alone is a Gaussian-mechanism output (Mironov 2017, Table II: RDP alpha / (2 z^2),
//   full participation, q = 1). Stochastic rounding to quanta and clamping into the `offset` encoding
//   only transform that output with randomness independent of the data: post-processing, no extra cost
//   (Dwork & Roth 2014, Prop. 2.1; for RDP the data-processing inequality of Rényi divergence,
//   van Erven & Harremoës 2014).
// - distributed: each robot adds only a 1/quorum share of the noise, so that the sum has the full
//   amount. Shares only add up exactly in integers, so the robot scales by s, rounds with conditional
//   randomized rounding (Kairouz, Liu, Steinke 2021: ||rounded||_2 <= D2 deterministically) and adds
//   Skellam noise Poisson(mu/quorum) - Poisson(mu/quorum). Sums of independent Skellams are Skellam, so
//   at least `quorum` honest contributors give the aggregate Skellam noise with parameter >= mu, and
//   the aggregate is the multi-dimensional Skellam mechanism (Agarwal, Kairouz, Liu 2021). Further
//   noise from other contributors and the `modular` wrap-around (mod 2^b) are post-processing. The
//   guarantee is void if fewer than `quorum` contributors are honest; the officer refuses to decrypt
//   sums of fewer than `quorum` contributions (DESIGN.md, trust model 4).
// - off: no guarantee; such rounds never enter a privacy ledger.
import { BudgetExhaustedError, describe, expectFinite } from '../errors.ts';
import { DEFAULT_ORDERS, epsilonFromRdp, rdpSkellam, rdpSubsampledGaussian } from './accountant.ts';
import { roundingL2Bound } from './noise.ts';

export type DpMode = 'off' | 'local' | 'distributed';

export interface RoundPrivacyParams {
  mode: DpMode;
  /** L2 clipping norm C of one robot's update (unscaled units). */
  clip: number;
  /** z: total noise std is z*C (unscaled units). */
  noiseMultiplier: number;
  delta: number;
  epsilonBudget: number;
  /** Minimum number of contributions a round needs; in distributed mode each adds mu/quorum. */
  quorum: number;
  /** Number of values each robot sends. */
  dimension: number;
  /** Quantization scale s: value*s -> quanta. */
  scale: number;
}

// validateRoundPrivacy reports every bad field as a RangeError (configs arrive as parsed JSON).
function positive(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value > 0))
    throw new RangeError(`"${name}" expected finite number > 0, got ${describe(value)}`);
}

function countAtLeastOne(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    throw new RangeError(`"${name}" expected integer >= 1, got ${describe(value)}`);
}

/**
 * Throws a RangeError naming the offending field. 'off' needs nothing else; 'local' and
 * 'distributed' need clip > 0, noiseMultiplier > 0, 0 < delta < 1, epsilonBudget > 0, integer
 * quorum >= 1; 'distributed' also needs integer dimension >= 1 and scale > 0 (its sensitivity depends
 * on them).
 */
export function validateRoundPrivacy(options: { params: RoundPrivacyParams }): void {
  const p = options.params;
  if (typeof p !== 'object' || p === null) throw new TypeError(`"params" expected object, got ${p === null ? 'null' : typeof p}`);
  if (p.mode !== 'off' && p.mode !== 'local' && p.mode !== 'distributed')
    throw new RangeError(`"params.mode" expected "off" | "local" | "distributed", got ${JSON.stringify(p.mode)}`);
  if (p.mode === 'off') return;
  positive('params.clip', p.clip);
  positive('params.noiseMultiplier', p.noiseMultiplier);
  if (typeof p.delta !== 'number' || !(p.delta > 0 && p.delta < 1))
    throw new RangeError(`"params.delta" expected number in (0, 1), got ${describe(p.delta)}`);
  positive('params.epsilonBudget', p.epsilonBudget);
  countAtLeastOne('params.quorum', p.quorum);
  if (p.mode === 'distributed') {
    countAtLeastOne('params.dimension', p.dimension);
    positive('params.scale', p.scale);
  }
}

/** Skellam sensitivities and total noise of a distributed round, in integer (scaled) units. */
function distributedParameters(p: RoundPrivacyParams): { l1: number; l2: number; mu: number } {
  const scaledClip = p.clip * p.scale;
  const l2 = roundingL2Bound({ scaledClip, dimension: p.dimension });
  // Integer vectors have ||x||_1 <= ||x||_2^2, and always ||x||_1 <= sqrt(d) ||x||_2
  // (as rounded_l1_norm_bound in google-research/federated distributed_dp/accounting_utils.py).
  const l1 = Math.min(l2 * l2, Math.sqrt(p.dimension) * l2);
  const std = p.noiseMultiplier * scaledClip; // z*C*s: the std the aggregate noise must reach
  return { l1, l2, mu: (std * std) / 2 }; // Skellam variance 2 mu = (zCs)^2
}

/**
 * RDP of one round for one contributor at each order. local: Gaussian, sigma = z*C on the clipped
 * update, q = 1 (alpha / (2 z^2)). distributed: Skellam with D2 = roundingL2Bound(C*s, d),
 * D1 = min(D2^2, sqrt(d) D2), mu = (z*C*s)^2 / 2, valid when >= quorum honest contributors each add
 * mu/quorum. off: RangeError (no guarantee).
 */
export function roundRdp(options: { params: RoundPrivacyParams; orders?: number[] }): Float64Array {
  const p = options.params;
  validateRoundPrivacy({ params: p });
  const orders = options.orders ?? DEFAULT_ORDERS;
  if (p.mode === 'off') throw new RangeError(`"params.mode" "off" has no privacy guarantee to account`);
  if (p.mode === 'local') {
    return rdpSubsampledGaussian({ sampleRate: 1, noiseMultiplier: p.noiseMultiplier, steps: 1, orders });
  }
  const { l1, l2, mu } = distributedParameters(p);
  return rdpSkellam({ l1Sensitivity: l1, l2Sensitivity: l2, mu, steps: 1, orders });
}

/** The Skellam parameter each robot adds per coordinate in distributed mode: mu / quorum. */
export function perRobotSkellamMu(options: { params: RoundPrivacyParams }): number {
  const p = options.params;
  validateRoundPrivacy({ params: p });
  if (p.mode !== 'distributed') throw new RangeError(`"params.mode" expected "distributed", got ${JSON.stringify(p.mode)}`);
  return distributedParameters(p).mu / p.quorum;
}

/**
 * (epsilon, delta) spent by a contributor over `rounds`: RDP adds across rounds (Mironov 2017,
 * Prop. 1), then Balle et al. 2020 Thm 21 converts at `delta`. Rounds with mode 'off' are refused
 * (RangeError): callers keep them out of budgeted ledgers. No rounds: epsilon 0.
 */
export function privacySpent(options: { rounds: RoundPrivacyParams[]; delta: number; orders?: number[] }): {
  epsilon: number;
  order: number;
} {
  const { rounds } = options;
  if (!Array.isArray(rounds)) throw new TypeError(`"rounds" expected array, got ${typeof rounds}`);
  const orders = options.orders ?? DEFAULT_ORDERS;
  const total = new Float64Array(orders.length);
  for (let r = 0; r < rounds.length; r++) {
    const round = rounds[r]!;
    if (round?.mode === 'off') throw new RangeError(`"rounds[${r}].mode" expected "local" | "distributed", got "off"`);
    const rdp = roundRdp({ params: round, orders });
    for (let i = 0; i < total.length; i++) total[i]! += rdp[i]!;
  }
  return epsilonFromRdp({ rdp: total, orders, delta: options.delta });
}

/**
 * Hard stop before a contribution: throws BudgetExhaustedError (details { epsilonAfter, budget }) when
 * the epsilon after adding `next` to `spentRounds` exceeds `budget`; returns that epsilon otherwise.
 */
export function checkBudget(options: {
  spentRounds: RoundPrivacyParams[];
  next: RoundPrivacyParams;
  budget: number;
  delta: number;
}): { epsilonAfter: number } {
  const budget = expectFinite('budget', options.budget, 0);
  const { spentRounds } = options;
  if (!Array.isArray(spentRounds)) throw new TypeError(`"spentRounds" expected array, got ${typeof spentRounds}`);
  const { epsilon: epsilonAfter } = privacySpent({ rounds: [...spentRounds, options.next], delta: options.delta });
  if (!(epsilonAfter <= budget)) {
    throw new BudgetExhaustedError(
      `DP budget exhausted: epsilon would reach ${epsilonAfter} after this round (${spentRounds.length} rounds spent), ` +
        `over the budget ${budget} at delta ${options.delta}`,
      { epsilonAfter, budget },
    );
  }
  return { epsilonAfter };
}
