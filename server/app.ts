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

export function createApp(options: { db: Database; blobs: BlobStore; now?: () => number; logger?: Logger }): Hono<AppEnv> {
  const deps: AppDeps = {
    db: options.db,
    blobs: options.blobs,
    now: options.now ?? Date.now,
    logger: options.logger ?? createJsonLogger(),
    roundLocks: new KeyedMutex(),
  };
  const app = new Hono<AppEnv>();
  app.use(requestId());
  // HSTS for a year (ASVS 3.4.1; Hono's default is 180 days). The API serves JSON and octet-streams only.
  app.use(
    secureHeaders({
      strictTransportSecurity: 'max-age=31536000; includeSubDomains',
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      crossOriginResourcePolicy: 'same-origin',
    }),
  );
  app.onError(createErrorHandler({ logger: deps.logger }));
  app.notFound(notFoundHandler);

  app.route('/', createSystemRoutes({ deps }));
  const v1 = [
    createPeopleRoutes,
    createFleetRoutes,
    createOfficerKeyRoutes,
    createRobotRoutes,
    createHeKeyRoutes,
    createContributionRoutes,
    createRoundRoutes,
    createReleaseRoutes,
    createAuditRoutes,
  ];
  for (const create of v1) app.route('/v1', create({ deps }));
  return app;
}
