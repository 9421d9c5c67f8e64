// One update-package verification worker: opens a package with the core's openUpdatePackage (parse,
// ML-DSA-44 signature over the package fingerprint, SHA-256 of the ciphertexts against the signed
// one) and hands the bytes back. The bytes arrive transferred and go back transferred (moved, never
// copied); the answer says where the ciphertexts sit inside them. Errors travel as name/message/details
// and are rebuilt into the same classes by the pool.
import { parentPort } from 'node:worker_threads';
import { openUpdatePackage } from '../../core/records/update-package.ts';
import { TensorGuardError } from '../../core/errors.ts';

export interface VerifyJob {
  id: number;
  bytes: Uint8Array;
  robotPublicKey: Uint8Array;
}

export type VerifyAnswer =
  | {
      id: number;
      ok: true;
      bytes: Uint8Array;
      meta: ReturnType<typeof openUpdatePackage>['package'];
      /** Where the ciphertexts sit in `bytes`, or null when the parser copied them (then in `ciphertexts`). */
      ciphertextOffset: number | null;
      ciphertexts: Uint8Array | null;
      fingerprint: Uint8Array;
      signature: Uint8Array;
    }
  | { id: number; ok: false; bytes: Uint8Array; error: { name: string; message: string; details?: Record<string, unknown> } };

parentPort!.on('message', (job: VerifyJob) => {
  const transfer = [job.bytes.buffer as ArrayBuffer];
  try {
    const opened = openUpdatePackage({ bytes: job.bytes, robotPublicKey: job.robotPublicKey });
    const shared = opened.ciphertexts.buffer === job.bytes.buffer;
    if (!shared) transfer.push(opened.ciphertexts.buffer as ArrayBuffer);
    const answer: VerifyAnswer = {
      id: job.id,
      ok: true,
      bytes: job.bytes,
      meta: opened.package,
      ciphertextOffset: shared ? opened.ciphertexts.byteOffset - job.bytes.byteOffset : null,
      ciphertexts: shared ? null : opened.ciphertexts,
      fingerprint: opened.fingerprint,
      signature: opened.signature,
    };
    parentPort!.postMessage(answer, transfer);
  } catch (error) {
    const e = error as Error;
    const details = error instanceof TensorGuardError ? error.details : undefined;
    parentPort!.postMessage({ id: job.id, ok: false, bytes: job.bytes, error: { name: e.name, message: e.message, details } } satisfies VerifyAnswer, transfer);
  }
});
