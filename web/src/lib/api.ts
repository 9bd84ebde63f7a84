// Thin fetch wrapper for the PatchMan API (same origin). Every non-2xx answer becomes an
// ApiError carrying the `{error:{code,message,field?}}` body the Worker sends.
import * as v from 'valibot';
import { ErrorBody, type ConnectionTestResult, type Host, type HostFilter, type HostPatch, type Job, type Relay, type Settings, type Summary } from '$protocol/api.ts';
import type { PackageUpdate } from '$protocol/relay.ts';

export type { PackageUpdate };

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;

  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

type Json = object;

export async function request<T>(method: string, path: string, body?: Json): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
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
    const parsed = v.safeParse(ErrorBody, data);
    if (parsed.success) {
      const e = parsed.output.error;
      throw new ApiError(res.status, e.code, e.message, e.field);
    }
    throw new ApiError(res.status, 'http_' + res.status, `${method} ${path} failed: ${res.status} ${res.statusText}`);
  }
  return data as T;
}

export interface NewHost {
  name?: string;
  address: string;
  port?: number;
  user?: string;
  relayId?: string;
  tags?: string[];
  monitorOnly?: boolean;
}

export interface JobQuery {
  hostId?: string;
  kind?: Job['kind'];
  status?: Job['status'];
  limit?: number;
}

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

export const api = {
  health: () => request<{ ok: boolean; version: string }>('GET', '/api/health'),
  relays: () => request<Relay[]>('GET', '/api/relays'),
  summary: () => request<Summary>('GET', '/api/summary'),
  hosts: (filter?: HostFilter) => request<Host[]>('GET', `/api/hosts${query({ filter })}`),
  host: (id: string) => request<Host>('GET', `/api/hosts/${enc(id)}`),
  createHost: (body: NewHost) => request<Host>('POST', '/api/hosts', body),
  updateHost: (id: string, patch: HostPatch) => request<Host>('PATCH', `/api/hosts/${enc(id)}`, patch),
  deleteHost: (id: string) => request<void>('DELETE', `/api/hosts/${enc(id)}`),
  hostUpdates: (id: string) => request<PackageUpdate[]>('GET', `/api/hosts/${enc(id)}/updates`),
  scanHost: (id: string) => request<{ jobId: string }>('POST', `/api/hosts/${enc(id)}/scan`),
  /** Scan the named hosts, or every host when `hostIds` is omitted. */
  scanMany: (hostIds?: string[]) => request<{ jobIds: string[] }>('POST', '/api/scans', hostIds ? { hostIds } : {}),
  testConnection: (body: ConnectionTest) => request<ConnectionTestResult>('POST', '/api/hosts/test', body),
  testHost: (id: string) => request<ConnectionTestResult>('POST', `/api/hosts/${enc(id)}/test`),
  jobs: (q: JobQuery | string = {}) => request<Job[]>('GET', `/api/jobs${query(typeof q === 'string' ? { hostId: q } : q)}`),
  settings: () => request<Settings>('GET', '/api/settings'),
  saveSettings: (patch: Partial<Settings>) => request<Settings>('PUT', '/api/settings', patch),
};

/** The message of a field error without the "field: " prefix the API puts in front. */
export function fieldMessage(err: ApiError): string {
  if (err.field && err.message.startsWith(`${err.field}: `)) return err.message.slice(err.field.length + 2);
  return err.message;
}
