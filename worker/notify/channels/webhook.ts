// Generic webhook: a versioned JSON body (WEBHOOK_SCHEMA / WEBHOOK_VERSION, documented in the
// README), signed with HMAC-SHA256 over the exact body when a secret is set:
// `X-PatchMan-Signature: sha256=<hex>`.
import { SIGNATURE_HEADER, WEBHOOK_SCHEMA, WEBHOOK_VERSION, type NotifyMessage } from '../../../protocol/notify.ts';
import type { ChannelKind } from './kind.ts';

export async function hmacSha256Hex(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(body));
  return [...new Uint8Array(sig)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function webhookBody(m: NotifyMessage) {
  return { schema: WEBHOOK_SCHEMA, version: WEBHOOK_VERSION, event: m.event, severity: m.severity, title: m.title, text: m.text, link: m.link, at: m.at, count: m.count, items: m.items };
}

export const webhook: ChannelKind<'webhook'> = {
  endpoint: (c) => c.url ?? '',
  async render(m, c) {
    const body = JSON.stringify(webhookBody(m));
    const headers: Record<string, string> = { 'Content-Type': 'application/json', 'X-PatchMan-Event': m.event };
    if (c.secret) headers[SIGNATURE_HEADER] = `sha256=${await hmacSha256Hex(c.secret, body)}`;
    return { kind: 'http', url: c.url ?? '', headers, body };
  },
};
