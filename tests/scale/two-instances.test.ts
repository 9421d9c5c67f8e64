// Two stateless server instances sharing one database and one S3 store: two `tensorguard server`
// processes on the same embedded database FILE (WAL; the production setup is a libsql server, see
// docs/OPERATIONS.md "Scaling out") and the same S3-compatible store (s3rver on a loopback port).
// Robots push one round's contributions to both instances at once, a robot's retry lands on the other
// instance, and both instances are asked to close the round at the same moment. Checked: every
// contribution is counted exactly once (rows, sequence numbers, audit leaves), the finalized aggregate
// equals the sum recomputed from the stored packages and decrypts to the sum of the plaintexts, the
// round is finalized once, and the blobs live in the object store, not on the local disk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { buildUpdatePackage, openUpdatePackage } from '../../core/records/update-package.ts';
import { createDecryptor, createEncryptor } from '../../core/he/seal.ts';
import { sumCiphertextBlocks } from '../../core/he/aggregate.ts';
import { PARAM_SET_ID, getParamSet } from '../../core/he/params.ts';
import { spawnServer, type ServerProcess } from '../crash/server-process.ts';
import { openRound, request, robotSignedHeaders, setupFleet, type FleetSetup, type PersonRequest } from '../crash/fixtures.ts';
import { startS3TestServer, type S3TestServer } from '../../server/blobs/s3-test-server.ts';
import { roundAuditActions } from './round-audit.ts';

