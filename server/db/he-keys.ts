// HE key records: officer-signed BFV public keys, one row per (organization, key version); their
// officer-signed revocations; and the round-to-key mapping (rounds pin a key version when opened).
import { and, asc, desc, eq } from 'drizzle-orm';
import { heKeyRevocations, heKeys, rounds } from './schema.ts';
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

export interface KeyRevocationView {
  version: number;
  record: Uint8Array;
  fingerprint: Uint8Array;
  reason: string;
  revokedAt: number;
  createdBy: string;
  createdAt: number;
}

function revocationView(r: typeof heKeyRevocations.$inferSelect): KeyRevocationView {
  return { version: r.keyVersion, record: toBytes(r.record), fingerprint: toBytes(r.fingerprint), reason: r.reason, revokedAt: r.revokedAt, createdBy: r.createdBy, createdAt: r.createdAt };
}

export async function getKeyRevocation(options: { db: Executor; orgId: string; version: number }): Promise<KeyRevocationView | null> {
  const row = await options.db
    .select()
    .from(heKeyRevocations)
    .where(and(eq(heKeyRevocations.orgId, options.orgId), eq(heKeyRevocations.keyVersion, options.version)))
    .get();
  return row ? revocationView(row) : null;
}

export async function listKeyRevocations(options: { db: Executor; orgId: string }): Promise<KeyRevocationView[]> {
  const rows = await options.db.select().from(heKeyRevocations).where(eq(heKeyRevocations.orgId, options.orgId)).orderBy(asc(heKeyRevocations.keyVersion)).all();
  return rows.map(revocationView);
}

/** Stores an officer-signed revocation of one key version (409 `key_already_revoked` the second time). */
export async function addKeyRevocation(options: {
  db: Database;
  orgId: string;
  actor: AuditActor;
  id: string;
  version: number;
  record: Uint8Array;
  fingerprint: Uint8Array;
  reason: string;
  revokedAt: number;
  now: number;
}): Promise<KeyRevocationView> {
  const { db, now } = options;
  const row = {
    id: options.id,
    orgId: options.orgId,
    keyVersion: options.version,
    record: toBuffer(options.record),
    fingerprint: toBuffer(options.fingerprint),
    reason: options.reason,
    revokedAt: options.revokedAt,
    createdBy: options.actor.id,
    createdAt: now,
  };
  const conflict = () => httpError({ status: 409, code: 'key_already_revoked', message: `HE key version ${options.version} is already revoked` });
  try {
    await db.transaction(async (tx) => {
      if (await getKeyRevocation({ db: tx, orgId: options.orgId, version: options.version })) throw conflict();
      await tx.insert(heKeyRevocations).values(row).run();
      await appendAudit({
        db: tx,
        orgId: options.orgId,
        actor: options.actor,
        action: 'he_key.revoke',
        target: `v${options.version}`,
        details: { version: options.version, fingerprint: Buffer.from(options.fingerprint).toString('hex'), reason: options.reason.slice(0, 200), revokedAt: options.revokedAt },
        now,
      });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict();
    throw error;
  }
  return revocationView(row);
}

export interface HeKeyVersionView {
  version: number;
  fingerprint: Uint8Array;
  paramSetId: string;
  createdAt: number;
  revocation: KeyRevocationView | null;
  rounds: Array<{ roundId: string; fleetId: string; state: string; createdAt: number }>;
}

/** Every key version of the organization with its revocation and the rounds pinned to it (oldest first). */
export async function listHeKeyVersions(options: { db: Executor; orgId: string }): Promise<HeKeyVersionView[]> {
  const keys = await options.db.select().from(heKeys).where(eq(heKeys.orgId, options.orgId)).orderBy(asc(heKeys.keyVersion)).all();
  const revocations = new Map((await listKeyRevocations(options)).map((r) => [r.version, r]));
  const pinned = await options.db
    .select({ keyVersion: rounds.keyVersion, roundId: rounds.roundId, fleetId: rounds.fleetId, state: rounds.state, createdAt: rounds.createdAt })
    .from(rounds)
    .where(eq(rounds.orgId, options.orgId))
    .orderBy(asc(rounds.createdAt))
    .all();
  return keys.map((k) => ({
    version: k.keyVersion,
    fingerprint: toBytes(k.fingerprint),
    paramSetId: k.paramSetId,
    createdAt: k.createdAt,
    revocation: revocations.get(k.keyVersion) ?? null,
    rounds: pinned.filter((r) => r.keyVersion === k.keyVersion).map(({ keyVersion: _, ...r }) => r),
  }));
}
