// Audit and privacy ledgers: GET /audit (admin, auditor) and GET /dp/ledger?fleet= (people).
import { Hono } from 'hono';
import { z } from 'zod';
import { NotFoundError } from '../../core/errors.ts';
import { listAudit } from '../db/audit.ts';
import { getFleet } from '../db/fleets.ts';
import { listDpLedger } from '../db/rounds.ts';
import { requireAuth } from '../http/auth.ts';
import { idParam } from '../http/body.ts';
import type { AppDeps, AppEnv } from '../http/context.ts';

const AuditQuery = z.object({
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function createAuditRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();

  routes.get('/audit', requireAuth({ deps, person: { roles: ['admin', 'auditor'] } }), async (c) => {
    const q = AuditQuery.parse({ after: c.req.query('after'), limit: c.req.query('limit') });
    const entries = await listAudit({ db: deps.db, orgId: c.get('principal').orgId, after: q.after, limit: q.limit });
    return c.json({ entries, next: entries.length === q.limit ? entries[entries.length - 1]!.seq : null });
  });

  routes.get('/dp/ledger', requireAuth({ deps, person: true }), async (c) => {
    const orgId = c.get('principal').orgId;
    const fleetId = idParam.parse(c.req.query('fleet'));
    if (!(await getFleet({ db: deps.db, orgId, fleetId }))) throw new NotFoundError('fleet not found');
    const entries = await listDpLedger({ db: deps.db, orgId, fleetId });
    // epsilonAfter is cumulative per robot (every earlier round composed), so a robot's total is its latest.
    const totals = new Map<string, { robotId: string; rounds: number; epsilon: number }>();
    for (const e of entries) {
      const t = totals.get(e.robotId) ?? { robotId: e.robotId, rounds: 0, epsilon: 0 };
      t.rounds += 1;
      t.epsilon = e.epsilonAfter;
      totals.set(e.robotId, t);
    }
    return c.json({ entries, totals: [...totals.values()] });
  });

  return routes;
}
