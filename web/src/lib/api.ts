// Thin fetch wrapper for the PatchMan API (same origin). Every non-2xx answer becomes an
// ApiError carrying the `{error:{code,message,field?}}` body the Worker sends.
import type { Host, Job, Relay } from '$protocol/api.ts';

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
    const e = (data as { error?: { code?: unknown; message?: unknown; field?: unknown } } | undefined)?.error;
    if (e && typeof e.message === 'string') {
      throw new ApiError(
        res.status,
        typeof e.code === 'string' ? e.code : 'error',
        e.message,
        typeof e.field === 'string' ? e.field : undefined,
      );
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

export const api = {
  health: () => request<{ ok: boolean; version: string }>('GET', '/api/health'),
  relays: () => request<Relay[]>('GET', '/api/relays'),
  hosts: () => request<Host[]>('GET', '/api/hosts'),
  createHost: (body: NewHost) => request<Host>('POST', '/api/hosts', body),
  deleteHost: (id: string) => request<void>('DELETE', `/api/hosts/${encodeURIComponent(id)}`),
  scanHost: (id: string) => request<{ jobId: string }>('POST', `/api/hosts/${encodeURIComponent(id)}/scan`),
  jobs: (hostId?: string) =>
    request<Job[]>('GET', hostId ? `/api/jobs?hostId=${encodeURIComponent(hostId)}` : '/api/jobs'),
};
