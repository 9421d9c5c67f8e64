// Safety cells per fleet: PUT/GET/DELETE /fleets/:id/cells/:cellId, GET /fleets/:id/cells.
// A cell (core/safety/cell.ts) is the geometry and limits command validation checks robots against.
// Officers and admins configure them; people read them; a robot reads the cells of its own fleet.
// OpenAPI routes (@hono/zod-openapi): path parameters are validated by zod; the cell document itself by
// core/safety/cell.ts (the same parser the robot CLI and the browser use), whose 400 names the field
// in details.field. The stored, normalized cell is documented by SafetyCellSchema below, which the
// handlers' answers are type-checked against.
import type { Context } from 'hono';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { NotFoundError } from '../../core/errors.ts';
import { CELL_FORMAT, COLLABORATION_MODES, parseSafetyCell, cellIdPattern } from '../../core/safety/cell.ts';
import { BODY_REGIONS } from '../../core/safety/body-regions.ts';
import { getFleet } from '../db/fleets.ts';
import { deleteCell, getCell, listCells, putCell } from '../db/cells.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { KiB, idParam, limitBody, NO_BODY_LIMIT } from '../http/body.ts';
import { AUTH_ERRORS, BODY_ERRORS, createOpenApiRoutes, errorResponses, jsonBody, jsonResponse, security } from '../http/openapi-route.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

export const CELL_BODY_LIMIT = 256 * KiB;

