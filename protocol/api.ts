// API bodies and responses. The Worker validates request bodies with these schemas; the
// dashboard imports the response types from here.
import * as v from 'valibot';
import { HostAddress, Port, PosixUser, Label, Tag, Id, PackageName, ServiceName } from './fields.ts';
import { GuestSnapshot, SnapshotOutcome, SNAPSHOT_KEEP_DEFAULT } from './proxmox.ts';
import { Fingerprint, HeldPackage, PackageChange, PackageManagerName, PackageUpdate, ProbeResult, RelayError, StackContainer } from './relay.ts';

export const HostCreate = v.strictObject({
  name: v.optional(Label),
  address: HostAddress,
  port: v.optional(Port, 22),
  user: v.optional(PosixUser, 'root'),
  relayId: v.optional(Id),
  tags: v.optional(v.pipe(v.array(Tag, 'must be a list of tags'), v.maxLength(32, 'at most 32 tags')), []),
  /** Default: true for the relay's own box (localhost or the relay's host name), else false. */
  monitorOnly: v.optional(v.boolean('must be true or false')),
  /** Scan the host as soon as it is added (the dashboard always asks for this; scripts that
   * add many hosts usually scan them together later). */
  scan: v.optional(v.boolean('must be true or false'), false),
});
export type HostCreate = v.InferOutput<typeof HostCreate>;

/** PATCH /api/hosts/:id: any subset of the fields a host is created with. */
export const HostPatch = v.strictObject({
  name: v.optional(Label),
  address: v.optional(HostAddress),
  port: v.optional(Port),
  user: v.optional(PosixUser),
  relayId: v.optional(Id),
  tags: v.optional(v.pipe(v.array(Tag, 'must be a list of tags'), v.maxLength(32, 'at most 32 tags'))),
  monitorOnly: v.optional(v.boolean('must be true or false')),
});
export type HostPatch = v.InferOutput<typeof HostPatch>;

/** POST /api/hosts/test: try a connection before (or after) adding a host. */
export const ConnectionTestBody = v.strictObject({
  address: HostAddress,
  port: v.optional(Port, 22),
  user: v.optional(PosixUser, 'root'),
  relayId: v.optional(Id),
});

export const ConnectionTestResult = v.variant('ok', [
  v.object({ ok: v.literal(true), probe: ProbeResult, warnings: v.array(v.string()) }),
  v.object({ ok: v.literal(false), error: RelayError }),
]);
export type ConnectionTestResult = v.InferOutput<typeof ConnectionTestResult>;

export const ScanRequest = v.strictObject({
  hostIds: v.optional(v.pipe(v.array(Id, 'must be a list of host ids'), v.maxLength(5000))),
});

const Confirm = v.literal(true, 'must be true: the dashboard asks the operator to confirm first');
/** Proxmox guests: `false` goes on without the snapshot an upgrade otherwise takes first. */
const NoSnapshot = v.optional(v.literal(false, 'must be false (go on without a snapshot) or left out'));

/** POST /api/hosts/:id/upgrade. Without `packages`, a full upgrade. */
export const UpgradeRequest = v.strictObject({
  confirm: Confirm,
  snapshot: NoSnapshot,
  packages: v.optional(
    v.pipe(v.array(PackageName, 'must be a list of package names'), v.minLength(1, 'must name at least one package (or be left out for a full upgrade)'), v.maxLength(2000, 'at most 2000 packages')),
  ),
});
export type UpgradeRequest = v.InferOutput<typeof UpgradeRequest>;

/** POST /api/upgrades: full upgrades of several hosts at once. */
export const BulkUpgradeRequest = v.strictObject({
  confirm: Confirm,
  snapshot: NoSnapshot,
  hostIds: v.pipe(v.array(Id, 'must be a list of host ids'), v.minLength(1, 'must name at least one host'), v.maxLength(1000, 'at most 1000 hosts')),
});

