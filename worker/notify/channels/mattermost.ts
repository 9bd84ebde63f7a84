// Mattermost incoming webhook: Markdown `text`.
import type { ChannelKind } from './kind.ts';
import { jsonPost } from './kind.ts';

export const mattermost: ChannelKind<'mattermost'> = {
  endpoint: (c) => c.url ?? '',
  render: async (m, c) => jsonPost(c.url ?? '', { username: 'PatchMan', text: `#### ${m.title}\n${m.text}${m.link ? `\n[Open in PatchMan](${m.link})` : ''}` }),
};
