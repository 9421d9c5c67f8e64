// Tests the max-contributors claim: 1,024 ciphertexts of worst-case packed values sum and decrypt exactly.
import { expect, it } from 'vitest';
import { CiphertextAccumulator } from './aggregate.ts';
import { ciphertextCount, getParamSet, packingLayout, PARAM_SET_ID } from './params.ts';
import { packFields, unpackFieldSums } from './packing.ts';
import { createDecryptor, createEncryptor, generateKeyPair } from './seal.ts';

it('sums 1,024 worst-case contributions and decrypts exactly with noise budget to spare', async () => {
  const set = getParamSet({ id: PARAM_SET_ID });
  const contributors = set.maxContributors;
  // b = 7 packs k = 2 fields of w = 17 bits: all 34 slot bits in use. Every field at its maximum,
  // so the field sums reach 1024 * 127 < 2^17, the largest the layout admits.
  const layout = packingLayout({ fieldBits: 7, maxContributors: contributors, encoding: 'offset' });
  const valueCount = set.slotCount * layout.fieldsPerSlot;
  expect(ciphertextCount({ valueCount, layout })).toBe(1);
  const slots = packFields({ fields: new Uint32Array(valueCount).fill(127), layout });

  const keys = await generateKeyPair({});
  const encryptor = await createEncryptor({ publicKey: keys.publicKey, paramSetId: PARAM_SET_ID });
  const decryptor = await createDecryptor({ secretKey: keys.secretKey, paramSetId: PARAM_SET_ID });
  const aggregate = new CiphertextAccumulator({ parmsId: keys.parmsId, ciphertextCount: 1 });
  let freshBudget = Infinity;
  for (let i = 0; i < contributors; i++) {
    const block = encryptor.encryptSlots({ slots }); // fresh randomness per contribution
    if (i === 0) freshBudget = decryptor.noiseBudgets({ ciphertexts: block })[0]!;
    aggregate.add({ block });
  }
  expect(aggregate.count).toBe(contributors);
  const sum = aggregate.bytes();
  const [budget] = decryptor.noiseBudgets({ ciphertexts: sum });
  // Linear worst case: 1,024 additions cost at most 10 bits of the fresh budget.
  expect(freshBudget).toBeGreaterThanOrEqual(11);
  expect(budget).toBeGreaterThan(0);
  expect(budget).toBeGreaterThanOrEqual(freshBudget - 10);
  const fieldSums = unpackFieldSums({ slots: decryptor.decryptSlots({ ciphertexts: sum }), layout, valueCount });
  expect(fieldSums.every((s) => s === 127 * contributors)).toBe(true);
  console.info(`noise budget: fresh ${freshBudget} bits, after ${contributors} additions ${budget} bits`);
  encryptor.destroy();
  decryptor.destroy();
});
