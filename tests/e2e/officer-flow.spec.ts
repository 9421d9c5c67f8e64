// The whole officer flow in a real Chromium against a real server, with robots driven by the real CLI:
// first run, key ceremony in the workers, fleet, enrollment bundles (one also from the officer CLI
// after importing the browser's key backup), robots enroll and push, the round is reviewed in the
// browser (manifest verified before decryption), released, and the robots pull and verify the release
// signed in the browser. Every request the browser made is checked for the HE and ML-DSA secret keys
// and the attestation root in every encoding, and IndexedDB for them at rest.
import { expect, test } from '@playwright/test';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { openSecret } from '../../core/crypto/secretbox.ts';
import { decodeOfficerSecrets } from '../../core/records/officer-secrets.ts';
import { bytesToHex, toBase64 } from '../../core/bytes.ts';
import { sha256 } from '../../core/codec/fingerprint.ts';
import { ByteReader } from '../../core/codec/binary.ts';
import { signRobotRequest, ROBOT_HEADERS } from '../../core/records/request-signature.ts';
import { flattenTensors } from '../../core/peft/adapter.ts';
import { quantizationBound } from '../../core/he/packing.ts';
import { loadAdapterDir, nativeScrypt } from '../../cli/home.ts';
import { roundConfigOf } from '../../src/lib/rounds.ts';
import { containsSecret, dumpIndexedDb, needles, ok, recordRequests, robotAdapters, skipWithoutChromium, startSuite, type Suite } from './support.ts';

const BACKUP_PASSPHRASE = 'browser backup passphrase 1';
let suite: Suite;

test.beforeAll(async () => {
  skipWithoutChromium();
  suite = await startSuite('flow');
});
test.afterAll(async () => {
  await suite?.stop();
});

