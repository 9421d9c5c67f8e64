// Rate limits (OWASP ASVS 6.1.1 documented limits, 6.3.1 brute-force protection), counted in fixed
// windows in the database so that every server instance sharing it enforces one budget
// (server/db/rate-limits.ts, server/db/write-batcher.ts). Over the limit: 429 `throttled` with
// Retry-After (seconds until the window ends). docs/API.md lists the limits.
import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { httpError } from './errors.ts';
import { incrementCounters, readCounter, resetCounter } from '../db/rate-limits.ts';
import type { AppDeps } from './context.ts';

export interface RateLimits {
  /** Failed sign-ins per account and, separately, per client address, per window. */
  signinFailures: number;
  signinWindowMs: number;
  /** Requests per minute per signed-in user. */
  userPerMinute: number;
  /** Requests per minute per robot (all routes). */
  robotPerMinute: number;
  /** Contribution uploads per minute per robot. */
  robotContributionsPerMinute: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  signinFailures: 5,
  signinWindowMs: 15 * 60 * 1000,
  userPerMinute: 100,
  robotPerMinute: 600,
  robotContributionsPerMinute: 10,
};

const ENV: Record<keyof RateLimits, string> = {
  signinFailures: 'TG_RATE_SIGNIN_FAILURES',
  signinWindowMs: 'TG_RATE_SIGNIN_WINDOW_MS',
  userPerMinute: 'TG_RATE_USER_PER_MIN',
  robotPerMinute: 'TG_RATE_ROBOT_PER_MIN',
  robotContributionsPerMinute: 'TG_RATE_ROBOT_CONTRIBUTIONS_PER_MIN',
};

/** Reads overrides from the environment; each must be a positive integer. */
export function rateLimitsFromEnv(env: Record<string, string | undefined>): Partial<RateLimits> {
  const out: Partial<RateLimits> = {};
  for (const [field, name] of Object.entries(ENV) as Array<[keyof RateLimits, string]>) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`"${name}" expected a positive integer, got ${JSON.stringify(text)}`);
    out[field] = value;
  }
  return out;
}

export const MINUTE_MS = 60_000;

function windowOf(now: number, windowMs: number): number {
  return Math.floor(now / windowMs) * windowMs;
}

function throttled(options: { what: string; now: number; windowStart: number; windowMs: number }) {
  const retryAfterSeconds = Math.max(1, Math.ceil((options.windowStart + options.windowMs - options.now) / 1000));
  return httpError({ status: 429, code: 'throttled', message: `${options.what}; retry in ${retryAfterSeconds} s`, details: { retryAfterSeconds } });
}

/** Spends one request of a budget (group-committed with the other auth writes); throws 429 over it. */
export async function spendBudget(options: { deps: AppDeps; key: string; limit: number; windowMs?: number; what: string }): Promise<void> {
  const { deps } = options;
  const windowMs = options.windowMs ?? MINUTE_MS;
  const now = deps.now();
  const windowStart = windowOf(now, windowMs);
  const count = await deps.batcher.countHit({ key: options.key, windowStart });
  if (count > options.limit) throw throttled({ what: options.what, now, windowStart, windowMs });
}

/**
 * The client's address: the socket's peer, or — only behind a declared proxy (TG_TRUST_PROXY=1) —
 * the last hop of X-Forwarded-For, which that proxy appended.
 */
export function clientAddress(c: Context, options: { trustProxy: boolean }): string {
  if (options.trustProxy) {
    const forwarded = c.req.header('x-forwarded-for');
    const last = forwarded?.split(',').map((s) => s.trim()).filter(Boolean).pop();
    if (last) return last;
  }
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown'; // in-process requests (tests) have no socket
  }
}

function signinKeys(options: { user: string; address: string }): string[] {
  return [`signin:user:${options.user.toLowerCase()}`, `signin:addr:${options.address}`];
}

/** Refuses a sign-in while the account or the address has used up its failures in this window. */
export async function checkSignin(options: { deps: AppDeps; user: string; address: string }): Promise<void> {
  const { deps } = options;
  const { signinFailures, signinWindowMs } = deps.rateLimits;
  const now = deps.now();
  const windowStart = windowOf(now, signinWindowMs);
  for (const key of signinKeys(options)) {
    if ((await readCounter({ db: deps.db, key, windowStart })) >= signinFailures)
      throw throttled({ what: 'too many failed sign-ins for this account or address', now, windowStart, windowMs: signinWindowMs });
  }
}

/**
 * Counts a failed sign-in (or password proof) against the account and the address. `accountLocked` is
 * true for exactly the failure that used up the account's budget (the lockout starts now and lasts
 * until `lockedUntil`), so the caller can audit the lockout once.
 */
export async function failSignin(options: { deps: AppDeps; user: string; address: string }): Promise<{ accountFailures: number; accountLocked: boolean; lockedUntil: number }> {
  const { deps } = options;
  const windowStart = windowOf(deps.now(), deps.rateLimits.signinWindowMs);
  const keys = signinKeys(options);
  const counts = await incrementCounters({ db: deps.db, windows: keys.map((key) => ({ key, windowStart, hits: 1 })) });
  const accountFailures = counts.get(keys[0]!) ?? 0;
  return { accountFailures, accountLocked: accountFailures === deps.rateLimits.signinFailures, lockedUntil: windowStart + deps.rateLimits.signinWindowMs };
}

/** A successful sign-in clears the account's failures (not the address's). */
export async function succeedSignin(options: { deps: AppDeps; user: string }): Promise<void> {
  await resetCounter({ db: options.deps.db, key: `signin:user:${options.user.toLowerCase()}` });
}
