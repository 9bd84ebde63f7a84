// Thin fetch wrapper for the PatchMan API (same origin). Every non-2xx answer becomes an
// ApiError carrying the `{error:{code,message,field?}}` body the Worker sends.
import * as v from 'valibot';
import {
  ErrorBody,
  HostCreate,
  type BulkResult,
  type ConnectionTestResult,
  type CreatedHost,
  type Host,
  type HostFilter,
  type HostPatch,
  type Job,
  type JobDetail,
  type Me,
  type SessionAnswer,
  type Relay,
  type Settings,
  type SetupState,
  type Stack,
  type Summary,
} from '$protocol/api.ts';
import type { PackageChange, PackageUpdate } from '$protocol/relay.ts';
import { takeEarly } from './early-requests.ts';

export type { BulkResult, JobDetail, Me, PackageChange, PackageUpdate, SetupState, Stack };

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  /** Seconds to wait before trying again (the `Retry-After` header, e.g. a throttled sign-in). */
  readonly retryAfter: number | undefined;

  constructor(status: number, code: string, message: string, field?: string, retryAfter?: number) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

/** Answers 401 for these because of what was sent (a wrong password), not because the
 * session is gone: the caller handles them, nobody is sent to the sign-in page. */
const OWN_401 = new Set(['/api/auth/login', '/api/auth/logout', '/api/auth/me', '/api/setup']);

let onUnauthenticated: (() => void) | null = null;

/** Called (once per 401 answer) when the API says the browser is not signed in (any more). */
export function setUnauthenticatedHandler(fn: (() => void) | null) {
  onUnauthenticated = fn;
}

function retryAfter(res: Response): number | undefined {
  const h = res.headers.get('Retry-After');
  if (!h) return undefined;
  const n = Number(h);
  if (Number.isFinite(n)) return Math.max(0, Math.ceil(n));
  const at = Date.parse(h);
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - Date.now()) / 1000)) : undefined;
}

type Json = object;

/** One API call. Anything but a GET or HEAD is sent as JSON (`{}` when there is no body):
 * the Worker refuses other content types for changes, its defence against cross-site requests. */
