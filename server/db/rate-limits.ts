// Fixed-window rate-limit counters in the database, so every server instance on one libsql database
// shares them (issue 6). One upsert per key and window: the count resets when the window moved on.
import { and, eq, lt, sql } from 'drizzle-orm';
import { rateLimitCounters } from './schema.ts';
import type { Database } from './client.ts';
import type { Executor } from './common.ts';

/** Adds `hits` to each key's window and returns the counts after the increment, in one transaction. */
export async function incrementCounters(options: { db: Database; windows: Array<{ key: string; windowStart: number; hits: number }> }): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (options.windows.length === 0) return out;
  await options.db.transaction(async (tx) => {
    for (const w of options.windows) {
      const row = await tx
        .insert(rateLimitCounters)
        .values({ key: w.key, windowStart: w.windowStart, count: w.hits })
        .onConflictDoUpdate({
          target: rateLimitCounters.key,
          set: {
            count: sql`case when ${rateLimitCounters.windowStart} = excluded.window_start then ${rateLimitCounters.count} + excluded.count else excluded.count end`,
            windowStart: sql`excluded.window_start`,
          },
        })
        .returning({ count: rateLimitCounters.count })
        .get();
      out.set(w.key, row?.count ?? w.hits);
    }
  });
  return out;
}

/** The count of a key in the given window (0 when the stored window is another one). */
export async function readCounter(options: { db: Executor; key: string; windowStart: number }): Promise<number> {
  const row = await options.db
    .select({ count: rateLimitCounters.count })
    .from(rateLimitCounters)
    .where(and(eq(rateLimitCounters.key, options.key), eq(rateLimitCounters.windowStart, options.windowStart)))
    .get();
  return row?.count ?? 0;
}

export async function resetCounter(options: { db: Database; key: string }): Promise<void> {
  await options.db.transaction(async (tx) => {
    await tx.delete(rateLimitCounters).where(eq(rateLimitCounters.key, options.key)).run();
  });
}

/** Removes counters whose window started before `before` (housekeeping; windows are at most 15 min). */
export async function purgeCounters(options: { db: Database; before: number }): Promise<void> {
  await options.db.transaction(async (tx) => {
    await tx.delete(rateLimitCounters).where(lt(rateLimitCounters.windowStart, options.before)).run();
  });
}
