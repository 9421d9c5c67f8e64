// Tests raw ciphertext aggregation: byte-identical to SEAL's Evaluator.add, both kernels, and refusal of bad input.
import { beforeAll, describe, expect, it } from 'vitest';
import { CiphertextError } from '../errors.ts';
import { randomBytes } from '../random.ts';
import { fromBase64 } from '../bytes.ts';
import { AGGREGATE_WASM_BASE64 } from './aggregate-wasm.ts';
import {
  CiphertextAccumulator,
  aggregationKernel,
  expectedHeader,
  sumCiphertextBlocks,
  validateCiphertextBlock,
  type AggregationKernelName,
} from './aggregate.ts';
import { PARAM_SET_ID, getParamSet } from './params.ts';
import { createEncryptor, generateKeyPair, loadSealContext, type HeKeyPair, type SealContext } from './seal.ts';

const set = getParamSet({ id: PARAM_SET_ID });
const Q = set.coeffModulus;
const KERNELS: AggregationKernelName[] = ['wasm-simd', 'js'];
let keys: HeKeyPair;
let sealCtx: SealContext;
let parmsId: Uint8Array;

beforeAll(async () => {
  keys = await generateKeyPair({});
  sealCtx = await loadSealContext({ paramSetId: PARAM_SET_ID });
  parmsId = keys.parmsId;
});

/**
 * A block of structurally valid ciphertexts with uniformly random coefficients < q (SEAL accepts any
 * such ciphertext; what it encrypts does not matter to addition). Edge values q-1 and 0 included.
 */
function randomBlock(count: number): Uint8Array {
  const header = expectedHeader({ parmsId });
  const block = new Uint8Array(count * set.ciphertextBytes);
  const coefficients = (set.ciphertextBytes - set.headerBytes) / 8;
  for (let c = 0; c < count; c++) {
    const off = c * set.ciphertextBytes;
    block.set(header, off);
    const data = new DataView(block.buffer, off + set.headerBytes, coefficients * 8);
    const raw = new DataView(randomBytes(coefficients * 8).buffer);
    for (let i = 0; i < coefficients; i++) {
      let v = raw.getBigUint64(i * 8, true) >> 4n; // < 2^60
      if (v >= Q) v -= Q;
      if (i % 997 === 0) v = Q - 1n;
      if (i % 991 === 0) v = 0n;
      data.setBigUint64(i * 8, v, true);
    }
  }
  return block;
}

/** SEAL's own answer: load every ciphertext, Evaluator.add, saveArray(none). */
function sealSum(blocks: Uint8Array[]): Uint8Array {
  const { seal, context } = sealCtx;
  const evaluator = seal.Evaluator(context);
  const count = blocks[0]!.length / set.ciphertextBytes;
  const out = new Uint8Array(blocks[0]!.length);
  const acc = seal.CipherText();
  const next = seal.CipherText();
  for (let c = 0; c < count; c++) {
    const slice = (b: Uint8Array) => b.subarray(c * set.ciphertextBytes, (c + 1) * set.ciphertextBytes);
    acc.loadArray(context, slice(blocks[0]!));
    for (const block of blocks.slice(1)) {
      next.loadArray(context, slice(block));
      evaluator.add(acc, next, acc);
    }
    out.set(acc.saveArray(seal.ComprModeType.none), c * set.ciphertextBytes);
  }
  acc.delete();
  next.delete();
  evaluator.delete();
  return out;
}

/** Byte equality without vitest's element-by-element deep diff (slow on 64 KiB arrays); names the first difference. */
function expectSameBytes(actual: Uint8Array | null, expected: Uint8Array): void {
  expect(actual).not.toBeNull();
  expect(actual!.length).toBe(expected.length);
  let first = -1;
  for (let i = 0; i < expected.length; i++) {
    if (actual![i] !== expected[i]) {
      first = i;
      break;
    }
  }
  expect(first, `first differing byte`).toBe(-1);
}

function setCoefficient(block: Uint8Array, ct: number, index: number, value: bigint): Uint8Array {
  const copy = block.slice();
  new DataView(copy.buffer).setBigUint64(ct * set.ciphertextBytes + set.headerBytes + index * 8, value, true);
  return copy;
}

