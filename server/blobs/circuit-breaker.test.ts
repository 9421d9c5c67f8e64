// The blob store circuit breaker: opens after N consecutive storage failures, fails fast with 503
// `blob_store_unavailable` and a Retry-After of the time left, lets one probe through after the
// cooldown (half-open), and closes on its success. Answers from a working store never count.
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../core/errors.ts';
import { ServiceUnavailableError } from '../operations/unavailable.ts';
import { guardBlobStore } from './circuit-breaker.ts';
import type { BlobStore } from './fs-store.ts';

function flakyStore() {
  const state = { failing: true, calls: 0, error: Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }) as Error };
  const run = async <T>(value: T): Promise<T> => {
    state.calls++;
    if (state.failing) throw state.error;
    return value;
  };
  const store: BlobStore = {
    put: () => run('a'.repeat(64)),
    get: () => run(new Uint8Array(1)),
    has: () => run(true),
    delete: () => run(undefined),
    check: () => run(undefined),
  };
  return { store, state };
}

describe('guardBlobStore', () => {
  it('opens after the threshold, fails fast, probes once after the cooldown, closes on success', async () => {
    const clock = { t: 0 };
    const { store, state } = flakyStore();
    const states: string[] = [];
    const guarded = guardBlobStore({ store, failureThreshold: 3, cooldownMs: 10_000, now: () => clock.t, onStateChange: (s) => states.push(s) });
    for (let i = 0; i < 3; i++) await expect(guarded.put(new Uint8Array(1))).rejects.toThrow(/EIO/);
    expect(guarded.breaker.state()).toBe('open');
    expect(state.calls).toBe(3);

    clock.t = 4_000;
    const refused = await guarded.get('a'.repeat(64)).catch((e) => e);
    expect(refused).toBeInstanceOf(ServiceUnavailableError);
    expect(refused.code).toBe('blob_store_unavailable');
    expect(refused.status).toBe(503);
    expect(refused.retryAfterSeconds).toBe(6);
    expect(state.calls).toBe(3); // the store was not touched

    // Half-open: one probe goes through; it fails, so the circuit opens for another cooldown.
    clock.t = 10_001;
    await expect(guarded.has('a'.repeat(64))).rejects.toThrow(/EIO/);
    expect(guarded.breaker.state()).toBe('open');
    expect(state.calls).toBe(4);
    await expect(guarded.has('a'.repeat(64))).rejects.toBeInstanceOf(ServiceUnavailableError);

    // The store recovers: the next probe succeeds and the circuit closes.
    state.failing = false;
    clock.t = 20_002;
    await expect(guarded.has('a'.repeat(64))).resolves.toBe(true);
    expect(guarded.breaker.state()).toBe('closed');
    expect(states).toEqual(['open', 'half_open', 'open', 'half_open', 'closed']);
  });

  it('lets one probe through while half-open; calls meanwhile wait for its outcome', async () => {
    const clock = { t: 0 };
    const { store, state } = flakyStore();
    const guarded = guardBlobStore({ store, failureThreshold: 1, cooldownMs: 1000, now: () => clock.t });
    await expect(guarded.check()).rejects.toThrow(/EIO/);
    // The probe fails: the call that waited on it is refused without touching the store.
    clock.t = 1001;
    const calls = state.calls;
    const [failedProbe, waiting] = await Promise.allSettled([guarded.check(), guarded.check()]);
    expect(failedProbe.status).toBe('rejected');
    expect((waiting as PromiseRejectedResult).reason).toBeInstanceOf(ServiceUnavailableError);
    expect(state.calls).toBe(calls + 1);
    expect(guarded.breaker.state()).toBe('open');
    // The store recovers: the probe succeeds and the waiting call goes through after it.
    state.failing = false;
    clock.t = 2002;
    const [probe, second] = await Promise.allSettled([guarded.check(), guarded.check()]);
    expect(probe.status).toBe('fulfilled');
    expect(second.status).toBe('fulfilled');
    expect(state.calls).toBe(calls + 3);
    expect(guarded.breaker.state()).toBe('closed');
  });

  it('does not count answers of a working store (absent, corrupted, bad name) as failures', async () => {
    const { store, state } = flakyStore();
    const guarded = guardBlobStore({ store, failureThreshold: 2, cooldownMs: 1000, now: () => 0 });
    await expect(guarded.put(new Uint8Array(1))).rejects.toThrow(/EIO/);
    state.error = new IntegrityError('blob does not match its SHA-256');
    for (let i = 0; i < 5; i++) await expect(guarded.get('a'.repeat(64))).rejects.toBeInstanceOf(IntegrityError);
    state.error = new TypeError('"sha256" expected 64 lowercase hex digits');
    await expect(guarded.get('x')).rejects.toBeInstanceOf(TypeError);
    expect(guarded.breaker.state()).toBe('closed');
    expect(guarded.breaker.failures()).toBe(0);
  });
});