test('officer flow in the browser, robots on the CLI, no secret ever leaves the browser', async ({ page, context }) => {
  skipWithoutChromium();
  const requests = recordRequests(context);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 500) pageErrors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  const shots = (name: string) => page.screenshot({ path: join('tmp', 'playwright', 'screens', `${name}.png`), fullPage: true });
  const officerHome = join(suite.root, 'cli-officer');
  const robotHome = (i: number) => join(suite.root, `robot-${i}`);
  const { template, adapters } = await robotAdapters(suite.root, 3);

  await test.step('first run: bootstrap the organization', async () => {
    await page.goto(`${suite.url}/`);
    await expect(page).toHaveURL(/\/signin$/);
    await page.getByRole('tab', { name: 'First run' }).click();
    await page.getByLabel('Organization').fill('Acme Robotics');
    await page.getByLabel('User name').fill('olivia');
    await page.getByLabel('Password').fill(suite.env.TG_PASSWORD);
    await shots('signin');
    await page.getByRole('button', { name: 'Create organization' }).click();
    await expect(page).toHaveURL(/\/keys$/);
  });

  let officerKeyId = '';
  await test.step('key ceremony in the workers, registration, backup download', async () => {
    await page.getByRole('button', { name: 'Generate officer keys' }).click();
    await expect(page.getByTestId('he-record-fingerprint')).toBeVisible({ timeout: 60_000 });
    await expect(page.getByRole('cell', { name: 'current' })).toBeVisible();
    officerKeyId = (await page.getByTestId('fp-officer-key-id').getAttribute('data-value'))!;
    expect(officerKeyId).toMatch(/^[0-9a-f]{16}$/);
    await page.getByLabel('Backup passphrase').fill(BACKUP_PASSPHRASE);
    await page.getByLabel('Repeat the passphrase').fill(BACKUP_PASSPHRASE);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download backup' }).click()]);
    await download.saveAs(join(suite.root, 'browser.tgbackup'));
    await expect(page.getByText(/Downloaded/)).toBeVisible();
    await shots('keys');
  });

  let fleetId = '';
  await test.step('fleet and an enrollment bundle (file and QR codes)', async () => {
    await page.getByRole('link', { name: 'Fleets' }).click();
    await page.getByLabel('Name').fill('warehouse');
    await page.getByRole('button', { name: 'Create fleet' }).click();
    await page.getByRole('link', { name: 'warehouse' }).click();
    await expect(page).toHaveURL(/\/fleets\/flt_/);
    fleetId = page.url().split('/').pop()!;
    for (const i of [0, 2]) {
      await page.getByRole('button', { name: 'New enrollment bundle' }).click();
      await expect(page.getByTestId('bundle')).toBeVisible();
      const qr = page.getByRole('img', { name: /Enrollment bundle QR code, part 1 of/ });
      await expect(qr).toBeVisible();
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundle' }).click()]);
      await download.saveAs(join(suite.root, `bundle-${i}.json`));
    }
    await shots('fleet-bundle');
    const bundle = JSON.parse(await readFile(join(suite.root, 'bundle-0.json'), 'utf8'));
    expect(bundle.fleetId).toBe(fleetId);
    expect(bytesToHex(sha256(Buffer.from(bundle.officerPublicKeys[0], 'base64'))).slice(0, 16)).toBe(officerKeyId);
  });

  await test.step('backup browser -> CLI: the CLI officer imports it and makes a bundle with the same keys', async () => {
    ok(await suite.cli(officerHome, 'login', '--server', suite.url, '--user', 'olivia'), 'cli login');
    const imported = ok(await runWithBackupPassphrase(suite, officerHome, 'officer', 'import-backup', '--file', join(suite.root, 'browser.tgbackup')), 'import-backup');
    expect(imported.officerKeyId).toBe(officerKeyId);
    expect(imported.heKeyVersions).toEqual([1]);
    ok(await suite.cli(officerHome, 'officer', 'enroll-bundle', '--fleet', fleetId, '--out', join(suite.root, 'bundle-1.json')), 'cli enroll-bundle');
  });

  await test.step('robots enroll (two browser bundles, one CLI bundle)', async () => {
    for (let i = 0; i < 3; i++) ok(await suite.cli(robotHome(i), 'robot', 'enroll', '--bundle', join(suite.root, `bundle-${i}.json`), '--name', `arm-${i}`), `enroll ${i}`);
    await page.reload();
    await expect(page.getByRole('cell', { name: 'arm-2', exact: true })).toBeVisible();
    // all three robots' keys verify against this officer's attestation root, inside the signing worker
    await expect(page.getByRole('row', { name: /arm-\d/ }).filter({ hasText: /yes/ })).toHaveCount(3);
  });

  let roundId = '';
  await test.step('open a round in the browser; contributions arrive live', async () => {
    await page.getByRole('link', { name: 'Rounds' }).click();
    await page.getByLabel('Quorum (distinct robots)').fill('3');
    await page.getByLabel('adapter_config.json').setInputFiles(join(template, 'adapter_config.json'));
    await page.getByLabel('adapter_model.safetensors').setInputFiles(join(template, 'adapter_model.safetensors'));
    await shots('round-open');
    await page.getByRole('button', { name: 'Sign and open round' }).click();
    await expect(page).toHaveURL(/\/rounds\/[0-9a-f-]{36}$/);
    roundId = page.url().split('/').pop()!;
    for (let i = 0; i < 3; i++) {
      const push = ok(await suite.cli(robotHome(i), 'robot', 'push', '--adapter', adapters[i]!, '--base', template), `push ${i}`);
      expect(push.roundId).toBe(roundId);
    }
    await expect(page.getByText('3 of 3')).toBeVisible({ timeout: 15_000 });
    await expect(page.getByRole('row', { name: /arm-2/ })).toBeVisible();
    await shots('round-live');
    await page.getByRole('button', { name: 'Close round and finalize' }).click();
    await expect(page.getByTestId('round-state')).toHaveText('Finalized');
  });

  await test.step('review: verify before decrypting, decrypt with progress, statistics, sign the release', async () => {
    await page.getByRole('link', { name: 'Review this round' }).click();
    await page.getByRole('button', { name: 'Prepare for review' }).click();
    await expect(page.getByTestId('prepared')).toBeVisible();
    await expect(page.getByRole('button', { name: 'Decrypt the verified aggregate' })).toBeDisabled();
    await page.getByRole('button', { name: 'Verify manifest' }).click();
    await expect(page.getByTestId('verified')).toContainText('3 distinct robot-signed contributions');
    await page.getByRole('button', { name: 'Decrypt the verified aggregate' }).click();
    await expect(page.getByTestId('decrypted')).toBeVisible({ timeout: 60_000 });
    await expect(page.getByRole('img', { name: /Mean update, all values/ })).toBeVisible();
    await page.getByLabel('Canary fraction').fill('0.5');
    await shots('review');
    await page.getByLabel('Canary fraction').fill('1'); // all three robots at once (tests/e2e/deploy.spec.ts covers a canary)
    await page.getByRole('button', { name: 'Sign release' }).click();
    await expect(page.getByTestId('decision-status')).toHaveAttribute('data-status', 'sent', { timeout: 60_000 });
    await shots('review-released');
  });

  await test.step('the round page charts the latency breakdown: robot stages from the CLI pushes, aggregate, decrypt and review', async () => {
    await expect(async () => {
      await page.goto(`${suite.url}/rounds/${roundId}`);
      const chart = page.getByTestId('latency-breakdown');
      await expect(chart).toBeVisible({ timeout: 5_000 });
      // the pushes used adapters not made by `robot train`: no train stage, the other three from each robot
      for (const stage of ['compress', 'encrypt', 'upload']) await expect(page.getByTestId(`latency-stage-${stage}`)).toHaveAttribute('data-count', '3', { timeout: 1_000 });
      await expect(page.getByTestId('latency-stage-train')).toHaveAttribute('data-count', '0', { timeout: 1_000 });
      for (const stage of ['aggregate', 'decrypt', 'review']) await expect(page.getByTestId(`latency-stage-${stage}`)).toHaveAttribute('data-count', '1', { timeout: 1_000 });
    }).toPass({ timeout: 30_000 });
    await expect(page.getByRole('img', { name: /Round latency by stage: .*upload p50 .* over 3 reports/ })).toBeVisible();
    await expect(page.getByTestId('latency-critical-path')).toContainText('contribute');
    await shots('round-latency');
  });

  await test.step('robots pull and verify the release signed in the browser: the mean of their adapters', async () => {
    const base = await loadAdapterDir(template);
    const names = [...base.tensors.keys()].sort();
    const trained = await Promise.all(adapters.map((d) => loadAdapterDir(d)));
    const each = trained.map((a) => flattenTensors({ adapter: a, names }));
    const round = await (await fetch(`${suite.url}/v1/rounds/${roundId}`, { headers: { authorization: `Bearer ${await sessionToken(page)}` } })).json();
    const bound = quantizationBound({ scale: roundConfigOf(round).quant.scale });
    const hashes = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const pulled = ok(await suite.cli(robotHome(i), 'robot', 'pull', '--out', join(suite.root, `pulled-${i}`)), `pull ${i}`);
      expect(pulled.releaseVersion).toBe(1);
      hashes.add(pulled.adapterSha256);
      const got = flattenTensors({ adapter: await loadAdapterDir(join(suite.root, `pulled-${i}`)), names });
      let maxErr = 0;
      for (let k = 0; k < got.length; k++) maxErr = Math.max(maxErr, Math.abs(got[k]! - (each[0]![k]! + each[1]![k]! + each[2]![k]!) / 3));
      expect(maxErr).toBeLessThanOrEqual(bound + 1e-6);
    }
    expect(hashes.size).toBe(1);
    // the same release again is not newer: refused
    expect((await suite.cli(robotHome(0), 'robot', 'pull', '--out', join(suite.root, 'again'))).code).not.toBe(0);
  });

  await test.step('release status per robot: delivered to all three, applied where reported', async () => {
    const list = await (await fetch(`${suite.url}/v1/releases?fleet=${fleetId}`, { headers: { authorization: `Bearer ${await sessionToken(page)}` } })).json();
    expect(list).toHaveLength(1);
    await reportApplied(suite, robotHome(1), list[0].releaseId);
    await page.goto(`${suite.url}/releases`);
    await page.getByRole('link', { name: /Status per robot/ }).click();
    await expect(page.getByTestId('delivered-count')).toHaveText('3');
    await expect(page.getByTestId('applied-count')).toHaveText('3'); // robot pull reports applied itself
    await shots('release-status');
  });

  await test.step('the dashboard shows the server\'s numbers', async () => {
    await page.goto(`${suite.url}/`);
    await expect(page.getByTestId('stat-robots')).toHaveText('3');
    await expect(page.getByTestId('stat-rounds-finalized')).toHaveText('1');
    await shots('dashboard');
  });

  await test.step('secrets stay home: no request carried a secret key, IndexedDB holds none in clear', async () => {
    const sealed = new Uint8Array(await readFile(join(suite.root, 'browser.tgbackup')));
    const secrets = decodeOfficerSecrets({ bytes: await openSecret({ sealed, passphrase: BACKUP_PASSPHRASE, scrypt: nativeScrypt }) });
    const forbidden = [
      { name: 'HE secret key', n: needles(secrets.he[0]!.secretKey) },
      { name: 'ML-DSA-65 secret key', n: needles(secrets.dsa.secretKey) },
      { name: 'attestation root', n: needles(secrets.attestRoot) },
    ];
    expect(requests.length).toBeGreaterThan(20);
    expect(requests.some((r) => r.method === 'POST' && r.url.endsWith('/v1/releases') && (r.body?.length ?? 0) > 1000)).toBe(true);
    for (const r of requests) {
      for (const f of forbidden) {
        expect(containsSecret(r.url, f.n), `${f.name} in URL of ${r.method} ${r.url}`).toBe(false);
        expect(containsSecret(JSON.stringify(r.headers), f.n), `${f.name} in headers of ${r.method} ${r.url}`).toBe(false);
        if (r.body) expect(containsSecret(r.body, f.n), `${f.name} in body of ${r.method} ${r.url}`).toBe(false);
      }
    }
    const stored = await dumpIndexedDb(page);
    expect(stored.length).toBeGreaterThan(5);
    for (const s of stored) for (const f of forbidden) expect(containsSecret(s, f.n), `${f.name} in IndexedDB in clear`).toBe(false);
  });
  expect(pageErrors).toEqual([]);
});