/** One host's outcome in a bulk request: a job, or why there is none. */
export const BulkResult = v.object({
  results: v.array(
    v.object({
      hostId: v.string(),
      jobId: v.optional(v.string()),
      error: v.optional(v.object({ code: v.string(), message: v.string() })),
    }),
  ),
});
export type BulkResult = v.InferOutput<typeof BulkResult>;

/** POST /api/hosts/:id/reboot */
export const RebootRequest = v.strictObject({ confirm: Confirm });

/** POST /api/stacks/:id/update: `docker compose pull` then `up -d` for the stack, or only
 * the named services of it. */
export const StackUpdateRequest = v.strictObject({
  confirm: Confirm,
  services: v.optional(
    v.pipe(
      v.array(ServiceName, 'must be a list of service names'),
      v.minLength(1, 'must name at least one service (or be left out for the whole stack)'),
      v.maxLength(200, 'at most 200 services'),
    ),
  ),
});
export type StackUpdateRequest = v.InferOutput<typeof StackUpdateRequest>;

/** GET /api/stacks?hostId=: a host's Compose stacks as its last docker scan found them. */
export const StackQuery = v.strictObject({ hostId: v.optional(Id) });

/** One Docker Compose stack (GET /api/stacks, /api/stacks/:id). */
export const Stack = v.object({
  id: v.string(),
  hostId: v.string(),
  hostName: v.string(),
  /** The Compose project name. */
  name: v.string(),
  /** As `docker compose ls` says it, e.g. `running(3)`. */
  status: v.string(),
  workingDir: v.nullable(v.string()),
  configFiles: v.array(v.string()),
  containers: v.array(StackContainer),
  /** Containers whose image has a newer version under its tag. */
  updatesCount: v.number(),
  /** Containers whose image could not be checked (pinned by digest, built locally, registry error). */
  uncheckableCount: v.number(),
  checkedAt: v.string(),
  /** Why the last check of this stack failed (what is shown is from before), or null. */
  error: v.nullable(v.string()),
});
export type Stack = v.InferOutput<typeof Stack>;

export const HostFilter = v.picklist(['needs-updates', 'needs-reboot', 'offline', 'security']);
export type HostFilter = v.InferOutput<typeof HostFilter>;

/** The range of each numeric setting (README's settings table; the dashboard's inputs).
 * scanIntervalHours may also be 0 (scheduled scans off). */
export const SETTING_RANGES = {
  scanIntervalHours: { min: 1, max: 168 },
  retentionDays: { min: 1, max: 3650 },
  scanConcurrency: { min: 1, max: 256 },
  snapshotKeep: { min: 1, max: 20 },
} as const;
const wholeIn = ({ min, max }: { min: number; max: number }) =>
  v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(min, `must be ${min} to ${max}`), v.maxValue(max, `must be ${min} to ${max}`));

export const Settings = v.object({
  /** Hosts are scanned when their last scan is older than this. 0 turns scheduled scans off. */
  scanIntervalHours: v.union([v.literal(0), wholeIn(SETTING_RANGES.scanIntervalHours)], `must be 0 (off) or a whole number of hours from ${SETTING_RANGES.scanIntervalHours.min} to ${SETTING_RANGES.scanIntervalHours.max}`),
  /** Finished jobs older than this are deleted by the scheduled run. */
  retentionDays: wholeIn(SETTING_RANGES.retentionDays),
  /** How many hosts a relay works on at once. */
  scanConcurrency: wholeIn(SETTING_RANGES.scanConcurrency),
  /** PatchMan snapshots kept per Proxmox guest; older ones are deleted after each new one. */
  snapshotKeep: wholeIn(SETTING_RANGES.snapshotKeep),
  /** Cloudflare Access mode: trust the verified Cf-Access-Jwt-Assertion instead of local passwords. */
  accessEnabled: v.boolean('must be true or false'),
  /** e.g. `myteam.cloudflareaccess.com` */
  accessTeamDomain: v.pipe(v.string('must be a string'), v.maxLength(253, 'must be at most 253 characters'), v.regex(/^$|^[a-z0-9-]+(\.[a-z0-9-]+)+$/i, 'must be your team domain, e.g. myteam.cloudflareaccess.com')),
  /** The Access application's AUD tag. */
  accessAudience: v.pipe(v.string('must be a string'), v.regex(/^$|^[a-f0-9]{64}$/, 'must be the application audience (AUD) tag: 64 hex characters')),
});
export type Settings = v.InferOutput<typeof Settings>;
export const SettingsPatch = v.strictObject(v.partial(Settings).entries);
export const DEFAULT_SETTINGS: Settings = { scanIntervalHours: 6, retentionDays: 30, scanConcurrency: 32, snapshotKeep: SNAPSHOT_KEEP_DEFAULT, accessEnabled: false, accessTeamDomain: '', accessAudience: '' };