/** Cells changed through this process; the safety route drops its cached copy on a change. */
const listeners = new Set<(key: string) => void>();
export function onCellChange(listener: (key: string) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
export const cellKey = (orgId: string, fleetId: string, cellId: string) => `${orgId}/${fleetId}/${cellId}`;

const Vec3 = z.tuple([z.number(), z.number(), z.number()]).readonly();
const Named = { name: z.string() };
/** A stored cell as core/safety/cell.ts normalizes it (defaults filled in). */
export const SafetyCellSchema = z
  .object({
    format: z.literal(CELL_FORMAT),
    name: z.string(),
    joints: z.array(z.object({ ...Named, min: z.number(), max: z.number(), maxSpeed: z.number() })),
    linkRadii: z.array(z.number()),
    workspace: z.array(z.object({ ...Named, planes: z.array(z.object({ normal: Vec3, offset: z.number() })) })),
    obstacles: z.array(
      z.union([
        z.object({ ...Named, shape: z.literal('box'), center: Vec3, halfExtents: Vec3, rotation: z.tuple([z.number(), z.number(), z.number(), z.number()]).readonly().optional() }),
        z.object({ ...Named, shape: z.literal('capsule'), a: Vec3, b: Vec3, radius: z.number() }),
        z.object({ ...Named, shape: z.literal('sphere'), center: Vec3, radius: z.number() }),
      ]),
    ),
    collisionMarginM: z.number(),
    sweepToleranceM: z.number(),
    robot: z.object({ movingMassKg: z.number(), maxPayloadKg: z.number() }),
    collaboration: z.enum(COLLABORATION_MODES),
    exposedRegions: z.array(z.enum(BODY_REGIONS)),
    ssm: z.object({
      reactionTimeS: z.number(),
      stoppingTimeS: z.number(),
      stoppingDistanceM: z.number().nullable(),
      humanSpeedMps: z.number(),
      intrusionDistanceM: z.number(),
      sensorUncertaintyM: z.number(),
      robotUncertaintyM: z.number(),
    }),
    estop: z.object({ maxHeartbeatAgeMs: z.number().int() }),
  })
  .openapi('SafetyCell');
const CellViewSchema = z
  .object({ fleetId: z.string(), cellId: z.string(), version: z.number().int(), cell: SafetyCellSchema, updatedBy: z.string(), createdAt: z.number(), updatedAt: z.number() })
  .openapi('StoredSafetyCell');
/** The PUT body: a JSON object checked field by field by parseSafetyCell (optional fields take defaults). */
const CellDocument = z.record(z.string(), z.unknown()).openapi('SafetyCellDocument', {
  description: `A ${CELL_FORMAT} document: the fields of SafetyCell; name, obstacles, collisionMarginM, sweepToleranceM, collaboration, exposedRegions, ssm, estop and their fields are optional (docs/SAFETY.md). A bad field is 400 \`malformed\` with details.field naming it.`,
});
const FleetParams = z.object({ id: idParam });
const CellParams = z.object({ id: idParam, cellId: z.string().regex(cellIdPattern) });

export function createCellRoutes(options: { deps: AppDeps }): OpenAPIHono<AppEnv> {
  const { deps } = options;
  const routes = createOpenApiRoutes();

  async function fleetFor(c: Context<AppEnv>, fleetId: string): Promise<string> {
    const principal = c.get('principal');
    if (principal.kind === 'robot' && principal.fleetId !== fleetId) throw new NotFoundError('fleet not found');
    if (!(await getFleet({ db: deps.db, orgId: principal.orgId, fleetId }))) throw new NotFoundError('fleet not found');
    return fleetId;
  }

  routes.openapi(
    createRoute({
      method: 'put',
      path: '/fleets/{id}/cells/{cellId}',
      tags: ['safety'],
      summary: 'Store a safety cell (created, or replaced as the next version)',
      description: 'Who may call it: officer, admin.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: CELL_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer', 'admin'] } })] as const,
      request: { params: CellParams, body: jsonBody(CellDocument) },
      responses: {
        200: jsonResponse('replaced', CellViewSchema),
        201: jsonResponse('created', CellViewSchema),
        ...errorResponses({ ...AUTH_ERRORS, ...BODY_ERRORS, 404: 'fleet not found' }),
      },
    }),
    async (c) => {
      const params = c.req.valid('param');
      const fleetId = await fleetFor(c, params.id);
      const cell = parseSafetyCell({ value: c.req.valid('json') });
      const orgId = c.get('principal').orgId;
      const { view, created } = await putCell({ db: deps.db, orgId, fleetId, cellId: params.cellId, cell, actor: actorOf(c), id: newId({ prefix: 'cel' }), now: deps.now() });
      for (const l of listeners) l(cellKey(orgId, fleetId, params.cellId));
      return created ? c.json(view, 201) : c.json(view, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/fleets/{id}/cells',
      tags: ['safety'],
      summary: 'Safety cells of a fleet',
      description: 'Who may call it: any person of the organization; robots of the fleet.',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      request: { params: FleetParams },
      responses: { 200: jsonResponse('the cells', z.array(CellViewSchema)), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet not found (or another fleet, for a robot)' }) },
    }),
    async (c) => {
      const fleetId = await fleetFor(c, c.req.valid('param').id);
      return c.json(await listCells({ db: deps.db, orgId: c.get('principal').orgId, fleetId }), 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'get',
      path: '/fleets/{id}/cells/{cellId}',
      tags: ['safety'],
      summary: 'One safety cell',
      description: 'Who may call it: any person of the organization; robots of the fleet.',
      security: security({ person: true, robot: true }),
      middleware: [requireAuth({ deps, person: true, robot: true })] as const,
      request: { params: CellParams },
      responses: { 200: jsonResponse('the cell', CellViewSchema), ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet or cell not found' }) },
    }),
    async (c) => {
      const params = c.req.valid('param');
      const fleetId = await fleetFor(c, params.id);
      const view = await getCell({ db: deps.db, orgId: c.get('principal').orgId, fleetId, cellId: params.cellId });
      if (!view) throw new NotFoundError('cell not found');
      return c.json(view, 200);
    },
  );

  routes.openapi(
    createRoute({
      method: 'delete',
      path: '/fleets/{id}/cells/{cellId}',
      tags: ['safety'],
      summary: 'Delete a safety cell',
      description: 'Who may call it: officer, admin.',
      security: security({ person: true }),
      middleware: [limitBody({ maxSize: NO_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer', 'admin'] } })] as const,
      request: { params: CellParams },
      responses: { 204: { description: 'deleted' }, ...errorResponses({ 400: true, ...AUTH_ERRORS, 404: 'fleet or cell not found', 413: true }) },
    }),
    async (c) => {
      const params = c.req.valid('param');
      const fleetId = await fleetFor(c, params.id);
      const orgId = c.get('principal').orgId;
      if (!(await deleteCell({ db: deps.db, orgId, fleetId, cellId: params.cellId, actor: actorOf(c), now: deps.now() }))) throw new NotFoundError('cell not found');
      for (const l of listeners) l(cellKey(orgId, fleetId, params.cellId));
      return c.body(null, 204);
    },
  );

  return routes;
}
