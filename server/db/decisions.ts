// Round decisions (a finalized round is released or rejected, once), the idempotency keys of officer
// decisions, and release deliveries per robot (fetched, then applied or failed as the robot reports).
import { and, eq } from 'drizzle-orm';
import { decisionIdempotencyKeys, releaseDeliveries, roundDecisions } from './schema.ts';
import { toBuffer, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { httpError } from '../http/errors.ts';

export type DecisionKind = 'release' | 'rejection';

export interface RoundDecisionView {
  roundId: string;
  kind: DecisionKind;
  releaseId: string | null;
  record: Uint8Array | null;
  fingerprint: Uint8Array | null;
  reason: string | null;
  createdBy: string;
  createdAt: number;
}

function decisionView(r: typeof roundDecisions.$inferSelect): RoundDecisionView {
  return {
    roundId: r.roundId,
    kind: r.kind as DecisionKind,
    releaseId: r.releaseId,
    record: r.record ? toBytes(r.record) : null,
    fingerprint: r.fingerprint ? toBytes(r.fingerprint) : null,
    reason: r.reason,
    createdBy: r.createdBy,
    createdAt: r.createdAt,
  };
}

export async function getRoundDecision(options: { db: Executor; orgId: string; roundPk: string }): Promise<RoundDecisionView | null> {
  const row = await options.db
    .select()
    .from(roundDecisions)
    .where(and(eq(roundDecisions.orgId, options.orgId), eq(roundDecisions.roundPk, options.roundPk)))
    .get();
  return row ? decisionView(row) : null;
}

/** 409 `round_decided`: someone decided the round first; details say how, so a client can show it. */
export function roundDecidedError(existing: RoundDecisionView) {
  return httpError({
    status: 409,
    code: 'round_decided',
    message: existing.kind === 'release' ? `the round was already released (release ${existing.releaseId})` : `the round was already rejected: ${existing.reason}`,
    details: { decision: existing.kind, releaseId: existing.releaseId, reason: existing.reason, decidedBy: existing.createdBy, decidedAt: existing.createdAt },
  });
}

/**
 * Inside a write transaction: records the round's one decision, or throws 409 `round_decided`. Write
 * transactions are serialized (server/db/client.ts) and round_pk is unique, so two decisions of one
 * round can never both commit.
 */
export async function recordRoundDecision(options: {
  tx: Executor;
  orgId: string;
  roundPk: string;
  roundId: string;
  kind: DecisionKind;
  releaseId?: string;
  record?: Uint8Array;
  fingerprint?: Uint8Array;
  reason?: string;
  actor: AuditActor;
  id: string;
  now: number;
}): Promise<void> {
  const existing = await getRoundDecision({ db: options.tx, orgId: options.orgId, roundPk: options.roundPk });
  if (existing) throw roundDecidedError(existing);
  await options.tx
    .insert(roundDecisions)
    .values({
      id: options.id,
      orgId: options.orgId,
      roundPk: options.roundPk,
      roundId: options.roundId,
      kind: options.kind,
      releaseId: options.releaseId ?? null,
      record: options.record ? toBuffer(options.record) : null,
      fingerprint: options.fingerprint ? toBuffer(options.fingerprint) : null,
      reason: options.reason ?? null,
      createdBy: options.actor.id,
      createdAt: options.now,
    })
    .run();
}

/** Stores a signed rejection as the round's decision, with its audit row and idempotency key. */
export async function createRejection(options: {
  db: Database;
  orgId: string;
  actor: AuditActor;
  id: string;
  roundPk: string;
  roundId: string;
  fleetId: string;
  record: Uint8Array;
  fingerprint: Uint8Array;
  reason: string;
  now: number;
  idempotency?: { key: string; requestSha256: string; response: string };
}): Promise<void> {
  await options.db.transaction(async (tx) => {
    await recordRoundDecision({
      tx,
      orgId: options.orgId,
      roundPk: options.roundPk,
      roundId: options.roundId,
      kind: 'rejection',
      record: options.record,
      fingerprint: options.fingerprint,
      reason: options.reason,
      actor: options.actor,
      id: options.id,
      now: options.now,
    });
    await appendAudit({
      db: tx,
      orgId: options.orgId,
      actor: options.actor,
      action: 'round.reject',
      target: options.roundId,
      details: { fleetId: options.fleetId, fingerprint: Buffer.from(options.fingerprint).toString('hex'), reason: options.reason },
      now: options.now,
    });
    if (options.idempotency) await saveDecisionIdempotency({ tx, orgId: options.orgId, ...options.idempotency, now: options.now });
  });
}

export interface DecisionIdempotencyRecord {
  requestSha256: string;
  response: string;
}

export async function getDecisionIdempotency(options: { db: Executor; orgId: string; key: string }): Promise<DecisionIdempotencyRecord | null> {
  const row = await options.db
    .select()
    .from(decisionIdempotencyKeys)
    .where(and(eq(decisionIdempotencyKeys.orgId, options.orgId), eq(decisionIdempotencyKeys.key, options.key)))
    .get();
  return row ? { requestSha256: row.requestSha256, response: row.response } : null;
}

export async function saveDecisionIdempotency(options: { tx: Executor; orgId: string; key: string; requestSha256: string; response: string; now: number }): Promise<void> {
  await options.tx
    .insert(decisionIdempotencyKeys)
    .values({ orgId: options.orgId, key: options.key, requestSha256: options.requestSha256, response: options.response, createdAt: options.now })
    .run();
}

export function decisionKeyReused() {
  return httpError({ status: 422, code: 'idempotency_key_reused', message: 'this Idempotency-Key was already used in this organization for a different request' });
}

export interface DeliveryView {
  robotId: string;
  deliveredAt: number;
  status: string | null;
  detail: string | null;
  reportedAt: number | null;
}

/** A robot fetched a release: remember the first time. */
export async function recordDelivery(options: { db: Executor; orgId: string; releaseId: string; robotId: string; now: number }): Promise<void> {
  await options.db
    .insert(releaseDeliveries)
    .values({ orgId: options.orgId, releaseId: options.releaseId, robotId: options.robotId, deliveredAt: options.now })
    .onConflictDoNothing()
    .run();
}

/** A robot reports the outcome of applying a release (a report without an earlier fetch counts as one). */
export async function reportDelivery(options: {
  db: Database;
  orgId: string;
  releaseId: string;
  robotId: string;
  status: 'applied' | 'failed';
  detail: string | null;
  now: number;
}): Promise<void> {
  await options.db.transaction(async (tx) => {
    await recordDelivery({ db: tx, orgId: options.orgId, releaseId: options.releaseId, robotId: options.robotId, now: options.now });
    await tx
      .update(releaseDeliveries)
      .set({ status: options.status, detail: options.detail, reportedAt: options.now })
      .where(and(eq(releaseDeliveries.orgId, options.orgId), eq(releaseDeliveries.releaseId, options.releaseId), eq(releaseDeliveries.robotId, options.robotId)))
      .run();
    await appendAudit({
      db: tx,
      orgId: options.orgId,
      actor: { type: 'robot', id: options.robotId },
      action: options.status === 'applied' ? 'release.applied' : 'release.failed',
      target: options.releaseId,
      details: options.detail ? { detail: options.detail } : {},
      now: options.now,
    });
  });
}

export async function listDeliveries(options: { db: Executor; orgId: string; releaseId: string }): Promise<DeliveryView[]> {
  const rows = await options.db
    .select()
    .from(releaseDeliveries)
    .where(and(eq(releaseDeliveries.orgId, options.orgId), eq(releaseDeliveries.releaseId, options.releaseId)))
    .all();
  return rows.map((r) => ({ robotId: r.robotId, deliveredAt: r.deliveredAt, status: r.status, detail: r.detail, reportedAt: r.reportedAt }));
}
