// The robot's split encryption (core/he/encrypt-kernel.ts) against SEAL itself: the plaintext scaling
// gives byte for byte what SEAL's Evaluator.addPlain gives — on SEAL's own encryptions of zero, on
// ciphertexts whose coefficients sit at the edges of [0, q), and on plaintext coefficients at the
// rounding edges of round(q * m / t) — and createEncryptor's default path encrypts exactly, with the
// noise budget of SEAL's encrypt(). Inputs outside the bounds are refused, never scaled.
import { describe, expect, it } from 'vitest';
import { createDecryptor, createEncryptor, generateKeyPair, loadSealContext } from './seal.ts';
import { createScaledPlainKernel, PLAINTEXT_HEADER_BYTES } from './encrypt-kernel.ts';
import { expectedHeader } from './aggregate.ts';
import { getParamSet, PARAM_SET_ID } from './params.ts';
import { CiphertextError } from '../errors.ts';
import { randomBytes } from '../random.ts';

const paramSet = getParamSet({ id: PARAM_SET_ID });
const N = paramSet.polyModulusDegree;
const q = paramSet.coeffModulus;
const t = paramSet.plainModulus;

/** Uniform values below `bound` from the CSPRNG (rejection sampling on 64-bit draws). */
function randomBelow(count: number, bound: bigint): BigUint64Array {
  const out = new BigUint64Array(count);
  const mask = (1n << BigInt(bound.toString(2).length)) - 1n;
  for (let i = 0; i < count; ) {
    const words = new BigUint64Array(randomBytes(8 * 256).buffer);
    for (const w of words) {
      const v = w & mask;
      if (v < bound && i < count) out[i++] = v;
    }
  }
  return out;
}

/** a^-1 mod p for prime p (Fermat). */
function modInverse(a: bigint, p: bigint): bigint {
  let result = 1n;
  let base = a % p;
  for (let e = p - 2n; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * base) % p;
    base = (base * base) % p;
  }
  return result;
}

/** A serialized plaintext (the layout encrypt-kernel.ts reads) holding `coeffs` (< t). */
function plaintextBytes(template: Uint8Array, coeffs: BigUint64Array): Uint8Array {
  const out = new Uint8Array(PLAINTEXT_HEADER_BYTES + 8 * coeffs.length);
  out.set(template.subarray(0, PLAINTEXT_HEADER_BYTES));
  const view = new DataView(out.buffer);
  view.setBigUint64(48, BigInt(coeffs.length), true);
  view.setBigUint64(80, BigInt(coeffs.length), true);
  view.setBigUint64(8, BigInt(out.length), true); // the SEAL header's size field
  view.setBigUint64(64 + 8, BigInt(out.length - 64), true); // the data array's SEAL header
  out.set(new Uint8Array(coeffs.buffer, coeffs.byteOffset, coeffs.byteLength), PLAINTEXT_HEADER_BYTES);
  return out;
}

/** A serialized ciphertext with the given coefficients (both polys), header as SEAL writes it. */
function ciphertextBytes(parmsId: Uint8Array, coeffs: BigUint64Array): Uint8Array {
  const out = new Uint8Array(paramSet.ciphertextBytes);
  out.set(expectedHeader({ parmsId, paramSet }));
  out.set(new Uint8Array(coeffs.buffer, coeffs.byteOffset, coeffs.byteLength), paramSet.headerBytes);
  return out;
}

