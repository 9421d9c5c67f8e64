// Contribution outcome metrics, as a middleware in front of POST /rounds/:id/contributions: a 201 counts
// as accepted (and its package bytes as ingested) unless it is an idempotent replay; any other answer
// counts as refused under its error code (`duplicate_contribution`, `bad_signature`, `overloaded`, ...).
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../http/context.ts';
import type { ServerMetrics } from './registry.ts';

/** Response header that marks a 201 answered from the idempotency record instead of a new commit. */
export const IDEMPOTENT_REPLAY_HEADER = 'idempotent-replayed';

async function errorCode(res: Response): Promise<string> {
  try {
    const body = (await res.clone().json()) as { error?: { code?: unknown } };
    const code = body?.error?.code;
    if (typeof code === 'string' && /^[a-z0-9_]{1,64}$/.test(code)) return code;
  } catch {
    /* not a JSON error body */
  }
  return `http_${res.status}`;
}

export function contributionMetrics(options: { metrics: ServerMetrics }): MiddlewareHandler<AppEnv> {
  const { metrics } = options;
  return async (c, next) => {
    await next();
    if (c.res.status === 201) {
      if (c.res.headers.get(IDEMPOTENT_REPLAY_HEADER) === 'true') {
        metrics.contributionsReplayed.inc();
        return;
      }
      metrics.contributionsAccepted.inc();
      metrics.ingestBytes.inc(c.get('rawBody')?.length ?? 0);
      return;
    }
    metrics.contributionsRefused.inc({ reason: await errorCode(c.res) });
  };
}
