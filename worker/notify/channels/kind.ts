// What every channel type provides: where it sends (for display and the Worker's target
// check) and how a message becomes the request for its receiver.
import type { ChannelConfig, ChannelType, NotifyMessage, NotifyOutgoing } from '../../../protocol/notify.ts';

/** A channel's settings with its secrets decrypted (only ever inside the Worker). */
export type FullConfig<T extends ChannelType> = ChannelConfig<T> & Record<string, unknown>;

export interface ChannelKind<T extends ChannelType> {
  /** The URL (or smtp://host:port) messages go to, credentials and all: parsed for the
   * target check, shown only as its origin. */
  endpoint(config: FullConfig<T>): string;
  render(message: NotifyMessage, config: FullConfig<T>): Promise<NotifyOutgoing>;
}

export function jsonPost(url: string, body: unknown, headers: Record<string, string> = {}): NotifyOutgoing {
  return { kind: 'http', url, headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/** Title, text and link as plain lines (chat services that take one text). */
export function plainText(m: NotifyMessage): string {
  return [m.title, '', m.text, ...(m.link ? ['', m.link] : [])].join('\n');
}
