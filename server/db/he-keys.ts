// HE key records: officer-signed BFV public keys, one row per (organization, key version).
import { and, desc, eq } from 'drizzle-orm';
import { heKeys } from './schema.ts';
import { isUniqueViolation, toBuffer, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { httpError } from '../http/errors.ts';

export interface HeKeyView {
  version: number;
  record: Uint8Array;
  fingerprint: Uint8Array;
  paramSetId: string;
  parmsId: Uint8Array;
  createdAt: number;
}

function heKeyView(r: typeof heKeys.$inferSelect): HeKeyView {
  return { version: r.keyVersion, record: toBytes(r.record), fingerprint: toBytes(r.fingerprint), paramSetId: r.paramSetId, parmsId: toBytes(r.parmsId), createdAt: r.createdAt };
}

export async function getCurrentHeKey(options: { db: Executor; orgId: string }): Promise<HeKeyView | null> {
  const row = await options.db.select().from(heKeys).where(eq(heKeys.orgId, options.orgId)).orderBy(desc(heKeys.keyVersion)).limit(1).get();
  return row ? heKeyView(row) : null;
}

export async function getHeKey(options: { db: Executor; orgId: string; version: number }): Promise<HeKeyView | null> {
  const row = await options.db
    .select()
    .from(heKeys)
    .where(and(eq(heKeys.orgId, options.orgId), eq(heKeys.keyVersion, options.version)))
    .get();
  return row ? heKeyView(row) : null;
}

/** Stores key version N only when the organization's current version is N-1 (409 otherwise). */
export async function addHeKey(options: {
  db: Database;
  orgId: string;
  actor: AuditActor;
  id: string;
  version: number;
  record: Uint8Array;
  fingerprint: Uint8Array;
  paramSetId: string;
  parmsId: Uint8Array;
  now: number;
}): Promise<void> {
  const { db, now } = options;
  const conflict = (current: number) =>
    httpError({ status: 409, code: 'key_version_conflict', message: `key version must be ${current + 1}, got ${options.version}`, details: { expected: current + 1, got: options.version } });
  try {
    await db.transaction(async (tx) => {
      const current = (await getCurrentHeKey({ db: tx, orgId: options.orgId }))?.version ?? 0;
      if (options.version !== current + 1) throw conflict(current);
      await tx
        .insert(heKeys)
        .values({
          id: options.id,
          orgId: options.orgId,
          keyVersion: options.version,
          record: toBuffer(options.record),
          fingerprint: toBuffer(options.fingerprint),
          paramSetId: options.paramSetId,
          parmsId: toBuffer(options.parmsId),
          createdBy: options.actor.id,
          createdAt: now,
        })
        .run();
      await appendAudit({
        db: tx,
        orgId: options.orgId,
        actor: options.actor,
        action: 'he_key.add',
        target: `v${options.version}`,
        details: { version: options.version, fingerprint: Buffer.from(options.fingerprint).toString('hex'), paramSetId: options.paramSetId },
        now,
      });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(options.version - 1);
    throw error;
  }
}
