// Starts the sync server: data directory, database (migrated), blob store, and the HTTP listener; and
// stops it gracefully.
//
// Graceful shutdown (close(), called on SIGTERM/SIGINT by cli/commands/server.ts): stop accepting
// connections, mark the app as draining (/readyz 503 `shutting_down`; a request that still arrives on
// an open keep-alive connection gets 503 + `Connection: close`), let the requests in flight finish (up
// to TG_SHUTDOWN_TIMEOUT_MS, then their connections are cut), and only then close the database — so a
// contribution that was being committed is either committed and answered, or not committed at all.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.ts';
import { closeDatabase, openDatabase } from './db/client.ts';
import { endIdleVerifyWorkers } from './aggregation/verify-pool.ts';
import { endIdleWriters } from './blobs/durable-writer.ts';
import { reclaimDeadLocalLeases } from './db/leases.ts';
import { sweepTemporaryFiles } from './blobs/fs-store.ts';
import { blobStoreConfigFromEnv, createBlobStore, type BlobStoreConfig } from './blobs/select.ts';
import { createJsonLogger, type Logger } from './logger.ts';
import { loadOrCreateServerAuditKey } from './audit/server-key.ts';
import { Admission } from './operations/admission.ts';
import { resolveLimits, type OperationalLimits } from './operations/limits.ts';
import { assertServerConfig } from './config.ts';
import { rateLimitsFromEnv, type RateLimits } from './http/rate-limit.ts';

export interface RunningServer {
  url: string;
  port: number;
  /** Graceful shutdown; resolves once the listener and the database are closed (idempotent). */
  close(): Promise<{ drained: boolean; cutRequests: number }>;
}

export async function startServer(options: {
  port: number;
  host?: string;
  dataDir: string;
  databaseUrl?: string;
  databaseAuthToken?: string;
  logger?: Logger;
  limits?: Partial<OperationalLimits>;
  /** POST /v1/bench/null-sink for bench/ingest.ts (TG_BENCH_NULL_SINK=1). */
  benchNullSink?: boolean;
  /** The audit checkpoint signing key file (default <dataDir>/audit-signing-key.json; TG_SERVER_KEY_FILE). */
  auditKeyFile?: string;
  /** The blob store (server/blobs/select.ts); default from TG_BLOB_STORE / S3_* (the filesystem under dataDir). */
  blobStore?: BlobStoreConfig;
  /**
   * The environment the configuration checks read (server/config.ts): TG_ENV=production refuses to
   * start with weak or missing secrets, development-only settings or plain HTTP. Default: none (tests).
   */
  env?: Record<string, string | undefined>;
  rateLimits?: Partial<RateLimits>;
}): Promise<RunningServer> {
  const env = options.env ?? {};
  const config = assertServerConfig({ ...env, ...(options.benchNullSink ? { TG_BENCH_NULL_SINK: '1' } : {}) });
  const rateLimits = { ...rateLimitsFromEnv(env), ...options.rateLimits };
  const logger = options.logger ?? createJsonLogger();
  const limits = resolveLimits(options.limits);
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const blobConfig = options.blobStore ?? blobStoreConfigFromEnv({ env: process.env, dataDir });
  if (blobConfig.kind === 'fs') {
    const blobDir = blobConfig.dir!;
    await mkdir(blobDir, { recursive: true, mode: 0o700 });
    // Temp files of writes a crash interrupted (never renamed into place, never named by the database).
    const swept = await sweepTemporaryFiles({ dir: blobDir });
    if (swept > 0) logger.info('removed temporary blob files left by an interrupted write', { count: swept });
  }
  const audit = await loadOrCreateServerAuditKey({ dataDir, keyFile: options.auditKeyFile });
  if (audit.created) logger.info('created the audit signing key', { path: audit.path });
  const url = options.databaseUrl ?? `file:${join(dataDir, 'tensorguard.db')}`;
  const db = await openDatabase({ url, authToken: options.databaseAuthToken });
  // Finalization leases a process of this host left behind when it died (server/db/leases.ts).
  const reclaimed = await reclaimDeadLocalLeases({ db });
  if (reclaimed > 0) logger.info('freed leases of dead processes on this host', { count: reclaimed });
  const admission = new Admission({ limits });
  const app = createApp({ db, blobs: createBlobStore({ config: blobConfig }), logger, admission, benchNullSink: options.benchNullSink, auditKey: audit.key, rateLimits, secureCookies: config.secureCookies, trustProxy: config.trustProxy, reauthWindowMs: config.reauthWindowMs });
  const host = options.host ?? '127.0.0.1';

  let server: Server;
  try {
    server = await new Promise<Server>((resolveListen, reject) => {
      const s = serve({ fetch: app.fetch, port: options.port, hostname: host }, () => resolveListen(s as Server)) as Server;
      s.once('error', reject);
    });
  } catch (error) {
    closeDatabase({ db });
    throw error;
  }

  // Requests in flight: counted from the request event to the end of the response (or the socket).
  let inFlight = 0;
  let idle: (() => void) | null = null;
  server.on('request', (_req, res) => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    });
  });

  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const base = `http://${shownHost}:${port}`;
  logger.info('server listening', { url: base, dataDir, database: url.startsWith('file:') ? 'embedded' : 'libsql', blobStore: blobConfig.kind });

  let closing: Promise<{ drained: boolean; cutRequests: number }> | null = null;
  async function shutdown(): Promise<{ drained: boolean; cutRequests: number }> {
    admission.startDraining();
    logger.info('shutting down: no new connections, finishing requests in flight', { inFlight });
    const listenerClosed = new Promise<void>((done) => server.close(() => done()));
    server.closeIdleConnections();
    let drained = true;
    let cutRequests = 0;
    if (inFlight > 0) {
      const finished = new Promise<void>((done) => (idle = done));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((done) => (timer = setTimeout(() => done('timeout'), limits.shutdownTimeoutMs)));
      drained = (await Promise.race([finished, timedOut])) !== 'timeout';
      clearTimeout(timer);
      if (!drained) {
        cutRequests = inFlight;
        logger.warn('shutdown timeout: cutting the connections of requests still in flight', { inFlight, timeoutMs: limits.shutdownTimeoutMs });
      }
    }
    server.closeAllConnections();
    await listenerClosed;
    if (url.startsWith('file:')) {
      // Fold the WAL back into the database file, so a stopped server leaves one self-contained file.
      await db.$client.execute('PRAGMA wal_checkpoint(TRUNCATE)').catch((error: unknown) => logger.warn('shutdown: WAL checkpoint failed', { error }));
    }
    closeDatabase({ db });
    await Promise.all([endIdleVerifyWorkers(), endIdleWriters()]).catch((error: unknown) => logger.warn('shutdown: ending worker threads failed', { error }));
    logger.info('shutdown complete', { drained, cutRequests });
    return { drained, cutRequests };
  }

  return {
    url: base,
    port,
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
