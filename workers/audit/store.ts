// The audit worker's AuditStore on the app's IndexedDB (src/lib/db.ts, tables auditHeads, auditLeaves,
// auditAlarms). Heads and leaf rows of a verified run are written in one transaction, so a reload never
// sees a head without its leaves; alarms are appended and never change the head. Also the table's
// query: rows newest first, optionally through the [orgId+action] index, filtered and paged here, in
// the worker, so scanning 10^5 rows never runs on the UI thread.
import { db } from '../../src/lib/db.ts';
import { leafPager, type AuditAlarmRow, type AuditLeafFilter, type AuditLeafRow, type AuditStore } from '../../src/lib/audit-log.ts';

/** Rows per bulkPut: bounds the transaction's memory and lets IndexedDB make progress between chunks. */
const CHUNK = 5000;

export function dexieAuditStore(): AuditStore {
  return {
    head: async (orgId) => (await db.auditHeads.get(orgId)) ?? null,
    leaf: async (orgId, index) => (await db.auditLeaves.get([orgId, index])) ?? null,
    commit: async ({ head, leaves }) => {
      await db.transaction('rw', db.auditHeads, db.auditLeaves, async () => {
        for (let i = 0; i < leaves.length; i += CHUNK) await db.auditLeaves.bulkPut(leaves.slice(i, i + CHUNK));
        // A full re-verification may find a shorter history than rows left from an older server
        // (after the user accepted a new key): drop rows beyond the verified size.
        await db.auditLeaves.where('[orgId+index]').between([head.orgId, head.size], [head.orgId, Number.MAX_SAFE_INTEGER], true, true).delete();
        await db.auditHeads.put(head);
      });
    },
    recordAlarm: async (alarm: AuditAlarmRow) => {
      await db.auditAlarms.add(alarm);
    },
  };
}

export async function queryAuditLeaves(options: { orgId: string; filter: AuditLeafFilter; offset: number; limit: number }): Promise<{ rows: AuditLeafRow[]; matched: number }> {
  const { orgId, filter } = options;
  const pager = leafPager(options);
  const collection = filter.action
    ? db.auditLeaves.where('[orgId+action]').equals([orgId, filter.action]).reverse()
    : db.auditLeaves.where('[orgId+index]').between([orgId, 0], [orgId, Number.MAX_SAFE_INTEGER], true, true).reverse();
  await collection.each((row) => pager.add(row));
  return pager.result();
}

/** Forgets the pinned key, head and leaf rows of one organization (the user accepts a new server key). */
export async function forgetAuditHead(orgId: string): Promise<void> {
  await db.transaction('rw', db.auditHeads, db.auditLeaves, async () => {
    await db.auditLeaves.where('[orgId+index]').between([orgId, 0], [orgId, Number.MAX_SAFE_INTEGER], true, true).delete();
    await db.auditHeads.delete(orgId);
  });
}

