// notify.send against real receivers on loopback: every channel format the Worker renders
// (worker/notify/channels) POSTed by the relay to a node HTTP server — payload, content type
// and the webhook's HMAC checked — and e-mail through a real SMTP server (smtp-server),
// parsed with mailparser. Targets outside PATCHMAN_NOTIFY_ALLOW are refused and logged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { AddressInfo } from 'node:net';
import { startReceiver, type Receiver } from '../../e2e/http-receiver.ts';
import { CHANNELS } from '../../worker/notify/channels/index.ts';
import type { NotifyMessage } from '../../protocol/notify.ts';
import { executeRequest } from './index.ts';
import { parseNotifyAllow } from '../notify-allow.ts';
import type { OpContext } from './context.ts';

let rx: Receiver;
let port: number;
const logs: string[] = [];
const ctx = (allow: string): OpContext => ({ privateKey: '', knownHosts: {} as never, notifyAllow: parseNotifyAllow(allow), log: (l) => logs.push(l) });

const message: NotifyMessage = {
  event: 'security-updates',
  severity: 'warning',
  title: 'New security updates on 2 hosts',
  text: '5 security updates pending on 2 hosts; the most first:\n• web1: 3 security updates\n• web2: 2 security updates',
  link: 'https://patchman.example.com/',
  at: '2026-12-03T10:00:00.000Z',
  count: 2,
  items: [
    { hostId: 'h1', name: 'web1', detail: '3 security updates', link: 'https://patchman.example.com/hosts/h1' },
    { hostId: 'h2', name: 'web2', detail: '2 security updates', link: 'https://patchman.example.com/hosts/h2' },
  ],
};

async function send(out: unknown, allow = `127.0.0.1:${port}`) {
  return executeRequest({ type: 'request', id: 'n1', op: 'notify.send', params: out }, ctx(allow));
}

beforeAll(async () => {
  rx = await startReceiver();
  port = Number(new URL(rx.url).port);
});
afterAll(() => rx?.close());

