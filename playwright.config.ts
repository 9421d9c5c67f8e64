// Browser suites (tests/e2e/*.spec.ts) in Debian's Chromium (/usr/bin/chromium; Playwright cannot
// download browsers here), launched with the flags of ../shared/REFERENCES.md. Each spec starts its own
// real server (`tensorguard server --port 0`, temporary DATA_DIR) serving the built PWA; the global
// setup builds the PWA first when its sources changed. Viewport: a 10-inch tablet in landscape.
import { defineConfig } from '@playwright/test';

export const CHROMIUM = process.env.TG_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: 'tests/e2e',
  testMatch: '**/*.spec.ts',
  timeout: 300_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 2,
  retries: 0,
  reporter: [['list']],
  outputDir: 'tmp/playwright',
  globalSetup: './tests/e2e/global-setup.ts',
  use: {
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    actionTimeout: 30_000,
    launchOptions: {
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    },
  },
});
