// Is this Worker running on this machine (`npm start`, `wrangler dev`) rather than deployed
// behind Cloudflare? `npm start` says so with the PATCHMAN_LOCAL var; a loopback host name
// says so too (a deployed Worker is never reached under these names).
export function isLocal(env: { PATCHMAN_LOCAL?: string }, url: string): boolean {
  if (env.PATCHMAN_LOCAL === '1') return true;
  const h = new URL(url).hostname;
  return h === 'localhost' || h === '127.0.0.1' || h === '[::1]';
}

/** The client's address as far as it can be trusted: Cloudflare sets CF-Connecting-IP on
 * every request it forwards (replacing any the client sent), but locally nothing does, so
 * a client could pick any address to dodge the login throttle: there, one fixed key. */
export const LOCAL_CLIENT = 'local';
export function clientAddress(env: { PATCHMAN_LOCAL?: string }, req: Request): string | null {
  if (isLocal(env, req.url)) return LOCAL_CLIENT;
  return req.headers.get('CF-Connecting-IP');
}
