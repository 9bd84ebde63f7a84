// Channels as stored and as the API shows them: secrets split off and encrypted, never
// returned; the target checked against what the delivery point may reach.
import { eq } from 'drizzle-orm';
import { SECRET_FIELDS, REQUIRED_SECRETS, type ChannelBody, type ChannelType, type NotificationChannel, type NotifyEvent } from '../../protocol/notify.ts';
import type { Env } from '../env.ts';
import { schema, type Db, type NotifyChannelRow } from '../db/index.ts';
import { ApiError } from '../lib/http.ts';
import { channelKind } from './channels/index.ts';
import type { FullConfig } from './channels/kind.ts';
import { decryptSecrets, encryptSecrets } from './secrets.ts';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/** Split a body's config into what may be shown and what is write-only. */
export function splitConfig(type: ChannelType, config: Record<string, unknown>) {
  const plain: Record<string, unknown> = {};
  const secrets: Record<string, string> = {};
  for (const [k, value] of Object.entries(config)) {
    if (value === undefined) continue;
    if (SECRET_FIELDS[type].includes(k)) secrets[k] = String(value);
    else plain[k] = value;
  }
  return { plain, secrets };
}

/** The origin a channel sends to, without path, query or credentials (tokens hide there). */
export function displayTarget(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '';
  }
}

export async function fullConfig(env: Env, row: NotifyChannelRow): Promise<FullConfig<ChannelType>> {
  return { ...row.config, ...(await decryptSecrets(env.NOTIFY_KEY, row.secret)) } as FullConfig<ChannelType>;
}

export async function channelJson(env: Env, row: NotifyChannelRow): Promise<NotificationChannel> {
  const type = row.type as ChannelType;
  let secretsSet: string[] = [];
  let target = '';
  try {
    const full = await fullConfig(env, row);
    secretsSet = SECRET_FIELDS[type].filter((k) => typeof full[k] === 'string');
    target = displayTarget(channelKind(type).endpoint(full));
  } catch {
    // an unreadable secret (NOTIFY_KEY changed): shown as not set, so it is entered again
  }
  return {
    id: row.id,
    name: row.name,
    type,
    via: row.via,
    events: row.events as NotifyEvent[],
    tags: row.tags,
    minSeverity: row.minSeverity,
    enabled: row.enabled,
    maxPerHour: row.maxPerHour,
    config: row.config,
    secretsSet,
    target,
    lastSentAt: iso(row.lastSentAt),
    lastError: row.lastError,
    lastErrorAt: iso(row.lastErrorAt),
    createdAt: new Date(row.createdAt).toISOString(),
  };
}

/** Addresses a Worker in the cloud cannot (and must not try to) reach. */
function isLocalHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.lan') || h.endsWith('.internal') || h.endsWith('.home.arpa')) return true;
  if (!h.includes('.') && !h.includes(':')) return true; // a bare LAN name
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(h);
  if (m) {
    const [a, b] = [Number(m[1]), Number(m[2])];
    return a === 127 || a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  return h === '::1' || h.startsWith('fc') || h.startsWith('fd') || h.startsWith('fe80');
}

/** The field a type's endpoint comes from (for the 400's `field`). */
const ENDPOINT_FIELD: Record<ChannelType, string> = {
  webhook: 'config.url',
  slack: 'config.url',
  discord: 'config.url',
  mattermost: 'config.url',
  teams: 'config.url',
  ntfy: 'config.url',
  gotify: 'config.url',
  telegram: 'config.apiUrl',
  email: 'config.host',
};

/** Check a complete channel (secrets merged) before it is stored: required secrets are set,
 * the delivery point exists and may reach the target. */
export async function checkChannel(env: Env, db: Db, type: ChannelType, via: string, full: FullConfig<ChannelType>): Promise<void> {
  for (const k of REQUIRED_SECRETS[type]) {
    if (typeof full[k] !== 'string' || !full[k]) throw new ApiError(400, 'invalid', `config.${k}: is required`, `config.${k}`);
  }
  if (via !== 'worker') {
    const relay = await db.query.relays.findFirst({ where: eq(schema.relays.id, via) });
    if (!relay || relay.revokedAt) throw new ApiError(400, 'invalid', 'via: no such relay', 'via');
    return; // the relay's own allowlist decides what it reaches
  }
  if (type === 'email') throw new ApiError(400, 'invalid', 'via: e-mail is sent through a relay (choose the relay that can reach your mail server)', 'via');
  // npm start (PATCHMAN_LOCAL), or a Worker told so (NOTIFY_LOOPBACK): loopback receivers are fine
  if (env.PATCHMAN_LOCAL === '1' || env.NOTIFY_LOOPBACK === '1') return;
  const host = new URL(channelKind(type).endpoint(full)).hostname;
  if (isLocalHost(host)) {
    const field = ENDPOINT_FIELD[type];
    throw new ApiError(400, 'invalid', `${field}: ${host} is on your LAN, which the Worker cannot reach: deliver this channel through a relay`, field);
  }
}

/** Store a body (create, or update keeping omitted secrets). */
export async function channelValues(env: Env, db: Db, body: ChannelBody, existing: NotifyChannelRow | null) {
  const type = body.type;
  const { plain, secrets } = splitConfig(type, body.config);
  const kept = existing && existing.type === type ? await decryptSecrets(env.NOTIFY_KEY, existing.secret).catch(() => ({})) : {};
  const allSecrets = { ...kept, ...secrets };
  await checkChannel(env, db, type, body.via, { ...plain, ...allSecrets } as FullConfig<ChannelType>);
  return {
    name: body.name,
    type,
    via: body.via,
    events: body.events,
    tags: body.tags,
    minSeverity: body.minSeverity,
    enabled: body.enabled,
    maxPerHour: body.maxPerHour,
    config: plain,
    secret: Object.keys(allSecrets).length ? await encryptSecrets(env.NOTIFY_KEY, allSecrets) : null,
    updatedAt: Date.now(),
  };
}