const ROBOTS = 24;
const paramSet = getParamSet({ id: PARAM_SET_ID });
const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('two server instances on one database and one S3 store', () => {
  let root: string;
  let s3: S3TestServer;
  let a: ServerProcess;
  let b: ServerProcess;
  let setup: FleetSetup;
  const personAt =
    (url: () => string) =>
    (token: string | undefined): PersonRequest =>
    (method, path, body) =>
      request({ url: url(), method, path, body, token });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tg-scale-'));
    s3 = await startS3TestServer();
    const dataDir = join(root, 'data');
    // The first start creates the database, its migrations and the audit key; the second joins it.
    a = await spawnServer({ dataDir, env: s3.env });
    b = await spawnServer({ dataDir, env: s3.env });
    setup = await setupFleet({ person: personAt(() => a.url), robotCount: ROBOTS, realHeKey: true });
  }, 180_000);

  afterAll(async () => {
    const exits = await Promise.all([a?.kill('SIGTERM'), b?.kill('SIGTERM')]);
    for (const exit of exits) if (exit) expect(exit.code).toBe(0);
    await s3?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('counts every contribution once and finalizes the exact sum', async () => {
    const asA = personAt(() => a.url)(setup.token);
    const asB = personAt(() => b.url)(setup.token);
    const roundId = `scale-${randomUUID().slice(0, 8)}`;
    const { config, fingerprint } = await openRound({ setup, person: asA, roundId, quorum: ROBOTS, maxContributors: ROBOTS });
    // Instance B sees the round A opened (shared database).
    expect((await asB('GET', `/v1/rounds/${roundId}`)).body.state).toBe('open');

    const encryptor = await createEncryptor({ publicKey: setup.he.publicKey, paramSetId: PARAM_SET_ID });
    const expected = new BigUint64Array(paramSet.slotCount);
    const packages = setup.robots.map((robot, r) => {
      const slots = new BigUint64Array(paramSet.slotCount);
      for (let i = 0; i < slots.length; i++) {
        slots[i] = BigInt((i * 7919 + r * 104729) % 2 ** 20);
        expected[i]! += slots[i]!;
      }
      const meta = { roundId, robotId: robot.id, fleetId: setup.fleetId, keyVersion: 1, roundConfigFingerprint: fingerprint, valueCount: config.valueCount, ciphertextCount: 1, createdAt: Date.now() };
      return buildUpdatePackage({ meta, ciphertexts: encryptor.encryptSlots({ slots }), secretKey: robot.keys.secretKey, publicKey: robot.keys.publicKey }).bytes;
    });
    encryptor.destroy();

    const path = `/v1/rounds/${roundId}/contributions`;
    const push = async (url: string, r: number) => {
      const body = packages[r]!;
      const res = await fetch(url + path, {
        method: 'POST',
        headers: { ...robotSignedHeaders({ robot: setup.robots[r]!, method: 'POST', path, body }), 'content-type': 'application/octet-stream', 'idempotency-key': `push-${roundId}-${r}` },
        body: body as Uint8Array<ArrayBuffer>,
        signal: AbortSignal.timeout(60_000),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    // Every robot pushes to one instance; robot 0 (a retry after a lost answer) pushes to both at once.
    const answers = await Promise.all([...setup.robots.map((_, r) => push(r % 2 === 0 ? a.url : b.url, r)), push(b.url, 0)]);
    for (const [i, answer] of answers.entries()) expect(answer.status, `${i}: ${JSON.stringify(answer.body)}`).toBe(201);
    expect(answers[ROBOTS]!.body.contributionId).toBe(answers[0]!.body.contributionId); // the retry is a replay
    const counts = answers.slice(0, ROBOTS).map((x) => x.body.count as number);
    expect([...counts].sort((x, y) => x - y)).toEqual(Array.from({ length: ROBOTS }, (_, i) => i + 1));

    // Both instances close the round at the same moment: one finalizes, both answer finalized.
    const closes = await Promise.all([asA('POST', `/v1/rounds/${roundId}/close`), asB('POST', `/v1/rounds/${roundId}/close`)]);
    for (const closed of closes) {
      expect(closed.status, JSON.stringify(closed.body)).toBe(200);
      expect(closed.body.state).toBe('finalized');
    }

    const round = (await asB('GET', `/v1/rounds/${roundId}`)).body;
    expect(round.contributions).toBe(ROBOTS);
    const rows = (await asA('GET', `/v1/rounds/${roundId}/contributions`)).body as Array<{ id: string; seq: number; robotId: string; packageSha256: string; aggregateSha256: string }>;
    expect(rows.map((row) => row.seq)).toEqual(Array.from({ length: ROBOTS }, (_, i) => i + 1));
    expect(new Set(rows.map((row) => row.robotId))).toEqual(new Set(setup.robots.map((robot) => robot.id)));

    // The aggregate is the sum of the stored packages (each row names its prefix sum), read through either instance.
    let sum: Uint8Array | null = null;
    for (const [i, row] of rows.entries()) {
      const pkg = await (i % 2 ? asA : asB)('GET', `/v1/rounds/${roundId}/contributions/${row.id}/package`);
      expect(pkg.status).toBe(200);
      expect(sha256Hex(pkg.body)).toBe(row.packageSha256);
      const robot = setup.robots.find((x) => x.id === row.robotId)!;
      sum = sumCiphertextBlocks({ accumulator: sum, addend: openUpdatePackage({ bytes: pkg.body, robotPublicKey: robot.keys.publicKey }).ciphertexts, parmsId: setup.he.parmsId, paramSet });
      expect(sha256Hex(sum)).toBe(row.aggregateSha256);
    }
    const aggregate = await asB('GET', `/v1/rounds/${roundId}/aggregate/ciphertext`);
    expect(aggregate.status).toBe(200);
    expect(Buffer.compare(aggregate.body, sum!)).toBe(0);
    const decryptor = await createDecryptor({ secretKey: setup.he.secretKey, paramSetId: PARAM_SET_ID });
    try {
      const slots = decryptor.decryptSlots({ ciphertexts: aggregate.body });
      let mismatches = 0;
      for (let i = 0; i < expected.length; i++) if (slots[i] !== expected[i]) mismatches++;
      expect(mismatches).toBe(0);
    } finally {
      decryptor.destroy();
    }

    // Audit: one accept per contribution, one finalize for the round.
    const actions = await roundAuditActions(asA, roundId);
    expect(actions.filter((x) => x === 'contribution.accept').length).toBe(ROBOTS);
    expect(actions.filter((x) => x === 'round.finalize').length).toBe(1);

    // The blobs went to the object store: the local blob directory holds none.
    const local = await readdir(join(root, 'data', 'blobs')).catch(() => [] as string[]);
    expect(local.filter((name) => /^[0-9a-f]{2}$/.test(name))).toEqual([]);
  }, 180_000);
});
