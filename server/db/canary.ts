// Canary storage: robots' telemetry windows per release, per-fleet rollback thresholds, the staged
// follow-up releases (promotion, rollback) written with their rollout row and audit leaf in one
// transaction, and the audited safety denials the safety-decisions page reads.
import { and, asc, desc, eq, gte, like, sql } from 'drizzle-orm';
import { auditLog, canaryTelemetry, releaseRollouts, releases, rolloutPolicies } from './schema.ts';
import { isUniqueViolation, toBuffer, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { latestRelease } from './releases.ts';
import { httpError } from '../http/errors.ts';
import type { RollbackThresholds } from '../../core/registry/canary.ts';

export interface TelemetryRow {
  robotId: string;
  runs: number;
  errors: number;
  latencyP99Ms: number;
  safetyEvents: number;
  reportedAt: number;
}

export async function insertTelemetry(options: { db: Database; orgId: string; id: string; releaseId: string; row: TelemetryRow }): Promise<void> {
  await options.db.insert(canaryTelemetry).values({ id: options.id, orgId: options.orgId, releaseId: options.releaseId, ...options.row }).run();
}

export async function listTelemetry(options: { db: Executor; orgId: string; releaseId: string }): Promise<TelemetryRow[]> {
  const rows = await options.db
    .select()
    .from(canaryTelemetry)
    .where(and(eq(canaryTelemetry.orgId, options.orgId), eq(canaryTelemetry.releaseId, options.releaseId)))
    .orderBy(asc(canaryTelemetry.reportedAt), asc(canaryTelemetry.id))
    .limit(10_000)
    .all();
  return rows.map((r) => ({ robotId: r.robotId, runs: r.runs, errors: r.errors, latencyP99Ms: r.latencyP99Ms, safetyEvents: r.safetyEvents, reportedAt: r.reportedAt }));
}

export async function getRolloutPolicy(options: { db: Executor; orgId: string; fleetId: string }): Promise<(RollbackThresholds & { updatedAt: number; updatedBy: string }) | null> {
  const r = await options.db
    .select()
    .from(rolloutPolicies)
    .where(and(eq(rolloutPolicies.orgId, options.orgId), eq(rolloutPolicies.fleetId, options.fleetId)))
    .get();
  return r ? { maxErrorRate: r.maxErrorRate, maxP99Ms: r.maxP99Ms, maxSafetyEvents: r.maxSafetyEvents, updatedAt: r.updatedAt, updatedBy: r.updatedBy } : null;
}

export async function putRolloutPolicy(options: { db: Database; orgId: string; fleetId: string; thresholds: RollbackThresholds; actor: AuditActor; now: number }): Promise<void> {
  const { db, orgId, fleetId, thresholds, actor, now } = options;
  await db.transaction(async (tx) => {
    await tx
      .insert(rolloutPolicies)
      .values({ fleetId, orgId, ...thresholds, updatedBy: actor.id, updatedAt: now })
      .onConflictDoUpdate({ target: rolloutPolicies.fleetId, set: { ...thresholds, updatedBy: actor.id, updatedAt: now } })
      .run();
    await appendAudit({ db: tx, orgId, actor, action: 'rollout.policy', target: fleetId, details: { ...thresholds }, now });
  });
}

/** Stores a promotion or rollback as release version latest + 1 of the fleet (409 otherwise). */
export async function createStagedRelease(options: {
  db: Database;
  orgId: string;
  actor: AuditActor;
  pk: string;
  release: { releaseId: string; fleetId: string; roundPk: string; roundId: string; releaseVersion: number; kind: 'release' | 'rollback'; manifest: Uint8Array; fingerprint: Uint8Array; payloadSha256: string };
  rollout: { kind: 'promotion' | 'rollback'; fromReleaseId: string; restoresVersion: number | null };
  now: number;
}): Promise<void> {
  const { db, orgId, actor, now, release: r } = options;
  try {
    await db.transaction(async (tx) => {
      const latest = (await latestRelease({ db: tx, orgId, fleetId: r.fleetId }))?.releaseVersion ?? 0;
      if (r.releaseVersion !== latest + 1)
        throw httpError({ status: 409, code: 'release_version_conflict', message: `release version must be ${latest + 1}, got ${r.releaseVersion}`, details: { expected: latest + 1, got: r.releaseVersion } });
      await tx
        .insert(releases)
        .values({
          id: options.pk,
          orgId,
          releaseId: r.releaseId,
          fleetId: r.fleetId,
          roundPk: r.roundPk,
          releaseVersion: r.releaseVersion,
          kind: r.kind,
          manifest: toBuffer(r.manifest),
          fingerprint: toBuffer(r.fingerprint),
          payloadSha256: r.payloadSha256,
          createdBy: actor.id,
          createdAt: now,
        })
        .run();
      await tx.insert(releaseRollouts).values({ releaseId: r.releaseId, orgId, fleetId: r.fleetId, ...options.rollout, createdBy: actor.id, createdAt: now }).run();
      await appendAudit({
        db: tx,
        orgId,
        actor,
        action: options.rollout.kind === 'rollback' ? 'release.rollback' : 'release.promote',
        target: r.releaseId,
        details: {
          fleetId: r.fleetId,
          roundId: r.roundId,
          releaseVersion: r.releaseVersion,
          from: options.rollout.fromReleaseId,
          restoresVersion: options.rollout.restoresVersion,
          fingerprint: Buffer.from(r.fingerprint).toString('hex'),
          payloadSha256: r.payloadSha256,
        },
        now,
      });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw httpError({ status: 409, code: 'release_exists', message: `release ${JSON.stringify(r.releaseId)} or version ${r.releaseVersion} already exists` });
    throw error;
  }
}

export async function listRollouts(options: { db: Executor; orgId: string; fromReleaseId: string }) {
  return options.db
    .select()
    .from(releaseRollouts)
    .where(and(eq(releaseRollouts.orgId, options.orgId), eq(releaseRollouts.fromReleaseId, options.fromReleaseId)))
    .orderBy(asc(releaseRollouts.createdAt))
    .all();
}

export interface SafetyDenialRow {
  seq: number;
  robotId: string;
  target: string;
  details: Record<string, unknown>;
  at: number;
}

/** The audited denials (action safety.deny) of an organization: total since `since`, the most recent `limit`, per-hour counts. */
export async function safetyDenials(options: { db: Executor; orgId: string; fleetId?: string; since: number; limit: number }): Promise<{ total: number; recent: SafetyDenialRow[]; hourly: Array<{ hour: number; count: number }> }> {
  const where = and(eq(auditLog.orgId, options.orgId), eq(auditLog.action, 'safety.deny'), gte(auditLog.createdAt, options.since), options.fleetId ? like(auditLog.target, `${options.fleetId}/%`) : undefined);
  const total = (await options.db.select({ n: sql<number>`count(*)` }).from(auditLog).where(where).get())?.n ?? 0;
  const rows = await options.db.select().from(auditLog).where(where).orderBy(desc(auditLog.seq)).limit(options.limit).all();
  const hourExpr = sql<number>`(${auditLog.createdAt} / 3600000) * 3600000`;
  const hourly = await options.db.select({ hour: hourExpr, count: sql<number>`count(*)` }).from(auditLog).where(where).groupBy(hourExpr).orderBy(hourExpr).all();
  return {
    total: Number(total),
    recent: rows.map((r) => ({ seq: r.seq, robotId: r.actorId, target: r.target, details: JSON.parse(r.details) as Record<string, unknown>, at: r.createdAt })),
    hourly: hourly.map((h) => ({ hour: Number(h.hour), count: Number(h.count) })),
  };
}
