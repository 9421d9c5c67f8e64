// HTTP metrics middleware: request count and latency by method, route template and status, and the
// number of requests in flight. The route label is the path Hono matched (`/v1/rounds/:id`), never the
// raw URL, so ids never become label values; requests that match no route are labelled `unmatched`.
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { ServerMetrics } from './registry.ts';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

const unmatched = new WeakSet<Context>();

/** Wraps the app's notFound handler so that requests no route answered are labelled `unmatched`. */
export function markUnmatched<C extends Context>(handler: (c: C) => Response | Promise<Response>): (c: C) => Response | Promise<Response> {
  return (c) => {
    unmatched.add(c);
    return handler(c);
  };
}

/**
 * The template of the route that answered: the matched route whose handler (or route middleware)
 * produced the response. When app-level middleware answered (e.g. a 503 while draining), the first
 * method-bound route that matched — the one that would have answered.
 */
export function routeTemplate(c: Context): string {
  if (unmatched.has(c)) return 'unmatched';
  let routes: ReturnType<typeof matchedRoutes>;
  try {
    routes = matchedRoutes(c);
  } catch {
    return 'unmatched';
  }
  const answered = routes[c.req.routeIndex];
  // app.use() middleware is registered for ALL methods; handlers and route middleware for their own.
  if (answered && answered.method !== 'ALL') return answered.path;
  return routes.find((r) => r.method !== 'ALL')?.path ?? 'unmatched';
}

export function httpMetrics(options: { metrics: ServerMetrics }): MiddlewareHandler {
  const { metrics } = options;
  return async (c, next) => {
    const start = performance.now();
    metrics.httpInFlight.inc();
    try {
      await next();
    } finally {
      metrics.httpInFlight.dec();
      const labels = { method: METHODS.has(c.req.method) ? c.req.method : 'OTHER', route: routeTemplate(c), status: String(c.res.status) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, (performance.now() - start) / 1000);
    }
  };
}
