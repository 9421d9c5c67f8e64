// Leases: mutual exclusion between server instances that share one database (several stateless
// instances behind a load balancer), for work that must not run twice at once — round finalization.
//
// A lease is a row (name, holder, expires_at). acquireLease is one compare-and-set statement:
//   INSERT ... ON CONFLICT(name) DO UPDATE ... WHERE leases.expires_at <= now OR leases.holder = me
// so it succeeds only when the lease is free, expired, or already ours (a renewal), and SQLite /
// libsql run it atomically. An expiry bounds how long a crashed holder blocks the others; the work
// done under a lease must still be a conditional write (the round's state and count are re-checked in
// the finalizing UPDATE), because a holder that stalls past its expiry can lose the lease midway.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { leases } from './schema.ts';
import type { Database } from './client.ts';
import { jitterFraction } from '../random-jitter.ts';

/** This process's identity as a lease holder: host, pid and a random suffix (pids repeat across hosts and restarts). */
export const INSTANCE_ID = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;

export class LeaseUnavailableError extends Error {
  override name = 'LeaseUnavailableError';
  constructor(
    message: string,
    readonly holder: string | null,
  ) {
    super(message);
  }
}

/** Takes or renews the lease; true when this holder has it until now + ttlMs. */
export async function acquireLease(options: { db: Database; name: string; holder: string; ttlMs: number; now: number }): Promise<boolean> {
  const { db, name, holder, now } = options;
  if (!(options.ttlMs > 0)) throw new RangeError(`"ttlMs" expected a positive number, got ${options.ttlMs}`);
  const expiresAt = now + options.ttlMs;
  return db.transaction(async (tx) => {
    const res = await tx
      .insert(leases)
      .values({ name, holder, expiresAt })
      .onConflictDoUpdate({
        target: leases.name,
        set: { holder, expiresAt },
        setWhere: sql`${leases.expiresAt} <= ${now} OR ${leases.holder} = ${holder}`,
      })
      .run();
    return res.rowsAffected === 1;
  });
}

/** Gives the lease up if this holder still has it (a lease someone else took over is left alone). */
export async function releaseLease(options: { db: Database; name: string; holder: string }): Promise<void> {
  await options.db.transaction(async (tx) => {
    await tx
      .delete(leases)
      .where(and(eq(leases.name, options.name), eq(leases.holder, options.holder)))
      .run();
  });
}

export async function getLease(options: { db: Database; name: string }): Promise<{ holder: string; expiresAt: number } | null> {
  const row = await options.db.select().from(leases).where(eq(leases.name, options.name)).get();
  return row ? { holder: row.holder, expiresAt: row.expiresAt } : null;
}

/**
 * Frees the leases that processes of this host left behind when they died (holder host = ours, pid no
 * longer running): a restarted server then finalizes at once instead of waiting out the expiry. Leases
 * of other hosts, and of processes still alive, are left to expire. Returns how many it freed.
 */
export async function reclaimDeadLocalLeases(options: { db: Database }): Promise<number> {
  const host = hostname();
  const rows = await options.db.select().from(leases).all();
  let freed = 0;
  for (const row of rows) {
    const [rowHost, pidText] = row.holder.split(':');
    const pid = Number(pidText);
    if (rowHost !== host || !Number.isSafeInteger(pid) || pid <= 0 || row.holder === INSTANCE_ID) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (error) {
      alive = (error as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (alive) continue;
    await releaseLease({ db: options.db, name: row.name, holder: row.holder });
    freed++;
  }
  return freed;
}

/**
 * Runs `task` while holding the lease: waits for it (polling with jittered backoff) up to `waitMs`,
 * then throws LeaseUnavailableError. The lease is released afterwards, also when the task throws.
 */
export async function withLease<T>(options: {
  db: Database;
  name: string;
  task: () => Promise<T>;
  holder?: string;
  ttlMs?: number;
  waitMs?: number;
  now?: () => number;
}): Promise<T> {
  const { db, name } = options;
  const holder = options.holder ?? INSTANCE_ID;
  const ttlMs = options.ttlMs ?? 30_000;
  const now = options.now ?? Date.now;
  const giveUpAt = Date.now() + (options.waitMs ?? 10_000);
  for (let attempt = 0; ; attempt++) {
    if (await acquireLease({ db, name, holder, ttlMs, now: now() })) break;
    if (Date.now() >= giveUpAt) {
      const current = await getLease({ db, name });
      throw new LeaseUnavailableError(`lease ${name} is held by ${current?.holder ?? 'nobody'}`, current?.holder ?? null);
    }
    await new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * (0.5 + jitterFraction())));
  }
  try {
    return await options.task();
  } finally {
    await releaseLease({ db, name, holder }).catch(() => {
      /* it expires on its own */
    });
  }
}
