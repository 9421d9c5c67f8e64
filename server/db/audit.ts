// The audit log: one append-only row per state change, and the RFC 6962 Merkle tree over each
// organization's rows (one tree per organization, so no proof or tree head spans two tenants).
//
// A row's leaf bytes are core/audit/leaf.ts's canonical JSON of {orgId, actorType, actorId, action,
// target, details, at}; its leaf hash SHA-256(0x00 || bytes) is stored in the row, and its leaf index
// (0-based, dense per organization) fixes its position. Appending a leaf also stores every complete
// subtree it completes in audit_tree_nodes (the leaf itself at level 0, then one parent per trailing 1
// bit of the index), all in the caller's transaction — so the tree and the rows commit together.
// Tree heads and proofs then read O(log^2 n) stored nodes (core/audit/merkle.ts plans), never the
// whole log. Triggers refuse UPDATE and DELETE on both tables. Rows written before the tree existed
// get a leaf index from a migration and their nodes here, on first use (`catchUpAuditTree`).
import { and, asc, eq, gt, gte, inArray, lt, max, sql } from 'drizzle-orm';
import { auditLog, auditTreeNodes } from './schema.ts';
import { toBuffer, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { canonicalJson, encodeAuditLeaf, type AuditEntry } from '../../core/audit/leaf.ts';
import { foldRange, hashChildren, hashLeaf, planNodes, rootPlan, type NodeId, type NodeReader } from '../../core/audit/merkle.ts';
import { bytesToHex, hexToBytes } from '../../core/bytes.ts';

export { canonicalJson };

export interface AuditActor {
  type: 'user' | 'robot' | 'system';
  id: string;
}

/** Hex leaf hash of an entry (kept for callers of the first version of this module). */
export function auditLeafHash(options: { entry: AuditEntry }): string {
  return bytesToHex(hashLeaf(encodeAuditLeaf(options)));
}

/** Number of leaves the stored tree of an organization covers (level-0 nodes are dense from 0). */
export async function auditTreeSize(options: { db: Executor; orgId: string }): Promise<number> {
  const row = await options.db
    .select({ last: max(auditTreeNodes.nodeIndex) })
    .from(auditTreeNodes)
    .where(and(eq(auditTreeNodes.orgId, options.orgId), eq(auditTreeNodes.level, 0)))
    .get();
  return row?.last === null || row?.last === undefined ? 0 : Number(row.last) + 1;
}

/** Number of audit rows with a leaf index (max index + 1). */
async function auditLeafCount(options: { db: Executor; orgId: string }): Promise<number> {
  const row = await options.db
    .select({ last: max(auditLog.leafIndex) })
    .from(auditLog)
    .where(eq(auditLog.orgId, options.orgId))
    .get();
  return row?.last === null || row?.last === undefined ? 0 : Number(row.last) + 1;
}

/**
 * Stores leaf `index` (which must be the next one) and every complete subtree it closes: the parent
 * of a right child is hash(left sibling, node), climbing while the index is odd.
 */
async function addLeafNodes(options: { db: Executor; orgId: string; index: number; leafHash: Uint8Array }): Promise<void> {
  const { db, orgId } = options;
  let level = 0;
  let index = options.index;
  let hash = options.leafHash;
  await db.insert(auditTreeNodes).values({ orgId, level, nodeIndex: index, hash: toBuffer(hash) }).run();
  while (index % 2 === 1) {
    const sibling = await db
      .select({ hash: auditTreeNodes.hash })
      .from(auditTreeNodes)
      .where(and(eq(auditTreeNodes.orgId, orgId), eq(auditTreeNodes.level, level), eq(auditTreeNodes.nodeIndex, index - 1)))
      .get();
    if (!sibling) throw new Error(`audit tree of ${orgId}: node ${level}/${index - 1} is missing`);
    hash = hashChildren(toBytes(sibling.hash), hash);
    level += 1;
    index = (index - 1) / 2;
    await db.insert(auditTreeNodes).values({ orgId, level, nodeIndex: index, hash: toBuffer(hash) }).run();
  }
}

/**
 * Builds the tree nodes of rows that have a leaf index but no nodes yet (rows from before the Merkle
 * tree existed, see migration 0004). Runs inside the caller's write transaction; returns the tree size.
 */
export async function catchUpAuditTree(options: { db: Executor; orgId: string }): Promise<number> {
  const { db, orgId } = options;
  let size = await auditTreeSize({ db, orgId });
  const leaves = await auditLeafCount({ db, orgId });
  while (size < leaves) {
    const rows = await db
      .select({ leafIndex: auditLog.leafIndex, leafHash: auditLog.leafHash })
      .from(auditLog)
      .where(and(eq(auditLog.orgId, orgId), gte(auditLog.leafIndex, size), lt(auditLog.leafIndex, Math.min(leaves, size + 1000))))
      .orderBy(asc(auditLog.leafIndex))
      .all();
    for (const row of rows) {
      if (row.leafIndex !== size) throw new Error(`audit log of ${orgId}: leaf ${size} is missing (found ${row.leafIndex})`);
      await addLeafNodes({ db, orgId, index: size, leafHash: hexToBytes(row.leafHash) });
      size += 1;
    }
    if (rows.length === 0) throw new Error(`audit log of ${orgId}: leaf ${size} is missing`);
  }
  return size;
}

/** True when rows exist whose tree nodes are not stored yet (cheap: two indexed max() queries). */
export async function auditTreeLags(options: { db: Executor; orgId: string }): Promise<boolean> {
  return (await auditTreeSize(options)) < (await auditLeafCount(options));
}

/** Brings the organization's tree up to date in its own write transaction, if it lags. */
export async function ensureAuditTree(options: { db: Database; orgId: string }): Promise<void> {
  if (!(await auditTreeLags(options))) return;
  await options.db.transaction(async (tx) => {
    await catchUpAuditTree({ db: tx, orgId: options.orgId });
  });
}

/**
 * Appends one audit leaf in the caller's transaction (every state change calls this next to the
 * change itself): the row with its leaf index and hash, and the tree nodes it completes.
 */
export async function appendAudit(options: {
  db: Executor;
  orgId: string;
  actor: AuditActor;
  action: string;
  target: string;
  details?: Record<string, unknown>;
  now: number;
}): Promise<{ leafIndex: number; leafHash: string }> {
  const { db, orgId } = options;
  const details = options.details ?? {};
  const entry: AuditEntry = { orgId, actorType: options.actor.type, actorId: options.actor.id, action: options.action, target: options.target, details, at: options.now };
  const leafHash = hashLeaf(encodeAuditLeaf({ entry }));
  const leafIndex = await catchUpAuditTree({ db, orgId });
  await db
    .insert(auditLog)
    .values({
      orgId,
      actorType: entry.actorType,
      actorId: entry.actorId,
      action: entry.action,
      target: entry.target,
      details: canonicalJson(details),
      leafHash: bytesToHex(leafHash),
      createdAt: entry.at,
      leafIndex,
    })
    .run();
  await addLeafNodes({ db, orgId, index: leafIndex, leafHash });
  return { leafIndex, leafHash: bytesToHex(leafHash) };
}

function rowEntry(r: typeof auditLog.$inferSelect): AuditEntry {
  return {
    orgId: r.orgId,
    actorType: r.actorType as AuditEntry['actorType'],
    actorId: r.actorId,
    action: r.action,
    target: r.target,
    details: JSON.parse(r.details) as Record<string, unknown>,
    at: r.createdAt,
  };
}

export async function listAudit(options: { db: Executor; orgId: string; after?: number; limit: number }) {
  const rows = await options.db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.orgId, options.orgId), gt(auditLog.seq, options.after ?? 0)))
    .orderBy(asc(auditLog.seq))
    .limit(options.limit)
    .all();
  return rows.map((r) => ({
    seq: r.seq,
    index: r.leafIndex,
    actor: { type: r.actorType, id: r.actorId },
    action: r.action,
    target: r.target,
    details: JSON.parse(r.details) as Record<string, unknown>,
    leafHash: r.leafHash,
    at: r.createdAt,
  }));
}

