// The attacker's-side fixture for tests/security: organization A with one user per role, two fleets
// with a robot each, officer and HE keys, an open round with a contribution, a finalized round with a
// signed release, a safety cell; organization B (created directly in the database: bootstrap is
// single) with a user holding every role. Built once, then copied per case (database file + blobs),
// so every request of the authorization matrix runs against the same untouched state.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createApp } from '../../server/app.ts';
import { closeDatabase, openDatabase, type Database } from '../../server/db/client.ts';
import { createFsBlobStore } from '../../server/blobs/fs-store.ts';
import { silentLogger, type Logger } from '../../server/logger.ts';
import { organizations, users } from '../../server/db/schema.ts';
import { hashPassword } from '../../server/auth/password.ts';
import { newId } from '../../server/auth/tokens.ts';
import { serverAuditKeyFromSeed } from '../../server/audit/server-key.ts';
import { toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { randomBytes } from '../../core/random.ts';
import { KEM_SIZES } from '../../core/crypto/kem.ts';
import { signReleaseManifest } from '../../core/records/release-manifest.ts';
import { fakeEvalModelRegistration } from '../../core/eval/customer-test-models.ts';
import type { RateLimits } from '../../server/http/rate-limit.ts';
import { TWO_LINK_CELL } from '../../core/safety/test-cell.ts';
import {
  api,
  bootstrap,
  createFleet,
  createTestServer,
  enrollRobot,
  fakeCiphertexts,
  makePackage,
  makeRoundConfig,
  robotRequest,
  setupOfficer,
  type TestRobot,
  type TestServer,
} from '../../server/testing/harness.ts';

export const CELL = TWO_LINK_CELL;

export const PASSWORD = 'correct horse battery';

export interface Fixture {
  template: TestServer;
  seed: Uint8Array;
  orgA: string;
  orgB: string;
  tokens: { alice: string; admin: string; officer: string; operator: string; auditor: string; foreign: string };
  userIds: { alice: string; admin: string; officer: string; operator: string; auditor: string; foreign: string };
  fleet1: string;
  fleet2: string;
  robot1: TestRobot;
  robot2: TestRobot;
  openRound: string;
  finalRound: string;
  contribution: string;
  release: string;
  /** A customer evaluation model registered for fleet1. */
  evalModel: string;
  /** Every identifier and name of organization A (none may appear in a response to organization B). */
  secretsOfA: string[];
}

export async function buildFixture(): Promise<Fixture> {
  const seed = randomBytes(32);
  const template = await createTestServer({ auditKey: serverAuditKeyFromSeed({ seed }) });
  const server = template;
  const boot = await bootstrap({ server, org: 'Acme Robotics', user: 'alice', password: PASSWORD });
  const orgA = boot.org.id;
  const alice = boot.token;
  const userIds: Record<string, string> = { alice: boot.user.id };
  const tokens: Record<string, string> = { alice };
  for (const [who, roles] of [
    ['admin', ['admin']],
    ['officer', ['officer']],
    ['operator', ['operator']],
    ['auditor', ['auditor']],
  ] as const) {
    const created = await api({ server, method: 'POST', path: '/v1/users', token: alice, body: { user: `acme-${who}`, password: PASSWORD, roles } });
    if (created.status !== 201) throw new Error(`user ${who}: ${created.status} ${JSON.stringify(created.body)}`);
    userIds[who] = created.body.id;
    tokens[who] = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: `acme-${who}`, password: PASSWORD } })).body.token;
  }
  const fleet1 = (await createFleet({ server, token: alice, name: 'arms' })).id;
  const fleet2 = (await createFleet({ server, token: alice, name: 'carts' })).id;
  const officer = await setupOfficer({ server, token: alice, orgId: orgA });
  const robot1 = await enrollRobot({ server, token: alice, fleetId: fleet1, name: 'arm-1' });
  const extra = await enrollRobot({ server, token: alice, fleetId: fleet1, name: 'arm-2' });
  const robot2 = await enrollRobot({ server, token: alice, fleetId: fleet2, name: 'cart-1' });

  async function round(quorum: number, contributors: TestRobot[]) {
    const made = makeRoundConfig({ officer: officer.officer, orgId: orgA, fleetId: fleet1, keyFingerprint: officer.keyFingerprint, now: server.clock.now, quorum });
    const res = await api({ server, method: 'POST', path: '/v1/rounds', token: alice, body: { config: toBase64(made.bytes) } });
    if (res.status !== 201) throw new Error(`round: ${res.status} ${JSON.stringify(res.body)}`);
    const fp = Uint8Array.from(Buffer.from(res.body.configFingerprint, 'hex'));
    let contributionId = '';
    for (const robot of contributors) {
      const pkg = makePackage({ robot, config: made.config, configFingerprint: fp, ciphertexts: fakeCiphertexts({ parmsId: officer.record.parmsId, count: 1 }) });
      const up = await robotRequest({ server, robot, method: 'POST', path: `/v1/rounds/${made.config.roundId}/contributions`, body: pkg.bytes });
      if (up.status !== 201) throw new Error(`contribution: ${up.status} ${JSON.stringify(up.body)}`);
      contributionId ||= up.body.contributionId;
    }
    return { roundId: made.config.roundId, contributionId };
  }
  const open = await round(3, [robot1]);
  const final = await round(2, [robot1, extra]);
  const closed = await api({ server, method: 'POST', path: `/v1/rounds/${final.roundId}/close`, token: alice });
  if (closed.status !== 200) throw new Error(`close: ${closed.status} ${JSON.stringify(closed.body)}`);

  const payload = randomBytes(256);
  const manifest = signReleaseManifest({
    manifest: {
      releaseId: `rel-${randomUUID()}`,
      orgId: orgA,
      fleetId: fleet1,
      roundId: final.roundId,
      releaseVersion: 1,
      adapterSha256: randomBytes(32),
      kind: 'release',
      rollbackOf: 0,
      payloadSha256: sha256(payload),
      canaryFraction: 1,
      createdAt: server.clock.now,
      wraps: [robot1.id].map((robotId) => ({ robotId, kemCiphertext: randomBytes(KEM_SIZES.ciphertext), wrappedKey: randomBytes(KEM_SIZES.wrappedKey) })),
    },
    secretKey: officer.officer.secretKey,
    publicKey: officer.officer.publicKey,
  });
  const rel = await api({ server, method: 'POST', path: '/v1/releases', token: alice, body: { manifest: toBase64(manifest), payload: toBase64(payload) } });
  if (rel.status !== 201) throw new Error(`release: ${rel.status} ${JSON.stringify(rel.body)}`);
  const evalModel = fakeEvalModelRegistration({ signer: officer.officer, orgId: orgA, fleetId: fleet1, now: server.clock.now, name: 'acme line model' });
  const em = await api({ server, method: 'POST', path: '/v1/evaluation-models', token: tokens.officer, body: evalModel.body });
  if (em.status !== 201) throw new Error(`evaluation model: ${em.status} ${JSON.stringify(em.body)}`);
  const cell = await api({ server, method: 'PUT', path: `/v1/fleets/${fleet1}/cells/line-1`, token: alice, body: CELL });
  if (cell.status !== 201) throw new Error(`cell: ${cell.status} ${JSON.stringify(cell.body)}`);

  // Organization B: bootstrap is single, so straight into the database.
  const orgB = newId({ prefix: 'org' });
  await server.db.insert(organizations).values({ id: orgB, name: 'Mallory Corp', createdAt: server.clock.now }).run();
  const foreignId = newId({ prefix: 'usr' });
  await server.db
    .insert(users)
    .values({ id: foreignId, orgId: orgB, name: 'mallory', passwordHash: await hashPassword({ password: PASSWORD }), roles: ['admin', 'officer', 'operator', 'auditor'], createdAt: server.clock.now })
    .run();
  tokens.foreign = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'mallory', password: PASSWORD } })).body.token;
  userIds.foreign = foreignId;
  await server.db.$client.execute('PRAGMA wal_checkpoint(TRUNCATE)');

  return {
    template,
    seed,
    orgA,
    orgB,
    tokens: tokens as Fixture['tokens'],
    userIds: userIds as Fixture['userIds'],
    fleet1,
    fleet2,
    robot1,
    robot2,
    openRound: open.roundId,
    finalRound: final.roundId,
    contribution: open.contributionId,
    release: rel.body.releaseId,
    evalModel: evalModel.modelId,
    secretsOfA: [orgA, 'Acme Robotics', fleet1, fleet2, 'arms', 'carts', robot1.id, robot2.id, extra.id, open.roundId, final.roundId, rel.body.releaseId, open.contributionId, ...Object.entries(userIds).filter(([k]) => k !== 'foreign').map(([, v]) => v), 'acme-officer', 'alice', 'line-1', evalModel.modelId, 'acme line model'],
  };
}

