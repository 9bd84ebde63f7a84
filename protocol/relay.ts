// The relay protocol: every message between the Worker (RelayHub Durable Object) and the
// relay, in both directions. Both ends import this module and validate what they receive.
import * as v from 'valibot';
import { HostAddress, Port, PosixUser, Id, PackageName, ServiceName, StackName } from './fields.ts';
import { NotifyOutgoing, NotifySendResult } from './notify.ts';
import { PACKAGE_FAILURE_CODES, PACKAGE_MANAGER_NAMES } from './package-managers.ts';
import { GuestRef, GuestRollbackResult, GuestSnapshot, ProxmoxGuest, SnapshotName, SnapshotOutcome, SnapshotRequest } from './proxmox.ts';

export const PROTOCOL_VERSION = 1;

/** Heartbeats are fixed strings so the Durable Object can answer them without waking up
 * (WebSocket Hibernation auto-response). */
export const PING = '{"type":"ping"}';
export const PONG = '{"type":"pong"}';
/** The relay sends a heartbeat this often. */
export const HEARTBEAT_INTERVAL_MS = 25_000;
/** The Worker marks a relay it has not heard from for this long (three heartbeats missed,
 * plus slack for a busy event loop) as disconnected and closes its socket. */
export const HEARTBEAT_TIMEOUT_MS = 3 * HEARTBEAT_INTERVAL_MS + 15_000;

/** Optional additions to the protocol, named so that either end can be older than the other.
 * The relay offers the ones it speaks in its hello; the Worker answers with those it accepts
 * in its welcome (older Workers answer none: the key is ignored); each end uses a feature
 * only once both have named it. Unknown names are ignored, not refused.
 *
 * - `batch`: a `batch` frame carries several messages, in order (see RelayBatch and
 *   WorkerBatch). During "Scan all" a thousand answers and a thousand requests were each a
 *   frame of their own, and each frame costs the Worker's runtime more than the JSON in it. */
export const PROTOCOL_FEATURES = ['batch'] as const;
export type ProtocolFeature = (typeof PROTOCOL_FEATURES)[number];
const FeatureList = v.pipe(v.array(v.pipe(v.string(), v.maxLength(64))), v.maxLength(32));

/** The features both lists name, known to this end. */
export function agreedFeatures(offered: readonly string[] | undefined, accepted: readonly string[] | undefined): ProtocolFeature[] {
  return PROTOCOL_FEATURES.filter((f) => offered?.includes(f) && accepted?.includes(f));
}

/** A batch frame is cut before its JSON would pass this many characters: at most three UTF-8
 * bytes each, well under the 1 MiB a Worker accepts per message. A single message longer
 * than this goes in a frame of its own, as without the feature. */
export const BATCH_MAX_CHARS = 256 * 1024;
/** …and before it would hold more than this many messages. */
export const BATCH_MAX_MESSAGES = 1000;

// ---- operations: the relay's closed vocabulary -------------------------------------------

export const SshTarget = v.strictObject({
  address: HostAddress,
  port: Port,
  user: PosixUser,
  /** A Proxmox guest reached through this node (protocol/proxmox.ts): the SSH connection is
   * the node's, every command runs inside the guest. */
  guest: v.optional(GuestRef),
});

export const PackageManagerName = v.picklist(PACKAGE_MANAGER_NAMES);

export const ProbeResult = v.object({
  os: v.object({
    id: v.string(),
    name: v.string(),
    version: v.string(),
    prettyName: v.string(),
    idLike: v.array(v.string()),
  }),
  kernel: v.string(),
  arch: v.string(),
  hostname: v.string(),
  bootId: v.string(),
  uptimeSeconds: v.number(),
  packageManagers: v.array(PackageManagerName),
  proxmox: v.nullable(v.object({ product: v.picklist(['pve', 'pbs']), version: v.string() })),
  docker: v.boolean(),
  /** How package-manager commands can be run: as root already, through passwordless sudo,
   * or not at all (sudo wants a password, or there is no sudo). */
  privilege: v.picklist(['root', 'sudo', 'sudo-password', 'no-sudo']),
});