describe('the embedded WASM module', () => {
  it('is aggregate.wat compiled by wabt (scripts/build-aggregate-wasm.mjs)', async () => {
    const script = new URL('../../scripts/build-aggregate-wasm.mjs', import.meta.url).href;
    const { compileAggregateWat } = (await import(script)) as { compileAggregateWat: () => Promise<Uint8Array> };
    const compiled = await compileAggregateWat();
    expect(fromBase64(AGGREGATE_WASM_BASE64)).toEqual(compiled);
  });

  it('runs with SIMD on Node 20', () => {
    expect(aggregationKernel()).toBe('wasm-simd');
  });
});

describe('expectedHeader', () => {
  it('equals the first 113 bytes of real ciphertexts and of SEAL sums', async () => {
    const enc = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    const real = enc.encryptSlots({ slots: new BigUint64Array(4096 * 2 + 5).fill(7n) });
    enc.destroy();
    const header = expectedHeader({ parmsId });
    expect(header.length).toBe(113);
    for (let c = 0; c < 3; c++) expect(real.subarray(c * set.ciphertextBytes, c * set.ciphertextBytes + 113)).toEqual(header);
    const summed = sealSum([real, real]);
    expect(summed.subarray(0, 113)).toEqual(header);
    expect(validateCiphertextBlock({ bytes: real, parmsId })).toBe(3);
  });

  it('refuses a parms id that is not 32 bytes', () => {
    expect(() => expectedHeader({ parmsId: new Uint8Array(31) })).toThrow(RangeError);
  });
});

describe('raw addition is byte-identical to SEAL Evaluator.add', () => {
  it('on real encryptions', async () => {
    const enc = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    const a = enc.encryptSlots({ slots: new BigUint64Array(4096 + 1).fill(123n) });
    const b = enc.encryptSlots({ slots: new BigUint64Array(4096 + 1).fill(2n ** 34n - 1n) });
    enc.destroy();
    const expected = sealSum([a, b]);
    for (const kernel of KERNELS) expectSameBytes(sumCiphertextBlocks({ accumulator: a, addend: b, parmsId, kernel }), expected);
  });

  it('on random ciphertexts, for both kernels and the accumulator', () => {
    const a = randomBlock(2);
    const b = randomBlock(2);
    // Force the largest sums: (q-1) + (q-1) must reduce to q-2.
    const edgeA = setCoefficient(a, 1, 5, Q - 1n);
    const edgeB = setCoefficient(b, 1, 5, Q - 1n);
    const expected = sealSum([edgeA, edgeB]);
    expect(new DataView(expected.buffer).getBigUint64(set.ciphertextBytes + 113 + 40, true)).toBe(Q - 2n);
    for (const kernel of KERNELS) {
      expectSameBytes(sumCiphertextBlocks({ accumulator: edgeA, addend: edgeB, parmsId, kernel }), expected);
      const acc = new CiphertextAccumulator({ parmsId, ciphertextCount: 2, kernel });
      expect(acc.kernel).toBe(kernel);
      acc.add({ block: edgeA });
      acc.add({ block: edgeB });
      expect(acc.count).toBe(2);
      expectSameBytes(acc.bytes(), expected);
    }
    expectSameBytes(sumCiphertextBlocks({ accumulator: null, addend: a, parmsId }), a);
  });

  it('on a chain of 300 additions', () => {
    const pool = Array.from({ length: 12 }, () => randomBlock(1));
    const blocks = Array.from({ length: 300 }, (_, i) => pool[(i * 7) % pool.length]!);
    const expected = sealSum(blocks);
    for (const kernel of KERNELS) {
      const acc = new CiphertextAccumulator({ parmsId, ciphertextCount: 1, kernel });
      for (const block of blocks) acc.add({ block });
      expectSameBytes(acc.bytes(), expected);
    }
    let running: Uint8Array | null = null;
    for (const block of blocks) running = sumCiphertextBlocks({ accumulator: running, addend: block, parmsId });
    expectSameBytes(running, expected);
  });
});

