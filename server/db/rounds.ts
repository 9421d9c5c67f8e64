// Rounds, contributions and the per-robot DP ledger: repository functions.
//
// A round is `open` until its deadline or the officer's close; then `finalized` (quorum met) or
// `closed` (deadline passed below quorum: the aggregate is never released). A contribution is
// recorded in one transaction together with its ledger row, the round's new aggregate and an audit row.
import { and, asc, desc, eq, ne, sql } from 'drizzle-orm';
import { contributions, dpLedger, idempotencyKeys, robots, rounds } from './schema.ts';
import { isUniqueViolation, toBuffer, toBytes, type Executor } from './common.ts';
import type { Database } from './client.ts';
import { appendAudit, type AuditActor } from './audit.ts';
import { httpError } from '../http/errors.ts';
import { failpoint } from '../operations/failpoints.ts';
import { INSTANCE_ID, withLease } from './leases.ts';
import { recordServerStageTiming } from './round-timings.ts';

export type RoundState = 'open' | 'closed' | 'finalized';
export const ROUND_STATES: readonly RoundState[] = ['open', 'closed', 'finalized'];

/** Mirrors RoundPrivacyParams of core/dp/round-privacy.ts (stored as JSON per round). */
export interface StoredPrivacyParams {
  mode: 'off' | 'local' | 'distributed';
  clip: number;
  noiseMultiplier: number;
  delta: number;
  epsilonBudget: number;
  quorum: number;
  dimension: number;
  scale: number;
}

export interface RoundView {
  pk: string;
  roundId: string;
  orgId: string;
  fleetId: string;
  state: RoundState;
  config: Uint8Array;
  configFingerprint: Uint8Array;
  keyVersion: number;
  quorum: number;
  maxContributors: number;
  deadline: number;
  valueCount: number;
  ciphertextCount: number;
  privacy: StoredPrivacyParams;
  contributionCount: number;
  aggregateSha256: string | null;
  createdAt: number;
  finalizedAt: number | null;
}

function roundView(r: typeof rounds.$inferSelect): RoundView {
  return {
    pk: r.id,
    roundId: r.roundId,
    orgId: r.orgId,
    fleetId: r.fleetId,
    state: r.state as RoundState,
    config: toBytes(r.config),
    configFingerprint: toBytes(r.configFingerprint),
    keyVersion: r.keyVersion,
    quorum: r.quorum,
    maxContributors: r.maxContributors,
    deadline: r.deadline,
    valueCount: r.valueCount,
    ciphertextCount: r.ciphertextCount,
    privacy: r.privacy as StoredPrivacyParams,
    contributionCount: r.contributionCount,
    aggregateSha256: r.aggregateSha256,
    createdAt: r.createdAt,
    finalizedAt: r.finalizedAt,
  };
}