export const Summary = v.object({
  hosts: v.number(),
  online: v.number(),
  offline: v.number(),
  needUpdates: v.number(),
  pendingPackages: v.number(),
  securityPackages: v.number(),
  securityHosts: v.number(),
  needReboot: v.number(),
  /** Compose stacks with at least one container whose image has a newer version. */
  stacksWithUpdates: v.number(),
});
export type Summary = v.InferOutput<typeof Summary>;

export const RelayCreate = v.strictObject({ name: Label });

export const HostStatus = v.picklist(['unknown', 'online', 'offline', 'error']);
export const JobStatus = v.picklist(['queued', 'dispatched', 'running', 'succeeded', 'failed', 'cancelled', 'lost']);
export type JobStatus = v.InferOutput<typeof JobStatus>;
/** A job not yet finished: waiting for its relay, sent to it, or under way. The one list of
 * them (the Worker's queries, the one-change-per-host index, the dashboard). */
export const ACTIVE_STATUSES = ['queued', 'dispatched', 'running'] as const satisfies JobStatus[];
/** Sent to the relay and not finished: the job's relay owes it an answer. */
export const IN_FLIGHT_STATUSES = ['dispatched', 'running'] as const satisfies JobStatus[];
export const isActiveStatus = (s: JobStatus): boolean => (ACTIVE_STATUSES as readonly JobStatus[]).includes(s);
export const JobKind = v.picklist(['scan', 'upgrade', 'reboot', 'docker-scan', 'stack-update', 'rollback']);
export type JobKind = v.InferOutput<typeof JobKind>;

export const Relay = v.object({
  id: v.string(),
  name: v.string(),
  connected: v.boolean(),
  publicKey: v.nullable(v.string()),
  version: v.nullable(v.string()),
  hostname: v.nullable(v.string()),
  lastSeenAt: v.nullable(v.string()),
  createdAt: v.string(),
  /** The pinned key's fingerprint; a different key the relay presented since, waiting for an admin. */
  publicKeyFingerprint: v.nullable(v.string()),
  publicKeyOffered: v.nullable(v.string()),
  publicKeyOfferedFingerprint: v.nullable(v.string()),
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
  privilege: v.nullable(v.picklist(['root', 'sudo', 'sudo-password', 'no-sudo'])),
  updatesCount: v.nullable(v.number()),
  securityCount: v.nullable(v.number()),
  held: v.array(HeldPackage),
  scanWarnings: v.array(v.string()),
  rebootRequired: v.nullable(v.boolean()),
  rebootReason: v.nullable(v.string()),
  lastScanAt: v.nullable(v.string()),
  /** When the oldest security update still pending was first seen (ISO; /api/exposure's
   * oldestSecurityFirstSeenAt), null: none pending. */
  oldestSecurityFirstSeenAt: v.nullable(v.string()),
  /** The pinned SSH host key fingerprint. */
  hostKey: v.nullable(v.string()),
  /** Set when the host offered a different key: blocked until an admin accepts it. */
  hostKeyOffered: v.nullable(v.string()),
  createdAt: v.string(),
  /** An adopted Proxmox guest: the node host it is reached through and which guest it is. */
  guest: v.nullable(v.object({ nodeId: v.string(), type: v.picklist(['lxc', 'qemu']), vmid: v.number() })),
  /** A guest's snapshots as its last scan listed them, newest first (null: not a guest, or not scanned yet). */
  snapshots: v.nullable(v.array(GuestSnapshot)),
});
export type Host = v.InferOutput<typeof Host>;
/** POST /api/hosts answers with the new host and the scan it started (null without `scan: true`). */
export const CreatedHost = v.object({ ...Host.entries, scanJobId: v.nullable(v.string()) });
export type CreatedHost = v.InferOutput<typeof CreatedHost>;

