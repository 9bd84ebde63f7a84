// Image references, normalised the way Docker does it (github.com/distribution/reference,
// `ParseNormalizedNamed`): the first path component is a registry only when it contains a
// `.` or a `:`, or is `localhost` (or is not all lowercase); otherwise the registry is
// docker.io, and a one-component name on docker.io is an official image under `library/`.
// No tag and no digest means `:latest`.
//
//   nginx                              docker.io / library/nginx : latest
//   nginx:1.27                         docker.io / library/nginx : 1.27
//   ghcr.io/org/app:v1                 ghcr.io   / org/app       : v1
//   localhost:5000/app                 localhost:5000 / app      : latest
//   registry.example.com:5443/a/b:c    registry.example.com:5443 / a/b : c
//   app@sha256:…                       docker.io / library/app   @ sha256:…
//
// References come from the host (what the stack's containers were created from), so they
// are validated strictly before anything is built from them: a reference that does not
// parse is reported, never sent anywhere.

export interface ImageRef {
  /** The reference as written. */
  readonly original: string;
  /** The registry as Docker names it: `docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000`. */
  readonly domain: string;
  /** The repository path on that registry: `library/nginx`, `org/app`. */
  readonly path: string;
  /** The tag (`latest` when neither a tag nor a digest was given); null for `name@digest`. */
  readonly tag: string | null;
  /** `sha256:…` when the reference is pinned by digest. */
  readonly digest: string | null;
}

export class ReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReferenceError';
  }
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
/** Where docker.io's registry API really is. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

const NAME_MAX = 255;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
// path-component := alpha-numeric (separator alpha-numeric)*, separator := [_.] | __ | -+
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
// domain-component (hostname label), optional port; or a bracketed IPv6 address.
const DOMAIN_NAME = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$/;
const IPV6_DOMAIN = /^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;

/** Parse and normalise an image reference. Throws ReferenceError with a plain reason. */
export function parseReference(ref: string): ImageRef {
  if (typeof ref !== 'string' || ref === '') throw new ReferenceError('the image reference is empty');
  if (ref.length > 512 || /[\s\x00-\x1f\x7f]/.test(ref)) throw new ReferenceError('the image reference contains spaces or control characters');

  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ReferenceError(`"${digest.slice(0, 80)}" is not a sha256/sha512 digest`);
  }

  let tag: string | null = null;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw new ReferenceError(`"${tag.slice(0, 80)}" is not a valid tag`);
  }
  if (rest === '') throw new ReferenceError('the image reference has no repository name');

  let domain = DEFAULT_DOMAIN;
  let remote = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first) {
      domain = first;
      remote = rest.slice(slash + 1);
    }
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (!DOMAIN_NAME.test(domain) && !IPV6_DOMAIN.test(domain)) throw new ReferenceError(`"${domain.slice(0, 80)}" is not a valid registry host`);
  if (domain === DEFAULT_DOMAIN && !remote.includes('/')) remote = `library/${remote}`;

  if (remote.toLowerCase() !== remote) throw new ReferenceError(`repository name "${remote.slice(0, 80)}" must be lowercase`);
  for (const part of remote.split('/')) {
    if (!PATH_COMPONENT.test(part)) throw new ReferenceError(`"${remote.slice(0, 80)}" is not a valid repository name`);
  }
  if (domain.length + 1 + remote.length > NAME_MAX) throw new ReferenceError('the repository name is longer than 255 characters');

  if (tag === null && digest === null) tag = 'latest';
  return { original: ref, domain, path: remote, tag, digest };
}

/** `docker.io/library/nginx`: the registry and repository, which RepoDigests are matched on. */
export function repositoryOf(ref: ImageRef): string {
  return `${ref.domain}/${ref.path}`;
}

/** The host (and port) the registry API is reached at. */
export function apiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN ? DOCKER_HUB_API_HOST : domain;
}

/**
 * Whether Docker talks plain HTTP to this registry without being told to: registries on
 * the loopback interface (localhost, 127.0.0.0/8, ::1) are insecure registries by default
 * (dockerd's `--insecure-registry` default list is 127.0.0.0/8). Everything else is https.
 */
export function isLoopbackRegistry(domain: string): boolean {
  let host = domain;
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(domain);
  if (v6) host = v6[1];
  else host = domain.replace(/:\d+$/, '');
  host = host.toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** `http` for loopback registries, `https` for everything else. */
export function schemeFor(domain: string): 'http' | 'https' {
  return isLoopbackRegistry(domain) ? 'http' : 'https';
}

/** The registry API base URL, e.g. `https://registry-1.docker.io`. */
export function registryBaseUrl(domain: string): string {
  return `${schemeFor(domain)}://${apiHost(domain)}`;
}

/** A RepoDigest (`nginx@sha256:…`, `ghcr.io/org/app@sha256:…`) split into its normalised
 * repository and digest; null when it does not parse. */
export function parseRepoDigest(entry: string): { repository: string; digest: string } | null {
  if (!entry.includes('@')) return null;
  try {
    const r = parseReference(entry);
    if (!r.digest) return null;
    return { repository: repositoryOf(r), digest: r.digest };
  } catch {
    return null;
  }
}
