// Update-package verification off the request thread: a small pool of worker threads, shared by every
// app in the process, each running the core's openUpdatePackage (parse, ML-DSA-44 verification of the
// package fingerprint, SHA-256 of the ciphertexts against the signed digest — both pure JavaScript,
// milliseconds per package, tens of milliseconds for a 16 MB one).
//
// Data flow: the route hands over the upload's bytes, which are transferred to a worker (moved, not
// copied) and transferred back with the verdict; the caller gets a Uint8Array over the same memory and
// the opened package whose `ciphertexts` is a view into it. The event loop that serves requests, reads
// the database and commits only waits for the answer, and on a multi-core machine the verification of
// concurrent uploads runs in parallel. Refusals come back as the same error classes
// (core/errors.ts) with their message and details, so the HTTP answers do not change. The workers start
// on first use and are unref'd (an idle pool keeps no process alive); a worker that dies fails its jobs
// and is replaced on the next one.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import * as errors from '../../core/errors.ts';
import type { openUpdatePackage } from '../../core/records/update-package.ts';
import type { VerifyAnswer, VerifyJob } from './verify-worker-main.ts';

const WORKER_URL = new URL('./verify-worker.mjs', import.meta.url);

export type OpenedPackage = ReturnType<typeof openUpdatePackage>;

interface Slot {
  worker: Worker;
  inFlight: number;
}

interface Pending {
  slot: Slot;
  resolve: (answer: VerifyAnswer) => void;
  reject: (error: Error) => void;
}

/** Error classes a worker's refusal may name; anything else becomes a plain Error (a 500). */
const ERROR_CLASSES: Record<string, new (message: string, details?: Record<string, unknown>) => Error> = Object.fromEntries(
  Object.entries(errors).filter(([, value]) => typeof value === 'function' && value.prototype instanceof errors.TensorGuardError),
) as never;

function rebuildError(error: { name: string; message: string; details?: Record<string, unknown> }): Error {
  if (error.name === 'TypeError') return new TypeError(error.message);
  if (error.name === 'RangeError') return new RangeError(error.message);
  const Class = ERROR_CLASSES[error.name];
  return Class ? new Class(error.message, error.details) : new Error(`update package verification failed in a worker: ${error.name}: ${error.message}`);
}

class VerifyPool {
  readonly #slots: Array<Slot | null>;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(threads: number) {
    this.#slots = Array.from({ length: threads }, () => null);
  }

  #start(index: number): Slot {
    const worker = new Worker(WORKER_URL);
    worker.unref();
    const slot: Slot = { worker, inFlight: 0 };
    const fail = (error: Error) => {
      if (this.#slots[index] === slot) this.#slots[index] = null;
      for (const [id, pending] of this.#pending)
        if (pending.slot === slot) {
          this.#pending.delete(id);
          pending.reject(error);
        }
    };
    worker.on('message', (answer: VerifyAnswer) => {
      const pending = this.#pending.get(answer.id);
      if (!pending) return;
      this.#pending.delete(answer.id);
      slot.inFlight--;
      if (slot.inFlight === 0) worker.unref();
      pending.resolve(answer);
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`update package verification worker exited with code ${code}`)));
    this.#slots[index] = slot;
    return slot;
  }

  /** The least busy worker (started if it is not running). */
  #pick(): Slot {
    let best: Slot | null = null;
    for (let i = 0; i < this.#slots.length; i++) {
      const slot = this.#slots[i] ?? this.#start(i);
      if (best === null || slot.inFlight < best.inFlight) best = slot;
    }
    return best!;
  }

  async endIdle(): Promise<void> {
    const idle: Worker[] = [];
    for (let i = 0; i < this.#slots.length; i++) {
      const slot = this.#slots[i];
      if (slot && slot.inFlight === 0) {
        this.#slots[i] = null;
        idle.push(slot.worker);
      }
    }
    await Promise.all(idle.map((w) => w.terminate()));
  }

  run(job: Omit<VerifyJob, 'id'>): Promise<VerifyAnswer> {
    const slot = this.#pick();
    const id = this.#nextId++;
    return new Promise<VerifyAnswer>((resolve, reject) => {
      this.#pending.set(id, { slot, resolve, reject });
      slot.inFlight++;
      // A job in flight keeps the process alive until it is answered.
      slot.worker.ref();
      slot.worker.postMessage({ id, ...job } satisfies VerifyJob, [job.bytes.buffer as ArrayBuffer]);
    });
  }
}

let pool: VerifyPool | null = null;

/**
 * Ends the pool's idle threads (a server's shutdown): an unref'd worker thread that loaded TypeScript
 * through tsx can still hold the process open on Node 20, so a stopped server ends them explicitly. Busy
 * threads (another server instance in this process) are left alone; a later job starts new ones.
 */
export async function endIdleVerifyWorkers(): Promise<void> {
  await pool?.endIdle();
}

/**
 * Opens and verifies an update package on a worker thread (core openUpdatePackage). `bytes` is moved to
 * the worker and back: after the call only the returned `bytes` may be used (the argument is
 * detached, unless it did not own its whole buffer, in which case a copy was sent). A refused package
 * comes back as `error` (the core's error class) next to its bytes.
 */
export async function openUpdatePackageInWorker(options: {
  bytes: Uint8Array;
  robotPublicKey: Uint8Array;
}): Promise<{ bytes: Uint8Array; opened: OpenedPackage; error?: undefined } | { bytes: Uint8Array; opened?: undefined; error: Error }> {
  pool ??= new VerifyPool(Math.max(1, Math.min(4, availableParallelism())));
  const owned = options.bytes.byteOffset === 0 && options.bytes.byteLength === options.bytes.buffer.byteLength && options.bytes.buffer instanceof ArrayBuffer;
  const answer = await pool.run({ bytes: owned ? options.bytes : options.bytes.slice(), robotPublicKey: options.robotPublicKey });
  if (!answer.ok) return { bytes: answer.bytes, error: rebuildError(answer.error) };
  return {
    bytes: answer.bytes,
    opened: {
      package: answer.meta,
      // The ciphertexts are the package's last field (the parser refuses trailing bytes).
      ciphertexts: answer.ciphertexts ?? answer.bytes.subarray(answer.ciphertextOffset!),
      fingerprint: answer.fingerprint,
      signature: answer.signature,
    },
  };
}
