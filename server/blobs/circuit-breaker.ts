// A circuit breaker around a blob store: after `failureThreshold` consecutive storage failures every
// call fails fast with 503 `blob_store_unavailable` (Retry-After: the time left) instead of piling
// requests onto a store that is down; after `cooldownMs` one call goes through as a probe (half-open)
// while calls arriving meanwhile wait for its outcome: success closes the circuit (and lets them
// through), failure opens it for another cooldown (and refuses them).
//
// Only storage failures count (I/O errors, a store that throws something unexpected). A blob that is
// absent (get -> null), a corrupted blob (IntegrityError) or a bad name (TypeError) is an answer from a
// working store, and resets the failure count like any success.
import { TensorGuardError } from '../../core/errors.ts';
import { ServiceUnavailableError } from '../operations/unavailable.ts';
import type { BlobStore } from './fs-store.ts';

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BlobStoreBreaker {
  state(): BreakerState;
  /** Consecutive failures counted so far (0 once a call succeeds). */
  failures(): number;
}

function isStorageFailure(error: unknown): boolean {
  if (error instanceof TensorGuardError || error instanceof TypeError || error instanceof RangeError) return false;
  return true;
}

export function guardBlobStore(options: {
  store: BlobStore;
  failureThreshold: number;
  cooldownMs: number;
  /** Monotonic milliseconds (default performance.now). */
  now?: () => number;
  onStateChange?: (state: BreakerState) => void;
  /** Called each time a call is refused without reaching the store. */
  onRefuse?: () => void;
}): BlobStore & { breaker: BlobStoreBreaker } {
  const { store, failureThreshold, cooldownMs } = options;
  if (!Number.isSafeInteger(failureThreshold) || failureThreshold < 1) throw new RangeError(`"failureThreshold" expected a positive integer, got ${failureThreshold}`);
  if (!(cooldownMs > 0)) throw new RangeError(`"cooldownMs" expected a positive number, got ${cooldownMs}`);
  const now = options.now ?? (() => performance.now());
  let state: BreakerState = 'closed';
  let failures = 0;
  let openedAt = 0;
  let probing = false;

  const setState = (next: BreakerState) => {
    if (next === state) return;
    state = next;
    options.onStateChange?.(next);
  };

  const refuse = (retryAfterMs: number, lastError?: unknown): never => {
    options.onRefuse?.();
    throw new ServiceUnavailableError({
      code: 'blob_store_unavailable',
      message: 'the blob store is failing; requests that need it are refused until it recovers',
      retryAfterSeconds: retryAfterMs / 1000,
      cause: lastError,
    });
  };

  const breaker: BlobStoreBreaker = { state: () => state, failures: () => failures };
  let lastError: unknown;
  /** The probe in flight while half-open: resolves true when it succeeded. */
  let probe: Promise<boolean> | null = null;

  async function call<T>(task: () => Promise<T>): Promise<T> {
    if (state === 'open') {
      const left = openedAt + cooldownMs - now();
      if (left > 0) refuse(left, lastError);
      setState('half_open');
    }
    if (state === 'half_open') {
      // One probe at a time; calls that arrive meanwhile wait for its outcome instead of hitting the store.
      if (probe) {
        if (!(await probe)) refuse(Math.max(0, openedAt + cooldownMs - now()), lastError);
      } else {
        let settle!: (ok: boolean) => void;
        probe = new Promise<boolean>((r) => (settle = r));
        try {
          const result = await run(task);
          settle(true);
          return result;
        } catch (error) {
          settle(breaker.state() === 'closed'); // a non-storage error is an answer: the store works
          throw error;
        } finally {
          probe = null;
        }
      }
    }
    return run(task);
  }

  async function run<T>(task: () => Promise<T>): Promise<T> {
    try {
      const result = await task();
      failures = 0;
      setState('closed');
      return result;
    } catch (error) {
      if (!isStorageFailure(error)) {
        failures = 0;
        setState('closed');
        throw error;
      }
      lastError = error;
      failures += 1;
      if (state === 'half_open' || failures >= failureThreshold) {
        openedAt = now();
        setState('open');
      }
      throw error;
    }
  }

  return {
    put: (bytes) => call(() => store.put(bytes)),
    get: (name) => call(() => store.get(name)),
    has: (name) => call(() => store.has(name)),
    delete: (name) => call(() => store.delete(name)),
    check: () => call(() => store.check()),
    breaker,
  };
}
