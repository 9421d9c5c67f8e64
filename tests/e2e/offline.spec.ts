// Field use: the officer's keys come from the officer CLI (backup CLI -> browser), two rounds are
// prepared for review online, then the network goes away. Offline, both are verified, decrypted and
// released in the browser; the signed releases wait in the outbox. Meanwhile the CLI officer rejects
// the second round. Back online: the first release is accepted exactly once even though the answer
// to its first send is lost (the resend gets the stored answer), and the second shows as a conflict
// ("rejected meanwhile"), kept in the outbox, not lost and not applied.
import { expect, test } from '@playwright/test';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { runCli } from '../helpers/cli.ts';
import { ok, robotAdapters, skipWithoutChromium, startSuite, type Suite } from './support.ts';

const BACKUP_PASSPHRASE = 'cli backup passphrase 22';
let suite: Suite;

test.beforeAll(async () => {
  skipWithoutChromium();
  suite = await startSuite('offline');
});
test.afterAll(async () => {
  await suite?.stop();
});

test('offline review and signing; the outbox sends once; a conflicting decision is shown', async ({ page, context }) => {
  skipWithoutChromium();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const shots = (name: string) => page.screenshot({ path: join('tmp', 'playwright', 'screens', `${name}.png`), fullPage: true });
  const officerHome = join(suite.root, 'cli-officer');
  const robotHome = (i: number) => join(suite.root, `robot-${i}`);
  const { template, adapters } = await robotAdapters(suite.root, 2);

  let fleetId = '';
  const rounds: string[] = [];
  let officerKeyId = '';
  await test.step('the CLI officer sets up: keys, fleet, two robots, two finalized rounds, a key backup', async () => {
    ok(await suite.cli(officerHome, 'admin', 'bootstrap', '--server', suite.url, '--org', 'Field Ops', '--user', 'fiona'), 'bootstrap');
    fleetId = ok(await suite.cli(officerHome, 'fleet', 'create', '--name', 'yard'), 'fleet').id;
    ok(await suite.cli(officerHome, 'officer', 'init'), 'officer init');
    const exported = ok(await runCli(['officer', 'export-backup', '--out', join(suite.root, 'cli.tgbackup'), '--json', '--home', officerHome], { ...suite.env, TG_BACKUP_PASSPHRASE: BACKUP_PASSPHRASE }), 'export-backup');
    officerKeyId = exported.officerKeyId;
    for (let i = 0; i < 2; i++) {
      ok(await suite.cli(officerHome, 'officer', 'enroll-bundle', '--fleet', fleetId, '--out', join(suite.root, `bundle-${i}.json`)), 'bundle');
      ok(await suite.cli(robotHome(i), 'robot', 'enroll', '--bundle', join(suite.root, `bundle-${i}.json`), '--name', `yard-${i}`), 'enroll');
    }
    for (let r = 0; r < 2; r++) {
      const roundId = ok(await suite.cli(officerHome, 'officer', 'round', 'open', '--fleet', fleetId, '--template', template, '--quorum', '2'), 'round open').roundId;
      for (let i = 0; i < 2; i++) ok(await suite.cli(robotHome(i), 'robot', 'push', '--adapter', adapters[i]!, '--base', template, '--round', roundId), 'push');
      ok(await suite.cli(officerHome, 'officer', 'round', 'close', '--round', roundId), 'close');
      rounds.push(roundId);
    }
  });

  await test.step('backup CLI -> browser: sign in and import the CLI officer\'s keys', async () => {
    await page.goto(`${suite.url}/signin`);
    await page.getByLabel('User name').fill('fiona');
    await page.getByLabel('Password').fill(suite.env.TG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByLabel('Backup file').setInputFiles(join(suite.root, 'cli.tgbackup'));
    await page.getByLabel('Passphrase', { exact: true }).fill(BACKUP_PASSPHRASE);
    await page.getByRole('button', { name: 'Import backup' }).click();
    await expect(page.getByTestId('import-result')).toContainText(`officer key ${officerKeyId} with HE key versions 1`, { timeout: 60_000 });
  });

  await test.step('prepare both rounds while online (the template comes from a file: the CLI opened them)', async () => {
    for (const roundId of rounds) {
      await page.goto(`${suite.url}/rounds/${roundId}/review`);
      await page.getByRole('button', { name: 'Prepare for review' }).click();
      await expect(page.getByTestId('prepared')).toBeVisible();
      await page.getByLabel('adapter_config.json').setInputFiles(join(template, 'adapter_config.json'));
      await page.getByLabel('adapter_model.safetensors').setInputFiles(join(template, 'adapter_model.safetensors'));
      await page.getByRole('button', { name: 'Use this template' }).click();
      await expect(page.getByRole('button', { name: 'Verify manifest' })).toBeEnabled();
    }
    await page.evaluate(() => navigator.serviceWorker.ready);
    await expect.poll(() => page.evaluate(() => !!navigator.serviceWorker.controller)).toBe(true);
  });

  await test.step('offline: verify, decrypt and sign a release of both rounds; they wait in the outbox', async () => {
    await context.setOffline(true);
    for (const [i, roundId] of rounds.entries()) {
      await page.goto(`${suite.url}/rounds/${roundId}/review`); // served by the service worker
      await expect(page.getByTestId('network-state')).toHaveText('Offline');
      await page.getByRole('button', { name: 'Verify manifest' }).click();
      await expect(page.getByTestId('verified')).toContainText('2 distinct robot-signed contributions');
      await page.getByRole('button', { name: 'Decrypt the verified aggregate' }).click();
      await expect(page.getByTestId('decrypted')).toBeVisible({ timeout: 60_000 });
      await expect(page.getByText(`Signed as release v${i + 1}`)).toBeVisible();
      await page.getByLabel('Canary fraction').fill('1'); // both robots pull it below (a canary wraps only for the canary)
      await page.getByRole('button', { name: 'Sign release' }).click();
      await expect(page.getByTestId('decision-status')).toHaveAttribute('data-status', 'pending');
      await expect(page.getByTestId('decision-status')).toContainText('waiting for the network');
    }
    await expect(page.getByTestId('outbox-waiting')).toHaveText('2 waiting to send');
    await shots('offline-signed');
  });

  await test.step('meanwhile the CLI officer rejects the second round', async () => {
    ok(await suite.cli(officerHome, 'officer', 'reject', '--round', rounds[1]!, '--reason', 'drift on yard-1'), 'cli reject');
  });

  const releasePosts: Array<{ status: number; replayed: string | null }> = [];
  await test.step('back online: the first answer is lost, the resend is replayed; the rejected round is a conflict', async () => {
    let posts = 0;
    await page.route('**/v1/releases', async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      posts += 1;
      if (posts === 1) {
        const answer = await route.fetch(); // the server stores the release ...
        releasePosts.push({ status: answer.status(), replayed: answer.headers()['idempotent-replayed'] ?? null });
        return route.abort('connectionreset'); // ... and the browser never hears back
      }
      const answer = await route.fetch();
      releasePosts.push({ status: answer.status(), replayed: answer.headers()['idempotent-replayed'] ?? null });
      return route.fulfill({ response: answer });
    });
    await context.setOffline(false);
    await page.goto(`${suite.url}/outbox`);
    await expect(page.getByTestId('outbox-row').filter({ hasText: 'conflict' })).toHaveCount(1, { timeout: 30_000 });
    await expect(async () => {
      if (await page.getByTestId('outbox-row').filter({ hasText: 'pending' }).count()) await page.getByRole('button', { name: 'Send waiting decisions now' }).click();
      await expect(page.getByTestId('outbox-row').filter({ hasText: 'sent' })).toHaveCount(1, { timeout: 2_000 });
    }).toPass({ timeout: 30_000 });
    await shots('outbox');
    // first send stored but unanswered, the resend replayed (same answer, no second release), the rejected round refused
    expect(releasePosts.map((p) => p.status).sort()).toEqual([201, 201, 409]);
    expect(releasePosts[0]!.replayed).toBeNull();
    expect(releasePosts.filter((p) => p.status === 201 && p.replayed === 'true')).toHaveLength(1);
  });

  await test.step('the server holds exactly one release; the conflict is shown on the round, nothing lost', async () => {
    const token = JSON.parse(await readFile(join(officerHome, 'config.json'), 'utf8')).token;
    const auth = { authorization: `Bearer ${token}` };
    const releases = await (await fetch(`${suite.url}/v1/releases?fleet=${fleetId}`, { headers: auth })).json();
    expect(releases).toHaveLength(1);
    expect(releases[0].releaseVersion).toBe(1);
    const decisionA = await (await fetch(`${suite.url}/v1/rounds/${rounds[0]}/decision`, { headers: auth })).json();
    const decisionB = await (await fetch(`${suite.url}/v1/rounds/${rounds[1]}/decision`, { headers: auth })).json();
    expect(decisionA.state).toBe('released');
    expect(decisionB).toMatchObject({ state: 'rejected', reason: 'drift on yard-1' });
    const audit = await (await fetch(`${suite.url}/v1/audit?limit=1000`, { headers: auth })).json();
    expect(audit.entries.filter((e: { action: string }) => e.action === 'release.publish')).toHaveLength(1);
    await page.goto(`${suite.url}/rounds/${rounds[1]}/review`);
    await expect(page.getByTestId('conflict')).toContainText('rejected (drift on yard-1)');
    await expect(page.getByRole('button', { name: 'Download the signed release' })).toBeVisible();
    await shots('conflict');
    // the robots get the release signed offline in the browser
    for (let i = 0; i < 2; i++) expect(ok(await suite.cli(robotHome(i), 'robot', 'pull', '--out', join(suite.root, `pulled-${i}`)), 'pull').releaseVersion).toBe(1);
  });
  expect(pageErrors).toEqual([]);
});
