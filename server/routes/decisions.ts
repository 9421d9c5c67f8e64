// Round decisions: POST /rounds/:id/rejection (an officer-signed rejection record) and
// GET /rounds/:id/decision (undecided, released or rejected, and by whom).
//
// A finalized round is decided once: by its release (POST /releases) or by a rejection. Whichever
// commits second gets 409 `round_decided` with the first decision in `details`, which the PWA shows as a
// conflict instead of losing the decision it signed offline. The rejection takes an `Idempotency-Key`
// like POST /releases (server/http/idempotency.ts): a stored answer is replayed before the body is
// validated. OpenAPI routes (@hono/zod-openapi): the schemas below validate the requests and document
// them and the answers in GET /openapi.json (server/http/openapi-route.ts).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { IntegrityError } from '../../core/errors.ts';
import { equalBytes } from '../../core/bytes.ts';
import { openRoundRejection } from '../../core/records/round-rejection.ts';
import { createRejection, getRoundDecision, type RoundDecisionView } from '../db/decisions.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, b64, base64Field, hex, idParam, limitBody } from '../http/body.ts';
import { httpError } from '../http/errors.ts';
import { AUTH_ERRORS, BODY_ERRORS, IdempotencyHeaders, createOpenApiRoutes, errorResponses, idempotencyOf, idempotent, jsonBody, jsonResponse, security } from '../http/openapi-route.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { trustedOfficerKeys } from './he-keys.ts';
import { loadRound } from './rounds.ts';

export const RejectionBody = z
  .strictObject({ record: base64Field({ name: 'record', maxLength: 16 * 1024 }).openapi({ description: 'base64 officer-signed round rejection (core/records/round-rejection.ts)' }) })
  .openapi('RoundRejectionRequest');

const Rejected = z
  .object({ roundId: z.string(), state: z.literal('rejected'), fingerprint: z.string(), reason: z.string(), decidedAt: z.number() })
  .openapi('RoundRejected');
const Decision = z
  .union([
    z.object({ roundId: z.string(), state: z.literal('undecided') }),
    z.object({
      roundId: z.string(),
      state: z.enum(['released', 'rejected']),
      releaseId: z.string().nullable(),
      reason: z.string().nullable(),
      record: z.string().nullable().openapi({ description: 'base64 signed rejection (null for a release)' }),
      fingerprint: z.string().nullable(),
      decidedBy: z.string(),
      decidedAt: z.number(),
    }),
  ])
  .openapi('RoundDecision');
const RoundParams = z.object({ id: idParam });

function decisionJson(roundId: string, d: RoundDecisionView | null) {
  if (!d) return { roundId, state: 'undecided' as const };
  return {
    roundId,
    state: d.kind === 'release' ? ('released' as const) : ('rejected' as const),
    releaseId: d.releaseId,
    reason: d.reason,
    record: d.record ? b64(d.record) : null,
    fingerprint: d.fingerprint ? hex(d.fingerprint) : null,
    decidedBy: d.createdBy,
    decidedAt: d.createdAt,
  };
}

export function createDecisionRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/rounds/{id}/rejection',
      tags: ['decisions'],
      summary: 'Officer-signed rejection of a finalized round',
      description: 'Who may call it: officer (person). Takes an Idempotency-Key.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } }), idempotent({ deps })] as const,
      request: { params: RoundParams, headers: IdempotencyHeaders, body: jsonBody(RejectionBody) },
      responses: {
        201: jsonResponse('rejected (a replay carries Idempotent-Replayed: true)', Rejected),
        ...errorResponses({
          ...AUTH_ERRORS,
          ...BODY_ERRORS,
          400: '`malformed`, or `integrity`: the rejection names another organization, round, fleet or config',
          401: 'not authenticated, or the rejection is not signed by an officer key of the organization',
          404: 'round not found',
          409: '`round_not_finalized`, or `round_decided` with the first decision in details',
          422: '`idempotency_key_reused`: the key came with another request',
        }),
      },
    }),
    async (c) => {
      const orgId = c.get('principal').orgId;
      const idempotency = idempotencyOf(c);
      const body = c.req.valid('json');
      const opened = openRoundRejection({ bytes: body.record, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
      const r = opened.record;
      const round = await loadRound({ deps, c });
      if (r.orgId !== orgId || r.roundId !== round.roundId || r.fleetId !== round.fleetId)
        throw new IntegrityError('the rejection names another organization, round or fleet');
      if (!equalBytes(r.roundConfigFingerprint, round.configFingerprint)) throw new IntegrityError('the rejection names another round config');
      if (round.state !== 'finalized')
        throw httpError({ status: 409, code: 'round_not_finalized', message: `the round is ${round.state}; only a finalized round is released or rejected` });
      const now = deps.now();
      const response = { roundId: round.roundId, state: 'rejected' as const, fingerprint: hex(opened.fingerprint), reason: r.reason, decidedAt: now };
      await createRejection({
        db: deps.db,
        orgId,
        actor: actorOf(c),
        id: newId({ prefix: 'dec' }),
        roundPk: round.pk,
        roundId: round.roundId,
        fleetId: round.fleetId,
        record: body.record,
        fingerprint: opened.fingerprint,
        reason: r.reason,
        now,
        idempotency: idempotency && { ...idempotency, response: JSON.stringify(response) },
      });
      return c.json(response, 201);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/rounds/{id}/decision',
      tags: ['decisions'],
      summary: 'The round’s decision: undecided, released or rejected, and by whom',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      request: { params: RoundParams },
      responses: { 200: jsonResponse('the decision', Decision), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'round not found' }) },
    }),
    async (c) => {
      const round = await loadRound({ deps, c });
      return c.json(decisionJson(round.roundId, await getRoundDecision({ db: deps.db, orgId: round.orgId, roundPk: round.pk })), 200);
    },
  );

  return routes;
}
