// Telegram bot: sendMessage to a chat (plain text: nothing to escape).
import type { ChannelKind } from './kind.ts';
import { jsonPost, plainText } from './kind.ts';

const API = 'https://api.telegram.org';

export const telegram: ChannelKind<'telegram'> = {
  endpoint: (c) => `${(c.apiUrl ?? API).replace(/\/+$/, '')}/bot${c.botToken ?? ''}/sendMessage`,
  render: async (m, c) => jsonPost(telegram.endpoint(c), { chat_id: c.chatId, text: plainText(m).slice(0, 4096), disable_web_page_preview: true }),
};
