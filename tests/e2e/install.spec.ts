// Installability in Chromium: a valid web manifest with PNG icons, Chromium's own installability
// check (DevTools protocol) without errors, a service worker that controls the page, a reload with the
// network off that still shows the app, and pages that run under their Content-Security-Policy.
import { expect, test } from '@playwright/test';
import { skipWithoutChromium, startSuite, type Suite } from './support.ts';

let suite: Suite;
test.beforeAll(async () => {
  skipWithoutChromium();
  suite = await startSuite('install');
});
test.afterAll(async () => {
  await suite?.stop();
});

function pngSize(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

test('the PWA installs, its service worker controls the page, and it opens offline', async ({ page, context }) => {
  skipWithoutChromium();
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });

  await test.step('the manifest is valid and its icons are real PNGs of the stated sizes', async () => {
    const res = await fetch(`${suite.url}/manifest.webmanifest`);
    expect(res.headers.get('content-type')).toContain('application/manifest+json');
    const manifest = await res.json();
    expect(manifest).toMatchObject({ name: 'TensorGuard Officer', short_name: 'TensorGuard', start_url: '/', scope: '/', display: 'standalone' });
    const pngs = manifest.icons.filter((i: { type: string }) => i.type === 'image/png');
    expect(pngs.map((i: { sizes: string }) => i.sizes)).toEqual(expect.arrayContaining(['192x192', '512x512']));
    expect(manifest.icons.some((i: { purpose: string }) => i.purpose === 'maskable')).toBe(true);
    for (const icon of pngs) {
      const img = await fetch(new URL(icon.src, suite.url));
      expect(img.headers.get('content-type')).toBe('image/png');
      const { width, height } = pngSize(Buffer.from(await img.arrayBuffer()));
      expect(`${width}x${height}`).toBe(icon.sizes);
    }
  });

  await test.step('first run in the browser; the service worker takes control', async () => {
    const first = await page.goto(`${suite.url}/`);
    const csp = first!.headers()['content-security-policy']!;
    expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval' 'sha256-");
    expect(csp).not.toContain("'unsafe-eval'");
    await page.getByRole('tab', { name: 'First run' }).click();
    await page.getByLabel('Organization').fill('Install Co');
    await page.getByLabel('User name').fill('ivan');
    await page.getByLabel('Password').fill(suite.env.TG_PASSWORD);
    await page.getByRole('button', { name: 'Create organization' }).click();
    await expect(page.getByRole('heading', { name: 'Key ceremony' })).toBeVisible();
    await page.evaluate(() => navigator.serviceWorker.ready);
    await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller?.scriptURL ?? null)).toBe(`${suite.url}/service-worker.js`);
  });

  await test.step('Chromium reports no installability errors', async () => {
    const cdp = await context.newCDPSession(page);
    const manifest = await cdp.send('Page.getAppManifest');
    expect(manifest.errors).toEqual([]);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    // A Playwright context is an off-the-record profile; everything else must be clean.
    expect(installabilityErrors.filter((e) => e.errorId !== 'in-incognito')).toEqual([]);
  });

  await test.step('with the network off, a reload and a deep link still show the app', async () => {
    await context.setOffline(true);
    await page.reload();
    await expect(page.getByRole('heading', { name: 'Key ceremony' })).toBeVisible();
    await expect(page.getByTestId('network-state')).toHaveText('Offline');
    await page.goto(`${suite.url}/settings`);
    await expect(page.getByRole('heading', { name: 'Settings' })).toBeVisible();
    await expect(page.getByRole('navigation', { name: 'Main' })).toBeVisible();
    await context.setOffline(false);
  });

  await test.step('keyboard: the skip link and the navigation are reachable in order', async () => {
    await page.goto(`${suite.url}/fleets`);
    await expect(page.getByRole('heading', { name: 'Fleets', level: 1 })).toBeVisible();
    await page.keyboard.press('Tab');
    await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused();
    await page.keyboard.press('Tab');
    await expect(page.getByRole('link', { name: 'TensorGuard home' })).toBeFocused();
    // the create-fleet form works from the keyboard alone
    await page.getByLabel('Name').focus();
    await page.keyboard.type('keyboard-fleet');
    await page.keyboard.press('Enter');
    await expect(page.getByRole('link', { name: 'keyboard-fleet' })).toBeVisible();
  });

  await test.step('portrait tablet: the navigation moves to the top and the page does not scroll sideways', async () => {
    await page.setViewportSize({ width: 800, height: 1280 });
    await page.goto(`${suite.url}/fleets`);
    await expect(page.getByRole('navigation', { name: 'Main' })).toBeVisible();
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await page.screenshot({ path: 'tmp/playwright/screens/portrait-fleets.png' });
  });

  expect(violations).toEqual([]);
});