export async function request<T>(method: string, path: string, body?: Json, extraHeaders?: Record<string, string>): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
  const reading = method === 'GET' || method === 'HEAD';
  if (!reading) {
    headers['content-type'] = 'application/json';
    body ??= {};
  }
  let res: Response | null = null;
  try {
    // asked for already by /early.js while the page loaded (the dashboard's first requests)
    if (reading) res = (await takeEarly(path)) ?? null;
    res ??= await fetch(path, {
      method,
      headers,
      body: reading || body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (err) {
    throw new ApiError(0, 'network', `Cannot reach the PatchMan server (${(err as Error).message})`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (res.ok) throw new ApiError(res.status, 'bad_response', `${method} ${path}: the server sent something that is not JSON`);
    }
  }
  if (!res.ok) {
    if (res.status === 401 && !OWN_401.has(path.split('?')[0])) onUnauthenticated?.();
    const parsed = v.safeParse(ErrorBody, data);
    if (parsed.success) {
      const e = parsed.output.error;
      throw new ApiError(res.status, e.code, e.message, e.field, retryAfter(res));
    }
    throw new ApiError(res.status, 'http_' + res.status, `${method} ${path} failed: ${res.status} ${res.statusText}`, undefined, retryAfter(res));
  }
  return data as T;
}

/** The body of POST /api/hosts, as the API's schema takes it. */
export type NewHost = v.InferInput<typeof HostCreate>;

export interface JobQuery {
  hostId?: string;
  kind?: Job['kind'];
  status?: Job['status'];
  /** Jobs created on or after this day (YYYY-MM-DD) or time (ISO). */
  since?: string;
  /** Jobs created before this time (ISO): the next page back. */
  before?: string;
  limit?: number;
}

/** A fresh `Idempotency-Key`: one per confirmation dialog opening, so a double click or a
 * retried request starts one job, never two. crypto.randomUUID needs a secure context (not
 * plain http on a LAN address), so fall back to getRandomValues there. */
export function idempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') {
    try {
      return crypto.randomUUID();
    } catch {
      // not a secure context
    }
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const idem = (key: string) => ({ 'Idempotency-Key': key });

export interface ConnectionTest {
  address: string;
  port?: number;
  user?: string;
  relayId?: string;
}

const enc = encodeURIComponent;

function query(params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export interface SetupBody {
  username: string;
  password: string;
  setupSecret?: string;
}

export const api = {
  health: () => request<{ ok: boolean; version: string }>('GET', '/api/health'),
  /** Public: is there an admin yet, and does creating one need the setup secret? */
  setupState: () => request<SetupState>('GET', '/api/setup'),
  /** First run: create the admin (and sign in as it). */
  setup: (body: SetupBody) => request<Me>('POST', '/api/setup', body),
  login: (username: string, password: string) => request<Me>('POST', '/api/auth/login', { username, password }),
  logout: () => request<void>('POST', '/api/auth/logout'),
  me: () => request<Me>('GET', '/api/auth/me'),
  session: () => request<SessionAnswer>('GET', '/api/auth/session'),
  relays: () => request<Relay[]>('GET', '/api/relays'),
  /** Pair a relay: its token is in this answer only (the Worker keeps its hash). */
  createRelay: (name: string) => request<{ relay: Relay; token: string }>('POST', '/api/relays', { name }),
  summary: () => request<Summary>('GET', '/api/summary'),
  hosts: (filter?: HostFilter) => request<Host[]>('GET', `/api/hosts${query({ filter })}`),
  host: (id: string) => request<Host>('GET', `/api/hosts/${enc(id)}`),
  createHost: (body: NewHost) => request<CreatedHost>('POST', '/api/hosts', body),
  updateHost: (id: string, patch: HostPatch) => request<Host>('PATCH', `/api/hosts/${enc(id)}`, patch),
  deleteHost: (id: string) => request<void>('DELETE', `/api/hosts/${enc(id)}`),
  hostUpdates: (id: string) => request<PackageUpdate[]>('GET', `/api/hosts/${enc(id)}/updates`),
  scanHost: (id: string) => request<{ jobId: string }>('POST', `/api/hosts/${enc(id)}/scan`),
  /** Scan the named hosts, or every host when `hostIds` is omitted. */
  scanMany: (hostIds?: string[]) => request<{ jobIds: string[] }>('POST', '/api/scans', hostIds ? { hostIds } : {}),
  testConnection: (body: ConnectionTest) => request<ConnectionTestResult>('POST', '/api/hosts/test', body),
  testHost: (id: string) => request<ConnectionTestResult>('POST', `/api/hosts/${enc(id)}/test`),
  /** Trust the new SSH host key the host offered (admins); a scan starts right away. */
  acceptHostKey: (id: string, fingerprint: string) =>
    request<{ host: Host; jobId: string }>('POST', `/api/hosts/${enc(id)}/accept-host-key`, { fingerprint }),
  jobs: (q: JobQuery | string = {}) => request<Job[]>('GET', `/api/jobs${query(typeof q === 'string' ? { hostId: q } : q)}`),
  /** GET /api/jobs: newest first, without logs; page back with `before`. */
  listJobs: (q: JobQuery = {}) => request<Job[]>('GET', `/api/jobs${query(q)}`),
  /** GET /api/jobs/:id: one job with its whole (capped) log. */
  getJob: (id: string) => request<JobDetail>('GET', `/api/jobs/${enc(id)}`),
  /** Upgrade one host: the named packages (apt hosts that are not Proxmox), or everything
   * when `packages` is undefined. `withoutSnapshot`: a Proxmox guest whose storage cannot
   * snapshot, upgraded anyway. */
  upgradeHost: (id: string, packages: string[] | undefined, key: string, withoutSnapshot = false) =>
    request<{ jobId: string }>(
      'POST',
      `/api/hosts/${enc(id)}/upgrade`,
      { confirm: true, ...(packages ? { packages } : {}), ...(withoutSnapshot ? { snapshot: false } : {}) },
      idem(key),
    ),
  rebootHost: (id: string, key: string) => request<{ jobId: string }>('POST', `/api/hosts/${enc(id)}/reboot`, { confirm: true }, idem(key)),
  /** Full upgrades of several hosts; each host's answer is a job or the reason it was refused. */
  upgradeHosts: (hostIds: string[], key: string) => request<BulkResult>('POST', '/api/upgrades', { confirm: true, hostIds }, idem(key)),
  /** Docker Compose stacks as the last docker scans found them (one host's, or all). */
  stacks: (hostId?: string) => request<Stack[]>('GET', `/api/stacks${query({ hostId })}`),
  stack: (id: string) => request<Stack>('GET', `/api/stacks/${enc(id)}`),
  /** Look at one stack's images again (registry HEAD requests; nothing is pulled). */
  checkStack: (id: string) => request<{ jobId: string }>('POST', `/api/stacks/${enc(id)}/check`),
  /** `docker compose pull` then `up -d` for the stack, or only the named services. */
  updateStack: (id: string, services: string[] | undefined, key: string) =>
    request<{ jobId: string }>('POST', `/api/stacks/${enc(id)}/update`, services ? { confirm: true, services } : { confirm: true }, idem(key)),
  settings: () => request<Settings>('GET', '/api/settings'),
  saveSettings: (patch: Partial<Settings>) => request<Settings>('PUT', '/api/settings', patch),
};

/** The message of a field error without the "field: " prefix the API puts in front. */
export function fieldMessage(err: ApiError): string {
  if (err.field && err.message.startsWith(`${err.field}: `)) return err.message.slice(err.field.length + 2);
  return err.message;
}

/** Waits for a removal (DELETE) whose target may be gone already: a 404 counts as done. */
export async function goneAnyway(removal: Promise<unknown>): Promise<void> {
  try {
    await removal;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
}
