// The dashboard is its own Vite root: `cd web && vite build` writes the static SPA to
// web/build/, which the Worker serves as static assets (SPA fallback to index.html) from the
// same origin as the API.
//
// SvelteKit 3 no longer reads svelte.config.js (it refuses to build when one exists): its
// options are passed to the `sveltekit()` plugin below.
import { fileURLToPath } from 'node:url';
import { sveltekit } from '@sveltejs/kit/vite';
import adapter from '@sveltejs/adapter-static';
import tailwindcss from '@tailwindcss/vite';
import { defineConfig, type Plugin } from 'vite';
import { DASHBOARD_CSP_DIRECTIVES, staticHeadersFile } from '../protocol/security-headers.ts';
import { initialChunkSplitting, preloadingInitialNodes } from './initial-chunk.ts';
import { earlyScript } from './src/lib/early-requests.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const API = process.env.PATCHMAN_API ?? 'http://127.0.0.1:8787';

/** Security headers for the static files: `_headers` at the root of the client output
 * (copied into web/build with it), read by Workers Static Assets. */
const securityHeaders: Plugin = {
  name: 'patchman-security-headers',
  apply: 'build',
  generateBundle() {
    if (this.environment && this.environment.name !== 'client') return;
    this.emitFile({ type: 'asset', fileName: '_headers', source: staticHeadersFile() });
  },
};

/** `/early.js`: the dashboard's first API requests, started before the app's code has
 * loaded (see src/lib/early-requests.ts). */
const earlyRequests: Plugin = {
  name: 'patchman-early-requests',
  apply: 'build',
  generateBundle() {
    if (this.environment && this.environment.name !== 'client') return;
    this.emitFile({ type: 'asset', fileName: 'early.js', source: earlyScript() });
  },
};

export default defineConfig({
  plugins: [
    tailwindcss(),
    sveltekit({
      adapter: preloadingInitialNodes(adapter({ pages: here('./build'), assets: here('./build'), fallback: 'index.html' }), here('./build/index.html')),
      // no inline script but SvelteKit's bootstrap, allowed by its hash
      csp: { mode: 'hash', directives: structuredClone(DASHBOARD_CSP_DIRECTIVES) as never },
    }),
    securityHeaders,
    earlyRequests,
  ],
  // the layout and the dashboard route in one preloaded chunk (see initial-chunk.ts)
  environments: { client: { build: { rolldownOptions: { output: { codeSplitting: initialChunkSplitting() } } } } },
  resolve: {
    alias: {
      // the shared contract (valibot schemas + inferred types)
      $protocol: here('../protocol'),
      // SvelteKit 3 dropped the built-in $lib alias; keep the familiar name
      $lib: here('./src/lib'),
    },
  },
  server: {
    fs: { allow: [here('..')] },
    proxy: {
      '/api': { target: API, changeOrigin: true, ws: true },
      '/relay': { target: API, changeOrigin: true, ws: true },
    },
  },
});
