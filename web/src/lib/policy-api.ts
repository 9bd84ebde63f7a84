// The dashboard's calls for patch policies and rollouts (`/api/policies`, `/api/rollouts`).
import type { Policy, PolicyBody, Preview, Rollout } from '$protocol/policy.ts';
import { request } from './api.ts';

export type { Policy, PolicyBody, Preview, Rollout };

/** What the editor sends: the body, with optional fields left out. */
export type PolicyInput = Partial<PolicyBody> & Pick<PolicyBody, 'name' | 'selector'>;

const enc = encodeURIComponent;

export const policyApi = {
  list: () => request<Policy[]>('GET', '/api/policies'),
  get: (id: string) => request<Policy>('GET', `/api/policies/${enc(id)}`),
  create: (body: PolicyInput) => request<Policy>('POST', '/api/policies', body),
  update: (id: string, body: PolicyInput) => request<Policy>('PUT', `/api/policies/${enc(id)}`, body),
  remove: (id: string) => request<void>('DELETE', `/api/policies/${enc(id)}`),
  preview: (id: string) => request<Preview>('POST', `/api/policies/${enc(id)}/preview`),
  run: (id: string) => request<{ rolloutId: string }>('POST', `/api/policies/${enc(id)}/run`),
  rollouts: (policyId?: string) => request<Rollout[]>('GET', `/api/rollouts${policyId ? `?policyId=${enc(policyId)}` : ''}`),
  rollout: (id: string) => request<Rollout>('GET', `/api/rollouts/${enc(id)}`),
  control: (id: string, action: 'pause' | 'resume' | 'cancel') => request<Rollout>('POST', `/api/rollouts/${enc(id)}/${action}`),
};

/** Colours of a rollout's and a rollout host's status. */
export const ROLLOUT_TONE: Record<string, string> = {
  pending: 'bg-slate-700/60 text-slate-200',
  running: 'bg-sky-500/15 text-sky-300',
  paused: 'bg-amber-500/15 text-amber-300',
  done: 'bg-emerald-500/15 text-emerald-300',
  halted: 'bg-rose-500/15 text-rose-300',
  cancelled: 'bg-slate-700/60 text-slate-300',
  'window-closed': 'bg-amber-500/15 text-amber-300',
  waiting: 'bg-slate-800 text-slate-400',
  rescanning: 'bg-sky-500/10 text-sky-300',
  'reboot-waiting': 'bg-violet-500/15 text-violet-300',
  rebooting: 'bg-violet-500/15 text-violet-300',
  succeeded: 'bg-emerald-500/15 text-emerald-300',
  failed: 'bg-rose-500/15 text-rose-300',
  skipped: 'bg-slate-800 text-slate-400',
  'not-started': 'bg-slate-800 text-slate-500',
};

/** "tags web, db · apt hosts" */
export function selectorText(s: Policy['selector']): string {
  const parts = [];
  if (s.tags?.length) parts.push(`tag ${s.tags.join(', ')}`);
  if (s.packageManagers?.length) parts.push(`${s.packageManagers.join('/')} hosts`);
  if (s.hostIds?.length) parts.push(`${s.hostIds.length} named host${s.hostIds.length === 1 ? '' : 's'}`);
  if (s.relayIds?.length) parts.push(`${s.relayIds.length} relay${s.relayIds.length === 1 ? '' : 's'}`);
  return parts.join(' · ');
}
