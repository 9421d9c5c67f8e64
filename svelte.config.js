// SvelteKit configuration of the officer's PWA: a single-page app (ssr off in src/routes/+layout.ts)
// built by adapter-static into build/ with the SPA fallback page index.html, which the Hono server
// serves at `/` (server/routes/pwa.ts). core/ and workers/ are shared with the server and the CLI.
import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  preprocess: vitePreprocess(),
  kit: {
    adapter: adapter({ pages: 'build', assets: 'build', fallback: 'index.html', precompress: false, strict: true }),
    alias: { $core: 'core', $workers: 'workers' },
    // The fallback page answers every client-side route, so assets must be addressed from the root.
    paths: { relative: false },
    serviceWorker: { register: true },
  },
};

export default config;
