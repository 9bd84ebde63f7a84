// What the first page of the dashboard loads, gzipped: the JS and CSS of web/build that a
// browser opening `/` (or the route given) fetches before the page shows, against the
// whole app. Reads index.html (the modulepreloads and stylesheets SvelteKit puts there)
// and entry/app.js (each route's node and the chunks and CSS vite preloads with it).
//
//   npm run build:web && node bench/initial-route.ts [/route] [--max-kb 150]
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';

const BUILD = new URL('../web/build/', import.meta.url).pathname;
const IMMUTABLE = join(BUILD, '_app/immutable');

const args = process.argv.slice(2);
const route = args.find((a) => a.startsWith('/')) ?? '/';
const maxAt = args.indexOf('--max-kb');
const maxKb = maxAt >= 0 ? Number(args[maxAt + 1]) : 150;

const gz = (rel: string) => gzipSync(readFileSync(join(BUILD, rel))).length;

/** Paths relative to web/build, without the leading slash. */
const html = readFileSync(join(BUILD, 'index.html'), 'utf8');
const files = new Set<string>();
for (const m of html.matchAll(/<link href="\/([^"]+)" rel="(?:modulepreload|stylesheet)"/g)) files.add(m[1]);
for (const m of html.matchAll(/import\("\/([^"]+)"\)/g)) files.add(m[1]);

const appFile = readdirSync(join(IMMUTABLE, 'entry')).find((f) => f.startsWith('app.') && f.endsWith('.js'));
if (!appFile) throw new Error('no entry/app.*.js: run npm run build:web first');
const app = readFileSync(join(IMMUTABLE, 'entry', appFile), 'utf8');
files.add(`_app/immutable/entry/${appFile}`);

// vite's preload list: m.f=["../nodes/0.x.js","../chunks/y.js",...], relative to entry/
const depList = JSON.parse(/m\.f=(\[[^\]]*\])/.exec(app)?.[1] ?? '[]') as string[];
const fromEntry = (p: string) => posix.normalize(posix.join('_app/immutable/entry', p));
// nodes: import(`../nodes/N.hash.js`),__vite__mapDeps([i,j,…])
const nodes = [...app.matchAll(/import\(`([^`]+)`\),__vite__mapDeps\(\[([\d,]*)\]\)/g)].map((m) => [
  fromEntry(m[1]),
  ...m[2]
    .split(',')
    .filter(Boolean)
    .map((i) => fromEntry(depList[Number(i)])),
]);
const dictionary = JSON.parse(
  (/(\{"\/":\[[^}]*\})/.exec(app)?.[1] ?? '{}').replace(/([{,])"?([^":,{}]+)"?:/g, '$1"$2":'),
) as Record<string, number[]>;
const routeNodes = dictionary[route];
if (!routeNodes) throw new Error(`no route ${route} in ${Object.keys(dictionary).join(' ')}`);
// the root layout (node 0) and the route's own nodes (SvelteKit lists layouts as numbers too)
for (const n of [0, ...routeNodes.filter((n) => n >= 0)]) for (const f of nodes[n] ?? []) files.add(f);

const initial = { js: 0, css: 0 };
for (const f of files) initial[f.endsWith('.css') ? 'css' : 'js'] += gz(f);

const all = { js: 0, css: 0 };
const walk = (dir: string) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.js') || name.endsWith('.css')) all[name.endsWith('.css') ? 'css' : 'js'] += gzipSync(readFileSync(p)).length;
  }
};
walk(IMMUTABLE);

const kb = (n: number) => (n / 1024).toFixed(1);
const total = initial.js + initial.css;
console.log(
  JSON.stringify(
    {
      route,
      files: files.size,
      initialGzipKb: { js: kb(initial.js), css: kb(initial.css), total: kb(total) },
      allRoutesGzipKb: { js: kb(all.js), css: kb(all.css), total: kb(all.js + all.css) },
      limitKb: maxKb,
      ok: total / 1024 <= maxKb,
    },
    null,
    2,
  ),
);
if (total / 1024 > maxKb) process.exitCode = 1;