describe('notify.send over HTTP, every format', () => {
  it('webhook: versioned JSON, signed with HMAC-SHA256 over the body', async () => {
    const out = await CHANNELS.webhook.render(message, { url: `${rx.url}/webhook`, secret: 's3cret' });
    expect((await send(out)).ok).toBe(true);
    const [got] = await rx.waitFor(1, '/webhook');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-patchman-event']).toBe('security-updates');
    const expected = 'sha256=' + createHmac('sha256', 's3cret').update(got.body).digest('hex');
    expect(got.headers['x-patchman-signature']).toBe(expected);
    expect(JSON.parse(got.body)).toEqual({ schema: 'patchman.notification', version: 1, event: 'security-updates', severity: 'warning', title: message.title, text: message.text, link: message.link, at: message.at, count: 2, items: message.items });
  });

  it('slack, mattermost, discord, teams: their own JSON shapes', async () => {
    for (const type of ['slack', 'mattermost', 'discord', 'teams'] as const) {
      const out = await CHANNELS[type].render(message, { url: `${rx.url}/${type}` } as never);
      const r = await send(out);
      expect(r.ok, type).toBe(true);
    }
    const body = async (p: string) => {
      const [got] = await rx.waitFor(1, p);
      expect(got.headers['content-type'], p).toBe('application/json');
      return JSON.parse(got.body);
    };
    expect((await body('/slack')).text).toBe(`*${message.title}*\n${message.text}\n<${message.link}|Open in PatchMan>`);
    expect((await body('/mattermost')).text).toContain(`[Open in PatchMan](${message.link})`);
    const discord = await body('/discord');
    expect(discord.embeds[0]).toMatchObject({ title: message.title, description: message.text, url: message.link, color: 0xf59e0b });
    const teams = await body('/teams');
    expect(teams.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(teams.attachments[0].content.body[0].text).toBe(message.title);
    expect(teams.attachments[0].content.actions[0].url).toBe(message.link);
  });

  it('ntfy: text body, title/priority/tags/click headers, bearer token', async () => {
    const out = await CHANNELS.ntfy.render(message, { url: `${rx.url}/patchman`, token: 'tk_ntfy', tags: ['warning'] });
    expect((await send(out)).ok).toBe(true);
    const [got] = await rx.waitFor(1, '/patchman');
    expect(got.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(got.body).toBe(message.text);
    expect(got.headers).toMatchObject({ title: message.title, priority: '4', tags: 'warning,security-updates', click: message.link, authorization: 'Bearer tk_ntfy' });
  });

  it('gotify and telegram', async () => {
    const g = await CHANNELS.gotify.render(message, { url: `${rx.url}/gotify`, token: 'AppTok' });
    expect((await send(g)).ok).toBe(true);
    const [gm] = await rx.waitFor(1, '/gotify/message');
    expect(gm.headers['x-gotify-key']).toBe('AppTok');
    expect(JSON.parse(gm.body)).toMatchObject({ title: message.title, priority: 6, extras: { 'client::notification': { click: { url: message.link } } } });
    const t = await CHANNELS.telegram.render(message, { botToken: '123456:ABC-def', chatId: '-100200', apiUrl: rx.url });
    expect((await send(t)).ok).toBe(true);
    const [tm] = await rx.waitFor(1, '/bot123456:ABC-def/sendMessage');
    expect(JSON.parse(tm.body)).toMatchObject({ chat_id: '-100200', text: expect.stringContaining(message.title) });
  });

  it('a receiver error comes back as delivery-failed with the status', async () => {
    const out = await CHANNELS.slack.render(message, { url: `${rx.url}/status/404` });
    const r = await send(out);
    expect(r).toMatchObject({ ok: false, error: { code: 'delivery-failed', message: expect.stringMatching(/^HTTP 404/) } });
  });

  it('refuses a target outside PATCHMAN_NOTIFY_ALLOW, logs host:port only, sends nothing', async () => {
    const before = rx.received.length;
    const out = await CHANNELS.slack.render(message, { url: `${rx.url}/services/T0/B0/secret-token-xyz` });
    for (const allow of ['', `127.0.0.1:${port + 1}`, `127.0.0.2:${port}`]) {
      const r = await send(out, allow);
      expect(r).toMatchObject({ ok: false, error: { code: 'not-allowed' } });
    }
    expect(rx.received.length).toBe(before);
    expect(logs.at(-1)).toBe(`relay: refused notify.send HTTP to 127.0.0.1:${port}: not in PATCHMAN_NOTIFY_ALLOW`);
    expect(logs.join('\n')).not.toContain('secret-token-xyz');
  });

  it('refuses headers that would redirect the request (Host, hop-by-hop)', async () => {
    const before = rx.received.length;
    const r = await send({ kind: 'http', url: `${rx.url}/x`, headers: { Host: 'internal-admin.lan' }, body: '{}' });
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid-request', message: 'notify.send may not set the Host header' } });
    expect(rx.received.length).toBe(before);
  });

  it('parses the allowlist strictly', () => {
    expect(parseNotifyAllow('ntfy.lan:80, 192.168.1.5:8080,[fd00::1]:25').allows('NTFY.lan', 80)).toBe(true);
    expect(parseNotifyAllow('ntfy.lan:80').allows('ntfy.lan', 443)).toBe(false);
    expect(() => parseNotifyAllow('ntfy.lan')).toThrow(/not host:port/);
    expect(() => parseNotifyAllow('http://ntfy.lan:80')).toThrow(/not host:port/);
  });
});

describe('notify.send over SMTP (a real SMTP server on loopback)', () => {
  let smtp: SMTPServer;
  let smtpPort: number;
  const mails: ParsedMail[] = [];
  const auths: string[] = [];

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: false,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      onAuth(auth, _session, cb) {
        auths.push(`${auth.username}:${auth.password}`);
        if (auth.password === 'mail-pass') cb(null, { user: auth.username });
        else cb(new Error('Invalid username or password'));
      },
      onData(stream, _session, cb) {
        simpleParser(stream).then((m) => {
          mails.push(m);
          cb();
        }, cb);
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
    smtpPort = (smtp.server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => smtp.close(() => r())));

  it('delivers the e-mail with auth; the server receives and parses it', async () => {
    const out = await CHANNELS.email.render(message, { host: '127.0.0.1', port: smtpPort, security: 'none', user: 'patchman', password: 'mail-pass', from: 'patchman@example.com', to: ['ops@example.com', 'oncall@example.com'], tlsVerify: true });
    const r = await send(out, `127.0.0.1:${smtpPort}`);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(auths).toEqual(['patchman:mail-pass']);
    expect(mails).toHaveLength(1);
    const m = mails[0];
    expect(m.subject).toBe(`[PatchMan] ${message.title}`);
    expect(m.from?.text).toBe('patchman@example.com');
    expect((Array.isArray(m.to) ? m.to : [m.to]).map((t) => t?.text).join(', ')).toBe('ops@example.com, oncall@example.com');
    expect(m.text).toContain('web1: 3 security updates');
    expect(m.text).toContain(message.link!);
  });

  it('a wrong password is a delivery failure naming the server, never the password', async () => {
    const out = await CHANNELS.email.render(message, { host: '127.0.0.1', port: smtpPort, security: 'none', user: 'patchman', password: 'wrong-pass', from: 'patchman@example.com', to: ['ops@example.com'], tlsVerify: true });
    const r = await send(out, `127.0.0.1:${smtpPort}`);
    expect(r).toMatchObject({ ok: false, error: { code: 'delivery-failed', message: expect.stringContaining(`SMTP 127.0.0.1:${smtpPort}: 535`) } });
    expect(JSON.stringify(r)).not.toContain('wrong-pass');
  });

  it('refuses a mail server outside the allowlist', async () => {
    const out = await CHANNELS.email.render(message, { host: '127.0.0.1', port: smtpPort, security: 'none', from: 'patchman@example.com', to: ['ops@example.com'], tlsVerify: true });
    const before = mails.length;
    expect(await send(out, 'mail.lan:587')).toMatchObject({ ok: false, error: { code: 'not-allowed' } });
    expect(mails.length).toBe(before);
  });
});

describe('notify.send over SMTP with TLS (STARTTLS and implicit), self-signed certificate', () => {
  const servers: SMTPServer[] = [];
  const mails: ParsedMail[] = [];
  async function serve(secure: boolean): Promise<number> {
    // smtp-server's built-in self-signed certificate, as on many LAN mail servers
    const server = new SMTPServer({
      secure,
      authOptional: true,
      onData(stream, session, cb) {
        simpleParser(stream).then((m) => {
          if (!session.secure) return cb(new Error('not over TLS'));
          mails.push(m);
          cb();
        }, cb);
      },
    });
    // the strict client hangs up mid-handshake: expected, not a test failure
    server.on('error', () => {});
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return (server.server.address() as AddressInfo).port;
  }
  afterAll(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));

  for (const security of ['starttls', 'tls'] as const) {
    it(`${security}: delivers over TLS when told to accept the server's certificate, refuses an unverified one by default`, async () => {
      const p = await serve(security === 'tls');
      const base = { host: '127.0.0.1', port: p, security, from: 'patchman@example.com', to: ['ops@example.com'] };
      const strict = await send(await CHANNELS.email.render(message, { ...base, tlsVerify: true }), `127.0.0.1:${p}`);
      expect(strict).toMatchObject({ ok: false, error: { code: 'delivery-failed' } });
      const before = mails.length;
      const lax = await send(await CHANNELS.email.render(message, { ...base, tlsVerify: false }), `127.0.0.1:${p}`);
      expect(lax.ok, JSON.stringify(lax)).toBe(true);
      expect(mails.length).toBe(before + 1);
      expect(mails.at(-1)!.subject).toBe(`[PatchMan] ${message.title}`);
    });
  }
});