/** POST /api/hosts/:id/accept-host-key: the fingerprint the admin saw and accepts. */
export const AcceptHostKey = v.strictObject({ fingerprint: Fingerprint });

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
  /** What was asked: the packages of a selective upgrade (null = everything). */
  packages: v.nullable(v.array(v.string())),
  /** What an upgrade changed (installed versions before and after); for a stack update, the
   * containers whose image changed (`name` the container, `from`/`to` its image digests). */
  changes: v.nullable(v.array(PackageChange)),
  /** The Compose stack of a stack update, or of a docker scan limited to one stack. */
  stack: v.nullable(v.string()),
  /** The services a stack update was limited to (null = the whole stack). */
  services: v.nullable(v.array(v.string())),
  /** Characters of output kept, and whether the cap cut some of it. */
  logBytes: v.number(),
  logTruncated: v.boolean(),
  /** A guest's upgrade: the snapshot it took first (null: none taken or not a guest). */
  snapshot: v.nullable(SnapshotOutcome),
  /** A guest's upgrade the operator ran without a snapshot. */
  withoutSnapshot: v.boolean(),
  /** A rollback: the snapshot it restores and the upgrade job that took it. */
  rollback: v.nullable(v.object({ snapshot: v.string(), jobId: v.string() })),
  createdAt: v.string(),
  startedAt: v.nullable(v.string()),
  finishedAt: v.nullable(v.string()),
  durationMs: v.nullable(v.number()),
});
export type Job = v.InferOutput<typeof Job>;

/** GET /api/jobs/:id: the job with its whole (capped) log. */
export const JobDetail = v.object({ ...Job.entries, log: v.string() });
export type JobDetail = v.InferOutput<typeof JobDetail>;

/** A date (2026-11-24) or date-time (2026-11-24T10:00:00Z), as milliseconds since the epoch. */
const IsoDate = v.pipe(
  v.string(),
  v.regex(/^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/, 'must be an ISO date or date-time'),
  v.transform((s) => Date.parse(s)),
  v.check((t) => Number.isFinite(t), 'must be a real date'),
);

/** GET /api/live query: `batch=1` makes each frame a JSON array of events (in order); without
 * it, one event per frame. */
export const LiveQuery = v.object({
  batch: v.optional(v.literal('1', 'must be 1 (frames as arrays of events) or left out')),
});

/** GET /api/jobs query: every filter optional; `before` pages back (an ISO time). */
export const JobQuery = v.strictObject({
  hostId: v.optional(Id),
  kind: v.optional(JobKind),
  status: v.optional(JobStatus),
  since: v.optional(IsoDate),
  before: v.optional(IsoDate),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, 'must be 1–500'), v.transform(Number), v.minValue(1, 'must be 1–500'), v.maxValue(500, 'must be 1–500')), '100'),
});

/** GET /api/hosts/:id/updates */
export const HostUpdates = v.array(PackageUpdate);

/** Events on the browser's live socket (`GET /api/live`). */
export const LiveEvent = v.variant('type', [
  v.object({ type: v.literal('relay'), relay: Relay }),
  v.object({ type: v.literal('host'), host: Host }),
  v.object({ type: v.literal('host.deleted'), id: v.string() }),
  v.object({ type: v.literal('job'), job: Job }),
  /** New output of a running job, batched (one event per relay poll, not per line). */
  v.object({ type: v.literal('job.output'), jobId: v.string(), hostId: v.string(), data: v.string() }),
]);
export type LiveEvent = v.InferOutput<typeof LiveEvent>;