/** One pending update. `currentVersion` is null for a package the upgrade newly installs. */
export const PackageUpdate = v.object({
  name: v.string(),
  currentVersion: v.nullable(v.string()),
  newVersion: v.string(),
  /** Where the new version comes from, e.g. "Debian-Security:12/stable-security". */
  repository: v.string(),
  security: v.boolean(),
  arch: v.string(),
});

export type ProbeResult = v.InferOutput<typeof ProbeResult>;
export type PackageUpdate = v.InferOutput<typeof PackageUpdate>;

/** An update the package manager will not install with a plain full upgrade, and why. */
export const HeldPackage = v.object({
  name: v.string(),
  reason: v.picklist(['kept-back', 'phased', 'held']),
});

export type HeldPackage = v.InferOutput<typeof HeldPackage>;

export const RebootState = v.object({
  required: v.boolean(),
  /** Human-readable: "/run/reboot-required (linux-image-6.1.0-41-amd64)",
   * "running kernel 6.1.0-40-amd64, newest installed 6.1.0-41-amd64", … */
  reason: v.nullable(v.string()),
});

export const ScanResult = v.object({
  probe: ProbeResult,
  /** The package manager the scan used; null when the host has none we support. */
  packageManager: v.nullable(PackageManagerName),
  updates: v.array(PackageUpdate),
  held: v.array(HeldPackage),
  reboot: RebootState,
  /** Things the operator should know that did not fail the scan (e.g. the list refresh
   * failed and the result is from stale lists). */
  warnings: v.array(v.string()),
  /** The host key the relay verified (pinned), `SHA256:…`. */
  hostKey: v.optional(v.string()),
  /** A Proxmox VE node's guests (containers and VMs); absent on any other host. */
  guests: v.optional(v.array(ProxmoxGuest)),
  /** A guest target's snapshots, newest first; absent for hosts that are not guests. */
  snapshots: v.optional(v.array(GuestSnapshot)),
});

/** `SHA256:` and 43 base64 characters, as ssh-keygen -l prints a host key. */
export const Fingerprint = v.pipe(v.string('must be a string'), v.regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be a SHA256: host key fingerprint'));

/** One package the upgrade changed: `from` null = newly installed, `to` null = removed. */
export const PackageChange = v.object({
  name: v.string(),
  from: v.nullable(v.string()),
  to: v.nullable(v.string()),
});

/** Runs that outlive the SSH session (upgrade, reboot) are named by their job id, so the
 * same request sent twice re-attaches to the first run instead of starting a second. */
const RunId = Id;

export const UpgradeParams = v.strictObject({
  target: SshTarget,
  runId: RunId,
  /** Only these packages (where the package manager allows it); omitted = full upgrade. */
  packages: v.optional(v.pipe(v.array(PackageName), v.minLength(1), v.maxLength(2000))),
  /** apt, whole-system upgrades only: `upgrade` never installs or removes packages;
   * omitted = `dist-upgrade`. Refused with `packages` and on Proxmox (always full-upgrade). */
  aptMode: v.optional(v.picklist(['dist-upgrade', 'upgrade'])),
  /** Only re-attach to a run that already exists; never start one (a re-sent request after
   * the relay restarted). */
  resume: v.optional(v.boolean(), false),
  /** Bytes of the run's log the Worker already holds; output resumes from here. */
  offset: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 0),
  /** Guest targets only: take this snapshot before the run starts (taken once per run id:
   * a re-sent request finds it), then prune older PatchMan snapshots. */
  snapshot: v.optional(SnapshotRequest),
});

export const UpgradeResult = v.object({
  packageManager: PackageManagerName,
  mode: v.picklist(['full', 'selective']),
  exitCode: v.number(),
  /** Installed versions before and after, compared: what really changed. */
  changes: v.array(PackageChange),
  /** Size of the run's log on the host, and its last bytes (for a log the Worker capped). */
  logBytes: v.number(),
  logTail: v.string(),
  durationMs: v.number(),
  reboot: RebootState,
  warnings: v.array(v.string()),
  /** When the request asked for a snapshot. */
  snapshot: v.optional(SnapshotOutcome),
});

