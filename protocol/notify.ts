// Notifications: event names, channel types and their settings, what the API returns, and
// the message a flush produces. The Worker validates channel bodies with these; the
// dashboard imports the types; the relay validates `notify.send` (protocol/relay.ts) with
// NotifyOutgoing.
import * as v from 'valibot';
import { Id, Label, Tag, HostAddress, Port } from './fields.ts';

/** Every event a channel can subscribe to (DESIGN.md, second round). */
export const NOTIFY_EVENTS = [
  'security-updates',
  'reboot-required',
  'host-unreachable',
  'host-back',
  'host-key-changed',
  'job-failed',
  'job-succeeded',
  'rollout-finished',
  'relay-down',
  'relay-back',
  'images-outdated',
  'digest',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

/** How much each event matters (a channel's minimum severity filters on this). */
export const EVENT_SEVERITY: Record<NotifyEvent, Severity> = {
  'security-updates': 'warning',
  'reboot-required': 'warning',
  'host-unreachable': 'critical',
  'host-back': 'info',
  'host-key-changed': 'critical',
  'job-failed': 'critical',
  'job-succeeded': 'info',
  'rollout-finished': 'info',
  'relay-down': 'critical',
  'relay-back': 'info',
  'images-outdated': 'info',
  digest: 'info',
};

export const CHANNEL_TYPES = ['webhook', 'slack', 'discord', 'mattermost', 'teams', 'ntfy', 'gotify', 'telegram', 'email'] as const;
export type ChannelType = (typeof CHANNEL_TYPES)[number];

// ---- channel settings ----------------------------------------------------------------------

const HttpUrl = v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.url('must be a URL'),
  v.regex(/^https?:\/\//i, 'must be an http:// or https:// URL'),
  v.maxLength(2000, 'must be at most 2000 characters'),
);
const Secret = v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(4000, 'is too long'));
const Priority = (min: number, max: number) =>
  v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(min, `must be between ${min} and ${max}`), v.maxValue(max, `must be between ${min} and ${max}`));

