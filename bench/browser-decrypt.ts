// The officer's review in Chromium (DESIGN.md target: verify the manifest + decrypt + unpack a 10 M
// parameter aggregate in < 5 s first bar, < 1 s goal). Real path end to end: a real server, robots
// on the real CLI encrypt and push K adapters of P parameters, and the PWA in Debian's Chromium
// imports the officer's key backup, prepares the round (downloads packages and aggregate into
// IndexedDB), verifies the contribution manifest in the HE worker (K signatures + attestations,
// re-adding K packages, SHA-256s), decrypts the verified sum and unpacks it into the candidate adapter.
// Prints one JSON document; the times are the HE worker's own (performance.now in the worker), plus the
// wall clock the officer sees from "Verify" to the candidate.
//   npm run bench -- browser-decrypt [--params=10000000] [--robots=2]
import { chromium } from '@playwright/test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { runCli } from '../tests/helpers/cli.ts';
import { startServer } from '../tests/e2e/server.ts';
import { saveAdapterDir } from '../cli/home.ts';
import { perturbAdapter, syntheticAdapter } from '../cli/synthetic-adapter.ts';
import { trainableTensorNames } from '../core/round/mask.ts';
// @ts-expect-error plain ES module without types
import { buildPwa } from '../scripts/build-pwa.mjs';

const arg = (name: string, fallback: number) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : fallback;
};
const PARAMS = arg('params', 10_000_000);
const ROBOTS = arg('robots', 2);
const CHROMIUM = process.env.TG_CHROMIUM ?? '/usr/bin/chromium';
const env = { TG_PASSPHRASE: 'bench passphrase', TG_PASSWORD: 'bench password 123', TG_BACKUP_PASSPHRASE: 'bench backup passphrase' };
const log = (m: string) => process.stderr.write(`${m}\n`);

async function cli(home: string, ...args: string[]) {
  const r = await runCli([...args, '--json', '--home', home], env);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}${r.stdout}`);
  return r.json;
}

async function main() {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}`);
  buildPwa();
  const root = await mkdtemp(join(tmpdir(), 'tg-bench-browser-'));
  const server = await startServer({ dataDir: join(root, 'data') });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const officer = join(root, 'officer');
    log(`setting up: ${ROBOTS} robots x ${PARAMS.toLocaleString()} parameters`);
    await cli(officer, 'admin', 'bootstrap', '--server', server.url, '--org', 'Bench', '--user', 'bench');
    const fleet = (await cli(officer, 'fleet', 'create', '--name', 'bench', '--max-update-bytes', String(1 << 30), '--max-params', String(Math.max(PARAMS * 2, 10_000_000)))).id;
    await cli(officer, 'officer', 'init');
    await cli(officer, 'officer', 'export-backup', '--out', join(root, 'officer.tgbackup'));
    const template = syntheticAdapter({ params: PARAMS, rank: 16, hidden: 1024 });
    const templateDir = join(root, 'template');
    await saveAdapterDir(templateDir, template);
    const names = trainableTensorNames({ tensors: [...template.tensors.keys()].map((name) => ({ name })), freezeA: false });
    const trainable = names.reduce((n, name) => n + template.tensors.get(name)!.length, 0);
    for (let i = 0; i < ROBOTS; i++) {
      await cli(officer, 'officer', 'enroll-bundle', '--fleet', fleet, '--out', join(root, `bundle-${i}.json`));
      await cli(join(root, `robot-${i}`), 'robot', 'enroll', '--bundle', join(root, `bundle-${i}.json`), '--name', `bench-${i}`);
      await saveAdapterDir(join(root, `adapter-${i}`), perturbAdapter({ adapter: template, names, sigma: 0.01 }).adapter);
    }
    const round = await cli(officer, 'officer', 'round', 'open', '--fleet', fleet, '--template', templateDir, '--quorum', String(ROBOTS), '--max-contributors', String(Math.max(2, ROBOTS)));
    for (let i = 0; i < ROBOTS; i++) {
      log(`robot ${i} encrypts and pushes`);
      await cli(join(root, `robot-${i}`), 'robot', 'push', '--adapter', join(root, `adapter-${i}`), '--base', templateDir, '--round', round.roundId);
    }
    await cli(officer, 'officer', 'round', 'close', '--round', round.roundId);

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(300_000);
    await page.goto(`${server.url}/signin`);
    await page.getByLabel('User name').fill('bench');
    await page.getByLabel('Password').fill(env.TG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.goto(`${server.url}/settings`);
    await page.getByLabel('Backup file').setInputFiles(join(root, 'officer.tgbackup'));
    await page.getByLabel('Passphrase', { exact: true }).fill(env.TG_BACKUP_PASSPHRASE);
    await page.getByRole('button', { name: 'Import backup' }).click();
    await page.getByTestId('import-result').waitFor();
    await page.goto(`${server.url}/rounds/${round.roundId}/review`);
    log('browser: preparing (download into IndexedDB)');
    const tPrep = Date.now();
    await page.getByRole('button', { name: 'Prepare for review' }).click();
    await page.getByTestId('prepared').waitFor();
    const prepareMs = Date.now() - tPrep;
    await page.getByLabel('adapter_config.json').setInputFiles(join(templateDir, 'adapter_config.json'));
    await page.getByLabel('adapter_model.safetensors').setInputFiles(join(templateDir, 'adapter_model.safetensors'));
    await page.getByRole('button', { name: 'Use this template' }).click();
    log('browser: verify + decrypt + unpack');
    const t0 = Date.now();
    await page.getByRole('button', { name: 'Verify manifest' }).click();
    await page.getByTestId('verified').waitFor();
    const tVerified = Date.now();
    await page.getByRole('button', { name: 'Decrypt the verified aggregate' }).click();
    const done = page.getByTestId('decrypted');
    await done.waitFor();
    const wallMs = Date.now() - t0;
    const ms = async (attr: string) => Number(await done.getAttribute(attr));
    const verifyMs = await ms('data-verify-ms');
    const decryptMs = await ms('data-decrypt-ms');
    const unpackMs = await ms('data-unpack-ms');
    const storeMs = await ms('data-store-ms');
    const totalMs = verifyMs + decryptMs + unpackMs;
    const ciphertexts = Number(round.ciphertextCount);
    process.stdout.write(
      JSON.stringify(
        {
          bench: 'browser-decrypt',
          browser: `Chromium ${browser.version()}`,
          params: trainable,
          robots: ROBOTS,
          ciphertexts,
          aggregateBytes: ciphertexts * 65649,
          bytesPerParam: (ciphertexts * 65649) / trainable,
          workerMs: { verifyManifest: verifyMs, decrypt: decryptMs, unpack: unpackMs, storeCandidate: storeMs },
          verifyDecryptUnpackMs: totalMs,
          paramsPerSecond: Math.round(trainable / (totalMs / 1000)),
          officerWallClockMs: { prepareDownload: prepareMs, verifyClickToVerified: tVerified - t0, verifyClickToCandidate: wallMs },
          target: { firstBarMs: 5000, goalMs: 1000, meetsFirstBar: totalMs < 5000, meetsGoal: totalMs < 1000 },
        },
        null,
        2,
      ) + '\n',
    );
    await context.close();
  } finally {
    await browser.close();
    await server.stop();
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
