// Gotify: POST <server>/message with the application token in X-Gotify-Key.
import type { ChannelKind } from './kind.ts';
import { jsonPost } from './kind.ts';

const PRIORITY = { info: 4, warning: 6, critical: 8 } as const;

export const gotify: ChannelKind<'gotify'> = {
  endpoint: (c) => c.url,
  render: async (m, c) =>
    jsonPost(
      `${c.url.replace(/\/+$/, '')}/message`,
      {
        title: m.title,
        message: m.text + (m.link ? `\n\n${m.link}` : ''),
        priority: c.priority ?? PRIORITY[m.severity],
        ...(m.link ? { extras: { 'client::notification': { click: { url: m.link } } } } : {}),
      },
      { 'X-Gotify-Key': c.token ?? '' },
    ),
};
