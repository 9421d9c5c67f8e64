// Opening a round, pure: from the officer's options, the template adapter and the current HE key record
// to the round config that the officer signs. The officer CLI (`officer round open`) and the PWA's
// signing worker both build configs here, so a round opened from either is the same record.
//
//   options + template ──▶ adapterSchema, adapterFingerprint ──▶ planRound (mask, packing, scale)
//                      ──▶ RoundConfig ──▶ (DP on) one round's epsilon must fit its own budget
// Signing is the caller's job (core/records/round-config.ts signRoundConfig) so the secret key stays
// wherever the caller keeps it.
import { ROUND_STAGES, type DpMode, type RoundConfig, type RoundStage } from '../records/round-config.ts';
import type { PeftAdapter } from '../peft/adapter.ts';
import { adapterFingerprint, adapterSchema } from '../peft/adapter.ts';
import { sha256 } from '../codec/fingerprint.ts';
import { randomBytes } from '../random.ts';
import { BudgetExhaustedError, expectBytes, expectFinite, expectInteger } from '../errors.ts';
import { planRound, type RoundPlan } from './plan.ts';
import { roundPrivacyParams } from './privacy.ts';
import { privacySpent, validateRoundPrivacy } from '../dp/round-privacy.ts';
import { getParamSet, PARAM_SET_ID } from '../he/params.ts';

/** The officer's choices for a round: the same set as `tensorguard officer round open`. */
export interface RoundOpenOptions {
  fleetId: string;
  quorum: number;
  /** Most contributions the packing must hold (2..1024); default: robots enrolled now, at least 2 and the quorum. */
  maxContributors?: number;
  freezeA?: boolean;
  dpMode?: DpMode;
  clip?: number;
  noiseMultiplier?: number;
  delta?: number;
  epsilonBudget?: number;
  sparsity?: number;
  fieldBits?: number;
  range?: number;
  /** ms since the epoch; 0 or absent = no deadline (the officer closes the round). */
  deadline?: number;
  /** Training stage robots run (default imitation_learning). */
  stage?: RoundStage;
  /** Required for on_policy_rl: the officer's reason for approving on-policy training on robots. */
  onPolicyApproval?: { reason: string };
}

export interface BuiltRoundConfig {
  config: RoundConfig;
  plan: RoundPlan;
  /** Ciphertext bytes each robot sends per value it contributes. */
  bytesPerValue: number;
  /** DP rounds: the epsilon one round of these settings costs at the round's delta. */
  epsilonPerRound: number | null;
}

/** The defaults the CLI documents: DP off unless asked; with DP, clip 1, noise 1, delta 1e-5, budget 10. */
export function resolveDp(options: Pick<RoundOpenOptions, 'dpMode' | 'clip' | 'noiseMultiplier' | 'delta' | 'epsilonBudget'>): RoundConfig['dp'] {
  const mode = options.dpMode ?? 'off';
  if (!['off', 'local', 'distributed'].includes(mode)) throw new TypeError(`"dpMode" expected off, local or distributed, got ${String(mode)}`);
  if (mode === 'off') return { mode, clip: 0, noiseMultiplier: 0, delta: 0, epsilonBudget: 0 };
  return {
    mode,
    clip: options.clip ?? 1,
    noiseMultiplier: options.noiseMultiplier ?? 1,
    delta: options.delta ?? 1e-5,
    epsilonBudget: options.epsilonBudget ?? 10,
  };
}

/** Default room in the packing: every robot enrolled now (its headroom grows with log2 of it). */
export function defaultMaxContributors(options: { quorum: number; enrolledRobots: number }): number {
  return Math.min(1024, Math.max(2, options.quorum, options.enrolledRobots));
}

/** FFA-LoRA's frozen A must stay the same across a fleet's rounds, so its seed is derived from the fleet. */
export function fleetASeed(options: { fleetId: string }): Uint8Array {
  return sha256(new TextEncoder().encode(`tensorguard/ffa-lora-A/v1/${options.fleetId}`));
}

/**
 * Builds (does not sign) a round config. Throws RangeError for options out of range and
 * BudgetExhaustedError when one round of the DP settings already costs more than its budget.
 */
