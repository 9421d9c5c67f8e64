// Liveness and readiness: GET /healthz (the process answers) and GET /readyz (database and blob store usable).
import { Hono } from 'hono';
import { sql } from 'drizzle-orm';
import type { AppDeps, AppEnv } from '../http/context.ts';

export function createSystemRoutes(options: { deps: AppDeps }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();
  routes.get('/healthz', (c) => c.json({ status: 'ok' }));
  routes.get('/readyz', async (c) => {
    const failing: string[] = [];
    try {
      await deps.db.run(sql`select 1`);
    } catch (error) {
      failing.push('database');
      deps.logger.warn('readiness: database check failed', { error });
    }
    try {
      await deps.blobs.check();
    } catch (error) {
      failing.push('blob_store');
      deps.logger.warn('readiness: blob store check failed', { error });
    }
    if (failing.length > 0)
      return c.json({ status: 'unavailable', failing, error: { code: 'not_ready', message: `not ready: ${failing.join(', ')}` } }, 503);
    return c.json({ status: 'ready' });
  });
  return routes;
}
