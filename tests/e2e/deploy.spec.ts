// Deployment in a real Chromium against a real server, robots and the officer's setup on the real CLI:
// v1 goes to the whole fleet, v2 goes to a canary (only the canary robots can pull it; the others are
// told they are not in the release yet), the canary robot reports telemetry with too many safety events,
// the canary page shows the trigger, the officer signs a rollback to v1 in the browser (signing worker),
// every robot pulls the rollback (v3 restores v1's adapter), and a replayed old manifest is still refused.
import { expect, test } from '@playwright/test';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { startProxy } from '../helpers/proxy.ts';
import { readSession } from '../../cli/home.ts';
import { ok, robotAdapters, skipWithoutChromium, startSuite, type Suite } from './support.ts';

const BACKUP_PASSPHRASE = 'deploy backup passphrase 1';
let suite: Suite;
let proxy: Awaited<ReturnType<typeof startProxy>>;

test.beforeAll(async () => {
  skipWithoutChromium();
  suite = await startSuite('deploy');
  proxy = await startProxy(suite.url); // robots and the CLI officer talk through it (for the replay check)
});
test.afterAll(async () => {
  await proxy?.close();
  await suite?.stop();
});

test('canary release, telemetry trigger, rollback signed in the browser, robots pull it', async ({ page }) => {
  skipWithoutChromium();
  test.setTimeout(240_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const shots = (name: string) => page.screenshot({ path: join('tmp', 'playwright', 'screens', `${name}.png`), fullPage: true });
  const officerHome = join(suite.root, 'cli-officer');
  const robotHome = (i: number) => join(suite.root, `robot-${i}`);
  const pull = (i: number, tag: string) => suite.cli(robotHome(i), 'robot', 'pull', '--out', join(suite.root, `pulled-${i}-${tag}`));
  const { template, adapters } = await robotAdapters(suite.root, 3);

  let fleetId = '';
  let officerKeyId = '';
  const releases: Array<{ releaseId: string; adapterSha256: string }> = [];
  await test.step('CLI officer: keys, fleet, three robots; v1 to the whole fleet, v2 to a canary of 0.3', async () => {
    ok(await suite.cli(officerHome, 'admin', 'bootstrap', '--server', proxy.url, '--org', 'Deploy Co', '--user', 'dana'), 'bootstrap');
    fleetId = ok(await suite.cli(officerHome, 'fleet', 'create', '--name', 'line'), 'fleet').id;
    ok(await suite.cli(officerHome, 'officer', 'init'), 'officer init');
    officerKeyId = ok(await runCli(['officer', 'export-backup', '--out', join(suite.root, 'cli.tgbackup'), '--json', '--home', officerHome], { ...suite.env, TG_BACKUP_PASSPHRASE: BACKUP_PASSPHRASE }), 'export-backup').officerKeyId;
    for (let i = 0; i < 3; i++) {
      ok(await suite.cli(officerHome, 'officer', 'enroll-bundle', '--fleet', fleetId, '--out', join(suite.root, `bundle-${i}.json`)), 'bundle');
      ok(await suite.cli(robotHome(i), 'robot', 'enroll', '--bundle', join(suite.root, `bundle-${i}.json`), '--name', `line-${i}`), 'enroll');
    }
    for (const canary of ['1', '0.3']) {
      const roundId = ok(await suite.cli(officerHome, 'officer', 'round', 'open', '--fleet', fleetId, '--template', template, '--quorum', '3'), 'round open').roundId;
      for (let i = 0; i < 3; i++) ok(await suite.cli(robotHome(i), 'robot', 'push', '--adapter', adapters[i]!, '--base', template, '--round', roundId), 'push');
      ok(await suite.cli(officerHome, 'officer', 'round', 'close', '--round', roundId), 'close');
      ok(await suite.cli(officerHome, 'officer', 'review', '--round', roundId, '--out', join(suite.root, `candidate-${roundId}`), '--gate-scenarios', '2'), 'review');
      const rel = ok(await suite.cli(officerHome, 'officer', 'release', '--round', roundId, '--canary', canary), 'release');
      releases.push({ releaseId: rel.releaseId, adapterSha256: rel.adapterSha256 });
      expect(rel.robots).toBe(canary === '1' ? 3 : 1);
      if (canary === '1') for (let i = 0; i < 3; i++) expect(ok(await pull(i, 'v1'), `pull v1 ${i}`).releaseVersion).toBe(1);
    }
  });

  let canaryRobot = -1;
  await test.step('robots in the canary pull v2; the others are not in the release yet', async () => {
    const results = await Promise.all([0, 1, 2].map((i) => pull(i, 'v2')));
    const pulled = results.map((r) => r.code === 0);
    expect(pulled.filter(Boolean)).toHaveLength(1);
    canaryRobot = pulled.indexOf(true);
    expect(results[canaryRobot]!.json).toMatchObject({ releaseVersion: 2, adapterSha256: releases[1]!.adapterSha256 });
    for (const r of results.filter((_, i) => i !== canaryRobot)) {
      expect(r.json.error.code).toBe('not_in_release');
      expect(r.json.error.message).toMatch(/not in its rollout yet/);
    }
    // telemetry from a robot without the key is refused; the canary robot's is recorded
    const stranger = await suite.cli(robotHome((canaryRobot + 1) % 3), 'robot', 'report', '--release', releases[1]!.releaseId, '--success-rate', '1', '--safety-events', '0', '--p99-ms', '10');
    expect(stranger.code).not.toBe(0);
    ok(await suite.cli(robotHome(canaryRobot), 'robot', 'report', '--release', releases[1]!.releaseId, '--success-rate', '0.99', '--safety-events', '1', '--p99-ms', '180'), 'report 1');
    const second = ok(await suite.cli(robotHome(canaryRobot), 'robot', 'report', '--release', releases[1]!.releaseId, '--success-rate', '0.98', '--safety-events', '3', '--p99-ms', '240', '--runs', '50'), 'report 2');
    expect(second).toMatchObject({ runs: 50, errors: 1, safetyEvents: 3 });
    const status = ok(await suite.cli(officerHome, 'officer', 'canary', '--release', releases[1]!.releaseId), 'officer canary');
    expect(status.verdict.triggers.map((t: { name: string }) => t.name)).toEqual(['safety_events']);
  });

  await test.step('browser: sign in, import the officer backup, the canary page shows the trigger', async () => {
    await page.goto(`${suite.url}/signin`);
    await page.getByLabel('User name').fill('dana');
    await page.getByLabel('Password').fill(suite.env.TG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByLabel('Backup file').setInputFiles(join(suite.root, 'cli.tgbackup'));
    await page.getByLabel('Passphrase', { exact: true }).fill(BACKUP_PASSPHRASE);
    await page.getByRole('button', { name: 'Import backup' }).click();
    await expect(page.getByTestId('import-result')).toContainText(`officer key ${officerKeyId}`, { timeout: 60_000 });

    await page.getByRole('link', { name: 'Registry', exact: true }).click();
    await expect(page.getByTestId('registry-live')).toHaveText('v2');
    await expect(page.getByTestId('version-2')).toContainText('canary');
    await shots('registry');
    await page.getByRole('link', { name: 'Canary status of v2' }).click();
    await expect(page.getByTestId('canary-stage')).toHaveText('canary');
    await expect(page.getByTestId('canary-robots')).toHaveText('1');
    await expect(page.getByTestId('canary-safety-events')).toHaveText('4');
    await expect(page.getByTestId('trigger-safety_events')).toContainText('Safety events: 4 > 3');
    await expect(page.getByRole('row', { name: /not in release yet/ })).toHaveCount(2);
    await expect(page.getByRole('img', { name: /p99 latency per report/ })).toBeVisible();
    await shots('canary-triggered');
  });

  await test.step('the officer signs the rollback to v1 in the browser; every robot pulls it', async () => {
    await expect(page.getByLabel('Roll back to version')).toHaveValue('1');
    await page.getByRole('button', { name: 'Sign rollback' }).click();
    await expect(page.getByTestId('staged-done')).toContainText('v3 restores v1 for 3 robots', { timeout: 30_000 });
    await expect(page.getByTestId('canary-stage')).toHaveText('rolled back');
    await shots('canary-rolled-back');
    for (let i = 0; i < 3; i++) {
      const r = ok(await pull(i, 'v3'), `pull rollback ${i}`);
      expect(r).toMatchObject({ releaseVersion: 3, kind: 'rollback', adapterSha256: releases[0]!.adapterSha256 });
    }
    await page.getByRole('link', { name: 'Registry', exact: true }).click();
    await expect(page.getByTestId('version-3')).toContainText('rollback to v1');
  });

  await test.step('a replayed old manifest (v1, v2) is still refused: versions only grow', async () => {
    const token = (await readSession(officerHome)).token;
    for (const old of [releases[0]!, releases[1]!]) {
      const body = Buffer.from(await (await fetch(`${suite.url}/v1/releases/${old.releaseId}`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer());
      proxy.setRewrite((req) => (req.path === '/v1/releases/latest' ? body : null));
      const replay = await pull(canaryRobot, `replay-${old.releaseId}`);
      proxy.setRewrite(null);
      expect(replay.code).not.toBe(0);
      expect(replay.json.error.message).toMatch(/not newer than the running version 3/);
    }
  });

  await test.step('cells and safety decisions pages render the server\'s numbers', async () => {
    await page.getByRole('link', { name: 'Safety', exact: true }).click();
    await expect(page.getByTestId('safety-denials')).toHaveText('0');
    await page.getByRole('link', { name: 'Cells', exact: true }).click();
    await expect(page.getByText(/No cells configured for this fleet/)).toBeVisible();
  });
  expect(pageErrors).toEqual([]);
});
