// Crash safety of the real server process: robots push encrypted contributions concurrently while the
// server is killed with SIGKILL at random moments (during pushes and during round finalization) and
// restarted on the same data directory. After every round it proves:
//   - no acknowledged (201) contribution is lost, and a retry after a lost answer is not a duplicate
//     (robots with an Idempotency-Key get their original 201; robots without one get 409 and are found
//     committed exactly once);
//   - no contribution is counted twice (one row per robot, sequence 1..n, one audit leaf each);
//   - the finalized aggregate equals the sum recomputed from the stored package ciphertexts
//     (core/he/aggregate.ts sumCiphertextBlocks), every intermediate aggregate named by a row is that
//     prefix sum, and it decrypts to the sum of the plaintexts the robots encrypted.
// Bounded: as many rounds as fit in BUDGET_MS (at least MIN_ROUNDS).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { buildUpdatePackage, openUpdatePackage } from '../../core/records/update-package.ts';
import { createDecryptor, createEncryptor } from '../../core/he/seal.ts';
import { sumCiphertextBlocks } from '../../core/he/aggregate.ts';
import { PARAM_SET_ID, getParamSet } from '../../core/he/params.ts';
import { spawnServer, type ServerProcess } from './server-process.ts';
import { openRound, request, robotSignedHeaders, setupFleet, type FleetRobot, type FleetSetup, type PersonRequest } from './fixtures.ts';

const ROBOTS = 6;
const BUDGET_MS = 50_000;
const MIN_ROUNDS = 6;
const MAX_ROUNDS = 40;
const paramSet = getParamSet({ id: PARAM_SET_ID });

/** mulberry32: a small seeded PRNG, so a failing schedule can be replayed from the printed seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Failpoints (server/operations/failpoints.ts) make the server SIGKILL itself in the windows a kill from
 * outside almost never hits: after the blobs are written, inside the commit, between the commit and
 * the answer, and inside or right after a round's finalization.
 */
const FAILPOINTS = 'contribution.after_blobs=0.03,contribution.in_transaction=0.03,contribution.after_commit=0.06,round.in_finalize=0.15,round.after_finalize=0.15';

/**
 * The server under test: one data directory, one process at a time, killed (by the test or by a
 * failpoint) and restarted on the same data directory. Requests made while it is down wait for the
 * restarted process.
 */
class CrashingServer {
  #up: Promise<ServerProcess>;
  #killing = false;
  kills = 0;
  failpointKills = 0;
  constructor(readonly dataDir: string) {
    this.#up = this.#start();
  }
  #generation = 0;
  #start(): Promise<ServerProcess> {
    const generation = ++this.#generation;
    const started = spawnServer({ dataDir: this.dataDir, env: { TG_FAILPOINTS: FAILPOINTS, TG_RATE_ROBOT_CONTRIBUTIONS_PER_MIN: '100000', TG_RATE_ROBOT_PER_MIN: '100000', TG_RATE_USER_PER_MIN: '100000' } /* retries after kills would trip the per-robot budget, which tests/security covers */ });
    void started.then((proc) =>
      proc.exited.then((exit) => {
        if (this.#killing || generation !== this.#generation) return;
        // A failpoint fired: the process killed itself. Restart it like a supervisor would.
        if (exit.signal !== 'SIGKILL') throw new Error(`server exited unexpectedly: ${JSON.stringify(exit)}\n${proc.stderr()}`);
        this.failpointKills++;
        this.#up = this.#start();
      }),
    );
    return started;
  }
  /** The URL of the running server, waiting through a restart. */
  async url(): Promise<string> {
    return (await this.#up).url;
  }
  /** SIGKILL now, then restart on the same data directory. */
  async crash(): Promise<void> {
    const proc = await this.#up;
    const restarted = (async () => {
      this.#killing = true;
      const exit = await proc.kill('SIGKILL');
      this.#killing = false;
      if (exit.signal !== 'SIGKILL') throw new Error(`server exited with ${JSON.stringify(exit)} instead of being killed`);
      this.kills++;
      return this.#start();
    })();
    this.#up = restarted;
    await restarted;
  }
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
    const proc = await this.#up.catch(() => null);
    this.#killing = true;
    return proc ? proc.kill('SIGTERM') : null;
  }
}

interface Robot extends FleetRobot {
  useIdempotencyKey: boolean;
}

