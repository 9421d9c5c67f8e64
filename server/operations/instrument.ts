// Wires the operational layer around an app's dependencies: metrics (one registry per app), database and
// blob store latency, the blob store circuit breaker, and backpressure admission. createApp calls this
// once; the result goes into AppDeps.
import type { Database } from '../db/client.ts';
import type { BlobStore } from '../blobs/fs-store.ts';
import { guardBlobStore } from '../blobs/circuit-breaker.ts';
import type { Logger } from '../logger.ts';
import { createServerMetrics, type ServerMetrics } from '../metrics/registry.ts';
import { observeBlobStore, observeDatabase } from '../metrics/storage.ts';
import { Admission } from './admission.ts';
import { resolveLimits, type OperationalLimits } from './limits.ts';

export function instrumentServer(options: {
  db: Database;
  blobs: BlobStore;
  now: () => number;
  logger: Logger;
  limits?: Partial<OperationalLimits>;
  /** An admission controller shared with the process (server/main.ts drains it on shutdown). */
  admission?: Admission;
}): { metrics: ServerMetrics; admission: Admission; blobs: BlobStore } {
  const admission = options.admission ?? new Admission({ limits: resolveLimits(options.limits) });
  let guarded: ReturnType<typeof guardBlobStore> | null = null;
  const metrics = createServerMetrics({
    db: options.db,
    now: options.now,
    logger: options.logger,
    live: () => ({
      uploadBytesInFlight: admission.snapshot().uploadBytesInFlight,
      pendingAggregations: admission.snapshot().pendingAggregations,
      circuitState: guarded?.breaker.state() ?? 'closed',
    }),
  });
  admission.onRefusal = (resource) => metrics.backpressureRefusals.inc({ resource });
  observeDatabase({ db: options.db, metrics });
  guarded = guardBlobStore({
    store: observeBlobStore({ store: options.blobs, metrics }),
    failureThreshold: admission.limits.blobBreakerFailures,
    cooldownMs: admission.limits.blobBreakerCooldownMs,
    onRefuse: () => metrics.backpressureRefusals.inc({ resource: 'blob_store' }),
    onStateChange: (state) => options.logger.warn('blob store circuit breaker', { state }),
  });
  return { metrics, admission, blobs: guarded };
}
