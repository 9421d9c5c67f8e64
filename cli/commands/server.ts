// `tensorguard server`: start the sync server from the embedded defaults or the environment, and stop
// it cleanly on SIGINT/SIGTERM.
import { startServer } from '../../server/main.ts';

export async function runServerCommand(options: { port?: number; host?: string; dataDir?: string; json: boolean }): Promise<void> {
  const port = options.port ?? (process.env.PORT ? Number(process.env.PORT) : 8787);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`"PORT" expected 0..65535, got ${process.env.PORT}`);
  const server = await startServer({
    port,
    host: options.host ?? process.env.HOST ?? '0.0.0.0',
    dataDir: options.dataDir ?? process.env.DATA_DIR ?? './data',
    databaseUrl: process.env.DATABASE_URL,
    databaseAuthToken: process.env.DATABASE_AUTH_TOKEN,
  });
  const line = options.json ? JSON.stringify({ url: server.url, port: server.port }) : `TensorGuard sync server listening on ${server.url}`;
  process.stdout.write(line + '\n');
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