/** Every API error: `{error:{code,message,field?}}` (400s name the field). */
export const ErrorBody = v.object({
  error: v.object({ code: v.string(), message: v.string(), field: v.optional(v.string()) }),
});
export type ErrorBody = v.InferOutput<typeof ErrorBody>;

// ---- accounts (issue: accounts, first-run, security) --------------------------------------

export const Role = v.picklist(['admin', 'operator', 'viewer'], 'must be admin, operator or viewer');
export type Role = v.InferOutput<typeof Role>;

/** Lower-case login names; an e-mail address works too (Cloudflare Access mode). */
export const Username = v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.toLowerCase(),
  v.regex(/^[a-z0-9][a-z0-9._@+-]{0,63}$/, 'must be 1–64 letters, digits or . _ @ + - (an e-mail address works)'),
);

export const Password = v.pipe(
  v.string('must be a string'),
  v.minLength(12, 'must be at least 12 characters'),
  v.maxLength(256, 'must be at most 256 characters'),
);

export const LoginBody = v.strictObject({ username: Username, password: v.pipe(v.string('must be a string'), v.maxLength(256)) });

/** POST /api/setup: the first admin. `setupSecret` is needed anywhere but on localhost. */
export const SetupBody = v.strictObject({
  username: Username,
  password: Password,
  setupSecret: v.optional(v.pipe(v.string(), v.maxLength(256))),
});

/** GET /api/setup */
export const SetupState = v.object({ needed: v.boolean(), secretRequired: v.boolean(), secretConfigured: v.boolean() });
export type SetupState = v.InferOutput<typeof SetupState>;

/** GET /api/auth/me */
export const Me = v.object({
  user: v.object({ id: v.string(), username: v.string(), role: Role }),
  via: v.picklist(['user', 'token', 'access']),
});
export type Me = v.InferOutput<typeof Me>;
/** GET /api/auth/session: who is signed in, or nobody — a 200 either way, so that a page
 * that only wants to know does not log a failed request. `error`: why a caller who got
 * through Cloudflare Access still has no account. */
export const SessionAnswer = v.object({ me: v.nullable(Me), error: v.optional(v.string()) });
export type SessionAnswer = v.InferOutput<typeof SessionAnswer>;

export const User = v.object({
  id: v.string(),
  username: v.string(),
  role: Role,
  createdAt: v.string(),
  lastLoginAt: v.nullable(v.string()),
  disabled: v.boolean(),
});
export type User = v.InferOutput<typeof User>;

export const UserCreate = v.strictObject({ username: Username, role: Role, password: v.optional(Password) });
export const UserPatch = v.strictObject({ role: v.optional(Role), password: v.optional(Password), disabled: v.optional(v.boolean('must be true or false')) });

export const ApiToken = v.object({
  id: v.string(),
  name: v.string(),
  role: Role,
  createdBy: v.nullable(v.string()),
  createdAt: v.string(),
  lastUsedAt: v.nullable(v.string()),
});
export type ApiToken = v.InferOutput<typeof ApiToken>;
export const TokenCreate = v.strictObject({ name: Label, role: Role });

export const AuditEntry = v.object({
  id: v.string(),
  at: v.string(),
  actor: v.string(),
  actorType: v.string(),
  action: v.string(),
  target: v.nullable(v.string()),
  /** The target in words, as it was then (e.g. a host's name; the hosts of a bulk action). */
  detail: v.nullable(v.string()),
  status: v.number(),
  ip: v.nullable(v.string()),
});
export type AuditEntry = v.InferOutput<typeof AuditEntry>;
export const AuditQuery = v.strictObject({
  before: v.optional(IsoDate),
  actor: v.optional(v.pipe(v.string(), v.maxLength(100))),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, 'must be 1–500'), v.transform(Number), v.minValue(1, 'must be 1–500'), v.maxValue(500, 'must be 1–500')), '100'),
});
