// The PWA's audit verification (src/lib/audit-log.ts + workers/audit/source.ts) against the real audit
// routes of an in-process server, with a memory store in place of Dexie: first run pins the key, the
// next run checks only new leaves, and an operator who edits, deletes or reorders rows in the database
// (or swaps the key, or serves a smaller tree) gets an alarm while the remembered head stays as it was.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { canonicalJson } from '../../core/audit/leaf.ts';
import { hashLeaf } from '../../core/audit/merkle.ts';
import { bytesToHex, utf8ToBytes } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';
import { serverAuditKeyFromSeed } from '../../server/audit/server-key.ts';
import { bootstrap, createFleet, createTestServer, type TestServer } from '../../server/testing/harness.ts';
import { httpAuditSource, type AuditFetch } from '../../workers/audit/source.ts';
import {
  checkLeafInclusion,
  matchesLeafFilter,
  pageOfLeaves,
  rowToHead,
  runAuditVerification,
  type AuditAlarmRow,
  type AuditHeadRow,
  type AuditLeafRow,
  type AuditStore,
} from './audit-log.ts';

function memoryStore() {
  const heads = new Map<string, AuditHeadRow>();
  const leaves = new Map<string, AuditLeafRow>();
  const alarms: AuditAlarmRow[] = [];
  const store: AuditStore = {
    head: async (orgId) => structuredClone(heads.get(orgId) ?? null),
    leaf: async (orgId, index) => leaves.get(`${orgId}/${index}`) ?? null,
    commit: async ({ head, leaves: rows }) => {
      for (const r of rows) leaves.set(`${r.orgId}/${r.index}`, r);
      heads.set(head.orgId, structuredClone(head));
    },
    recordAlarm: async (alarm) => void alarms.push(alarm),
  };
  return { store, heads, leaves, alarms };
}

let server: TestServer;
let token: string;
let orgId: string;
const appFetch: AuditFetch = (path) => {
  return Promise.resolve(server.app.request(path, { headers: { authorization: `Bearer ${token}` } }));
};

async function rewriteRow(sqlText: string) {
  // the operator with write access to the database file: the append-only triggers go first
  for (const t of ['audit_log_no_update', 'audit_log_no_delete']) await server.db.run(sql.raw(`DROP TRIGGER IF EXISTS ${t}`));
  await server.db.run(sql.raw(sqlText));
}

/** A careful operator: after changing rows, recompute leaf indices and hashes and the stored tree. */
async function rehashEverything() {
  const rows = (await server.db.all(sql.raw(`SELECT seq, org_id, actor_type, actor_id, action, target, details, created_at FROM audit_log WHERE org_id = '${orgId}' ORDER BY seq`))) as Array<Record<string, unknown>>;
  for (const t of ['audit_tree_nodes_no_update', 'audit_tree_nodes_no_delete']) await server.db.run(sql.raw(`DROP TRIGGER IF EXISTS ${t}`));
  await server.db.run(sql.raw(`UPDATE audit_log SET leaf_index = NULL WHERE org_id = '${orgId}'`));
  for (const [i, r] of rows.entries()) {
    const data = canonicalJson({ orgId: r.org_id, actorType: r.actor_type, actorId: r.actor_id, action: r.action, target: r.target, details: JSON.parse(String(r.details)), at: Number(r.created_at) });
    await server.db.run(sql.raw(`UPDATE audit_log SET leaf_index = ${i}, leaf_hash = '${bytesToHex(hashLeaf(utf8ToBytes(data)))}' WHERE seq = ${Number(r.seq)}`));
  }
  await server.db.run(sql.raw(`DELETE FROM audit_tree_nodes WHERE org_id = '${orgId}'`));
}

