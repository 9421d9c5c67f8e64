// Quantization of model deltas to b-bit fields, packing of k fields per BFV slot, and the officer's inverse.
//
// Robot:   float values -> quantizeOffset (or integer values + DP noise -> encodeModular) -> b-bit fields
//          -> packFields -> slots (BigUint64Array, 4,096 per ciphertext) -> core/he/seal.ts encryptSlots.
// Officer: decrypted slots -> unpackFieldSums (per-field sums over n contributors, each < 2^w)
//          -> decodeMean -> Float32Array mean update.
// The layout arithmetic (w = b + ceil(log2(maxContributors)), k = floor(34 / w)) and why carries
// never cross fields are in core/he/params.ts. Slot values stay below 2^35, so all arithmetic here
// runs exactly in doubles and slots are written as two 32-bit halves through a Uint32Array view of
// the BigUint64Array: no per-element BigInt.

import { IntegrityError, describe, expectFinite, expectInteger } from '../errors.ts';
import type { UniformSource } from '../random.ts';
import { ciphertextCount, type HeParamSet, type PackingLayout } from './params.ts';

const TWO_32 = 4294967296;
/** Index of the low / high 32-bit half of a u64 in a Uint32Array view on this platform. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;

function expectFieldBits(value: unknown): number {
  return expectInteger('fieldBits', value, 2, 32);
}

function expectScale(value: unknown): number {
  const scale = expectFinite('scale', value);
  if (!(scale > 0)) throw new RangeError(`"scale" expected positive number, got ${scale}`);
  return scale;
}

/**
 * Stochastic rounding to b-bit offset fields: r = floor(x*s) + (u < frac(x*s)) is unbiased
 * (E[r] = x*s), then clamped to +-(2^(b-1) - 1) and shifted by 2^(b-1) - 1 into [0, 2^b - 2].
 * The clamp is the only bias, and only for values the round's clipping should already bound.
 */
export function quantizeOffset(options: {
  values: Float32Array | Float64Array;
  scale: number;
  fieldBits: number;
  random: UniformSource;
}): Uint32Array {
  const values = options?.values;
  if (!(values instanceof Float32Array || values instanceof Float64Array))
    throw new TypeError(`"values" expected Float32Array | Float64Array, got ${describe(values)}`);
  const scale = expectScale(options.scale);
  const fieldBits = expectFieldBits(options.fieldBits);
  const random = options.random;
  if (random === null || typeof random !== 'object' || typeof random.next !== 'function')
    throw new TypeError(`"random" expected UniformSource, got ${describe(random)}`);
  const limit = 2 ** (fieldBits - 1) - 1;
  const out = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const y = values[i]! * scale;
    if (!Number.isFinite(y)) throw new RangeError(`"values[${i}]" expected finite number, got ${values[i]}`);
    const low = Math.floor(y);
    let r = random.next() < y - low ? low + 1 : low;
    if (r > limit) r = limit;
    else if (r < -limit) r = -limit;
    out[i] = r + limit;
  }
  return out;
}

/** Integers (already rounded, DP noise included) to b-bit fields: v mod 2^b in [0, 2^b). */
export function encodeModular(options: { integers: Int32Array | Float64Array; fieldBits: number }): Uint32Array {
  const integers = options?.integers;
  if (!(integers instanceof Int32Array || integers instanceof Float64Array))
    throw new TypeError(`"integers" expected Int32Array | Float64Array, got ${describe(integers)}`);
  const fieldBits = expectFieldBits(options.fieldBits);
  const modulus = 2 ** fieldBits;
  const out = new Uint32Array(integers.length);
  for (let i = 0; i < integers.length; i++) {
    const v = integers[i]!;
    if (!Number.isSafeInteger(v)) throw new RangeError(`"integers[${i}]" expected safe integer, got ${v}`);
    let r = v % modulus;
    if (r < 0) r += modulus;
    out[i] = r;
  }
  return out;
}

/**
 * Packs fields into slots: slot j = sum_i fields[j*k + i] * 2^(i*w), least significant first,
 * zero padded to whole ciphertexts (ciphertextCount * slotCount slots).
 */
