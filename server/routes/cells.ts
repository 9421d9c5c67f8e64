// Safety cells per fleet: PUT/GET/DELETE /fleets/:id/cells/:cellId, GET /fleets/:id/cells.
// A cell (core/safety/cell.ts) is the geometry and limits command validation checks robots against.
// Officers and admins configure them; people read them; a robot reads the cells of its own fleet.
import { Hono } from 'hono';
import { NotFoundError } from '../../core/errors.ts';
import { parseSafetyCell, cellIdPattern } from '../../core/safety/cell.ts';
import { SafetyRequestError } from '../../core/safety/parse.ts';
import { getFleet } from '../db/fleets.ts';
import { deleteCell, getCell, listCells, putCell } from '../db/cells.ts';
import { newId } from '../auth/tokens.ts';
import { actorOf, requireAuth } from '../http/auth.ts';
import { KiB, idParam, limitBody, readJson, NO_BODY_LIMIT } from '../http/body.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { z } from 'zod';
import type { Context } from 'hono';

export const CELL_BODY_LIMIT = 256 * KiB;

/** Cells changed through this process; the safety route drops its cached copy on a change. */
const listeners = new Set<(key: string) => void>();
export function onCellChange(listener: (key: string) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
export const cellKey = (orgId: string, fleetId: string, cellId: string) => `${orgId}/${fleetId}/${cellId}`;

function cellIdOf(c: Context<AppEnv>): string {
  const id = c.req.param('cellId') ?? '';
  if (!cellIdPattern.test(id)) throw new SafetyRequestError('cellId', `expected ${cellIdPattern.source}, got ${JSON.stringify(id.slice(0, 80))}`);
  return id;
}

export function createCellRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();

  async function fleetFor(c: Context<AppEnv>): Promise<string> {
    const principal = c.get('principal');
    const fleetId = idParam.parse(c.req.param('id'));
    if (principal.kind === 'robot' && principal.fleetId !== fleetId) throw new NotFoundError('fleet not found');
    if (!(await getFleet({ db: deps.db, orgId: principal.orgId, fleetId }))) throw new NotFoundError('fleet not found');
    return fleetId;
  }

  routes.put('/fleets/:id/cells/:cellId', limitBody({ maxSize: CELL_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer', 'admin'] } }), async (c) => {
    const fleetId = await fleetFor(c);
    const cellId = cellIdOf(c);
    const cell = parseSafetyCell({ value: await readJson(c, z.unknown()) });
    const orgId = c.get('principal').orgId;
    const { view, created } = await putCell({ db: deps.db, orgId, fleetId, cellId, cell, actor: actorOf(c), id: newId({ prefix: 'cel' }), now: deps.now() });
    for (const l of listeners) l(cellKey(orgId, fleetId, cellId));
    return c.json(view, created ? 201 : 200);
  });

  routes.get('/fleets/:id/cells', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const fleetId = await fleetFor(c);
    return c.json(await listCells({ db: deps.db, orgId: c.get('principal').orgId, fleetId }));
  });

  routes.get('/fleets/:id/cells/:cellId', requireAuth({ deps, person: true, robot: true }), async (c) => {
    const fleetId = await fleetFor(c);
    const view = await getCell({ db: deps.db, orgId: c.get('principal').orgId, fleetId, cellId: cellIdOf(c) });
    if (!view) throw new NotFoundError('cell not found');
    return c.json(view);
  });

  routes.delete('/fleets/:id/cells/:cellId', limitBody({ maxSize: NO_BODY_LIMIT }), requireAuth({ deps, person: { roles: ['officer', 'admin'] } }), async (c) => {
    const fleetId = await fleetFor(c);
    const cellId = cellIdOf(c);
    const orgId = c.get('principal').orgId;
    if (!(await deleteCell({ db: deps.db, orgId, fleetId, cellId, actor: actorOf(c), now: deps.now() }))) throw new NotFoundError('cell not found');
    for (const l of listeners) l(cellKey(orgId, fleetId, cellId));
    return c.body(null, 204);
  });

  return routes;
}
