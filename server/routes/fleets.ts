// Fleets: POST /fleets, GET /fleets, GET /fleets/:id — each with its operating envelope (core/envelope.ts).
import { Hono } from 'hono';
import { z } from 'zod';
import { NotFoundError } from '../../core/errors.ts';
import { envelopeOverrideSchema, resolveEnvelope } from '../../core/envelope.ts';
import { createFleet, getFleet, listFleets } from '../db/fleets.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, idParam, limitBody, readJson } from '../http/body.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const CreateFleetBody = z.strictObject({
  name: z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, 'letters, digits, space and . _ - only'),
  envelope: envelopeOverrideSchema.optional(),
  dpEpsilonBudget: z.number().positive().max(1e6).nullable().optional(),
});

export function createFleetRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();

  routes.post('/fleets', limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['admin', 'officer'] } }), async (c) => {
    const body = await readJson(c, CreateFleetBody);
    const envelope = resolveEnvelope({ override: body.envelope });
    const fleet = await createFleet({
      db: deps.db,
      orgId: c.get('principal').orgId,
      actor: actorOf(c),
      id: newId({ prefix: 'flt' }),
      name: body.name,
      envelope,
      dpEpsilonBudget: body.dpEpsilonBudget ?? null,
      now: deps.now(),
    });
    return c.json(fleet, 201);
  });

  routes.get('/fleets', requireAuth({ deps, person: true }), async (c) => {
    return c.json(await listFleets({ db: deps.db, orgId: c.get('principal').orgId }));
  });

  routes.get('/fleets/:id', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const principal = c.get('principal');
    const fleetId = idParam.parse(c.req.param('id'));
    // A robot sees only its own fleet.
    const fleet = principal.kind === 'robot' && principal.fleetId !== fleetId ? null : await getFleet({ db: deps.db, orgId: principal.orgId, fleetId });
    if (!fleet) throw new NotFoundError('fleet not found');
    return c.json(fleet);
  });

  return routes;
}
