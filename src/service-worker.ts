/// <reference types="@sveltejs/kit" />
/// <reference no-default-lib="true"/>
/// <reference lib="esnext" />
/// <reference lib="webworker" />
// The PWA's service worker: precaches the app shell (the SPA fallback page at `/`, every built asset
// including the worker bundles with SEAL's WASM, and the static files), so the installed app starts
// and reviews offline. API calls (/v1/...) always go to the network: the data a review needs offline
// is in IndexedDB (src/lib/db.ts), and signed decisions wait in the outbox, never in a cache.
import { build, files, version } from '$service-worker';

const sw = self as unknown as ServiceWorkerGlobalScope;
const CACHE = `tensorguard-${version}`;
const SHELL = '/';
// onnxruntime-web's WebGPU build (the `.asyncify` wasm, ~27 MB) is left to the network: a tablet with a
// GPU adapter uses it online, and offline the eval worker falls back to the plain WASM build, which is
// precached (workers/eval/backend.ts). Of /models/, the reference policy the gate runs and its metadata
// are precached so a review started offline can still run the evaluation gate.
const OFFLINE_MODELS = new Set(['/models/reference-policy.onnx', '/models/reference-policy.json']);
const PRECACHE = [
  SHELL,
  ...build.filter((f) => !/\/ort-wasm[^/]*\.asyncify[^/]*\.wasm$/.test(f)),
  ...files.filter((f) => !f.startsWith('/models/') || OFFLINE_MODELS.has(f)),
];
const precached = new Set(PRECACHE);

sw.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(PRECACHE);
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
      await sw.clients.claim();
    })(),
  );
});

function isApi(url: URL): boolean {
  return url.pathname.startsWith('/v1/') || ['/healthz', '/readyz', '/metrics', '/openapi.json'].includes(url.pathname);
}

sw.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== sw.location.origin || isApi(url)) return;

  if (request.mode === 'navigate') {
    // Network first so a new deployment shows up; the cached shell when offline.
    event.respondWith(
      (async () => {
        try {
          const fresh = await fetch(request);
          if (fresh.ok) {
            const cache = await caches.open(CACHE);
            await cache.put(SHELL, fresh.clone());
          }
          return fresh;
        } catch {
          return (await caches.match(SHELL)) ?? Response.error();
        }
      })(),
    );
    return;
  }

  if (precached.has(url.pathname)) {
    event.respondWith((async () => (await caches.match(url.pathname)) ?? fetch(request))());
    return;
  }

  event.respondWith(
    (async () => {
      try {
        return await fetch(request);
      } catch {
        return (await caches.match(request)) ?? Response.error();
      }
    })(),
  );
});
