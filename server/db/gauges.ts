// Database reads behind the Prometheus gauges (server/metrics/registry.ts): rounds by state, the DP
// epsilon each fleet's most-spent robot has reached, and the age of each organization's current HE key.
// They run on every scrape, so each is one aggregate query over an indexed table.
import { max, sql } from 'drizzle-orm';
import { dpLedger, heKeys, rounds } from './schema.ts';
import type { Executor } from './common.ts';

/** Number of rounds in each state, over every organization. */
export async function countRoundsByState(options: { db: Executor }): Promise<Array<{ state: string; count: number }>> {
  const rows = await options.db
    .select({ state: rounds.state, count: sql<number>`count(*)` })
    .from(rounds)
    .groupBy(rounds.state)
    .all();
  return rows.map((r) => ({ state: r.state, count: Number(r.count) }));
}

/**
 * Per fleet, the largest epsilon any of its robots has spent so far. Ledger rows carry each robot's
 * cumulative epsilon after a round (RDP composition, core/dp/round-privacy.ts), so the maximum over a
 * fleet's rows is the spend of its most-used robot — the figure that meets a budget first.
 */
export async function maxEpsilonByFleet(options: { db: Executor }): Promise<Array<{ fleetId: string; epsilon: number }>> {
  const rows = await options.db
    .select({ fleetId: dpLedger.fleetId, epsilon: max(dpLedger.epsilonAfter) })
    .from(dpLedger)
    .groupBy(dpLedger.fleetId)
    .all();
  return rows.filter((r) => r.epsilon !== null).map((r) => ({ fleetId: r.fleetId, epsilon: Number(r.epsilon) }));
}

/** Each organization's current (highest) HE key version and when it was registered. */
export async function currentHeKeys(options: { db: Executor }): Promise<Array<{ orgId: string; keyVersion: number; createdAt: number }>> {
  const rows = await options.db
    .select({ orgId: heKeys.orgId, keyVersion: heKeys.keyVersion, createdAt: heKeys.createdAt })
    .from(heKeys)
    .where(sql`${heKeys.keyVersion} = (select max(k.key_version) from he_keys k where k.org_id = ${heKeys.orgId})`)
    .all();
  return rows;
}
