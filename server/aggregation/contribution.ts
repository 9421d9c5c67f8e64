// Folds one verified update package into its round's aggregate and records it — correct with several
// server instances sharing the database and the blob store.
//
// Within one process, contributions to a round queue on the per-round lock (deps.roundLocks), so they
// rarely conflict. Across processes nothing in memory is shared: the guard is the database. The round's
// (state, contribution_count) pair is its aggregate version; recordContribution's UPDATE is conditional
// on the version this add started from (server/db/rounds.ts) and commits in the same transaction as
// the contribution row. When another instance committed first, that UPDATE misses (409 round_changed),
// the whole transaction rolls back, and the add is redone from the fresh round: re-read, re-check,
// re-add onto the new aggregate, write the new blobs, try again. So no add is lost and none counts twice
// (the (round, robot) unique index refuses a second row for one robot even across instances).
import { IntegrityError, TensorGuardError } from '../../core/errors.ts';
import { equalBytes } from '../../core/bytes.ts';
import { checkUpdateAgainstEnvelope } from '../../core/envelope.ts';
import type { openUpdatePackage } from '../../core/records/update-package.ts';
import { sumCiphertextBlocks } from '../../core/he/aggregate.ts';
import { getParamSet } from '../../core/he/params.ts';
import { checkBudget } from '../../core/dp/round-privacy.ts';
import { getFleet } from '../db/fleets.ts';
import { getHeKey } from '../db/he-keys.ts';
import { getRound, hasContribution, recordContribution, robotPrivacyHistory, type IdempotencyRecord } from '../db/rounds.ts';
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

/** How often an add is redone after another instance committed to the same round first. */
export const MAX_VERSION_RETRIES = 64;

/**
 * Checks the package against the round, adds its ciphertexts to the aggregate, writes package and new
 * aggregate to the blob store, and commits (server/db/rounds.ts recordContribution). `replay` returns
 * the original answer when the request's Idempotency-Key was committed meanwhile (by a twin request on
 * this or another instance); the result then says `replayed: true`.
 */
