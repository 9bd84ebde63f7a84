// ntfy: POST the text to the topic URL; title, priority, tags and the click link as headers
// (header values must be plain ASCII, so the title is reduced to it), access token as Bearer.
import type { ChannelKind } from './kind.ts';

const PRIORITY = { info: 3, warning: 4, critical: 5 } as const;
const ascii = (s: string) => s.replace(/[^\x20-\x7e]/g, '?');

export const ntfy: ChannelKind<'ntfy'> = {
  endpoint: (c) => c.url,
  async render(m, c) {
    const headers: Record<string, string> = {
      'Content-Type': 'text/plain; charset=utf-8',
      Title: ascii(m.title),
      Priority: String(c.priority ?? PRIORITY[m.severity]),
      Tags: [...(c.tags ?? []), m.event].join(','),
    };
    if (m.link) headers.Click = m.link;
    if (c.token) headers.Authorization = `Bearer ${c.token}`;
    return { kind: 'http', url: c.url, headers, body: m.text };
  },
};
