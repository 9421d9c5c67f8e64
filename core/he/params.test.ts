// Tests that the hard-coded parameter set is what SEAL builds, and the packing layout arithmetic.
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../errors.ts';
import { PARAM_SET_ID, PARAM_SETS, ciphertextCount, getParamSet, packingLayout } from './params.ts';
import { generateKeyPair, createEncryptor, loadSealContext } from './seal.ts';

describe('tg-bfv-4096-q60-t35', () => {
  const set = getParamSet({ id: PARAM_SET_ID });

  it('matches the primes, sizes and security bound SEAL reports', async () => {
    const { seal, context } = await loadSealContext({ paramSetId: PARAM_SET_ID });
    const parms = seal.EncryptionParameters(seal.SchemeType.bfv);
    const coeff = seal.CoeffModulus.Create(4096, Int32Array.from([60]));
    const plain = seal.PlainModulus.Batching(4096, 35);
    try {
      expect(coeff.toArray()).toEqual(BigUint64Array.from([set.coeffModulus]));
      expect(plain.value).toBe(set.plainModulus);
      expect(set.coeffModulus < 2n ** 60n && set.coeffModulus > 2n ** 59n).toBe(true);
      expect(set.plainModulus > 2n ** BigInt(set.slotCapacityBits)).toBe(true);
      expect(set.plainModulus < 2n ** 35n).toBe(true);
      // 128-bit security: the standard's bound SEAL enforces at N = 4096 is 109 bits; we use 60.
      expect(seal.CoeffModulus.MaxBitCount(4096, seal.SecurityLevel.tc128)).toBe(109);
      expect(context.parametersSet()).toBe(true);
      expect(context.usingKeyswitching).toBe(false); // one prime: no special prime, addition only
    } finally {
      coeff.delete();
      plain.delete();
      parms.delete();
    }
    const batch = seal.BatchEncoder(context);
    expect(batch.slotCount).toBe(set.slotCount);
    batch.delete();
  });

  it('serializes a ciphertext to ciphertextBytes with a headerBytes header', async () => {
    const keys = await generateKeyPair({});
    const enc = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    const ct = enc.encryptSlots({ slots: new BigUint64Array(1) });
    enc.destroy();
    expect(set.ciphertextBytes).toBe(65649);
    expect(ct.length).toBe(set.ciphertextBytes);
    expect(set.ciphertextBytes - set.headerBytes).toBe(2 * 4096 * 8);
  });

  it('refuses unknown ids with IntegrityError', () => {
    expect(() => getParamSet({ id: 'tg-bfv-8192' })).toThrow(IntegrityError);
    expect(() => getParamSet({ id: 'toString' })).toThrow(IntegrityError);
    expect(Object.keys(PARAM_SETS)).toEqual([PARAM_SET_ID]);
  });
});

describe('packingLayout', () => {
  it('computes w and k', () => {
    expect(packingLayout({ fieldBits: 8, maxContributors: 1024, encoding: 'offset' })).toEqual({
      fieldBits: 8,
      maxContributors: 1024,
      sumBits: 18,
      fieldsPerSlot: 1,
      encoding: 'offset',
    });
    expect(packingLayout({ fieldBits: 7, maxContributors: 1024, encoding: 'offset' }).fieldsPerSlot).toBe(2);
    expect(packingLayout({ fieldBits: 6, maxContributors: 100, encoding: 'modular' })).toMatchObject({ sumBits: 13, fieldsPerSlot: 2 });
    expect(packingLayout({ fieldBits: 2, maxContributors: 2, encoding: 'offset' })).toMatchObject({ sumBits: 3, fieldsPerSlot: 11 });
    expect(packingLayout({ fieldBits: 24, maxContributors: 1024, encoding: 'offset' })).toMatchObject({ sumBits: 34, fieldsPerSlot: 1 });
  });

  it('refuses layouts that do not fit, naming the value', () => {
    expect(() => packingLayout({ fieldBits: 25, maxContributors: 1024, encoding: 'offset' })).toThrow(/"fieldBits".*got 25/);
    expect(() => packingLayout({ fieldBits: 1, maxContributors: 16, encoding: 'offset' })).toThrow(RangeError);
    expect(() => packingLayout({ fieldBits: 33, maxContributors: 2, encoding: 'offset' })).toThrow(/"fieldBits"/);
    expect(() => packingLayout({ fieldBits: 8, maxContributors: 1025, encoding: 'offset' })).toThrow(/"maxContributors".*1025/);
    expect(() => packingLayout({ fieldBits: 8, maxContributors: 1, encoding: 'offset' })).toThrow(RangeError);
    expect(() => packingLayout({ fieldBits: 8, maxContributors: 4, encoding: 'other' as 'offset' })).toThrow(TypeError);
  });

  it('counts ciphertexts', () => {
    const one = packingLayout({ fieldBits: 8, maxContributors: 1024, encoding: 'offset' });
    const two = packingLayout({ fieldBits: 7, maxContributors: 1024, encoding: 'offset' });
    expect(ciphertextCount({ valueCount: 0, layout: one })).toBe(0);
    expect(ciphertextCount({ valueCount: 1, layout: one })).toBe(1);
    expect(ciphertextCount({ valueCount: 4096, layout: one })).toBe(1);
    expect(ciphertextCount({ valueCount: 4097, layout: one })).toBe(2);
    expect(ciphertextCount({ valueCount: 8192, layout: two })).toBe(1);
    expect(ciphertextCount({ valueCount: 1_000_000, layout: two })).toBe(123);
  });
});

it('refuses to build a SEAL context for an unknown set', async () => {
  await expect(loadSealContext({ paramSetId: 'nope' })).rejects.toThrow(IntegrityError);
});
