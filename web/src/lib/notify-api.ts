// The notifications API (channels, their test and delivery log, settings) and the fields
// each channel type's form shows. Secret fields are write-only: the form never gets them back.
import type { ChannelBody, ChannelType, NotificationChannel, NotificationDelivery, NotifySettings, NotifyEvent, Severity } from '$protocol/notify.ts';
import { request } from './api.ts';

export type { ChannelType, NotificationChannel, NotificationDelivery, NotifySettings, NotifyEvent, Severity };
export { CHANNEL_TYPES, NOTIFY_EVENTS, SEVERITIES, SECRET_FIELDS } from '$protocol/notify.ts';

/** The body of a channel create or edit: the API's own type. */
export type ChannelInput = ChannelBody;

const enc = encodeURIComponent;

export const notifyApi = {
  channels: () => request<NotificationChannel[]>('GET', '/api/notifications/channels'),
  create: (body: ChannelInput) => request<NotificationChannel>('POST', '/api/notifications/channels', body),
  update: (id: string, body: ChannelInput) => request<NotificationChannel>('PUT', `/api/notifications/channels/${enc(id)}`, body),
  remove: (id: string) => request<void>('DELETE', `/api/notifications/channels/${enc(id)}`),
  test: (id: string) => request<{ delivery: NotificationDelivery }>('POST', `/api/notifications/channels/${enc(id)}/test`),
  deliveries: (channelId?: string) => request<NotificationDelivery[]>('GET', `/api/notifications/deliveries${channelId ? `?channelId=${enc(channelId)}` : ''}`),
  settings: () => request<NotifySettings>('GET', '/api/notifications/settings'),
  saveSettings: (patch: Partial<NotifySettings>) => request<NotifySettings>('PUT', '/api/notifications/settings', patch),
};

export interface FieldSpec {
  key: string;
  label: string;
  kind: 'text' | 'secret' | 'number' | 'list' | 'select' | 'checkbox';
  placeholder?: string;
  options?: string[];
  help?: string;
}

const URL_SECRET = (placeholder: string): FieldSpec => ({ key: 'url', label: 'Webhook URL', kind: 'secret', placeholder, help: 'It carries a token: stored encrypted, never shown again.' });

export const CHANNEL_FIELDS: Record<ChannelType, FieldSpec[]> = {
  webhook: [URL_SECRET('https://example.com/patchman-hook'), { key: 'secret', label: 'Signing secret (optional)', kind: 'secret', help: 'Signs each body: X-PatchMan-Signature: sha256=HMAC.' }],
  slack: [URL_SECRET('https://hooks.slack.com/services/…')],
  discord: [URL_SECRET('https://discord.com/api/webhooks/…')],
  mattermost: [URL_SECRET('https://mattermost.example.com/hooks/…')],
  teams: [URL_SECRET('https://…logic.azure.com/workflows/…')],
  ntfy: [
    { key: 'url', label: 'Topic URL', kind: 'text', placeholder: 'https://ntfy.lan/patchman' },
    { key: 'token', label: 'Access token (optional)', kind: 'secret' },
    { key: 'priority', label: 'Priority (1–5, optional)', kind: 'number' },
  ],
  gotify: [
    { key: 'url', label: 'Server URL', kind: 'text', placeholder: 'https://gotify.lan' },
    { key: 'token', label: 'Application token', kind: 'secret' },
  ],
  telegram: [
    { key: 'botToken', label: 'Bot token', kind: 'secret', placeholder: '123456:ABC-DEF…' },
    { key: 'chatId', label: 'Chat id', kind: 'text', placeholder: '-1001234567890 or @channel' },
  ],
  email: [
    { key: 'host', label: 'SMTP server', kind: 'text', placeholder: 'mail.lan' },
    { key: 'port', label: 'Port (optional)', kind: 'number', placeholder: '587' },
    { key: 'security', label: 'Security', kind: 'select', options: ['starttls', 'tls', 'none'] },
    { key: 'user', label: 'User (optional)', kind: 'text' },
    { key: 'password', label: 'Password', kind: 'secret' },
    { key: 'from', label: 'From', kind: 'text', placeholder: 'patchman@example.com' },
    { key: 'to', label: 'To (comma-separated)', kind: 'list', placeholder: 'ops@example.com' },
    { key: 'tlsVerify', label: 'Verify the server certificate', kind: 'checkbox' },
  ],
};

export const EVENT_LABEL: Record<NotifyEvent, string> = {
  'security-updates': 'New security updates',
  'reboot-required': 'Host needs a reboot',
  'host-unreachable': 'Host unreachable',
  'host-back': 'Host reachable again',
  'host-key-changed': 'Host key changed',
  'job-failed': 'Patch, reboot or stack update failed',
  'job-succeeded': 'Patch, reboot or stack update succeeded',
  'rollout-finished': 'Rollout finished',
  'relay-down': 'Relay disconnected',
  'relay-back': 'Relay back',
  'images-outdated': 'Newer Docker images',
  digest: 'Digest',
};
