// The dashboard's calls for Proxmox guests: a node's guests, adopting one, rolling a guest
// back to the snapshot an upgrade took, and upgrading a guest without one.
import type { CreatedHost } from '$protocol/api.ts';
import type { Guest } from '$protocol/guests-api.ts';
import { idempotencyKey, request } from './api.ts';

export type { Guest };

const enc = encodeURIComponent;

export const guestApi = {
  guests: (nodeId: string) => request<Guest[]>('GET', `/api/hosts/${enc(nodeId)}/guests`),
  /** The guest becomes a managed host reached through its node; its first scan starts. */
  adopt: (nodeId: string, vmid: number) => request<CreatedHost>('POST', `/api/hosts/${enc(nodeId)}/guests/${vmid}/adopt`, {}),
  /** Restore the snapshot that upgrade job took. */
  rollbackJob: (jobId: string, key = idempotencyKey()) =>
    request<{ jobId: string; snapshot: string }>('POST', `/api/jobs/${enc(jobId)}/rollback`, { confirm: true }, { 'Idempotency-Key': key }),
};
