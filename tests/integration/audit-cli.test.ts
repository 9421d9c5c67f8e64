// `tensorguard audit verify` against the real server process, with a malicious operator who has the
// SQLite file (drops the append-only triggers, rewrites leaves and the stored tree), a man in the middle
// who alters the signed checkpoint, and a replaced server key. Every attack ends in an exit status 3
// alarm and leaves the remembered head untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client } from '@libsql/client';
import { runCli, startServerProcess } from '../helpers/cli.ts';
import { startProxy } from '../helpers/proxy.ts';
import { canonicalJson } from '../../core/audit/leaf.ts';
import { hashLeaf } from '../../core/audit/merkle.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { randomBytes } from '../../core/random.ts';

const env = { TG_PASSPHRASE: `pp-${bytesToHex(randomBytes(8))}`, TG_PASSWORD: `pw-${bytesToHex(randomBytes(8))}` };

let root: string;
let dataDir: string;
let server: { url: string; stop(): Promise<void> };
let proxy: Awaited<ReturnType<typeof startProxy>>;
let orgId: string;
const admin = () => join(root, 'admin');
const auditor = () => join(root, 'auditor');
const cli = (home: string, ...args: string[]) => runCli([...args, '--json', '--home', home], env);
const headOf = async (home: string) => JSON.parse(await readFile(join(home, 'audit', `${orgId}.json`), 'utf8'));

/** The operator's own connection to the server's database file. */
async function operatorDb(): Promise<Client> {
  const c = createClient({ url: `file:${join(dataDir, 'tensorguard.db')}` });
  await c.execute('PRAGMA busy_timeout = 5000');
  return c;
}