export async function createRound(options: {
  db: Database;
  orgId: string;
  actor: AuditActor;
  pk: string;
  roundId: string;
  fleetId: string;
  config: Uint8Array;
  configFingerprint: Uint8Array;
  keyVersion: number;
  quorum: number;
  maxContributors: number;
  deadline: number;
  valueCount: number;
  ciphertextCount: number;
  privacy: StoredPrivacyParams;
  now: number;
  /** Runs inside the transaction before the insert (e.g. the fleet DP budget over the rounds so far). */
  precheck?: (tx: Executor) => Promise<void>;
}): Promise<RoundView> {
  const { db, now } = options;
  const row = {
    id: options.pk,
    orgId: options.orgId,
    roundId: options.roundId,
    fleetId: options.fleetId,
    state: 'open',
    config: toBuffer(options.config),
    configFingerprint: toBuffer(options.configFingerprint),
    keyVersion: options.keyVersion,
    quorum: options.quorum,
    maxContributors: options.maxContributors,
    deadline: options.deadline,
    valueCount: options.valueCount,
    ciphertextCount: options.ciphertextCount,
    privacy: options.privacy,
    contributionCount: 0,
    aggregateSha256: null,
    createdBy: options.actor.id,
    createdAt: now,
    finalizedAt: null,
  };
  try {
    await db.transaction(async (tx) => {
      if (options.precheck) await options.precheck(tx);
      await tx.insert(rounds).values(row).run();
      await appendAudit({
        db: tx,
        orgId: options.orgId,
        actor: options.actor,
        action: 'round.open',
        target: options.roundId,
        details: {
          fleetId: options.fleetId,
          configFingerprint: Buffer.from(options.configFingerprint).toString('hex'),
          keyVersion: options.keyVersion,
          quorum: options.quorum,
          deadline: options.deadline,
          dpMode: options.privacy.mode,
        },
        now,
      });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw httpError({ status: 409, code: 'round_exists', message: `round id ${JSON.stringify(options.roundId)} is already used` });
    throw error;
  }
  return roundView(row);
}

export async function getRound(options: { db: Executor; orgId: string; roundId: string }): Promise<RoundView | null> {
  const row = await options.db
    .select()
    .from(rounds)
    .where(and(eq(rounds.orgId, options.orgId), eq(rounds.roundId, options.roundId)))
    .get();
  return row ? roundView(row) : null;
}

export async function listRounds(options: { db: Executor; orgId: string; fleetId?: string; state?: RoundState }): Promise<RoundView[]> {
  const conditions = [eq(rounds.orgId, options.orgId)];
  if (options.fleetId) conditions.push(eq(rounds.fleetId, options.fleetId));
  if (options.state) conditions.push(eq(rounds.state, options.state));
  const rows = await options.db
    .select()
    .from(rounds)
    .where(and(...conditions))
    .orderBy(desc(rounds.createdAt))
    .all();
  return rows.map(roundView);
}

/**
 * Moves an open round to `finalized` (quorum met) or — when `expired` — to `closed` (below quorum).
 * Only an open round changes; returns the round as it is afterwards.
 *
 * Several server instances may share the database: the finalization runs under the round's lease
 * (server/db/leases.ts, `round-finalize:<pk>`), and its UPDATE is conditional on the round still being
 * open with the count it decided on. A contribution another instance committed in between makes the
 * UPDATE miss; the round is then re-read and the decision taken again on the new count (an officer's
 * close of a round that now meets its quorum still finalizes it, with the contribution included).
 */
export async function settleRound(options: {
  db: Database;
  round: RoundView;
  actor: AuditActor;
  reason: 'deadline' | 'officer';
  now: number;
}): Promise<RoundView> {
  const { db, now } = options;
  // The server's `aggregate` stage of the round latency breakdown: this finalization, lease included.
  const started = performance.now();
  const settled = await withLease({
    db,
    name: `round-finalize:${options.round.pk}`,
    // The finalizing transaction takes milliseconds: a short lease bounds what a crashed holder blocks.
    ttlMs: 5_000,
    waitMs: 15_000,
    task: async () => {
      let round = options.round;
      for (let attempt = 0; ; attempt++) {
        const next: RoundState = round.contributionCount >= round.quorum ? 'finalized' : 'closed';
        const outcome = await db.transaction(async (tx) => {
          const res = await tx
            .update(rounds)
            .set({ state: next, finalizedAt: next === 'finalized' ? now : null })
            .where(and(eq(rounds.id, round.pk), eq(rounds.state, 'open'), eq(rounds.contributionCount, round.contributionCount)))
            .run();
          if (res.rowsAffected === 1) {
            await appendAudit({
              db: tx,
              orgId: round.orgId,
              actor: options.actor,
              action: next === 'finalized' ? 'round.finalize' : 'round.expire',
              target: round.roundId,
              details: { reason: options.reason, contributions: round.contributionCount, quorum: round.quorum, aggregateSha256: round.aggregateSha256 },
              now,
            });
            if (next === 'finalized')
              await recordServerStageTiming({ db: tx, orgId: round.orgId, roundPk: round.pk, actorId: INSTANCE_ID, stage: 'aggregate', durationMs: performance.now() - started, now });
            failpoint('round.in_finalize');
          }
          const row = await tx.select().from(rounds).where(eq(rounds.id, round.pk)).get();
          return roundView(row!);
        });
        // Settled (by us or by another instance), or the count moved: decide again on the fresh row.
        if (outcome.state !== 'open' || attempt >= 100) return outcome;
        round = outcome;
      }
    },
  });
  failpoint('round.after_finalize');
  return settled;
}

/** Privacy parameters of the fleet's rounds that can still be released (open or finalized). */
export async function fleetPrivacyHistory(options: { db: Executor; orgId: string; fleetId: string }): Promise<StoredPrivacyParams[]> {
  const rows = await options.db
    .select({ privacy: rounds.privacy })
    .from(rounds)
    .where(and(eq(rounds.orgId, options.orgId), eq(rounds.fleetId, options.fleetId), ne(rounds.state, 'closed')))
    .orderBy(asc(rounds.createdAt))
    .all();
  return rows.map((r) => r.privacy as StoredPrivacyParams);
}

/** Privacy parameters of every round a robot has had a contribution accepted into. */
export async function robotPrivacyHistory(options: { db: Executor; orgId: string; robotId: string }): Promise<StoredPrivacyParams[]> {
  const rows = await options.db
    .select({ privacy: rounds.privacy })
    .from(contributions)
    .innerJoin(rounds, eq(rounds.id, contributions.roundPk))
    .where(and(eq(contributions.orgId, options.orgId), eq(contributions.robotId, options.robotId)))
    .orderBy(asc(contributions.createdAt))
    .all();
  return rows.map((r) => r.privacy as StoredPrivacyParams);
}

export async function hasContribution(options: { db: Executor; roundPk: string; robotId: string }): Promise<boolean> {
  const row = await options.db
    .select({ id: contributions.id })
    .from(contributions)
    .where(and(eq(contributions.roundPk, options.roundPk), eq(contributions.robotId, options.robotId)))
    .get();
  return row !== undefined;
}

/**
 * Records an accepted contribution atomically: the contribution row, the robot's DP ledger row (when
 * the round uses DP), the round's new aggregate and count, and the audit row. The round update is
 * conditional on the count the caller folded into (the aggregate's version), so a lost update can never
 * commit, also with several server instances on one database (server/aggregation/contribution.ts).
 */
export async function recordContribution(options: {
  db: Database;
  round: RoundView;
  robotId: string;
  contributionId: string;
  ledgerId: string;
  packageSha256: string;
  packageBytes: number;
  packageFingerprint: Uint8Array;
  packageSignature: Uint8Array;
  ciphertextSha256: Uint8Array;
  aggregateSha256: string;
  epsilonAfter: number | null;
  now: number;
  /** The upload's Idempotency-Key, recorded with the commit together with the answer it gets. */
  idempotency?: { key: string; requestSha256: string };
}): Promise<{ count: number }> {
  const { db, round, now } = options;
  const seq = round.contributionCount + 1;
  try {
    await db.transaction(async (tx) => {
      // The version check first: the round's (state, count) must still be what the sum was built on.
      // Another instance that committed meanwhile makes it miss (409 round_changed, the caller redoes
      // the add); done before the contribution row so a racing twin's sequence number never surfaces
      // as a unique violation.
      const res = await tx
        .update(rounds)
        .set({ contributionCount: seq, aggregateSha256: options.aggregateSha256 })
        .where(and(eq(rounds.id, round.pk), eq(rounds.state, 'open'), eq(rounds.contributionCount, round.contributionCount)))
        .run();
      if (res.rowsAffected !== 1) throw httpError({ status: 409, code: 'round_changed', message: 'the round changed while this contribution was being added; retry' });
      await tx
        .insert(contributions)
        .values({
          id: options.contributionId,
          orgId: round.orgId,
          roundPk: round.pk,
          robotId: options.robotId,
          seq,
          packageSha256: options.packageSha256,
          packageBytes: options.packageBytes,
          packageFingerprint: toBuffer(options.packageFingerprint),
          packageSignature: toBuffer(options.packageSignature),
          ciphertextSha256: toBuffer(options.ciphertextSha256),
          aggregateSha256: options.aggregateSha256,
          createdAt: now,
        })
        .run();
      if (options.epsilonAfter !== null) {
        await tx
          .insert(dpLedger)
          .values({
            id: options.ledgerId,
            orgId: round.orgId,
            fleetId: round.fleetId,
            robotId: options.robotId,
            roundPk: round.pk,
            epsilonAfter: options.epsilonAfter,
            delta: round.privacy.delta,
            createdAt: now,
          })
          .run();
      }
      await appendAudit({
        db: tx,
        orgId: round.orgId,
        actor: { type: 'robot', id: options.robotId },
        action: 'contribution.accept',
        target: options.contributionId,
        details: {
          roundId: round.roundId,
          seq,
          packageFingerprint: Buffer.from(options.packageFingerprint).toString('hex'),
          ciphertextSha256: Buffer.from(options.ciphertextSha256).toString('hex'),
          aggregateSha256: options.aggregateSha256,
          epsilonAfter: options.epsilonAfter,
        },
        now,
      });
      if (options.idempotency) {
        await tx
          .insert(idempotencyKeys)
          .values({
            robotId: options.robotId,
            key: options.idempotency.key,
            requestSha256: options.idempotency.requestSha256,
            roundPk: round.pk,
            contributionId: options.contributionId,
            response: JSON.stringify({ contributionId: options.contributionId, count: seq, epsilonAfter: options.epsilonAfter }),
            createdAt: now,
          })
          .run();
      }
      failpoint('contribution.in_transaction');
    });
  } catch (error) {
    if (isUniqueViolation(error) && /idempotency_keys/.test(String((error as Error).message) + String((error as { cause?: Error }).cause?.message)))
      throw idempotencyKeyReused();
    if (isUniqueViolation(error)) throw httpError({ status: 409, code: 'duplicate_contribution', message: 'this robot already contributed to the round' });
    throw error;
  }
  return { count: seq };
}

export function idempotencyKeyReused() {
  return httpError({ status: 422, code: 'idempotency_key_reused', message: 'this Idempotency-Key was already used by this robot for a different request' });
}

export interface IdempotencyRecord {
  requestSha256: string;
  roundPk: string;
  contributionId: string;
  /** The JSON body of the original 201. */
  response: { contributionId: string; count: number; epsilonAfter: number | null };
}

/** The upload a robot already made under an Idempotency-Key, if any. */
export async function getIdempotencyRecord(options: { db: Executor; robotId: string; key: string }): Promise<IdempotencyRecord | null> {
  const row = await options.db
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.robotId, options.robotId), eq(idempotencyKeys.key, options.key)))
    .get();
  if (!row) return null;
  return { requestSha256: row.requestSha256, roundPk: row.roundPk, contributionId: row.contributionId, response: JSON.parse(row.response) };
}

