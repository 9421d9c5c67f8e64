// The sync server's Hono app: global middleware, one route file per resource under /v1, and the one
// error handler (server/http/errors.ts). No I/O of its own: the database and blob store come in.
import { Hono } from 'hono';
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
import { instrumentServer } from './operations/instrument.ts';
import { refuseWhileDraining } from './operations/drain.ts';
import type { Admission } from './operations/admission.ts';
import type { OperationalLimits } from './operations/limits.ts';
import { httpMetrics, markUnmatched } from './metrics/http.ts';
import { createMetricsRoutes } from './metrics/routes.ts';
import { AuditService } from './audit/service.ts';
import { auditDenials } from './audit/denials.ts';
import type { ServerAuditKey } from './audit/server-key.ts';

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
}): Hono<AppEnv> {
  const now = options.now ?? Date.now;
  const logger = options.logger ?? createJsonLogger();
  const ops = instrumentServer({ db: options.db, blobs: options.blobs, now, logger, limits: options.limits, admission: options.admission });
  const deps: AppDeps = { db: options.db, blobs: ops.blobs, now, logger, roundLocks: new KeyedMutex(), metrics: ops.metrics, admission: ops.admission, audit: new AuditService({ key: options.auditKey ?? null }) };
  const app = new Hono<AppEnv>();
  app.use(httpMetrics({ metrics: deps.metrics }));
  app.use(requestId());
  // HSTS for a year (ASVS 3.4.1; Hono's default is 180 days). The API serves JSON and octet-streams only.
  app.use(
    secureHeaders({
      strictTransportSecurity: 'max-age=31536000; includeSubDomains',
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      crossOriginResourcePolicy: 'same-origin',
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
  ];
  for (const create of v1) app.route('/v1', create({ deps }));
  app.route('/', createPwaRoutes());
  return app;
}
