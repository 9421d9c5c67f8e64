// GET /metrics: the Prometheus text exposition of this app's registry and the process metrics.
// Unauthenticated like /healthz (scrapers rarely carry credentials); the figures name no tenant data
// beyond fleet and organization ids. Restrict it at the network edge where that matters.
import { Hono } from 'hono';
import type { AppEnv } from '../http/context.ts';
import type { ServerMetrics } from './registry.ts';

export function createMetricsRoutes(options: { metrics: ServerMetrics }): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  routes.get('/metrics', async (c) => {
    const { contentType, body } = await options.metrics.scrape();
    return c.body(body, 200, { 'content-type': contentType, 'cache-control': 'no-store' });
  });
  return routes;
}
