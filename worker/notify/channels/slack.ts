// Slack incoming webhook: `text` (mrkdwn), with the link as <url|label>.
import type { ChannelKind } from './kind.ts';
import { jsonPost } from './kind.ts';

export const slack: ChannelKind<'slack'> = {
  endpoint: (c) => c.url ?? '',
  render: async (m, c) => jsonPost(c.url ?? '', { text: `*${m.title}*\n${m.text}${m.link ? `\n<${m.link}|Open in PatchMan>` : ''}` }),
};
