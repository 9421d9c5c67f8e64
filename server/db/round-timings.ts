// Round stage timings (table round_stage_timings): one row per (round, actor kind, actor id, stage),
// first write wins. Robots and officers report through server/routes/timings.ts (rows + an audit leaf
// in one transaction); the server's own `aggregate` row is written inside the finalizing transaction
// (server/db/rounds.ts settleRound), covered by that transaction's `round.finalize` leaf.
import { and, asc, eq } from 'drizzle-orm';
import { roundStageTimings } from './schema.ts';
import { isUniqueViolation, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { httpError } from '../http/errors.ts';
import { newId } from '../auth/tokens.ts';
import type { LatencyStage, StageActorKind, StageReport, StageTiming } from '../../core/round/latency.ts';

function alreadyReported(stage: string) {
  return httpError({ status: 409, code: 'stage_already_reported', message: `this actor already reported stage ${JSON.stringify(stage)} of the round; the first report stands`, details: { stage } });
}

/**
 * Stores one actor's report: every stage or none. A stage this actor already reported is a 409
 * `stage_already_reported` naming it, and nothing of the report is stored (the unique index is the
 * backstop when two reports race).
 */
export async function recordStageTimings(options: {
  db: Database;
  orgId: string;
  round: { pk: string; roundId: string };
  actorKind: Exclude<StageActorKind, 'server'>;
  actorId: string;
  audit: AuditActor;
  stages: StageReport[];
  now: number;
}): Promise<void> {
  const { db, orgId, round, actorKind, actorId, stages, now } = options;
  try {
    await db.transaction(async (tx) => {
      const existing = await tx
        .select({ stage: roundStageTimings.stage })
        .from(roundStageTimings)
        .where(and(eq(roundStageTimings.roundId, round.pk), eq(roundStageTimings.actorKind, actorKind), eq(roundStageTimings.actorId, actorId)))
        .all();
      const have = new Set(existing.map((r) => r.stage));
      const repeated = stages.find((s) => have.has(s.stage));
      if (repeated) throw alreadyReported(repeated.stage);
      await tx
        .insert(roundStageTimings)
        .values(stages.map((s) => ({ id: newId({ prefix: 'rst' }), orgId, roundId: round.pk, actorKind, actorId, stage: s.stage, durationMs: s.durationMs, recordedAt: now })))
        .run();
      await appendAudit({
        db: tx,
        orgId,
        actor: options.audit,
        action: 'round.timings',
        target: round.roundId,
        details: { actorKind, durationsMs: Object.fromEntries(stages.map((s) => [s.stage, Math.round(s.durationMs * 1000) / 1000])) },
        now,
      });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw alreadyReported(stages.map((s) => s.stage).join(', '));
    throw error;
  }
}

/**
 * The server's own measurement (the finalization: stage `aggregate`), written by the caller's
 * transaction; a second finalization of the same round by the same instance cannot happen (the round
 * is finalized once), and a conflicting row is left as it is (first write wins).
 */
export async function recordServerStageTiming(options: { db: Executor; orgId: string; roundPk: string; actorId: string; stage: LatencyStage; durationMs: number; now: number }): Promise<void> {
  await options.db
    .insert(roundStageTimings)
    .values({ id: newId({ prefix: 'rst' }), orgId: options.orgId, roundId: options.roundPk, actorKind: 'server', actorId: options.actorId, stage: options.stage, durationMs: options.durationMs, recordedAt: options.now })
    .onConflictDoNothing()
    .run();
}

/** Every stored timing of a round, oldest first. */
export async function listStageTimings(options: { db: Executor; orgId: string; roundPk: string }): Promise<Array<StageTiming & { recordedAt: number }>> {
  const rows = await options.db
    .select()
    .from(roundStageTimings)
    .where(and(eq(roundStageTimings.orgId, options.orgId), eq(roundStageTimings.roundId, options.roundPk)))
    .orderBy(asc(roundStageTimings.recordedAt), asc(roundStageTimings.id))
    .all();
  return rows.map((r) => ({ actorKind: r.actorKind as StageActorKind, actorId: r.actorId, stage: r.stage as LatencyStage, durationMs: r.durationMs, recordedAt: r.recordedAt }));
}
