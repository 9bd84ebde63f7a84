// Update detection for container images, pulling nothing.
//
// DECISION: the relay asks the registries itself, with HEAD requests, anonymously. For each
// image reference it sends `HEAD /v2/<repo>/manifests/<tag>` (Accept: the two manifest-list /
// index types and the two single-manifest types, so the registry answers with the same
// digest `docker pull` would record) and reads `Docker-Content-Digest`. A registry that
// answers 401 with a `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge gets an
// anonymous token request (`GET realm?service=…&scope=repository:<repo>:pull`, no
// credentials) and the HEAD is retried with that token; tokens are cached per registry and
// scope until they expire. An update is available when the registry's digest for the tag is
// not among the image's RepoDigests for that repository.
//
// Why from the relay and not from the host: the host would need a tool that talks to
// registries (`docker manifest inspect`/`buildx imagetools` are not always there and differ by
// version), and running anything network-facing there is what an agentless design avoids.
// The price: registries that need credentials only the host has (its `docker login`,
// credential helpers) cannot be checked from the relay. Those images are reported
// `not-checkable` with that reason — never `update-available`, never silently "up to date".
// The relay never sees or asks for registry credentials.
//
// Also never `update-available`: images pinned by digest (`@sha256:` — the tag cannot move
// under them), images built locally or never pulled (no RepoDigests), and images whose
// RepoDigests are all from another repository (tagged locally). Network and registry errors
// are `error` with a plain reason. Every request has a timeout; at most `concurrency`
// checks run at once. HEAD requests do not count against Docker Hub's pull rate limit
// (docs.docker.com/docker-hub/usage/pulls: "A HEAD request isn't counted as a pull").
//
// Loopback registries (localhost, 127.0.0.0/8, ::1) are spoken to over plain http, as dockerd
// does by default; everything else over https with the system's trusted CAs.
import { RELAY_VERSION } from '../version.ts';
import { apiHost, parseRepoDigest, parseReference, ReferenceError, registryBaseUrl, repositoryOf, schemeFor, type ImageRef } from './reference.ts';

/** The protocol's ImageCheck (protocol/relay.ts). */
export interface ImageCheck {
  status: 'up-to-date' | 'update-available' | 'not-checkable' | 'error';
  reason: string | null;
  localDigest: string | null;
  remoteDigest: string | null;
}

export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
] as const;

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_CONCURRENCY = 8;
/** Token lifetime when the token service does not say (the distribution spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
/** A token is not used in its last seconds (clock skew, slow requests). */
const TOKEN_MARGIN_MS = 5_000;

/** The outcome of asking a registry for a tag's digest. */
export type RemoteDigest =
  | { kind: 'digest'; digest: string }
  /** The registry wants credentials the relay does not have. */
  | { kind: 'auth'; reason: string }
  | { kind: 'error'; reason: string };

export interface RegistryClientOptions {
  /** Each HTTP request (HEAD or token) gives up after this. Default 10 s. */
  timeoutMs?: number;
  /** Checks at once. Default 8. */
  concurrency?: number;
  /** Clock for token expiry (tests move it). */
  now?: () => number;
}

interface Challenge {
  realm: string;
  service: string | null;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Counts, for tests and the benchmark. */
export interface RegistryStats {
  heads: number;
  tokenRequests: number;
}

export class RegistryClient {
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #limit: Semaphore;
  /** Tokens by `host|realm|service|scope`. */
  readonly #tokens = new Map<string, CachedToken>();
  /** Token requests in flight, by the same key: parallel checks of one repository share one. */
  readonly #tokenRequests = new Map<string, Promise<{ ok: true; token: CachedToken } | { ok: false; result: RemoteDigest }>>();
  /** The Bearer challenge each registry host last answered with, so later repositories on
   * the same registry fetch their token first instead of paying for a 401 round trip. */
  readonly #challenges = new Map<string, Challenge>();
  readonly stats: RegistryStats = { heads: 0, tokenRequests: 0 };

  constructor(opts: RegistryClientOptions = {}) {
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#now = opts.now ?? Date.now;
    this.#limit = new Semaphore(opts.concurrency ?? DEFAULT_CONCURRENCY);
  }

  /**
   * Check one image: `reference` as the container names it, `repoDigests` from
   * `docker image inspect` (null or [] for an image built locally).
   */
  async check(reference: string, repoDigests: readonly string[] | null): Promise<ImageCheck> {
    return this.checkMany([{ reference, repoDigests }]).then((r) => r[0]);
  }

