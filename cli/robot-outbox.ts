// The robot's outbox and its retrying upload: a signed update package is written to the robot home
// before it is sent, sent with an Idempotency-Key, retried with exponential backoff and full jitter on
// network errors, 5xx, 408 and 429 (at least the server's Retry-After), and kept when the server stays
// unreachable, to be resent by `tensorguard robot push --resume` or by the next push. Only an
// acknowledgement (201, or the server's word that the robot already contributed) applies the push to
// the robot's state (residual, DP ledger, contributed rounds) and empties the entry.
//
// <home>/robot/outbox/<roundId>/package.bin   the signed update package, byte for byte what is resent
// <home>/robot/outbox/<roundId>/residual.f32  the error-feedback residual to keep once acknowledged
// <home>/robot/outbox/<roundId>/entry.json    key, ledger delta, summary; written last (marks the entry complete)
//
// Resending the same bytes under the same key is what makes a retry safe: the server answers a retry
// of a committed upload with its original 201 (server/routes/contributions.ts), and the DP noise and
// encryption randomness of the package are never drawn twice for one round.
import { join } from 'node:path';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { ApiError, type ApiClient } from './api.ts';
import { exists, readJson, writeFileAtomic, writeJson } from './home.ts';
import { CliError } from './context.ts';

/** Backoff policy: attempt n waits a uniform random time in [0, min(maxDelayMs, baseDelayMs * 2^n)). */
export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({ maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 15_000 });

/** The policy, with TG_PUSH_MAX_ATTEMPTS, TG_PUSH_RETRY_BASE_MS and TG_PUSH_RETRY_MAX_MS from the environment. */
export function retryPolicyFromEnv(env: Record<string, string | undefined> = process.env): RetryPolicy {
  const read = (name: string, fallback: number, min: number) => {
    const text = env[name];
    if (text === undefined || text === '') return fallback;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`"${name}" expected an integer >= ${min}, got ${JSON.stringify(text)}`);
    return n;
  };
  return {
    maxAttempts: read('TG_PUSH_MAX_ATTEMPTS', DEFAULT_RETRY.maxAttempts, 1),
    baseDelayMs: read('TG_PUSH_RETRY_BASE_MS', DEFAULT_RETRY.baseDelayMs, 0),
    maxDelayMs: read('TG_PUSH_RETRY_MAX_MS', DEFAULT_RETRY.maxDelayMs, 0),
  };
}

/** Network errors (status 0), 5xx (503 included), 408 and 429 are worth retrying; other answers are final. */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  return error.status === 0 || error.status >= 500 || error.status === 408 || error.status === 429;
}

/**
 * Runs `task` until it succeeds, fails with a final error, or runs out of attempts. Between attempts it
 * waits with full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015), and at least
 * the server's Retry-After when one came with the error.
 */
export async function withRetry<T>(options: {
  task: (attempt: number) => Promise<T>;
  policy: RetryPolicy;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onRetry?: (info: { attempt: number; delayMs: number; error: ApiError }) => void;
}): Promise<T> {
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const { policy } = options;
  for (let attempt = 0; ; attempt++) {
    try {
      return await options.task(attempt);
    } catch (error) {
      if (!isRetryable(error) || attempt + 1 >= policy.maxAttempts) throw error;
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
      const jitter = Math.floor(random() * cap);
      const delayMs = Math.max(jitter, (error as ApiError).retryAfterMs ?? 0);
      options.onRetry?.({ attempt, delayMs, error: error as ApiError });
      await sleep(delayMs);
    }
  }
}

/** What an outbox entry records besides its package: enough to apply the push once acknowledged. */
export interface OutboxEntry {
  version: 1;
  roundId: string;
  idempotencyKey: string;
  createdAt: number;
  /** The robot's DP ledger entry to add once acknowledged (null for rounds without DP). */
  ledger: unknown | null;
  /** Fields of the push result known before sending (sizes, norms, timings). */
  summary: Record<string, unknown>;
  hasResidual: boolean;
}

const outboxDir = (home: string) => join(home, 'robot', 'outbox');
/** Round ids are `[A-Za-z0-9._:-]{1,64}` (server/http/body.ts idParam); ':' is kept out of file names. */
const entryDir = (home: string, roundId: string) => join(outboxDir(home), encodeURIComponent(roundId).replace(/:/g, '%3A'));

/** Writes an entry durably: the package and residual first, entry.json last. */
export async function addToOutbox(options: {
  home: string;
  roundId: string;
  packageBytes: Uint8Array;
  residual: Uint8Array | null;
  ledger: unknown | null;
  summary: Record<string, unknown>;
}): Promise<OutboxEntry> {
  const dir = entryDir(options.home, options.roundId);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(join(dir, 'package.bin'), options.packageBytes);
  if (options.residual) await writeFileAtomic(join(dir, 'residual.f32'), options.residual);
  const entry: OutboxEntry = {
    version: 1,
    roundId: options.roundId,
    idempotencyKey: `tg-push-${randomBytes(16).toString('hex')}`,
    createdAt: Date.now(),
    ledger: options.ledger,
    summary: options.summary,
    hasResidual: options.residual !== null,
  };
  await writeJson(join(dir, 'entry.json'), entry);
  return entry;
}

