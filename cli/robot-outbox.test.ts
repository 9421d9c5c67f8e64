// The robot's retrying upload and outbox: full-jitter exponential backoff that honours Retry-After,
// retries only what is worth retrying, and an outbox whose entries are complete or absent.
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, parseRetryAfter } from './api.ts';
import { addToOutbox, isRetryable, listOutbox, readOutboxPackage, removeFromOutbox, retryPolicyFromEnv, withRetry } from './robot-outbox.ts';

describe('withRetry', () => {
  it('retries network errors, 5xx and 429 with full jitter below an exponential cap, then gives up', async () => {
    const delays: number[] = [];
    let calls = 0;
    const failing = withRetry({
      policy: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 },
      random: () => 0.999,
      sleep: async (ms) => void delays.push(ms),
      task: async () => {
        calls++;
        throw new ApiError('down', 0, 'unreachable');
      },
    });
    await expect(failing).rejects.toMatchObject({ code: 'unreachable' });
    expect(calls).toBe(5);
    // caps 100, 200, 400, 800 (x 0.999): the nth wait is below min(max, base * 2^n)
    expect(delays).toEqual([99, 199, 399, 799]);
    const low: number[] = [];
    await withRetry({ policy: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000 }, random: () => 0, sleep: async (ms) => void low.push(ms), task: async () => { throw new ApiError('busy', 503, 'overloaded'); } }).catch(() => {});
    expect(low).toEqual([0, 0]); // full jitter reaches down to zero
  });

  it('waits at least the server\'s Retry-After', async () => {
    const delays: number[] = [];
    let calls = 0;
    const value = await withRetry({
      policy: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 100 },
      random: () => 0.5,
      sleep: async (ms) => void delays.push(ms),
      task: async () => {
        if (++calls < 3) throw new ApiError('overloaded', 503, 'overloaded', 2000);
        return 'ok';
      },
    });
    expect(value).toBe('ok');
    expect(delays).toEqual([2000, 2000]);
  });

  it('does not retry answers that will not change (4xx other than 408/429)', async () => {
    for (const [status, retry] of [[400, false], [401, false], [404, false], [409, false], [422, false], [408, true], [429, true], [500, true], [503, true], [0, true]] as const)
      expect(isRetryable(new ApiError('x', status, 'x'))).toBe(retry);
    expect(isRetryable(new TypeError('x'))).toBe(false);
    let calls = 0;
    await expect(withRetry({ policy: { maxAttempts: 5, baseDelayMs: 1, maxDelayMs: 1 }, task: async () => { calls++; throw new ApiError('dup', 409, 'duplicate_contribution'); } })).rejects.toMatchObject({ status: 409 });
    expect(calls).toBe(1);
  });

  it('parses Retry-After as seconds or an HTTP date, and reads the policy from the environment', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(retryPolicyFromEnv({ TG_PUSH_MAX_ATTEMPTS: '2', TG_PUSH_RETRY_BASE_MS: '10' })).toEqual({ maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 15_000 });
    expect(() => retryPolicyFromEnv({ TG_PUSH_MAX_ATTEMPTS: '0' })).toThrow(RangeError);
  });
});

describe('the outbox', () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'tg-outbox-'));
  });
  afterAll(() => rm(home, { recursive: true, force: true }));

  it('keeps the package and residual byte for byte under a stable key, oldest first, until removed', async () => {
    const pkg = new Uint8Array([1, 2, 3, 4]);
    const first = await addToOutbox({ home, roundId: 'round:1', packageBytes: pkg, residual: new Uint8Array([9, 9]), ledger: { epsilonAfter: 1 }, summary: { packageBytes: 4 } });
    await new Promise((r) => setTimeout(r, 5));
    await addToOutbox({ home, roundId: 'round-2', packageBytes: new Uint8Array([5]), residual: null, ledger: null, summary: {} });
    const entries = await listOutbox({ home });
    expect(entries.map((e) => e.roundId)).toEqual(['round:1', 'round-2']);
    expect(entries[0]!.idempotencyKey).toBe(first.idempotencyKey);
    expect(first.idempotencyKey).toMatch(/^tg-push-[0-9a-f]{32}$/);
    const back = await readOutboxPackage({ home, entry: entries[0]! });
    expect(back.packageBytes).toEqual(pkg);
    expect(back.residual).toEqual(new Uint8Array([9, 9]));
    expect((await readOutboxPackage({ home, entry: entries[1]! })).residual).toBeNull();
    await removeFromOutbox({ home, roundId: 'round:1' });
    expect((await listOutbox({ home })).map((e) => e.roundId)).toEqual(['round-2']);
  });

  it('skips an entry whose write was interrupted before entry.json', async () => {
    const dir = join(home, 'robot', 'outbox', 'torn');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'package.bin'), new Uint8Array([1]));
    expect((await listOutbox({ home })).map((e) => e.roundId)).toEqual(['round-2']);
    expect(await readdir(join(home, 'robot', 'outbox'))).toContain('torn');
  });
});
