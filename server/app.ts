// The sync server's Hono app: global middleware, one route file per resource under /v1, and the one
// error handler (server/http/errors.ts). No I/O of its own: the database and blob store come in.
import { Hono, type Context } from 'hono';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import type { Database } from './db/client.ts';
import type { BlobStore } from './blobs/fs-store.ts';
import { createJsonLogger, type Logger } from './logger.ts';
import { KeyedMutex } from './concurrency/keyed-mutex.ts';
import { createErrorHandler, notFoundHandler } from './http/errors.ts';
import type { AppDeps, AppEnv } from './http/context.ts';
import { createSystemRoutes } from './routes/system.ts';
import { createPeopleRoutes } from './routes/people.ts';
import { createFleetRoutes } from './routes/fleets.ts';
import { createOfficerKeyRoutes } from './routes/officer-keys.ts';
import { createRobotRoutes } from './routes/robots.ts';
import { createHeKeyRoutes } from './routes/he-keys.ts';
import { createRoundRoutes } from './routes/rounds.ts';
import { createContributionRoutes } from './routes/contributions.ts';
import { createReleaseRoutes } from './routes/releases.ts';
import { createAuditRoutes } from './routes/audit.ts';
import { createCellRoutes } from './routes/cells.ts';
import { createSafetyRoutes } from './routes/safety.ts';
import { createDecisionRoutes } from './routes/decisions.ts';
import { createPwaRoutes } from './routes/pwa.ts';
import { createRegistryRoutes } from './routes/registry.ts';
import { createCanaryRoutes } from './routes/canary.ts';
import { createTimingRoutes } from './routes/timings.ts';
import { createEvaluationModelRoutes } from './routes/evaluation-models.ts';
import { instrumentServer } from './operations/instrument.ts';
import { refuseWhileDraining } from './operations/drain.ts';
import type { Admission } from './operations/admission.ts';
import type { OperationalLimits } from './operations/limits.ts';
import { httpMetrics, markUnmatched } from './metrics/http.ts';
import { createMetricsRoutes } from './metrics/routes.ts';
import { AuditService } from './audit/service.ts';
import { auditDenials } from './audit/denials.ts';
import type { ServerAuditKey } from './audit/server-key.ts';
import { WriteBatcher } from './db/write-batcher.ts';
import { SeenNonces } from './http/seen-nonces.ts';
import { DEFAULT_RATE_LIMITS, type RateLimits } from './http/rate-limit.ts';
import { routeTemplate } from './metrics/http.ts';
import { DOCS_CSS, DOCS_HTML, DOCS_JS, buildOpenApiDocument, mountedDefinitions } from './http/openapi.ts';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { logContext } from './logger.ts';