describe('BFV plaintext scaling kernel (SEAL encrypt split in two)', () => {
  it('equals SEAL Evaluator.addPlain byte for byte on random, edge and rounding-edge inputs', async () => {
    const { seal, context, parmsId } = await loadSealContext({ paramSetId: PARAM_SET_ID });
    const kernel = createScaledPlainKernel(paramSet)!;
    expect(kernel).not.toBeNull();
    const keys = await generateKeyPair({ paramSetId: PARAM_SET_ID });
    const pk = seal.PublicKey();
    pk.loadArray(context, keys.publicKey);
    const encryptor = seal.Encryptor(context, pk);
    const evaluator = seal.Evaluator(context);
    const encoder = seal.BatchEncoder(context);
    const pt = seal.PlainText();
    const ct = seal.CipherText();
    try {
      encoder.encode(new BigUint64Array(N), pt);
      const template = pt.saveArray(seal.ComprModeType.none);
      expect(template.length).toBe(PLAINTEXT_HEADER_BYTES + 8 * N);
      const half = (t + 1n) / 2n;
      // Ties of the rounding: m (q mod t) = (t - 1) / 2 (mod t) puts the numerator m (q mod t) + (t + 1) / 2
      // on a multiple of t, where rounding half up and half down differ; and m = 0, 1, t - 1 and t / 2.
      const tie = (((t - 1n) / 2n) * modInverse(q % t, t)) % t;
      const edges = [0n, 1n, 2n, half - 1n, half, half + 1n, t - 2n, t - 1n, tie - 1n, tie, tie + 1n];
      const cases: Array<{ name: string; ciphertext: Uint8Array; plain: Uint8Array }> = [];
      for (let i = 0; i < 12; i++) {
        encoder.encode(randomBelow(N, t), pt); // SEAL's own batch encoding of random slots
        encryptor.encryptZero(ct);
        cases.push({ name: `SEAL encryptZero + encode #${i}`, ciphertext: ct.saveArray(seal.ComprModeType.none), plain: pt.saveArray(seal.ComprModeType.none) });
      }
      for (let i = 0; i < 6; i++) {
        const coeffs = randomBelow(2 * N, q);
        // ciphertext coefficients at the edges of [0, q) in a few positions
        coeffs.set([0n, 1n, q - 1n, q - 2n], 0);
        coeffs.set([q - 1n, q - 1n, 0n, q - 1n], 100);
        const m = randomBelow(N, t);
        m.set(edges, 0);
        m.set(edges, 100);
        m.set(edges.map((e) => e), N - edges.length);
        cases.push({ name: `edges #${i}`, ciphertext: ciphertextBytes(parmsId, coeffs), plain: plaintextBytes(template, m) });
      }
      // a plaintext SEAL stores with fewer coefficients than N (its high coefficients are zero)
      cases.push({ name: 'short plaintext', ciphertext: ciphertextBytes(parmsId, randomBelow(2 * N, q)), plain: plaintextBytes(template, randomBelow(17, t)) });
      // every m in a dense band of values, to cover many remainders of m (q mod t) / t
      const dense = new BigUint64Array(N).map((_, i) => (BigInt(i) * 8388617n) % t);
      cases.push({ name: 'dense band', ciphertext: ciphertextBytes(parmsId, randomBelow(2 * N, q)), plain: plaintextBytes(template, dense) });

      for (const c of cases) {
        ct.loadArray(context, c.ciphertext);
        pt.loadArray(context, c.plain);
        evaluator.addPlain(ct, pt, ct);
        const reference = ct.saveArray(seal.ComprModeType.none);
        const ours = c.ciphertext.slice();
        kernel.addScaledPlain(ours, c.plain);
        expect(Buffer.compare(Buffer.from(ours), Buffer.from(reference)), c.name).toBe(0);
      }
    } finally {
      ct.delete();
      pt.delete();
      encoder.delete();
      evaluator.delete();
      encryptor.delete();
      pk.delete();
    }
  }, 60_000);

  it('refuses a plaintext coefficient >= t, a ciphertext coefficient >= q and malformed plaintext bytes, leaving the ciphertext unchanged', async () => {
    const { seal, context, parmsId } = await loadSealContext({ paramSetId: PARAM_SET_ID });
    const kernel = createScaledPlainKernel(paramSet)!;
    const encoder = seal.BatchEncoder(context);
    const pt = seal.PlainText();
    encoder.encode(new BigUint64Array(N), pt);
    const template = pt.saveArray(seal.ComprModeType.none);
    pt.delete();
    encoder.delete();
    const good = ciphertextBytes(parmsId, randomBelow(2 * N, q));
    const m = randomBelow(N, t);
    const tooBig = m.slice();
    tooBig[4000] = t;
    let ctCopy = good.slice();
    expect(() => kernel.addScaledPlain(ctCopy, plaintextBytes(template, tooBig))).toThrow(CiphertextError);
    expect(Buffer.compare(Buffer.from(ctCopy), Buffer.from(good))).toBe(0);
    const badCt = good.slice();
    new DataView(badCt.buffer).setBigUint64(paramSet.headerBytes + 8 * 7, q, true);
    ctCopy = badCt.slice();
    expect(() => kernel.addScaledPlain(ctCopy, plaintextBytes(template, m))).toThrow(CiphertextError);
    expect(Buffer.compare(Buffer.from(ctCopy), Buffer.from(badCt))).toBe(0);
    expect(() => kernel.addScaledPlain(good.slice(), plaintextBytes(template, m).subarray(0, 1000))).toThrow(CiphertextError);
    expect(() => kernel.addScaledPlain(good.slice(), plaintextBytes(template, new BigUint64Array(N + 1)))).toThrow(CiphertextError);
    expect(() => kernel.addScaledPlain(good.subarray(0, 100), plaintextBytes(template, m))).toThrow(CiphertextError);
  });

  it('createEncryptor uses it by default: exact decryption, SEAL\'s header, and the noise budget of SEAL\'s encrypt()', async () => {
    const keys = await generateKeyPair({ paramSetId: PARAM_SET_ID });
    const fast = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    const reference = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID, kernel: 'seal' });
    const dec = await createDecryptor({ secretKey: keys.secretKey, paramSetId: PARAM_SET_ID });
    try {
      expect(fast.path).toBe('wasm');
      expect(reference.path).toBe('seal');
      const slots = randomBelow(3 * N + 5, t);
      slots.set([0n, t - 1n, (t + 1n) / 2n, (t - 1n) / 2n], 0);
      const a = fast.encryptSlots({ slots });
      const b = reference.encryptSlots({ slots });
      expect(a.length).toBe(b.length);
      expect(Buffer.compare(Buffer.from(a.subarray(0, paramSet.headerBytes)), Buffer.from(b.subarray(0, paramSet.headerBytes)))).toBe(0);
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).not.toBe(0); // fresh randomness each
      const back = dec.decryptSlots({ ciphertexts: a });
      expect(Array.from(back.subarray(0, slots.length))).toEqual(Array.from(slots));
      // the budget of a fresh encryption (13 or 14 bits here, by the draw), on both paths
      const budgets = { ours: dec.noiseBudgets({ ciphertexts: a }), seal: dec.noiseBudgets({ ciphertexts: b }) };
      for (const bits of budgets.ours) expect(bits, JSON.stringify(budgets)).toBeGreaterThanOrEqual(Math.max(...budgets.seal) - 1);
      // two encryptions of the same slots differ (a fresh encryption of zero each time)
      const again = fast.encryptSlots({ slots });
      expect(Buffer.compare(Buffer.from(again), Buffer.from(a))).not.toBe(0);
    } finally {
      fast.destroy();
      reference.destroy();
      dec.destroy();
    }
  }, 60_000);
});
