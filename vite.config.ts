// Vite builds the PWA (SvelteKit) and its web workers (workers/, ES module workers). In the browser,
// node-seal resolves to its worker build (SEAL 4.1.2 WASM embedded in the module), the same SEAL the
// server and the CLI run, so ciphertexts and keys are byte-identical across them.
import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [sveltekit()],
  resolve: {
    alias: [{ find: /^node-seal$/, replacement: 'node-seal/throws_wasm_worker_es.js' }],
  },
  worker: { format: 'es' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4096, sourcemap: false },
  server: { fs: { allow: ['core', 'workers'] } },
});
