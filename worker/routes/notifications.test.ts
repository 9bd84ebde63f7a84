// The notifications API in workerd with D1: channels with write-only, encrypted secrets,
// 400s naming the field, admin-only changes, "Send test" to a real HTTP receiver on
// loopback (signature checked), and the delivery log.
import { describe, expect, it, inject } from 'vitest';
import { api, testEnv } from '../test/helpers.ts';
import { checkChannel } from '../notify/channel-store.ts';
import { openDb } from '../db/index.ts';
import { hmacSha256Hex } from '../notify/channels/webhook.ts';

const receiver = inject('receiverUrl');
const received = async () => (await (await fetch(`${receiver}/__received`)).json()) as { path: string; headers: Record<string, string>; body: string }[];

const SECRET_PATH = 'tok-Sup3rSecretPathToken';
const HMAC_SECRET = 'hmac-s3cret-value-xyz';

async function create(body: Record<string, unknown>) {
  const res = await api('/api/notifications/channels', { method: 'POST', json: body });
  return { status: res.status, text: await res.clone().text(), body: (await res.json()) as any };
}

const webhookBody = (path: string) => ({
  name: 'ops hook',
  type: 'webhook',
  events: ['security-updates', 'job-failed'],
  config: { url: `${receiver}/${path}/${SECRET_PATH}`, secret: HMAC_SECRET },
});

