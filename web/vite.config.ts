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
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const API = process.env.PATCHMAN_API ?? 'http://127.0.0.1:8787';

export default defineConfig({
  plugins: [
    tailwindcss(),
    sveltekit({
      adapter: adapter({ pages: here('./build'), assets: here('./build'), fallback: 'index.html' }),
    }),
  ],
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
