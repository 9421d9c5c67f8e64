// The auditor's audit page in a real Chromium against a real server: the auditor signs in, verifies the
// organization's Merkle audit log in the audit worker (first use pins the server key), reloads and
// verifies only the new leaves plus the consistency proof; then the server's operator tampers with
// the SQLite file — edits a leaf and leaves the tree alone (caught by "Verify inclusion" and the full
// re-check), rewrites history carefully (edit, delete, reorder, recomputing every hash and the stored
// tree) — and each time the page raises an alarm (role="alert"), keeps the head it verified before,
// and records the alarm in IndexedDB.
import { expect, test, type Page } from '@playwright/test';
import { join } from 'node:path';
import { createClient, type Client } from '@libsql/client';
import { canonicalJson } from '../../core/audit/leaf.ts';
import { hashLeaf } from '../../core/audit/merkle.ts';
import { bytesToHex } from '../../core/bytes.ts';
import { ok, skipWithoutChromium, startSuite, type Suite } from './support.ts';

let suite: Suite;
let orgId = '';
const adminHome = () => join(suite.root, 'cli-admin');

test.beforeAll(async () => {
  skipWithoutChromium();
  suite = await startSuite('audit');
  orgId = ok(await suite.cli(adminHome(), 'admin', 'bootstrap', '--server', suite.url, '--org', 'Acme', '--user', 'ada'), 'bootstrap').orgId;
  for (const name of ['arms', 'legs', 'wheels']) ok(await suite.cli(adminHome(), 'fleet', 'create', '--name', name), `fleet ${name}`);
  ok(await suite.cli(adminHome(), 'user', 'add', '--user', 'aud', '--role', 'auditor'), 'user add');
});
test.afterAll(async () => {
  await suite?.stop();
});

/** The operator's own connection to the server's database file. */
async function operatorDb(): Promise<Client> {
  const c = createClient({ url: `file:${join(suite.dataDir, 'tensorguard.db')}` });
  await c.execute('PRAGMA busy_timeout = 5000');
  return c;
}