export async function getContribution(options: { db: Executor; orgId: string; roundPk: string; contributionId: string }) {
  const row = await options.db
    .select()
    .from(contributions)
    .where(and(eq(contributions.orgId, options.orgId), eq(contributions.roundPk, options.roundPk), eq(contributions.id, options.contributionId)))
    .get();
  return row ?? null;
}

/** Contributions of a round in acceptance order, joined with the robot material the manifest needs. */
export async function listRoundContributions(options: { db: Executor; orgId: string; roundPk: string }) {
  const rows = await options.db
    .select({ contribution: contributions, robot: robots })
    .from(contributions)
    .innerJoin(robots, eq(robots.id, contributions.robotId))
    .where(and(eq(contributions.orgId, options.orgId), eq(contributions.roundPk, options.roundPk)))
    .orderBy(asc(contributions.seq))
    .all();
  return rows.map(({ contribution: c, robot: r }) => ({
    id: c.id,
    seq: c.seq,
    robotId: c.robotId,
    enrollmentId: r.enrollmentId,
    dsaPublicKey: toBytes(r.dsaPublicKey),
    attestation: toBytes(r.attestation),
    packageSha256: c.packageSha256,
    packageBytes: c.packageBytes,
    packageFingerprint: toBytes(c.packageFingerprint),
    packageSignature: toBytes(c.packageSignature),
    ciphertextSha256: toBytes(c.ciphertextSha256),
    aggregateSha256: c.aggregateSha256,
    createdAt: c.createdAt,
  }));
}

export async function listDpLedger(options: { db: Executor; orgId: string; fleetId: string }) {
  const rows = await options.db
    .select({ robotId: dpLedger.robotId, roundId: rounds.roundId, epsilonAfter: dpLedger.epsilonAfter, delta: dpLedger.delta, at: dpLedger.createdAt })
    .from(dpLedger)
    .innerJoin(rounds, eq(rounds.id, dpLedger.roundPk))
    .where(and(eq(dpLedger.orgId, options.orgId), eq(dpLedger.fleetId, options.fleetId)))
    .orderBy(asc(dpLedger.createdAt), sql`"dp_ledger"."rowid"`)
    .all();
  return rows;
}
