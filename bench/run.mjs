#!/usr/bin/env node
// `npm run bench -- <name>`: runs one benchmark (or all) through tsx; each prints one JSON document.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const BENCHES = { he: 'he.ts', safety: 'safety.ts', ingest: 'ingest.ts', 'browser-decrypt': 'browser-decrypt.ts' };
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(BENCHES);
for (const name of names) {
  if (!BENCHES[name]) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, BENCHES[name]), ...process.argv.slice(2).filter((a) => a.startsWith('-'))], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
