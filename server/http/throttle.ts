// Login throttling (OWASP ASVS 6.3.1): after too many failed logins for one user name within a window,
// further attempts for that name are refused with 429 until the window passes. In memory, per process.
import { httpError } from './errors.ts';

export class LoginThrottle {
  readonly #failures = new Map<string, number[]>();
  readonly #maxFailures: number;
  readonly #windowMs: number;

  constructor(options: { maxFailures?: number; windowMs?: number } = {}) {
    this.#maxFailures = options.maxFailures ?? 10;
    this.#windowMs = options.windowMs ?? 15 * 60 * 1000;
  }

  #recent(key: string, now: number): number[] {
    const list = (this.#failures.get(key) ?? []).filter((t) => now - t < this.#windowMs);
    if (list.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, list);
    return list;
  }

  /** Throws 429 `throttled` while the name is locked out. */
  check(options: { key: string; now: number }): void {
    const list = this.#recent(options.key.toLowerCase(), options.now);
    if (list.length >= this.#maxFailures) {
      const retryAfterMs = list[0]! + this.#windowMs - options.now;
      throw httpError({ status: 429, code: 'throttled', message: `too many failed logins; retry in ${Math.ceil(retryAfterMs / 1000)} s`, details: { retryAfterMs } });
    }
  }

  fail(options: { key: string; now: number }): void {
    const key = options.key.toLowerCase();
    const list = this.#recent(key, options.now);
    list.push(options.now);
    this.#failures.set(key, list);
    if (this.#failures.size > 100_000) this.#failures.delete(this.#failures.keys().next().value!);
  }

  succeed(options: { key: string }): void {
    this.#failures.delete(options.key.toLowerCase());
  }
}
