#!/usr/bin/env node
// `npm run bench -- <name> [--options]`: runs one benchmark (or several) through tsx; each prints one
// JSON document. With no names, runs every benchmark in sequence at its bounded default size
// (full-round with --quick) and stops any one that exceeds its time limit (TG_BENCH_TIMEOUT_S, default
// 900 s), so `npm run bench` always ends.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const BENCHES = { he: 'he.ts', safety: 'safety.ts', ingest: 'ingest.ts', 'browser-decrypt': 'browser-decrypt.ts', 'parallel-aggregate': 'parallel-aggregate.ts', 'full-round': 'full-round.ts', 'train-stages': 'train-stages.ts' };
/** Options a bench gets when `npm run bench` runs them all: sizes that keep the whole suite bounded. */
const ALL_DEFAULTS = { 'full-round': ['--quick'] };
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const options = process.argv.slice(2).filter((a) => a.startsWith('-'));
const all = wanted.length === 0;
const names = all ? Object.keys(BENCHES) : wanted;
const timeoutS = Number(process.env.TG_BENCH_TIMEOUT_S ?? 900);
let failed = 0;
for (const name of names) {
  if (!BENCHES[name]) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
  const args = [...(all ? (ALL_DEFAULTS[name] ?? []) : []), ...options];
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, BENCHES[name]), ...args], { stdio: 'inherit', timeout: all ? timeoutS * 1000 : undefined, killSignal: 'SIGKILL' });
  if (r.status !== 0) {
    if (!all) process.exit(r.status ?? 1);
    console.error(`benchmark "${name}" ${r.signal ? `stopped after ${timeoutS} s` : `failed (status ${r.status})`}; continuing`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
