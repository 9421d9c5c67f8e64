// Starts the sync server: data directory, database (migrated), blob store, and the HTTP listener.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.ts';
import { closeDatabase, openDatabase } from './db/client.ts';
import { createFsBlobStore } from './blobs/fs-store.ts';
import { createJsonLogger, type Logger } from './logger.ts';

export async function startServer(options: {
  port: number;
  host?: string;
  dataDir: string;
  databaseUrl?: string;
  databaseAuthToken?: string;
  logger?: Logger;
}): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const logger = options.logger ?? createJsonLogger();
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const blobDir = join(dataDir, 'blobs');
  await mkdir(blobDir, { recursive: true, mode: 0o700 });
  const url = options.databaseUrl ?? `file:${join(dataDir, 'tensorguard.db')}`;
  const db = await openDatabase({ url, authToken: options.databaseAuthToken });
  const app = createApp({ db, blobs: createFsBlobStore({ dir: blobDir }), logger });
  const host = options.host ?? '127.0.0.1';

  const server = await new Promise<ReturnType<typeof serve>>((resolveListen, reject) => {
    const s = serve({ fetch: app.fetch, port: options.port, hostname: host }, () => resolveListen(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const base = `http://${shownHost}:${port}`;
  logger.info('server listening', { url: base, dataDir, database: url.startsWith('file:') ? 'embedded' : 'libsql' });

  let closed: Promise<void> | null = null;
  return {
    url: base,
    port,
    close() {
      closed ??= new Promise<void>((done) => {
        server.close(() => done());
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }).then(() => closeDatabase({ db }));
      return closed;
    },
  };
}
