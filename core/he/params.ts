// The BFV parameter set `tg-bfv-4096-q60-t35` (docs/ARCHITECTURE.md) and the slot-packing arithmetic built on it.
//
// Parameters (SEAL 4.1 via node-seal 6.0.3):
//   N = 4096, coeff modulus q = one 60-bit prime (CoeffModulus.Create(4096, [60]) = 2^60 - 16383),
//   plain modulus t = the 35-bit batching prime PlainModulus.Batching(4096, 35) = 2^35 - 40959.
// Security: the HomomorphicEncryption.org standard table that SEAL enforces (tc128) allows up to
//   109 bits of coeff modulus at N = 4096 for 128-bit classical security; 60 bits is far inside it.
//   We only ever add ciphertexts (no relinearization, no rotations), so no key-switching "special"
//   prime is needed and a single prime is legal. That gives the smallest ciphertext this N allows:
//   16 B SEAL header + 97 B ciphertext header = 113 B, then 2 polys x 4096 coeffs x 8 B = 65,536 B;
//   65,649 B for 4,096 slots (about 16 B per slot).
// Noise: the measured invariant noise budget of a fresh ciphertext is 13-14 bits, which matches
//   log2(q) - log2(t) - ~11 bits of fresh encryption noise (60 - 35 - 11). Adding K ciphertexts adds
//   their noises, so the budget drops by at most log2(K) bits (linear worst case; ~log2(K)/2 for
//   independent noise, as measured). 1,024 contributors cost at most 10 bits, leaving >= 3 bits
//   (measured: 8-9 bits left): maxContributors = 1024. core/he/capacity.test.ts sums 1,024 worst-case
//   ciphertexts and decrypts them exactly.
// Packing: a slot holds an integer mod t and t > 2^34, so a slot carries 34 bits without wrapping.
//   A contribution field has b bits; the sum of n <= maxContributors fields fits in
//   w = b + ceil(log2(maxContributors)) bits; a slot packs k = floor(34 / w) fields, field i at bit i*w.
//   Because every field sum stays below 2^w, no carry crosses into the next field, and the whole
//   slot sum stays below 2^(k*w) <= 2^34 < t, so the homomorphic (mod t) sum is the integer sum.

import { IntegrityError, describe, expectInteger } from '../errors.ts';

export const PARAM_SET_ID = 'tg-bfv-4096-q60-t35';

export interface HeParamSet {
  id: string;
  polyModulusDegree: 4096;
  coeffModulusBits: [60];
  plainModulusBits: 35;
  /** BFV batching gives one slot per coefficient. */
  slotCount: 4096;
  /** Bits a slot carries without reaching t (2^34 < t < 2^35). */
  slotCapacityBits: 34;
  /** Most contributions one aggregate may hold while still decrypting exactly (noise budget). */
  maxContributors: 1024;
  /** Bytes of one uncompressed serialized ciphertext (SEAL ComprModeType.none). */
  ciphertextBytes: number;
  /** Bytes before the first coefficient in that serialization. */
  headerBytes: 113;
  /** The 60-bit prime SEAL's CoeffModulus.Create(4096, [60]) picks. */
  coeffModulus: bigint;
  /** The 35-bit prime SEAL's PlainModulus.Batching(4096, 35) picks. */
  plainModulus: bigint;
}

const TG_BFV_4096_Q60_T35: HeParamSet = Object.freeze({
  id: PARAM_SET_ID,
  polyModulusDegree: 4096,
  coeffModulusBits: [60],
  plainModulusBits: 35,
  slotCount: 4096,
  slotCapacityBits: 34,
  maxContributors: 1024,
  ciphertextBytes: 113 + 2 * 4096 * 8,
  headerBytes: 113,
  // Read from SEAL 4.1 (node-seal 6.0.3); seal.test.ts checks SEAL still picks these, and
  // core/he/seal.ts refuses to build a context if it ever does not.
  coeffModulus: 1152921504606830593n, // 2^60 - 16383
  plainModulus: 34359697409n, // 2^35 - 40959
}) as HeParamSet;

export const PARAM_SETS: Record<string, HeParamSet> = Object.freeze({ [PARAM_SET_ID]: TG_BFV_4096_Q60_T35 });

export function getParamSet(options: { id: string }): HeParamSet {
  const id = options?.id;
  if (typeof id !== 'string') throw new TypeError(`"id" expected string, got ${describe(id)}`);
  const set = Object.prototype.hasOwnProperty.call(PARAM_SETS, id) ? PARAM_SETS[id] : undefined;
  if (set === undefined) throw new IntegrityError(`unknown HE parameter set ${JSON.stringify(id)}`, { paramSetId: id });
  return set;
}

export interface PackingLayout {
  /** b: bits of one contribution's field. */
  fieldBits: number;
  maxContributors: number;
  /** w = b + ceil(log2(maxContributors)): bits of a field's sum over all contributors. */
  sumBits: number;
  /** k = floor(slotCapacityBits / w) fields per slot, least significant first. */
  fieldsPerSlot: number;
  encoding: 'offset' | 'modular';
}

export function packingLayout(options: {
  fieldBits: number;
  maxContributors: number;
  encoding: 'offset' | 'modular';
  paramSet?: HeParamSet;
}): PackingLayout {
  const paramSet = options.paramSet ?? TG_BFV_4096_Q60_T35;
  const fieldBits = expectInteger('fieldBits', options.fieldBits, 2, 32);
  const maxContributors = expectInteger('maxContributors', options.maxContributors, 2, paramSet.maxContributors);
  const encoding = options.encoding;
  if (encoding !== 'offset' && encoding !== 'modular')
    throw new TypeError(`"encoding" expected 'offset' | 'modular', got ${describe(encoding)}`);
  const sumBits = fieldBits + Math.ceil(Math.log2(maxContributors));
  const fieldsPerSlot = Math.floor(paramSet.slotCapacityBits / sumBits);
  if (fieldsPerSlot < 1)
    throw new RangeError(
      `"fieldBits" expected at most ${paramSet.slotCapacityBits - Math.ceil(Math.log2(maxContributors))} for ` +
        `maxContributors ${maxContributors} (a field sum needs ${sumBits} bits, a slot carries ${paramSet.slotCapacityBits}), got ${fieldBits}`,
    );
  return { fieldBits, maxContributors, sumBits, fieldsPerSlot, encoding };
}

export function ciphertextCount(options: { valueCount: number; layout: PackingLayout; paramSet?: HeParamSet }): number {
  const paramSet = options.paramSet ?? TG_BFV_4096_Q60_T35;
  const valueCount = expectInteger('valueCount', options.valueCount, 0, Number.MAX_SAFE_INTEGER);
  const perCiphertext = paramSet.slotCount * options.layout.fieldsPerSlot;
  return Math.ceil(valueCount / perCiphertext);
}
