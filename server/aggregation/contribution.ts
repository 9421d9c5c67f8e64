// Folds verified update packages into their round's aggregate and records them — by group commit, and
// correct with several server instances sharing the database and the blob store.
//
// Data flow. The route verifies a package (signature, ciphertext hash) on its own, then hands it here.
// Packages for one round queue in this process; one drain per round takes everything queued (up to
// MAX_BATCH_CONTRIBUTIONS / MAX_BATCH_BYTES) under the per-round lock (deps.roundLocks) and folds it
// as one batch: one read of the round, its fleet and HE key; per package the checks of the route's
// contract (fields match the round, envelope, first contribution of the robot, room, DP budget,
// ciphertexts valid) — a package that fails gets its own error and leaves the batch; the rest are
// added one after the other onto the aggregate (each prefix sum hashed: every contribution row names
// the aggregate after it); then the packages and the batch's final aggregate are written durably to
// the blob store (each put fsyncs before it resolves), and ONE transaction records every contribution,
// DP ledger row, audit leaf and the round's new aggregate. Only after that commit does any request of
// the batch get its 201. So a wave of robots costs one aggregate write and one database commit per
// batch instead of per robot, while an acknowledged contribution is still on disk before its answer.
// Intermediate prefix sums are hashed, not stored: only the aggregate the round names is a blob.
//
// The round's last aggregate stays in memory (a small per-process cache keyed by the round and the
// aggregate's SHA-256), so a batch does not re-read and re-hash the previous aggregate from the store;
// a cache entry is used only while the database still names the same SHA-256.
//
// Across processes nothing in memory is shared: the guard is the database. The round's
// (state, contribution_count) pair is its aggregate version; recordContribution's UPDATE is conditional
// on the version this batch started from (server/db/rounds.ts). When another instance committed first,
// that UPDATE misses (409 round_changed), the whole transaction rolls back, and the batch is redone
// from the fresh round: re-read, re-check, re-add, write the new blobs, try again. A unique violation
// that belongs to one package (its robot contributed through another instance, or its Idempotency-Key
// was used there) rolls back the transaction too; that package gets its answer (the twin's replay, or
// the 409/422) and the batch is redone without it. No add is lost and none counts twice.
import { createHash } from 'node:crypto';
import { IntegrityError, TensorGuardError } from '../../core/errors.ts';
import { equalBytes } from '../../core/bytes.ts';
import { checkUpdateAgainstEnvelope } from '../../core/envelope.ts';
import type { openUpdatePackage } from '../../core/records/update-package.ts';
import { sumCiphertextBlocks } from '../../core/he/aggregate.ts';
import { getParamSet } from '../../core/he/params.ts';
import { checkBudget } from '../../core/dp/round-privacy.ts';
import { getFleet } from '../db/fleets.ts';
import { getHeKey } from '../db/he-keys.ts';
import { getRound, hasContribution, recordContribution, robotPrivacyHistory, type IdempotencyRecord, type RoundView } from '../db/rounds.ts';
import type { Database } from '../db/client.ts';
import { newId } from '../auth/tokens.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, RobotPrincipal } from '../http/context.ts';
import { settleIfDue } from '../routes/rounds.ts';
import { refuseRevokedKey } from '../routes/he-keys.ts';
import { failpoint } from '../operations/failpoints.ts';
import { jitterFraction } from '../random-jitter.ts';

export interface ContributionResult {
  contributionId: string;
  count: number;
  epsilonAfter: number | null;
}

/** How often a batch is redone after another instance committed to the same round first. */
export const MAX_VERSION_RETRIES = 64;
/** At most this many contributions per group commit (bounds one transaction and one batch's latency). */
export const MAX_BATCH_CONTRIBUTIONS = 64;
/** At most this many package bytes per batch (the first package always fits). */
export const MAX_BATCH_BYTES = 512 * 1024 * 1024;
/** Rounds whose latest aggregate this process keeps in memory. */
const CACHED_AGGREGATES = 4;

const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

type Outcome = { result: ContributionResult; replayed: boolean };

interface Pending {
  robot: RobotPrincipal;
  roundId: string;
  opened: ReturnType<typeof openUpdatePackage>;
  bytes: Uint8Array;
  idempotency?: { key: string; requestSha256: string };
  replay: () => Promise<IdempotencyRecord['response'] | null>;
  resolve: (outcome: Outcome) => void;
  reject: (error: unknown) => void;
  settled: boolean;
}

