// 503 answers the client should retry: backpressure (`overloaded`), an open blob store circuit breaker
// (`blob_store_unavailable`), a server that is shutting down (`shutting_down`). The error handler
// (server/http/errors.ts) sends them with their code and a Retry-After header from `retryAfterSeconds`.
import { TensorGuardError } from '../../core/errors.ts';

export type UnavailableCode = 'overloaded' | 'blob_store_unavailable' | 'shutting_down';

export class ServiceUnavailableError extends TensorGuardError {
  readonly retryAfterSeconds: number;
  constructor(options: { code: UnavailableCode; message: string; retryAfterSeconds: number; details?: Record<string, unknown>; cause?: unknown }) {
    const retryAfterSeconds = Math.max(1, Math.ceil(options.retryAfterSeconds));
    super({ message: options.message, code: options.code, status: 503, details: { ...options.details, retryAfterSeconds }, cause: options.cause });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
