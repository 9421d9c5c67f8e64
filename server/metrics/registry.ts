// The server's Prometheus metrics (prom-client): one registry per app, so that tests can build many apps
// in one process, plus one process-wide registry for the Node process metrics (collectDefaultMetrics
// installs event-loop and GC observers, which must exist once per process, not once per app).
//
// Every figure is measured or read from the database at scrape time; nothing is sampled or made up.
// Names follow the Prometheus conventions (base units: seconds, bytes; `_total` for counters). The
// Grafana dashboard (docs/grafana/tensorguard.json) and docs/OPERATIONS.md list the same names, and
// server/metrics/metrics.test.ts checks that every metric the dashboard queries is exported.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from '../db/client.ts';
import { countRoundsByState, currentHeKeys, maxEpsilonByFleet } from '../db/gauges.ts';
import { ROUND_STATES } from '../db/rounds.ts';
import type { Logger } from '../logger.ts';

/** Request latency buckets (seconds): 1 ms .. 60 s, covering a JSON read and an 80 MB upload. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Storage operation buckets (seconds): 50 us .. 10 s. */
const STORAGE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

let processRegistry: Registry | null = null;

/** The process-wide registry with prom-client's default Node metrics (created on first use). */
export function processMetricsRegistry(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface ServerMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  httpInFlight: Gauge;
  contributionsAccepted: Counter;
  contributionsRefused: Counter<'reason'>;
  contributionsReplayed: Counter;
  ingestBytes: Counter;
  aggregationDuration: Histogram;
  dbDuration: Histogram<'operation' | 'outcome'>;
  blobDuration: Histogram<'operation' | 'outcome'>;
  backpressureRefusals: Counter<'resource'>;
  uploadBytesInFlight: Gauge;
  pendingAggregations: Gauge;
  blobCircuitState: Gauge;
  /** The Prometheus text exposition of this app's metrics and the process metrics. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

/** Numeric encoding of the blob store circuit state in `tensorguard_blob_store_circuit_state`. */
export const CIRCUIT_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

export function createServerMetrics(options: {
  db: Database;
  now: () => number;
  logger: Logger;
  /** Live values read at scrape time (backpressure state, circuit state). */
  live?: () => { uploadBytesInFlight: number; pendingAggregations: number; circuitState: keyof typeof CIRCUIT_STATE_VALUE };
}): ServerMetrics {
  const { db, now, logger } = options;
  const registry = new Registry();
  const registers = [registry];

  // Gauges read from the database on scrape. A failed read is logged and leaves the gauge empty for
  // that scrape (an absent series, not a made-up value).
  const databaseGauge = <L extends string>(config: { name: string; help: string; labelNames: L[]; read: (gauge: Gauge<L>) => Promise<void> }) =>
    new Gauge<L>({
      name: config.name,
      help: config.help,
      labelNames: config.labelNames,
      registers,
      async collect() {
        try {
          await config.read(this);
        } catch (error) {
          this.reset();
          logger.warn('metrics: database read failed', { metric: config.name, error });
        }
      },
    });

  databaseGauge({
    name: 'tensorguard_rounds',
    help: 'Rounds by state (open, closed, finalized), read from the database on scrape.',
    labelNames: ['state'],
    async read(gauge) {
      const counts = await countRoundsByState({ db });
      gauge.reset();
      for (const state of ROUND_STATES) gauge.set({ state }, 0);
      for (const { state, count } of counts) gauge.set({ state }, count);
    },
  });
  databaseGauge({
    name: 'tensorguard_dp_epsilon_spent',
    help: 'Per fleet, the largest cumulative DP epsilon any of its robots has spent (from the DP ledger).',
    labelNames: ['fleet'],
    async read(gauge) {
      const rows = await maxEpsilonByFleet({ db });
      gauge.reset();
      for (const { fleetId, epsilon } of rows) gauge.set({ fleet: fleetId }, epsilon);
    },
  });
  databaseGauge({
    name: 'tensorguard_he_key_age_seconds',
    help: "Seconds since each organization's current HE key record was registered.",
    labelNames: ['org', 'key_version'],
    async read(gauge) {
      const rows = await currentHeKeys({ db });
      gauge.reset();
      const t = now();
      for (const r of rows) gauge.set({ org: r.orgId, key_version: String(r.keyVersion) }, Math.max(0, (t - r.createdAt) / 1000));
    },
  });

  const live = options.live;
  const uploadBytesInFlight = new Gauge({
    name: 'tensorguard_upload_bytes_in_flight',
    help: 'Bytes of contribution uploads admitted and not yet answered (bounded by TG_MAX_INFLIGHT_UPLOAD_BYTES).',
    registers,
    collect() {
      if (live) this.set(live().uploadBytesInFlight);
    },
  });
  const pendingAggregations = new Gauge({
    name: 'tensorguard_aggregations_pending',
    help: 'Contributions waiting for or running aggregation (bounded by TG_MAX_PENDING_AGGREGATIONS).',
    registers,
    collect() {
      if (live) this.set(live().pendingAggregations);
    },
  });
  const blobCircuitState = new Gauge({
    name: 'tensorguard_blob_store_circuit_state',
    help: 'Blob store circuit breaker: 0 closed, 1 half-open, 2 open.',
    registers,
    collect() {
      if (live) this.set(CIRCUIT_STATE_VALUE[live().circuitState]);
    },
  });

  const metrics: ServerMetrics = {
    registry,
    httpRequests: new Counter({
      name: 'tensorguard_http_requests_total',
      help: 'HTTP requests answered, by method, route template (never the raw URL) and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'tensorguard_http_request_duration_seconds',
      help: 'Time from request to response headers, by method, route template and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    httpInFlight: new Gauge({ name: 'tensorguard_http_requests_in_flight', help: 'HTTP requests being handled.', registers }),
    contributionsAccepted: new Counter({
      name: 'tensorguard_contributions_accepted_total',
      help: 'Contributions accepted (201, committed), idempotent replays excluded.',
      registers,
    }),
    contributionsRefused: new Counter({
      name: 'tensorguard_contributions_refused_total',
      help: 'Contribution uploads refused, by reason (the error code of the answer).',
      labelNames: ['reason'],
      registers,
    }),
    contributionsReplayed: new Counter({
      name: 'tensorguard_contributions_replayed_total',
      help: 'Retried uploads answered with their original 201 through their Idempotency-Key.',
      registers,
    }),
    ingestBytes: new Counter({ name: 'tensorguard_ingest_bytes_total', help: 'Bytes of accepted update packages.', registers }),
    aggregationDuration: new Histogram({
      name: 'tensorguard_aggregation_duration_seconds',
      help: 'Time to fold one contribution into its round aggregate (ciphertext checks and modular adds).',
      buckets: STORAGE_BUCKETS,
      registers,
    }),
    dbDuration: new Histogram({
      name: 'tensorguard_db_operation_duration_seconds',
      help: 'Database latency: single queries, batches and whole write transactions (queueing included).',
      labelNames: ['operation', 'outcome'],
      buckets: STORAGE_BUCKETS,
      registers,
    }),
    blobDuration: new Histogram({
      name: 'tensorguard_blob_operation_duration_seconds',
      help: 'Blob store latency by operation (put, get, has, delete, check) and outcome.',
      labelNames: ['operation', 'outcome'],
      buckets: STORAGE_BUCKETS,
      registers,
    }),
    backpressureRefusals: new Counter({
      name: 'tensorguard_backpressure_refusals_total',
      help: 'Requests refused with 503 by backpressure, by exhausted resource (upload_bytes, aggregation_queue, blob_store, shutting_down).',
      labelNames: ['resource'],
      registers,
    }),
    uploadBytesInFlight,
    pendingAggregations,
    blobCircuitState,
    async scrape() {
      const own = await registry.metrics();
      const proc = await processMetricsRegistry().metrics();
      return { contentType: registry.contentType, body: `${own.trimEnd()}\n${proc.trimEnd()}\n` };
    },
  };
  return metrics;
}
