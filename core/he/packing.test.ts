// Tests quantization (exactness, clamping, unbiasedness), slot packing and the officer's decode.
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../errors.ts';
import { UniformSource } from '../random.ts';
import { packingLayout, type PackingLayout } from './params.ts';
import { decodeMean, encodeModular, packFields, quantizationBound, quantizeOffset, unpackFieldSums } from './packing.ts';

/** A deterministic stand-in for UniformSource cycling through given draws, so exactness tests are reproducible. */
function fixedSource(values: number[]): UniformSource {
  let i = 0;
  return { next: () => values[i++ % values.length]! } as unknown as UniformSource;
}

/** Sums packed slot vectors as the homomorphic sum would (mod t never wraps: slots stay < 2^34). */
function sumSlots(vectors: BigUint64Array[]): BigUint64Array {
  const out = new BigUint64Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < v.length; i++) out[i]! += v[i]!;
  return out;
}

function randomFields(count: number, bits: number, random: UniformSource): Uint32Array {
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.floor(random.next() * 2 ** bits);
  return out;
}

describe('quantizeOffset', () => {
  it('rounds down or up by the uniform draw and adds the offset', () => {
    // x*s = 1.25, 1.25, -1.25, -1.25, 12, -12, 0 with s = 4. Offset 127.
    // 1.25: u = 0.1 < 0.25 rounds up to 2, u = 0.9 down to 1; -1.25 = -2 + 0.75: u = 0.1 -> -1, u = 0.9 -> -2.
    const values = Float64Array.from([0.3125, 0.3125, -0.3125, -0.3125, 3, -3, 0]);
    const q = quantizeOffset({ values, scale: 4, fieldBits: 8, random: fixedSource([0.1, 0.9]) });
    expect(Array.from(q)).toEqual([129, 128, 126, 125, 139, 115, 127]);
  });

  it('clamps to +-(2^(b-1)-1) and scales', () => {
    const q = quantizeOffset({ values: Float32Array.from([1000, -1000, 0.5]), scale: 2, fieldBits: 4, random: fixedSource([0.5]) });
    expect(Array.from(q)).toEqual([14, 0, 8]); // limit 7, offset 7; 0.5*2 = 1 exactly
    const wide = quantizeOffset({ values: Float64Array.from([1e12, -1e12]), scale: 1, fieldBits: 32, random: fixedSource([0]) });
    expect(Array.from(wide)).toEqual([2 ** 32 - 2, 0]);
  });

  it('refuses non-finite values and bad arguments', () => {
    const random = new UniformSource();
    expect(() => quantizeOffset({ values: Float32Array.from([0, NaN]), scale: 1, fieldBits: 8, random })).toThrow(/"values\[1\]"/);
    expect(() => quantizeOffset({ values: Float32Array.from([Infinity]), scale: 1, fieldBits: 8, random })).toThrow(RangeError);
    expect(() => quantizeOffset({ values: Float32Array.from([0]), scale: 0, fieldBits: 8, random })).toThrow(/"scale"/);
    expect(() => quantizeOffset({ values: Float32Array.from([0]), scale: 1, fieldBits: 33, random })).toThrow(/"fieldBits"/);
    expect(() => quantizeOffset({ values: [0] as unknown as Float32Array, scale: 1, fieldBits: 8, random })).toThrow(TypeError);
  });

  it('is unbiased: the decoded mean of many contributions converges to the true value', () => {
    // Statistical, wide tolerance: per contribution the rounding error has variance f(1-f) <= 1/4
    // quanta^2; over n = 200,000 draws the mean's standard deviation is <= 0.0011 quanta. We allow 6 sigma.
    const random = new UniformSource();
    const n = 200_000;
    const scale = 10;
    const truth = [0.3141, -0.0271, 0.05, -0.99];
    for (const x of truth) {
      const q = quantizeOffset({ values: new Float64Array(n).fill(x), scale, fieldBits: 8, random });
      let sum = 0;
      for (const v of q) sum += v;
      const mean = (sum - n * 127) / (n * scale);
      expect(Math.abs(mean - x)).toBeLessThan((6 * 0.5) / Math.sqrt(n) / scale);
      // Deterministic rounding would be off by up to half a quantum: 0.3141*10 -> 3 gives 0.3, off by 0.0141.
    }
  });
});

