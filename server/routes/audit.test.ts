// The Merkle audit log through the routes: signed checkpoints, leaves, proofs, tenancy, denial
// auditing with its bound, and an operator with write access to the database file who edits, deletes
// or reorders leaves — caught by the client verifier (core/audit/verifier.ts) against the routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { fromBase64, hexToBytes } from '../../core/bytes.ts';
import { generateSigningKeyPair } from '../../core/crypto/sign.ts';
import { openCheckpoint } from '../../core/audit/checkpoint.ts';
import { hashLeaf, verifyConsistency, verifyInclusion } from '../../core/audit/merkle.ts';
import { canonicalJson, decodeAuditLeaf } from '../../core/audit/leaf.ts';
import { verifyAuditLog, leafBytes, type AuditLogSource, type VerifiedHead } from '../../core/audit/verifier.ts';
import { organizations } from '../db/schema.ts';
import { createUser } from '../db/people.ts';
import { hashPassword } from '../auth/password.ts';
import { api, bootstrap, createFleet, createTestServer, enrollRobot, robotRequest, type TestRobot, type TestServer } from '../testing/harness.ts';

function sourceFor(server: TestServer, token: string): AuditLogSource {
  const get = async (path: string) => {
    const res = await api({ server, method: 'GET', path, token });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  return {
    key: async () => fromBase64((await get('/v1/audit/key')).publicKey),
    checkpoint: async () => (await get('/v1/audit/checkpoint')).checkpoint,
    leaves: async (start, end) => (await get(`/v1/audit/leaves?start=${start}&end=${end}`)).leaves.map((l: { index: number; data: string }) => ({ index: l.index, data: leafBytes(l.data) })),
    consistency: async (from, to) => (await get(`/v1/audit/proof/consistency?from=${from}&to=${to}`)).proof.map(hexToBytes),
  };
}

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function secondOrg(server: TestServer, name: string) {
  const orgId = `org_${name}`;
  await server.db.insert(organizations).values({ id: orgId, name, createdAt: server.clock.now }).run();
  const userId = `usr_${name}`;
  await createUser({ db: server.db, orgId, actorId: userId, userId, name, passwordHash: await hashPassword({ password: 'password of b' }), roles: ['admin', 'auditor'], now: server.clock.now });
  const login = await api({ server, method: 'POST', path: '/v1/sessions', body: { user: name, password: 'password of b' } });
  expect(login.status).toBe(201);
  return { orgId, token: login.body.token as string };
}

async function entries(server: TestServer, token: string) {
  const res = await api({ server, method: 'GET', path: '/v1/audit?limit=1000', token });
  return res.body.entries as Array<{ index: number; action: string; actor: { type: string; id: string }; details: Record<string, unknown> }>;
}

describe('the audit log as a Merkle log', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;
  let fleet: { id: string };
  let robot: TestRobot;

  beforeAll(async () => {
    server = await createTestServer();
    admin = await bootstrap({ server });
    fleet = await createFleet({ server, token: admin.token });
    robot = await enrollRobot({ server, token: admin.token, fleetId: fleet.id });
  });
  afterAll(() => server.close());

  it('signs checkpoints whose root the leaves reproduce, and proves inclusion and consistency', async () => {
    const keyRes = await api({ server, method: 'GET', path: '/v1/audit/key', token: admin.token });
    expect(keyRes.status).toBe(200);
    expect(keyRes.body.origin).toBe(`tensorguard.audit/${admin.org.id}`);
    const publicKey = fromBase64(keyRes.body.publicKey);
    const cp1 = (await api({ server, method: 'GET', path: '/v1/audit/checkpoint', token: admin.token })).body;
    const opened1 = openCheckpoint({ note: cp1.checkpoint, publicKey, origin: keyRes.body.origin });
    expect(opened1.size).toBe(cp1.size);
    const all = await entries(server, admin.token);
    expect(opened1.size).toBe(all.length);
    expect(all.map((e) => e.index)).toEqual(all.map((_, i) => i));

    const leaves = (await api({ server, method: 'GET', path: `/v1/audit/leaves?start=0&end=${opened1.size}`, token: admin.token })).body.leaves;
    expect(decodeAuditLeaf({ bytes: leafBytes(leaves[0].data) }).action).toBe('org.bootstrap');
    for (const leaf of leaves) {
      const proof = (await api({ server, method: 'GET', path: `/v1/audit/proof/inclusion?index=${leaf.index}&size=${opened1.size}`, token: admin.token })).body;
      verifyInclusion({ index: leaf.index, size: opened1.size, leafHash: hashLeaf(leafBytes(leaf.data)), proof: proof.proof.map(hexToBytes), root: opened1.rootHash });
    }

    await createFleet({ server, token: admin.token, name: 'second' });
    const cp2 = (await api({ server, method: 'GET', path: '/v1/audit/checkpoint', token: admin.token })).body;
    const opened2 = openCheckpoint({ note: cp2.checkpoint, publicKey, origin: keyRes.body.origin });
    expect(opened2.size).toBeGreaterThan(opened1.size);
    const proof = (await api({ server, method: 'GET', path: `/v1/audit/proof/consistency?from=${opened1.size}&to=${opened2.size}`, token: admin.token })).body.proof;
    verifyConsistency({ from: opened1.size, to: opened2.size, fromRoot: opened1.rootHash, toRoot: opened2.rootHash, proof: proof.map(hexToBytes) });
    // The same head twice is the same signed note (cached), and the verifier accepts the whole log.
    expect((await api({ server, method: 'GET', path: '/v1/audit/checkpoint', token: admin.token })).body.checkpoint).toBe(cp2.checkpoint);
    const v = await verifyAuditLog({ source: sourceFor(server, admin.token), orgId: admin.org.id });
    expect(v.head.size).toBe(opened2.size);
  });

  it('refuses ranges beyond the tree and oversized pages', async () => {
    const size = (await api({ server, method: 'GET', path: '/v1/audit/checkpoint', token: admin.token })).body.size;
    for (const path of [`/v1/audit/leaves?start=0&end=${size + 1}`, `/v1/audit/proof/inclusion?index=0&size=${size + 1}`, `/v1/audit/proof/consistency?from=1&to=${size + 1}`]) {
      const res = await api({ server, method: 'GET', path, token: admin.token });
      expect(res.status, path).toBe(400);
      expect(res.body.error.code).toBe('beyond_tree');
    }
    expect((await api({ server, method: 'GET', path: '/v1/audit/leaves?start=0&end=1001', token: admin.token })).status).toBe(400);
    expect((await api({ server, method: 'GET', path: '/v1/audit/proof/inclusion?index=5&size=5', token: admin.token })).status).toBe(400);
    expect((await api({ server, method: 'GET', path: '/v1/audit/leaves?start=x&end=1', token: admin.token })).status).toBe(400);
  });

  it('keeps one tree per organization: no route shows another organization\'s leaves', async () => {
    const b = await secondOrg(server, 'beta-co');
    const headA = (await api({ server, method: 'GET', path: '/v1/audit/checkpoint', token: admin.token })).body;
    const headB = (await api({ server, method: 'GET', path: '/v1/audit/checkpoint', token: b.token })).body;
    expect(headB.origin).toBe(`tensorguard.audit/${b.orgId}`);
    expect(headB.size).toBeLessThan(headA.size);
    const leavesB = (await api({ server, method: 'GET', path: `/v1/audit/leaves?start=0&end=${headB.size}`, token: b.token })).body.leaves;
    for (const l of leavesB) expect(decodeAuditLeaf({ bytes: leafBytes(l.data) }).orgId).toBe(b.orgId);
    // A's sizes are beyond B's tree; B cannot read A's leaves by index.
    expect((await api({ server, method: 'GET', path: `/v1/audit/leaves?start=0&end=${headA.size}`, token: b.token })).status).toBe(400);
    const vb = await verifyAuditLog({ source: sourceFor(server, b.token), orgId: b.orgId });
    expect(vb.head.size).toBe(headB.size);
    // A verifier of org A refuses org B's log served under A's name.
    await expect(verifyAuditLog({ source: sourceFor(server, b.token), orgId: admin.org.id })).rejects.toMatchObject({ code: 'audit_inconsistent' });
  });

  it('lets admins and auditors read the log, nobody else; officers post key-lifecycle events', async () => {
    const op = await api({ server, method: 'POST', path: '/v1/users', token: admin.token, body: { user: 'otto', password: 'operator password', roles: ['operator'] } });
    expect(op.status).toBe(201);
    const otto = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'otto', password: 'operator password' } })).body.token;
    for (const path of ['/v1/audit/checkpoint', '/v1/audit/key', '/v1/audit/leaves?start=0&end=1', '/v1/audit/proof/consistency?from=1&to=2'])
      expect((await api({ server, method: 'GET', path, token: otto })).status, path).toBe(403);
    expect((await api({ server, method: 'GET', path: '/v1/audit/checkpoint' })).status).toBe(401);
    expect((await robotRequest({ server, robot, method: 'GET', path: '/v1/audit/checkpoint' })).status).toBe(403);

    const posted = await api({ server, method: 'POST', path: '/v1/audit/events', token: admin.token, body: { action: 'officer.recovery.add', target: 'rk_1', details: { recipient: 'ab'.repeat(32) } } });
    expect(posted.status).toBe(201);
    const last = (await entries(server, admin.token)).at(-1)!;
    expect(last).toMatchObject({ index: posted.body.index, action: 'officer.recovery.add', actor: { type: 'user', id: admin.user.id } });
    expect((await api({ server, method: 'POST', path: '/v1/audit/events', token: otto, body: { action: 'officer.recovery.add', target: 'x' } })).status).toBe(403);
    expect((await api({ server, method: 'POST', path: '/v1/audit/events', token: admin.token, body: { action: 'round.open', target: 'x' } })).status).toBe(400);
  });

  it('audits denials: refused roles, failed sign-ins of known users, refused uploads, unverifiable robots', async () => {
    const otto = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'otto', password: 'operator password' } })).body.token;
    expect((await api({ server, method: 'POST', path: '/v1/fleets', token: otto, body: { name: 'nope' } })).status).toBe(403);
    await waitFor('access.denied', async () => (await entries(server, admin.token)).find((e) => e.action === 'access.denied' && e.details.code === 'forbidden'));

    expect((await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'otto', password: 'wrong password' } })).status).toBe(401);
    expect((await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'nobody-here', password: 'wrong password' } })).status).toBe(401);
    const fail = await waitFor('session.fail', async () => (await entries(server, admin.token)).find((e) => e.action === 'session.fail'));
    expect(fail.details.code).toBe('unauthenticated');

    const upload = await robotRequest({ server, robot, method: 'POST', path: '/v1/rounds/no-such-round/contributions', body: new Uint8Array([1, 2, 3]) });
    expect(upload.status).toBe(400);
    await waitFor('contribution.refuse', async () => (await entries(server, admin.token)).find((e) => e.action === 'contribution.refuse' && e.actor.id === robot.id));

    const forged = await robotRequest({ server, robot: { ...robot, keys: generateSigningKeyPair({ algorithm: 'ml-dsa-44' }) }, method: 'GET', path: '/v1/robots/me' });
    expect(forged.status).toBe(401);
    await waitFor('robot.auth_fail', async () => (await entries(server, admin.token)).find((e) => e.action === 'robot.auth_fail' && e.details.code === 'bad_signature'));
  });

  it('bounds denial leaves per window and writes the rest as one summary leaf', async () => {
    const otto = (await api({ server, method: 'POST', path: '/v1/sessions', body: { user: 'otto', password: 'operator password' } })).body.token;
    server.clock.now += 11 * 60 * 1000; // a fresh window: reading the checkpoint closes the previous one
    await api({ server, method: 'GET', path: '/v1/audit/checkpoint', token: admin.token });
    const before = (await entries(server, admin.token)).length;
    for (let i = 0; i < 60; i++) expect((await api({ server, method: 'GET', path: '/v1/users', token: otto })).status).toBe(403);
    const after = await waitFor('the flood to settle', async () => {
      const e = await entries(server, admin.token);
      return e.length === before + 1 ? e : null;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect((await entries(server, admin.token)).length).toBe(before + 1); // one leaf for 60 identical denials
    expect(after.at(-1)!.action).toBe('access.denied');
    server.clock.now += 11 * 60 * 1000;
    await api({ server, method: 'GET', path: '/v1/audit/checkpoint', token: admin.token }); // closes the window
    const summary = (await entries(server, admin.token)).at(-1)!;
    expect(summary.action).toBe('denial.suppressed');
    expect(summary.details.total).toBe(59);
    expect(summary.details.counts).toEqual({ 'access.denied:forbidden': 59 });
  });
});