export interface AuditLeafView {
  index: number;
  seq: number;
  /** The leaf bytes as text: canonical JSON of the entry. Clients hash these bytes themselves. */
  data: string;
  /** The hash the server stored for it (clients must not trust it; it helps diagnose). */
  leafHash: string;
}

/** Leaves [start, end) of the organization's log, in leaf order, as stored (a gap shows as a gap). */
export async function readAuditLeaves(options: { db: Executor; orgId: string; start: number; end: number }): Promise<AuditLeafView[]> {
  const rows = await options.db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.orgId, options.orgId), gte(auditLog.leafIndex, options.start), lt(auditLog.leafIndex, options.end)))
    .orderBy(asc(auditLog.leafIndex))
    .all();
  return rows.map((r) => ({ index: r.leafIndex!, seq: r.seq, data: canonicalJson(rowEntry(r)), leafHash: r.leafHash }));
}

/**
 * Reads the given complete-subtree nodes of an organization's tree: one indexed `IN` query per level
 * (an OR of (level, index) pairs makes SQLite scan the organization's nodes: ~20 ms at 10^5 leaves).
 */
export async function readAuditNodes(options: { db: Executor; orgId: string; nodes: readonly NodeId[] }): Promise<NodeReader> {
  const found = new Map<string, Uint8Array>();
  const byLevel = new Map<number, number[]>();
  for (const n of planNodes([...options.nodes])) byLevel.set(n.level, [...(byLevel.get(n.level) ?? []), n.index]);
  for (const [level, indices] of byLevel) {
    for (let i = 0; i < indices.length; i += 500) {
      const rows = await options.db
        .select()
        .from(auditTreeNodes)
        .where(and(eq(auditTreeNodes.orgId, options.orgId), eq(auditTreeNodes.level, level), inArray(auditTreeNodes.nodeIndex, indices.slice(i, i + 500))))
        .all();
      for (const r of rows) found.set(`${r.level}:${r.nodeIndex}`, toBytes(r.hash));
    }
  }
  return (node) => {
    const h = found.get(`${node.level}:${node.index}`);
    if (!h) throw new Error(`audit tree of ${options.orgId}: node ${node.level}/${node.index} is missing`);
    return h;
  };
}

/** The tree head (size and RFC 6962 root) of the organization's log as stored. */
export async function auditTreeHead(options: { db: Executor; orgId: string }): Promise<{ size: number; rootHash: Uint8Array }> {
  const size = await auditTreeSize(options);
  const plan = rootPlan({ size });
  const node = await readAuditNodes({ db: options.db, orgId: options.orgId, nodes: plan });
  return { size, rootHash: foldRange(plan.map(node)) };
}

/** Row count per organization (for tests and the migration check). */
export async function countAuditRows(options: { db: Executor; orgId: string }): Promise<number> {
  const row = await options.db.select({ n: sql<number>`count(*)` }).from(auditLog).where(eq(auditLog.orgId, options.orgId)).get();
  return Number(row?.n ?? 0);
}
