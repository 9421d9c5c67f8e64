// Builds the PWA before the browser suites when it is missing or older than its sources.
import { existsSync } from 'node:fs';
import { CHROMIUM } from '../../playwright.config.ts';
// @ts-expect-error plain ES module without types
import { buildPwa } from '../../scripts/build-pwa.mjs';

export default async function globalSetup(): Promise<void> {
  if (!existsSync(CHROMIUM)) return; // the suites skip themselves
  buildPwa();
}
