// Test helpers for the operational suites: an app with chosen limits and blob store over a real libsql
// file, and robot-signed uploads with extra headers (Idempotency-Key) or a body streamed on demand.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../app.ts';
import { closeDatabase, openDatabase } from '../db/client.ts';
import { createFsBlobStore, type BlobStore } from '../blobs/fs-store.ts';
import { silentLogger, type Logger } from '../logger.ts';
import type { OperationalLimits } from './limits.ts';
import type { TestRobot, TestServer } from '../testing/harness.ts';
import { serverAuditKeyFromSeed } from '../audit/server-key.ts';
import { randomBytes } from '../../core/random.ts';
import { toBase64 } from '../../core/bytes.ts';
import { ROBOT_HEADERS, signRobotRequest } from '../../core/records/request-signature.ts';

/** Like server/testing/harness.ts createTestServer, with limits and a blob store wrapper of the test's choosing. */
export async function createOpsTestServer(
  options: { limits?: Partial<OperationalLimits>; wrapBlobs?: (store: BlobStore) => BlobStore; logger?: Logger } = {},
): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tg-ops-'));
  const db = await openDatabase({ url: `file:${join(dir, 'tensorguard.db')}` });
  const fsStore = createFsBlobStore({ dir: join(dir, 'blobs') });
  const blobs = options.wrapBlobs ? options.wrapBlobs(fsStore) : fsStore;
  const clock = { now: Date.now() };
  // A per-test audit key, as server/testing/harness.ts does (a real server loads its persistent one).
  const auditKey = serverAuditKeyFromSeed({ seed: randomBytes(32) });
  const app = createApp({ db, blobs, now: () => clock.now, logger: options.logger ?? silentLogger, limits: options.limits, auditKey });
  return {
    app,
    db,
    blobs,
    dir,
    clock,
    async close() {
      closeDatabase({ db });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The signed headers of a robot request over `body` (fresh nonce each call). */
export function robotHeaders(options: { server: TestServer; robot: TestRobot; method: string; path: string; body: Uint8Array }): Record<string, string> {
  const signed = signRobotRequest({ method: options.method, path: options.path, body: options.body, secretKey: options.robot.keys.secretKey, timestamp: options.server.clock.now });
  return {
    [ROBOT_HEADERS.robot]: options.robot.id,
    [ROBOT_HEADERS.timestamp]: String(signed.timestamp),
    [ROBOT_HEADERS.nonce]: signed.nonce,
    [ROBOT_HEADERS.signature]: toBase64(signed.signature),
  };
}

export interface UploadResponse {
  status: number;
  body: any;
  headers: Headers;
}

/** POSTs an update package as the robot, with optional extra headers. */
export async function upload(options: { server: TestServer; robot: TestRobot; roundId: string; body: Uint8Array; headers?: Record<string, string> }): Promise<UploadResponse> {
  const path = `/v1/rounds/${options.roundId}/contributions`;
  const res = await options.server.app.request(path, {
    method: 'POST',
    headers: { ...robotHeaders({ server: options.server, robot: options.robot, method: 'POST', path, body: options.body }), 'content-type': 'application/octet-stream', ...options.headers },
    body: options.body as Uint8Array<ArrayBuffer>,
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, headers: res.headers };
}

/**
 * Starts an upload whose body arrives only when `finish()` is called (declared with Content-Length),
 * so a test can hold request bytes in flight. `response` settles once the server answers.
 */
export function heldUpload(options: { server: TestServer; robot: TestRobot; roundId: string; body: Uint8Array }): { finish(): void; response: Promise<UploadResponse> } {
  const path = `/v1/rounds/${options.roundId}/contributions`;
  let finish!: () => void;
  const gate = new Promise<void>((resolve) => (finish = resolve));
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      await gate;
      controller.enqueue(options.body);
      controller.close();
    },
  });
  const response = (async () => {
    const res = await options.server.app.request(path, {
      method: 'POST',
      headers: {
        ...robotHeaders({ server: options.server, robot: options.robot, method: 'POST', path, body: options.body }),
        'content-type': 'application/octet-stream',
        'content-length': String(options.body.length),
      },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, body, headers: res.headers };
  })();
  return { finish, response };
}

/** Parses a Prometheus text exposition into `name{labels}` -> value (labels as written, sorted by prom-client). */
export function parseExposition(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (m) samples.set(m[1]!, Number(m[2]));
  }
  return { samples, types };
}