export const RebootParams = v.strictObject({
  target: SshTarget,
  runId: RunId,
  resume: v.optional(v.boolean(), false),
  /** The boot id before the reboot, when the Worker knows it (a resumed wait needs it). */
  bootId: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(64)))),
  /** How long to wait for the host to come back. */
  waitSeconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(5), v.maxValue(3600)), 900),
});

export const RebootResult = v.object({
  bootIdBefore: v.string(),
  bootIdAfter: v.string(),
  /** From the reboot command until SSH answered again with a new boot id. */
  downMs: v.number(),
  kernel: v.string(),
});

// ---- Docker Compose stacks ----------------------------------------------------------------

/** Whether a container's image has a newer version under its tag, decided without pulling:
 * the registry's current digest for the tag (a HEAD request) is not among the image's
 * RepoDigests. Images pinned by digest, built locally, or without RepoDigests cannot be
 * checked, and say why. */
export const ImageCheck = v.object({
  status: v.picklist(['up-to-date', 'update-available', 'not-checkable', 'error']),
  /** Why not checkable, or what went wrong (plain words). */
  reason: v.nullable(v.string()),
  /** The RepoDigest for this reference's repository (`sha256:…`), if the image has one. */
  localDigest: v.nullable(v.string()),
  /** The registry's digest for the tag now. */
  remoteDigest: v.nullable(v.string()),
});

export const StackContainer = v.object({
  name: v.string(),
  service: v.string(),
  /** `running`, `exited`, … as Compose reports it. */
  state: v.string(),
  /** The image reference as the stack names it (e.g. `nginx:1.27`, `ghcr.io/org/app:latest`). */
  image: v.string(),
  imageId: v.nullable(v.string()),
  repoDigests: v.array(v.string()),
  check: ImageCheck,
});

export const Stack = v.object({
  name: v.string(),
  /** As `docker compose ls` says it, e.g. `running(3)`, `exited(1)`. */
  status: v.string(),
  workingDir: v.nullable(v.string()),
  configFiles: v.array(v.string()),
  containers: v.array(StackContainer),
});
export type Stack = v.InferOutput<typeof Stack>;

export const DockerScanResult = v.object({
  /** `docker compose version --short`, e.g. `2.29.7`. */
  composeVersion: v.string(),
  stacks: v.array(Stack),
  warnings: v.array(v.string()),
});

export const DockerUpdateParams = v.strictObject({
  target: SshTarget,
  runId: RunId,
  stack: StackName,
  /** Only these services; omitted = the whole stack. */
  services: v.optional(v.pipe(v.array(ServiceName), v.minLength(1), v.maxLength(200))),
  offset: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 0),
});

export const DockerUpdateResult = v.object({
  exitCode: v.number(),
  /** The stack checked again after the update. */
  stack: Stack,
  logBytes: v.number(),
  logTail: v.string(),
  durationMs: v.number(),
});

/** Every operation, its parameters and its result. Adding one here is the only way the
 * Worker can ask the relay for anything. */
