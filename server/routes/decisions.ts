// Round decisions: POST /rounds/:id/rejection (an officer-signed rejection record) and
// GET /rounds/:id/decision (undecided, released or rejected, and by whom).
//
// A finalized round is decided once: by its release (POST /releases) or by a rejection. Whichever
// commits second gets 409 `round_decided` with the first decision in `details`, which the PWA shows as a
// conflict instead of losing the decision it signed offline. The rejection takes an `Idempotency-Key`
// like POST /releases (server/http/idempotency.ts).
import { Hono } from 'hono';
import { z } from 'zod';
import { IntegrityError } from '../../core/errors.ts';
import { equalBytes } from '../../core/bytes.ts';
import { openRoundRejection } from '../../core/records/round-rejection.ts';
import { createRejection, getRoundDecision, type RoundDecisionView } from '../db/decisions.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, b64, base64Field, hex, limitBody, readJson } from '../http/body.ts';
import { httpError } from '../http/errors.ts';
import { runIdempotent } from '../http/idempotency.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { trustedOfficerKeys } from './he-keys.ts';
import { loadRound } from './rounds.ts';

export const RejectionBody = z.strictObject({ record: base64Field({ name: 'record', maxLength: 16 * 1024 }) });

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

export function createDecisionRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();

  routes.post('/rounds/:id/rejection', limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['officer'] } }), async (c) => {
    const orgId = c.get('principal').orgId;
    return runIdempotent({
      deps,
      c,
      orgId,
      handle: async (idempotency) => {
        const body = await readJson(c, RejectionBody);
        const opened = openRoundRejection({ bytes: body.record, trustedKeys: await trustedOfficerKeys({ deps, orgId }) });
        const r = opened.record;
        const round = await loadRound({ deps, c });
        if (r.orgId !== orgId || r.roundId !== round.roundId || r.fleetId !== round.fleetId)
          throw new IntegrityError('the rejection names another organization, round or fleet');
        if (!equalBytes(r.roundConfigFingerprint, round.configFingerprint)) throw new IntegrityError('the rejection names another round config');
        if (round.state !== 'finalized')
          throw httpError({ status: 409, code: 'round_not_finalized', message: `the round is ${round.state}; only a finalized round is released or rejected` });
        const now = deps.now();
        const response = { roundId: round.roundId, state: 'rejected', fingerprint: hex(opened.fingerprint), reason: r.reason, decidedAt: now };
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
    });
  });

  routes.get('/rounds/:id/decision', requireAuth({ deps, person: true }), async (c) => {
    const round = await loadRound({ deps, c });
    return c.json(decisionJson(round.roundId, await getRoundDecision({ db: deps.db, orgId: round.orgId, roundPk: round.pk })));
  });

  return routes;
}
