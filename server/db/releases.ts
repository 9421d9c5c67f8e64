// Releases: officer-signed release manifests and their encrypted payloads (payload bytes in the blob store).
// A release (kind `release`) is also its round's one decision (server/db/decisions.ts), recorded in the
// same transaction together with the request's idempotency key.
import { and, desc, eq } from 'drizzle-orm';
import { releases } from './schema.ts';
import { isUniqueViolation, toBuffer, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { httpError } from '../http/errors.ts';
import { recordRoundDecision, saveDecisionIdempotency } from './decisions.ts';

export interface ReleaseView {
  releaseId: string;
  fleetId: string;
  roundPk: string;
  releaseVersion: number;
  kind: string;
  manifest: Uint8Array;
  fingerprint: Uint8Array;
  payloadSha256: string;
  createdAt: number;
}

function releaseView(r: typeof releases.$inferSelect): ReleaseView {
  return {
    releaseId: r.releaseId,
    fleetId: r.fleetId,
    roundPk: r.roundPk,
    releaseVersion: r.releaseVersion,
    kind: r.kind,
    manifest: toBytes(r.manifest),
    fingerprint: toBytes(r.fingerprint),
    payloadSha256: r.payloadSha256,
    createdAt: r.createdAt,
  };
}

export async function latestRelease(options: { db: Executor; orgId: string; fleetId: string }): Promise<ReleaseView | null> {
  const row = await options.db
    .select()
    .from(releases)
    .where(and(eq(releases.orgId, options.orgId), eq(releases.fleetId, options.fleetId)))
    .orderBy(desc(releases.releaseVersion))
    .limit(1)
    .get();
  return row ? releaseView(row) : null;
}

/** Stores release version N of a fleet only when the fleet's latest is N-1 (409 otherwise). */
export async function createRelease(options: {
  db: Database;
  orgId: string;
  actor: AuditActor;
  pk: string;
  releaseId: string;
  fleetId: string;
  roundPk: string;
  roundId: string;
  releaseVersion: number;
  kind: string;
  manifest: Uint8Array;
  fingerprint: Uint8Array;
  payloadSha256: string;
  now: number;
  /** The request's Idempotency-Key, stored with the commit together with the answer it gets. */
  idempotency?: { key: string; requestSha256: string; response: (release: ReleaseView) => string };
  /** Id of the round decision row (kind release). */
  decisionId?: string;
}): Promise<ReleaseView> {
  const { db, now } = options;
  const conflict = (latest: number) =>
    httpError({
      status: 409,
      code: 'release_version_conflict',
      message: `release version must be ${latest + 1}, got ${options.releaseVersion}`,
      details: { expected: latest + 1, got: options.releaseVersion },
    });
  const row = {
    id: options.pk,
    orgId: options.orgId,
    releaseId: options.releaseId,
    fleetId: options.fleetId,
    roundPk: options.roundPk,
    releaseVersion: options.releaseVersion,
    kind: options.kind,
    manifest: toBuffer(options.manifest),
    fingerprint: toBuffer(options.fingerprint),
    payloadSha256: options.payloadSha256,
    createdBy: options.actor.id,
    createdAt: now,
  };
  try {
    await db.transaction(async (tx) => {
      // Decided first: an approval of a round someone already released or rejected is a conflict
      // about the round (round_decided), whatever its version says.
      if (options.kind === 'release')
        await recordRoundDecision({
          tx,
          orgId: options.orgId,
          roundPk: options.roundPk,
          roundId: options.roundId,
          kind: 'release',
          releaseId: options.releaseId,
          actor: options.actor,
          id: options.decisionId ?? `dec_${options.pk}`,
          now,
        });
      const latest = (await latestRelease({ db: tx, orgId: options.orgId, fleetId: options.fleetId }))?.releaseVersion ?? 0;
      if (options.releaseVersion !== latest + 1) throw conflict(latest);
      await tx.insert(releases).values(row).run();
      if (options.idempotency)
        await saveDecisionIdempotency({ tx, orgId: options.orgId, key: options.idempotency.key, requestSha256: options.idempotency.requestSha256, response: options.idempotency.response(releaseView(row)), now });
      await appendAudit({
        db: tx,
        orgId: options.orgId,
        actor: options.actor,
        action: options.kind === 'rollback' ? 'release.rollback' : 'release.publish',
        target: options.releaseId,
        details: {
          fleetId: options.fleetId,
          roundId: options.roundId,
          releaseVersion: options.releaseVersion,
          fingerprint: Buffer.from(options.fingerprint).toString('hex'),
          payloadSha256: options.payloadSha256,
        },
        now,
      });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw httpError({ status: 409, code: 'release_exists', message: `release ${JSON.stringify(options.releaseId)} or version ${options.releaseVersion} already exists` });
    throw error;
  }
  return releaseView(row);
}

export async function getRelease(options: { db: Executor; orgId: string; releaseId: string }): Promise<ReleaseView | null> {
  const row = await options.db
    .select()
    .from(releases)
    .where(and(eq(releases.orgId, options.orgId), eq(releases.releaseId, options.releaseId)))
    .get();
  return row ? releaseView(row) : null;
}

export async function listReleases(options: { db: Executor; orgId: string; fleetId: string }): Promise<ReleaseView[]> {
  const rows = await options.db
    .select()
    .from(releases)
    .where(and(eq(releases.orgId, options.orgId), eq(releases.fleetId, options.fleetId)))
    .orderBy(desc(releases.releaseVersion))
    .all();
  return rows.map(releaseView);
}