describe('encodeModular', () => {
  it('reduces integers mod 2^b', () => {
    expect(Array.from(encodeModular({ integers: Int32Array.from([0, 1, -1, 255, 256, -256, -257]), fieldBits: 8 }))).toEqual([
      0, 1, 255, 255, 0, 0, 255,
    ]);
    expect(Array.from(encodeModular({ integers: Float64Array.from([-1, 2 ** 40 + 3]), fieldBits: 32 }))).toEqual([2 ** 32 - 1, 3]);
    expect(() => encodeModular({ integers: Float64Array.from([0.5]), fieldBits: 8 })).toThrow(/"integers\[0\]"/);
  });
});

describe('packFields / unpackFieldSums', () => {
  const layouts: PackingLayout[] = [
    packingLayout({ fieldBits: 8, maxContributors: 1024, encoding: 'offset' }), // k = 1
    packingLayout({ fieldBits: 7, maxContributors: 1024, encoding: 'offset' }), // k = 2, 34 bits used
    packingLayout({ fieldBits: 6, maxContributors: 100, encoding: 'modular' }), // k = 2
    packingLayout({ fieldBits: 2, maxContributors: 2, encoding: 'offset' }), // k = 11
    packingLayout({ fieldBits: 24, maxContributors: 1024, encoding: 'offset' }), // k = 1, w = 34
    packingLayout({ fieldBits: 32, maxContributors: 2, encoding: 'modular' }), // k = 1, w = 33
  ];

  for (const layout of layouts) {
    it(`sums exactly through packing for b=${layout.fieldBits} k=${layout.fieldsPerSlot}`, () => {
      const random = new UniformSource();
      const valueCount = 4096 * layout.fieldsPerSlot + 37; // two ciphertexts, partial tail
      const contributors = Math.min(layout.maxContributors, 20);
      const fieldSets = Array.from({ length: contributors }, () => randomFields(valueCount, layout.fieldBits, random));
      // Worst case in the first field: every contributor at the maximum value.
      for (const f of fieldSets) f[0] = 2 ** layout.fieldBits - 1;
      const packed = fieldSets.map((fields) => packFields({ fields, layout }));
      expect(packed[0]!.length).toBe(2 * 4096);
      expect(packed.every((p) => p.every((v) => v < 2n ** 34n))).toBe(true);
      const sums = unpackFieldSums({ slots: sumSlots(packed), layout, valueCount });
      const expected = new Float64Array(valueCount);
      for (const f of fieldSets) for (let i = 0; i < valueCount; i++) expected[i]! += f[i]!;
      expect(sums).toEqual(expected);
    });
  }

  it('places field i of a slot at bit i*w, least significant first', () => {
    const layout = packingLayout({ fieldBits: 7, maxContributors: 1024, encoding: 'offset' }); // w = 17
    const slots = packFields({ fields: Uint32Array.from([5, 127, 3]), layout });
    expect(slots[0]).toBe(5n + (127n << 17n));
    expect(slots[1]).toBe(3n);
    expect(slots.length).toBe(4096);
  });

  it('simulates the maximum contributor count with worst-case fields without carry', () => {
    const layout = packingLayout({ fieldBits: 7, maxContributors: 1024, encoding: 'offset' });
    const slots = packFields({ fields: new Uint32Array(8192).fill(127), layout });
    const total = slots.map((v) => v * 1024n);
    const sums = unpackFieldSums({ slots: total, layout, valueCount: 8192 });
    expect(sums.every((s) => s === 127 * 1024)).toBe(true);
  });

  it('refuses fields >= 2^b and detects overflowed slots', () => {
    const layout = packingLayout({ fieldBits: 7, maxContributors: 1024, encoding: 'offset' });
    expect(() => packFields({ fields: Uint32Array.from([1, 128]), layout })).toThrow(/"fields\[1\]"/);
    const one = packingLayout({ fieldBits: 8, maxContributors: 1024, encoding: 'offset' });
    expect(() => packFields({ fields: Uint32Array.from([256]), layout: one })).toThrow(RangeError);
    const slots = new BigUint64Array(4096);
    slots[3] = 1n << 34n;
    expect(() => unpackFieldSums({ slots, layout, valueCount: 8 })).toThrow(IntegrityError);
    const narrow = new BigUint64Array(4096);
    narrow[0] = 1n << 18n; // k = 1, w = 18
    expect(() => unpackFieldSums({ slots: narrow, layout: one, valueCount: 1 })).toThrow(/slot 0/);
    expect(() => unpackFieldSums({ slots, layout, valueCount: 8193 })).toThrow(/"valueCount"/);
  });
});

