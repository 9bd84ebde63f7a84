// Every channel type, one line each: adding a type is a file here and a line below (plus its
// settings in protocol/notify.ts).
import type { ChannelType } from '../../../protocol/notify.ts';
import type { ChannelKind } from './kind.ts';
import { webhook } from './webhook.ts';
import { slack } from './slack.ts';
import { discord } from './discord.ts';
import { mattermost } from './mattermost.ts';
import { teams } from './teams.ts';
import { ntfy } from './ntfy.ts';
import { gotify } from './gotify.ts';
import { telegram } from './telegram.ts';
import { email } from './email.ts';

export const CHANNELS: { [T in ChannelType]: ChannelKind<T> } = {
  webhook,
  slack,
  discord,
  mattermost,
  teams,
  ntfy,
  gotify,
  telegram,
  email,
};

export function channelKind(type: ChannelType): ChannelKind<ChannelType> {
  return CHANNELS[type] as ChannelKind<ChannelType>;
}
