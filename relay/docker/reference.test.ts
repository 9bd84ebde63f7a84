import { describe, expect, it } from 'vitest';
import { apiHost, isLoopbackRegistry, parseReference, parseRepoDigest, ReferenceError, registryBaseUrl, repositoryOf } from './reference.ts';

const D = 'sha256:' + 'ab'.repeat(32);

describe('parseReference normalises like Docker', () => {
  const cases: Array<[ref: string, domain: string, path: string, tag: string | null, digest: string | null]> = [
    ['nginx', 'docker.io', 'library/nginx', 'latest', null],
    ['nginx:1.27', 'docker.io', 'library/nginx', '1.27', null],
    ['nginx:1.27-alpine', 'docker.io', 'library/nginx', '1.27-alpine', null],
    ['library/nginx', 'docker.io', 'library/nginx', 'latest', null],
    ['docker.io/nginx', 'docker.io', 'library/nginx', 'latest', null],
    ['docker.io/library/nginx:stable', 'docker.io', 'library/nginx', 'stable', null],
    ['index.docker.io/library/nginx', 'docker.io', 'library/nginx', 'latest', null],
    ['bitnami/redis:7.2', 'docker.io', 'bitnami/redis', '7.2', null],
    ['ghcr.io/org/app:v1', 'ghcr.io', 'org/app', 'v1', null],
    ['ghcr.io/org/team/app', 'ghcr.io', 'org/team/app', 'latest', null],
    ['quay.io/prometheus/node-exporter:v1.8.2', 'quay.io', 'prometheus/node-exporter', 'v1.8.2', null],
    ['localhost:5000/app', 'localhost:5000', 'app', 'latest', null],
    ['localhost/app:dev', 'localhost', 'app', 'dev', null],
    ['127.0.0.1:5000/a/b', '127.0.0.1:5000', 'a/b', 'latest', null],
    ['[::1]:5000/app:1', '[::1]:5000', 'app', '1', null],
    ['registry.example.com:5443/a/b:c', 'registry.example.com:5443', 'a/b', 'c', null],
    ['myregistry:5000/app', 'myregistry:5000', 'app', 'latest', null],
    [`app@${D}`, 'docker.io', 'library/app', null, D],
    [`name:tag@${D}`, 'docker.io', 'library/name', 'tag', D],
    [`ghcr.io/org/app:v2@${D}`, 'ghcr.io', 'org/app', 'v2', D],
    ['my_app/sub__x.v2:Tag_1.0', 'docker.io', 'my_app/sub__x.v2', 'Tag_1.0', null],
    ['a-b--c/d:latest', 'docker.io', 'a-b--c/d', 'latest', null],
    // A first component that is not all lowercase is a registry host to Docker.
    ['Registry/app', 'Registry', 'app', 'latest', null],
  ];
  for (const [ref, domain, path, tag, digest] of cases) {
    it(ref, () => {
      expect(parseReference(ref)).toEqual({ original: ref, domain, path, tag, digest });
    });
  }

  it('refuses uppercase repository names, bad tags and digests, and junk', () => {
    const bad: Array<[string, RegExp]> = [
      ['Nginx', /must be lowercase/],
      ['library/NGINX', /must be lowercase/],
      ['ghcr.io/Org/app', /must be lowercase/],
      ['', /empty/],
      ['nginx:', /not a valid tag/],
      ['nginx:-x', /not a valid tag/],
      [`nginx:${'a'.repeat(129)}`, /not a valid tag/],
      ['nginx@sha256:abc', /digest/],
      [`nginx@md5:${'a'.repeat(32)}`, /digest/],
      ['nginx app', /spaces/],
      ['nginx\nid', /control/],
      ['-oProxyCommand=id', /must be lowercase/],
      ['-oproxycommand=id', /not a valid repository/],
      ['my_app.v2/x', /registry host/],
      ['/nginx', /not a valid repository|no repository/],
      ['nginx//x', /not a valid repository/],
      ['a_-b', /not a valid repository/],
      ['ghcr.io/', /not a valid repository|no repository/],
      ['exa mple.com/app', /spaces/],
      ['bad_host.com/app', /registry host/],
      [`ghcr.io/${'a/'.repeat(130)}x`, /longer than 255/],
    ];
    for (const [ref, why] of bad) {
      let err: unknown;
      try {
        parseReference(ref);
      } catch (e) {
        err = e;
      }
      expect(err, ref).toBeInstanceOf(ReferenceError);
      expect((err as Error).message, ref).toMatch(why);
    }
  });
});

describe('registry addressing', () => {
  it('sends docker.io to registry-1.docker.io over https', () => {
    expect(apiHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryBaseUrl(parseReference('nginx').domain)).toBe('https://registry-1.docker.io');
    expect(registryBaseUrl('ghcr.io')).toBe('https://ghcr.io');
    expect(registryBaseUrl('registry.example.com:5443')).toBe('https://registry.example.com:5443');
  });

  it('speaks plain http only to loopback registries, as dockerd does', () => {
    for (const d of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000', 'LOCALHOST:1']) expect(isLoopbackRegistry(d), d).toBe(true);
    for (const d of ['ghcr.io', 'localhost.example.com', '10.0.0.1:5000', '128.0.0.1', 'myregistry:5000', '[fe80::1]:5000']) expect(isLoopbackRegistry(d), d).toBe(false);
    expect(registryBaseUrl('localhost:5000')).toBe('http://localhost:5000');
    expect(registryBaseUrl('[::1]:5000')).toBe('http://[::1]:5000');
  });

  it('normalises RepoDigests the same way, so `nginx@…` matches `docker.io/library/nginx`', () => {
    expect(parseRepoDigest(`nginx@${D}`)).toEqual({ repository: 'docker.io/library/nginx', digest: D });
    expect(parseRepoDigest(`localhost:5000/test1@${D}`)).toEqual({ repository: 'localhost:5000/test1', digest: D });
    expect(parseRepoDigest('nginx:latest')).toBeNull();
    expect(parseRepoDigest('garbage@x')).toBeNull();
    expect(repositoryOf(parseReference('library/nginx:1'))).toBe(parseRepoDigest(`docker.io/nginx@${D}`)?.repository);
  });
});
