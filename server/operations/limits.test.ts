// Operational limits: defaults, overrides checked against their bounds, environment variables parsed
// strictly and named in errors.
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, limitsFromEnv, resolveLimits } from './limits.ts';

describe('operational limits', () => {
  it('defaults, and overrides within bounds', () => {
    expect(resolveLimits()).toEqual(DEFAULT_LIMITS);
    expect(resolveLimits({ maxPendingAggregations: 3 }).maxPendingAggregations).toBe(3);
    expect(() => resolveLimits({ maxInflightUploadBytes: 0 })).toThrow(RangeError);
    expect(() => resolveLimits({ retryAfterSeconds: 1.5 })).toThrow(RangeError);
  });

  it('reads the environment and names the variable in errors', () => {
    const limits = limitsFromEnv({ TG_MAX_INFLIGHT_UPLOAD_BYTES: '1048576', TG_SHUTDOWN_TIMEOUT_MS: '0', TG_RETRY_AFTER_SECONDS: ' ' });
    expect(limits.maxInflightUploadBytes).toBe(1048576);
    expect(limits.shutdownTimeoutMs).toBe(0);
    expect(limits.retryAfterSeconds).toBe(DEFAULT_LIMITS.retryAfterSeconds);
    expect(() => limitsFromEnv({ TG_MAX_PENDING_AGGREGATIONS: '12abc' })).toThrow(/TG_MAX_PENDING_AGGREGATIONS/);
    expect(() => limitsFromEnv({ TG_BLOB_BREAKER_FAILURES: '0' })).toThrow(/"TG_BLOB_BREAKER_FAILURES" expected an integer in 1\.\./);
  });
});
