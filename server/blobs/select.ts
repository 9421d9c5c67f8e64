// Chooses the blob store from the environment: the filesystem under DATA_DIR (default) or an
// S3-compatible object store (TG_BLOB_STORE=s3), which several server instances can share.
import { join } from 'node:path';
import { createFsBlobStore, type BlobStore } from './fs-store.ts';
import { createS3BlobStore } from './s3-store.ts';

export type BlobStoreKind = 'fs' | 's3';

export interface BlobStoreConfig {
  kind: BlobStoreKind;
  /** fs: the directory (default <dataDir>/blobs). */
  dir?: string;
  s3?: { endpoint?: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string; forcePathStyle: boolean; prefix: string };
}

/**
 * Reads TG_BLOB_STORE (fs | s3), and for s3: S3_BUCKET (required), S3_ENDPOINT, S3_REGION (default
 * us-east-1), S3_ACCESS_KEY_ID + S3_SECRET_ACCESS_KEY (required), S3_FORCE_PATH_STYLE (default true; "0"
 * or "false" for virtual-hosted style), S3_PREFIX (default ""). A bad combination throws at start.
 */
export function blobStoreConfigFromEnv(options: { env: NodeJS.ProcessEnv; dataDir: string }): BlobStoreConfig {
  const { env } = options;
  const kind = (env.TG_BLOB_STORE ?? 'fs').trim().toLowerCase();
  if (kind === 'fs' || kind === '') return { kind: 'fs', dir: join(options.dataDir, 'blobs') };
  if (kind !== 's3') throw new RangeError(`"TG_BLOB_STORE" expected fs or s3, got ${JSON.stringify(env.TG_BLOB_STORE)}`);
  const required = (name: string): string => {
    const value = env[name];
    if (!value) throw new RangeError(`"${name}" expected a value when TG_BLOB_STORE=s3, got nothing`);
    return value;
  };
  const pathStyle = (env.S3_FORCE_PATH_STYLE ?? 'true').trim().toLowerCase();
  return {
    kind: 's3',
    s3: {
      endpoint: env.S3_ENDPOINT || undefined,
      bucket: required('S3_BUCKET'),
      region: env.S3_REGION || 'us-east-1',
      accessKeyId: required('S3_ACCESS_KEY_ID'),
      secretAccessKey: required('S3_SECRET_ACCESS_KEY'),
      forcePathStyle: !(pathStyle === '0' || pathStyle === 'false'),
      prefix: env.S3_PREFIX ?? '',
    },
  };
}

export function createBlobStore(options: { config: BlobStoreConfig }): BlobStore {
  const { config } = options;
  if (config.kind === 's3') return createS3BlobStore(config.s3!);
  return createFsBlobStore({ dir: config.dir! });
}