/** The docs page loads its own script and stylesheet and fetches /openapi.json; nothing else. */
const DOCS_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function createApp(options: {
  db: Database;
  blobs: BlobStore;
  now?: () => number;
  logger?: Logger;
  /** Backpressure and breaker bounds (server/operations/limits.ts); defaults otherwise. */
  limits?: Partial<OperationalLimits>;
  /** Shared with server/main.ts, which drains it on shutdown. */
  admission?: Admission;
  /** Mounts POST /v1/bench/null-sink for the ingest benchmark (TG_BENCH_NULL_SINK=1 only). */
  benchNullSink?: boolean;
  /**
   * The server's ML-DSA-65 key that signs audit checkpoints (server/audit/server-key.ts). Without one
   * the checkpoint route answers 503 `audit_key_missing`: the server never signs with a throwaway key.
   */
  auditKey?: ServerAuditKey;
  /** Rate limits (server/http/rate-limit.ts); defaults otherwise. */
  rateLimits?: Partial<RateLimits>;
  /** Always mark the session cookie Secure (production, or behind a declared TLS proxy). */
  secureCookies?: boolean;
  /** Believe X-Forwarded-For / X-Forwarded-Proto (a declared reverse proxy; TG_TRUST_PROXY=1). */
  trustProxy?: boolean;
  /** The re-authentication window (server/config.ts TG_REAUTH_WINDOW_MS, development only); default 5 min. */
  reauthWindowMs?: number;
}): Hono<AppEnv> {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? createJsonLogger();
  const ops = instrumentServer({ db: options.db, blobs: options.blobs, now, logger, limits: options.limits, admission: options.admission });
  const deps: AppDeps = {
    db: options.db, blobs: ops.blobs, now, logger, roundLocks: new KeyedMutex(), metrics: ops.metrics, admission: ops.admission, audit: new AuditService({ key: options.auditKey ?? null }),
    batcher: new WriteBatcher({ db: options.db, now }),
    seenNonces: new SeenNonces(),
    rateLimits: { ...DEFAULT_RATE_LIMITS, ...options.rateLimits },
    secureCookies: options.secureCookies ?? false,
    trustProxy: options.trustProxy ?? false,
    reauthWindowMs: options.reauthWindowMs,
  };
  const app = new Hono<AppEnv>();
  // The request id comes first, so every response (errors included) and every log line carries it.
  app.use(requestId());
  app.use(requestLog({ logger }));
  app.use(httpMetrics({ metrics: deps.metrics }));
  // HSTS for a year (ASVS 3.4.1; Hono's default is 180 days). The API serves JSON and octet-streams only.
  app.use(
    secureHeaders({
      strictTransportSecurity: 'max-age=31536000; includeSubDomains',
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      crossOriginResourcePolicy: 'same-origin',
      // Hono's defaults also send Referrer-Policy: no-referrer, Cross-Origin-Opener-Policy: same-origin
      // and X-Content-Type-Options: nosniff; tests/security/headers.test.ts checks every response type.
      xFrameOptions: 'DENY',
      // Routes that set their own header keep it: the PWA's pages carry their own CSP (routes/pwa.ts).
      overwrite: false,
    }),
  );
  app.use(refuseWhileDraining({ admission: deps.admission }));
  app.use(auditDenials({ deps }));
  app.onError(createErrorHandler({ logger: deps.logger }));
  app.notFound(markUnmatched(notFoundHandler));

  app.route('/', createSystemRoutes({ deps, benchNullSink: options.benchNullSink }));
  app.route('/', createMetricsRoutes({ metrics: deps.metrics }));
  let openApi: unknown = null;
  app.get('/openapi.json', (c) => c.json((openApi ??= buildOpenApiDocument({ definitions: documented }))));
  app.get('/docs', (c) => {
    c.header('content-security-policy', DOCS_CSP);
    return c.html(DOCS_HTML);
  });
  app.get('/docs/render.js', (c) => c.body(DOCS_JS, 200, { 'content-type': 'text/javascript; charset=utf-8' }));
  app.get('/docs/style.css', (c) => c.body(DOCS_CSS, 200, { 'content-type': 'text/css; charset=utf-8' }));
  const v1 = [
    createPeopleRoutes,
    createFleetRoutes,
    createOfficerKeyRoutes,
    createRobotRoutes,
    createHeKeyRoutes,
    createContributionRoutes,
    createRoundRoutes,
    createReleaseRoutes,
    createDecisionRoutes,
    createAuditRoutes,
    createCellRoutes,
    createSafetyRoutes,
    createRegistryRoutes,
    createCanaryRoutes,
    createTimingRoutes,
    createEvaluationModelRoutes,
  ];
  // Route files written with OpenAPIHono + createRoute document themselves; the rest are listed in
  // server/http/openapi.ts. Both end up in GET /openapi.json.
  const documented: ReturnType<typeof mountedDefinitions> = [];
  for (const create of v1) {
    const routes = create({ deps });
    if ('openAPIRegistry' in routes) documented.push(...mountedDefinitions({ registry: (routes as OpenAPIHono<AppEnv>).openAPIRegistry, prefix: '/v1' }));
    app.route('/v1', routes);
  }
  app.route('/', createPwaRoutes());
  return app;
}

/**
 * One structured line per request: request id, method, route template (never the raw path, which
 * may carry ids), status, duration, and who called (user or robot, organization). Never headers or
 * bodies, so no token or signature can reach the log from here.
 */
function requestLog(options: { logger: Logger }) {
  return async (c: Context<AppEnv>, next: () => Promise<void>) => {
    const start = performance.now();
    const context: Record<string, unknown> = { requestId: c.get('requestId') };
    await logContext.run(context, next);
    const principal = c.get('principal') as AppEnv['Variables']['principal'] | undefined;
    const status = c.res.status;
    const fields = {
      requestId: c.get('requestId'),
      method: c.req.method,
      route: routeTemplate(c),
      status,
      durationMs: Math.round((performance.now() - start) * 1000) / 1000,
      ...(principal ? { orgId: principal.orgId, ...(principal.kind === 'person' ? { userId: principal.userId } : { robotId: principal.robotId }) } : {}),
    };
    if (status >= 500) options.logger.error('request', fields);
    else options.logger.info('request', fields);
  };
}