/** Edits rows the way an operator with the file can: the append-only triggers go first. */
async function tamper(mutate: (c: Client) => Promise<unknown>, options: { rehash: boolean }): Promise<void> {
  const c = await operatorDb();
  try {
    for (const t of ['audit_log_no_update', 'audit_log_no_delete', 'audit_tree_nodes_no_update', 'audit_tree_nodes_no_delete']) await c.execute(`DROP TRIGGER IF EXISTS ${t}`);
    await mutate(c);
    if (!options.rehash) return;
    // The careful attacker: renumber, recompute every leaf hash, drop the stored tree (rebuilt and re-signed by the server).
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

async function shownHead(page: Page): Promise<{ size: number; root: string }> {
  return { size: Number(await page.getByTestId('audit-size').textContent()), root: (await page.getByTestId('fp-root-hash').getAttribute('data-value'))! };
}

/** The head and the alarms this browser stored (IndexedDB, read without the app's code). */
async function storedAudit(page: Page): Promise<{ head: { size: number; rootHash: string } | null; alarms: Array<{ code: string; reason: string }>; leaves: number }> {
  return page.evaluate(async (org) => {
    const db = await new Promise<IDBDatabase>((done, fail) => {
      const r = indexedDB.open('tensorguard-app');
      r.onsuccess = () => done(r.result);
      r.onerror = () => fail(r.error);
    });
    const all = <T,>(store: string) =>
      new Promise<T[]>((done, fail) => {
        const r = db.transaction(store).objectStore(store).getAll();
        r.onsuccess = () => done(r.result as T[]);
        r.onerror = () => fail(r.error);
      });
    const heads = await all<{ orgId: string; size: number; rootHash: string }>('auditHeads');
    const alarms = await all<{ orgId: string; code: string; reason: string }>('auditAlarms');
    const leaves = await all<{ orgId: string }>('auditLeaves');
    db.close();
    return { head: heads.find((h) => h.orgId === org) ?? null, alarms: alarms.filter((a) => a.orgId === org), leaves: leaves.filter((l) => l.orgId === org).length };
  }, orgId);
}

test('the auditor verifies the log incrementally and sees an alarm for every kind of tampering', async ({ page, context }) => {
  skipWithoutChromium();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 500) pageErrors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  const alarm = page.getByTestId('audit-alarm');

  await test.step('the auditor signs in and opens the audit page', async () => {
    await page.goto(`${suite.url}/`);
    await expect(page).toHaveURL(/\/signin$/);
    await page.getByLabel('User name').fill('aud');
    await page.getByLabel('Password').fill(suite.env.TG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).not.toHaveURL(/\/signin$/);
    await page.getByRole('link', { name: 'Audit' }).click();
    await expect(page).toHaveURL(/\/audit$/);
    await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
  });

  let first = { size: 0, root: '' };
  await test.step('first verification pins the key and stores the head', async () => {
    await page.getByRole('button', { name: 'Verify the audit log' }).click();
    await expect(page.getByTestId('audit-status')).toContainText(/Consistent: \d+ leaves/);
    await expect(page.getByTestId('audit-status')).toContainText('the server audit key is now pinned');
    first = await shownHead(page);
    expect(first.size).toBeGreaterThan(0);
    expect(first.root).toMatch(/^[0-9a-f]{64}$/);
    await expect(page.getByTestId('fp-audit-key-id')).toHaveAttribute('data-value', /^[0-9a-f]{8}$/);
    const stored = await storedAudit(page);
    expect(stored.head).toMatchObject({ size: first.size, rootHash: first.root });
    expect(stored.leaves).toBe(first.size);
    // the table shows the verified leaves, filterable by kind
    await expect(page.getByRole('row', { name: /fleet\.create/ })).toHaveCount(3);
    await page.getByLabel('Kind').selectOption('fleet.create');
    await expect(page.getByTestId('audit-matched')).toContainText('of 3');
    await page.getByLabel('Actor').fill('system:nobody');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect(page.getByTestId('audit-matched')).toContainText('No verified entries match');
    await page.getByLabel('Actor').fill('');
    await page.getByLabel('Kind').selectOption('');
  });

  let second = { size: 0, root: '' };
  await test.step('a reload verifies only the new leaves and the consistency proof', async () => {
    ok(await suite.cli(adminHome(), 'fleet', 'create', '--name', 'grippers'), 'fleet grippers');
    const leafRequests: string[] = [];
    context.on('request', (r) => {
      if (r.url().includes('/v1/audit/')) leafRequests.push(new URL(r.url()).pathname + new URL(r.url()).search);
    });
    await page.reload();
    await expect(page.getByTestId('audit-status')).toContainText(`(${first.size} verified before, consistency proof verified)`);
    second = await shownHead(page);
    expect(second.size).toBeGreaterThan(first.size);
    expect(leafRequests).toContain(`/v1/audit/leaves?start=${first.size}&end=${second.size}`);
    expect(leafRequests.some((p) => p.startsWith(`/v1/audit/proof/consistency?from=${first.size}&to=${second.size}`))).toBe(true);
    expect(leafRequests.some((p) => p.startsWith('/v1/audit/leaves?start=0&'))).toBe(false);
    expect((await storedAudit(page)).head).toMatchObject({ size: second.size, rootHash: second.root });
    // one leaf's audit path against the verified root
    await page.getByRole('button', { name: 'Verify inclusion of entry 2', exact: true }).click();
    await expect(page.getByTestId('audit-leaf-2')).toContainText('Included in the verified tree');
  });

  await test.step('an edited leaf (tree left alone): the inclusion check and the full re-check alarm, the head stays', async () => {
    await tamper((c) => c.execute({ sql: `UPDATE audit_log SET details = '{"name":"totally-harmless"}' WHERE org_id = ? AND leaf_index = 2`, args: [orgId] }), { rehash: false });
    await page.getByRole('button', { name: 'Verify inclusion of entry 2', exact: true }).click();
    await expect(alarm).toBeVisible();
    await expect(alarm).toHaveAttribute('role', 'alert');
    await expect(alarm).toHaveAttribute('data-reason', 'inclusion_failed');
    await expect(alarm).toContainText('leaf 2');
    await expect(page.getByTestId('audit-leaf-2')).toContainText('Not in the verified tree');
    await page.getByRole('button', { name: 'Full re-check' }).click();
    await expect(alarm).toHaveAttribute('data-reason', 'history_rewritten');
    await expect(alarm).toContainText('a leaf was changed, removed or reordered');
    expect(await shownHead(page)).toEqual(second);
    const stored = await storedAudit(page);
    expect(stored.head).toMatchObject({ size: second.size, rootHash: second.root });
    expect(stored.alarms.map((a) => a.reason)).toEqual(['inclusion_failed', 'history_rewritten']);
    await page.screenshot({ path: join('tmp', 'playwright', 'screens', 'audit-alarm.png'), fullPage: true });
  });

  await test.step('history rewritten and re-signed by the server: the next visit alarms and keeps the old head', async () => {
    await tamper((c) => c.execute({ sql: `UPDATE audit_log SET details = '{"name":"forged"}' WHERE org_id = ? AND leaf_index = 3`, args: [orgId] }), { rehash: true });
    ok(await suite.cli(adminHome(), 'fleet', 'create', '--name', 'after-edit'), 'fleet after-edit');
    await page.reload();
    await expect(alarm).toHaveAttribute('data-code', 'audit_inconsistent');
    await expect(alarm).toHaveAttribute('data-reason', /root_mismatch|consistency_failed/);
    expect(await shownHead(page)).toEqual(second);
    await page.reload(); // the alarm repeats on every visit; the head never moves
    await expect(alarm).toBeVisible();
    expect((await storedAudit(page)).head).toMatchObject({ size: second.size, rootHash: second.root });
  });

  await test.step('a deleted leaf and a reordering: alarms too', async () => {
    await tamper((c) => c.execute({ sql: 'DELETE FROM audit_log WHERE org_id = ? AND leaf_index = 1', args: [orgId] }), { rehash: true });
    for (const n of ['pad-1', 'pad-2']) ok(await suite.cli(adminHome(), 'fleet', 'create', '--name', n), `fleet ${n}`);
    await page.reload();
    await expect(alarm).toHaveAttribute('data-code', 'audit_inconsistent');
    await tamper(
      async (c) => {
        const two = await c.execute({ sql: 'SELECT seq, details, target, action FROM audit_log WHERE org_id = ? ORDER BY seq LIMIT 2 OFFSET 4', args: [orgId] });
        const [x, y] = two.rows;
        await c.execute({ sql: 'UPDATE audit_log SET details = ?, target = ?, action = ? WHERE seq = ?', args: [String(y!.details), String(y!.target), String(y!.action), Number(x!.seq)] });
        await c.execute({ sql: 'UPDATE audit_log SET details = ?, target = ?, action = ? WHERE seq = ?', args: [String(x!.details), String(x!.target), String(x!.action), Number(y!.seq)] });
      },
      { rehash: true },
    );
    await page.getByRole('button', { name: 'Verify new entries' }).click();
    await expect(page.getByTestId('audit-alarm-log').getByRole('listitem')).toHaveCount(6);
    expect(await shownHead(page)).toEqual(second);
    const stored = await storedAudit(page);
    expect(stored.alarms.every((a) => a.code === 'audit_inconsistent')).toBe(true);
    expect(stored.head).toMatchObject({ size: second.size, rootHash: second.root });
  });

  expect(pageErrors).toEqual([]);
});
