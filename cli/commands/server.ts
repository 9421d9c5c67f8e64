// `tensorguard server`: start the sync server from the embedded defaults or the environment, and stop
// it gracefully on SIGINT/SIGTERM (server/main.ts: stop accepting, finish in-flight requests, close the
// database; exit 0). A second signal during the drain exits at once with status 1.
// Environment: PORT, HOST, DATA_DIR, DATABASE_URL, DATABASE_AUTH_TOKEN, the limits of
// server/operations/limits.ts (TG_MAX_INFLIGHT_UPLOAD_BYTES, ...) and TG_BENCH_NULL_SINK=1
// (benchmark route only), TG_ENV, TG_PUBLIC_URL, TG_TRUST_PROXY(_TLS) and TG_RATE_* (server/config.ts,
// server/http/rate-limit.ts); docs/OPERATIONS.md lists them. TG_ENV=production refuses weak settings.
import { startServer } from '../../server/main.ts';
import { limitsFromEnv } from '../../server/operations/limits.ts';

export async function runServerCommand(options: { port?: number; host?: string; dataDir?: string; json: boolean }): Promise<void> {
  const port = options.port ?? (process.env.PORT ? Number(process.env.PORT) : 8787);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`"PORT" expected 0..65535, got ${process.env.PORT}`);
  const server = await startServer({
    port,
    host: options.host ?? process.env.HOST ?? '0.0.0.0',
    dataDir: options.dataDir ?? process.env.DATA_DIR ?? './data',
    databaseUrl: process.env.DATABASE_URL,
    databaseAuthToken: process.env.DATABASE_AUTH_TOKEN,
    limits: limitsFromEnv(process.env),
    benchNullSink: process.env.TG_BENCH_NULL_SINK === '1',
    auditKeyFile: process.env.TG_SERVER_KEY_FILE,
    env: process.env,
  });
  const line = options.json ? JSON.stringify({ url: server.url, port: server.port }) : `TensorGuard sync server listening on ${server.url}`;
  process.stdout.write(line + '\n');
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`tensorguard: ${signal} again during shutdown, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`tensorguard: shutdown failed: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