export const Operations = {
  /** What is this host? Read-only, no sudo. Also the "test connection" check. */
  probe: { params: v.strictObject({ target: SshTarget }), result: ProbeResult },
  /** Probe, refresh the package lists (unless refresh is false), list pending updates and
   * check whether a reboot is needed. Changes nothing but the package lists. */
  scan: {
    params: v.strictObject({ target: SshTarget, refresh: v.optional(v.boolean(), true) }),
    result: ScanResult,
  },
  /** Upgrade all packages, or only the named ones, in a run detached from the SSH session
   * (a dropped connection or a relay restart does not kill dpkg). Streams the run's log as
   * `output` messages. Refused for monitor-only hosts. */
  upgrade: { params: UpgradeParams, result: UpgradeResult },
  /** Reboot, wait for the host to come back with a new boot id. Refused for monitor-only hosts. */
  reboot: { params: RebootParams, result: RebootResult },
  /** List the host's Compose stacks and their containers, and check each image's registry
   * for a newer digest under its tag (HEAD requests from the relay; nothing is pulled and
   * nothing changes on the host). `stack` limits it to one stack. */
  'docker.scan': {
    params: v.strictObject({ target: SshTarget, stack: v.optional(StackName) }),
    result: DockerScanResult,
  },
  /** `docker compose pull` then `up -d` for one stack (or some of its services), in its
   * working directory with its config files, detached like an upgrade; then check it again.
   * Refused for monitor-only hosts. */
  'docker.update': { params: DockerUpdateParams, result: DockerUpdateResult },
  /** An admin accepted a changed host key: pin exactly this fingerprint, and check the host
   * now presents it (the pin is put back if it does not). */
  'accept-host-key': {
    params: v.strictObject({ target: SshTarget, fingerprint: Fingerprint }),
    result: v.object({ hostKey: v.string() }),
  },
  /** Deliver one notification on the relay's LAN (an HTTP POST or an e-mail over SMTP), only
   * to a host:port the relay's own PATCHMAN_NOTIFY_ALLOW lists; anything else is refused. */
  'notify.send': { params: NotifyOutgoing, result: NotifySendResult },
  /** Roll a Proxmox guest back to one of PatchMan's own snapshots (`pct rollback` /
   * `qm rollback`), starting it again when it was running. Refused for monitor-only hosts. */
  'guest.rollback': {
    params: v.strictObject({ target: SshTarget, runId: RunId, snapshot: SnapshotName }),
    result: GuestRollbackResult,
  },
} as const;

/** Operations that change a host: refused for monitor-only hosts at both ends, and one at a
 * time per host. */
export const MUTATING_OPERATIONS = ['upgrade', 'reboot', 'docker.update', 'guest.rollback'] as const satisfies readonly OperationName[];

export type OperationName = keyof typeof Operations;
export type OperationParams<K extends OperationName> = v.InferOutput<(typeof Operations)[K]['params']>;
export type OperationResult<K extends OperationName> = v.InferOutput<(typeof Operations)[K]['result']>;

export const ErrorCode = v.picklist([
  'unreachable', // connection refused, no route, DNS failure
  'timeout', // connect or command timeout
  'auth-refused', // SSH key not accepted
  'host-key-changed', // pinned host key no longer matches
  'sudo-password', // sudo asked for a password
  'unsupported-os', // nothing we know how to manage
  'command-failed', // a command exited non-zero in an unexpected way
  'invalid-request', // the request failed validation at the relay
  'unknown-operation', // not in the closed vocabulary
  'relay-disconnected', // the relay went away while the request was pending
  'monitor-only', // the host may be scanned but never changed
  'locked', // older relays' lock-held (protocol/package-managers.ts LEGACY_FAILURE_CODES)
  'dpkg-interrupted', // older relays' interrupted-transaction
  'not-started', // a resumed run that never began on the host: nothing changed
  'lost', // the run's outcome can no longer be known
  'host-down', // a rebooted host did not come back in time
  'internal',
  'not-allowed', // a notification target the relay's PATCHMAN_NOTIFY_ALLOW does not list
  'delivery-failed', // the notification target refused or did not answer
  ...PACKAGE_FAILURE_CODES, // a package manager's failure in neutral words (lock-held, …)
]);
export type ErrorCode = v.InferOutput<typeof ErrorCode>;

export const RelayError = v.object({
  code: ErrorCode,
  message: v.pipe(v.string(), v.maxLength(2000)),
  /** The exit status of the command that failed, when there was one. */
  exitCode: v.optional(v.number()),
  /** For 'host-key-changed': the pinned key and the one the host offers now. */
  hostKey: v.optional(v.object({ pinned: v.string(), offered: v.string() })),
});

// ---- Worker → relay ----------------------------------------------------------------------

export const Welcome = v.object({
  type: v.literal('welcome'),
  v: v.number(),
  relayId: Id,
  name: v.string(),
  /** How many requests the relay runs at once (the scan-concurrency setting). */
  concurrency: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1024))),
  /** The features of the hello's offer this Worker accepts (PROTOCOL_FEATURES). */
  features: v.optional(FeatureList),
});

