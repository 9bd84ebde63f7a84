// Discord webhook: one embed (title, description, link, a colour per severity).
import type { ChannelKind } from './kind.ts';
import { jsonPost } from './kind.ts';

const COLOR = { info: 0x3b82f6, warning: 0xf59e0b, critical: 0xef4444 } as const;

export const discord: ChannelKind<'discord'> = {
  endpoint: (c) => c.url ?? '',
  render: async (m, c) =>
    jsonPost(c.url ?? '', {
      username: 'PatchMan',
      embeds: [{ title: m.title.slice(0, 256), description: m.text.slice(0, 4000), ...(m.link ? { url: m.link } : {}), color: COLOR[m.severity], timestamp: m.at }],
    }),
};
