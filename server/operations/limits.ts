// The server's operational limits: backpressure bounds, the blob store circuit breaker, shutdown grace.
// Each has a default and an environment variable (validated here, documented in docs/OPERATIONS.md).
import { MiB } from '../http/body.ts';

export interface OperationalLimits {
  /** Most request-body bytes of contribution uploads held at once (reserved from Content-Length). */
  maxInflightUploadBytes: number;
  /** Most contributions admitted to aggregation at once (waiting for a round lock or being folded in). */
  maxPendingAggregations: number;
  /** Retry-After (seconds) sent with a 503 for backpressure. */
  retryAfterSeconds: number;
  /** Consecutive blob store failures that open the circuit breaker. */
  blobBreakerFailures: number;
  /** How long the breaker stays open before one probe call is let through (half-open). */
  blobBreakerCooldownMs: number;
  /** How long a graceful shutdown waits for in-flight requests before it closes their connections. */
  shutdownTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<OperationalLimits> = Object.freeze({
  maxInflightUploadBytes: 256 * MiB,
  maxPendingAggregations: 128,
  retryAfterSeconds: 2,
  blobBreakerFailures: 5,
  blobBreakerCooldownMs: 10_000,
  shutdownTimeoutMs: 30_000,
});

/** Environment variable of each limit. */
export const LIMIT_ENV: Readonly<Record<keyof OperationalLimits, string>> = Object.freeze({
  maxInflightUploadBytes: 'TG_MAX_INFLIGHT_UPLOAD_BYTES',
  maxPendingAggregations: 'TG_MAX_PENDING_AGGREGATIONS',
  retryAfterSeconds: 'TG_RETRY_AFTER_SECONDS',
  blobBreakerFailures: 'TG_BLOB_BREAKER_FAILURES',
  blobBreakerCooldownMs: 'TG_BLOB_BREAKER_COOLDOWN_MS',
  shutdownTimeoutMs: 'TG_SHUTDOWN_TIMEOUT_MS',
});

const BOUNDS: Readonly<Record<keyof OperationalLimits, readonly [min: number, max: number]>> = {
  maxInflightUploadBytes: [1, 2 ** 40],
  maxPendingAggregations: [1, 1_000_000],
  retryAfterSeconds: [1, 3600],
  blobBreakerFailures: [1, 1_000_000],
  blobBreakerCooldownMs: [1, 3_600_000],
  shutdownTimeoutMs: [0, 3_600_000],
};

/** Defaults, overridden by `overrides`, every value checked against its bounds. */
export function resolveLimits(overrides: Partial<OperationalLimits> = {}): OperationalLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const [name, value] of Object.entries(overrides) as Array<[keyof OperationalLimits, number | undefined]>) {
    if (value === undefined) continue;
    if (!(name in BOUNDS)) throw new TypeError(`"limits" expected keys of OperationalLimits, got ${JSON.stringify(name)}`);
    const [min, max] = BOUNDS[name];
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`"${name}" expected an integer in ${min}..${max}, got ${value}`);
    out[name] = value;
  }
  return out;
}

/** The limits set in the environment (TG_MAX_INFLIGHT_UPLOAD_BYTES, ...); unset ones stay default. */
export function limitsFromEnv(env: Record<string, string | undefined> = process.env): OperationalLimits {
  const overrides: Partial<OperationalLimits> = {};
  for (const [name, variable] of Object.entries(LIMIT_ENV) as Array<[keyof OperationalLimits, string]>) {
    const text = env[variable];
    if (text === undefined || text.trim() === '') continue;
    if (!/^[0-9]+$/.test(text.trim())) throw new RangeError(`"${variable}" expected a non-negative integer, got ${JSON.stringify(text)}`);
    overrides[name] = Number(text.trim());
  }
  try {
    return resolveLimits(overrides);
  } catch (error) {
    const name = (Object.keys(LIMIT_ENV) as Array<keyof OperationalLimits>).find((k) => (error as Error).message.startsWith(`"${k}"`));
    if (name && error instanceof RangeError) throw new RangeError(error.message.replace(`"${name}"`, `"${LIMIT_ENV[name]}"`));
    throw error;
  }
}
