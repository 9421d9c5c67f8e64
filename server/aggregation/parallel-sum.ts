// Aggregation across worker threads: the sum of many ciphertext blocks (a round's stored packages, the
// contributions of several rounds) split by ciphertext ranges over a pool of workers, each validating
// and adding its range of every block with the core's WASM SIMD kernel (core/he/aggregate.ts).
//
// Addition is associative and commutative, so the blocks are split between the workers, each worker
// sums its share into a partial sum, and the partial sums are added here (one add per worker). Blocks
// that own their whole ArrayBuffer are transferred to the worker (moved, not copied: the caller's
// Uint8Array is detached afterwards, which is why `sum` takes `consume: true` to allow it); others are
// copied. The result is byte-identical to the single-threaded sumCiphertextBlocks chain.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { CiphertextError } from '../../core/errors.ts';
import { getParamSet, PARAM_SET_ID } from '../../core/he/params.ts';
import { sumCiphertextBlocks } from '../../core/he/aggregate.ts';
import type { SumJob } from './sum-worker-main.ts';

const WORKER_URL = new URL('./sum-worker.mjs', import.meta.url);

interface Pending {
  resolve: (result: Uint8Array) => void;
  reject: (error: Error) => void;
}

export class AggregationPool {
  readonly threads: number;
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #ready: Promise<void>;

  constructor(options: { threads?: number } = {}) {
    const threads = options.threads ?? availableParallelism();
    if (!Number.isSafeInteger(threads) || threads < 1 || threads > 256) throw new RangeError(`"threads" expected an integer 1..256, got ${threads}`);
    this.threads = threads;
    const online: Promise<void>[] = [];
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(WORKER_URL);
      worker.unref();
      worker.on('message', (msg: { id: number; ok: boolean; result?: Uint8Array; error?: { name: string; message: string } }) => {
        const pending = this.#pending.get(msg.id);
        if (!pending) return;
        this.#pending.delete(msg.id);
        if (msg.ok) pending.resolve(msg.result!);
        else pending.reject(msg.error!.name === 'CiphertextError' ? new CiphertextError(msg.error!.message) : new Error(msg.error!.message));
      });
      worker.on('error', (error) => {
        for (const pending of this.#pending.values()) pending.reject(error);
        this.#pending.clear();
      });
      online.push(new Promise((resolve) => worker.once('online', () => resolve())));
      this.#workers.push(worker);
    }
    this.#ready = Promise.all(online).then(() => {});
  }

  #run(worker: Worker, job: Omit<SumJob, 'id'>, transfer: ArrayBuffer[]): Promise<Uint8Array> {
    const id = this.#nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ ...job, id }, transfer);
    });
  }

  /**
   * The sum of `blocks` (each the same number of ciphertexts of the round's parameter set), validated
   * like sumCiphertextBlocks. With `consume: true` blocks that own their whole buffer are transferred
   * to the workers (zero copy) and are unusable afterwards; otherwise each is copied once.
   */
  async sum(options: { blocks: Uint8Array[]; parmsId: Uint8Array; paramSetId?: string; consume?: boolean }): Promise<Uint8Array> {
    const { blocks } = options;
    if (!Array.isArray(blocks) || blocks.length === 0) throw new TypeError('"blocks" expected a non-empty array of Uint8Array');
    const paramSetId = options.paramSetId ?? PARAM_SET_ID;
    const paramSet = getParamSet({ id: paramSetId });
    const blockBytes = blocks[0]!.length;
    const size = paramSet.ciphertextBytes;
    if (blockBytes === 0 || blockBytes % size !== 0) throw new CiphertextError(`block 0 holds ${blockBytes} bytes, not a positive multiple of ${size}`);
    for (const [i, block] of blocks.entries())
      if (!(block instanceof Uint8Array) || block.length !== blockBytes) throw new CiphertextError(`block ${i} holds ${block?.length} bytes, block 0 ${blockBytes}`);
    const ciphertextCount = blockBytes / size;
    await this.#ready;
    const parts = Math.min(this.threads, blocks.length);
    const jobs: Array<Promise<Uint8Array>> = [];
    for (let p = 0; p < parts; p++) {
      const share = blocks.slice(Math.floor((p * blocks.length) / parts), Math.floor(((p + 1) * blocks.length) / parts));
      const moved = share.map((b) => (options.consume && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && !(b.buffer instanceof SharedArrayBuffer) ? b : b.slice()));
      const transfer = moved.map((b) => b.buffer as ArrayBuffer);
      jobs.push(this.#run(this.#workers[p]!, { blocks: moved, ciphertextCount, parmsId: options.parmsId, paramSetId }, transfer));
    }
    const partials = await Promise.all(jobs);
    let sum: Uint8Array = partials[0]!;
    for (const partial of partials.slice(1)) sum = sumCiphertextBlocks({ accumulator: sum, addend: partial, parmsId: options.parmsId, paramSet });
    return sum;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
    this.#workers.length = 0;
  }
}