export async function aggregateContribution(options: {
  deps: AppDeps;
  robot: RobotPrincipal;
  roundId: string;
  opened: ReturnType<typeof openUpdatePackage>;
  bytes: Uint8Array;
  idempotency?: { key: string; requestSha256: string };
  replay: () => Promise<IdempotencyRecord['response'] | null>;
}): Promise<{ result: ContributionResult; replayed: boolean }> {
  const { deps, robot, roundId, opened, bytes } = options;
  const pkg = opened.package;
  for (let attempt = 0; ; attempt++) {
    // A concurrent twin of this request may have committed while we waited for the lock.
    const again = await options.replay();
    if (again) return { result: again, replayed: true };
    try {
      return { result: await addOnce(), replayed: false };
    } catch (error) {
      if (!(error instanceof TensorGuardError)) throw error;
      const code = error.code;
      // Another instance committed this request's twin: answer as the twin was answered.
      if (code === 'duplicate_contribution' || code === 'idempotency_key_reused') {
        const replayed = await options.replay();
        if (replayed) return { result: replayed, replayed: true };
      }
      if (code !== 'round_changed' || attempt >= MAX_VERSION_RETRIES) throw error;
      // Back off a little (jittered) so instances racing on one round do not collide in lockstep.
      await new Promise((r) => setTimeout(r, jitterFraction() * Math.min(50, 2 * 2 ** Math.min(attempt, 5))));
    }
  }

  async function addOnce(): Promise<ContributionResult> {
    const now = deps.now();
    const round = await settleIfDue({ deps, round: (await getRound({ db: deps.db, orgId: robot.orgId, roundId }))!, locked: true });
    if (round.state !== 'open') throw httpError({ status: 409, code: 'round_closed', message: `the round is ${round.state}` });
    await refuseRevokedKey({ deps, orgId: robot.orgId, version: round.keyVersion }); // 409 key_revoked

    const mismatch: string[] = [];
    if (pkg.roundId !== round.roundId) mismatch.push('roundId');
    if (pkg.fleetId !== round.fleetId) mismatch.push('fleetId');
    if (pkg.keyVersion !== round.keyVersion) mismatch.push('keyVersion');
    if (!equalBytes(pkg.roundConfigFingerprint, round.configFingerprint)) mismatch.push('roundConfigFingerprint');
    if (pkg.valueCount !== round.valueCount) mismatch.push('valueCount');
    if (pkg.ciphertextCount !== round.ciphertextCount) mismatch.push('ciphertextCount');
    if (mismatch.length > 0) throw new IntegrityError(`update package does not match the round: ${mismatch.join(', ')}`, { fields: mismatch.join(',') });

    const fleet = await getFleet({ db: deps.db, orgId: robot.orgId, fleetId: round.fleetId });
    checkUpdateAgainstEnvelope({ envelope: fleet!.envelope, updateBytes: opened.ciphertexts.length });

    if (await hasContribution({ db: deps.db, roundPk: round.pk, robotId: robot.robotId }))
      throw httpError({ status: 409, code: 'duplicate_contribution', message: 'this robot already contributed to the round' });
    if (round.contributionCount >= round.maxContributors)
      throw httpError({ status: 409, code: 'round_full', message: `the round already has its maximum of ${round.maxContributors} contributions` });

    let epsilonAfter: number | null = null;
    if (round.privacy.mode !== 'off') {
      const spent = (await robotPrivacyHistory({ db: deps.db, orgId: robot.orgId, robotId: robot.robotId })).filter((p) => p.mode !== 'off');
      epsilonAfter = checkBudget({ spentRounds: spent, next: round.privacy, budget: round.privacy.epsilonBudget, delta: round.privacy.delta }).epsilonAfter;
    }

    const key = await getHeKey({ db: deps.db, orgId: robot.orgId, version: round.keyVersion });
    if (!key) throw new Error(`HE key version ${round.keyVersion} of round ${round.roundId} is missing`);
    const paramSet = getParamSet({ id: key.paramSetId });
    if (opened.ciphertexts.length !== round.ciphertextCount * paramSet.ciphertextBytes)
      throw new IntegrityError(
        `update package carries ${opened.ciphertexts.length} ciphertext bytes; the round needs ${round.ciphertextCount} x ${paramSet.ciphertextBytes}`,
      );
    let accumulator: Uint8Array | null = null;
    if (round.aggregateSha256 !== null) {
      accumulator = await deps.blobs.get(round.aggregateSha256);
      if (!accumulator) throw new Error(`aggregate blob ${round.aggregateSha256} of round ${round.roundId} is missing`);
    }
    const aggregationStart = performance.now();
    const sum = sumCiphertextBlocks({ accumulator, addend: opened.ciphertexts, parmsId: key.parmsId, paramSet });
    deps.metrics.aggregationDuration.observe((performance.now() - aggregationStart) / 1000);

    // Durable before the database names them (the blob store acknowledges a put once stored); the two
    // writes are independent, so they overlap.
    const [packageSha256, aggregateSha256] = await Promise.all([deps.blobs.put(bytes), deps.blobs.put(sum)]);
    failpoint('contribution.after_blobs');
    const contributionId = newId({ prefix: 'ctb' });
    const { count } = await recordContribution({
      db: deps.db,
      round,
      robotId: robot.robotId,
      contributionId,
      ledgerId: newId({ prefix: 'dpl' }),
      packageSha256,
      packageBytes: bytes.length,
      packageFingerprint: opened.fingerprint,
      packageSignature: opened.signature,
      ciphertextSha256: pkg.ciphertextSha256,
      aggregateSha256,
      epsilonAfter,
      now,
      idempotency: options.idempotency,
    });
    failpoint('contribution.after_commit');
    return { contributionId, count, epsilonAfter };
  }
}