describe('runAuditVerification', () => {
  beforeEach(async () => {
    server = await createTestServer({ auditKey: serverAuditKeyFromSeed({ seed: randomBytes(32) }) });
    const boot = await bootstrap({ server });
    token = boot.token;
    orgId = boot.org.id;
    for (const name of ['arms', 'legs', 'wheels', 'grippers']) await createFleet({ server, token, name });
  });
  afterEach(async () => {
    await server?.close();
  });

  it('pins the key on first use, then checks only the new leaves and the consistency proof', async () => {
    const { store, heads, leaves } = memoryStore();
    const source = httpAuditSource({ fetch: appFetch });
    const first = await runAuditVerification({ source, store, orgId });
    if (first.status !== 'consistent') throw new Error(first.alarm.message);
    expect(first.keyPinnedNow).toBe(true);
    expect(first.head.size).toBeGreaterThanOrEqual(5);
    expect(first.head.actions['fleet.create']).toBe(4);
    expect(leaves.size).toBe(first.head.size);
    expect(first.head.lastEntryAt).toBe(leaves.get(`${orgId}/${first.head.size - 1}`)!.at);

    await createFleet({ server, token, name: 'more' });
    const paths: string[] = [];
    const second = await runAuditVerification({ source: httpAuditSource({ fetch: (p) => (paths.push(p), appFetch(p)) }), store, orgId });
    if (second.status !== 'consistent') throw new Error(second.alarm.message);
    expect(second.keyPinnedNow).toBe(false);
    expect(second.previousSize).toBe(first.head.size);
    expect(second.leavesChecked).toBe(second.head.size - first.head.size);
    expect(second.head.actions['fleet.create']).toBe(5); // counts carried over from the first run
    expect(paths).toContain(`/v1/audit/leaves?start=${first.head.size}&end=${second.head.size}`);
    expect(paths.some((p) => p.startsWith('/v1/audit/proof/consistency?from=' + first.head.size))).toBe(true);
    expect(heads.get(orgId)!.rootHash).toBe(second.head.rootHash);
  });

  it('alarms on a rewritten history (edit, delete, reorder) and keeps the remembered head', async () => {
    const { store, heads, alarms } = memoryStore();
    const source = httpAuditSource({ fetch: appFetch });
    const first = await runAuditVerification({ source, store, orgId });
    if (first.status !== 'consistent') throw new Error('first run failed');
    const kept = structuredClone(heads.get(orgId));

    await rewriteRow(`UPDATE audit_log SET details = '{"name":"forged"}' WHERE org_id = '${orgId}' AND leaf_index = 2`);
    await rehashEverything();
    await createFleet({ server, token, name: 'after-edit' });
    const edited = await runAuditVerification({ source, store, orgId });
    expect(edited.status).toBe('alarm');
    if (edited.status !== 'alarm') return;
    expect(edited.alarm).toMatchObject({ code: 'audit_inconsistent', keptSize: first.head.size, keptRootHash: first.head.rootHash });
    expect(heads.get(orgId)).toEqual(kept);

    await rewriteRow(`DELETE FROM audit_log WHERE org_id = '${orgId}' AND leaf_index = 1`);
    await rehashEverything();
    for (const n of ['pad-1', 'pad-2']) await createFleet({ server, token, name: n });
    expect((await runAuditVerification({ source, store, orgId })).status).toBe('alarm');

    const two = (await server.db.all(sql.raw(`SELECT seq, action, target, details FROM audit_log WHERE org_id = '${orgId}' ORDER BY seq LIMIT 2 OFFSET 3`))) as Array<Record<string, string | number>>;
    const [x, y] = two as [Record<string, string | number>, Record<string, string | number>];
    const swap = (to: typeof x, from: typeof x) => `UPDATE audit_log SET action = '${from.action}', target = '${from.target}', details = '${String(from.details).replace(/'/g, "''")}' WHERE seq = ${to.seq}`;
    await rewriteRow(swap(x, y));
    await rewriteRow(swap(y, x));
    await rehashEverything();
    expect((await runAuditVerification({ source, store, orgId })).status).toBe('alarm');
    expect(alarms.map((a) => a.code)).toEqual(['audit_inconsistent', 'audit_inconsistent', 'audit_inconsistent']);
    expect(heads.get(orgId)).toEqual(kept);
  });

  it('an edited leaf with the tree untouched: incremental runs pass, --full and the inclusion check alarm', async () => {
    const { store, heads, alarms } = memoryStore();
    const source = httpAuditSource({ fetch: appFetch });
    const first = await runAuditVerification({ source, store, orgId });
    if (first.status !== 'consistent') throw new Error('first run failed');
    expect(await checkLeafInclusion({ source, store, orgId, index: 2 })).toMatchObject({ status: 'included', index: 2, size: first.head.size });

    await rewriteRow(`UPDATE audit_log SET details = '{"name":"totally-harmless"}' WHERE org_id = '${orgId}' AND leaf_index = 2`);
    expect((await runAuditVerification({ source, store, orgId })).status).toBe('consistent'); // no new leaf to look at
    const inclusion = await checkLeafInclusion({ source, store, orgId, index: 2 });
    expect(inclusion).toMatchObject({ status: 'alarm', alarm: { code: 'audit_inconsistent', reason: 'inclusion_failed' } });
    expect(await checkLeafInclusion({ source, store, orgId, index: 3 })).toMatchObject({ status: 'included' });
    const full = await runAuditVerification({ source, store, orgId, full: true });
    expect(full).toMatchObject({ status: 'alarm', alarm: { reason: 'history_rewritten', keptSize: first.head.size } });
    expect(heads.get(orgId)!.rootHash).toBe(first.head.rootHash);
    expect(alarms).toHaveLength(2);
  });

  it('alarms on a changed server key and on a tree served smaller than the remembered one', async () => {
    const { store, heads, alarms } = memoryStore();
    const source = httpAuditSource({ fetch: appFetch });
    const first = await runAuditVerification({ source, store, orgId });
    if (first.status !== 'consistent') throw new Error('first run failed');

    // the same database behind a server with another audit key
    const other = serverAuditKeyFromSeed({ seed: randomBytes(32) });
    const { createApp } = await import('../../server/app.ts');
    const { silentLogger } = await import('../../server/logger.ts');
    const swapped = createApp({ db: server.db, blobs: server.blobs, now: () => server.clock.now, logger: silentLogger, auditKey: other });
    const swappedFetch: AuditFetch = (p) => Promise.resolve(swapped.request(p, { headers: { authorization: `Bearer ${token}` } }));
    const changed = await runAuditVerification({ source: httpAuditSource({ fetch: swappedFetch }), store, orgId });
    expect(changed).toMatchObject({ status: 'alarm', alarm: { code: 'audit_key_changed', reason: 'key_changed' } });

    // a head remembered bigger than what the server now signs: the tree "shrank"
    heads.set(orgId, { ...heads.get(orgId)!, size: first.head.size + 7 });
    const shrank = await runAuditVerification({ source, store, orgId });
    expect(shrank).toMatchObject({ status: 'alarm', alarm: { reason: 'shrank' } });
    expect(alarms).toHaveLength(2);
  });

  it('leaves stored heads alone when the request fails (wrong role, server down): errors, not alarms', async () => {
    const { store, alarms, heads } = memoryStore();
    const down: AuditFetch = () => Promise.reject(new TypeError('Failed to fetch'));
    await expect(runAuditVerification({ source: httpAuditSource({ fetch: down }), store, orgId })).rejects.toMatchObject({ code: 'offline', status: 0 });
    const forged: AuditFetch = (p) => appFetch(p).then(async (r) => (p.startsWith('/v1/audit/key') ? new Response(JSON.stringify({ algorithm: 'ml-dsa-65', publicKey: 42 }), { status: 200 }) : r));
    await expect(runAuditVerification({ source: httpAuditSource({ fetch: forged }), store, orgId })).rejects.toMatchObject({ code: 'malformed' });
    token = 'not-a-session';
    await expect(runAuditVerification({ source: httpAuditSource({ fetch: appFetch }), store, orgId })).rejects.toMatchObject({ status: 401 });
    expect(alarms).toHaveLength(0);
    expect(heads.size).toBe(0);
  });

  it('an audit path that does not reach the remembered root is an alarm; a bad index is a RangeError', async () => {
    const { store } = memoryStore();
    const source = httpAuditSource({ fetch: appFetch });
    const first = await runAuditVerification({ source, store, orgId });
    if (first.status !== 'consistent') throw new Error('first run failed');
    const lying = { ...source, inclusion: async (i: number, n: number) => (await source.inclusion(i, n)).map((h) => h.map((b) => b ^ 1)) };
    expect(await checkLeafInclusion({ source: lying, store, orgId, index: 1 })).toMatchObject({ status: 'alarm', alarm: { reason: 'inclusion_failed' } });
    const missing = { ...source, leaf: async () => null };
    expect(await checkLeafInclusion({ source: missing, store, orgId, index: 1 })).toMatchObject({ status: 'alarm', alarm: { reason: 'leaf_missing' } });
    await expect(checkLeafInclusion({ source, store, orgId, index: first.head.size })).rejects.toThrow(RangeError);
    await expect(checkLeafInclusion({ source, store, orgId, index: -1 })).rejects.toThrow(RangeError);
  });

  it('the stored head round-trips to the verifier; a stored row of another format is refused', async () => {
    const { store, heads } = memoryStore();
    const first = await runAuditVerification({ source: httpAuditSource({ fetch: appFetch }), store, orgId });
    if (first.status !== 'consistent') throw new Error('first run failed');
    const head = rowToHead(heads.get(orgId)!);
    expect(bytesToHex(head.rootHash)).toBe(first.head.rootHash);
    expect(head.compactRange).toHaveLength(first.head.compactRange.length);
    expect(() => rowToHead({ ...heads.get(orgId)!, format: 'other' as never })).toThrow(TypeError);
  });

  it('prefetches the next leaf page while the verifier hashes the current one, each page fetched once', async () => {
    const { appendAudit } = await import('../../server/db/audit.ts');
    await server.db.transaction(async (tx) => {
      for (let i = 0; i < 1100; i++) await appendAudit({ db: tx, orgId, actor: { type: 'system', id: 'load' }, action: 'test.fill', target: `t${i}`, details: { i }, now: server.clock.now + i });
    });
    const paths: string[] = [];
    const source = httpAuditSource({ fetch: (p) => (paths.push(p), appFetch(p)) });
    await source.checkpoint();
    await source.leaves(0, 1000);
    expect(paths.at(-1)).toMatch(/^\/v1\/audit\/leaves\?start=1000&end=11\d\d$/); // asked before the verifier needs it
    const { store } = memoryStore();
    paths.length = 0;
    const r = await runAuditVerification({ source: httpAuditSource({ fetch: (p) => (paths.push(p), appFetch(p)) }), store, orgId });
    expect(r.status).toBe('consistent');
    const leafPaths = paths.filter((p) => p.startsWith('/v1/audit/leaves'));
    expect(leafPaths).toHaveLength(2);
    expect(new Set(leafPaths).size).toBe(2);
  });
});

