// The evaluation gate of the review in a real Chromium: robots enrolled on the CLI train real LoRA adapters
// of the reference policy (`robot train`, behaviour cloning in the simulator) and push them; the CLI
// officer opens the round on the reference policy's adapter and closes it; `tensorguard officer review`
// writes report.json; the same officer (key backup imported in the browser) reviews the round in the PWA,
// where the eval worker runs the gate on static/models/reference-policy.onnx with onnxruntime-web. The
// test checks the progress, the report (charts, every check, every scenario) and that every number equals
// the CLI's on the same round with the same scenario counts; the backend is named (WASM here: headless
// Chromium has WebGPU but no adapter). The committed base policy fails site C (docs/SAFETY.md), so a
// reference-task candidate fails the gate: Sign release stays blocked until the officer ticks the override
// and gives a reason, and the signed manifest fetched from the API carries the gate and the override.
// A second round pushes the same robots' updates scaled up six times: the gate fails on every set, and
// the officer signs a rejection instead.
//
//   robots (CLI): enroll ──robot start/train/push──▶ server ◀── officer (CLI): round open/close, review ──▶ report.json
//   browser: sign in, import backup ──review: prepare, template, verify, decrypt ──eval worker gate──▶ report
//   report (IndexedDB, DOM) == report.json (± 1e-9) ── override + reason ──▶ signed release ──GET──▶ manifest.gate
import { expect, test, type Page } from '@playwright/test';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { runCli } from '../helpers/cli.ts';
import { loadAdapterDir, readSession, saveAdapterDir } from '../../cli/home.ts';
import { fromBase64 } from '../../core/bytes.ts';
import { openReleaseManifest } from '../../core/records/release-manifest.ts';
import { gateReportSha256, type GateReport } from '../../core/eval/reference-gate.ts';
import type { PeftAdapter } from '../../core/peft/adapter.ts';
import { num } from '../../src/lib/format.ts';
import { ok, skipWithoutChromium, startSuite, type Suite } from './support.ts';

const BACKUP_PASSPHRASE = 'gate backup passphrase 1';
/** Held-out scenarios per set, in the CLI (--gate-scenarios) and in the browser (the review's field). */
const SCENARIOS = 12;
/** Robot i's demonstrations: its site (no site-c: averaging a site-C adapter in wrecks the policy, docs/SAFETY.md). */
const SITES = ['site-a', 'site-b', null] as const;
const TEMPLATE = join(import.meta.dirname, '../../static/models/reference-policy-adapter');
const GATE_PROGRESS = 'Evaluating deployed vs candidate policy';
let suite: Suite;

test.beforeAll(async () => {
  skipWithoutChromium();
  suite = await startSuite('gate');
});
test.afterAll(async () => {
  await suite?.stop();
});