interface RoundQueue {
  items: Pending[];
  draining: boolean;
}

interface IngestState {
  queues: Map<string, RoundQueue>;
  /** roundPk -> the aggregate this process last committed for it. Insertion order = age. */
  aggregates: Map<string, { sha256: string; bytes: Uint8Array }>;
}

const states = new WeakMap<AppDeps, IngestState>();

function stateOf(deps: AppDeps): IngestState {
  let state = states.get(deps);
  if (!state) {
    state = { queues: new Map(), aggregates: new Map() };
    states.set(deps, state);
  }
  return state;
}

/**
 * Queues one verified update package for its round's next group commit; resolves once it is committed
 * (or with the original answer when `replay` finds the request's Idempotency-Key committed meanwhile,
 * by a twin request on this or another instance: `replayed: true`), rejects with the package's own
 * refusal. `roundPk` is the round the route resolved (robot's org and fleet already checked).
 */
export function aggregateContribution(options: {
  deps: AppDeps;
  robot: RobotPrincipal;
  roundPk: string;
  roundId: string;
  opened: ReturnType<typeof openUpdatePackage>;
  bytes: Uint8Array;
  idempotency?: { key: string; requestSha256: string };
  replay: () => Promise<IdempotencyRecord['response'] | null>;
}): Promise<Outcome> {
  const { deps, roundPk } = options;
  const state = stateOf(deps);
  let queue = state.queues.get(roundPk);
  if (!queue) {
    queue = { items: [], draining: false };
    state.queues.set(roundPk, queue);
  }
  const done = new Promise<Outcome>((resolve, reject) => {
    queue!.items.push({ ...options, resolve, reject, settled: false });
  });
  if (!queue.draining) void drain(deps, state, roundPk, queue);
  return done;
}

function settle(item: Pending, outcome: { ok: Outcome } | { error: unknown }): void {
  if (item.settled) return;
  item.settled = true;
  if ('ok' in outcome) item.resolve(outcome.ok);
  else item.reject(outcome.error);
}

async function drain(deps: AppDeps, state: IngestState, roundPk: string, queue: RoundQueue): Promise<void> {
  queue.draining = true;
  try {
    while (queue.items.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < queue.items.length && n < MAX_BATCH_CONTRIBUTIONS && (n === 0 || bytes + queue.items[n]!.bytes.length <= MAX_BATCH_BYTES)) {
        bytes += queue.items[n]!.bytes.length;
        n++;
      }
      const batch = queue.items.splice(0, n);
      try {
        await deps.roundLocks.run({ key: roundPk, task: () => foldBatch(deps, state, roundPk, batch) });
      } catch (error) {
        for (const item of batch) settle(item, { error });
      }
    }
  } finally {
    queue.draining = false;
    if (state.queues.get(roundPk) === queue && queue.items.length === 0) state.queues.delete(roundPk);
  }
}

/** A commit failure that belongs to one package of the batch (a unique violation on its row). */
class ItemCommitError extends Error {
  constructor(
    readonly item: Pending,
    readonly error: unknown,
  ) {
    super('a contribution of the batch failed to commit');
  }
}

async function foldBatch(deps: AppDeps, state: IngestState, roundPk: string, batch: Pending[]): Promise<void> {
  let open = batch;
  for (let attempt = 0; ; ) {
    // Packages already answered (refused on their own in an earlier attempt) stay answered.
    open = open.filter((item) => !item.settled);
    // A concurrent twin of a request may have committed while it waited for the lock.
    const waiting: Pending[] = [];
    for (const item of open) {
      const again = await item.replay();
      if (again) settle(item, { ok: { result: again, replayed: true } });
      else waiting.push(item);
    }
    open = waiting;
    if (open.length === 0) return;
    try {
      await foldOnce(deps, state, roundPk, open);
      return;
    } catch (error) {
      if (error instanceof ItemCommitError) {
        // Another instance committed this package's twin (or its robot's contribution): answer it alone,
        // then redo the batch without it.
        const code = error.error instanceof TensorGuardError ? error.error.code : null;
        const replayed = code === 'duplicate_contribution' || code === 'idempotency_key_reused' ? await error.item.replay() : null;
        settle(error.item, replayed ? { ok: { result: replayed, replayed: true } } : { error: error.error });
        open = open.filter((item) => item !== error.item);
        if (open.length === 0) return;
        continue;
      }
      if (!(error instanceof TensorGuardError) || error.code !== 'round_changed' || attempt >= MAX_VERSION_RETRIES) throw error;
      attempt++;
      // Back off a little (jittered) so instances racing on one round do not collide in lockstep.
      await new Promise((r) => setTimeout(r, jitterFraction() * Math.min(50, 2 * 2 ** Math.min(attempt, 5))));
    }
  }
}

