// Content-addressed blob store on any S3-compatible service (AWS S3, MinIO, Ceph RGW, s3rver in tests).
//
// Same contract as the filesystem store (server/blobs/fs-store.ts): a blob's name is the SHA-256 of its
// bytes, stored under the key <prefix>ab/cdef... . put() resolves only after the PutObject request
// succeeded — S3 acknowledges a PUT once the object is durably stored (read-after-write consistent on
// AWS since 2020), so the contribution route still writes blobs before the transaction that names them
// and acknowledges nothing that is not stored. The PUT carries Content-MD5, so a body damaged in transit
// is refused by the service instead of being stored. get() re-hashes what it reads.
import { createHash, randomBytes } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { IntegrityError } from '../../core/errors.ts';
import type { BlobStore } from './fs-store.ts';

const HEX64 = /^[0-9a-f]{64}$/;
const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function checkName(name: string): string {
  if (typeof name !== 'string' || !HEX64.test(name)) throw new TypeError(`"sha256" expected 64 lowercase hex digits, got ${String(name).slice(0, 80)}`);
  return name;
}

export interface S3BlobStoreOptions {
  /** e.g. http://127.0.0.1:9000 (MinIO, s3rver); omit for AWS itself. */
  endpoint?: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style URLs (endpoint/bucket/key): what MinIO and s3rver expect. Default true. */
  forcePathStyle?: boolean;
  /** Key prefix inside the bucket (e.g. "tensorguard/"), default "". */
  prefix?: string;
  /** Per-request timeout in ms (default 30000): a hung store fails the call, and the circuit breaker counts it. */
  requestTimeoutMs?: number;
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.Code === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

export function createS3BlobStore(options: S3BlobStoreOptions): BlobStore & { readonly bucket: string; destroy(): void } {
  if (typeof options?.bucket !== 'string' || options.bucket.length === 0) throw new TypeError('"bucket" expected a bucket name, got nothing');
  const prefix = options.prefix ?? '';
  const client = new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: options.forcePathStyle ?? true,
    credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
    // Checksums only where the operation needs them: S3-compatible servers differ in their support for
    // the newer flexible checksums (aws-chunked trailers); Content-MD5 below covers the PUT body.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const keyOf = (name: string) => `${prefix}${name.slice(0, 2)}/${name.slice(2)}`;
  const signal = () => AbortSignal.timeout(timeoutMs);

  async function putObject(name: string, bytes: Uint8Array): Promise<void> {
    await client.send(
      new PutObjectCommand({
        Bucket: options.bucket,
        Key: keyOf(name),
        Body: bytes,
        ContentLength: bytes.length,
        ContentType: 'application/octet-stream',
        ContentMD5: createHash('md5').update(bytes).digest('base64'),
      }),
      { abortSignal: signal() },
    );
  }

  const store = {
    bucket: options.bucket,
    async put(bytes: Uint8Array) {
      if (!(bytes instanceof Uint8Array)) throw new TypeError('"bytes" expected Uint8Array');
      const name = sha256Hex(bytes);
      // Same name, same content: an object that exists is already stored.
      if (await store.has(name)) return name;
      await putObject(name, bytes);
      return name;
    },
    async get(name: string) {
      checkName(name);
      let bytes: Uint8Array;
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: options.bucket, Key: keyOf(name) }), { abortSignal: signal() });
        bytes = await res.Body!.transformToByteArray();
      } catch (error) {
        if (isNotFound(error)) return null;
        throw error;
      }
      if (sha256Hex(bytes) !== name) throw new IntegrityError(`blob ${name} does not match its SHA-256 (corrupted in the object store)`);
      return bytes;
    },
    async has(name: string) {
      checkName(name);
      try {
        await client.send(new HeadObjectCommand({ Bucket: options.bucket, Key: keyOf(name) }), { abortSignal: signal() });
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    },
    async delete(name: string) {
      checkName(name);
      await client.send(new DeleteObjectCommand({ Bucket: options.bucket, Key: keyOf(name) }), { abortSignal: signal() });
    },
    async check() {
      const probe = new Uint8Array(randomBytes(32));
      const name = sha256Hex(probe);
      await putObject(name, probe);
      const back = await store.get(name);
      if (back === null || Buffer.compare(back, probe) !== 0) throw new Error('blob store: probe did not read back');
      await store.delete(name);
    },
    destroy() {
      client.destroy();
    },
  };
  return store;
}
