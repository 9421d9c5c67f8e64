#!/usr/bin/env node
// Builds the PWA (vite build -> build/) when it is missing or older than its sources, so `npm start`
// and the browser suites always serve the current app. `node scripts/build-pwa.mjs --force` rebuilds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const output = join(root, 'build', 'index.html');
const SOURCES = ['src', 'workers', 'core', 'static', 'svelte.config.js', 'vite.config.ts', 'package-lock.json'];

function newest(path) {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let max = 0;
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry.endsWith('.test.ts')) continue;
    max = Math.max(max, newest(join(path, entry)));
  }
  return max;
}

export function pwaIsStale() {
  if (!existsSync(output)) return true;
  const built = statSync(output).mtimeMs;
  return SOURCES.some((s) => newest(join(root, s)) > built);
}

export function buildPwa({ force = false } = {}) {
  if (!force && !pwaIsStale()) return false;
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  process.stderr.write('Building the PWA (vite build) …\n');
  const r = spawnSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`vite build failed with exit code ${r.status}`);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    buildPwa({ force: process.argv.includes('--force') });
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
