// The audit log: one append-only row per state change, with its RFC 6962 leaf hash.
//
// leafHash = SHA-256(0x00 || canonical JSON of {orgId, actorType, actorId, action, target, details, at})
// (RFC 6962 section 2.1 leaf hashing). Canonical JSON: object keys sorted, no whitespace. The Merkle
// tree over these leaves and signed tree heads come later; UPDATE and DELETE are refused by triggers.
import { createHash } from 'node:crypto';
import { and, asc, eq, gt } from 'drizzle-orm';
import { auditLog } from './schema.ts';
import type { Executor } from './common.ts';

export interface AuditActor {
  type: 'user' | 'robot' | 'system';
  id: string;
}

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError('"value" expected finite numbers only');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function auditLeafHash(options: { entry: Record<string, unknown> }): string {
  return createHash('sha256').update(Buffer.from([0])).update(canonicalJson(options.entry), 'utf8').digest('hex');
}

export async function appendAudit(options: {
  db: Executor;
  orgId: string;
  actor: AuditActor;
  action: string;
  target: string;
  details?: Record<string, unknown>;
  now: number;
}): Promise<void> {
  const details = options.details ?? {};
  const entry = {
    orgId: options.orgId,
    actorType: options.actor.type,
    actorId: options.actor.id,
    action: options.action,
    target: options.target,
    details,
    at: options.now,
  };
  await options.db
    .insert(auditLog)
    .values({
      orgId: options.orgId,
      actorType: options.actor.type,
      actorId: options.actor.id,
      action: options.action,
      target: options.target,
      details: canonicalJson(details),
      leafHash: auditLeafHash({ entry }),
      createdAt: options.now,
    })
    .run();
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
    actor: { type: r.actorType, id: r.actorId },
    action: r.action,
    target: r.target,
    details: JSON.parse(r.details) as Record<string, unknown>,
    leafHash: r.leafHash,
    at: r.createdAt,
  }));
}