describe('decodeMean', () => {
  it('decodes offset sums to the mean', () => {
    const layout = packingLayout({ fieldBits: 8, maxContributors: 16, encoding: 'offset' });
    const n = 4;
    const scale = 8;
    // contributions (in quanta) 3, -2, 10, 1 -> sum 12, mean 3 quanta = 0.375
    const sum = 3 + -2 + 10 + 1 + n * 127;
    expect(Array.from(decodeMean({ fieldSums: Float64Array.from([sum, n * 127]), layout, contributors: n, scale }))).toEqual([0.375, 0]);
  });

  it('decodes modular sums through the centered residue', () => {
    const layout = packingLayout({ fieldBits: 8, maxContributors: 16, encoding: 'modular' });
    const contributions = [-5, -7, 3, -2];
    const fields = encodeModular({ integers: Int32Array.from(contributions), fieldBits: 8 });
    let sum = 0;
    for (const f of fields) sum += f;
    const mean = decodeMean({ fieldSums: Float64Array.from([sum]), layout, contributors: 4, scale: 2 });
    expect(mean[0]).toBe(-11 / 8);
  });

  it('round-trips float values within the quantization bound', () => {
    const layout = packingLayout({ fieldBits: 12, maxContributors: 64, encoding: 'offset' });
    const random = new UniformSource();
    const scale = 256;
    const n = 50;
    const count = 1000;
    const contributions = Array.from({ length: n }, () => Float32Array.from({ length: count }, () => (random.next() - 0.5) * 4));
    const slots = sumSlots(contributions.map((values) => packFields({ fields: quantizeOffset({ values, scale, fieldBits: 12, random }), layout })));
    const mean = decodeMean({ fieldSums: unpackFieldSums({ slots, layout, valueCount: count }), layout, contributors: n, scale });
    const bound = quantizationBound({ scale });
    expect(bound).toBe(1 / 256);
    for (let i = 0; i < count; i++) {
      let truth = 0;
      for (const c of contributions) truth += c[i]!;
      expect(Math.abs(mean[i]! - truth / n)).toBeLessThan(bound + 1e-6);
    }
  });

  it('refuses bad contributor counts and scales', () => {
    const layout = packingLayout({ fieldBits: 8, maxContributors: 16, encoding: 'offset' });
    expect(() => decodeMean({ fieldSums: new Float64Array(1), layout, contributors: 0, scale: 1 })).toThrow(/"contributors"/);
    expect(() => decodeMean({ fieldSums: new Float64Array(1), layout, contributors: 17, scale: 1 })).toThrow(RangeError);
    expect(() => decodeMean({ fieldSums: new Float64Array(1), layout, contributors: 1, scale: -1 })).toThrow(/"scale"/);
    expect(() => quantizationBound({ scale: 0 })).toThrow(RangeError);
  });
});
