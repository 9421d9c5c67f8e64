// One aggregation worker: sums the blocks of a job (a share of the contributions, every ciphertext)
// into a partial sum. The blocks arrive transferred (their ArrayBuffers move, no copy) and the partial
// sum goes back transferred. Validation is the core's (core/he/aggregate.ts): headers and
// coefficients < q.
//
// (Splitting by ciphertext ranges was tried first: it needs each worker's range of every block gathered
// into one buffer — or read from a SharedArrayBuffer, which V8 copies into WASM memory element by
// element — and that copy cost more than the adds it parallelized.)
import { parentPort } from 'node:worker_threads';
import { CiphertextAccumulator } from '../../core/he/aggregate.ts';
import { getParamSet } from '../../core/he/params.ts';

export interface SumJob {
  id: number;
  blocks: Uint8Array[];
  ciphertextCount: number;
  parmsId: Uint8Array;
  paramSetId: string;
}

parentPort!.on('message', (job: SumJob) => {
  try {
    const paramSet = getParamSet({ id: job.paramSetId });
    const accumulator = new CiphertextAccumulator({ parmsId: job.parmsId, ciphertextCount: job.ciphertextCount, paramSet });
    for (const block of job.blocks) accumulator.add({ block });
    const result = accumulator.bytes();
    parentPort!.postMessage({ id: job.id, ok: true, result }, [result.buffer as ArrayBuffer]);
  } catch (error) {
    const e = error as Error & { code?: string };
    parentPort!.postMessage({ id: job.id, ok: false, error: { name: e.name, message: e.message, code: e.code } });
  }
});