/** The relay checks `op` against its own table before it looks at `params`. */
export const Request = v.object({
  type: v.literal('request'),
  id: Id,
  op: v.string(),
  params: v.unknown(),
  timeoutMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1000), v.maxValue(3_600_000))),
});

export const Pong = v.object({ type: v.literal('pong') });

/** Settings pushed to a connected relay when they change. */
export const Configure = v.object({
  type: v.literal('config'),
  concurrency: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1024)),
});

/** Several requests in one frame, in the order they are to be taken (feature `batch`). */
export const WorkerBatch = v.object({
  type: v.literal('batch'),
  messages: v.pipe(v.array(Request), v.minLength(1), v.maxLength(BATCH_MAX_MESSAGES)),
});

export const ToRelay = v.variant('type', [Welcome, Request, Pong, Configure, WorkerBatch]);
export type ToRelay = v.InferOutput<typeof ToRelay>;

// ---- relay → Worker ----------------------------------------------------------------------

export const Hello = v.object({
  type: v.literal('hello'),
  v: v.number(),
  version: v.pipe(v.string(), v.maxLength(64)),
  publicKey: v.pipe(v.string(), v.regex(/^ssh-ed25519 [A-Za-z0-9+/=]+( [^\n]*)?$/, 'must be an OpenSSH ed25519 public key')),
  hostname: v.pipe(v.string(), v.maxLength(253)),
  /** The optional features this relay speaks (PROTOCOL_FEATURES); older relays send none. */
  features: v.optional(FeatureList),
});

export const Response = v.variant('ok', [
  v.object({ type: v.literal('response'), id: Id, ok: v.literal(true), result: v.unknown() }),
  v.object({ type: v.literal('response'), id: Id, ok: v.literal(false), error: RelayError }),
]);

export const Ping = v.object({ type: v.literal('ping') });

/** Output of a running request (an upgrade's log), batched: one message per poll of the
 * host's log, not one per line. `range` is the byte range of the host's log file this text
 * came from (absent for the relay's own progress lines), so the Worker appends each byte
 * once even when a re-attached relay sends a range again. */
export const Output = v.object({
  type: v.literal('output'),
  id: Id,
  data: v.pipe(v.string(), v.maxLength(1024 * 1024)),
  range: v.optional(v.object({ from: v.pipe(v.number(), v.integer(), v.minValue(0)), to: v.pipe(v.number(), v.integer(), v.minValue(0)) })),
});
export type Output = v.InferOutput<typeof Output>;

/** Several responses and outputs in one frame, in the order they were written (feature
 * `batch`): each is taken exactly as if it had come alone. */
export const RelayBatch = v.object({
  type: v.literal('batch'),
  messages: v.pipe(v.array(v.variant('type', [Response, Output])), v.minLength(1), v.maxLength(BATCH_MAX_MESSAGES)),
});

export const FromRelay = v.variant('type', [Hello, Response, Ping, Output, RelayBatch]);
export type FromRelay = v.InferOutput<typeof FromRelay>;

/** Close codes both ends use (4000–4999 are application codes). */
export const Close = {
  invalidMessage: 4400,
  unauthorized: 4401,
  versionMismatch: 4426,
  replaced: 4409,
  revoked: 4403,
  /** No heartbeat within HEARTBEAT_TIMEOUT_MS. */
  silent: 4408,
} as const;

/** Parse a text frame against a schema; returns a readable reason on failure. */
export function decode<S extends v.GenericSchema>(
  schema: S,
  text: unknown,
): { ok: true; value: v.InferOutput<S> } | { ok: false; reason: string } {
  if (typeof text !== 'string') return { ok: false, reason: 'binary frames are not accepted' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const r = v.safeParse(schema, json);
  if (r.success) return { ok: true, value: r.output };
  return { ok: false, reason: describeIssues(r.issues) };
}

export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  const first = issues[0];
  const path = v.getDotPath(first);
  return (path ? `${path}: ` : '') + first.message;
}
