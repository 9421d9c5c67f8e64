// A customer evaluation model in the PWA: the officer's keys are made in the browser and imported into the
// CLI (the same attestation root, so the same ML-KEM-768 key), the CLI registers a customer ONNX model and
// an encrypted scenario set for a fleet, and the fleet page lists it; "Prepare for review" moves the
// record, the model and the ciphertext to the eval worker, which verifies and decrypts them there — the
// page shows only the summary (set names and counts), and the scenario plaintext is never sent anywhere.
import { expect, test } from '@playwright/test';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { runCli } from '../helpers/cli.ts';
import { loadPolicyWeights } from '../../core/policy/mlp.ts';
import { REFERENCE_POLICY } from '../../core/policy/reference.ts';
import { MODELS_DIR } from '../../cli/commands/robot-train.ts';
import { buildCustomerTestModel, testScenarioSetDocument } from '../../core/eval/customer-test-models.ts';
import { ok, recordRequests, skipWithoutChromium, startSuite, type Suite } from './support.ts';

const BACKUP_PASSPHRASE = 'eval model e2e backup passphrase';
let suite: Suite;

test.beforeAll(async () => {
  suite = await startSuite('eval-model');
});
test.afterAll(async () => {
  await suite?.stop();
});

test('the fleet page lists a customer evaluation model and the eval worker decrypts its scenario set', async ({ page, context }) => {
  skipWithoutChromium();
  const requests = recordRequests(context);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 500) pageErrors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  const officerHome = join(suite.root, 'cli-officer');

  await test.step('first run and the key ceremony in the browser; the backup goes to the CLI officer', async () => {
    await page.goto(`${suite.url}/`);
    await page.getByRole('tab', { name: 'First run' }).click();
    await page.getByLabel('Organization').fill('Acme Robotics');
    await page.getByLabel('User name').fill('olivia');
    await page.getByLabel('Password').fill(suite.env.TG_PASSWORD);
    await page.getByRole('button', { name: 'Create organization' }).click();
    await expect(page).toHaveURL(/\/keys$/);
    await page.getByRole('button', { name: 'Generate officer keys' }).click();
    await expect(page.getByTestId('he-record-fingerprint')).toBeVisible({ timeout: 60_000 });
    await page.getByLabel('Backup passphrase').fill(BACKUP_PASSPHRASE);
    await page.getByLabel('Repeat the passphrase').fill(BACKUP_PASSPHRASE);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download backup' }).click()]);
    await download.saveAs(join(suite.root, 'browser.tgbackup'));
    ok(await suite.cli(officerHome, 'login', '--server', suite.url, '--user', 'olivia'), 'cli login');
    ok(await runCli(['officer', 'import-backup', '--file', join(suite.root, 'browser.tgbackup'), '--json', '--home', officerHome], { ...suite.env, TG_BACKUP_PASSPHRASE: BACKUP_PASSPHRASE }), 'import-backup');
  });

  let fleetId = '';
  let registered: { id: string; fingerprint: string } = { id: '', fingerprint: '' };
  await test.step('the CLI officer registers a customer model and an encrypted scenario set', async () => {
    fleetId = ok(await suite.cli(officerHome, 'fleet', 'create', '--name', 'warehouse'), 'fleet create').id;
    const weights = loadPolicyWeights({ bytes: new Uint8Array(await readFile(join(MODELS_DIR, REFERENCE_POLICY.weightsFile))) });
    await writeFile(join(suite.root, 'customer.onnx'), buildCustomerTestModel({ label: 'e2e', base: weights }));
    await writeFile(join(suite.root, 'scenarios.json'), JSON.stringify(testScenarioSetDocument({ label: 'e2e', count: 2 })));
    registered = ok(
      await suite.cli(officerHome, 'officer', 'eval-model', 'register', '--fleet', fleetId, '--onnx', join(suite.root, 'customer.onnx'), '--scenarios', join(suite.root, 'scenarios.json'), '--name', 'Warehouse line model'),
      'eval-model register',
    );
  });

  await test.step('the fleet page lists it; the eval worker verifies and decrypts it for reviews', async () => {
    await page.goto(`${suite.url}/fleets/${fleetId}`);
    const section = page.getByTestId('eval-models');
    await expect(section.getByRole('row', { name: /Warehouse line model/ })).toContainText('active');
    await expect(section.getByText(registered.fingerprint.slice(0, 16))).toBeVisible();
    await section.getByRole('button', { name: 'Prepare for review Warehouse line model' }).click();
    const prepared = page.getByTestId('eval-model-prepared');
    await expect(prepared).toContainText('Warehouse line model', { timeout: 60_000 });
    await expect(prepared).toContainText('line-nominal (nominal): 2 scenarios');
    await expect(prepared).toContainText('line-ood (ood): 2 scenarios');
    await expect(section.getByRole('row', { name: /Warehouse line model/ })).toContainText('prepared on this device');
    // After a reload the prepared model is still there (key store), and it is still the active one.
    await page.reload();
    await expect(page.getByTestId('eval-model-prepared')).toContainText('line-site-b (site): 2 scenarios');
  });

  await test.step('nothing the browser sent carries the scenario set', async () => {
    for (const r of requests) if (r.body) expect(r.body.includes(Buffer.from('line-site-b')), `${r.method} ${r.url}`).toBe(false);
  });

  await test.step('retired: the page forgets the prepared model', async () => {
    page.once('dialog', (d) => d.accept('outdated line'));
    await page.getByTestId('eval-models').getByRole('button', { name: 'Retire Warehouse line model' }).click();
    await expect(page.getByTestId('eval-models').getByRole('row', { name: /Warehouse line model/ })).toContainText('retired');
    await expect(page.getByTestId('eval-model-prepared')).toHaveCount(0);
  });
  expect(pageErrors).toEqual([]);
});
