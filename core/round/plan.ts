// Round planning: from the officer's options and the template adapter to the numbers a round config
// fixes (value count after the mask, packing layout, quantization scale, ciphertext count).
//
// Scale choice (documented in docs/FORMATS.md):
//   offset encoding   s = (2^(b-1) - 1) / R            R = per-value range a robot may send
//   modular encoding  s = (2^(b-1) - 1) / (K * R)      the SUM of K contributions must stay in range
// R defaults to 1 with DP off (LoRA deltas are far below 1) and to C * (1 + 4z) with DP on (a clipped
// coordinate is at most C; Gaussian noise of z*C stays within 4 sigma with probability 1 - 6e-5).
import type { DpMode, QuantEncoding } from '../records/round-config.ts';
import { ciphertextCount, getParamSet, packingLayout, PARAM_SET_ID, type PackingLayout } from '../he/params.ts';

const SLOT_BITS = getParamSet({ id: PARAM_SET_ID }).slotCapacityBits;
import { sparsificationMask, trainableLength } from './mask.ts';
import { expectFinite, expectInteger } from '../errors.ts';

export interface RoundPlanInput {
  tensors: { name: string; shape: number[] }[];
  freezeA: boolean;
  maskSeed: Uint8Array;
  sparsity: number;
  maxContributors: number;
  fieldBits?: number;
  range?: number;
  dp: { mode: DpMode; clip: number; noiseMultiplier: number };
}

export interface RoundPlan {
  trainableLength: number;
  valueCount: number;
  ciphertextCount: number;
  layout: PackingLayout;
  encoding: QuantEncoding;
  fieldBits: number;
  scale: number;
  range: number;
}

/**
 * Bits per field when the officer does not choose: two fields per slot (8 B per value) when that still
 * leaves at least 12 bits per contribution, otherwise one field per slot with every bit the slot can
 * carry (16 B per value, the finest quantum). The modular encoding (distributed DP) needs room for the
 * whole noisy sum, so it always takes the one-field layout.
 */
export function defaultFieldBits(options: { mode: DpMode; maxContributors: number }): number {
  const headroom = Math.ceil(Math.log2(options.maxContributors));
  const twoPerSlot = Math.floor(SLOT_BITS / 2) - headroom;
  if (options.mode !== 'distributed' && twoPerSlot >= 12) return twoPerSlot;
  // Distributed DP adds Skellam noise in quanta: its variance grows with the scale squared, and the
  // Poisson sampler is exact up to a mean of 1e15, so the modular encoding stays at 24 bits or fewer.
  if (options.mode === 'distributed') return Math.min(24, SLOT_BITS - headroom);
  return Math.min(32, SLOT_BITS - headroom);
}

export function planRound(options: RoundPlanInput): RoundPlan {
  const encoding: QuantEncoding = options.dp.mode === 'distributed' ? 'modular' : 'offset';
  const maxContributors = expectInteger('maxContributors', options.maxContributors, 2, 1024);
  const fieldBits = expectInteger('fieldBits', options.fieldBits ?? defaultFieldBits({ mode: options.dp.mode, maxContributors }), 2, 32);
  const range = expectFinite(
    'range',
    options.range ?? (options.dp.mode === 'off' ? 1 : options.dp.clip * (1 + 4 * options.dp.noiseMultiplier)),
    Number.MIN_VALUE,
  );
  const layout = packingLayout({ fieldBits, maxContributors, encoding });
  const total = trainableLength({ tensors: options.tensors, freezeA: options.freezeA });
  const valueCount = sparsificationMask({ seed: options.maskSeed, length: total, sparsity: options.sparsity }).length;
  if (valueCount === 0) throw new RangeError('"sparsity" keeps no value of this adapter; raise it');
  const top = 2 ** (fieldBits - 1) - 1;
  const scale = encoding === 'modular' ? top / (maxContributors * range) : top / range;
  return { trainableLength: total, valueCount, ciphertextCount: ciphertextCount({ valueCount, layout }), layout, encoding, fieldBits, scale, range };
}
