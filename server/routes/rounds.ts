// Rounds: POST /rounds (open, officer-signed config), GET /rounds, GET /rounds/:id, POST /rounds/:id/close,
// GET /rounds/:id/aggregate (manifest), GET /rounds/:id/aggregate/ciphertext, GET /rounds/:id/contributions.
//
// Opening checks, in order: signature by an officer key of the org, org, fleet, HE key version (exists,
// current, fingerprint), packing (ciphertextCount), the fleet envelope, DP parameters, the fleet DP
// budget. A round past its deadline settles on the next read or contribution attempt: `finalized` when
// its quorum is met, `closed` otherwise. Only a finalized round's aggregate is served.
// OpenAPI routes (@hono/zod-openapi): the schemas below validate the requests and document them and
// the answers in GET /openapi.json (server/http/openapi-route.ts).
import type { Context } from 'hono';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { BudgetExhaustedError, EnvelopeViolationError, IntegrityError, NotFoundError, QuorumNotMetError } from '../../core/errors.ts';
import { equalBytes, hexToBytes } from '../../core/bytes.ts';
import { openRoundConfig } from '../../core/records/round-config.ts';
import { encodeContributionManifest } from '../../core/records/contribution-manifest.ts';
import { ciphertextCount, getParamSet, packingLayout } from '../../core/he/params.ts';
import { checkRoundAgainstEnvelope } from '../../core/envelope.ts';
import { privacySpent, validateRoundPrivacy, type RoundPrivacyParams } from '../../core/dp/round-privacy.ts';
import { getFleet } from '../db/fleets.ts';
import { getCurrentHeKey, getHeKey } from '../db/he-keys.ts';
import {
  ROUND_STATES,
  createRound,
  fleetPrivacyHistory,
  getRound,
  listRoundContributions,
  listRounds,
  settleRound,
  type RoundState,
  type RoundView,
} from '../db/rounds.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { MiB, SMALL_JSON_LIMIT, b64, base64Field, hex, idParam, limitBody } from '../http/body.ts';
import { AUTH_ERRORS, BODY_ERRORS, binaryContent, createOpenApiRoutes, errorResponses, jsonBody, jsonResponse, security } from '../http/openapi-route.ts';
import { httpError } from '../http/errors.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { refuseRevokedKey, trustedOfficerKeys } from './he-keys.ts';

/** Round configs may list up to 8192 tensors (records allow 4 MiB); base64 adds a third. */
const ROUND_BODY_LIMIT = 6 * MiB;
export const OpenRoundBody = z
  .strictObject({ config: base64Field({ name: 'config', maxLength: 4 * MiB }).openapi({ description: 'base64 officer-signed round config (core/records/round-config.ts)' }) })
  .openapi('RoundOpening');

export const RoundSchema = z
  .object({
    roundId: z.string(),
    fleetId: z.string(),
    state: z.enum(ROUND_STATES as [RoundState, ...RoundState[]]),
    config: z.string().openapi({ description: 'base64 signed round config' }),
    configFingerprint: z.string().openapi({ description: 'hex' }),
    keyVersion: z.number().int(),
    quorum: z.number().int(),
    maxContributors: z.number().int(),
    deadline: z.number().openapi({ description: 'ms since the epoch; 0 = none' }),
    contributions: z.number().int(),
    aggregateSha256: z.string().nullable(),
    createdAt: z.number(),
    finalizedAt: z.number().nullable(),
  })
  .openapi('Round');
const RoundParams = z.object({ id: idParam });
const AggregateSchema = z
  .object({
    roundId: z.string(),
    manifest: z.string().openapi({ description: 'base64 contribution manifest (core/records/contribution-manifest.ts)' }),
    aggregateSha256: z.string(),
    contributions: z.number().int(),
  })
  .openapi('RoundAggregate');
const ContributionEntry = z
  .object({
    id: z.string(),
    seq: z.number().int(),
    robotId: z.string(),
    packageSha256: z.string(),
    packageBytes: z.number().int(),
    packageFingerprint: z.string(),
    ciphertextSha256: z.string(),
    aggregateSha256: z.string().nullable(),
    createdAt: z.number(),
  })
  .openapi('RoundContribution');

export function roundJson(r: RoundView) {
  return {
    roundId: r.roundId,
    fleetId: r.fleetId,
    state: r.state,
    config: b64(r.config),
    configFingerprint: hex(r.configFingerprint),
    keyVersion: r.keyVersion,
    quorum: r.quorum,
    maxContributors: r.maxContributors,
    deadline: r.deadline,
    contributions: r.contributionCount,
    aggregateSha256: r.aggregateSha256,
    createdAt: r.createdAt,
    finalizedAt: r.finalizedAt,
  };
}