export function packFields(options: { fields: Uint32Array; layout: PackingLayout; paramSet?: HeParamSet }): BigUint64Array {
  const fields = options?.fields;
  if (!(fields instanceof Uint32Array)) throw new TypeError(`"fields" expected Uint32Array, got ${describe(fields)}`);
  const layout = options.layout;
  const count = ciphertextCount({ valueCount: fields.length, layout, paramSet: options.paramSet });
  const slotCount = options.paramSet?.slotCount ?? 4096;
  const slots = new BigUint64Array(count * slotCount);
  const words = new Uint32Array(slots.buffer);
  const maxField = 2 ** layout.fieldBits - 1;
  const k = layout.fieldsPerSlot;
  const n = fields.length;
  const checkField = (index: number, value: number): void => {
    if (value > maxField) throw new RangeError(`"fields[${index}]" expected integer < 2^${layout.fieldBits}, got ${value}`);
  };
  if (k === 1) {
    // One field per slot (wide fields): the slot is the field, high half stays zero.
    for (let j = 0; j < n; j++) {
      const f = fields[j]!;
      checkField(j, f);
      words[2 * j + LO] = f;
    }
    return slots;
  }
  const fieldScale = 2 ** layout.sumBits;
  const slotsUsed = Math.ceil(n / k);
  for (let j = 0; j < slotsUsed; j++) {
    const base = j * k;
    const end = Math.min(base + k, n);
    let acc = 0;
    let weight = 1;
    for (let idx = base; idx < end; idx++) {
      const f = fields[idx]!;
      checkField(idx, f);
      acc += f * weight; // < 2^34: exact in a double
      weight *= fieldScale;
    }
    const lo = acc >>> 0; // ToUint32 is acc mod 2^32
    words[2 * j + LO] = lo;
    words[2 * j + HI] = (acc - lo) / TWO_32;
  }
  return slots;
}

/**
 * The per-field sums (each < 2^w) of the first valueCount fields. A slot with bits above the packed
 * width cannot come from at most maxContributors honest contributions: IntegrityError.
 */
export function unpackFieldSums(options: { slots: BigUint64Array; layout: PackingLayout; valueCount: number }): Float64Array {
  const slots = options?.slots;
  if (!(slots instanceof BigUint64Array)) throw new TypeError(`"slots" expected BigUint64Array, got ${describe(slots)}`);
  const layout = options.layout;
  const k = layout.fieldsPerSlot;
  const valueCount = expectInteger('valueCount', options.valueCount, 0, slots.length * k);
  const words = new Uint32Array(slots.buffer, slots.byteOffset, slots.length * 2);
  const fieldScale = 2 ** layout.sumBits;
  const out = new Float64Array(valueCount);
  const slotsUsed = Math.ceil(valueCount / k);
  for (let j = 0; j < slotsUsed; j++) {
    let v = words[2 * j + HI]! * TWO_32 + words[2 * j + LO]!; // < 2^64 only if corrupt; then inexact but caught below
    const base = j * k;
    for (let i = 0; i < k; i++) {
      const f = v % fieldScale;
      v = (v - f) / fieldScale;
      if (base + i < valueCount) out[base + i] = f;
    }
    if (v !== 0)
      throw new IntegrityError(
        `slot ${j} holds bits above the packed width (${k} x ${layout.sumBits} bits): the aggregate overflowed or did not decrypt correctly`,
        { slot: j },
      );
  }
  return out;
}

/**
 * The mean of n contributions from their field sums.
 * offset:  (sum - n*(2^(b-1)-1)) / (n*s).
 * modular: centered(sum mod 2^b) / (n*s), exact while |true integer sum| < 2^(b-1).
 */
export function decodeMean(options: {
  fieldSums: Float64Array;
  layout: PackingLayout;
  contributors: number;
  scale: number;
}): Float32Array {
  const fieldSums = options?.fieldSums;
  if (!(fieldSums instanceof Float64Array)) throw new TypeError(`"fieldSums" expected Float64Array, got ${describe(fieldSums)}`);
  const layout = options.layout;
  const n = expectInteger('contributors', options.contributors, 1, layout.maxContributors);
  const scale = expectScale(options.scale);
  const divisor = n * scale;
  const out = new Float32Array(fieldSums.length);
  if (layout.encoding === 'offset') {
    const bias = n * (2 ** (layout.fieldBits - 1) - 1);
    for (let i = 0; i < fieldSums.length; i++) out[i] = (fieldSums[i]! - bias) / divisor;
  } else {
    const modulus = 2 ** layout.fieldBits;
    const half = modulus / 2;
    for (let i = 0; i < fieldSums.length; i++) {
      let r = fieldSums[i]! % modulus;
      if (r < 0) r += modulus;
      if (r >= half) r -= modulus;
      out[i] = r / divisor;
    }
  }
  return out;
}

/**
 * The largest error stochastic rounding adds to a decoded mean, per value: each contribution's
 * rounding error is below one quantum (1/s), so their mean is too. Clamping is not included.
 */
export function quantizationBound(options: { scale: number }): number {
  return 1 / expectScale(options?.scale);
}