  /** Check many images, at most `concurrency` at once; one tag is asked for once. */
  async checkMany(items: readonly { reference: string; repoDigests: readonly string[] | null }[]): Promise<ImageCheck[]> {
    const remote = new Map<string, Promise<RemoteDigest>>();
    return Promise.all(
      items.map(async (item) => {
        const plan = planCheck(item.reference, item.repoDigests);
        if ('result' in plan) return plan.result;
        const key = `${plan.ref.domain}/${plan.ref.path}:${plan.ref.tag}`;
        let answer = remote.get(key);
        if (!answer) {
          answer = this.#limit.run(() => this.remoteDigest(plan.ref));
          remote.set(key, answer);
        }
        return decide(plan, await answer);
      }),
    );
  }

  /** The registry's current digest for a tag (HEAD, never GET). */
  async remoteDigest(ref: ImageRef): Promise<RemoteDigest> {
    if (!ref.tag) return { kind: 'error', reason: 'a reference without a tag has nothing to look up' };
    const host = apiHost(ref.domain);
    const url = `${registryBaseUrl(ref.domain)}/v2/${ref.path}/manifests/${encodeURIComponent(ref.tag)}`;
    const what = `${repositoryOf(ref)}:${ref.tag}`;
    // Docker's own client asks for exactly this scope, whatever the challenge names.
    const scope = `repository:${ref.path}:pull`;

    // A registry that challenged us before: get the token for this scope first.
    let token: { key: string; value: string; fresh: boolean } | null = null;
    const known = this.#challenges.get(host);
    if (known) {
      // (if that fails, the anonymous HEAD below gets this repository's own challenge)
      const t = await this.#token(host, ref.domain, known, scope);
      if (t.ok) token = t.token;
    }

    for (let attempt = 0; attempt < 3; attempt++) {
      const res = await this.#request(url, {
        method: 'HEAD',
        headers: {
          Accept: MANIFEST_MEDIA_TYPES.join(', '),
          'User-Agent': USER_AGENT,
          ...(token ? { Authorization: `Bearer ${token.value}` } : {}),
        },
      });
      if ('failed' in res) return { kind: 'error', reason: `${host}: ${res.failed}` };
      this.stats.heads++;
      const status = res.status;
      if (status === 401) {
        const challenge = parseBearerChallenge(res.headers.get('www-authenticate'));
        if (!challenge.ok) return { kind: 'auth', reason: `${host} wants credentials for ${what} (${challenge.reason}); the relay checks anonymously, so only the host could check this image` };
        const c = { realm: challenge.realm, service: challenge.service };
        // A token just issued by this same token service, refused: no anonymous access.
        if (token?.fresh && token.key === tokenKey(host, c, scope)) {
          return {
            kind: 'auth',
            reason: `${host} refused anonymous access to ${what} (401 with an anonymous token): the repository is private (needs credentials only the host has) or does not exist`,
          };
        }
        // (a cached token the registry no longer takes is dropped and fetched again)
        if (token) this.#tokens.delete(token.key);
        const t = await this.#token(host, ref.domain, c, scope);
        if (!t.ok) return t.result;
        this.#challenges.set(host, c); // a token service that works: ask it first next time
        token = t.token;
        continue;
      }
      if (status >= 200 && status < 300) {
        const digest = res.headers.get('docker-content-digest')?.trim();
        if (!digest) return { kind: 'error', reason: `${host} answered ${status} for ${what} without a Docker-Content-Digest header` };
        if (!/^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$/.test(digest)) return { kind: 'error', reason: `${host} sent a malformed digest for ${what}` };
        return { kind: 'digest', digest };
      }
      if (status === 404) return { kind: 'error', reason: `${host} has no tag "${ref.tag}" for ${repositoryOf(ref)} (404 Not Found)` };
      if (status === 403) return { kind: 'auth', reason: `${host} denied access to ${what} (403 Forbidden): it needs credentials only the host has` };
      if (status === 429) return { kind: 'error', reason: `${host} is rate-limiting requests (429 Too Many Requests); try again later` };
      return { kind: 'error', reason: `${host} answered ${status}${res.statusText ? ` ${res.statusText}` : ''} for ${what}` };
    }
    return { kind: 'error', reason: `${host} kept refusing the token it issued for ${what}` };
  }

  /** A token for this scope: cached until it expires, otherwise fetched (one request for all
   * parallel checks that need it). `fresh` = fetched for this call, not from the cache. */
  async #token(
    host: string,
    domain: string,
    c: Challenge,
    scope: string,
  ): Promise<{ ok: true; token: { key: string; value: string; fresh: boolean } } | { ok: false; result: RemoteDigest }> {
    const key = tokenKey(host, c, scope);
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > this.#now()) return { ok: true, token: { key, value: cached.token, fresh: false } };
    let pending = this.#tokenRequests.get(key);
    if (!pending) {
      pending = this.#fetchToken(host, domain, c, scope).finally(() => this.#tokenRequests.delete(key));
      this.#tokenRequests.set(key, pending);
    }
    const r = await pending;
    if (!r.ok) return r;
    this.#tokens.set(key, r.token);
    return { ok: true, token: { key, value: r.token.token, fresh: true } };
  }

  async #fetchToken(host: string, domain: string, c: Challenge, scope: string): Promise<{ ok: true; token: CachedToken } | { ok: false; result: RemoteDigest }> {
    let url: URL;
    try {
      url = new URL(c.realm);
    } catch {
      return { ok: false, result: { kind: 'error', reason: `${host} named a token service that is not a URL` } };
    }
    // The token service of an https registry must be https too (a plain-http one would be
    // an easy downgrade); loopback registries are plain http anyway.
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && schemeFor(domain) === 'http')) {
      return { ok: false, result: { kind: 'error', reason: `${host} named a token service that is not https (${url.protocol}//${url.host})` } };
    }
    if (c.service) url.searchParams.set('service', c.service);
    url.searchParams.set('scope', scope);
    this.stats.tokenRequests++;
    const started = this.#now();
    const res = await this.#request(url.toString(), { method: 'GET', headers: { Accept: 'application/json', 'User-Agent': USER_AGENT } }, true);
    if ('failed' in res) return { ok: false, result: { kind: 'error', reason: `token service ${url.host}: ${res.failed}` } };
    if (res.status === 401 || res.status === 403) {
      return { ok: false, result: { kind: 'auth', reason: `the token service ${url.host} refused an anonymous token for ${scope} (${res.status}): it needs credentials only the host has` } };
    }
    if (res.status < 200 || res.status >= 300) {
      return { ok: false, result: { kind: 'error', reason: `the token service ${url.host} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}` } };
    }
    let body: unknown;
    try {
      body = JSON.parse(res.body ?? '');
    } catch {
      return { ok: false, result: { kind: 'error', reason: `the token service ${url.host} did not answer with JSON` } };
    }
    const b = (body && typeof body === 'object' ? body : {}) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof b.token === 'string' && b.token ? b.token : typeof b.access_token === 'string' && b.access_token ? b.access_token : null;
    if (!token || token.length > 64 * 1024 || /[\s\x00-\x1f]/.test(token)) {
      return { ok: false, result: { kind: 'error', reason: `the token service ${url.host} answered without a usable token` } };
    }
    const seconds = typeof b.expires_in === 'number' && Number.isFinite(b.expires_in) && b.expires_in > 0 ? b.expires_in : DEFAULT_TOKEN_SECONDS;
    return { ok: true, token: { token, expiresAt: started + seconds * 1000 - TOKEN_MARGIN_MS } };
  }

  /** One HTTP request with a timeout; network failures become a plain reason. */
  async #request(
    url: string,
    init: { method: 'HEAD' | 'GET'; headers: Record<string, string> },
    readBody = false,
  ): Promise<{ status: number; statusText: string; headers: Headers; body?: string } | { failed: string }> {
    try {
      const res = await fetch(url, { ...init, redirect: 'follow', signal: AbortSignal.timeout(this.#timeoutMs) });
      let body: string | undefined;
      if (readBody) {
        const text = await res.text();
        body = text.length > 256 * 1024 ? '' : text;
      } else {
        await res.body?.cancel().catch(() => {});
      }
      return { status: res.status, statusText: res.statusText, headers: res.headers, body };
    } catch (err) {
      return { failed: describeFetchError(err, this.#timeoutMs) };
    }
  }
}

const USER_AGENT = `patchman-relay/${RELAY_VERSION}`;

function tokenKey(host: string, c: Challenge, scope: string): string {
  return `${host}|${c.realm}|${c.service ?? ''}|${scope}`;
}

/** What can be decided without the network, or the reference and digests to compare. */
function planCheck(
  reference: string,
  repoDigests: readonly string[] | null,
): { result: ImageCheck } | { ref: ImageRef; local: string[] } {
  let ref: ImageRef;
  try {
    ref = parseReference(reference);
  } catch (e) {
    const why = e instanceof ReferenceError ? e.message : 'it does not parse';
    return { result: notCheckable(`the image reference ${JSON.stringify(reference.slice(0, 200))} is not valid: ${why}`) };
  }
  const repository = repositoryOf(ref);
  const local = (repoDigests ?? [])
    .map(parseRepoDigest)
    .filter((d): d is { repository: string; digest: string } => d !== null && d.repository === repository)
    .map((d) => d.digest);
  if (ref.digest) {
    return {
      result: notCheckable(`pinned by digest (${ref.digest.slice(0, 19)}…): the reference names one exact image, so there is no newer one under it`, local[0] ?? ref.digest),
    };
  }
  if (!repoDigests || repoDigests.length === 0) {
    return { result: notCheckable('the image has no registry digest (built locally, or loaded rather than pulled), so there is nothing to compare with a registry') };
  }
  if (local.length === 0) {
    return { result: notCheckable(`the image has no digest from ${repository} (it was tagged locally from another image), so the registry's tag says nothing about it`) };
  }
  return { ref, local };
}

function decide(plan: { ref: ImageRef; local: string[] }, remote: RemoteDigest): ImageCheck {
  const localDigest = plan.local[0];
  switch (remote.kind) {
    case 'auth':
      return { status: 'not-checkable', reason: remote.reason, localDigest, remoteDigest: null };
    case 'error':
      return { status: 'error', reason: remote.reason, localDigest, remoteDigest: null };
    case 'digest':
      if (plan.local.includes(remote.digest)) return { status: 'up-to-date', reason: null, localDigest: remote.digest, remoteDigest: remote.digest };
      return { status: 'update-available', reason: null, localDigest, remoteDigest: remote.digest };
  }
}

function notCheckable(reason: string, localDigest: string | null = null): ImageCheck {
  return { status: 'not-checkable', reason, localDigest, remoteDigest: null };
}

/**
 * Parse a `WWW-Authenticate` header for a Bearer challenge (RFC 6750 / the distribution
 * token spec): `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"`.
 */
export function parseBearerChallenge(header: string | null): { ok: true; realm: string; service: string | null; scope: string | null } | { ok: false; reason: string } {
  if (!header) return { ok: false, reason: '401 without a WWW-Authenticate challenge' };
  const m = /^\s*([A-Za-z][A-Za-z0-9._~+/-]*)\s*(.*)$/s.exec(header);
  if (!m) return { ok: false, reason: 'an unreadable WWW-Authenticate challenge' };
  const scheme = m[1].toLowerCase();
  if (scheme !== 'bearer') return { ok: false, reason: `${m[1]} authentication (a username and password)` };
  const params = new Map<string, string>();
  const re = /\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)/gy;
  const text = m[2];
  let match: RegExpExecArray | null;
  while (re.lastIndex < text.length && (match = re.exec(text)) !== null) {
    params.set(match[1].toLowerCase(), match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] ?? ''));
    if (match[0] === '') break;
  }
  const realm = params.get('realm');
  if (!realm) return { ok: false, reason: 'a Bearer challenge without a realm' };
  return { ok: true, realm, service: params.get('service') ?? null, scope: params.get('scope') ?? null };
}

/** A plain reason for a failed fetch: timeout, refused, DNS, TLS. */
export function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${Math.round(timeoutMs / 100) / 10} s`;
  const code = e?.cause?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'the connection was reset';
    case 'ENOTFOUND':
    case 'EAI_NONAME':
      return 'host name not found';
    case 'EAI_AGAIN':
      return 'DNS lookup failed (temporary)';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to the host';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connecting timed out';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return `no answer within ${Math.round(timeoutMs / 100) / 10} s`;
  }
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|TLS|SSL/i.test(code)) return `its TLS certificate is not trusted (${code})`;
  const msg = e?.cause?.message ?? e?.message ?? 'request failed';
  return msg.slice(0, 200);
}

/** At most `n` tasks at once. */
export class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = Math.max(1, Math.floor(n));
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

let shared: RegistryClient | undefined;

/** The relay process's client: its token cache is shared by every scan. */
export function sharedRegistryClient(): RegistryClient {
  return (shared ??= new RegistryClient());
}
