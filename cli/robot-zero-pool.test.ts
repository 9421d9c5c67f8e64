// The robot agent's pool of precomputed encryptions of zero: bound to one HE key, each entry handed out
// once and overwritten after use, a new key or wipe() overwrites the rest; ciphertexts built from the
// pool decrypt exactly, and two encryptions never share randomness (their c1 halves, pk1 * u + e2, all
// differ — a reused encryption of zero would repeat one). Garbage in the pool is refused, not encrypted to.
import { describe, expect, it } from 'vitest';
import { ZeroEncryptionPool } from './robot-zero-pool.ts';
import { createDecryptor, createEncryptor, generateKeyPair } from '../core/he/seal.ts';
import { getParamSet, PARAM_SET_ID } from '../core/he/params.ts';
import { CiphertextError } from '../core/errors.ts';
import { randomBytes } from '../core/random.ts';

const paramSet = getParamSet({ id: PARAM_SET_ID });
const CT = paramSet.ciphertextBytes;
const c1Of = (cts: Uint8Array, i: number) => Buffer.from(cts.subarray(i * CT + paramSet.headerBytes + 8 * 4096, (i + 1) * CT)).toString('base64');

describe('ZeroEncryptionPool', () => {
  it('hands each encryption of zero out once, for its own key only, and wipes what it gave or dropped', async () => {
    const keys = await generateKeyPair({ paramSetId: PARAM_SET_ID });
    const other = await generateKeyPair({ paramSetId: PARAM_SET_ID });
    const fp = randomBytes(32);
    const otherFp = randomBytes(32);
    const pool = new ZeroEncryptionPool();
    expect(await pool.fill({ heKeyFingerprint: fp, publicKey: keys.publicKey, paramSetId: PARAM_SET_ID, target: 6 })).toBe(6);
    expect(await pool.fill({ heKeyFingerprint: fp, publicKey: keys.publicKey, paramSetId: PARAM_SET_ID, target: 6 })).toBe(0);
    expect(pool.sourceFor(otherFp)).toBeUndefined();

    const encryptor = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    const decryptor = await createDecryptor({ secretKey: keys.secretKey, paramSetId: PARAM_SET_ID });
    try {
      const slots = new BigUint64Array(4 * 4096).map((_, i) => BigInt((i * 7919) % 1000003));
      const taken: Uint8Array[] = [];
      const source = pool.sourceFor(fp)!;
      const tracking = { take: () => { const z = source.take(); if (z) taken.push(z); return z; } };
      const first = encryptor.encryptSlots({ slots, zeros: tracking });
      expect(taken).toHaveLength(4);
      expect(pool.size).toBe(2);
      for (const z of taken) expect(z.every((b) => b === 0)).toBe(true); // overwritten after its one use
      expect(Array.from(decryptor.decryptSlots({ ciphertexts: first }))).toEqual(Array.from(slots));
      // the next encryption takes the last two, then goes on with fresh ones: no c1 repeats anywhere
      const second = encryptor.encryptSlots({ slots, zeros: pool.sourceFor(fp)! });
      expect(pool.size).toBe(0);
      expect(Array.from(decryptor.decryptSlots({ ciphertexts: second }))).toEqual(Array.from(slots));
      const c1s = new Set<string>();
      for (const cts of [first, second]) for (let i = 0; i < 4; i++) c1s.add(c1Of(cts, i));
      expect(c1s.size).toBe(8);
      expect(pool.sourceFor(fp)).toBeUndefined(); // empty

      // topping up after a partial use; then a new key replaces the pool's content, and wipe() empties it
      await pool.fill({ heKeyFingerprint: fp, publicKey: keys.publicKey, paramSetId: PARAM_SET_ID, target: 2 });
      pool.sourceFor(fp)!.take()!.fill(0); // one used elsewhere
      expect(await pool.fill({ heKeyFingerprint: fp, publicKey: keys.publicKey, paramSetId: PARAM_SET_ID, target: 3 })).toBe(2);
      expect(pool.size).toBe(3);
      expect(pool.keyFingerprint).toBe(Buffer.from(fp).toString('hex'));
      await pool.fill({ heKeyFingerprint: otherFp, publicKey: other.publicKey, paramSetId: PARAM_SET_ID, target: 1 });
      expect(pool.size).toBe(1); // the three for the old key are gone
      expect(pool.sourceFor(fp)).toBeUndefined();
      expect(pool.keyFingerprint).toBe(Buffer.from(otherFp).toString('hex'));
      pool.wipe();
      expect(pool.size).toBe(0);
      expect(pool.keyFingerprint).toBeNull();
    } finally {
      encryptor.destroy();
      decryptor.destroy();
    }
  }, 60_000);

  it('refuses a pooled value that is not a ciphertext of the key\'s parameters', async () => {
    const keys = await generateKeyPair({ paramSetId: PARAM_SET_ID });
    const encryptor = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    try {
      const slots = new BigUint64Array(10).fill(3n);
      expect(() => encryptor.encryptSlots({ slots, zeros: { take: () => randomBytes(CT) } })).toThrow(CiphertextError);
      expect(() => encryptor.encryptSlots({ slots, zeros: { take: () => new Uint8Array(100) } })).toThrow(CiphertextError);
      const real = encryptor.encryptZeros(1)[0]!;
      const tampered = real.slice();
      tampered[20] = tampered[20]! ^ 1; // the parms id in the header
      expect(() => encryptor.encryptSlots({ slots, zeros: { take: () => tampered } })).toThrow(CiphertextError);
      expect(encryptor.encryptSlots({ slots, zeros: { take: () => real } }).length).toBe(CT);
    } finally {
      encryptor.destroy();
    }
  });
});
