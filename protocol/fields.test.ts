import { describe, expect, it } from 'vitest';
import * as v from 'valibot';
import { HostAddress, PosixUser, Port, Label, PackageName } from './fields.ts';
import { FromRelay, ToRelay, decode } from './relay.ts';

describe('field allowlists', () => {
  it.each(['db1', 'db1.lan', 'pve-01.example.com', '192.168.1.20', '10.0.0.1', '::1', 'fe80::1%eth0', '2001:db8::42'])('accepts address %s', (a) => {
    expect(v.is(HostAddress, a)).toBe(true);
  });

  it.each(['', '-oProxyCommand=sh', 'a b', 'db1;id', '$(id)', '`id`', 'db1\nid', '../etc', '300.1.1.1', 'a'.repeat(64), 'x'.repeat(254), 'host_name', 'db1.', 'ü.lan'])(
    'refuses address %j',
    (a) => expect(v.is(HostAddress, a)).toBe(false),
  );

  it('users are POSIX names; ports are 1–65535 integers; labels have no control characters', () => {
    for (const u of ['root', 'patchman', '_svc', 'deploy-01']) expect(v.is(PosixUser, u)).toBe(true);
    for (const u of ['Root', 'root;id', '-root', 'a b', '', 'x'.repeat(33)]) expect(v.is(PosixUser, u)).toBe(false);
    for (const p of [1, 22, 65535]) expect(v.is(Port, p)).toBe(true);
    for (const p of [0, 65536, 22.5, '22']) expect(v.is(Port, p)).toBe(false);
    expect(v.is(Label, 'web one (prod)')).toBe(true);
    expect(v.is(Label, 'bad\u0000name')).toBe(false);
  });
});

describe('package names', () => {
  it.each(['libssl3', 'linux-image-6.1.0-41-amd64', 'g++', 'libc6:amd64', 'python3.11', 'lib32-glibc', 'qt6-base', 'R', 'gtk2+', 'nss@x'])('accepts %s', (n) => {
    expect(v.is(PackageName, n)).toBe(true);
  });
  it.each(['-oAPT::Update::Pre-Invoke::=sh', 'pkg;id', '$(id)', '`id`', 'a b', 'pkg\nid', '../etc', 'foo=1.2', 'foo/bookworm', '', '.hidden', "it's", 'x'.repeat(200), 'pkg|sh', 'pkg&', 'ü'])(
    'refuses %j',
    (n) => expect(v.is(PackageName, n)).toBe(false),
  );
});

describe('decode', () => {
  it('accepts messages of the protocol and names what is wrong with the rest', () => {
    expect(decode(ToRelay, '{"type":"pong"}')).toEqual({ ok: true, value: { type: 'pong' } });
    expect(decode(FromRelay, 'not json')).toEqual({ ok: false, reason: 'not JSON' });
    expect(decode(FromRelay, new ArrayBuffer(2))).toEqual({ ok: false, reason: 'binary frames are not accepted' });
    const r = decode(FromRelay, JSON.stringify({ type: 'hello', v: 1, version: '1', publicKey: 'ssh-rsa AAAA', hostname: 'h' }));
    expect(r.ok).toBe(false);
    expect((r as { reason: string }).reason).toMatch(/^publicKey: must be an OpenSSH ed25519 public key/);
  });
});