/** The RoundPrivacyParams of a round config (the shape core/dp/round-privacy.ts accounts). */
export function privacyParamsOf(config: {
  dp: { mode: RoundPrivacyParams['mode']; clip: number; noiseMultiplier: number; delta: number; epsilonBudget: number };
  quorum: number;
  valueCount: number;
  quant: { scale: number };
}): RoundPrivacyParams {
  return { ...config.dp, quorum: config.quorum, dimension: config.valueCount, scale: config.quant.scale };
}

/**
 * Settles a round whose deadline has passed (finalized if quorum met, closed otherwise), under the
 * round's lock so it cannot interleave with a contribution. Callers that already hold the lock pass
 * `locked: true`.
 */
export async function settleIfDue(options: { deps: AppDeps; round: RoundView; locked?: boolean }): Promise<RoundView> {
  const { deps } = options;
  const due = (r: RoundView) => r.state === 'open' && r.deadline !== 0 && deps.now() >= r.deadline;
  if (!due(options.round)) return options.round;
  const task = async () => {
    const fresh = options.locked ? options.round : await getRound({ db: deps.db, orgId: options.round.orgId, roundId: options.round.roundId });
    if (!fresh || !due(fresh)) return fresh ?? options.round;
    return settleRound({ db: deps.db, round: fresh, actor: { type: 'system', id: 'deadline' }, reason: 'deadline', now: deps.now() });
  };
  return options.locked ? task() : deps.roundLocks.run({ key: options.round.pk, task });
}

/** The round named in the path, in the caller's org (and, for a robot, its fleet); 404 otherwise. */
export async function loadRound(options: { deps: AppDeps; c: Context<AppEnv> }): Promise<RoundView> {
  const { deps, c } = options;
  const principal = c.get('principal');
  const roundId = idParam.parse(c.req.param('id'));
  const round = await getRound({ db: deps.db, orgId: principal.orgId, roundId });
  if (!round || (principal.kind === 'robot' && principal.fleetId !== round.fleetId)) throw new NotFoundError('round not found');
  return settleIfDue({ deps, round });
}

