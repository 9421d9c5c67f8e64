// Tests the node-seal wrapper: keygen, slot encryption round trips, key and ciphertext refusal, noise budget.
import { beforeAll, describe, expect, it } from 'vitest';
import { CiphertextError, IntegrityError } from '../errors.ts';
import { randomBytes } from '../random.ts';
import { PARAM_SET_ID, getParamSet } from './params.ts';
import { createDecryptor, createEncryptor, generateKeyPair, loadSealContext, parmsIdFor, type HeKeyPair } from './seal.ts';

const set = getParamSet({ id: PARAM_SET_ID });
let keys: HeKeyPair;

beforeAll(async () => {
  keys = await generateKeyPair({ paramSetId: PARAM_SET_ID });
});

function randomSlots(count: number): BigUint64Array {
  const words = new Uint32Array(randomBytes(count * 8).buffer);
  const slots = new BigUint64Array(count);
  for (let i = 0; i < count; i++) slots[i] = (BigInt(words[2 * i]! & 0x3) << 32n) | BigInt(words[2 * i + 1]!); // < 2^34 < t
  return slots;
}

/** A public key from a SEAL context with other parameters (same N, another plain modulus). */
async function foreignPublicKey(options: { plainBits: number; n: number }): Promise<Uint8Array> {
  const { seal } = await loadSealContext({ paramSetId: PARAM_SET_ID });
  const parms = seal.EncryptionParameters(seal.SchemeType.bfv);
  parms.setPolyModulusDegree(options.n);
  parms.setCoeffModulus(seal.CoeffModulus.Create(options.n, Int32Array.from([60])));
  parms.setPlainModulus(seal.PlainModulus.Batching(options.n, options.plainBits));
  const context = seal.Context(parms, true, seal.SecurityLevel.tc128);
  const keygen = seal.KeyGenerator(context);
  const pk = keygen.createPublicKey();
  const bytes = pk.saveArray(seal.ComprModeType.none);
  pk.delete();
  keygen.delete();
  context.delete();
  parms.delete();
  return bytes;
}

describe('keys', () => {
  it('generates keys whose parms id is the one in every ciphertext header', async () => {
    expect(keys.paramSetId).toBe(PARAM_SET_ID);
    expect(keys.parmsId.length).toBe(32);
    expect(keys.publicKey.length).toBe(set.ciphertextBytes); // a public key is a 2-poly ciphertext
    expect(await parmsIdFor({ paramSetId: PARAM_SET_ID })).toEqual(keys.parmsId);
    const enc = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    const ct = enc.encryptSlots({ slots: new BigUint64Array([1n]) });
    enc.destroy();
    expect(ct.subarray(16, 48)).toEqual(keys.parmsId);
    expect(enc.parmsId).toEqual(keys.parmsId);
  });

  it('generates distinct keys each time', async () => {
    const other = await generateKeyPair({});
    expect(other.publicKey).not.toEqual(keys.publicKey);
    expect(other.parmsId).toEqual(keys.parmsId);
  });

  it('refuses a public key for another parameter set, a secret key, or garbage with IntegrityError', async () => {
    const otherT = await foreignPublicKey({ plainBits: 20, n: 4096 });
    await expect(createEncryptor({ publicKey: otherT, paramSetId: PARAM_SET_ID })).rejects.toThrow(IntegrityError);
    const otherN = await foreignPublicKey({ plainBits: 35, n: 8192 });
    await expect(createEncryptor({ publicKey: otherN, paramSetId: PARAM_SET_ID })).rejects.toThrow(IntegrityError);
    await expect(createEncryptor({ publicKey: keys.secretKey, paramSetId: PARAM_SET_ID })).rejects.toThrow(IntegrityError);
    await expect(createEncryptor({ publicKey: keys.publicKey.subarray(0, 1000), paramSetId: PARAM_SET_ID })).rejects.toThrow(
      IntegrityError,
    );
    await expect(createEncryptor({ publicKey: randomBytes(set.ciphertextBytes), paramSetId: PARAM_SET_ID })).rejects.toThrow(
      IntegrityError,
    );
    await expect(createEncryptor({ publicKey: keys.publicKey, paramSetId: 'tg-bfv-unknown' })).rejects.toThrow(IntegrityError);
    await expect(createDecryptor({ secretKey: randomBytes(100), paramSetId: PARAM_SET_ID })).rejects.toThrow(IntegrityError);
  });
});

describe('encrypt / decrypt', () => {
  it('round-trips several ciphertexts with a padded tail', async () => {
    const enc = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    const dec = await createDecryptor({ secretKey: keys.secretKey, paramSetId: PARAM_SET_ID });
    const slots = randomSlots(2 * 4096 + 100);
    slots[0] = set.plainModulus - 1n; // the largest plaintext value
    const cts = enc.encryptSlots({ slots });
    expect(cts.length).toBe(3 * set.ciphertextBytes);
    const progress: Array<[number, number]> = [];
    const out = dec.decryptSlots({ ciphertexts: cts, onProgress: (done, total) => progress.push([done, total]) });
    expect(out.length).toBe(3 * 4096);
    expect(out.subarray(0, slots.length)).toEqual(slots);
    expect(out.subarray(slots.length).every((v) => v === 0n)).toBe(true);
    expect(progress).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    const budgets = dec.noiseBudgets({ ciphertexts: cts });
    // Fresh budget measured at 13-14 bits (60 - 35 - ~11); the 1,024-contributor claim needs > 10.
    for (const b of budgets) expect(b).toBeGreaterThanOrEqual(11);
    enc.destroy();
    dec.destroy();
    expect(() => enc.encryptSlots({ slots })).toThrow(TypeError);
    expect(() => dec.decryptSlots({ ciphertexts: cts })).toThrow(TypeError);
  });

  it('refuses slots >= t and empty input', async () => {
    const enc = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    expect(() => enc.encryptSlots({ slots: new BigUint64Array([set.plainModulus]) })).toThrow(/"slots\[0\]"/);
    expect(() => enc.encryptSlots({ slots: new BigUint64Array([0n, 2n ** 64n - 1n]) })).toThrow(/"slots\[1\]"/);
    expect(() => enc.encryptSlots({ slots: new BigUint64Array(0) })).toThrow(RangeError);
    expect(() => enc.encryptSlots({ slots: new Uint32Array(4) as unknown as BigUint64Array })).toThrow(TypeError);
    enc.destroy();
  });

  it('refuses malformed ciphertext blocks with CiphertextError', async () => {
    const enc = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
    const dec = await createDecryptor({ secretKey: keys.secretKey, paramSetId: PARAM_SET_ID });
    const ct = enc.encryptSlots({ slots: randomSlots(10) });
    expect(() => dec.decryptSlots({ ciphertexts: ct.subarray(0, ct.length - 8) })).toThrow(CiphertextError);
    expect(() => dec.decryptSlots({ ciphertexts: new Uint8Array(0) })).toThrow(CiphertextError);
    const bad = ct.slice();
    new DataView(bad.buffer).setBigUint64(set.headerBytes + 8 * 17, set.coeffModulus, true); // coefficient = q
    expect(() => dec.decryptSlots({ ciphertexts: bad })).toThrow(/ciphertext 0 of 1/);
    const otherKey = await generateKeyPair({});
    const wrong = await createDecryptor({ secretKey: otherKey.secretKey, paramSetId: PARAM_SET_ID });
    expect(wrong.decryptSlots({ ciphertexts: ct }).subarray(0, 10)).not.toEqual(dec.decryptSlots({ ciphertexts: ct }).subarray(0, 10));
    wrong.destroy();
    enc.destroy();
    dec.destroy();
  });
});