export function buildRoundConfig(options: {
  options: RoundOpenOptions;
  template: PeftAdapter;
  orgId: string;
  keyRecord: { keyVersion: number; fingerprint: Uint8Array; paramSetId?: string };
  roundId: string;
  createdAt: number;
  enrolledRobots?: number;
  maskSeed?: Uint8Array;
}): BuiltRoundConfig {
  const o = options.options;
  const quorum = expectInteger('quorum', o.quorum, 1, 1024);
  const maxContributors = expectInteger(
    'maxContributors',
    o.maxContributors ?? defaultMaxContributors({ quorum, enrolledRobots: options.enrolledRobots ?? 0 }),
    2,
    1024,
  );
  if (quorum > maxContributors) throw new RangeError(`"quorum" expected at most maxContributors (${maxContributors}), got ${quorum}`);
  const deadline = o.deadline ?? 0;
  expectInteger('deadline', deadline, 0, Number.MAX_SAFE_INTEGER);
  const sparsity = expectFinite('sparsity', o.sparsity ?? 1, Number.MIN_VALUE, 1);
  const dp = resolveDp(o);
  const maskSeed = options.maskSeed ? expectBytes('maskSeed', options.maskSeed, 32) : randomBytes(32);
  const tensors = adapterSchema({ adapter: options.template });
  const freezeA = !!o.freezeA;
  const stage = o.stage ?? 'imitation_learning';
  if (!ROUND_STAGES.includes(stage)) throw new TypeError(`"stage" expected ${ROUND_STAGES.join(', ')}, got ${String(stage)}`);
  const reason = o.onPolicyApproval?.reason?.trim() ?? '';
  if (stage === 'on_policy_rl' && !reason) throw new RangeError('"onPolicyApproval.reason" is required to open an on_policy_rl round (an explicit, signed officer approval)');
  if (stage !== 'on_policy_rl' && o.onPolicyApproval) throw new RangeError('"onPolicyApproval" is only for on_policy_rl rounds');
  const plan = planRound({ tensors, freezeA, maskSeed, sparsity, maxContributors, fieldBits: o.fieldBits, range: o.range, dp });
  const config: RoundConfig = {
    roundId: options.roundId,
    orgId: options.orgId,
    fleetId: o.fleetId,
    createdAt: options.createdAt,
    deadline,
    quorum,
    maxContributors,
    keyVersion: options.keyRecord.keyVersion,
    heKeyFingerprint: expectBytes('keyRecord.fingerprint', options.keyRecord.fingerprint, 32),
    baseAdapterSha256: adapterFingerprint({ adapter: options.template }),
    tensors,
    freezeA,
    aSeed: fleetASeed({ fleetId: o.fleetId }),
    maskSeed,
    sparsity,
    quant: { fieldBits: plan.fieldBits, scale: plan.scale, encoding: plan.encoding },
    dp,
    valueCount: plan.valueCount,
    ciphertextCount: plan.ciphertextCount,
    stage,
    onPolicyApproval: stage === 'on_policy_rl' ? { reason, approvedAt: options.createdAt } : null,
  };
  let epsilonPerRound: number | null = null;
  if (dp.mode !== 'off') {
    const params = roundPrivacyParams({ config });
    validateRoundPrivacy({ params });
    epsilonPerRound = privacySpent({ rounds: [params], delta: dp.delta }).epsilon;
    if (epsilonPerRound > dp.epsilonBudget)
      throw new BudgetExhaustedError(
        `one round of these DP settings costs epsilon ${epsilonPerRound.toFixed(3)} > budget ${dp.epsilonBudget}; raise the noise multiplier or the budget`,
        { epsilon: epsilonPerRound, budget: dp.epsilonBudget },
      );
  }
  const ciphertextBytes = getParamSet({ id: options.keyRecord.paramSetId ?? PARAM_SET_ID }).ciphertextBytes;
  return { config, plan, bytesPerValue: (plan.ciphertextCount * ciphertextBytes) / plan.valueCount, epsilonPerRound };
}
