// Migrations from an empty database and from the schema before the Merkle audit log (with data in it):
// every foreign key has an index, the append-only triggers stand, and rows written before the tree
// existed get their leaf indices and become a verifiable tree.
import { mkdtemp, rm, cp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from 'drizzle-orm/libsql/migrator';
import { MIGRATIONS_FOLDER, closeDatabase, openDatabase, type Database } from './client.ts';
import { appendAudit, auditTreeHead, ensureAuditTree, readAuditNodes } from './audit.ts';
import { canonicalJson } from '../../core/audit/leaf.ts';
import { bytesToHex, hexToBytes, utf8ToBytes } from '../../core/bytes.ts';
import { consistencyPlan, hashLeaf, planNodes, resolvePlan, rootFromLeafHashes, verifyConsistency } from '../../core/audit/merkle.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tg-migrations-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function rows(db: Database, q: string) {
  return (await db.$client.execute(q)).rows as unknown as Array<Record<string, unknown>>;
}

/** Foreign keys of every table whose columns are not the leading columns of some index. */
async function unindexedForeignKeys(db: Database): Promise<string[]> {
  const tables = (await rows(db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '__drizzle%'`)).map((r) => String(r.name));
  const missing: string[] = [];
  for (const table of tables) {
    const fks = await rows(db, `PRAGMA foreign_key_list('${table}')`);
    const byId = new Map<number, string[]>();
    for (const fk of fks) byId.set(Number(fk.id), [...(byId.get(Number(fk.id)) ?? []), String(fk.from)]);
    const indexes: string[][] = [];
    for (const idx of await rows(db, `PRAGMA index_list('${table}')`)) indexes.push((await rows(db, `PRAGMA index_info('${String(idx.name)}')`)).sort((a, b) => Number(a.seqno) - Number(b.seqno)).map((c) => String(c.name)));
    for (const cols of byId.values()) {
      const covered = indexes.some((ix) => cols.every((c) => ix.slice(0, cols.length).includes(c)));
      if (!covered) missing.push(`${table}(${cols.join(', ')})`);
    }
  }
  return missing;
}

describe('migrations from an empty database', () => {
  it('create every table with an index for every foreign key, and the append-only triggers', async () => {
    const db = await openDatabase({ url: `file:${join(dir, 'empty.db')}` });
    try {
      expect(await unindexedForeignKeys(db)).toEqual([]);
      const triggers = (await rows(db, `SELECT name FROM sqlite_master WHERE type = 'trigger'`)).map((r) => String(r.name));
      for (const t of ['audit_log_no_update', 'audit_log_no_delete', 'audit_tree_nodes_no_update', 'audit_tree_nodes_no_delete', 'he_key_revocations_no_update', 'he_key_revocations_no_delete'])
        expect(triggers).toContain(t);
      const indexes = (await rows(db, `SELECT name FROM sqlite_master WHERE type = 'index'`)).map((r) => String(r.name));
      for (const i of ['audit_log_org_leaf_unique', 'rounds_org_key_version_idx', 'he_key_revocations_org_version_unique', 'sessions_org_idx']) expect(indexes).toContain(i);
      expect(await rows(db, 'PRAGMA foreign_key_check')).toEqual([]);
      // The check itself notices a missing index.
      await db.$client.execute('DROP INDEX contributions_robot_fk_idx');
      expect(await unindexedForeignKeys(db)).toEqual(['contributions(robot_id)']);
    } finally {
      closeDatabase({ db });
    }
  });
});

describe('migrations from the schema before the Merkle audit log', () => {
  it('backfill leaf indices per organization, keep the log append-only, and build a verifiable tree', async () => {
    // The previous schema: every migration before 0003_audit_merkle_key_lifecycle.
    const previous = join(dir, 'previous-migrations');
    await cp(MIGRATIONS_FOLDER, previous, { recursive: true });
    const journalPath = join(previous, 'meta', '_journal.json');
    const journal = JSON.parse(await readFile(journalPath, 'utf8')) as { entries: Array<{ tag: string }> };
    const cut = journal.entries.findIndex((e) => e.tag.endsWith('audit_merkle_key_lifecycle'));
    expect(cut).toBeGreaterThan(0);
    journal.entries = journal.entries.slice(0, cut);
    await writeFile(journalPath, JSON.stringify(journal));

    const url = `file:${join(dir, 'previous.db')}`;
    const old = await openDatabase({ url, migrate: false });
    await migrate(old, { migrationsFolder: previous });
    expect((await rows(old, `PRAGMA table_info('audit_log')`)).map((c) => c.name)).not.toContain('leaf_index');
    // Data as the previous server wrote it: two organizations whose audit rows interleave.
    const c = old.$client;
    const entries: Record<string, string[]> = { org_a: [], org_b: [] };
    for (const org of ['org_a', 'org_b']) {
      await c.execute({ sql: 'INSERT INTO organizations (id, name, created_at) VALUES (?, ?, 1)', args: [org, org] });
      await c.execute({ sql: `INSERT INTO users (id, org_id, name, password_hash, roles, created_at) VALUES (?, ?, ?, 'x', '["admin"]', 1)`, args: [`usr_${org}`, org, `admin-${org}`] });
      await c.execute({ sql: `INSERT INTO fleets (id, org_id, name, envelope, created_at) VALUES (?, ?, 'arms', '{}', 1)`, args: [`flt_${org}`, org] });
      await c.execute({ sql: `INSERT INTO he_keys (id, org_id, key_version, record, fingerprint, param_set_id, parms_id, created_by, created_at) VALUES (?, ?, 1, x'00', x'00', 'p', x'00', 'u', 1)`, args: [`hek_${org}`, org] });
    }
    for (let i = 0; i < 23; i++) {
      const org = i % 3 === 0 ? 'org_b' : 'org_a';
      const entry = { orgId: org, actorType: 'user', actorId: `usr_${org}`, action: 'fleet.create', target: `t${i}`, details: { i, name: `fleet ${i}` }, at: 1_700_000_000_000 + i };
      const data = canonicalJson(entry);
      entries[org]!.push(data);
      await c.execute({
        sql: 'INSERT INTO audit_log (org_id, actor_type, actor_id, action, target, details, leaf_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        args: [org, entry.actorType, entry.actorId, entry.action, entry.target, canonicalJson(entry.details), bytesToHex(hashLeaf(utf8ToBytes(data))), entry.at],
      });
    }
    closeDatabase({ db: old });

    const db = await openDatabase({ url }); // every migration, on top of the data
    try {
      for (const org of ['org_a', 'org_b']) {
        const indexed = await rows(db, `SELECT leaf_index FROM audit_log WHERE org_id = '${org}' ORDER BY seq`);
        expect(indexed.map((r) => Number(r.leaf_index))).toEqual(entries[org]!.map((_, i) => i));
        await ensureAuditTree({ db, orgId: org });
        const head = await auditTreeHead({ db, orgId: org });
        expect(head.size).toBe(entries[org]!.length);
        expect(bytesToHex(head.rootHash)).toBe(bytesToHex(rootFromLeafHashes(entries[org]!.map((d) => hashLeaf(utf8ToBytes(d))))));
      }
      await expect(db.$client.execute(`UPDATE audit_log SET target = 'x'`)).rejects.toThrow(/append-only/);
      await expect(db.$client.execute(`DELETE FROM audit_log`)).rejects.toThrow(/append-only/);

      // New leaves continue the backfilled tree, provably consistent with it.
      const before = await auditTreeHead({ db, orgId: 'org_a' });
      const { leafIndex } = await db.transaction((tx) => appendAudit({ db: tx, orgId: 'org_a', actor: { type: 'system', id: 'test' }, action: 'after.migration', target: 'x', now: 2 }));
      expect(leafIndex).toBe(before.size);
      const after = await auditTreeHead({ db, orgId: 'org_a' });
      const plan = consistencyPlan({ from: before.size, to: after.size });
      const proof = resolvePlan({ plan, node: await readAuditNodes({ db, orgId: 'org_a', nodes: planNodes(plan) }) });
      verifyConsistency({ from: before.size, to: after.size, fromRoot: before.rootHash, toRoot: after.rootHash, proof });
      expect(await unindexedForeignKeys(db)).toEqual([]);
      expect(await rows(db, 'PRAGMA foreign_key_check')).toEqual([]);
      expect(String((await rows(db, 'PRAGMA integrity_check'))[0]!.integrity_check)).toBe('ok');
      expect(hexToBytes(bytesToHex(after.rootHash))).toEqual(after.rootHash);
    } finally {
      closeDatabase({ db });
    }
  });
});
