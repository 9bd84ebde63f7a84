// The relay's SSH public key is pinned at its first hello: a relay token holder cannot
// replace the key admins copy onto their hosts; a different key waits for an admin.
import { describe, expect, it } from 'vitest';
import { api, createRelay, FakeRelay, PUBLIC_KEY, testEnv, until } from './test/helpers.ts';
import { sshKeyFingerprint } from './relay-key.ts';

const json = async (res: Response | Promise<Response>) => (await (await res).json()) as any;
// a key made with ssh-keygen -t ed25519 (OpenSSH 9.2); `ssh-keygen -lf` prints OTHER_FINGERPRINT
const OTHER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAxG4Z8zyoJnXmaADFdQMwTaSHPGiOcdgpCSwNR4sZOF attacker@elsewhere';
const OTHER_FINGERPRINT = 'SHA256:vNsmBx3hOIC7CQc53I4CM+AE+VJ4KRTxB8beGLu+kNA';
const mine = async (id: string) => ((await json(api('/api/relays'))) as any[]).find((r) => r.id === id);

describe('relay public key pinning', () => {
  it('fingerprints a key the way OpenSSH does', () => {
    expect(sshKeyFingerprint(OTHER_KEY)).toBe(OTHER_FINGERPRINT);
  });

  it('keeps the first key; a different one is only offered, until an admin accepts it (audited)', async () => {
    const { id, token } = await createRelay();
    const first = await FakeRelay.connect(token);
    expect(await mine(id)).toMatchObject({ publicKey: PUBLIC_KEY, publicKeyFingerprint: sshKeyFingerprint(PUBLIC_KEY), publicKeyOffered: null });
    first.ws.close(1000, 'bye');

    const rogue = await FakeRelay.connect(token, { publicKey: OTHER_KEY });
    const offered = sshKeyFingerprint(OTHER_KEY);
    expect(offered).not.toBe(sshKeyFingerprint(PUBLIC_KEY));
    expect(await mine(id)).toMatchObject({ publicKey: PUBLIC_KEY, publicKeyOffered: OTHER_KEY, publicKeyOfferedFingerprint: offered });
    const row = await testEnv.DB.prepare('SELECT public_key FROM relays WHERE id = ?').bind(id).first<{ public_key: string }>();
    expect(row!.public_key).toBe(PUBLIC_KEY);

    // the wrong fingerprint, a missing one, and a relay that offers nothing are refused
    const wrong = await api(`/api/relays/${id}/accept-key`, { method: 'POST', json: { fingerprint: sshKeyFingerprint(PUBLIC_KEY) } });
    expect(wrong.status).toBe(409);
    expect((await json(wrong)).error.field).toBe('fingerprint');
    expect((await json(api(`/api/relays/${id}/accept-key`, { method: 'POST', json: {} }))).error.field).toBe('fingerprint');
    expect((await api(`/api/relays/nope/accept-key`, { method: 'POST', json: { fingerprint: offered } })).status).toBe(404);

    const ok = await api(`/api/relays/${id}/accept-key`, { method: 'POST', json: { fingerprint: offered } });
    expect(ok.status).toBe(200);
    expect(await json(ok)).toMatchObject({ publicKey: OTHER_KEY, publicKeyOffered: null });
    expect(await mine(id)).toMatchObject({ publicKey: OTHER_KEY, publicKeyOffered: null });
    const audit = (await json(api('/api/audit'))) as any[];
    expect(audit.some((a) => a.action === 'POST /api/relays/:id/accept-key' || a.action.includes('accept-key'))).toBe(true);
    rogue.ws.close(1000, 'bye');
  });

  it('a hello with the pinned key again withdraws the offer', async () => {
    const { id, token } = await createRelay();
    (await FakeRelay.connect(token)).ws.close(1000, 'bye');
    (await FakeRelay.connect(token, { publicKey: OTHER_KEY })).ws.close(1000, 'bye');
    expect((await mine(id)).publicKeyOffered).toBe(OTHER_KEY);
    await FakeRelay.connect(token);
    await until(async () => (await mine(id)).publicKeyOffered === null);
    expect((await mine(id)).publicKey).toBe(PUBLIC_KEY);
  });
});