describe('the leaf table filter', () => {
  const row = (index: number, over: Partial<AuditLeafRow> = {}): AuditLeafRow => ({ orgId: 'o', index, action: 'fleet.create', actorType: 'user', actorId: 'usr_ada', target: 'x', at: 1000 + index, leafHash: '00'.repeat(32), ...over });

  it('matches kind exactly, actor as a case-insensitive substring of type:id, time in [from, to)', () => {
    expect(matchesLeafFilter(row(1), { action: 'fleet.create' })).toBe(true);
    expect(matchesLeafFilter(row(1), { action: 'fleet' })).toBe(false);
    expect(matchesLeafFilter(row(1), { actor: 'USER:usr_a' })).toBe(true);
    expect(matchesLeafFilter(row(1, { actorType: 'robot' }), { actor: 'user:' })).toBe(false);
    expect(matchesLeafFilter(row(1), { actor: '   ' })).toBe(true);
    expect(matchesLeafFilter(row(5), { from: 1005, to: 1006 })).toBe(true);
    expect(matchesLeafFilter(row(6), { from: 1005, to: 1006 })).toBe(false);
    expect(matchesLeafFilter(row(4), { from: 1005 })).toBe(false);
  });

  it('pages the matches and counts them all', () => {
    const rows = Array.from({ length: 30 }, (_, i) => row(29 - i, { action: i % 3 === 0 ? 'session.create' : 'fleet.create' }));
    const p = pageOfLeaves({ rows, filter: { action: 'session.create' }, offset: 4, limit: 3 });
    expect(p.matched).toBe(10);
    expect(p.rows.map((r) => r.index)).toEqual([17, 14, 11]);
    expect(pageOfLeaves({ rows, filter: {}, offset: 28, limit: 5 }).rows).toHaveLength(2);
    expect(() => pageOfLeaves({ rows, filter: {}, offset: -1, limit: 5 })).toThrow(RangeError);
    expect(() => pageOfLeaves({ rows, filter: {}, offset: 0, limit: 501 })).toThrow(RangeError);
  });
});

describe('the audit worker boundary', () => {
  it('refuses malformed options before touching the network or IndexedDB', async () => {
    const { createAuditWorkerApi } = await import('../../workers/audit/api.ts');
    const api = createAuditWorkerApi();
    await expect(api.verify({ orgId: 'org x/../y' })).rejects.toThrow(TypeError);
    await expect(api.verify({ orgId: 'org_a', full: 'yes' } as never)).rejects.toThrow(TypeError);
    await expect(api.verify({ orgId: 'org_a', extra: 1 } as never)).rejects.toThrow(TypeError);
    await expect(api.verifyInclusion({ orgId: 'org_a', index: -1 })).rejects.toThrow(TypeError);
    await expect(api.verifyInclusion({ orgId: 'org_a', index: 1.5 })).rejects.toThrow(TypeError);
    await expect(api.leaves({ orgId: 'org_a', filter: {}, offset: 0, limit: 10_000 })).rejects.toThrow(TypeError);
    await expect(api.leaves({ orgId: 'org_a', filter: { action: 'x'.repeat(200) }, offset: 0, limit: 10 })).rejects.toThrow(TypeError);
    await expect(api.forget({ orgId: '' })).rejects.toThrow(TypeError);
  });
});
