// Liveness and readiness: GET /healthz (the process answers) and GET /readyz (database and blob store
// usable, not shutting down). With TG_BENCH_NULL_SINK=1 only: POST /v1/bench/null-sink, which reads an
// upload and throws it away — the ceiling the ingest benchmark (bench/ingest.ts) compares against.
import { Hono } from 'hono';
import { sql } from 'drizzle-orm';
import type { AppDeps, AppEnv } from '../http/context.ts';
import { limitBody, MiB } from '../http/body.ts';

/** The null sink accepts bodies up to the largest contribution the default envelope allows, and then some. */
const NULL_SINK_LIMIT = 64 * MiB;

export function createSystemRoutes(options: { deps: AppDeps; benchNullSink?: boolean }): Hono<AppEnv> {
  const { deps } = options;
  const routes = new Hono<AppEnv>();
  routes.get('/healthz', (c) => c.json({ status: 'ok' }));
  routes.get('/readyz', async (c) => {
    const failing: string[] = [];
    if (deps.admission.draining) failing.push('shutting_down');
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
  if (options.benchNullSink) {
    routes.post('/v1/bench/null-sink', limitBody({ maxSize: NULL_SINK_LIMIT }), async (c) => {
      const body = await c.req.arrayBuffer();
      return c.json({ bytes: body.byteLength }, 201);
    });
  }
  return routes;
}
