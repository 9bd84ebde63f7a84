// The dashboard's first requests, started by a small static script (`/early.js`, written by
// the web build from this file) as soon as index.html is parsed: on the dashboard the API
// answers are the last thing the first host row waits for, and without it they would only
// be asked for once the app's code had loaded and run. The script asks who is signed in and,
// once that answers someone, for the dashboard's lists; the app's own GETs of those paths
// (api.ts request()) take the answers, each once. Signed out, it asks for nothing more: the
// lists would only answer 401, each a red line in the browser's console.

/** Where the script leaves its requests (path → the Response, or null when it did not ask). */
export const EARLY_GLOBAL = '__patchmanEarly';
export const EARLY_SESSION_PATH = '/api/auth/session';

/** What the dashboard's first resync fetches (live.svelte.ts fetchLists), as paths. */
export const DASHBOARD_LIST_PATHS = [
  '/api/health',
  '/api/relays',
  '/api/hosts',
  '/api/jobs?limit=200',
  '/api/jobs?kind=upgrade&limit=200',
  '/api/jobs?kind=reboot&limit=100',
  '/api/jobs?kind=stack-update&limit=100',
] as const;

/** The script's source (plain ES2017, no imports: it runs before any module). */
export function earlyScript(): string {
  return `// written by the web build from web/src/lib/early-requests.ts; do not edit
(function () {
  if (location.pathname !== '/') return;
  var get = function (p) { return fetch(p, { headers: { accept: 'application/json' }, credentials: 'same-origin' }); };
  var early = (window[${JSON.stringify(EARLY_GLOBAL)}] = {});
  var session = (early[${JSON.stringify(EARLY_SESSION_PATH)}] = get(${JSON.stringify(EARLY_SESSION_PATH)}).catch(function () { return null; }));
  var signedIn = session
    .then(function (res) { return res && res.ok ? res.clone().json() : null; })
    .then(function (answer) { return !!(answer && answer.me); }, function () { return false; });
  ${JSON.stringify(DASHBOARD_LIST_PATHS)}.forEach(function (p) {
    early[p] = signedIn.then(function (yes) { return yes ? get(p).catch(function () { return null; }) : null; });
  });
})();
`;
}

/** The early request for this GET, if the script made one and nobody has taken it yet. */
export function takeEarly(path: string): Promise<Response | null> | null {
  const early = (globalThis as Record<string, unknown>)[EARLY_GLOBAL] as Record<string, Promise<Response | null>> | undefined;
  const found = early?.[path];
  if (!found) return null;
  delete early[path];
  return found;
}

/** Drop whatever early answers nobody took (signed out: the next user asks afresh). */
export function forgetEarly(): void {
  delete (globalThis as Record<string, unknown>)[EARLY_GLOBAL];
}