async function runWithBackupPassphrase(s: Suite, home: string, ...args: string[]) {
  const { runCli } = await import('../helpers/cli.ts');
  return runCli([...args, '--json', '--home', home], { ...s.env, TG_BACKUP_PASSPHRASE: BACKUP_PASSPHRASE });
}

/**
 * The session token, for the test's own API calls: the PWA keeps it only in the HttpOnly `tg_session`
 * cookie (page scripts cannot read it; the browser context can), never in IndexedDB.
 */
async function sessionToken(page: import('@playwright/test').Page): Promise<string> {
  const stored = await page.evaluate(
    () =>
      new Promise<Record<string, unknown> | undefined>((resolve, reject) => {
        const r = indexedDB.open('tensorguard-app');
        r.onsuccess = () => {
          const get = r.result.transaction('session').objectStore('session').get('current');
          get.onsuccess = () => resolve(get.result);
          get.onerror = () => reject(get.error);
        };
        r.onerror = () => reject(r.error);
      }),
  );
  expect(stored && 'token' in stored).toBe(false);
  expect(await page.evaluate(() => document.cookie)).not.toContain('tg_session');
  const cookie = (await page.context().cookies()).find((c) => c.name === 'tg_session');
  expect(cookie?.httpOnly).toBe(true);
  return cookie!.value;
}

/** What a robot sends after applying a release (the robot CLI does not report yet): a signed request. */
async function reportApplied(s: Suite, home: string, releaseId: string): Promise<void> {
  const bytes = await openSecret({ sealed: new Uint8Array(await readFile(join(home, 'robot', 'secrets.sealed'))), passphrase: s.env.TG_PASSPHRASE, scrypt: nativeScrypt });
  const r = new ByteReader(bytes);
  r.header(0x40, [1]);
  const dsaSecretKey = r.bytes(8192);
  const identity = JSON.parse(await readFile(join(home, 'robot', 'identity.json'), 'utf8'));
  const path = `/v1/releases/${releaseId}/report`;
  const body = new TextEncoder().encode(JSON.stringify({ status: 'applied' }));
  const signed = signRobotRequest({ method: 'POST', path, body, secretKey: dsaSecretKey });
  const res = await fetch(`${s.url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [ROBOT_HEADERS.robot]: identity.robotId,
      [ROBOT_HEADERS.timestamp]: String(signed.timestamp),
      [ROBOT_HEADERS.nonce]: signed.nonce,
      [ROBOT_HEADERS.signature]: toBase64(signed.signature),
    },
    body,
  });
  expect(res.status).toBe(204);
}
