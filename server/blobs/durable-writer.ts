// Durable blob writes on worker threads for the filesystem blob store (server/blobs/fs-store.ts).
//
// A durable put is about eight filesystem calls (open, write, fsync, close, rename, open + fsync + close
// of the directory). Made asynchronously from the server's thread, each is a trip through libuv's
// thread pool and back through the event loop, so on a busy server a put waits for many event-loop
// turns, and a group commit that writes dozens of packages at once queues hundreds of such trips. Here
// each blob goes to a small pool of worker threads (shared by every store in the process, started on
// first use, unref'd while idle) that run the whole sequence with synchronous calls; the put resolves
// when the worker reports it done — after the fsyncs, so an acknowledged put is as durable as before.
// The bytes are copied to the worker (the caller keeps its array). A failure comes back as an Error
// with the same `code` (ENOENT, EEXIST, ...), so the store's retry logic is unchanged.
import { Worker } from 'node:worker_threads';

const WORKER_URL = new URL('./durable-write-worker.mjs', import.meta.url);
/**
 * Writer threads. They mostly wait in fsync, and concurrent fsyncs share the filesystem's journal
 * commits, so a batch's writes should overlap widely: more threads than cores.
 */
const THREADS = 8;

interface Job {
  id: number;
  tmp: string;
  target: string;
  dir: string;
  /** The store's root, fsynced too when `dir` was just created; null otherwise. */
  root: string | null;
  bytes: Uint8Array;
}

interface Slot {
  worker: Worker;
  inFlight: number;
}

const slots: Array<Slot | null> = Array.from({ length: THREADS }, () => null);
const pending = new Map<number, { slot: Slot; resolve: () => void; reject: (error: Error) => void }>();
let nextId = 1;

function start(index: number): Slot {
  const worker = new Worker(WORKER_URL);
  worker.unref();
  const slot: Slot = { worker, inFlight: 0 };
  const fail = (error: Error) => {
    if (slots[index] === slot) slots[index] = null;
    for (const [id, job] of pending)
      if (job.slot === slot) {
        pending.delete(id);
        job.reject(error);
      }
  };
  worker.on('message', (answer: { id: number; ok: boolean; error?: { message: string; code?: string } }) => {
    const job = pending.get(answer.id);
    if (!job) return;
    pending.delete(answer.id);
    if (--slot.inFlight === 0) worker.unref();
    if (answer.ok) job.resolve();
    else job.reject(Object.assign(new Error(answer.error!.message), { code: answer.error!.code }));
  });
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`blob writer thread exited with code ${code}`)));
  slots[index] = slot;
  return slot;
}

/** Ends the idle writer threads (a server's shutdown; see endIdleVerifyWorkers); a later write starts new ones. */
export async function endIdleWriters(): Promise<void> {
  const idle: Worker[] = [];
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i];
    if (slot && slot.inFlight === 0) {
      slots[i] = null;
      idle.push(slot.worker);
    }
  }
  await Promise.all(idle.map((w) => w.terminate()));
}

/** Writes `bytes` to `tmp`, fsyncs, renames it to `target`, fsyncs `dir` (and `root` if given), on a writer thread. */
export function writeDurablyOffThread(options: { tmp: string; target: string; dir: string; root: string | null; bytes: Uint8Array }): Promise<void> {
  let slot: Slot | null = null;
  for (let i = 0; i < slots.length; i++) {
    const candidate = slots[i] ?? start(i);
    if (slot === null || candidate.inFlight < slot.inFlight) slot = candidate;
  }
  const id = nextId++;
  return new Promise<void>((resolve, reject) => {
    pending.set(id, { slot: slot!, resolve, reject });
    slot!.inFlight++;
    slot!.worker.ref(); // a write in flight keeps the process alive until it is answered
    // A view into a larger buffer is sliced first so only its own bytes are copied (and then moved).
    const owned = options.bytes.byteOffset === 0 && options.bytes.byteLength === options.bytes.buffer.byteLength;
    const bytes = owned ? options.bytes : options.bytes.slice();
    slot!.worker.postMessage({ id, ...options, bytes } satisfies Job, owned ? [] : [bytes.buffer as ArrayBuffer]);
  });
}