describe('crash safety under SIGKILL', () => {
  let root: string;
  let server: CrashingServer;
  let setup: FleetSetup;
  const robots: Robot[] = [];
  const seed = Number(process.env.TG_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = prng(seed);

  /** A person's request that waits through restarts (network errors are retried). */
  const personAs =
    (token: string | undefined): PersonRequest =>
    async (method, path, body) => {
      for (;;) {
        try {
          return await request({ url: await server.url(), method, path, body, token });
        } catch {
          await sleep(10); // the server is being restarted
        }
      }
    };
  let person: PersonRequest;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tg-crash-'));
    server = new CrashingServer(join(root, 'data'));
    setup = await setupFleet({ person: personAs, robotCount: ROBOTS, realHeKey: true });
    person = personAs(setup.token);
    // Two robots of three send an Idempotency-Key (as the robot CLI does); the third relies on 409.
    setup.robots.forEach((robot, i) => robots.push({ ...robot, useIdempotencyKey: i % 3 !== 2 }));
  }, 120_000);

  afterAll(async () => {
    const exit = await server?.stop();
    if (exit) expect(exit.code).toBe(0); // SIGTERM: graceful shutdown exits 0
    await rm(root, { recursive: true, force: true });
  });

  /**
   * Pushes one package until the server answers for good: 201 (acknowledged), or — for a robot without
   * an Idempotency-Key — 409 duplicate_contribution (its earlier, unanswered attempt committed).
   */
  const outcomes = { replayed: 0, duplicateAfterCrash: 0, cutOff: 0, refused503: 0 };

  async function push(robot: Robot, roundId: string, body: Uint8Array, key: string | null): Promise<{ acked: boolean; contributionId?: string }> {
    const path = `/v1/rounds/${roundId}/contributions`;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 500) throw new Error(`robot ${robot.id} could not push after 500 attempts`);
      const url = await server.url();
      let res: Response;
      try {
        res = await fetch(url + path, {
          method: 'POST',
          headers: {
            ...robotSignedHeaders({ robot, method: 'POST', path, body }),
            'content-type': 'application/octet-stream',
            ...(key ? { 'idempotency-key': key } : {}),
          },
          body: body as Uint8Array<ArrayBuffer>,
          signal: AbortSignal.timeout(20_000),
        });
      } catch {
        await sleep(5 + random() * 20); // connection refused or reset: the server is down
        continue;
      }
      let json: any;
      try {
        json = await res.json();
      } catch {
        outcomes.cutOff++;
        await sleep(5);
        continue; // the answer was cut off by the kill
      }
      if (res.status === 201) {
        if (res.headers.get('idempotent-replayed') === 'true') outcomes.replayed++;
        return { acked: true, contributionId: json.contributionId };
      }
      if (res.status === 409 && json.error.code === 'duplicate_contribution' && !key) {
        outcomes.duplicateAfterCrash++;
        return { acked: false };
      }
      if (res.status === 503) {
        outcomes.refused503++;
        await sleep(10);
        continue;
      }
      throw new Error(`robot ${robot.id}: unexpected ${res.status} ${JSON.stringify(json)}`);
    }
  }

  async function verifyRound(roundId: string, expected: BigUint64Array, acks: Map<string, string>, committedUnacked: Set<string>): Promise<void> {
    const round = await person('GET', `/v1/rounds/${roundId}`);
    expect(round.body.state).toBe('finalized');
    expect(round.body.contributions).toBe(ROBOTS);
    const list = await person('GET', `/v1/rounds/${roundId}/contributions`);
    expect(list.status).toBe(200);
    const rows = list.body as Array<{ id: string; seq: number; robotId: string; packageSha256: string; aggregateSha256: string }>;
    // Exactly once: one row per robot, sequence 1..n without holes or repeats.
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: ROBOTS }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.robotId))).toEqual(new Set(robots.map((r) => r.id)));
    // Nothing acknowledged is lost: every 201 names the row of its robot.
    for (const [robotId, contributionId] of acks) expect(rows.find((r) => r.robotId === robotId)?.id).toBe(contributionId);
    for (const robotId of committedUnacked) expect(rows.some((r) => r.robotId === robotId)).toBe(true);

    // The aggregate is the sum of the stored ciphertexts, and each row names its prefix sum.
    let sum: Uint8Array | null = null;
    for (const row of rows) {
      const pkg = await person('GET', `/v1/rounds/${roundId}/contributions/${row.id}/package`);
      expect(pkg.status).toBe(200);
      expect(sha256Hex(pkg.body)).toBe(row.packageSha256);
      const robot = robots.find((r) => r.id === row.robotId)!;
      const opened = openUpdatePackage({ bytes: pkg.body, robotPublicKey: robot.keys.publicKey });
      sum = sumCiphertextBlocks({ accumulator: sum, addend: opened.ciphertexts, parmsId: setup.he.parmsId, paramSet });
      expect(sha256Hex(sum)).toBe(row.aggregateSha256);
    }
    const aggregate = await person('GET', `/v1/rounds/${roundId}/aggregate/ciphertext`);
    expect(aggregate.status).toBe(200);
    expect(aggregate.headers.get('x-tg-sha256')).toBe(round.body.aggregateSha256);
    expect(Buffer.compare(aggregate.body, sum!)).toBe(0);
    const manifest = await person('GET', `/v1/rounds/${roundId}/aggregate`);
    expect(manifest.body.contributions).toBe(ROBOTS);

    const decryptor = await createDecryptor({ secretKey: setup.he.secretKey, paramSetId: PARAM_SET_ID });
    try {
      const slots = decryptor.decryptSlots({ ciphertexts: aggregate.body });
      expect(slots.length).toBe(expected.length);
      let mismatches = 0;
      for (let i = 0; i < expected.length; i++) if (slots[i] !== expected[i]) mismatches++;
      expect(mismatches).toBe(0);
    } finally {
      decryptor.destroy();
    }
  }

  async function auditAcceptCount(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let after = 0;
    for (;;) {
      const page = await person('GET', `/v1/audit?after=${after}&limit=1000`);
      expect(page.status).toBe(200);
      for (const e of page.body.entries) {
        if (e.action !== 'contribution.accept') continue;
        const roundId = (typeof e.details === 'string' ? JSON.parse(e.details) : e.details).roundId;
        counts.set(roundId, (counts.get(roundId) ?? 0) + 1);
      }
      if (page.body.next === null || page.body.next === undefined || page.body.entries.length === 0) break;
      after = page.body.next;
    }
    return counts;
  }

  it('loses no acknowledged contribution, counts none twice, and finalizes the exact sum', async () => {
    const started = Date.now();
    const encryptor = await createEncryptor({ publicKey: setup.he.publicKey, paramSetId: PARAM_SET_ID });
    const finished: string[] = [];
    let pushKills = 0;
    let closeKills = 0;
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (round >= MIN_ROUNDS && Date.now() - started > BUDGET_MS) break;
        const roundId = `crash-${round}-${randomUUID().slice(0, 8)}`;
        const { config, fingerprint } = await openRound({ setup, person, roundId, quorum: ROBOTS, maxContributors: ROBOTS });

        // Known plaintexts: robot values < 2^20, so the sum of ROBOTS of them stays below t.
        const expected = new BigUint64Array(paramSet.slotCount);
        const packages = robots.map((robot) => {
          const slots = new BigUint64Array(paramSet.slotCount);
          for (let i = 0; i < slots.length; i++) {
            slots[i] = BigInt(Math.floor(random() * 2 ** 20));
            expected[i]! += slots[i]!;
          }
          const ciphertexts = encryptor.encryptSlots({ slots });
          const meta = { roundId, robotId: robot.id, fleetId: setup.fleetId, keyVersion: 1, roundConfigFingerprint: fingerprint, valueCount: config.valueCount, ciphertextCount: 1, createdAt: Date.now() };
          return buildUpdatePackage({ meta, ciphertexts, secretKey: robot.keys.secretKey, publicKey: robot.keys.publicKey }).bytes;
        });

        // Push concurrently; kill the server 1-2 times at random moments while the pushes run.
        const acks = new Map<string, string>();
        const committedUnacked = new Set<string>();
        let pushing = true;
        const pushes = Promise.all(
          robots.map(async (robot, i) => {
            await sleep(random() * 30);
            const result = await push(robot, roundId, packages[i]!, robot.useIdempotencyKey ? `push-${roundId}-${robot.id}` : null);
            if (result.acked) acks.set(robot.id, result.contributionId!);
            else committedUnacked.add(robot.id);
          }),
        ).finally(() => (pushing = false));
        const killsThisRound = 1 + Math.floor(random() * 2);
        for (let k = 0; k < killsThisRound; k++) {
          await Promise.race([sleep(random() * 90), pushes]);
          if (!pushing) break;
          await server.crash();
          pushKills++;
        }
        await pushes;

        // Finalize; in most rounds kill the server while the close is in flight, then close again.
        const closing = person('POST', `/v1/rounds/${roundId}/close`).catch(() => null);
        if (random() < 0.75) {
          await sleep(random() * 12);
          await server.crash();
          closeKills++;
        }
        await closing;
        const closed = await person('POST', `/v1/rounds/${roundId}/close`);
        expect(closed.status, JSON.stringify(closed.body)).toBe(200);
        expect(closed.body.state).toBe('finalized');

        await verifyRound(roundId, expected, acks, committedUnacked);
        finished.push(roundId);
      }
    } finally {
      encryptor.destroy();
    }
    // One audit leaf per contribution: nothing was logged twice either.
    const audit = await auditAcceptCount();
    for (const roundId of finished) expect(audit.get(roundId)).toBe(ROBOTS);
    expect(finished.length).toBeGreaterThanOrEqual(MIN_ROUNDS);
    expect(server.kills).toBe(pushKills + closeKills);
    console.log(JSON.stringify({ crashTest: { seed, rounds: finished.length, kills: server.kills, pushKills, closeKills, failpointKills: server.failpointKills, ...outcomes, seconds: (Date.now() - started) / 1000 } }));
  }, 150_000);
});
