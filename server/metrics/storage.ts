// Latency of the storage the server depends on: database operations and blob store calls.
//
// Database: the libsql client's `execute` and `batch` (every query outside a transaction) and the
// drizzle `transaction` (a whole write transaction, including its wait on the write queue of
// server/db/client.ts). The client is patched once; each app that observes it adds a listener, so many
// apps over one database (tests) do not stack wrappers. Blob store: a wrapper per app.
import type { Database } from '../db/client.ts';
import type { BlobStore } from '../blobs/fs-store.ts';
import type { ServerMetrics } from './registry.ts';

type Listener = (operation: 'query' | 'batch' | 'transaction', outcome: 'ok' | 'error', seconds: number) => void;
const LISTENERS = Symbol('tensorguard.db-listeners');

async function timed<T>(run: () => Promise<T>, report: (outcome: 'ok' | 'error', seconds: number) => void): Promise<T> {
  const start = performance.now();
  try {
    const result = await run();
    report('ok', (performance.now() - start) / 1000);
    return result;
  } catch (error) {
    report('error', (performance.now() - start) / 1000);
    throw error;
  }
}

export function observeDatabase(options: { db: Database; metrics: ServerMetrics }): void {
  const target = options.db as Database & { [LISTENERS]?: Listener[] };
  const listener: Listener = (operation, outcome, seconds) => options.metrics.dbDuration.observe({ operation, outcome }, seconds);
  if (target[LISTENERS]) {
    target[LISTENERS].push(listener);
    return;
  }
  const listeners: Listener[] = [listener];
  target[LISTENERS] = listeners;
  const emit = (operation: 'query' | 'batch' | 'transaction') => (outcome: 'ok' | 'error', seconds: number) => {
    for (const l of listeners) l(operation, outcome, seconds);
  };
  const client = target.$client;
  const execute = client.execute.bind(client);
  const batch = client.batch.bind(client);
  client.execute = ((...args: Parameters<typeof execute>) => timed(() => execute(...args), emit('query'))) as typeof client.execute;
  client.batch = ((...args: Parameters<typeof batch>) => timed(() => batch(...args), emit('batch'))) as typeof client.batch;
  const transaction = target.transaction.bind(target);
  target.transaction = ((...args: Parameters<typeof transaction>) => timed(() => transaction(...args), emit('transaction'))) as Database['transaction'];
}

export function observeBlobStore(options: { store: BlobStore; metrics: ServerMetrics }): BlobStore {
  const { store, metrics } = options;
  const wrap =
    <A extends unknown[], R>(operation: string, fn: (...args: A) => Promise<R>) =>
    (...args: A) =>
      timed(() => fn(...args), (outcome, seconds) => metrics.blobDuration.observe({ operation, outcome }, seconds));
  return {
    put: wrap('put', (bytes: Uint8Array) => store.put(bytes)),
    get: wrap('get', (name: string) => store.get(name)),
    has: wrap('has', (name: string) => store.has(name)),
    delete: wrap('delete', (name: string) => store.delete(name)),
    check: wrap('check', () => store.check()),
  };
}
