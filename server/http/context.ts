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
  };
}
