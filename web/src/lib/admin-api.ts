// The admin side of the API: settings, relays (create, rotate, revoke), users, API tokens and
// the audit log, plus the plain words the settings and audit pages show for them. Built on
// `request()` from api.ts.
import type { ApiToken, AuditEntry, Relay, Role, Settings, User } from '$protocol/api.ts';
import { request } from './api.ts';

export type { ApiToken, AuditEntry, Relay, Role, Settings, User };

const enc = encodeURIComponent;

export interface NewUser {
  username: string;
  role: Role;
  /** At least 12 characters; left out for Cloudflare Access users (their user name is their e-mail). */
  password?: string;
}

export interface UserChange {
  role?: Role;
  password?: string;
  disabled?: boolean;
}

export interface AuditQuery {
  /** Entries before this time (ISO): the next page back. */
  before?: string;
  actor?: string;
  limit?: number;
}

function query(params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const adminApi = {
  settings: () => request<Settings>('GET', '/api/settings'),
  saveSettings: (patch: Partial<Settings>) => request<Settings>('PUT', '/api/settings', patch),

  relays: () => request<Relay[]>('GET', '/api/relays'),
  /** A new relay and its token: the token is shown this once. */
  createRelay: (name: string) => request<{ relay: Relay; token: string }>('POST', '/api/relays', { name }),
  /** A new token for the relay; the old one stops working at once (the relay disconnects). */
  rotateRelay: (id: string) => request<{ relay: Relay; token: string }>('POST', `/api/relays/${enc(id)}/rotate`),
  /** Revoke the relay: its socket is closed at once and its token never works again. */
  revokeRelay: (id: string) => request<void>('DELETE', `/api/relays/${enc(id)}`),
  /** Make the key the relay offers its key (the fingerprint says which one was checked). */
  acceptRelayKey: (id: string, fingerprint: string) => request<Relay>('POST', `/api/relays/${enc(id)}/accept-key`, { fingerprint }),

  users: () => request<User[]>('GET', '/api/users'),
  createUser: (body: NewUser) => request<User>('POST', '/api/users', body),
  updateUser: (id: string, patch: UserChange) => request<User>('PATCH', `/api/users/${enc(id)}`, patch),
  deleteUser: (id: string) => request<void>('DELETE', `/api/users/${enc(id)}`),

  tokens: () => request<ApiToken[]>('GET', '/api/tokens'),
  /** A new API token: `secret` (pmt_…) is shown this once. */
  createToken: (name: string, role: Role) => request<{ token: ApiToken; secret: string }>('POST', '/api/tokens', { name, role }),
  revokeToken: (id: string) => request<void>('DELETE', `/api/tokens/${enc(id)}`),

  /** Newest first; page back with `before`. */
  audit: (q: AuditQuery = {}) => request<AuditEntry[]>('GET', `/api/audit${query(q)}`),
};

// ---- roles -----------------------------------------------------------------------------------

/** Lowest first. */
export const ROLES: Role[] = ['viewer', 'operator', 'admin'];

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function atLeast(role: Role | null | undefined, needed: Role): boolean {
  return !!role && RANK[role] >= RANK[needed];
}

export const ROLE_INFO: Record<Role, { label: string; description: string }> = {
  viewer: { label: 'Viewer', description: 'Sees every host, update, job and log; changes nothing.' },
  operator: { label: 'Operator', description: 'A viewer who may also scan, upgrade and reboot hosts.' },
  admin: { label: 'Admin', description: 'Everything: hosts, relays, settings, users, API tokens and the audit log.' },
};

/** A Cloudflare Access user signs in with their e-mail address as the user name. */
export const looksLikeEmail = (s: string) => /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(s);

// ---- what to run with a secret that is shown once ----------------------------------------------
// (a relay's token: relay-setup.ts)

/** A first call with a new API token. */
export function tokenCurlExample(origin: string, secret: string): string {
  return `curl -H "Authorization: Bearer ${secret}" ${origin}/api/hosts`;
}

// ---- the audit log in plain words ------------------------------------------------------------

const ACTIONS: [RegExp, string][] = [
  [/^login$/, 'Signed in'],
  [/^login \(failed\)$/, 'Sign-in failed'],
  [/^login \(throttled\)$/, 'Sign-in refused (too many failures)'],
  [/^setup \(admin created\)$/, 'First admin created'],
  [/^setup \(wrong secret\)$/, 'Setup refused (wrong secret)'],
  [/^POST \/api\/auth\/logout$/, 'Signed out'],
  [/^POST \/api\/hosts$/, 'Added a host'],
  [/^POST \/api\/hosts\/test$/, 'Tested a connection'],
  [/^PATCH \/api\/hosts\/:id$/, 'Edited a host'],
  [/^DELETE \/api\/hosts\/:id$/, 'Removed a host'],
  [/^POST \/api\/hosts\/:id\/scan$/, 'Scanned a host'],
  [/^POST \/api\/hosts\/:id\/test$/, 'Tested a host'],
  [/^POST \/api\/hosts\/:id\/upgrade$/, 'Upgraded a host'],
  [/^POST \/api\/hosts\/:id\/reboot$/, 'Rebooted a host'],
  [/^POST \/api\/hosts\/:id\/accept-host-key$/, 'Accepted a new host key'],
  [/^POST \/api\/scans$/, 'Scanned hosts'],
  [/^POST \/api\/upgrades$/, 'Upgraded several hosts'],
  [/^POST \/api\/relays$/, 'Created a relay'],
  [/^POST \/api\/relays\/:id\/rotate$/, 'Rotated a relay token'],
  [/^DELETE \/api\/relays\/:id$/, 'Revoked a relay'],
  [/^POST \/api\/relays\/:id\/accept-key$/, 'Accepted a new relay key'],
  [/^PUT \/api\/settings$/, 'Changed the settings'],
  [/^POST \/api\/users$/, 'Added a user'],
  [/^PATCH \/api\/users\/:id$/, 'Changed a user'],
  [/^DELETE \/api\/users\/:id$/, 'Deleted a user'],
  [/^POST \/api\/tokens$/, 'Created an API token'],
  [/^DELETE \/api\/tokens\/:id$/, 'Revoked an API token'],
  [/^POST \/api\/stacks\/:id\/check$/, 'Checked a Docker stack'],
  [/^POST \/api\/stacks\/:id\/update$/, 'Updated a Docker stack'],
];

/** "POST /api/hosts/:id/upgrade" → "Upgraded a host"; null when there are no plain words for it. */
export function actionLabel(action: string): string | null {
  for (const [re, label] of ACTIONS) if (re.test(action)) return label;
  return null;
}

/** How a status code reads: the tone of its pill. */
export type StatusTone = 'ok' | 'refused' | 'denied' | 'error';

export function statusTone(status: number): StatusTone {
  if (status >= 200 && status < 400) return 'ok';
  if (status === 401 || status === 403 || status === 429) return 'denied';
  if (status >= 400 && status < 500) return 'refused';
  return 'error';
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'Done',
  400: 'Invalid input',
  401: 'Not signed in',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Refused',
  415: 'Not JSON',
  429: 'Throttled',
  500: 'Server error',
  502: 'Relay error',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? (status >= 500 ? 'Server error' : status >= 400 ? 'Refused' : 'OK');
}

const ACTOR_TYPES: Record<string, string> = { user: 'password', token: 'API token', access: 'Cloudflare Access' };

export function actorTypeLabel(type: string): string {
  return ACTOR_TYPES[type] ?? type;
}
