// While a graceful shutdown drains (server/main.ts), requests that still arrive on open keep-alive
// connections are refused with 503 `shutting_down` and `Connection: close`, so clients move on; the
// requests already in flight finish. /healthz keeps answering (the process is alive) and /readyz
// reports `shutting_down` itself.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../http/context.ts';
import type { Admission } from './admission.ts';

const EXEMPT = new Set(['/healthz', '/readyz']);

export function refuseWhileDraining(options: { admission: Admission }): MiddlewareHandler<AppEnv> {
  const { admission } = options;
  return async (c, next) => {
    if (admission.draining && !EXEMPT.has(c.req.path)) {
      c.header('connection', 'close');
      admission.refuseIfDraining();
    }
    await next();
    if (admission.draining) c.header('connection', 'close');
  };
}
