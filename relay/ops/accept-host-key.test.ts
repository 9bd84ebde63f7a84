// A real sshd whose host key is regenerated: the relay refuses it (host-key-changed, with
// both fingerprints), keeps refusing until the new fingerprint is accepted, and accepting
// a fingerprint the host does not present changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpError } from '../errors.ts';
import { loadOrCreateKeyPair } from '../keys.ts';
import { KnownHosts } from '../known-hosts.ts';
import { startSshd, type Sshd } from '../test/sshd.ts';
import type { OpContext } from './context.ts';
import { executeRequest } from './index.ts';
import { runProbe } from './probe.ts';
import { runAcceptHostKey } from './accept-host-key.ts';

let tmp: string;
let sshd: Sshd;
let ctx: OpContext;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-hostkey-'));
  const key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')) };
});

afterAll(async () => {
  await sshd?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('a regenerated host key on a real sshd', () => {
  it('blocks the host until exactly the new fingerprint is accepted', async () => {
    const target = { address: '127.0.0.1', port: sshd.port, user: 'root' };
    await runProbe({ target }, ctx); // pinned on first use
    const first = sshd.hostKeyFingerprint;
    expect(ctx.knownHosts.get('127.0.0.1', sshd.port)?.fingerprint).toBe(first);

    await sshd.regenerateHostKey();
    const second = sshd.hostKeyFingerprint;
    expect(second).not.toBe(first);
    // through the operation table, as the Worker sees it: the code and both fingerprints
    const res = await executeRequest({ type: 'request', id: 'r1', op: 'scan', params: { target } }, ctx);
    expect(res).toMatchObject({ ok: false, error: { code: 'host-key-changed', hostKey: { pinned: first, offered: second } } });
    // still blocked on the next try
    await expect(runProbe({ target }, ctx)).rejects.toMatchObject({ code: 'host-key-changed' });

    // accepting some other key: refused, the old pin stays
    const other = 'SHA256:' + 'Q'.repeat(43);
    const err = await runAcceptHostKey({ target, fingerprint: other }, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpError);
    expect((err as OpError).code).toBe('host-key-changed');
    expect(ctx.knownHosts.get('127.0.0.1', sshd.port)?.fingerprint).toBe(first);

    // accepting what the host offers: pinned, and the host works again
    expect(await runAcceptHostKey({ target, fingerprint: second }, ctx)).toEqual({ hostKey: second });
    expect(ctx.knownHosts.get('127.0.0.1', sshd.port)?.fingerprint).toBe(second);
    expect((await runProbe({ target }, ctx)).hostname).toBeTruthy();
  });
});