/** An e-mail address as people write them; the SMTP server has the last word. */
export const EmailAddress = v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.maxLength(254, 'must be at most 254 characters'),
  v.regex(/^[^\s@<>(),;:"\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/, 'must be an e-mail address like ops@example.com'),
);

/** Per type: its settings. Fields named in SECRET_FIELDS are write-only (stored encrypted,
 * never returned); on an update an omitted secret keeps its stored value. */
export const CHANNEL_CONFIG = {
  webhook: v.strictObject({ url: v.optional(HttpUrl), secret: v.optional(Secret) }),
  slack: v.strictObject({ url: v.optional(HttpUrl) }),
  discord: v.strictObject({ url: v.optional(HttpUrl) }),
  mattermost: v.strictObject({ url: v.optional(HttpUrl) }),
  teams: v.strictObject({ url: v.optional(HttpUrl) }),
  ntfy: v.strictObject({
    /** The topic URL, e.g. https://ntfy.lan/patchman */
    url: HttpUrl,
    token: v.optional(Secret),
    priority: v.optional(Priority(1, 5)),
    tags: v.optional(v.pipe(v.array(v.pipe(v.string(), v.regex(/^[a-z0-9_+-]{1,32}$/i, 'ntfy tags are letters, digits, _ + -'))), v.maxLength(8))),
  }),
  gotify: v.strictObject({ url: HttpUrl, token: v.optional(Secret), priority: v.optional(Priority(0, 10)) }),
  telegram: v.strictObject({
    botToken: v.optional(v.pipe(Secret, v.regex(/^\d+:[A-Za-z0-9_-]+$/, 'must be a bot token like 123456:ABC-DEF…'))),
    chatId: v.pipe(v.string('must be a string'), v.regex(/^-?\d{1,20}$|^@[A-Za-z0-9_]{5,32}$/, 'must be a chat id (a number) or @channelname')),
    /** The Bot API's address (default https://api.telegram.org; a local Bot API server works too). */
    apiUrl: v.optional(HttpUrl),
  }),
  email: v.strictObject({
    host: HostAddress,
    port: v.optional(Port),
    /** tls: implicit TLS (465); starttls: plain then STARTTLS, required (587); none: plain (LAN relays only). */
    security: v.optional(v.picklist(['tls', 'starttls', 'none'], 'must be tls, starttls or none'), 'starttls'),
    user: v.optional(v.pipe(v.string('must be a string'), v.maxLength(254))),
    password: v.optional(Secret),
    from: EmailAddress,
    to: v.pipe(v.array(EmailAddress, 'must be a list of e-mail addresses'), v.minLength(1, 'needs at least one address'), v.maxLength(20, 'at most 20 addresses')),
    /** false: accept the server's self-signed certificate (common on a LAN mail server). */
    tlsVerify: v.optional(v.boolean('must be true or false'), true),
  }),
} as const satisfies Record<ChannelType, v.GenericSchema>;

export const SECRET_FIELDS: Record<ChannelType, readonly string[]> = {
  webhook: ['url', 'secret'],
  slack: ['url'],
  discord: ['url'],
  mattermost: ['url'],
  teams: ['url'],
  ntfy: ['token'],
  gotify: ['token'],
  telegram: ['botToken'],
  email: ['password'],
};
/** Secrets a channel cannot work without (required when it is created). */
export const REQUIRED_SECRETS: Record<ChannelType, readonly string[]> = {
  webhook: ['url'],
  slack: ['url'],
  discord: ['url'],
  mattermost: ['url'],
  teams: ['url'],
  ntfy: [],
  gotify: ['token'],
  telegram: ['botToken'],
  email: [],
};

export type ChannelConfig<T extends ChannelType = ChannelType> = v.InferOutput<(typeof CHANNEL_CONFIG)[T]>;

const Common = {
  name: Label,
  /** 'worker' (internet endpoints) or the id of the relay that delivers on its LAN. */
  via: v.optional(v.union([v.literal('worker'), Id], 'must be "worker" or a relay id'), 'worker'),
  events: v.pipe(v.array(v.picklist(NOTIFY_EVENTS, `must be one of ${NOTIFY_EVENTS.join(', ')}`), 'must be a list of event names'), v.maxLength(NOTIFY_EVENTS.length)),
  /** Only hosts with one of these tags (events about no host always pass). */
  tags: v.optional(v.pipe(v.array(Tag, 'must be a list of tags'), v.maxLength(32, 'at most 32 tags')), []),
  minSeverity: v.optional(v.picklist(SEVERITIES, 'must be info, warning or critical'), 'info'),
  enabled: v.optional(v.boolean('must be true or false'), true),
  /** Per-channel rate limit: messages beyond this per hour wait for the next hour. */
  maxPerHour: v.optional(Priority(1, 1000), 30),
};

const channelBody = <T extends ChannelType>(type: T) => v.strictObject({ type: v.literal(type), ...Common, config: CHANNEL_CONFIG[type] });

/** POST /api/notifications/channels and PUT …/:id (on PUT an omitted secret keeps its value). */
export const ChannelBody = v.variant(
  'type',
  CHANNEL_TYPES.map((t) => channelBody(t)) as unknown as [ReturnType<typeof channelBody<'webhook'>>],
  `type: must be one of ${CHANNEL_TYPES.join(', ')}`,
);
export type ChannelBody = { type: ChannelType; name: string; via: string; events: NotifyEvent[]; tags: string[]; minSeverity: Severity; enabled: boolean; maxPerHour: number; config: Record<string, unknown> };

/** A channel as the API returns it: never a secret, only which ones are set. */
export interface NotificationChannel {
  id: string;
  name: string;
  type: ChannelType;
  via: string;
  events: NotifyEvent[];
  tags: string[];
  minSeverity: Severity;
  enabled: boolean;
  maxPerHour: number;
  /** The non-secret settings. */
  config: Record<string, unknown>;
  /** Names of the secret settings that are stored (their values never leave the Worker). */
  secretsSet: string[];
  /** Where messages go, without path, query or credentials: `https://hooks.slack.com`, `smtp://mail.lan:587`. */
  target: string;
  lastSentAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  createdAt: string;
}

export const DELIVERY_STATUSES = ['pending', 'sent', 'failed'] as const;
export interface NotificationDelivery {
  id: string;
  channelId: string;
  event: NotifyEvent | 'test';
  status: (typeof DELIVERY_STATUSES)[number];
  attempts: number;
  title: string;
  error: string | null;
  at: string;
  sentAt: string | null;
  nextAttemptAt: string | null;
}

export const DeliveryQuery = v.strictObject({
  channelId: v.optional(Id),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, 'must be a number up to 999'), v.transform(Number)), '100'),
});

