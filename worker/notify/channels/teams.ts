// Microsoft Teams (Workflows "post to a channel when a webhook request is received"): a
// message with one Adaptive Card.
import type { ChannelKind } from './kind.ts';
import { jsonPost } from './kind.ts';

export const teams: ChannelKind<'teams'> = {
  endpoint: (c) => c.url ?? '',
  render: async (m, c) =>
    jsonPost(c.url ?? '', {
      type: 'message',
      attachments: [
        {
          contentType: 'application/vnd.microsoft.card.adaptive',
          content: {
            $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
            type: 'AdaptiveCard',
            version: '1.4',
            body: [
              { type: 'TextBlock', text: m.title, weight: 'Bolder', size: 'Medium', wrap: true },
              { type: 'TextBlock', text: m.text, wrap: true },
            ],
            actions: m.link ? [{ type: 'Action.OpenUrl', title: 'Open in PatchMan', url: m.link }] : [],
          },
        },
      ],
    }),
};