test('the review runs the evaluation gate in the eval worker with the CLI\'s numbers; a failed gate needs a signed override', async ({ page }) => {
  skipWithoutChromium();
  test.setTimeout(240_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 500) pageErrors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  const shots = (name: string) => page.screenshot({ path: join('tmp', 'playwright', 'screens', `${name}.png`), fullPage: true });
  const officerHome = join(suite.root, 'cli-officer');
  const robotHome = (i: number) => join(suite.root, `robot-${i}`);
  const trainedDir = (i: number) => join(suite.root, `trained-${i}`);

  let fleetId = '';
  let officerKeyId = '';
  await test.step('CLI: organization, officer keys and backup, three robots enrolled', async () => {
    ok(await suite.cli(officerHome, 'admin', 'bootstrap', '--server', suite.url, '--org', 'Gate Co', '--user', 'gina'), 'bootstrap');
    fleetId = ok(await suite.cli(officerHome, 'fleet', 'create', '--name', 'cells'), 'fleet').id;
    ok(await suite.cli(officerHome, 'officer', 'init'), 'officer init');
    officerKeyId = ok(await runCli(['officer', 'export-backup', '--out', join(suite.root, 'cli.tgbackup'), '--json', '--home', officerHome], { ...suite.env, TG_BACKUP_PASSPHRASE: BACKUP_PASSPHRASE }), 'export-backup').officerKeyId;
    for (let i = 0; i < 3; i++) {
      ok(await suite.cli(officerHome, 'officer', 'enroll-bundle', '--fleet', fleetId, '--out', join(suite.root, `bundle-${i}.json`)), 'bundle');
      ok(await suite.cli(robotHome(i), 'robot', 'enroll', '--bundle', join(suite.root, `bundle-${i}.json`), '--name', `cell-${i}`), 'enroll');
    }
  });

  let round1 = '';
  let cli1: GateReport;
  await test.step('round 1 on the reference policy: robots train with `robot train` and push; the CLI reviews it', async () => {
    round1 = ok(await suite.cli(officerHome, 'officer', 'round', 'open', '--fleet', fleetId, '--template', TEMPLATE, '--quorum', '3'), 'round open').roundId;
    // Three robots train at once (2 cores); each is a separate `robot train` process.
    const trained = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const start = join(suite.root, `start-${i}`);
        ok(await suite.cli(robotHome(i), 'robot', 'start', '--out', start, '--base', TEMPLATE, '--round', round1), `start ${i}`);
        const site = SITES[i];
        return ok(
          await suite.cli(robotHome(i), 'robot', 'train', '--out', trainedDir(i), '--base', start, '--round', round1, ...(site ? ['--site', site] : []),
            '--episodes', '20', '--steps', '600', '--seed', String(i + 1).padStart(64, '0')),
          `train ${i}`,
        );
      }),
    );
    for (const [i, t] of trained.entries()) {
      expect(t).toMatchObject({ stage: 'imitation_learning', method: 'behaviour_cloning', roundId: round1, optimizerSteps: 600, site: SITES[i] ?? 'nominal' });
      expect(t.loss.final).toBeLessThan(t.loss.initial);
      ok(await suite.cli(robotHome(i), 'robot', 'push', '--adapter', trainedDir(i), '--base', TEMPLATE, '--round', round1), `push ${i}`);
    }
    ok(await suite.cli(officerHome, 'officer', 'round', 'close', '--round', round1), 'close');
    cli1 = await cliReview(suite, officerHome, round1, join(suite.root, 'review-1'));
    expect(cli1).toMatchObject({ applicable: true, runtime: 'onnxruntime-web/wasm (node)', counts: { nominal: SCENARIOS, site: SCENARIOS, ood: SCENARIOS } });
    // The deployed policy never learnt site C's reversed flow, and no robot trained on it.
    expect(cli1.verdict!.failed).toContain('success_rate[site:site-c]');
  });

  await test.step('browser: sign in, import the CLI officer\'s key backup', async () => {
    await page.goto(`${suite.url}/signin`);
    await page.getByLabel('User name').fill('gina');
    await page.getByLabel('Password').fill(suite.env.TG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByLabel('Backup file').setInputFiles(join(suite.root, 'cli.tgbackup'));
    await page.getByLabel('Passphrase', { exact: true }).fill(BACKUP_PASSPHRASE);
    await page.getByRole('button', { name: 'Import backup' }).click();
    await expect(page.getByTestId('import-result')).toContainText(`officer key ${officerKeyId}`, { timeout: 60_000 });
  });

  let browser1: GateReport;
  await test.step('review round 1: the gate runs in the eval worker with progress, on WASM, and says so', async () => {
    const progress = await reviewUntilGate(page, suite, round1);
    browser1 = await storedGate(page, round1);
    expect(browser1.runtime).toBe('onnxruntime-web/wasm (browser worker; no WebGPU adapter)');
    // progress: the model load, the backend, then every set for the candidate and for the deployed policy
    const sets = 2 + 3; // nominal, three sites, OOD
    expect(progress.some((p) => p.endsWith('loading the reference policy (ONNX)')), progress.join('\n')).toBe(true);
    expect(progress.some((p) => p.includes('running on onnxruntime-web/wasm (browser worker; no WebGPU adapter)'))).toBe(true);
    for (let k = 1; k <= sets; k++) expect(progress).toContain(`${Math.round((100 * k) / (2 * sets))}%, candidate: set ${k} of ${2 * sets}`);
    for (let k = sets + 1; k <= 2 * sets; k++) expect(progress).toContain(`${Math.round((100 * k) / (2 * sets))}%, baseline: set ${k} of ${2 * sets}`);
    await expect(page.getByTestId('gate-status')).toContainText(`reference-task/v1 on ${browser1.runtime}`);
    await shots('gate-report');
  });

  await test.step('round 1: every number of the browser\'s report equals report.json of `officer review` (same round, same counts)', async () => {
    expectSameReport(browser1, cli1);
    // several metrics, named
    const byName = (r: GateReport) => new Map(r.metrics.map((m) => [m.name, m.value]));
    const b = byName(browser1);
    const c = byName(cli1);
    for (const name of ['success_rate[nominal]', 'success_rate[site:site-a]', 'violations[site:site-c]', 'contact_force[ood]', 'kl_divergence', 'regression[nominal]', 'ood_robustness[ood]', 'deployed_success_rate[nominal]', 'peak_force_n[site:site-b]'])
      expect(Math.abs(b.get(name)! - c.get(name)!), name).toBeLessThanOrEqual(1e-9);
    expect(browser1.candidateAdapterSha256).toBe(cli1.candidateAdapterSha256);
    await expectShownNumbers(page, cli1);
  });

  const reason = 'Site C is not commissioned in this fleet yet; sites A and B and OOD were reviewed by hand.';
  await test.step('round 1: the failed gate blocks Sign release until the officer signs an override with a reason', async () => {
    const sign = page.getByRole('button', { name: 'Sign release' });
    await page.getByLabel('Canary fraction').fill('1');
    await expect(sign).toBeDisabled();
    await expect(page.getByTestId('gate-status')).toHaveClass(/banner/);
    await page.getByTestId('override-gate').check();
    const why = page.getByLabel('Override reason');
    await expect(why).toBeVisible();
    await expect(sign).toBeDisabled(); // no reason yet
    await why.fill('  ');
    await expect(sign).toBeDisabled();
    await why.fill('ok'); // too short to be a reason
    await expect(sign).toBeDisabled();
    await page.getByTestId('override-gate').uncheck();
    await expect(why).toBeHidden();
    await expect(sign).toBeDisabled();
    await page.getByTestId('override-gate').check();
    await page.getByLabel('Override reason').fill(reason);
    await expect(sign).toBeEnabled();
    await shots('gate-override');
    await sign.click();
    await expect(page.getByTestId('decision-status')).toHaveAttribute('data-status', 'sent', { timeout: 60_000 });
  });

  await test.step('round 1: the signed manifest from the API carries the gate result and the override; a robot applies it', async () => {
    const token = (await readSession(officerHome)).token;
    const headers = { authorization: `Bearer ${token}` };
    const list = await (await fetch(`${suite.url}/v1/releases?fleet=${fleetId}`, { headers })).json();
    expect(list).toHaveLength(1);
    const release = await (await fetch(`${suite.url}/v1/releases/${list[0].releaseId}`, { headers })).json();
    const pinned = JSON.parse(await readFile(join(suite.root, 'bundle-0.json'), 'utf8')).officerPublicKeys[0] as string;
    const { record } = openReleaseManifest({ bytes: fromBase64(release.manifest), trustedKeys: [fromBase64(pinned)] });
    expect(record.roundId).toBe(round1);
    expect(Buffer.from(record.adapterSha256).toString('hex')).toBe(cli1.candidateAdapterSha256);
    const gate = record.gate!;
    expect(gate.status).toBe('failed');
    expect(gate.failed).toEqual(cli1.verdict!.failed);
    expect(gate.override).toEqual({ reason });
    expect(gate.evaluator).toBe(`reference-task/v1 ${browser1.runtime}`);
    expect(Buffer.from(gate.reportSha256).toString('hex')).toBe(gateReportSha256({ report: browser1 }));
    expect(gate.detail).toContain('success_rate[site:site-c]');
    const cliMetrics = new Map(cli1.metrics.map((m) => [m.name, m.value]));
    expect(gate.metrics.map((m) => m.name)).toEqual(cli1.metrics.map((m) => m.name));
    for (const m of gate.metrics) expect(Math.abs(m.value - cliMetrics.get(m.name)!), m.name).toBeLessThanOrEqual(1e-9);
    const pulled = ok(await suite.cli(robotHome(0), 'robot', 'pull', '--out', join(suite.root, 'pulled-0')), 'pull');
    expect(pulled).toMatchObject({ releaseVersion: 1, gate: 'failed_overridden', adapterSha256: cli1.candidateAdapterSha256 });
  });

  let round2 = '';
  let cli2: GateReport;
  await test.step('round 2: the robots push their updates scaled up six times; the CLI reviews it', async () => {
    round2 = ok(await suite.cli(officerHome, 'officer', 'round', 'open', '--fleet', fleetId, '--template', TEMPLATE, '--quorum', '3'), 'round open 2').roundId;
    const template = await loadAdapterDir(TEMPLATE);
    for (let i = 0; i < 3; i++) {
      const dir = join(suite.root, `scaled-${i}`);
      await saveAdapterDir(dir, scaledUpdate({ template, trained: await loadAdapterDir(trainedDir(i)), factor: 6 }));
      ok(await suite.cli(robotHome(i), 'robot', 'push', '--adapter', dir, '--base', TEMPLATE, '--round', round2), `push scaled ${i}`);
    }
    ok(await suite.cli(officerHome, 'officer', 'round', 'close', '--round', round2), 'close 2');
    cli2 = await cliReview(suite, officerHome, round2, join(suite.root, 'review-2'));
    // far from the deployed policy everywhere: every in-distribution set regresses, OOD too
    for (const check of ['success_rate[nominal]', 'violations[nominal]', 'kl_divergence', 'regression[nominal]', 'regression[site:site-a]', 'ood_robustness[ood]']) expect(cli2.verdict!.failed).toContain(check);
  });

  await test.step('round 2: the browser\'s gate agrees with the CLI; the officer signs a rejection instead', async () => {
    await reviewUntilGate(page, suite, round2);
    const browser2 = await storedGate(page, round2);
    expectSameReport(browser2, cli2);
    await expectShownNumbers(page, cli2);
    await expect(page.getByRole('button', { name: 'Sign release' })).toBeDisabled();
    await shots('gate-report-scaled');
    await page.getByRole('radio', { name: 'Reject the round' }).check();
    await page.getByLabel('Reason', { exact: true }).fill(`the evaluation gate failed: ${browser2.verdict!.failed.length} checks`);
    await page.getByRole('button', { name: 'Sign rejection' }).click();
    await expect(page.getByTestId('decision-status')).toHaveAttribute('data-status', 'sent', { timeout: 60_000 });
    const token = (await readSession(officerHome)).token;
    const decision = await (await fetch(`${suite.url}/v1/rounds/${round2}/decision`, { headers: { authorization: `Bearer ${token}` } })).json();
    expect(decision).toMatchObject({ state: 'rejected' });
  });
  expect(pageErrors).toEqual([]);
});

