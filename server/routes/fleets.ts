// Fleets: POST /fleets, GET /fleets, GET /fleets/:id — each with its operating envelope (core/envelope.ts).
// OpenAPI routes (@hono/zod-openapi): the schemas below validate the requests and document them and
// the answers in GET /openapi.json (server/http/openapi-route.ts).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { NotFoundError } from '../../core/errors.ts';
import { envelopeOverrideSchema, envelopeSchema, resolveEnvelope } from '../../core/envelope.ts';
import { createFleet, getFleet, listFleets } from '../db/fleets.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { SMALL_JSON_LIMIT, idParam, limitBody } from '../http/body.ts';
import { AUTH_ERRORS, BODY_ERRORS, createOpenApiRoutes, errorResponses, jsonBody, jsonResponse, security } from '../http/openapi-route.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const CreateFleetBody = z
  .strictObject({
    name: z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, 'letters, digits, space and . _ - only'),
    envelope: envelopeOverrideSchema.optional(),
    dpEpsilonBudget: z.number().positive().max(1e6).nullable().optional(),
  })
  .openapi('FleetCreation');

export const FleetSchema = z
  .object({ id: z.string(), name: z.string(), envelope: envelopeSchema, dpEpsilonBudget: z.number().nullable(), createdAt: z.number() })
  .openapi('Fleet');

export const FleetIdParams = z.object({ id: idParam });

export function createFleetRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();

  routes.openapi(
    createRoute({
      method: 'post',
      path: '/fleets',
      tags: ['fleets'],
      summary: 'Create a fleet with its operating envelope',
      description: 'Who may call it: admin, officer.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: SMALL_JSON_LIMIT }), requireAuth({ deps, person: { roles: ['admin', 'officer'] } })] as const,
      request: { body: jsonBody(CreateFleetBody) },
      responses: { 201: jsonResponse('the fleet', FleetSchema), ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS, 409: '`fleet_exists`: the name is taken' }) },
    }),
    async (c) => {
      const body = c.req.valid('json');
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
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/fleets',
      tags: ['fleets'],
      summary: 'List fleets',
      description: 'Who may call it: any signed-in person of the organization.',
      security: security({ person: true }),
      middleware: [requireAuth({ deps, person: true })] as const,
      responses: { 200: jsonResponse('the organization’s fleets', z.array(FleetSchema)), ...errorResponses(AUTH_ERRORS) },
    }),
    async (c) => c.json(await listFleets({ db: deps.db, orgId: c.get('principal').orgId }), 200),
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/fleets/{id}',
      tags: ['fleets'],
      summary: 'One fleet',
      description: 'Who may call it: any person of the organization; a robot of that fleet.',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      request: { params: FleetIdParams },
      responses: { 200: jsonResponse('the fleet', FleetSchema), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'no such fleet (or another fleet, for a robot)' }) },
    }),
    async (c) => {
      const principal = c.get('principal');
      const fleetId = c.req.valid('param').id;
      // A robot sees only its own fleet.
      const fleet = principal.kind === 'robot' && principal.fleetId !== fleetId ? null : await getFleet({ db: deps.db, orgId: principal.orgId, fleetId });
      if (!fleet) throw new NotFoundError('fleet not found');
      return c.json(fleet, 200);
    },
  );

  return routes;
}
