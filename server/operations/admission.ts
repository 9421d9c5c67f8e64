// Admission control for uploads: a bound on request-body bytes held in memory and on contributions
// queued for aggregation, and the drain flag of a graceful shutdown. Beyond a bound the caller gets
// 503 `overloaded` with Retry-After instead of an ever-growing queue (memory stays bounded).
//
// Upload bytes are reserved from Content-Length before the body is read (a body without one reserves
// the route's whole limit) and released when the response is ready; a reservation larger than what is
// left is refused, except that one upload is always admitted when nothing else is in flight (so a limit
// below one body still lets uploads through, one at a time).
import { ServiceUnavailableError } from './unavailable.ts';
import type { OperationalLimits } from './limits.ts';

export interface AdmissionSnapshot {
  uploadBytesInFlight: number;
  uploadsInFlight: number;
  pendingAggregations: number;
  draining: boolean;
}

export class Admission {
  readonly limits: OperationalLimits;
  #uploadBytes = 0;
  #uploads = 0;
  #pending = 0;
  #draining = false;
  /** Called on every refusal with the resource that was exhausted (metrics). */
  onRefusal: (resource: 'upload_bytes' | 'aggregation_queue' | 'shutting_down') => void = () => {};

  constructor(options: { limits: OperationalLimits }) {
    this.limits = options.limits;
  }

  snapshot(): AdmissionSnapshot {
    return { uploadBytesInFlight: this.#uploadBytes, uploadsInFlight: this.#uploads, pendingAggregations: this.#pending, draining: this.#draining };
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** From now on every admission is refused with 503 `shutting_down` (graceful shutdown). */
  startDraining(): void {
    this.#draining = true;
  }

  #refuse(resource: 'upload_bytes' | 'aggregation_queue', message: string): never {
    this.onRefusal(resource);
    throw new ServiceUnavailableError({ code: 'overloaded', message, retryAfterSeconds: this.limits.retryAfterSeconds, details: { resource } });
  }

  refuseIfDraining(): void {
    if (!this.#draining) return;
    this.onRefusal('shutting_down');
    throw new ServiceUnavailableError({ code: 'shutting_down', message: 'the server is shutting down; retry against another instance or after it restarts', retryAfterSeconds: this.limits.retryAfterSeconds });
  }

  /** Reserves `bytes` of upload memory; returns the release function (idempotent). */
  reserveUpload(bytes: number): () => void {
    this.refuseIfDraining();
    if (this.#pending >= this.limits.maxPendingAggregations)
      this.#refuse('aggregation_queue', `${this.#pending} contributions are already waiting for aggregation; retry later`);
    if (this.#uploads > 0 && this.#uploadBytes + bytes > this.limits.maxInflightUploadBytes)
      this.#refuse('upload_bytes', `the server is receiving ${this.#uploadBytes} bytes of uploads (limit ${this.limits.maxInflightUploadBytes}); retry later`);
    this.#uploadBytes += bytes;
    this.#uploads += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#uploadBytes -= bytes;
      this.#uploads -= 1;
    };
  }

  /** Takes one aggregation slot; returns the release function (idempotent). */
  reserveAggregation(): () => void {
    if (this.#pending >= this.limits.maxPendingAggregations)
      this.#refuse('aggregation_queue', `${this.#pending} contributions are already waiting for aggregation; retry later`);
    this.#pending += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#pending -= 1;
    };
  }
}
