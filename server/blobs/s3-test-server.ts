// An S3-compatible server for tests and benches: s3rver (the S3 REST API over a temp directory) on a
// loopback port, with one bucket. Test-only: s3rver is a devDependency.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3BlobStoreOptions } from './s3-store.ts';

export interface S3TestServer {
  /** Options for createS3BlobStore (endpoint, bucket, credentials). */
  options: S3BlobStoreOptions;
  /** The same as environment variables for a server process (TG_BLOB_STORE=s3 ...). */
  env: Record<string, string>;
  directory: string;
  close(): Promise<void>;
}

export async function startS3TestServer(options: { bucket?: string } = {}): Promise<S3TestServer> {
  const { default: S3rver } = await import('s3rver');
  const bucket = options.bucket ?? 'tensorguard-test';
  const directory = await mkdtemp(join(tmpdir(), 'tg-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  // s3rver's built-in account.
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  return {
    options: { endpoint, bucket, region: 'us-east-1', forcePathStyle: true, ...credentials },
    env: {
      TG_BLOB_STORE: 's3',
      S3_ENDPOINT: endpoint,
      S3_BUCKET: bucket,
      S3_REGION: 'us-east-1',
      S3_ACCESS_KEY_ID: credentials.accessKeyId,
      S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    },
    directory,
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