/** `tensorguard officer review --json` with the test's scenario counts; report.json must say the same. */
async function cliReview(s: Suite, home: string, roundId: string, out: string): Promise<GateReport> {
  const printed = ok(await s.cli(home, 'officer', 'review', '--round', roundId, '--out', out, '--gate-scenarios', String(SCENARIOS)), 'officer review');
  const written = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
  expect(written.gate).toEqual(printed.gate);
  return written.gate as GateReport;
}

/**
 * The review page up to the gate's report: prepare, the round's template (opened on the CLI), verify,
 * the scenario count, decrypt; the gate then runs by itself. Returns every progress text the gate showed.
 */
async function reviewUntilGate(page: Page, s: Suite, roundId: string): Promise<string[]> {
  await page.goto(`${s.url}/rounds/${roundId}/review`);
  await page.getByRole('button', { name: 'Prepare for review' }).click();
  await expect(page.getByTestId('prepared')).toBeVisible();
  await page.getByLabel('adapter_config.json').setInputFiles(join(TEMPLATE, 'adapter_config.json'));
  await page.getByLabel('adapter_model.safetensors').setInputFiles(join(TEMPLATE, 'adapter_model.safetensors'));
  await page.getByRole('button', { name: 'Use this template' }).click();
  await page.getByRole('button', { name: 'Verify manifest' }).click();
  await expect(page.getByTestId('verified')).toContainText('3 distinct robot-signed contributions');
  await page.getByLabel('Held-out scenarios per set (reference task)').fill(String(SCENARIOS));
  // Every state of the gate's progress bar, however briefly shown.
  await page.evaluate((label) => {
    const seen: string[] = [];
    (window as unknown as { gateProgress: string[] }).gateProgress = seen;
    new MutationObserver(() => {
      const text = document.querySelector(`progress[aria-label="${label}"]`)?.getAttribute('aria-valuetext');
      if (text && seen[seen.length - 1] !== text) seen.push(text);
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  }, GATE_PROGRESS);
  await page.getByRole('button', { name: 'Decrypt the verified aggregate' }).click();
  await expect(page.getByTestId('decrypted')).toBeVisible({ timeout: 60_000 });
  await expect(page.getByTestId('gate-status')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('gate-status')).toHaveAttribute('data-status', 'failed');
  for (const chart of ['gate-success-chart', 'gate-violations-chart', 'gate-forces-chart']) await expect(page.getByTestId(chart)).toBeVisible();
  return page.evaluate(() => (window as unknown as { gateProgress: string[] }).gateProgress);
}

/** The gate report the page shows, as the eval worker returned it (kept with the candidate in IndexedDB). */
async function storedGate(page: Page, roundId: string): Promise<GateReport> {
  const gate = await page.evaluate(
    (id) =>
      new Promise<unknown>((resolve, reject) => {
        const r = indexedDB.open('tensorguard-app');
        r.onsuccess = () => {
          const get = r.result.transaction('candidates').objectStore('candidates').get(id);
          get.onsuccess = () => resolve((get.result as { gate?: unknown } | undefined)?.gate ?? null);
          get.onerror = () => reject(get.error);
        };
        r.onerror = () => reject(r.error);
      }),
    roundId,
  );
  expect(gate).not.toBeNull();
  return gate as GateReport;
}

/** Same keys and strings everywhere, numbers within 1e-9; only `runtime` (what ran it) differs. */
function expectSameReport(browser: GateReport, cli: GateReport): void {
  const diffs: string[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (diffs.length > 20) return;
    if (typeof a === 'number' && typeof b === 'number') {
      if (!(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)))) diffs.push(`${path}: browser ${a}, CLI ${b}`);
    } else if (Array.isArray(a) && Array.isArray(b)) {
      if (a.length !== b.length) diffs.push(`${path}: ${a.length} vs ${b.length} entries`);
      else a.forEach((x, i) => walk(x, b[i], `${path}[${i}]`));
    } else if (a && b && typeof a === 'object' && typeof b === 'object') {
      const ka = Object.keys(a).sort();
      const kb = Object.keys(b).sort();
      if (ka.join() !== kb.join()) diffs.push(`${path}: keys ${ka} vs ${kb}`);
      else for (const k of ka) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
    } else if (a !== b) diffs.push(`${path}: browser ${JSON.stringify(a)}, CLI ${JSON.stringify(b)}`);
  };
  walk({ ...browser, runtime: null }, { ...cli, runtime: null }, 'gate');
  expect(diffs).toEqual([]);
  const results = (r: GateReport) => r.evaluation!.sets.reduce((n, s) => n + s.results.length, 0);
  expect(results(browser)).toBe(5 * SCENARIOS);
}