/** The round's current aggregate: from this process's cache while the database names it, else the store. */
async function loadAggregate(deps: AppDeps, state: IngestState, round: RoundView): Promise<Uint8Array | null> {
  if (round.aggregateSha256 === null) return null;
  const cached = state.aggregates.get(round.pk);
  if (cached && cached.sha256 === round.aggregateSha256) return cached.bytes;
  const bytes = await deps.blobs.get(round.aggregateSha256);
  if (!bytes) throw new Error(`aggregate blob ${round.aggregateSha256} of round ${round.roundId} is missing`);
  return bytes;
}

function remember(state: IngestState, roundPk: string, entry: { sha256: string; bytes: Uint8Array }): void {
  state.aggregates.delete(roundPk);
  state.aggregates.set(roundPk, entry);
  while (state.aggregates.size > CACHED_AGGREGATES) state.aggregates.delete(state.aggregates.keys().next().value!);
}

/**
 * One attempt at a batch: checks, adds, writes, commits. Packages refused on their own are settled
 * here; the accepted ones are settled after the commit. Throws round-level refusals (every package of
 * the batch gets them), round_changed (redo) and ItemCommitError.
 */
async function foldOnce(deps: AppDeps, state: IngestState, roundPk: string, items: Pending[]): Promise<void> {
  const now = deps.now();
  const first = items[0]!;
  const orgId = first.robot.orgId;
  const current = await getRound({ db: deps.db, orgId, roundId: first.roundId });
  if (!current) throw new Error(`round ${first.roundId} vanished while contributions waited for it`);
  const round = await settleIfDue({ deps, round: current, locked: true });
  if (round.state !== 'open') {
    state.aggregates.delete(roundPk);
    throw httpError({ status: 409, code: 'round_closed', message: `the round is ${round.state}` });
  }
  await refuseRevokedKey({ deps, orgId, version: round.keyVersion }); // 409 key_revoked
  const fleet = await getFleet({ db: deps.db, orgId, fleetId: round.fleetId });
  const key = await getHeKey({ db: deps.db, orgId, version: round.keyVersion });
  if (!key) throw new Error(`HE key version ${round.keyVersion} of round ${round.roundId} is missing`);
  const paramSet = getParamSet({ id: key.paramSetId });

  let sum = await loadAggregate(deps, state, round);
  const accepted: Array<{ item: Pending; epsilonAfter: number | null; aggregateSha256: string }> = [];
  const robotsInBatch = new Set<string>();
  const duplicates: Pending[] = [];
  for (const item of items) {
    try {
      const pkg = item.opened.package;
      const mismatch: string[] = [];
      if (pkg.roundId !== round.roundId) mismatch.push('roundId');
      if (pkg.fleetId !== round.fleetId) mismatch.push('fleetId');
      if (pkg.keyVersion !== round.keyVersion) mismatch.push('keyVersion');
      if (!equalBytes(pkg.roundConfigFingerprint, round.configFingerprint)) mismatch.push('roundConfigFingerprint');
      if (pkg.valueCount !== round.valueCount) mismatch.push('valueCount');
      if (pkg.ciphertextCount !== round.ciphertextCount) mismatch.push('ciphertextCount');
      if (mismatch.length > 0) throw new IntegrityError(`update package does not match the round: ${mismatch.join(', ')}`, { fields: mismatch.join(',') });

      checkUpdateAgainstEnvelope({ envelope: fleet!.envelope, updateBytes: item.opened.ciphertexts.length });

      // The robot's second package in this batch waits for the first one's commit: it is its twin
      // (answered by replay) or a duplicate.
      if (robotsInBatch.has(item.robot.robotId)) {
        duplicates.push(item);
        continue;
      }
      if (await hasContribution({ db: deps.db, roundPk: round.pk, robotId: item.robot.robotId }))
        throw httpError({ status: 409, code: 'duplicate_contribution', message: 'this robot already contributed to the round' });
      if (round.contributionCount + accepted.length >= round.maxContributors)
        throw httpError({ status: 409, code: 'round_full', message: `the round already has its maximum of ${round.maxContributors} contributions` });

      let epsilonAfter: number | null = null;
      if (round.privacy.mode !== 'off') {
        const spent = (await robotPrivacyHistory({ db: deps.db, orgId, robotId: item.robot.robotId })).filter((p) => p.mode !== 'off');
        epsilonAfter = checkBudget({ spentRounds: spent, next: round.privacy, budget: round.privacy.epsilonBudget, delta: round.privacy.delta }).epsilonAfter;
      }

      if (item.opened.ciphertexts.length !== round.ciphertextCount * paramSet.ciphertextBytes)
        throw new IntegrityError(
          `update package carries ${item.opened.ciphertexts.length} ciphertext bytes; the round needs ${round.ciphertextCount} x ${paramSet.ciphertextBytes}`,
        );
      const aggregationStart = performance.now();
      // Validates headers and coefficients; a bad package throws and leaves `sum` as it was.
      const next = sumCiphertextBlocks({ accumulator: sum, addend: item.opened.ciphertexts, parmsId: key.parmsId, paramSet });
      deps.metrics.aggregationDuration.observe((performance.now() - aggregationStart) / 1000);
      sum = next;
      robotsInBatch.add(item.robot.robotId);
      accepted.push({ item, epsilonAfter, aggregateSha256: sha256Hex(next) });
    } catch (error) {
      if (error instanceof TensorGuardError || error instanceof TypeError || error instanceof RangeError) settle(item, { error });
      else throw error;
    }
  }

  if (accepted.length > 0) {
    const finalSum = sum!;
    const finalSha256 = accepted[accepted.length - 1]!.aggregateSha256;
    // Durable before the database names them (the blob store acknowledges a put once stored and
    // fsynced); the writes are independent, so they overlap.
    const [aggregateName, ...packageNames] = await Promise.all([deps.blobs.put(finalSum), ...accepted.map((a) => deps.blobs.put(a.item.bytes))]);
    if (aggregateName !== finalSha256) throw new Error(`blob store named the aggregate ${aggregateName}, expected ${finalSha256}`);
    failpoint('contribution.after_blobs');
    const rows = accepted.map((a, i) => ({ ...a, contributionId: newId({ prefix: 'ctb' }), packageSha256: packageNames[i]!, count: round.contributionCount + i + 1 }));
    await commitBatch(deps.db, async (db) => {
      for (const [i, row] of rows.entries()) {
        const pkg = row.item.opened;
        try {
          await recordContribution({
            db,
            // Each row advances the version by one inside the batch's transaction.
            round: { ...round, contributionCount: round.contributionCount + i },
            robotId: row.item.robot.robotId,
            contributionId: row.contributionId,
            ledgerId: newId({ prefix: 'dpl' }),
            packageSha256: row.packageSha256,
            packageBytes: row.item.bytes.length,
            packageFingerprint: pkg.fingerprint,
            packageSignature: pkg.signature,
            ciphertextSha256: pkg.package.ciphertextSha256,
            aggregateSha256: row.aggregateSha256,
            epsilonAfter: row.epsilonAfter,
            now,
            idempotency: row.item.idempotency,
          });
        } catch (error) {
          // The version miss concerns the whole batch; a unique violation concerns this package.
          if (error instanceof TensorGuardError && error.code !== 'round_changed') throw new ItemCommitError(row.item, error);
          throw error;
        }
      }
    });
    failpoint('contribution.after_commit');
    remember(state, roundPk, { sha256: finalSha256, bytes: finalSum });
    for (const row of rows) settle(row.item, { ok: { result: { contributionId: row.contributionId, count: row.count, epsilonAfter: row.epsilonAfter }, replayed: false } });
  }
  // Second packages of one robot: its twin's answer if the first carried the same Idempotency-Key, else 409.
  for (const item of duplicates) {
    const again = await item.replay();
    settle(
      item,
      again ? { ok: { result: again, replayed: true } } : { error: httpError({ status: 409, code: 'duplicate_contribution', message: 'this robot already contributed to the round' }) },
    );
  }
}

/**
 * Runs every recordContribution of a batch in one database transaction (each is a savepoint inside
 * it), so the batch commits — and fsyncs — once, or not at all.
 */
async function commitBatch(db: Database, task: (db: Database) => Promise<void>): Promise<void> {
  await db.transaction(async (tx) => task(tx as unknown as Database));
}
