// Contributions: POST /rounds/:id/contributions (robot-signed update package, application/octet-stream)
// and GET /rounds/:id/contributions/:cid/package (the stored package, so the officer can recompute the sum).
//
// Checks in order, each with its status: package parse 400 / signature with the robot's registered key
// 401 / package robot = signing robot 401 / robot in the round's fleet 403 `wrong_fleet` / round open 409
// `round_closed` / package fields match the round 400 `integrity` / envelope 413 or 422 / first
// contribution of this robot 409 `duplicate_contribution` / room under maxContributors 409 `round_full`
// / the robot's DP budget 403 / ciphertexts valid and summable 400. Then the package and the new
// aggregate are written durably to the blob store, and one transaction records the contribution, the DP
// ledger row, the round's new aggregate and the audit row — only then the 201. Contributions to one round
// queue in this process and are folded by group commit: everything queued is checked, added, written
// and committed as one batch under the per-round lock (one aggregate write, one transaction), and the
// commit is conditional on the round's aggregate version, redone on conflict
// (server/aggregation/contribution.ts), so no add is lost across instances.
//
// Operations (docs/OPERATIONS.md): the upload's bytes are admitted against TG_MAX_INFLIGHT_UPLOAD_BYTES
// before the body is read and the contribution against TG_MAX_PENDING_AGGREGATIONS before it queues
// for the round lock (503 `overloaded` + Retry-After beyond either). An `Idempotency-Key` header (robot
// scoped) makes a retry safe: the key is committed with the contribution, and a retry of the same body
// under it gets the original 201 (header `Idempotent-Replayed: true`), a different body 422.
// Crash safety: blobs are written before the transaction that names them, so after a crash the
// database is the truth — a blob no row names is garbage, and a contribution without its commit was
// never acknowledged.
import { createHash } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { NotFoundError, OversizeError, SignatureInvalidError } from '../../core/errors.ts';
import { DEFAULT_ENVELOPE } from '../../core/envelope.ts';
import { ROBOT_HEADERS } from '../../core/records/request-signature.ts';
import { getFleet } from '../db/fleets.ts';
import { getRobotById } from '../db/robots.ts';
import { getContribution, getIdempotencyRecord, getRound, idempotencyKeyReused } from '../db/rounds.ts';
import { requireAuth, robotOf } from '../http/auth.ts';
import { KiB, idParam, limitBody, readBodyFromSocket } from '../http/body.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { loadRound } from './rounds.ts';
import { aggregateContribution } from '../aggregation/contribution.ts';
import { openUpdatePackageInWorker } from '../aggregation/verify-pool.ts';
import { IDEMPOTENT_REPLAY_HEADER, contributionMetrics } from '../metrics/contributions.ts';

/** Bytes of an update package around its ciphertexts: signed metadata (<= 4 KiB), key, signature, framing. */
export const PACKAGE_OVERHEAD_BYTES = 16 * KiB;

/**
 * The body limit of a contribution: the envelope's updateBytes.max of the round's fleet plus the
 * package overhead. The round is looked up through the (not yet verified) robot header only to size
 * the limit; authentication follows. Unknown robot or round: the default envelope's limit.
 */
async function contributionLimit(deps: AppDeps, c: Context): Promise<number> {
  const fallback = DEFAULT_ENVELOPE.updateBytes.max + PACKAGE_OVERHEAD_BYTES;
  const robotId = c.req.header(ROBOT_HEADERS.robot);
  const roundId = idParam.safeParse(c.req.param('id'));
  if (!robotId || robotId.length > 64 || !roundId.success) return fallback;
  const robot = await getRobotById({ db: deps.db, robotId });
  if (!robot) return fallback;
  const round = await getRound({ db: deps.db, orgId: robot.orgId, roundId: roundId.data });
  if (!round) return fallback;
  const fleet = await getFleet({ db: deps.db, orgId: robot.orgId, fleetId: round.fleetId });
  return (fleet?.envelope.updateBytes.max ?? DEFAULT_ENVELOPE.updateBytes.max) + PACKAGE_OVERHEAD_BYTES;
}

/** The header of a retry-safe upload, and what a key may look like (visible ASCII, as in RFC 9110 tokens). */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

function idempotencyKeyOf(c: Context): string | null {
  const key = c.req.header(IDEMPOTENCY_KEY_HEADER);
  if (key === undefined) return null;
  if (!IDEMPOTENCY_KEY.test(key)) throw new TypeError('"Idempotency-Key" expected 1..255 visible ASCII characters');
  return key;
}

/**
 * Admission of an upload's bytes (server/operations/admission.ts), then the body limit. The bytes are
 * reserved from Content-Length before the body is read — a body without one reserves the route's whole
 * limit — and released once the answer is ready.
 */
