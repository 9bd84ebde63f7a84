// API bodies and responses for Proxmox guests (GET /api/hosts/:id/guests, adoption, rollback).
// The relay's side of the contract is protocol/proxmox.ts.
import * as v from 'valibot';
import { GUEST_KINDS } from './proxmox.ts';
import { Id, Label, Tag } from './fields.ts';

/** One guest of a Proxmox VE node, as the node's last scan listed it. */
export const Guest = v.object({
  vmid: v.number(),
  type: v.picklist(GUEST_KINDS),
  name: v.string(),
  status: v.string(),
  node: v.string(),
  /** Can its storage take a snapshot; if not, why. */
  snapshots: v.boolean(),
  snapshotReason: v.nullable(v.string()),
  /** Can PatchMan reach inside it through the node; if not, why. */
  reachable: v.boolean(),
  reachReason: v.nullable(v.string()),
  ostype: v.nullable(v.string()),
  /** The managed host it was adopted as, or null. */
  hostId: v.nullable(v.string()),
  seenAt: v.string(),
});
export type Guest = v.InferOutput<typeof Guest>;

/** POST /api/hosts/:id/guests/:vmid/adopt (every field optional): the new host is named
 * after the guest and scanned at once unless told otherwise. */
export const AdoptRequest = v.strictObject({
  name: v.optional(Label),
  tags: v.optional(v.pipe(v.array(Tag, 'must be a list of tags'), v.maxLength(32, 'at most 32 tags')), []),
  scan: v.optional(v.boolean('must be true or false'), true),
});
export type AdoptRequest = v.InferOutput<typeof AdoptRequest>;

/** The `:vmid` of a guest path. */
export const VmidParam = v.pipe(v.string(), v.regex(/^\d{1,9}$/, 'must be a VMID (a whole number)'), v.transform(Number), v.minValue(100, 'must be a VMID (100 or more)'));

/** POST /api/jobs/:id/rollback · POST /api/hosts/:id/rollback (`jobId`: which upgrade's
 * snapshot; default the newest upgrade of the host that took one). */
export const RollbackRequest = v.strictObject({
  confirm: v.literal(true, 'must be true: the dashboard asks the operator to confirm first'),
  jobId: v.optional(Id),
});