/** Complete entries, oldest first (a directory without entry.json is an interrupted write and skipped). */
export async function listOutbox(options: { home: string }): Promise<OutboxEntry[]> {
  let names: string[];
  try {
    names = await readdir(outboxDir(options.home));
  } catch {
    return [];
  }
  const entries: OutboxEntry[] = [];
  for (const name of names) {
    const entry = await readJson<OutboxEntry>(join(outboxDir(options.home), name, 'entry.json'));
    if (entry && entry.version === 1) entries.push(entry);
  }
  return entries.sort((a, b) => a.createdAt - b.createdAt);
}

export async function readOutboxPackage(options: { home: string; entry: OutboxEntry }): Promise<{ packageBytes: Uint8Array; residual: Uint8Array | null }> {
  const dir = entryDir(options.home, options.entry.roundId);
  const packageBytes = new Uint8Array(await readFile(join(dir, 'package.bin')));
  const residual = options.entry.hasResidual ? new Uint8Array(await readFile(join(dir, 'residual.f32'))) : null;
  return { packageBytes, residual };
}

export async function removeFromOutbox(options: { home: string; roundId: string }): Promise<void> {
  const dir = entryDir(options.home, options.roundId);
  await rm(join(dir, 'entry.json'), { force: true });
  await rm(dir, { recursive: true, force: true });
}

export async function hasOutboxEntry(options: { home: string; roundId: string }): Promise<boolean> {
  return exists(join(entryDir(options.home, options.roundId), 'entry.json'));
}

export interface DeliveryResult {
  roundId: string;
  contributionId: string | null;
  contributions: number | null;
  /** True when the server said this robot had already contributed (an earlier attempt committed). */
  alreadyAccepted: boolean;
  attempts: number;
  uploadMs: number;
}

/** Answers after which the package can never be accepted: the entry is dropped and the error reported. */
const FINAL_REFUSALS = new Set([400, 403, 404, 409, 413, 415, 422]);

/**
 * Sends one outbox entry with retries. On acknowledgement calls `onAccepted` (which applies the push to
 * the robot's state) and removes the entry. If the server stays unreachable or overloaded, the entry
 * stays and a CliError `queued` (exit status 75, EX_TEMPFAIL) says so. A final refusal drops the entry.
 */
export async function deliverOutboxEntry(options: {
  home: string;
  api: ApiClient;
  entry: OutboxEntry;
  policy: RetryPolicy;
  onAccepted: (accepted: { entry: OutboxEntry; residual: Uint8Array | null }) => Promise<void>;
  log?: (message: string) => void;
  /** The bytes just written to this entry (a fresh push): sent from memory; a resend reads them back. */
  written?: { packageBytes: Uint8Array; residual: Uint8Array | null };
}): Promise<DeliveryResult> {
  const { entry, api, home } = options;
  const { packageBytes, residual } = options.written ?? (await readOutboxPackage({ home, entry }));
  const path = `/v1/rounds/${encodeURIComponent(entry.roundId)}/contributions`;
  const started = performance.now();
  let attempts = 0;
  let answer: { contributionId: string; count: number } | null = null;
  let alreadyAccepted = false;
  try {
    answer = await withRetry({
      policy: options.policy,
      task: () => {
        attempts++;
        return api.postBinary<{ contributionId: string; count: number }>(path, packageBytes, { headers: { 'idempotency-key': entry.idempotencyKey } });
      },
      onRetry: ({ attempt, delayMs, error }) => options.log?.(`push to round ${entry.roundId}: attempt ${attempt + 1} failed (${error.code}); retrying in ${delayMs} ms`),
    });
  } catch (error) {
    if (error instanceof ApiError && error.status === 409 && error.code === 'duplicate_contribution') {
      // This robot's contribution to the round is already committed: an earlier attempt whose answer
      // was lost (sent before idempotency keys, or by another copy of this home). Count it as ours.
      alreadyAccepted = true;
    } else if (isRetryable(error)) {
      throw new CliError(
        `the server did not acknowledge the push to round ${entry.roundId} after ${attempts} attempts (${(error as ApiError).message}); ` +
          'the signed package is kept in the outbox: run `tensorguard robot push --resume` (the next push also resends it)',
        'queued',
        75,
      );
    } else {
      if (error instanceof ApiError && FINAL_REFUSALS.has(error.status)) await removeFromOutbox({ home, roundId: entry.roundId });
      throw error;
    }
  }
  await options.onAccepted({ entry, residual });
  await removeFromOutbox({ home, roundId: entry.roundId });
  return {
    roundId: entry.roundId,
    contributionId: answer?.contributionId ?? null,
    contributions: answer?.count ?? null,
    alreadyAccepted,
    attempts,
    uploadMs: Math.round(performance.now() - started),
  };
}