/** What the page shows (charts' text alternatives, every check, per set, per scenario) against the CLI's numbers. */
async function expectShownNumbers(page: Page, cli: GateReport): Promise<void> {
  const ev = cli.evaluation!;
  const t = cli.thresholds;
  const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
  await expect(page.getByTestId('gate-status')).toContainText(`Failed: ${cli.verdict!.failed.join(', ')}`);
  await expect(page.getByTestId('gate-status')).toContainText(`KL(candidate ‖ deployed) ${num(ev.kl!.mean)}`);
  const success = ev.sets.map((s, i) => `${s.name} ${pct(ev.baseline!.sets[i]!.successRate)} -> ${pct(s.successRate)}`).join(', ');
  await expect(page.getByTestId('gate-success-chart').getByRole('img')).toHaveAttribute('aria-label', `Success per set, deployed vs candidate: ${success}; threshold ${pct(t.minSuccessRate)}`);
  const violations = ev.sets.map((s) => `${s.name} ${num(s.violationsPerRollout, 2)}`).join(', ');
  await expect(page.getByTestId('gate-violations-chart').getByRole('img')).toHaveAttribute('aria-label', `Violations per rollout: ${violations}; max ${t.maxViolationsPerRollout}`);
  const humanContacts = ev.sets.reduce((n, s) => n + s.forces.filter((f) => f.limitN !== null).length, 0);
  if (humanContacts === 0) await expect(page.getByTestId('gate-forces-chart')).toContainText('No contact with a person in any scenario');
  else await expect(page.getByTestId('gate-forces-chart').getByRole('img')).toHaveAttribute('aria-label', new RegExp(`^${humanContacts} contacts with a person`));

  const rows = async (summary: RegExp) => {
    const details = page.locator('details').filter({ has: page.locator('summary', { hasText: summary }) });
    await details.locator('summary').click();
    return details.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent!.trim())));
  };
  expect(await rows(/^Every check/)).toEqual(cli.verdict!.checks.map((c) => [c.name, c.set ?? '—', c.pass ? 'pass' : 'FAIL', c.detail]));
  expect(await rows(/^Per-set numbers/)).toEqual(
    ev.sets.map((s, i) => [s.name, String(s.count), pct(ev.baseline!.sets[i]!.successRate), pct(s.successRate), num(s.violationsPerRollout, 3), `${s.contacts} (${s.humanContacts})`, pct(s.peakForceRatio)]),
  );
  expect(await rows(/^Per-scenario results/)).toEqual(
    ev.sets.flatMap((s) => s.results.map((r) => [s.name, r.id, r.success ? 'success' : r.termination, String(r.steps), String(r.violationCount), `${num(r.peakForceN, 3)} N`])),
  );
}

/** template + factor x (trained - template) on every tensor: an update far larger than the robot learnt. */
function scaledUpdate(options: { template: PeftAdapter; trained: PeftAdapter; factor: number }): PeftAdapter {
  const tensors = new Map<string, Float32Array>();
  for (const [name, base] of options.template.tensors) {
    const trained = options.trained.tensors.get(name)!;
    tensors.set(name, Float32Array.from(base, (b, k) => b + options.factor * (trained[k]! - b)));
  }
  return { config: structuredClone(options.trained.config), tensors, shapes: new Map(options.trained.shapes) };
}

