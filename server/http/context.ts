// Types shared by the routes: the app's dependencies and the authenticated principal on the context.
import type { Database } from '../db/client.ts';
import type { BlobStore } from '../blobs/fs-store.ts';
import type { Logger } from '../logger.ts';
import type { KeyedMutex } from '../concurrency/keyed-mutex.ts';
import type { Role } from '../db/people.ts';
import type { RobotView } from '../db/robots.ts';
import type { ServerMetrics } from '../metrics/registry.ts';
import type { Admission } from '../operations/admission.ts';
import type { AuditService } from '../audit/service.ts';
import type { WriteBatcher } from '../db/write-batcher.ts';
import type { RateLimits } from './rate-limit.ts';
import type { SeenNonces } from './seen-nonces.ts';

export interface AppDeps {
  db: Database;
  blobs: BlobStore;
  now: () => number;
  logger: Logger;
  roundLocks: KeyedMutex;
  /** This app's Prometheus metrics (server/metrics/registry.ts). */
  metrics: ServerMetrics;
  /** Backpressure bounds and the shutdown drain flag (server/operations/admission.ts). */
  admission: Admission;
  /** The server audit key, signed checkpoints and bounded denial auditing (server/audit/service.ts). */
  audit: AuditService;
  /** Group commit for nonces and rate-limit hits (server/db/write-batcher.ts). */
  batcher: WriteBatcher;
  /** In-memory front of the nonce table: replays this instance saw are refused without a write. */
  seenNonces: SeenNonces;
  rateLimits: RateLimits;
  /** Session cookie `Secure` attribute: always (production / declared TLS proxy) or when the request is https. */
  secureCookies: boolean;
  /** Behind a declared reverse proxy: X-Forwarded-For / -Proto are believed (TG_TRUST_PROXY=1). */
  trustProxy: boolean;
  /** How recent a password proof must be for a sensitive action; default REAUTH_WINDOW_MS (server/http/auth.ts). */
  reauthWindowMs?: number;
}

export interface PersonPrincipal {
  kind: 'person';
  orgId: string;
  userId: string;
  userName: string;
  roles: Role[];
  sessionId: string;
}

export interface RobotPrincipal {
  kind: 'robot';
  orgId: string;
  robotId: string;
  fleetId: string;
  robot: RobotView;
}

export type Principal = PersonPrincipal | RobotPrincipal;

export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal;
    /** The raw request body, read once by robot request authentication. */
    rawBody: Uint8Array;
    /** A body already read straight from the socket (server/http/body.ts readBodyFromSocket), for authentication to use. */
    preReadBody?: Uint8Array;
    /** The matched route template (e.g. /v1/rounds/:id), for logs. */
    routeTemplate: string;
  };
}
