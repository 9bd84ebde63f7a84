// Cloudflare Access mode: trust the `Cf-Access-Jwt-Assertion` header Access adds to every
// request it let through — after verifying it: RS256 signature against the team's public
// keys (https://<team>.cloudflareaccess.com/cdn-cgi/access/certs), issuer, audience (the
// application's AUD tag) and expiry. See developers.cloudflare.com/cloudflare-one/identity/
// authorization-cookie/validating-json/.
import * as v from 'valibot';

const Jwks = v.object({
  keys: v.array(v.looseObject({ kid: v.string(), kty: v.literal('RSA'), n: v.string(), e: v.string() })),
});
type Jwk = v.InferOutput<typeof Jwks>['keys'][number];

const Claims = v.looseObject({
  aud: v.union([v.string(), v.array(v.string())]),
  iss: v.string(),
  exp: v.number(),
  nbf: v.optional(v.number()),
  email: v.optional(v.string()),
  sub: v.optional(v.string()),
});

const KEYS_TTL_MS = 10 * 60_000;
/** Public keys per team domain, fetched at most every 10 minutes. Exported so tests can put
 * their own keys in (the tests cannot reach cloudflareaccess.com). */
export const jwksCache = new Map<string, { keys: Jwk[]; at: number }>();

function b64urlBytes(s: string): Uint8Array {
  const b = atob(s.replaceAll('-', '+').replaceAll('_', '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

async function teamKeys(teamDomain: string): Promise<Jwk[]> {
  const cached = jwksCache.get(teamDomain);
  if (cached && Date.now() - cached.at < KEYS_TTL_MS) return cached.keys;
  const res = await fetch(`https://${teamDomain}/cdn-cgi/access/certs`);
  if (!res.ok) throw new Error(`Access keys: HTTP ${res.status}`);
  const parsed = v.parse(Jwks, await res.json());
  jwksCache.set(teamDomain, { keys: parsed.keys, at: Date.now() });
  return parsed.keys;
}

export interface AccessConfig {
  teamDomain: string;
  audience: string;
}

/** The verified e-mail of the Access user, or a reason the assertion is not acceptable. */
export async function verifyAccessJwt(jwt: string, cfg: AccessConfig, now = Date.now()): Promise<{ ok: true; email: string } | { ok: false; reason: string }> {
  const parts = jwt.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'not a JWT' };
  let header: { alg?: string; kid?: string };
  let claims: v.InferOutput<typeof Claims>;
  try {
    header = JSON.parse(new TextDecoder().decode(b64urlBytes(parts[0])));
    const c = v.safeParse(Claims, JSON.parse(new TextDecoder().decode(b64urlBytes(parts[1]))));
    if (!c.success) return { ok: false, reason: 'claims missing' };
    claims = c.output;
  } catch {
    return { ok: false, reason: 'malformed JWT' };
  }
  if (header.alg !== 'RS256') return { ok: false, reason: 'unexpected algorithm' };
  const jwk = (await teamKeys(cfg.teamDomain)).find((k) => k.kid === header.kid);
  if (!jwk) return { ok: false, reason: 'unknown signing key' };
  const key = await crypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e, alg: 'RS256', ext: true }, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['verify']);
  const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
  if (!(await crypto.subtle.verify('RSASSA-PKCS1-v1_5', key, b64urlBytes(parts[2]), signed))) return { ok: false, reason: 'bad signature' };
  if (claims.iss !== `https://${cfg.teamDomain}`) return { ok: false, reason: 'wrong issuer' };
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(cfg.audience)) return { ok: false, reason: 'wrong audience' };
  const sec = Math.floor(now / 1000);
  if (claims.exp <= sec) return { ok: false, reason: 'expired' };
  if (claims.nbf !== undefined && claims.nbf > sec + 60) return { ok: false, reason: 'not yet valid' };
  if (!claims.email) return { ok: false, reason: 'no e-mail in the assertion' };
  return { ok: true, email: claims.email.toLowerCase() };
}
