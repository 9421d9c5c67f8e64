// The worker-thread aggregation equals the single-threaded chain byte for byte and refuses what it refuses.
import { afterAll, describe, expect, it } from 'vitest';
import { sumCiphertextBlocks } from '../../core/he/aggregate.ts';
import { CiphertextError } from '../../core/errors.ts';
import { randomBytes } from '../../core/random.ts';
import { AggregationPool } from './parallel-sum.ts';
import { randomCiphertextBlock } from './test-blocks.ts';

describe('AggregationPool', () => {
  const pool = new AggregationPool({ threads: 3 });
  afterAll(() => pool.destroy());
  const parmsId = randomBytes(32);

  it('sums blocks split over workers, identical to sumCiphertextBlocks', async () => {
    for (const ciphertexts of [1, 2, 7]) {
      const blocks = Array.from({ length: 9 }, () => randomCiphertextBlock({ ciphertexts, parmsId }));
      let expected: Uint8Array | null = null;
      for (const block of blocks) expected = sumCiphertextBlocks({ accumulator: expected, addend: block, parmsId });
      const got = await pool.sum({ blocks, parmsId });
      expect(Buffer.compare(Buffer.from(got), Buffer.from(expected!))).toBe(0);
    }
  }, 60_000);

  it('refuses a block with a coefficient >= q, a wrong header or a wrong length', async () => {
    const blocks = Array.from({ length: 3 }, () => randomCiphertextBlock({ ciphertexts: 4, parmsId }));
    const bad = blocks.map((b) => b.slice());
    bad[1]!.fill(0xff, bad[1]!.length - 16); // last coefficients of the last ciphertext: 2^64 - 1
    await expect(pool.sum({ blocks: bad, parmsId })).rejects.toThrow(CiphertextError);
    await expect(pool.sum({ blocks, parmsId: randomBytes(32) })).rejects.toThrow(CiphertextError);
    await expect(pool.sum({ blocks: [blocks[0]!, blocks[1]!.subarray(1)], parmsId })).rejects.toThrow(CiphertextError);
    // The pool still works after refusals.
    expect((await pool.sum({ blocks, parmsId })).length).toBe(blocks[0]!.length);
  }, 60_000);
});