/** A private copy of the fixture's state (database + blobs) behind a fresh app with the same clock. */
export async function copyOfFixture(options: { fixture: Fixture; logger?: Logger; rateLimits?: Partial<RateLimits> }): Promise<TestServer> {
  const { fixture } = options;
  const dir = await mkdtemp(join(tmpdir(), 'tg-sec-'));
  await cp(fixture.template.dir, dir, { recursive: true });
  const db: Database = await openDatabase({ url: `file:${join(dir, 'tensorguard.db')}` });
  const blobs = createFsBlobStore({ dir: join(dir, 'blobs') });
  const clock = { now: fixture.template.clock.now };
  const app = createApp({ db, blobs, now: () => clock.now, logger: options.logger ?? silentLogger, auditKey: serverAuditKeyFromSeed({ seed: fixture.seed }), rateLimits: options.rateLimits });
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

/** Tables whose rows are bookkeeping of requests, not data a caller could own or change. */
const VOLATILE = new Set(['rate_limit_counters', 'session_activity', 'robot_nonces', 'audit_tree_nodes', '__drizzle_migrations']);

/**
 * Rows of organization A (tables with org_id: its rows; others: all rows), as comparable text.
 * `withAudit: false` leaves out the audit log (a refused request is itself audited).
 */
export async function snapshotOrg(options: { db: Database; orgId: string; withAudit: boolean }): Promise<Record<string, string>> {
  const { db } = options;
  const tables = (await db.$client.execute("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")).rows.map((r) => String(r[0]));
  const out: Record<string, string> = {};
  for (const t of tables) {
    if (VOLATILE.has(t) || (!options.withAudit && t === 'audit_log')) continue;
    const cols = (await db.$client.execute(`pragma table_info("${t}")`)).rows.map((r) => String(r[1]));
    const where = cols.includes('org_id') ? ` where org_id = ?` : '';
    const rows = await db.$client.execute({ sql: `select * from "${t}"${where} order by rowid`, args: where ? [options.orgId] : [] }).catch(() => db.$client.execute({ sql: `select * from "${t}"${where}`, args: where ? [options.orgId] : [] }));
    out[t] = JSON.stringify(rows.rows, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof ArrayBuffer ? Buffer.from(v).toString('hex') : v));
  }
  return out;
}

/** The app's routes as "METHOD template" (handlers only; app.use middleware is method ALL). */
export function routeKeys(app: { routes: Array<{ method: string; path: string }> }): string[] {
  const keys = new Set<string>();
  for (const r of app.routes) if (r.method !== 'ALL') keys.add(`${r.method} ${r.path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1')}`);
  return [...keys].sort();
}