describe('refuses untrusted input with CiphertextError', () => {
  let good: Uint8Array;
  beforeAll(() => {
    good = randomBlock(3);
  });

  const cases: Array<[string, () => Uint8Array, RegExp]> = [
    ['a coefficient equal to q', () => setCoefficient(good, 1, 4000, Q), /ciphertext 1 of 3: coefficient 4000 .*not < q/],
    ['a coefficient with bit 63 set', () => setCoefficient(good, 2, 8191, 2n ** 63n + 5n), /ciphertext 2 of 3: coefficient 8191/],
    ['a coefficient of 2^64 - 1', () => setCoefficient(good, 0, 0, 2n ** 64n - 1n), /ciphertext 0 of 3: coefficient 0 /],
    ['a coefficient of 2^60', () => setCoefficient(good, 0, 4096, 2n ** 60n), /coefficient 4096 \(polynomial 1, index 0\)/],
    [
      'a wrong parms id',
      () => {
        const bad = good.slice();
        bad[set.ciphertextBytes + 20]! ^= 1;
        return bad;
      },
      /ciphertext 1 of 3: header byte 20 \(parms id\)/,
    ],
    [
      'a wrong polynomial count',
      () => {
        const bad = good.slice();
        bad[49] = 3;
        return bad;
      },
      /header byte 49 \(polynomial count\)/,
    ],
    ['a truncated block', () => good.subarray(0, good.length - 1), /not a positive multiple/],
    ['an empty block', () => new Uint8Array(0), /not a positive multiple/],
    ['random bytes', () => randomBytes(set.ciphertextBytes), /header byte/],
  ];

  for (const [name, make, message] of cases) {
    it(name, () => {
      const bad = make();
      for (const kernel of KERNELS) {
        expect(() => validateCiphertextBlock({ bytes: bad, parmsId, kernel })).toThrow(message);
        expect(() => sumCiphertextBlocks({ accumulator: null, addend: bad, parmsId, kernel })).toThrow(CiphertextError);
        if (bad.length === good.length) {
          expect(() => sumCiphertextBlocks({ accumulator: good, addend: bad, parmsId, kernel })).toThrow(message);
          expect(() => sumCiphertextBlocks({ accumulator: bad, addend: good, parmsId, kernel })).toThrow(/accumulator ciphertext/);
        }
        const acc = new CiphertextAccumulator({ parmsId, ciphertextCount: 3, kernel });
        expect(() => acc.add({ block: bad })).toThrow(CiphertextError);
        expect(acc.count).toBe(0);
      }
    });
  }

  it('a block of another length', () => {
    const other = randomBlock(2);
    expect(() => sumCiphertextBlocks({ accumulator: good, addend: other, parmsId })).toThrow(/different ciphertext counts/);
    const acc = new CiphertextAccumulator({ parmsId, ciphertextCount: 3 });
    expect(() => acc.add({ block: other })).toThrow(/block holds 2 ciphertexts, this aggregate 3/);
  });

  it('a ciphertext under another parms id', () => {
    const otherId = randomBytes(32);
    expect(() => validateCiphertextBlock({ bytes: good, parmsId: otherId })).toThrow(/another key or parameter set/);
  });

  it('leaves the accumulator unchanged when a later ciphertext of a block is bad', () => {
    for (const kernel of KERNELS) {
      const acc = new CiphertextAccumulator({ parmsId, ciphertextCount: 3, kernel });
      acc.add({ block: good });
      const before = acc.bytes();
      const second = randomBlock(3);
      expect(() => acc.add({ block: setCoefficient(second, 2, 100, Q + 1n) })).toThrow(/ciphertext 2 of 3/);
      expect(acc.count).toBe(1);
      expectSameBytes(acc.bytes(), before);
      acc.add({ block: second });
      expectSameBytes(acc.bytes(), sealSum([good, second]));
    }
  });

  it('an empty accumulator has no bytes', () => {
    expect(() => new CiphertextAccumulator({ parmsId, ciphertextCount: 1 }).bytes()).toThrow(CiphertextError);
    expect(() => new CiphertextAccumulator({ parmsId, ciphertextCount: 0 })).toThrow(RangeError);
  });
});
