// The first screen in as few requests as possible: everything the root layout and the
// dashboard route import statically goes into ONE chunk (`initial`). SvelteKit puts the root
// layout's chunks into index.html as modulepreloads, so the dashboard's code starts loading
// with the page instead of after the router has started, and `wrangler dev` (which serves
// one file at a time) serves two files instead of ~60. Other routes, and what the dashboard
// loads later (uPlot), stay separate chunks loaded on demand. The route nodes that are only
// a re-export from that chunk are preloaded from index.html too (preloadingInitialNodes).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Adapter } from '@sveltejs/kit';

/** Where the closure starts: the root layout and the dashboard route ("/"). */
export const INITIAL_ROOTS = ['./src/routes/+layout.svelte', './src/routes/+layout.ts', './src/routes/+page.svelte'].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

export const INITIAL_CHUNK = 'initial';

type ModuleInfo = { importedIds: readonly string[] } | null;

/** Every module reached from `roots` through static imports (dynamic imports are left out:
 * they are what "on demand" means). */
export function staticClosure(roots: readonly string[], info: (id: string) => ModuleInfo): Set<string> {
  const seen = new Set<string>();
  const todo = [...roots];
  while (todo.length) {
    const id = todo.pop()!;
    if (seen.has(id)) continue;
    const m = info(id);
    if (!m) continue;
    seen.add(id);
    todo.push(...m.importedIds);
  }
  return seen;
}

/** Rolldown's `output.codeSplitting` for the client build. */
export function initialChunkSplitting(roots: readonly string[] = INITIAL_ROOTS) {
  let closure: Set<string> | null = null;
  return {
    groups: [
      {
        name: (id: string, ctx: { getModuleInfo: (id: string) => ModuleInfo }) => {
          closure ??= staticClosure(roots, (m) => ctx.getModuleInfo(m));
          return closure.has(id) ? INITIAL_CHUNK : null;
        },
        debugName: INITIAL_CHUNK,
      },
    ],
  };
}

/** One chunk of the client build as `.vite/manifest.json` describes it. */
interface ManifestChunk {
  file: string;
  name?: string;
  src?: string;
  isEntry?: boolean;
  imports?: string[];
  dynamicImports?: string[];
}

/** The route nodes whose code is all in the initial chunk (the root layout, the root error
 * page, the dashboard): files of a few hundred bytes that SvelteKit would only ask for after
 * its router has started, one after the other, behind the dashboard's API calls. */
export function initialNodeFiles(manifest: Record<string, ManifestChunk>): string[] {
  const initial = Object.keys(manifest).find((k) => manifest[k].name === INITIAL_CHUNK);
  if (!initial) return [];
  return Object.values(manifest)
    .filter((c) => c.isEntry && /\/nodes\/\d+\.js$/.test(c.src ?? '') && (c.imports ?? []).every((i) => i === initial) && !c.dynamicImports?.length)
    .map((c) => c.file)
    .sort();
}

/** index.html with a modulepreload for each of `files` (those it has already are kept). */
export function withModulePreloads(html: string, files: readonly string[], base = '/'): string {
  const links = files.filter((f) => !html.includes(`"${base}${f}"`)).map((f) => `<link href="${base}${f}" rel="modulepreload">`);
  if (links.length === 0) return html;
  const at = html.lastIndexOf('rel="modulepreload">');
  if (at < 0) return html.replace('</head>', `${links.join('\n')}\n</head>`);
  const end = at + 'rel="modulepreload">'.length;
  return `${html.slice(0, end)}\n\t\t${links.join('\n\t\t')}${html.slice(end)}`;
}

/** The static adapter, and then the initial nodes preloaded from the SPA's fallback page. */
export function preloadingInitialNodes(inner: Adapter, fallbackFile: string): Adapter {
  return {
    ...inner,
    async adapt(builder) {
      await inner.adapt(builder);
      const manifest = JSON.parse(readFileSync(join(builder.getClientDirectory(), '.vite', 'manifest.json'), 'utf8'));
      writeFileSync(fallbackFile, withModulePreloads(readFileSync(fallbackFile, 'utf8'), initialNodeFiles(manifest)));
    },
  };
}
