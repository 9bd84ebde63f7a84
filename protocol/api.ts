// API bodies and responses. The Worker validates request bodies with these schemas; the
// dashboard imports the response types from here.
import * as v from 'valibot';
import { HostAddress, Port, PosixUser, Label, Tag, Id } from './fields.ts';
import { PackageManagerName } from './relay.ts';

export const HostCreate = v.strictObject({
  name: v.optional(Label),
  address: HostAddress,
  port: v.optional(Port, 22),
  user: v.optional(PosixUser, 'root'),
  relayId: v.optional(Id),
  tags: v.optional(v.pipe(v.array(Tag, 'must be a list of tags'), v.maxLength(32, 'at most 32 tags')), []),
  monitorOnly: v.optional(v.boolean('must be true or false'), false),
});
export type HostCreate = v.InferOutput<typeof HostCreate>;

export const RelayCreate = v.strictObject({ name: Label });

export const HostStatus = v.picklist(['unknown', 'online', 'offline', 'error']);
export const JobStatus = v.picklist(['queued', 'dispatched', 'running', 'succeeded', 'failed', 'cancelled', 'lost']);
export const JobKind = v.picklist(['scan']);

export const Relay = v.object({
  id: v.string(),
  name: v.string(),
  connected: v.boolean(),
  publicKey: v.nullable(v.string()),
  version: v.nullable(v.string()),
  hostname: v.nullable(v.string()),
  lastSeenAt: v.nullable(v.string()),
  createdAt: v.string(),
});
export type Relay = v.InferOutput<typeof Relay>;

export const Host = v.object({
  id: v.string(),
  name: v.string(),
  address: v.string(),
  port: v.number(),
  user: v.string(),
  relayId: v.nullable(v.string()),
  tags: v.array(v.string()),
  monitorOnly: v.boolean(),
  status: HostStatus,
  statusReason: v.nullable(v.string()),
  os: v.nullable(v.object({ id: v.string(), name: v.string(), version: v.string(), prettyName: v.string() })),
  packageManager: v.nullable(PackageManagerName),
  packageManagers: v.array(PackageManagerName),
  proxmox: v.nullable(v.object({ product: v.picklist(['pve', 'pbs']), version: v.string() })),
  docker: v.boolean(),
  kernel: v.nullable(v.string()),
  arch: v.nullable(v.string()),
  bootId: v.nullable(v.string()),
  bootedAt: v.nullable(v.string()),
  updatesCount: v.nullable(v.number()),
  securityCount: v.nullable(v.number()),
  rebootRequired: v.nullable(v.boolean()),
  rebootReason: v.nullable(v.string()),
  lastScanAt: v.nullable(v.string()),
  createdAt: v.string(),
});
export type Host = v.InferOutput<typeof Host>;

export const Job = v.object({
  id: v.string(),
  kind: JobKind,
  hostId: v.string(),
  relayId: v.nullable(v.string()),
  status: JobStatus,
  exitCode: v.nullable(v.number()),
  summary: v.nullable(v.string()),
  error: v.nullable(v.object({ code: v.string(), message: v.string() })),
  requestedBy: v.nullable(v.string()),
  createdAt: v.string(),
  startedAt: v.nullable(v.string()),
  finishedAt: v.nullable(v.string()),
});
export type Job = v.InferOutput<typeof Job>;

/** Events on the browser's live socket (`GET /api/live`). */
export const LiveEvent = v.variant('type', [
  v.object({ type: v.literal('relay'), relay: Relay }),
  v.object({ type: v.literal('host'), host: Host }),
  v.object({ type: v.literal('host.deleted'), id: v.string() }),
  v.object({ type: v.literal('job'), job: Job }),
]);
export type LiveEvent = v.InferOutput<typeof LiveEvent>;

export interface ApiError {
  error: { code: string; message: string; field?: string };
}
