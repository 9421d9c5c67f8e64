// The officer's PWA: serves the built SvelteKit SPA (`npm run build` -> build/) at `/`, with the SPA
// fallback page for client-side routes, and the PWA's own Content-Security-Policy on these responses
// only (the API keeps default-src 'none').
//
// CSP: scripts from this origin only, plus 'wasm-unsafe-eval' (the aggregation kernel compiles
// WebAssembly in the workers) and the SHA-256 of each inline script of the fallback page (SvelteKit's
// bootstrap), computed from the built file; workers from this origin; fetch to this origin; inline
// styles (Svelte style attributes); images from this origin and data: (QR codes).
// One exception, confined to one script: the HE worker (`he-worker-*.js`, workers/he/he-worker.ts) runs
// SEAL through node-seal, whose Embind glue builds functions with `new Function`, so that worker's own
// policy (a worker is governed by the policy delivered with its script) adds 'unsafe-eval'. Pages and
// the signing worker never get it.
// Mounted after every /v1 route: it answers GET/HEAD only and never anything under /v1/.
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { Hono, type Context } from 'hono';
import type { AppEnv } from '../http/context.ts';

export const DEFAULT_PWA_DIR = fileURLToPath(new URL('../../build/', import.meta.url));
const FALLBACK = 'index.html';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

/** The PWA's policy; `scriptHashes` are 'sha256-…' sources of the fallback page's inline scripts. */
export function pwaContentSecurityPolicy(options: { scriptHashes: string[] }): string {
  return [
    "default-src 'none'",
    `script-src 'self' 'wasm-unsafe-eval'${options.scriptHashes.map((h) => ` '${h}'`).join('')}`,
    "worker-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data: blob:",
    "style-src 'self' 'unsafe-inline'",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The HE worker's policy: SEAL (node-seal/Embind) needs eval and WebAssembly; nothing else is loaded. */
export const HE_WORKER_CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; connect-src 'self'";
const HE_WORKER_SCRIPT = /\/_app\/immutable\/workers\/he-worker-[A-Za-z0-9_-]+\.js$/;

/** 'sha256-<base64>' of every inline <script> (no src) in an HTML page. */
export function inlineScriptHashes(html: string): string[] {
  const hashes: string[] = [];
  for (const m of html.matchAll(/<script(?![^>]*\ssrc=)[^>]*>([\s\S]*?)<\/script>/gi)) {
    if (m[1]!.length > 0) hashes.push(`sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}`);
  }
  return hashes;
}

export function createPwaRoutes(options: { dir?: string } = {}): Hono<AppEnv> {
  const root = resolve(options.dir ?? process.env.TG_PWA_DIR ?? DEFAULT_PWA_DIR);
  const routes = new Hono<AppEnv>();
  // The policy depends on the fallback page's inline scripts: recomputed when the build changes.
  let policy: { mtimeMs: number; value: string } | null = null;

  async function currentPolicy(): Promise<string> {
    const path = join(root, FALLBACK);
    try {
      const s = await stat(path);
      if (policy?.mtimeMs !== s.mtimeMs) policy = { mtimeMs: s.mtimeMs, value: pwaContentSecurityPolicy({ scriptHashes: inlineScriptHashes(await readFile(path, 'utf8')) }) };
      return policy.value;
    } catch {
      return pwaContentSecurityPolicy({ scriptHashes: [] });
    }
  }

  /** The file a request path names inside the build directory, or null (missing, a directory, outside). */
  async function fileFor(pathname: string): Promise<string | null> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return null;
    }
    if (decoded.includes('\0')) return null;
    const path = resolve(root, `.${decoded}`);
    if (path !== root && !path.startsWith(root + sep)) return null;
    try {
      return (await stat(path)).isFile() ? path : null;
    } catch {
      return null;
    }
  }

  async function serve(c: Context<AppEnv>, path: string, status: 200 | 404 = 200): Promise<Response> {
    const relative = path.slice(root.length);
    const immutable = relative.includes(`${sep}_app${sep}immutable${sep}`);
    const headers: Record<string, string> = {
      'content-type': TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'content-security-policy': HE_WORKER_SCRIPT.test(relative.split(sep).join('/')) ? HE_WORKER_CSP : await currentPolicy(),
      'x-content-type-options': 'nosniff',
    };
    // The service worker controls the whole origin from its root URL.
    if (relative === `${sep}service-worker.js`) headers['service-worker-allowed'] = '/';
    const body = c.req.method === 'HEAD' ? null : new Uint8Array(await readFile(path));
    return c.newResponse(body as Uint8Array<ArrayBuffer> | null, status, headers);
  }

  routes.on(['GET', 'HEAD'], '*', async (c, next) => {
    const pathname = new URL(c.req.url).pathname;
    if (pathname === '/v1' || pathname.startsWith('/v1/')) return next(); // the API's own 404
    const file = await fileFor(pathname === '/' ? `/${FALLBACK}` : pathname);
    if (file) return serve(c, file);
    // Client-side routes (no file extension) get the SPA fallback page; a missing asset is a 404.
    if (extname(pathname) === '') {
      const fallback = await fileFor(`/${FALLBACK}`);
      if (fallback) return serve(c, fallback);
      return c.json({ error: { code: 'not_built', message: 'the PWA is not built: run `npm run build` (npm start builds it when needed)' } }, 503);
    }
    return next();
  });

  return routes;
}