/** The careful attacker: change rows, then recompute every leaf hash and the stored tree. */
async function rewriteHistory(mutate: (c: Client) => Promise<void>) {
  const c = await operatorDb();
  try {
    for (const t of ['audit_log_no_update', 'audit_log_no_delete', 'audit_tree_nodes_no_update', 'audit_tree_nodes_no_delete']) await c.execute(`DROP TRIGGER IF EXISTS ${t}`);
    await mutate(c);
    const rs = await c.execute({ sql: 'SELECT seq, org_id, actor_type, actor_id, action, target, details, created_at FROM audit_log WHERE org_id = ? ORDER BY seq', args: [orgId] });
    await c.execute({ sql: 'UPDATE audit_log SET leaf_index = NULL WHERE org_id = ?', args: [orgId] });
    for (const [i, r] of rs.rows.entries()) {
      const data = canonicalJson({ orgId: r.org_id, actorType: r.actor_type, actorId: r.actor_id, action: r.action, target: r.target, details: JSON.parse(String(r.details)), at: Number(r.created_at) });
      await c.execute({ sql: 'UPDATE audit_log SET leaf_index = ?, leaf_hash = ? WHERE seq = ?', args: [i, bytesToHex(hashLeaf(new TextEncoder().encode(data))), Number(r.seq)] });
    }
    await c.execute({ sql: 'DELETE FROM audit_tree_nodes WHERE org_id = ?', args: [orgId] });
  } finally {
    c.close();
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tg-audit-'));
  dataDir = join(root, 'server-data');
  server = await startServerProcess({ dataDir });
  proxy = await startProxy(server.url);
  const boot = await cli(admin(), 'admin', 'bootstrap', '--server', proxy.url, '--org', 'Acme', '--user', 'ada');
  expect(boot.code, boot.stdout + boot.stderr).toBe(0);
  orgId = boot.json.orgId;
  for (const name of ['arms', 'legs', 'wheels']) expect((await cli(admin(), 'fleet', 'create', '--name', name)).code).toBe(0);
  expect((await cli(admin(), 'user', 'add', '--user', 'aud', '--role', 'auditor')).code).toBe(0);
  expect((await cli(auditor(), 'login', '--server', proxy.url, '--user', 'aud')).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('tensorguard audit verify', () => {
  it('pins the server key on first use and stores the verified head', async () => {
    const r = await cli(auditor(), 'audit', 'verify');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json).toMatchObject({ status: 'consistent', keyPinnedNow: true, previousSize: 0, origin: `tensorguard.audit/${orgId}` });
    expect(r.json.actions['fleet.create']).toBe(3);
    expect(r.json.actions['session.create']).toBeGreaterThanOrEqual(2);
    const head = await headOf(auditor());
    expect(head.size).toBe(r.json.size);
    // An operator cannot verify (role), and gets a clear error, not an alarm.
    const op = await cli(admin(), 'user', 'add', '--user', 'opr', '--role', 'operator');
    expect(op.code).toBe(0);
    const oprHome = join(root, 'opr');
    expect((await cli(oprHome, 'login', '--server', proxy.url, '--user', 'opr')).code).toBe(0);
    const denied = await cli(oprHome, 'audit', 'verify');
    expect(denied.code).toBe(1);
    expect(denied.json.error.code).toBe('forbidden');
  });

  it('checks only the new leaves on the next run and proves the head consistent', async () => {
    await cli(admin(), 'fleet', 'create', '--name', 'grippers');
    const before = (await headOf(auditor())).size;
    const r = await cli(auditor(), 'audit', 'verify');
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.previousSize).toBe(before);
    expect(r.json.leavesChecked).toBe(r.json.size - before);
    expect(r.json.keyPinnedNow).toBe(false);
  });

  it('alarms when a man in the middle alters the signed checkpoint', async () => {
    proxy.setRewrite((req, body) => {
      if (!req.path.startsWith('/v1/audit/checkpoint')) return null;
      const j = JSON.parse(body.toString());
      j.checkpoint = j.checkpoint.replace(/\n(\d+)\n/, (_: string, n: string) => `\n${Number(n) + 5}\n`);
      return Buffer.from(JSON.stringify(j));
    });
    try {
      const r = await cli(auditor(), 'audit', 'verify');
      expect(r.code).toBe(3);
      expect(r.json.error.code).toBe('audit_inconsistent');
      expect(r.json.error.message).toMatch(/AUDIT ALARM.*checkpoint does not verify/);
    } finally {
      proxy.setRewrite(null);
    }
  });

  it('alarms when the operator edits a leaf and leaves the stored tree alone (--full)', async () => {
    const head = await headOf(auditor());
    const c = await operatorDb();
    try {
      await c.execute('DROP TRIGGER IF EXISTS audit_log_no_update');
      await c.execute({ sql: `UPDATE audit_log SET details = '{"name":"totally-harmless"}' WHERE org_id = ? AND leaf_index = 2`, args: [orgId] });
    } finally {
      c.close();
    }
    const incremental = await cli(auditor(), 'audit', 'verify');
    expect(incremental.code, 'the signed tree did not change, only the served leaf').toBe(0);
    const full = await cli(auditor(), 'audit', 'verify', '--full');
    expect(full.code).toBe(3);
    expect(full.json.error.code).toBe('audit_inconsistent');
    const after = await headOf(auditor());
    expect([after.size, after.rootHash]).toEqual([head.size, head.rootHash]); // the alarm stored nothing new
    expect(after.alarms.at(-1).code).toBe('audit_inconsistent');
  });

  it('alarms when the operator rewrites history and re-signs (edit, delete, reorder)', async () => {
    const remembered = await headOf(auditor());
    // edit
    await rewriteHistory((c) => c.execute({ sql: `UPDATE audit_log SET details = '{"name":"forged"}' WHERE org_id = ? AND leaf_index = 3`, args: [orgId] }).then(() => undefined));
    let r = await cli(auditor(), 'audit', 'verify');
    expect([r.code, r.json.error.code]).toEqual([3, 'audit_inconsistent']);
    expect((await headOf(auditor())).rootHash).toBe(remembered.rootHash); // the remembered head is kept
    // delete (and pad with new leaves so the size does not shrink)
    await rewriteHistory((c) => c.execute({ sql: 'DELETE FROM audit_log WHERE org_id = ? AND leaf_index = 1', args: [orgId] }).then(() => undefined));
    await cli(admin(), 'fleet', 'create', '--name', 'pad-1');
    await cli(admin(), 'fleet', 'create', '--name', 'pad-2');
    r = await cli(auditor(), 'audit', 'verify');
    expect([r.code, r.json.error.code]).toEqual([3, 'audit_inconsistent']);
    // reorder two leaves
    await rewriteHistory(async (c) => {
      const two = await c.execute({ sql: 'SELECT seq, details, target, action FROM audit_log WHERE org_id = ? ORDER BY seq LIMIT 2 OFFSET 4', args: [orgId] });
      const [x, y] = two.rows;
      await c.execute({ sql: 'UPDATE audit_log SET details = ?, target = ?, action = ? WHERE seq = ?', args: [String(y!.details), String(y!.target), String(y!.action), Number(x!.seq)] });
      await c.execute({ sql: 'UPDATE audit_log SET details = ?, target = ?, action = ? WHERE seq = ?', args: [String(x!.details), String(x!.target), String(x!.action), Number(y!.seq)] });
    });
    r = await cli(auditor(), 'audit', 'verify');
    expect([r.code, r.json.error.code]).toEqual([3, 'audit_inconsistent']);
    // A fresh auditor home, trusting on first use, sees a self-consistent (forged) log: what protects
    // the organization is every client that remembered an earlier head.
    const fresh = await cli(join(root, 'fresh-auditor'), 'login', '--server', proxy.url, '--user', 'aud');
    expect(fresh.code).toBe(0);
    expect((await cli(join(root, 'fresh-auditor'), 'audit', 'verify')).code).toBe(0);
  });

  it('alarms when the server comes back with another audit key', async () => {
    await server.stop();
    await rm(join(dataDir, 'audit-signing-key.json'));
    server = await startServerProcess({ dataDir });
    await proxy.close();
    proxy = await startProxy(server.url);
    const home = join(root, 'fresh-auditor');
    const cfg = JSON.parse(await readFile(join(home, 'config.json'), 'utf8'));
    cfg.server = proxy.url;
    await writeFile(join(home, 'config.json'), JSON.stringify(cfg));
    const r = await cli(home, 'audit', 'verify');
    expect(r.code).toBe(3);
    expect(r.json.error.code).toBe('audit_key_changed');
  });
});
