// Aggregation across worker threads (server/aggregation/parallel-sum.ts, blocks moved to the workers)
// against the single-threaded
// chain of sumCiphertextBlocks and the CiphertextAccumulator, over the same blocks in the same run.
//
//   npx tsx bench/parallel-aggregate.ts [--contributors=100] [--ciphertexts=123] [--threads=2]
// prints one JSON object: GB/s of ciphertext consumed by each path and the speedups. 123 ciphertexts
// is one robot's 1 M-parameter package (8 MB); the default sums 100 of them (a 100-robot round re-added).
import { availableParallelism } from 'node:os';
import { CiphertextAccumulator, sumCiphertextBlocks } from '../core/he/aggregate.ts';
import { PARAM_SET_ID } from '../core/he/params.ts';
import { randomBytes } from '../core/random.ts';
import { AggregationPool } from '../server/aggregation/parallel-sum.ts';
import { randomCiphertextBlock } from '../server/aggregation/test-blocks.ts';

function arg(name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.slice(name.length + 3)) : fallback;
}
const contributors = arg('contributors', 100);
const ciphertexts = arg('ciphertexts', 123);
const threads = arg('threads', availableParallelism());
const parmsId = randomBytes(32);
// 20 distinct blocks cycled: 160 MB for 123 ciphertexts, more than the caches.
const pool = Array.from({ length: Math.min(contributors, 20) }, () => randomCiphertextBlock({ ciphertexts, parmsId }));
const blocks = Array.from({ length: contributors }, (_, i) => pool[i % pool.length]!);
const bytes = blocks.length * blocks[0]!.length;

const workers = new AggregationPool({ threads });
await workers.sum({ blocks: blocks.slice(0, 2), parmsId }); // warm up the workers' WASM
const best: Record<string, number> = {};
let identical = true;
for (let round = 0; round < 3; round++) {
  let t = performance.now();
  let chain: Uint8Array | null = null;
  for (const block of blocks) chain = sumCiphertextBlocks({ accumulator: chain, addend: block, parmsId });
  best.sumBlocks = Math.min(best.sumBlocks ?? Infinity, performance.now() - t);

  t = performance.now();
  const accumulator = new CiphertextAccumulator({ parmsId, ciphertextCount: ciphertexts });
  for (const block of blocks) accumulator.add({ block });
  const accumulated = accumulator.bytes();
  best.accumulator = Math.min(best.accumulator ?? Infinity, performance.now() - t);

  // Fresh blocks each round, as packages read from the blob store are: the pool moves them to the workers.
  const fresh = blocks.map((b) => b.slice());
  t = performance.now();
  const parallel = await workers.sum({ blocks: fresh, parmsId, paramSetId: PARAM_SET_ID, consume: true });
  best.parallel = Math.min(best.parallel ?? Infinity, performance.now() - t);
  identical &&= Buffer.compare(Buffer.from(parallel), Buffer.from(chain!)) === 0 && Buffer.compare(Buffer.from(accumulated), Buffer.from(chain!)) === 0;
}
await workers.destroy();
const gbps = (ms: number) => Number((bytes / 1e9 / (ms / 1000)).toFixed(2));
console.log(
  JSON.stringify(
    {
      bench: 'parallel-aggregate',
      contributors,
      ciphertexts,
      bytesPerContributor: blocks[0]!.length,
      threads,
      sumBlocksGBps: gbps(best.sumBlocks!),
      accumulatorGBps: gbps(best.accumulator!),
      parallelGBps: gbps(best.parallel!),
      parallelVsAccumulator: Number((best.accumulator! / best.parallel!).toFixed(2)),
      parallelVsSumBlocks: Number((best.sumBlocks! / best.parallel!).toFixed(2)),
      identical,
      ms: best,
    },
    null,
    2,
  ),
);