/** GET/PUT /api/notifications/settings */
export const NotifySettings = v.object({
  /** The dashboard's address as people open it; messages link to hosts and jobs under it. */
  publicUrl: v.pipe(v.string('must be a string'), v.trim(), v.regex(/^$|^https?:\/\/[^\s/]+(\/[^\s]*)?$/i, 'must be empty or an http(s) URL like https://patchman.example.com')),
  /** host-unreachable after this many failed scans in a row. */
  unreachableAfterScans: Priority(1, 100),
  /** relay-down after the relay has been gone this long. */
  relayDownMinutes: Priority(1, 1440),
  digest: v.picklist(['off', 'daily', 'weekly'], 'must be off, daily or weekly'),
  /** Hour of day (UTC) the digest goes out. */
  digestHourUtc: Priority(0, 23),
});
export type NotifySettings = v.InferOutput<typeof NotifySettings>;
export const NotifySettingsPatch = v.strictObject(v.partial(NotifySettings).entries);
export const DEFAULT_NOTIFY_SETTINGS: NotifySettings = { publicUrl: '', unreachableAfterScans: 2, relayDownMinutes: 10, digest: 'off', digestHourUtc: 8 };

// ---- the message --------------------------------------------------------------------------

/** One aggregated message: all events of one name within a flush window. */
export interface NotifyMessage {
  event: NotifyEvent | 'test';
  severity: Severity;
  title: string;
  /** Plain text, several lines. */
  text: string;
  /** Where to look in the dashboard (absent when no public URL is known). */
  link: string | null;
  at: string;
  /** How many facts this message reports (hosts, jobs, relays). */
  count: number;
  /** The worst first, at most MAX_ITEMS. */
  items: { hostId?: string; jobId?: string; relayId?: string; name: string; detail: string; link: string | null }[];
}

/** The generic webhook's body (versioned: receivers check `schema` and `version`). */
export const WEBHOOK_SCHEMA = 'patchman.notification';
export const WEBHOOK_VERSION = 1;
export const SIGNATURE_HEADER = 'X-PatchMan-Signature';

// ---- what a relay is asked to send (notify.send) --------------------------------------------

export const NotifyOutgoing = v.variant('kind', [
  v.strictObject({
    kind: v.literal('http'),
    url: HttpUrl,
    headers: v.record(v.pipe(v.string(), v.regex(/^[A-Za-z0-9-]{1,64}$/)), v.pipe(v.string(), v.maxLength(8000), v.regex(/^[^\r\n]*$/))),
    body: v.pipe(v.string(), v.maxLength(256 * 1024)),
  }),
  v.strictObject({
    kind: v.literal('smtp'),
    server: v.strictObject({
      host: HostAddress,
      port: Port,
      security: v.picklist(['tls', 'starttls', 'none']),
      user: v.optional(v.pipe(v.string(), v.maxLength(254))),
      password: v.optional(v.pipe(v.string(), v.maxLength(4000))),
      tlsVerify: v.optional(v.boolean(), true),
    }),
    mail: v.strictObject({
      from: EmailAddress,
      to: v.pipe(v.array(EmailAddress), v.minLength(1), v.maxLength(20)),
      subject: v.pipe(v.string(), v.maxLength(998), v.regex(/^[^\r\n]*$/)),
      text: v.pipe(v.string(), v.maxLength(256 * 1024)),
    }),
  }),
]);
export type NotifyOutgoing = v.InferOutput<typeof NotifyOutgoing>;
export const NotifySendResult = v.object({ status: v.number(), detail: v.pipe(v.string(), v.maxLength(500)) });
