// The security headers of every response, in one place: the Worker adds them to the API's
// answers (worker/security-headers.ts); the dashboard's static files get them from the
// `_headers` file the web build writes (web/vite.config.ts), and its Content-Security-Policy
// for scripts from SvelteKit (kit.csp, hash mode: the one inline bootstrap script is allowed
// by its SHA-256, in a <meta> tag, since the hash changes with every build).

/** The dashboard's script and resource policy (SvelteKit adds the bootstrap script's hash).
 * Styles may be inline: Svelte sets style attributes and transitions insert <style>. */
export const DASHBOARD_CSP_DIRECTIVES = {
  'default-src': ['self'],
  'script-src': ['self'],
  'style-src': ['self', 'unsafe-inline'],
  'img-src': ['self', 'data:'],
  'font-src': ['self'],
  // 'self' covers the same-origin WebSocket (/api/live) too
  'connect-src': ['self'],
  'object-src': ['none'],
  'base-uri': ['none'],
  'form-action': ['self'],
} as const;

/** The part of the dashboard's policy a <meta> tag cannot carry: sent as a header with the
 * static files (both policies apply). */
export const DASHBOARD_CSP_HEADER = "frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'self'";

/** API answers are data, never a page: nothing may load from them, nobody may frame them. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Sent with every response. */
export const COMMON_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), hid=(), midi=()',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

/** HTTPS only, for two years. Browsers ignore it over plain HTTP (RFC 6797 §8.1), so the
 * local `npm start` on http://127.0.0.1 is not pinned to HTTPS; the Worker sends it only
 * over HTTPS to a host that is not local. */
export const HSTS = 'max-age=63072000; includeSubDomains';

/** The `_headers` file of Workers Static Assets for the dashboard's files. */
export function staticHeadersFile(): string {
  const lines = ['/*', `  Content-Security-Policy: ${DASHBOARD_CSP_HEADER}`, ...Object.entries(COMMON_HEADERS).map(([k, v]) => `  ${k}: ${v}`), `  Strict-Transport-Security: ${HSTS}`];
  return `# written by the web build from protocol/security-headers.ts; do not edit\n${lines.join('\n')}\n`;
}
