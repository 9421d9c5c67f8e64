// `tensorguard admin backup` / `restore`: a demo round (opened, pushed by robots, finalized, reviewed,
// released) on a real server; a backup taken while that server runs and keeps writing; a restore into
// a fresh data directory — once with the filesystem blob store, once into an S3 store (s3rver) — and a
// server started on it. Checked there: the audit log verifies against the head the auditor's home
// pinned before the backup (same checkpoint key, consistent tree), and the finalized round's aggregate,
// contribution packages and release payloads are intact. A damaged backup file is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createContext } from '../../cli/context.ts';
import { runDemo } from '../../cli/commands/demo.ts';
import { auditVerify } from '../../cli/commands/audit.ts';
import { adminBackup, adminRestore } from '../../cli/commands/admin-backup.ts';
import { startServer, type RunningServer } from '../../server/main.ts';
import { startS3TestServer, type S3TestServer } from '../../server/blobs/s3-test-server.ts';
import type { BlobStoreConfig } from '../../server/blobs/select.ts';
import { request } from '../crash/fixtures.ts';

const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;
const quiet = (home: string) => createContext({ home, json: true, quiet: true });
const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('admin backup and restore', () => {
  let root: string;
  let s3: S3TestServer;
  let officerHome: string;
  let token: string;
  let original: { round: any; releases: any; aggregateSha256: string; packages: string[]; payloads: string[] };
  let backupFile: string;

  /** Points the officer home's session at a (restarted or restored) server. */
  async function useServer(url: string) {
    const path = join(officerHome, 'config.json');
    const config = JSON.parse(await readFile(path, 'utf8'));
    await writeFile(path, JSON.stringify({ ...config, server: url }), { mode: 0o600 });
    token = config.token;
  }
  const get = (url: string, path: string) => request({ url, method: 'GET', path, token });

  async function snapshotOf(url: string) {
    const rounds = (await get(url, '/v1/rounds')).body as any[];
    const round = rounds.find((r) => r.state === 'finalized');
    expect(round).toBeTruthy();
    const aggregate = await get(url, `/v1/rounds/${round.id ?? round.roundId}/aggregate/ciphertext`);
    expect(aggregate.status).toBe(200);
    const contributions = (await get(url, `/v1/rounds/${round.id ?? round.roundId}/contributions`)).body as any[];
    const packages: string[] = [];
    for (const c of contributions) {
      const pkg = await get(url, `/v1/rounds/${round.id ?? round.roundId}/contributions/${c.id}/package`);
      expect(pkg.status).toBe(200);
      packages.push(sha256Hex(pkg.body));
    }
    const releases = (await get(url, `/v1/releases?fleet=${round.fleetId}`)).body;
    expect(Array.isArray(releases) && releases.length > 0, JSON.stringify(releases)).toBe(true);
    const payloads: string[] = [];
    for (const r of releases as any[]) {
      const one = await get(url, `/v1/releases/${r.id ?? r.releaseId}`);
      expect(one.status).toBe(200);
      payloads.push(JSON.stringify(one.body));
    }
    return { round, releases, aggregateSha256: sha256Hex(aggregate.body), packages, payloads };
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tg-backup-'));
    s3 = await startS3TestServer();
    // A complete round with a signed release, then the server is stopped (the demo keeps its data).
    await runDemo(quiet(join(root, 'demo-log')), { robots: 2, params: 20_000, rounds: 1, task: 'synthetic', dpMode: 'off', keep: join(root, 'demo') } as never);
    officerHome = join(root, 'demo', 'officer');
  }, 300_000);

  afterAll(async () => {
    await s3?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('backs up a running server and restores it intact (filesystem and S3 blob stores)', async () => {
    const dataDir = join(root, 'demo', 'server-data');
    const live: RunningServer = await startServer({ port: 0, host: '127.0.0.1', dataDir, logger: silent });
    try {
      await useServer(live.url);
      const pinned = await auditVerify(quiet(officerHome), { full: true });
      expect(pinned).toMatchObject({ keyPinnedNow: true });
      original = await snapshotOf(live.url);
      // The backup runs while the server keeps writing (fleets created concurrently).
      backupFile = join(root, 'tg.backup');
      const writes = Promise.all(Array.from({ length: 5 }, (_, i) => request({ url: live.url, method: 'POST', path: '/v1/fleets', token, body: { name: `during-backup-${i}` } })));
      const backup = await adminBackup(quiet(root), { out: backupFile, dataDir });
      for (const w of await writes) expect(w.status).toBe(201);
      expect(backup.blobs).toBeGreaterThanOrEqual(original.packages.length + 1 + original.payloads.length);
    } finally {
      await live.close();
    }

    const targets: Array<[string, BlobStoreConfig | undefined]> = [
      ['fs', undefined],
      ['s3', { kind: 's3', s3: { ...s3.options, endpoint: s3.options.endpoint, forcePathStyle: true, prefix: 'restored/' } as never }],
    ];
    for (const [kind, blobStore] of targets) {
      const restoredDir = join(root, `restored-${kind}`);
      const restored = await adminRestore(quiet(root), { from: backupFile, dataDir: restoredDir, blobStore });
      expect(restored.blobStore).toBe(kind);
      await expect(adminRestore(quiet(root), { from: backupFile, dataDir: restoredDir, blobStore })).rejects.toThrow(/fresh data directory/);
      const server = await startServer({ port: 0, host: '127.0.0.1', dataDir: restoredDir, logger: silent, blobStore });
      try {
        await useServer(server.url);
        // The audit log continues the head pinned before the backup, under the same checkpoint key.
        const verified = await auditVerify(quiet(officerHome), { full: true });
        expect(verified).toMatchObject({ keyPinnedNow: false });
        const now = await snapshotOf(server.url);
        expect(now.aggregateSha256).toBe(original.aggregateSha256);
        expect(now.round).toEqual(original.round);
        expect(now.packages).toEqual(original.packages);
        expect(now.releases).toEqual(original.releases);
        expect(now.payloads).toEqual(original.payloads);
        expect((await request({ url: server.url, method: 'GET', path: '/readyz' })).status).toBe(200);
      } finally {
        await server.close();
      }
    }
  }, 300_000);

  it('refuses a damaged or truncated backup file before writing anything', async () => {
    const bytes = new Uint8Array(await readFile(backupFile));
    const flipped = bytes.slice();
    flipped[Math.floor(bytes.length / 2)]! ^= 1;
    await writeFile(join(root, 'flipped.backup'), flipped);
    await expect(adminRestore(quiet(root), { from: join(root, 'flipped.backup'), dataDir: join(root, 'r1') })).rejects.toThrow(/SHA-256|malformed|end record|truncated/);
    await writeFile(join(root, 'short.backup'), bytes.subarray(0, bytes.length - 10));
    await expect(adminRestore(quiet(root), { from: join(root, 'short.backup'), dataDir: join(root, 'r2') })).rejects.toThrow(/truncated|malformed/);
  });
});