describe('notification channels', () => {
  it('stores secrets encrypted and never returns them; an update without them keeps them', async () => {
    const made = await create(webhookBody('hook'));
    expect(made.status).toBe(201);
    expect(made.text).not.toContain(SECRET_PATH);
    expect(made.text).not.toContain(HMAC_SECRET);
    expect(made.body).toMatchObject({ type: 'webhook', via: 'worker', events: ['security-updates', 'job-failed'], secretsSet: ['url', 'secret'], target: receiver, config: {} });

    const row = await testEnv.DB.prepare('select * from notify_channels').first<Record<string, unknown>>();
    expect(JSON.stringify(row)).not.toContain(SECRET_PATH);
    expect(JSON.stringify(row)).not.toContain(HMAC_SECRET);
    expect(String(row!.secret)).toMatch(/^v1\./);

    const list = await api('/api/notifications/channels');
    const listText = await list.text();
    expect(listText).not.toContain(SECRET_PATH);
    expect(listText).not.toContain(HMAC_SECRET);

    const put = await api(`/api/notifications/channels/${made.body.id}`, { method: 'PUT', json: { name: 'renamed', type: 'webhook', events: ['digest'], config: {} } });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ name: 'renamed', events: ['digest'], secretsSet: ['url', 'secret'] });

    // the kept secrets still work: a test arrives, signed
    await fetch(`${receiver}/__reset`, { method: 'POST' });
    const test = await api(`/api/notifications/channels/${made.body.id}/test`, { method: 'POST' });
    const t = (await test.json()) as any;
    expect(t.delivery).toMatchObject({ event: 'test', status: 'sent', attempts: 1, error: null });
    const [got] = await received();
    expect(got.path).toBe(`/hook/${SECRET_PATH}`);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-patchman-signature']).toBe(`sha256=${await hmacSha256Hex(HMAC_SECRET, got.body)}`);
    expect(JSON.parse(got.body)).toMatchObject({ schema: 'patchman.notification', version: 1, event: 'test', title: 'PatchMan test message' });

    const ch = (await (await api(`/api/notifications/channels/${made.body.id}`)).json()) as any;
    expect(ch.lastSentAt).toBeTruthy();
  });

  it('a failing target: the test is logged as failed with the cause, and the URL (a secret) is in no response', async () => {
    const made = await create(webhookBody('status/500'));
    const test = await api(`/api/notifications/channels/${made.body.id}/test`, { method: 'POST' });
    const text = await test.text();
    expect(JSON.parse(text).delivery).toMatchObject({ status: 'failed', attempts: 1 });
    expect(JSON.parse(text).delivery.error).toMatch(/^HTTP 500/);
    const log = await (await api(`/api/notifications/deliveries?channelId=${made.body.id}`)).text();
    const chans = await (await api('/api/notifications/channels')).text();
    for (const t of [text, log, chans]) {
      expect(t).not.toContain(SECRET_PATH);
      expect(t).not.toContain(HMAC_SECRET);
    }
    expect(JSON.parse(chans)[0].lastError).toMatch(/^HTTP 500/);
  });

  it('refuses bad input with a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...webhookBody('x'), config: { url: 'ftp://example.com/hook' } }, 'config.url'],
      [{ ...webhookBody('x'), events: ['security-updates', 'coffee-ready'] }, 'events.1'],
      [{ name: 'mail', type: 'email', via: 'worker', events: ['digest'], config: { host: 'mail.example.com', from: 'patchman@example.com', to: ['not an address'] } }, 'config.to.0'],
      [{ name: 'mail', type: 'email', via: 'worker', events: ['digest'], config: { host: 'mail.example.com', from: 'patchman@example.com', to: ['ops@example.com'] } }, 'via'],
      [{ name: 'x', type: 'pager', events: [], config: {} }, 'type'],
      [{ name: 'x', type: 'slack', events: [], config: {} }, 'config.url'],
      [{ name: 'x', type: 'ntfy', via: 'no-such-relay', events: [], config: { url: 'http://ntfy.lan/patchman' } }, 'via'],
    ];
    for (const [body, field] of cases) {
      const res = await create(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.field, JSON.stringify(res.body)).toBe(field);
    }
    // a deployed Worker (not npm start) refuses LAN targets: they go through a relay
    const db = openDb(testEnv.DB);
    const deployed = { ...testEnv, PATCHMAN_LOCAL: undefined, NOTIFY_LOOPBACK: undefined };
    await expect(checkChannel(deployed, db, 'ntfy', 'worker', { url: 'http://192.168.1.20/patchman' } as never)).rejects.toMatchObject({ status: 400, field: 'config.url' });
    await expect(checkChannel(deployed, db, 'gotify', 'worker', { url: 'http://gotify.lan', token: 'x' } as never)).rejects.toMatchObject({ status: 400, field: 'config.url' });
    await expect(checkChannel(deployed, db, 'discord', 'worker', { url: 'https://discord.com/api/webhooks/1/abc' } as never)).resolves.toBeUndefined();
  });

  it('viewers and operators may read, only admins change or test; every change is audited', async () => {
    const made = await create(webhookBody('hook'));
    const tok = await api('/api/tokens', { method: 'POST', json: { name: 'op', role: 'operator' } });
    const { secret } = (await tok.json()) as any;
    const asOp = { Authorization: `Bearer ${secret}` };
    expect((await api('/api/notifications/channels', { headers: asOp })).status).toBe(200);
    expect((await api('/api/notifications/channels', { method: 'POST', json: webhookBody('x'), headers: asOp })).status).toBe(403);
    expect((await api(`/api/notifications/channels/${made.body.id}/test`, { method: 'POST', headers: asOp })).status).toBe(403);
    expect((await api(`/api/notifications/channels/${made.body.id}`, { method: 'DELETE', headers: asOp })).status).toBe(403);
    expect((await api(`/api/notifications/channels/${made.body.id}`, { method: 'DELETE' })).status).toBe(204);
    const audit = (await (await api('/api/audit')).json()) as any;
    const actions = audit.map((a: any) => `${a.action} ${a.status}`);
    expect(actions).toContain('POST /api/notifications/channels 201');
    expect(audit.find((a: any) => a.action === 'DELETE /api/notifications/channels/:id')).toMatchObject({ status: 204, target: made.body.id });
    expect(actions.filter((a: string) => a.endsWith(' 403')).length).toBeGreaterThanOrEqual(3);
  });

  it('notification settings: public URL validated, stored', async () => {
    const bad = await api('/api/notifications/settings', { method: 'PUT', json: { publicUrl: 'patchman.example.com' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.field).toBe('publicUrl');
    const ok = await api('/api/notifications/settings', { method: 'PUT', json: { publicUrl: 'https://patchman.example.com', digest: 'daily' } });
    expect(await ok.json()).toMatchObject({ publicUrl: 'https://patchman.example.com', digest: 'daily', unreachableAfterScans: 2 });
  });
});
