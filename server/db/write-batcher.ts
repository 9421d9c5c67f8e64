// Group commit for the small per-request writes of authentication: robot request nonces (replay
// protection) and rate-limit counter hits. Requests enqueue their write and wait; every few
// milliseconds (or as soon as the previous commit finished) one transaction writes the whole queue —
// one fsync for many requests instead of one each. A request is still answered only after its nonce
// is durable, so replay protection holds across restarts and across instances sharing the database
// (the nonce's primary key decides: `INSERT ... ON CONFLICT DO NOTHING RETURNING`).
import { lt, sql } from 'drizzle-orm';
import { rateLimitCounters, robotNonces } from './schema.ts';
import type { Database } from './client.ts';

interface NonceWrite {
  robotId: string;
  nonce: string;
  expiresAt: number;
  resolve: (fresh: boolean) => void;
  reject: (error: unknown) => void;
}

interface CounterWrite {
  windowStart: number;
  waiters: Array<{ resolve: (count: number) => void; reject: (error: unknown) => void }>;
}

/** Rows per multi-row INSERT (3 bound values each; SQLite allows 32,766). */
const NONCE_CHUNK = 400;
const PURGE_EVERY_MS = 10_000;

export class WriteBatcher {
  readonly #db: Database;
  readonly #delayMs: number;
  readonly #now: () => number;
  #nonces: NonceWrite[] = [];
  #counters = new Map<string, CounterWrite>();
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #lastPurge = 0;
  /** Commits so far and writes they carried (for tests and the benchmark). */
  readonly stats = { commits: 0, writes: 0 };

  constructor(options: { db: Database; now: () => number; delayMs?: number }) {
    this.#db = options.db;
    this.#now = options.now;
    this.#delayMs = options.delayMs ?? 2;
  }

  /** Records a nonce; resolves true when it was new, false when it was already stored (a replay). */
  recordNonce(options: { robotId: string; nonce: string; expiresAt: number }): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#nonces.push({ ...options, resolve, reject });
      this.#schedule();
    });
  }

  /** Adds one hit to a fixed-window counter; resolves with the count including this hit. */
  countHit(options: { key: string; windowStart: number }): Promise<number> {
    return new Promise((resolve, reject) => {
      let entry = this.#counters.get(options.key);
      if (entry && entry.windowStart !== options.windowStart) {
        // A window boundary inside one batch: the newer window wins, the older hits count there too.
        entry.windowStart = Math.max(entry.windowStart, options.windowStart);
      }
      if (!entry) this.#counters.set(options.key, (entry = { windowStart: options.windowStart, waiters: [] }));
      entry.waiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#timer || this.#flushing) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#flushing = this.#flush().finally(() => {
        this.#flushing = null;
        if (this.#nonces.length > 0 || this.#counters.size > 0) this.#schedule();
      });
    }, this.#delayMs);
  }

  async #flush(): Promise<void> {
    const nonces = this.#nonces;
    const counters = this.#counters;
    this.#nonces = [];
    this.#counters = new Map();
    const now = this.#now();
    const purge = now - this.#lastPurge >= PURGE_EVERY_MS;
    try {
      const fresh = new Set<string>();
      const counts = new Map<string, number>();
      await this.#db.transaction(async (tx) => {
        if (purge) await tx.delete(robotNonces).where(lt(robotNonces.expiresAt, now)).run();
        for (let i = 0; i < nonces.length; i += NONCE_CHUNK) {
          const chunk = nonces.slice(i, i + NONCE_CHUNK).map((n) => ({ robotId: n.robotId, nonce: n.nonce, expiresAt: n.expiresAt }));
          const rows = await tx.insert(robotNonces).values(chunk).onConflictDoNothing().returning({ robotId: robotNonces.robotId, nonce: robotNonces.nonce }).all();
          for (const r of rows) fresh.add(`${r.robotId} ${r.nonce}`);
        }
        for (const [key, c] of counters) {
          const row = await tx
            .insert(rateLimitCounters)
            .values({ key, windowStart: c.windowStart, count: c.waiters.length })
            .onConflictDoUpdate({
              target: rateLimitCounters.key,
              set: {
                count: sql`case when ${rateLimitCounters.windowStart} = excluded.window_start then ${rateLimitCounters.count} + excluded.count else excluded.count end`,
                windowStart: sql`excluded.window_start`,
              },
            })
            .returning({ count: rateLimitCounters.count })
            .get();
          counts.set(key, row?.count ?? c.waiters.length);
        }
      });
      if (purge) this.#lastPurge = now;
      this.stats.commits++;
      this.stats.writes += nonces.length + counters.size;
      // Two requests with one nonce in the same batch: the first is fresh, the second a replay.
      const claimed = new Set<string>();
      for (const n of nonces) {
        const k = `${n.robotId} ${n.nonce}`;
        n.resolve(fresh.has(k) && !claimed.has(k));
        claimed.add(k);
      }
      for (const [key, c] of counters) {
        const total = counts.get(key)!;
        c.waiters.forEach((w, i) => w.resolve(total - c.waiters.length + i + 1));
      }
    } catch (error) {
      for (const n of nonces) n.reject(error);
      for (const c of counters.values()) for (const w of c.waiters) w.reject(error);
    }
  }

  /** Waits for everything queued so far to be committed (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.#timer || this.#flushing || this.#nonces.length > 0 || this.#counters.size > 0) {
      await (this.#flushing ?? new Promise((r) => setTimeout(r, this.#delayMs + 1)));
    }
  }
}