describe('a malicious operator with the database file', () => {
  let server: TestServer;
  let admin: Awaited<ReturnType<typeof bootstrap>>;
  let remembered: VerifiedHead;

  const exec = (q: string) => server.db.$client.execute(q);
  const dropTriggers = async () => {
    for (const t of ['audit_log_no_update', 'audit_log_no_delete', 'audit_tree_nodes_no_update', 'audit_tree_nodes_no_delete']) await exec(`DROP TRIGGER IF EXISTS ${t}`);
  };
  const verify = (full = false) => verifyAuditLog({ source: sourceFor(server, admin.token), orgId: admin.org.id, previous: remembered, full });

  beforeAll(async () => {
    server = await createTestServer();
    admin = await bootstrap({ server });
    for (let i = 0; i < 6; i++) await createFleet({ server, token: admin.token, name: `fleet-${i}` });
    remembered = (await verifyAuditLog({ source: sourceFor(server, admin.token), orgId: admin.org.id })).head;
  });
  afterAll(() => server.close());

  it('cannot update or delete audit rows while the triggers stand', async () => {
    await expect(exec(`UPDATE audit_log SET target = 'x' WHERE leaf_index = 1`)).rejects.toThrow(/append-only/);
    await expect(exec(`DELETE FROM audit_log WHERE leaf_index = 1`)).rejects.toThrow(/append-only/);
    await expect(exec(`DELETE FROM audit_tree_nodes`)).rejects.toThrow(/append-only/);
  });

  it('an honest log keeps verifying as it grows', async () => {
    await createFleet({ server, token: admin.token, name: 'honest' });
    const v = await verify();
    expect(v.leavesChecked).toBe(v.head.size - remembered.size);
    remembered = v.head;
  });

  it('an edited leaf whose stored hashes were left alone: the full check finds it, and its inclusion proof fails', async () => {
    await dropTriggers();
    await exec(`UPDATE audit_log SET details = '{"name":"renamed"}' WHERE leaf_index = 2 AND org_id = '${admin.org.id}'`);
    await expect(verify(true)).rejects.toMatchObject({ code: 'audit_inconsistent', details: { reason: 'history_rewritten' } });
    const leaf = (await api({ server, method: 'GET', path: '/v1/audit/leaves?start=2&end=3', token: admin.token })).body.leaves[0];
    const proof = (await api({ server, method: 'GET', path: `/v1/audit/proof/inclusion?index=2&size=${remembered.size}`, token: admin.token })).body.proof;
    expect(() => verifyInclusion({ index: 2, size: remembered.size, leafHash: hashLeaf(leafBytes(leaf.data)), proof: proof.map(hexToBytes), root: remembered.rootHash })).toThrow(/inclusion proof/);
  });

  /** The careful attacker: rewrite the rows, recompute every hash and let the server rebuild the tree. */
  async function rewrite(mutate: () => Promise<void>) {
    await dropTriggers();
    await mutate();
    const rows = await exec(`SELECT seq, org_id, actor_type, actor_id, action, target, details, created_at FROM audit_log WHERE org_id = '${admin.org.id}' ORDER BY seq`);
    await exec(`UPDATE audit_log SET leaf_index = NULL WHERE org_id = '${admin.org.id}'`);
    for (const [i, r] of rows.rows.entries()) {
      const data = canonicalJson({ orgId: r.org_id, actorType: r.actor_type, actorId: r.actor_id, action: r.action, target: r.target, details: JSON.parse(String(r.details)), at: Number(r.created_at) });
      const hash = Buffer.from(hashLeaf(new TextEncoder().encode(data))).toString('hex');
      await exec(`UPDATE audit_log SET leaf_index = ${i}, leaf_hash = '${hash}' WHERE seq = ${r.seq}`);
    }
    await exec(`DELETE FROM audit_tree_nodes WHERE org_id = '${admin.org.id}'`);
  }

  it('an edited leaf with the whole tree recomputed and re-signed: the remembered head no longer extends', async () => {
    await rewrite(() => exec(`UPDATE audit_log SET details = '{"name":"forged"}' WHERE leaf_index = 3 AND org_id = '${admin.org.id}'`).then(() => undefined));
    // The server signs the forged tree happily; its own leaves agree with it...
    const fresh = await verifyAuditLog({ source: sourceFor(server, admin.token), orgId: admin.org.id });
    expect(fresh.head.size).toBe(remembered.size);
    // ...but a client that remembered the honest head alarms, incrementally and in full.
    await expect(verify()).rejects.toMatchObject({ code: 'audit_inconsistent', details: { reason: 'root_mismatch' } });
    await expect(verify(true)).rejects.toMatchObject({ code: 'audit_inconsistent' });
  });

  it('a deleted leaf (tree recomputed, new leaves appended to hide the shrink) is detected', async () => {
    await rewrite(() => exec(`DELETE FROM audit_log WHERE leaf_index = 1 AND org_id = '${admin.org.id}'`).then(() => undefined));
    await createFleet({ server, token: admin.token, name: 'padding-1' });
    await createFleet({ server, token: admin.token, name: 'padding-2' });
    await expect(verify()).rejects.toMatchObject({ code: 'audit_inconsistent' });
  });

  it('reordered leaves (tree recomputed) are detected', async () => {
    await rewrite(async () => {
      const a = await exec(`SELECT seq, details, target FROM audit_log WHERE org_id = '${admin.org.id}' ORDER BY seq LIMIT 2 OFFSET 4`);
      const [x, y] = a.rows;
      await exec(`UPDATE audit_log SET details = '${String(y!.details)}', target = '${String(y!.target)}' WHERE seq = ${x!.seq}`);
      await exec(`UPDATE audit_log SET details = '${String(x!.details)}', target = '${String(x!.target)}' WHERE seq = ${y!.seq}`);
    });
    await expect(verify()).rejects.toMatchObject({ code: 'audit_inconsistent' });
  });

  it('a tampered checkpoint signature and a swapped server key are alarms', async () => {
    const source = sourceFor(server, admin.token);
    const tampered: AuditLogSource = { ...source, checkpoint: async () => (await source.checkpoint()).replace(/\n(\d+)\n/, (_, n) => `\n${Number(n) + 1}\n`) };
    await expect(verifyAuditLog({ source: tampered, orgId: admin.org.id, previous: remembered })).rejects.toMatchObject({ code: 'audit_inconsistent', details: { reason: 'bad_checkpoint' } });
    const other = await createTestServer();
    try {
      const otherKey = fromBase64((await api({ server: other, method: 'GET', path: '/v1/audit/key', token: (await bootstrap({ server: other })).token })).body.publicKey);
      const swapped: AuditLogSource = { ...source, key: async () => otherKey };
      await expect(verifyAuditLog({ source: swapped, orgId: admin.org.id, previous: remembered })).rejects.toMatchObject({ code: 'audit_key_changed' });
    } finally {
      await other.close();
    }
  });

  it('the row count stayed honest about what was done (sanity of the simulation)', async () => {
    const n = await server.db.get<{ n: number }>(sql`select count(*) as n from audit_log`);
    expect(Number(n?.n)).toBeGreaterThan(5);
  });
});