export function createRoundRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();
  const reviewers = { roles: ['officer', 'admin', 'auditor'] as const };

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/rounds',
      tags: ['rounds'],
      summary: 'Open a round (officer-signed config)',
      description: 'Who may call it: officer (person).',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: ROUND_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { body: jsonBody(OpenRoundBody) },
      responses: {
        201: jsonResponse('the open round', RoundSchema),
        ...errorResponses({
          ...AUTH_ERRORS,
          ...BODY_ERRORS,
          400: '`malformed`, or `integrity`: another organization, an unknown or mismatched HE key, a ciphertextCount that does not match the packing',
          401: 'not authenticated, or the config is not signed by an officer key of the organization',
          403: '`forbidden` (role), or `dp_budget_exhausted`: the fleet DP budget would be exceeded',
          404: 'the config names an unknown fleet',
          409: '`key_revoked`, `stale_key_version`, or the round id exists',
          422: '`envelope_violation`: outside the fleet envelope',
        }),
      },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const body = c.req.valid('json');
      const now = deps.now();
      const opened = openRoundConfig({ bytes: body.config, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
      const config = opened.record;
      if (config.orgId !== orgId) throw new IntegrityError('round config names another organization', { orgId: config.orgId });
      const fleet = await getFleet({ db: deps.db, orgId, fleetId: config.fleetId });
      if (!fleet) throw new NotFoundError(`fleet ${JSON.stringify(config.fleetId)} not found`);

      const key = await getHeKey({ db: deps.db, orgId, version: config.keyVersion });
      if (!key) throw new IntegrityError(`round config names HE key version ${config.keyVersion}, which does not exist`);
      await refuseRevokedKey({ deps, orgId, version: key.version }); // 409 key_revoked
      const current = await getCurrentHeKey({ db: deps.db, orgId });
      if (current!.version !== key.version)
        throw httpError({ status: 409, code: 'stale_key_version', message: `round config names HE key version ${key.version}; the current version is ${current!.version}` });
      if (!equalBytes(key.fingerprint, config.heKeyFingerprint)) throw new IntegrityError('round config heKeyFingerprint does not match the stored key record');

      const paramSet = getParamSet({ id: key.paramSetId });
      if (config.maxContributors > paramSet.maxContributors)
        throw new RangeError(`"maxContributors" expected at most ${paramSet.maxContributors} for ${paramSet.id}, got ${config.maxContributors}`);
      const layout = packingLayout({ fieldBits: config.quant.fieldBits, maxContributors: config.maxContributors, encoding: config.quant.encoding, paramSet });
      const expectedCiphertexts = ciphertextCount({ valueCount: config.valueCount, layout, paramSet });
      if (config.ciphertextCount !== expectedCiphertexts)
        throw new IntegrityError(`round config ciphertextCount ${config.ciphertextCount} does not match its packing (${expectedCiphertexts})`);

      if (!fleet.envelope.serverOperations.includes('sum'))
        throw new EnvelopeViolationError('the fleet envelope does not allow the server to sum ciphertexts', { limit: 'serverOperations' });
      checkRoundAgainstEnvelope({
        envelope: fleet.envelope,
        valueCount: config.valueCount,
        updateBytes: config.ciphertextCount * paramSet.ciphertextBytes,
        deadline: config.deadline,
        openedAt: now,
      });

      const privacy = privacyParamsOf(config);
      validateRoundPrivacy({ params: privacy });
      const round = await createRound({
        db: deps.db,
        orgId,
        actor: actorOf(c),
        pk: newId({ prefix: 'rnd' }),
        roundId: config.roundId,
        fleetId: config.fleetId,
        config: body.config,
        configFingerprint: opened.fingerprint,
        keyVersion: config.keyVersion,
        quorum: config.quorum,
        maxContributors: config.maxContributors,
        deadline: config.deadline,
        valueCount: config.valueCount,
        ciphertextCount: config.ciphertextCount,
        privacy,
        now,
        // Inside the transaction, so two rounds opened at once cannot both fit under the budget.
        precheck: async (tx) => {
          if (fleet.dpEpsilonBudget === null || privacy.mode === 'off') return;
          const history = (await fleetPrivacyHistory({ db: tx, orgId, fleetId: fleet.id })).filter((p) => p.mode !== 'off');
          const { epsilon } = privacySpent({ rounds: [...history, privacy], delta: privacy.delta });
          if (!(epsilon <= fleet.dpEpsilonBudget))
            throw new BudgetExhaustedError(
              `fleet DP budget exhausted: epsilon would reach ${epsilon} over ${history.length + 1} DP rounds, above the fleet budget ${fleet.dpEpsilonBudget}`,
              { epsilonAfter: epsilon, budget: fleet.dpEpsilonBudget },
            );
        },
      });
      return c.json(roundJson(round), 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/rounds',
      tags: ['rounds'],
      summary: 'List rounds',
      description: 'Who may call it: any person of the organization; robots (their own fleet only).',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      request: { query: z.object({ fleet: idParam.optional(), state: RoundSchema.shape.state.optional() }) },
      responses: { 200: jsonResponse('rounds', z.array(RoundSchema)), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet not found (or another fleet, for a robot)' }) },
    }),
    async (c) => {
      const principal = c.get('principal');
      const query = c.req.valid('query');
      let fleetId = query.fleet;
      if (principal.kind === 'robot') {
        if (fleetId !== undefined && fleetId !== principal.fleetId) throw new NotFoundError('fleet not found');
        fleetId = principal.fleetId;
      } else if (fleetId !== undefined && !(await getFleet({ db: deps.db, orgId: principal.orgId, fleetId }))) {
        throw new NotFoundError('fleet not found');
      }
      // Settle open rounds past their deadline first, so the state filter sees current states.
      for (const r of await listRounds({ db: deps.db, orgId: principal.orgId, fleetId, state: 'open' })) await settleIfDue({ deps, round: r });
      const rounds = await listRounds({ db: deps.db, orgId: principal.orgId, fleetId, state: query.state });
      return c.json(rounds.map(roundJson), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/rounds/{id}',
      tags: ['rounds'],
      summary: 'One round',
      description: 'Who may call it: any person of the organization; robots (their own fleet only).',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      request: { params: RoundParams },
      responses: { 200: jsonResponse('the round (settled first when its deadline passed)', RoundSchema), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'round not found' }) },
    }),
    async (c) => c.json(roundJson(await loadRound({ deps, c })), 200),
  );

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/rounds/{id}/close',
      tags: ['rounds'],
      summary: 'Close a round: finalize it when its quorum is met',
      description: 'Who may call it: officer (person). A request body, if any, is ignored.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } })] as const,
      request: { params: RoundParams },
      responses: {
        200: jsonResponse('the finalized round', RoundSchema),
        ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'round not found', 409: '`round_closed` (closed below its quorum) or `quorum_not_met`', 413: true }),
      },
    }),
    async (c) => {
      const round = await loadRound({ deps, c });
      const settled = await deps.roundLocks.run({
        key: round.pk,
        task: async () => {
          const fresh = (await getRound({ db: deps.db, orgId: round.orgId, roundId: round.roundId }))!;
          if (fresh.state === 'finalized') return fresh;
          if (fresh.state === 'closed') throw httpError({ status: 409, code: 'round_closed', message: 'the round closed below its quorum' });
          if (fresh.contributionCount < fresh.quorum)
            throw new QuorumNotMetError(`the round has ${fresh.contributionCount} contributions, its quorum is ${fresh.quorum}`, {
              contributions: fresh.contributionCount,
              quorum: fresh.quorum,
            });
          return settleRound({ db: deps.db, round: fresh, actor: actorOf(c), reason: 'officer', now: deps.now() });
        },
      });
      return c.json(roundJson(settled), 200);
    },
  );

  const requireFinalized = (round: RoundView) => {
    if (round.state !== 'finalized' || round.aggregateSha256 === null)
      throw httpError({ status: 409, code: 'round_not_finalized', message: `the round is ${round.state}; its aggregate is served only once finalized` });
    return round.aggregateSha256;
  };

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/rounds/{id}/aggregate',
      tags: ['rounds'],
      summary: 'Aggregate metadata and contribution manifest of a finalized round',
      description: 'Who may call it: officer, admin, auditor.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: reviewers })] as const,
      request: { params: RoundParams },
      responses: { 200: jsonResponse('the aggregate', AggregateSchema), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'round not found', 409: '`round_not_finalized`' }) },
    }),
    async (c) => {
      const round = await loadRound({ deps, c });
      const aggregateSha256 = requireFinalized(round);
      const entries = await listRoundContributions({ db: deps.db, orgId: round.orgId, roundPk: round.pk });
      const manifest = encodeContributionManifest({
        manifest: {
          roundId: round.roundId,
          roundConfigFingerprint: round.configFingerprint,
          aggregateSha256: hexToBytes(aggregateSha256),
          entries: entries.map((e) => ({
            robotId: e.robotId,
            enrollmentId: e.enrollmentId,
            dsaPublicKey: e.dsaPublicKey,
            attestation: e.attestation,
            packageFingerprint: e.packageFingerprint,
            packageSignature: e.packageSignature,
            ciphertextSha256: e.ciphertextSha256,
          })),
        },
      });
      return c.json({ roundId: round.roundId, manifest: b64(manifest), aggregateSha256, contributions: entries.length }, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/rounds/{id}/aggregate/ciphertext',
      tags: ['rounds'],
      summary: 'The aggregate ciphertext of a finalized round',
      description: 'Who may call it: officer, admin, auditor.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: reviewers })] as const,
      request: { params: RoundParams },
      responses: {
        200: { description: 'the aggregate ciphertext bytes', headers: z.object({ 'x-tg-sha256': z.string().openapi({ description: 'hex SHA-256 of the bytes' }) }), content: binaryContent },
        ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'round not found', 409: '`round_not_finalized`' }),
      },
    }),
    async (c) => {
      const round = await loadRound({ deps, c });
      const aggregateSha256 = requireFinalized(round);
      const bytes = await deps.blobs.get(aggregateSha256);
      if (!bytes) throw new Error(`aggregate blob ${aggregateSha256} of round ${round.roundId} is missing from the blob store`);
      return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/octet-stream', 'x-tg-sha256': aggregateSha256 });
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/rounds/{id}/contributions',
      tags: ['rounds'],
      summary: 'Contributions of a round',
      description: 'Who may call it: officer, admin, auditor.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: reviewers })] as const,
      request: { params: RoundParams },
      responses: { 200: jsonResponse('contributions in write order', z.array(ContributionEntry)), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'round not found' }) },
    }),
    async (c) => {
      const round = await loadRound({ deps, c });
      const entries = await listRoundContributions({ db: deps.db, orgId: round.orgId, roundPk: round.pk });
      return c.json(
        entries.map((e) => ({
          id: e.id,
          seq: e.seq,
          robotId: e.robotId,
          packageSha256: e.packageSha256,
          packageBytes: e.packageBytes,
          packageFingerprint: hex(e.packageFingerprint),
          ciphertextSha256: hex(e.ciphertextSha256),
          aggregateSha256: e.aggregateSha256,
          createdAt: e.createdAt,
        })),
        200,
      );
    },
  );

  return routes;
}