function admitUpload(deps: AppDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const lengthText = c.req.header('content-length');
    const declared = lengthText !== undefined && /^[0-9]{1,15}$/.test(lengthText) ? Number(lengthText) : null;
    deps.admission.refuseIfDraining();
    const limit = await contributionLimit(deps, c);
    if (declared !== null && declared > limit) throw new OversizeError(`request body exceeds the limit of ${limit} bytes for this route`, { limit });
    const release = deps.admission.reserveUpload(declared ?? limit);
    try {
      // A declared length within the limit: read straight from the socket (server/http/body.ts); else
      // (chunked, or no Node request) the streaming limit and the adapter's body reading.
      const direct = declared !== null ? await readBodyFromSocket(c) : null;
      if (direct) {
        c.set('preReadBody', direct);
        await next();
      } else await limitBody({ maxSize: limit })(c, next);
    } finally {
      release();
    }
  };
}

export function createContributionRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();

  routes.post(
    '/rounds/:id/contributions',
    contributionMetrics({ metrics: deps.metrics }),
    admitUpload(deps),
    requireAuth({ deps, robot: true, robotBudget: 'contributions' }),
    async (c) => {
      const robot = robotOf(c);
      const contentType = c.req.header('content-type');
      if (contentType !== undefined && !/^application\/octet-stream\b/i.test(contentType))
        throw httpError({ status: 415, code: 'unsupported_media_type', message: 'an update package is sent as application/octet-stream' });
      const idempotencyKey = idempotencyKeyOf(c);
      const requestSha256 = createHash('sha256').update(c.get('rawBody')).digest('hex');
      // Parse + ML-DSA-44 + ciphertext SHA-256 on a worker thread (server/aggregation/verify-pool.ts);
      // the body moves there and back, so only the returned `bytes` are used from here on.
      const verified = await openUpdatePackageInWorker({ bytes: c.get('rawBody'), robotPublicKey: robot.robot.dsaPublicKey });
      const bytes = verified.bytes;
      c.set('rawBody', bytes);
      if (verified.error) throw verified.error;
      const opened = verified.opened;
      const pkg = opened.package;
      if (pkg.robotId !== robot.robotId) throw new SignatureInvalidError('update package names another robot than the one that signed the request');

      const roundId = idParam.parse(c.req.param('id'));
      const found = await getRound({ db: deps.db, orgId: robot.orgId, roundId });
      if (!found) throw new NotFoundError('round not found');
      if (found.fleetId !== robot.fleetId) throw httpError({ status: 403, code: 'wrong_fleet', message: 'the robot is not enrolled in the fleet of this round' });

      // A retry under a committed key gets its original answer, whatever happened to the round since.
      const replay = async () => {
        if (idempotencyKey === null) return null;
        const record = await getIdempotencyRecord({ db: deps.db, robotId: robot.robotId, key: idempotencyKey });
        if (!record) return null;
        if (record.requestSha256 !== requestSha256 || record.roundPk !== found.pk) throw idempotencyKeyReused();
        return record.response;
      };
      const early = await replay();
      if (early) return c.json(early, 201, { [IDEMPOTENT_REPLAY_HEADER]: 'true' });

      const releaseSlot = deps.admission.reserveAggregation();
      let outcome: Awaited<ReturnType<typeof aggregateContribution>>;
      try {
        // Queued for the round's next group commit (server/aggregation/contribution.ts): checked against
        // the round under its lock, added, written durably and committed with the other queued packages.
        outcome = await aggregateContribution({
          deps,
          robot,
          roundPk: found.pk,
          roundId,
          opened,
          bytes,
          idempotency: idempotencyKey === null ? undefined : { key: idempotencyKey, requestSha256 },
          replay,
        });
      } finally {
        releaseSlot();
      }
      const { result, replayed } = outcome;
      return c.json(result, 201, replayed ? { [IDEMPOTENT_REPLAY_HEADER]: 'true' } : {});
    },
  );

  routes.get('/rounds/:id/contributions/:cid/package', requireAuth({ deps, person: { roles: ['officer'] } }), async (c) => {
    const round = await loadRound({ deps, c });
    const contributionId = idParam.parse(c.req.param('cid'));
    const contribution = await getContribution({ db: deps.db, orgId: round.orgId, roundPk: round.pk, contributionId });
    if (!contribution) throw new NotFoundError('contribution not found');
    const bytes = await deps.blobs.get(contribution.packageSha256);
    if (!bytes) throw new Error(`package blob ${contribution.packageSha256} is missing`);
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/octet-stream', 'x-tg-sha256': contribution.packageSha256 });
  });

  return routes;
}
