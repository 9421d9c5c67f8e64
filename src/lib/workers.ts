// The UI thread's handles to the two workers (STYLE.md principle 5): Comlink proxies typed by the
// workers' APIs. Secrets never cross this boundary; what comes back is public material, signed bytes,
// reports and key-store handles. Buffers sent to a worker are moved (workers/transfer.ts).
import * as Comlink from 'comlink';
import { registerTransferHandlers } from '../../workers/transfer.ts';
import type { HeWorkerApi } from '../../workers/he/api.ts';
import type { SigningWorkerApi } from '../../workers/signing/api.ts';
import type { EvalWorkerApi } from '../../workers/eval/api.ts';
import type { AuditWorkerApi } from '../../workers/audit/api.ts';

export { moving, WorkerError, type ProgressCallback } from '../../workers/transfer.ts';

let he: Comlink.Remote<HeWorkerApi> | null = null;
let signer: Comlink.Remote<SigningWorkerApi> | null = null;
let evaluator: Comlink.Remote<EvalWorkerApi> | null = null;
let auditor: Comlink.Remote<AuditWorkerApi> | null = null;

/** The audit worker: audit-log verification (public data only; keeps hashing off the UI thread). */
export function auditWorker(): Comlink.Remote<AuditWorkerApi> {
  if (!auditor) {
    registerTransferHandlers();
    const worker = new Worker(new URL('../../workers/audit/audit-worker.ts', import.meta.url), { type: 'module', name: 'tensorguard-audit' });
    auditor = Comlink.wrap<AuditWorkerApi>(worker);
  }
  return auditor;
}

/** The eval worker: the review's evaluation gate (onnxruntime-web, WASM) on the reference policy. */
export function evalWorker(): Comlink.Remote<EvalWorkerApi> {
  if (!evaluator) {
    registerTransferHandlers();
    const worker = new Worker(new URL('../../workers/eval/eval-worker.ts', import.meta.url), { type: 'module', name: 'tensorguard-eval' });
    evaluator = Comlink.wrap<EvalWorkerApi>(worker);
  }
  return evaluator;
}

export function heWorker(): Comlink.Remote<HeWorkerApi> {
  if (!he) {
    registerTransferHandlers();
    const worker = new Worker(new URL('../../workers/he/he-worker.ts', import.meta.url), { type: 'module', name: 'tensorguard-he' });
    he = Comlink.wrap<HeWorkerApi>(worker);
  }
  return he;
}

export function signingWorker(): Comlink.Remote<SigningWorkerApi> {
  if (!signer) {
    registerTransferHandlers();
    const worker = new Worker(new URL('../../workers/signing/signing-worker.ts', import.meta.url), { type: 'module', name: 'tensorguard-signing' });
    signer = Comlink.wrap<SigningWorkerApi>(worker);
  }
  return signer;
}

/** A progress callback the worker can call across the boundary (it answers nothing: a callback that
 *  returned rune state would hand Comlink an uncloneable proxy). */
export function progress(fn: (done: number, total: number, stage?: string) => unknown) {
  return Comlink.proxy((done: number, total: number, stage?: string): void => {
    fn(done, total, stage);
  });
}
