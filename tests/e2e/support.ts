// Shared pieces of the browser suites: a real server per suite, the real CLI for robots and the CLI
// officer, PEFT adapters for robots, and the request recorder with the encodings a secret could take.
import { test, type BrowserContext, type Page } from '@playwright/test';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { startServer } from './server.ts';

export { startServer };
import { loadAdapterDir, saveAdapterDir } from '../../cli/home.ts';
import { perturbAdapter } from '../../cli/synthetic-adapter.ts';
import { trainableTensorNames } from '../../core/round/mask.ts';
import { CHROMIUM } from '../../playwright.config.ts';

export const TEMPLATE = resolve(import.meta.dirname, '../vectors/peft/tiny-lora');

export function skipWithoutChromium(): void {
  test.skip(!existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium)`);
}

export interface Suite {
  root: string;
  url: string;
  dataDir: string;
  stop(): Promise<void>;
  env: { TG_PASSPHRASE: string; TG_PASSWORD: string };
  cli(home: string, ...args: string[]): Promise<CliResult>;
}

/** A fresh server on a free port with its own data directory, and a CLI bound to it. */
export async function startSuite(name: string): Promise<Suite> {
  const root = await mkdtemp(join(tmpdir(), `tg-e2e-${name}-`));
  const dataDir = join(root, 'server-data');
  const server = await startServer({ dataDir });
  const env = { TG_PASSPHRASE: 'robot and officer passphrase e2e', TG_PASSWORD: 'correct horse battery staple' };
  return {
    root,
    url: server.url,
    dataDir,
    stop: server.stop,
    env,
    cli: (home, ...args) => runCli([...args, '--json', '--home', home], env),
  };
}

export function ok(r: CliResult, what: string): any {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.json;
}

/** The round template (copied) and one trained adapter per robot (template + noise on every tensor). */
export async function robotAdapters(root: string, count: number): Promise<{ template: string; adapters: string[] }> {
  const template = join(root, 'template');
  await cp(TEMPLATE, template, { recursive: true });
  const base = await loadAdapterDir(template);
  const names = trainableTensorNames({ tensors: [...base.tensors.keys()].map((n) => ({ name: n })), freezeA: false });
  const adapters: string[] = [];
  for (let i = 0; i < count; i++) {
    const dir = join(root, `adapter-${i}`);
    await saveAdapterDir(dir, perturbAdapter({ adapter: base, names, sigma: 0.01 * (i + 1) }).adapter);
    adapters.push(dir);
  }
  return { template, adapters };
}

export interface Recorded {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer | null;
}

/** Records every request of the context (pages, their workers and the service worker). */
export function recordRequests(context: BrowserContext): Recorded[] {
  const seen: Recorded[] = [];
  context.on('request', (req) => {
    seen.push({ url: req.url(), method: req.method(), headers: req.headers(), body: req.postDataBuffer() });
  });
  return seen;
}

/**
 * The ways a secret could travel: raw bytes, base64, base64url, hex (both cases). Each long secret
 * is also cut into 48-byte windows at several offsets and alignments, so a fragment of a key shows up
 * too, whatever its position in an encoded body.
 */
export function needles(secret: Uint8Array): { raw: Buffer[]; text: string[] } {
  const raw: Buffer[] = [];
  const text: string[] = [];
  const windows: Buffer[] = [];
  const buf = Buffer.from(secret);
  if (buf.length <= 48) windows.push(buf);
  else for (let off = 0; off + 48 <= buf.length; off += Math.max(48, Math.floor(buf.length / 16))) for (const a of [0, 1, 2]) if (off + a + 48 <= buf.length) windows.push(buf.subarray(off + a, off + a + 48));
  for (const w of windows) {
    raw.push(w);
    // inner characters of an encoding do not depend on the bytes around the window
    text.push(w.toString('base64').slice(4, -4), w.toString('base64url').slice(4, -4), w.toString('hex'), w.toString('hex').toUpperCase());
  }
  return { raw, text };
}

export function containsSecret(haystack: Buffer | string, n: { raw: Buffer[]; text: string[] }): boolean {
  const buf = typeof haystack === 'string' ? Buffer.from(haystack) : haystack;
  const str = buf.toString('latin1');
  return n.raw.some((r) => buf.includes(r)) || n.text.some((t) => str.includes(t));
}

/** Everything the page's origin keeps in IndexedDB, with byte values as Buffers (for at-rest checks). */
export async function dumpIndexedDb(page: Page): Promise<Buffer[]> {
  const parts: Array<{ b64?: string; json?: string }> = await page.evaluate(async () => {
    const out: Array<{ b64?: string; json?: string }> = [];
    const toB64 = (u8: Uint8Array) => {
      let s = '';
      for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode(...u8.subarray(i, i + 0x8000));
      return btoa(s);
    };
    const walk = (v: unknown): void => {
      if (v instanceof ArrayBuffer) out.push({ b64: toB64(new Uint8Array(v)) });
      else if (ArrayBuffer.isView(v)) out.push({ b64: toB64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) });
      else if (typeof v === 'string') out.push({ json: v });
      else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
    };
    for (const { name } of await indexedDB.databases()) {
      const db = await new Promise<IDBDatabase>((ok, fail) => {
        const r = indexedDB.open(name!);
        r.onsuccess = () => ok(r.result);
        r.onerror = () => fail(r.error);
      });
      for (const store of Array.from(db.objectStoreNames)) {
        const rows = await new Promise<unknown[]>((ok, fail) => {
          const r = db.transaction(store).objectStore(store).getAll();
          r.onsuccess = () => ok(r.result);
          r.onerror = () => fail(r.error);
        });
        walk(rows);
      }
      db.close();
    }
    return out;
  });
  return parts.map((p) => (p.b64 !== undefined ? Buffer.from(p.b64, 'base64') : Buffer.from(p.json!, 'utf8')));
}

export async function readFileBytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(path));
}
