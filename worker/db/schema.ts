// The D1 schema. Migrations in migrations/ are generated from this file by drizzle-kit
// (`npm run db:generate`); never edit them by hand.
import { sql } from 'drizzle-orm';
import { sqliteTable, text, integer, blob, index, uniqueIndex, primaryKey } from 'drizzle-orm/sqlite-core';
import type { InferOutput } from 'valibot';
import type { StackContainer } from '../../protocol/relay.ts';
import { ROLLOUT_HOST_STATUSES, ROLLOUT_STATUSES, type PolicySpec } from '../../protocol/policy.ts';
import { ACTIVE_STATUSES, JobKind, JobStatus } from '../../protocol/api.ts';
import type { NotifyMessage } from '../../protocol/notify.ts';
import { GUEST_KINDS, type GuestSnapshot } from '../../protocol/proxmox.ts';

/** A list of names as SQL literals, for index conditions (the names are our own constants). */
const sqlList = (names: readonly string[]) => sql.raw(names.map((n) => `'${n}'`).join(', '));
import { PACKAGE_MANAGER_NAMES } from '../../protocol/package-managers.ts';

/** Times are milliseconds since the epoch. */
const ms = (name: string) => integer(name, { mode: 'number' });

export const relays = sqliteTable('relays', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** SHA-256 of the bearer token; the token itself is shown once and never stored. */
  tokenHash: text('token_hash').notNull().unique(),
  publicKey: text('public_key'),
  /** A different key a later hello presented: not shown as the relay's key until an admin accepts it. */
  publicKeyOffered: text('public_key_offered'),
  version: text('version'),
  hostname: text('hostname'),
  createdAt: ms('created_at').notNull(),
  lastSeenAt: ms('last_seen_at'),
  revokedAt: ms('revoked_at'),
});

export const hosts = sqliteTable(
  'hosts',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    address: text('address').notNull(),
    port: integer('port').notNull().default(22),
    user: text('user').notNull().default('root'),
    relayId: text('relay_id').references(() => relays.id, { onDelete: 'set null' }),
    tags: text('tags', { mode: 'json' }).$type<string[]>().notNull().default([]),
    monitorOnly: integer('monitor_only', { mode: 'boolean' }).notNull().default(false),
    status: text('status', { enum: ['unknown', 'online', 'offline', 'error'] }).notNull().default('unknown'),
    statusReason: text('status_reason'),
    osId: text('os_id'),
    osName: text('os_name'),
    osVersion: text('os_version'),
    osPrettyName: text('os_pretty_name'),
    kernel: text('kernel'),
    arch: text('arch'),
    bootId: text('boot_id'),
    bootedAt: ms('booted_at'),
    packageManager: text('package_manager', { enum: PACKAGE_MANAGER_NAMES }),
    packageManagers: text('package_managers', { mode: 'json' }).$type<string[]>().notNull().default([]),
    proxmox: text('proxmox', { mode: 'json' }).$type<{ product: 'pve' | 'pbs'; version: string } | null>(),
    docker: integer('docker', { mode: 'boolean' }).notNull().default(false),
    privilege: text('privilege', { enum: ['root', 'sudo', 'sudo-password', 'no-sudo'] }),
    held: text('held', { mode: 'json' }).$type<{ name: string; reason: 'kept-back' | 'phased' | 'held' }[]>().notNull().default([]),
    scanWarnings: text('scan_warnings', { mode: 'json' }).$type<string[]>().notNull().default([]),
    updatesCount: integer('updates_count'),
    securityCount: integer('security_count'),
    rebootRequired: integer('reboot_required', { mode: 'boolean' }),
    rebootReason: text('reboot_reason'),
    lastScanAt: ms('last_scan_at'),
    /** When its oldest security update still pending was first seen (update_sightings), set by
     * every scan with the sightings (worker/sightings.ts) for the host list's exposure sort;
     * null: none pending. */
    oldestSecurityAt: ms('oldest_security_at'),
    /** Fingerprint of the package list in host_updates (job-results.ts updatesDigest); null:
     * unknown, the next scan writes its list. */
    updatesDigest: text('updates_digest'),
    /** The host key the relay has pinned (as of the last good connection), `SHA256:…`. */
    hostKey: text('host_key'),
    /** A different key the host offered: the host is blocked until an admin accepts it. */
    hostKeyOffered: text('host_key_offered'),
    createdAt: ms('created_at').notNull(),
    updatedAt: ms('updated_at').notNull(),
    /** An adopted Proxmox guest (worker/guests.ts): the node host it is reached through, and
     * which guest of it. Its address, port, user and relay are the node's (kept in step), and
     * every request names the guest. Null for every other host. */
    // (no foreign key: SQLite cannot add one with ON DELETE to an existing table; deleting a
    // node deletes its guests in routes/hosts.ts)
    guestOf: text('guest_of'),
    guestKind: text('guest_kind', { enum: GUEST_KINDS }),
    guestVmid: integer('guest_vmid'),
    /** The guest's snapshots as its last scan listed them (newest first). */
    guestSnapshots: text('guest_snapshots', { mode: 'json' }).$type<GuestSnapshot[]>(),
  },
  (t) => [
    // guests share their node's SSH target, so only hosts reached directly are unique by it
    uniqueIndex('hosts_target').on(t.relayId, t.address, t.port, t.user).where(sql`${t.guestOf} is null`),
    uniqueIndex('hosts_guest').on(t.guestOf, t.guestVmid),
    // the host list's default order and the dashboard's page of it
    index('hosts_name').on(sql`${t.name} collate nocase`),
  ],
);

export const jobs = sqliteTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    kind: text('kind', { enum: JobKind.options }).notNull(),
    hostId: text('host_id')
      .notNull()
      .references(() => hosts.id, { onDelete: 'cascade' }),
    relayId: text('relay_id'),
    status: text('status', { enum: JobStatus.options })
      .notNull()
      .default('queued'),
    exitCode: integer('exit_code'),
    summary: text('summary'),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    requestedBy: text('requested_by'),
    createdAt: ms('created_at').notNull(),
    dispatchedAt: ms('dispatched_at'),
    startedAt: ms('started_at'),
    finishedAt: ms('finished_at'),
    /** After this the job is failed with a timeout (or, for a change, lost) if the relay has not answered. */
    deadlineAt: ms('deadline_at'),
    /** What was asked: an upgrade's packages (absent = full), the boot id before a reboot,
     * the Compose stack a docker scan is limited to or a stack update updates (and its
     * services; absent = the whole stack). */
    params: text('params', { mode: 'json' }).$type<{
      packages?: string[];
      bootId?: string | null;
      stack?: string;
      services?: string[];
      aptMode?: 'upgrade';
      /** A guest's upgrade: the snapshot to take first, or false when the operator went on without one. */
      snapshot?: { name: string; description: string; keep: number } | false;
      /** A rollback: the snapshot to restore and the upgrade job that took it. */
      rollback?: { snapshot: string; jobId: string };
    }>(),
    /** What an upgrade changed (packages), or a stack update (containers: image digest before and after). */
    changes: text('changes', { mode: 'json' }).$type<{ name: string; from: string | null; to: string | null }[]>(),
    /** A retried request with the same Idempotency-Key gets this job instead of a new one. */
    idempotencyKey: text('idempotency_key').unique(),
    /** Bytes of the host's run log received (where a re-attached relay resumes). */
    logOffset: integer('log_offset').notNull().default(0),
    /** Characters of output stored in job_output; past the cap the rest is dropped. */
    logBytes: integer('log_bytes').notNull().default(0),
    logTruncated: integer('log_truncated', { mode: 'boolean' }).notNull().default(false),
    /** Re-sent after the relay reconnected: the relay must only re-attach, never start anew. */
    resume: integer('resume', { mode: 'boolean' }).notNull().default(false),
    /** The snapshot a guest's upgrade took before changing anything ({name, taken, pruned}). */
    snapshot: text('snapshot', { mode: 'json' }).$type<{ name: string; taken: boolean; pruned: string[] }>(),
    /** The policy rollout this job is a host step of (worker/rollouts.ts), or null. */
    rolloutId: text('rollout_id').references(() => rollouts.id, { onDelete: 'set null' }),
  },
  (t) => [
    index('jobs_host').on(t.hostId, t.createdAt),
    index('jobs_relay_status').on(t.relayId, t.status),
    index('jobs_created').on(t.createdAt),
    index('jobs_rollout').on(t.rolloutId),
    // the jobs list filtered by kind (History, the dashboard's recent upgrades), newest first;
    // patch activity per day (worker/trends.ts) reads only this index
    index('jobs_kind_created').on(t.kind, t.createdAt, t.status),
    // One change at a time per host, enforced by the database: a second upgrade, reboot or
    // stack update while one is queued or running fails this index (→ 409), even when two
    // requests race. (The kinds are job-kinds.ts's CHANGE_KINDS; job-kinds.test.ts checks.)
    uniqueIndex('jobs_one_change_per_host')
      .on(t.hostId)
      .where(sql`${t.kind} in ('upgrade', 'reboot', 'stack-update', 'rollback') and ${t.status} in (${sqlList(ACTIVE_STATUSES)})`),
  ],
);

/** A job's output in the order it arrived, in chunks (one per relay poll). */
export const jobOutput = sqliteTable(
  'job_output',
  {
    jobId: text('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    data: text('data').notNull(),
    /** A finished job's whole log, gzip-compressed (job-log.ts compactLogs); `data` is then ''. */
    gz: blob('gz', { mode: 'buffer' }),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.seq] })],
);

/** Pending updates of each host, replaced as a whole by every successful scan. */
export const hostUpdates = sqliteTable(
  'host_updates',
  {
    hostId: text('host_id')
      .notNull()
      .references(() => hosts.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    arch: text('arch').notNull(),
    currentVersion: text('current_version'),
    newVersion: text('new_version').notNull(),
    repository: text('repository').notNull(),
    security: integer('security', { mode: 'boolean' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.hostId, t.name, t.arch] })],
);

/** Each host's Docker Compose stacks as its last docker scan (or stack update) found them:
 * replaced by every full docker scan (stacks that disappeared are deleted), one stack at a
 * time by a scan limited to it. */
export const stacks = sqliteTable(
  'stacks',
  {
    id: text('id').primaryKey(),
    hostId: text('host_id')
      .notNull()
      .references(() => hosts.id, { onDelete: 'cascade' }),
    /** The Compose project name. */
    name: text('name').notNull(),
    /** As `docker compose ls` says it, e.g. `running(3)`. */
    status: text('status').notNull(),
    workingDir: text('working_dir'),
    configFiles: text('config_files', { mode: 'json' }).$type<string[]>().notNull().default([]),
    containers: text('containers', { mode: 'json' }).$type<InferOutput<typeof StackContainer>[]>().notNull().default([]),
    /** Containers whose image has a newer version under its tag. */
    updatesCount: integer('updates_count').notNull().default(0),
    /** Containers whose image could not be checked (pinned, built locally, registry error). */
    uncheckableCount: integer('uncheckable_count').notNull().default(0),
    checkedAt: ms('checked_at').notNull(),
    /** Why the last check of this stack failed (the data above is from before), or null. */
    error: text('error'),
  },
  (t) => [uniqueIndex('stacks_host_name').on(t.hostId, t.name)],
);

/** The guests (LXC containers, QEMU VMs) a Proxmox VE node's last scan listed, replaced as a
 * whole by each scan of the node (worker/guests.ts). */
export const proxmoxGuests = sqliteTable(
  'proxmox_guests',
  {
    nodeHostId: text('node_host_id')
      .notNull()
      .references(() => hosts.id, { onDelete: 'cascade' }),
    vmid: integer('vmid').notNull(),
    kind: text('kind', { enum: GUEST_KINDS }).notNull(),
    name: text('name').notNull(),
    /** Proxmox's own word: running, stopped, paused, … */
    status: text('status').notNull(),
    /** The cluster node it runs on. */
    node: text('node').notNull(),
    snapshots: integer('snapshots', { mode: 'boolean' }).notNull(),
    snapshotReason: text('snapshot_reason'),
    reachable: integer('reachable', { mode: 'boolean' }).notNull(),
    reachReason: text('reach_reason'),
    ostype: text('ostype'),
    seenAt: ms('seen_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.nodeHostId, t.vmid] })],
);

/** Each pending (host, package, new version) PatchMan has seen: when first, and when it stopped being pending (installed or superseded). */
export const updateSightings = sqliteTable(
  'update_sightings',
  {
    hostId: text('host_id').notNull().references(() => hosts.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    newVersion: text('new_version').notNull(),
    security: integer('security', { mode: 'boolean' }).notNull().default(false),
    firstSeenAt: integer('first_seen_at').notNull(),
    resolvedAt: integer('resolved_at'),
  },
  (t) => [primaryKey({ columns: [t.hostId, t.name, t.newVersion] }), index('update_sightings_open').on(t.hostId, t.resolvedAt)],
);

/** Each host's state per UTC day, from its scans (the last scan of the day wins): what the
 * host charts draw (the fleet's are in fleet_days). One small row per host and day keeps 90
 * days of 1,000 hosts at 90,000 rows (bench/RESULTS.md). */
export const hostDays = sqliteTable(
  'host_days',
  {
    hostId: text('host_id')
      .notNull()
      .references(() => hosts.id, { onDelete: 'cascade' }),
    /** Days since the epoch (UTC). */
    day: integer('day').notNull(),
    pending: integer('pending').notNull(),
    security: integer('security').notNull(),
    needReboot: integer('need_reboot').notNull(),
    /** 0 online, 1 error (a scan that found a problem). */
    error: integer('error').notNull(),
    /** Successful scans that day. */
    scans: integer('scans').notNull(),
  },
  (t) => [primaryKey({ columns: [t.hostId, t.day] })],
);

/** The fleet per UTC day: host_days summed, kept up to date by the same statements that write
 * host_days (worker/trends.ts), so the fleet trend reads ≤ 366 rows instead of 1,000 per day.
 * History: a host deleted later still counts on the days it was scanned. */
export const fleetDays = sqliteTable('fleet_days', {
  day: integer('day').primaryKey(),
  hosts: integer('hosts').notNull(),
  pending: integer('pending').notNull(),
  security: integer('security').notNull(),
  needReboot: integer('need_reboot').notNull(),
  errors: integer('errors').notNull(),
});

/** Key → JSON value; defaults live in protocol/api.ts (DEFAULT_SETTINGS). */
export const settings = sqliteTable('settings', {
  key: text('key').primaryKey(),
  value: text('value', { mode: 'json' }).notNull(),
});

// ---- accounts -------------------------------------------------------------------------------

export const ROLES = ['admin', 'operator', 'viewer'] as const;

export const users = sqliteTable('users', {
  id: text('id').primaryKey(),
  /** Lower-case login name (or, in Cloudflare Access mode, the e-mail address). */
  username: text('username').notNull().unique(),
  /** pbkdf2-sha256$iterations$salt$hash (worker/auth/password.ts); null for Access-only users. */
  passwordHash: text('password_hash'),
  role: text('role', { enum: ROLES }).notNull(),
  createdAt: ms('created_at').notNull(),
  lastLoginAt: ms('last_login_at'),
  disabledAt: ms('disabled_at'),
});

/** Browser sessions. The cookie holds a random token; only its SHA-256 is stored. */
export const sessions = sqliteTable(
  'sessions',
  {
    id: text('id').primaryKey(),
    tokenHash: text('token_hash').notNull().unique(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: ms('created_at').notNull(),
    lastSeenAt: ms('last_seen_at').notNull(),
    /** Absolute expiry; idle expiry is lastSeenAt + the idle limit. */
    expiresAt: ms('expires_at').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [index('sessions_user').on(t.userId)],
);

/** API tokens for scripts: a role, shown once, stored hashed, revocable. */
export const apiTokens = sqliteTable('api_tokens', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  tokenHash: text('token_hash').notNull().unique(),
  role: text('role', { enum: ROLES }).notNull(),
  createdBy: text('created_by'),
  /** The user the token answers to (its rights never exceed theirs; revoked with them). */
  createdByUserId: text('created_by_user_id'),
  createdAt: ms('created_at').notNull(),
  lastUsedAt: ms('last_used_at'),
  revokedAt: ms('revoked_at'),
});

/** Failed logins per account and client address: the lockout grows with each failure and is
 * capped, so an attacker slows a user down but cannot lock them out for good. */
export const loginThrottle = sqliteTable('login_throttle', {
  key: text('key').primaryKey(),
  failures: integer('failures').notNull().default(0),
  lockedUntil: ms('locked_until'),
  lastFailureAt: ms('last_failure_at').notNull(),
});

/** Every mutating action: who, what, on what, when, from where. */
export const audit = sqliteTable(
  'audit',
  {
    id: text('id').primaryKey(),
    at: ms('at').notNull(),
    actor: text('actor').notNull(),
    /** 'user', 'token', 'access', 'setup', 'system' */
    actorType: text('actor_type').notNull(),
    action: text('action').notNull(),
    target: text('target'),
    /** The target in words as it was then: a host's name, the hosts of a bulk action. */
    detail: text('detail'),
    /** HTTP status of the request. */
    status: integer('status').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [index('audit_at').on(t.at)],
);

// ---- patch policies and their rollouts (worker/rollouts.ts) -----------------------------------


/** A patch policy: which hosts, what, when and how (protocol/policy.ts PolicySpec). */
export const policies = sqliteTable('policies', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
  spec: text('spec', { mode: 'json' }).$type<PolicySpec>().notNull(),
  createdAt: ms('created_at').notNull(),
  updatedAt: ms('updated_at').notNull(),
  /** The scheduled time of the last rollout the cron started (so one slot starts once). */
  lastScheduledFor: ms('last_scheduled_for'),
});

/** One run of a policy: a persisted state machine advanced by its RolloutRunner. */
export const rollouts = sqliteTable(
  'rollouts',
  {
    id: text('id').primaryKey(),
    policyId: text('policy_id').references(() => policies.id, { onDelete: 'set null' }),
    policyName: text('policy_name').notNull(),
    /** The policy as it was when the rollout started: later edits do not change a run. */
    spec: text('spec', { mode: 'json' }).$type<PolicySpec>().notNull(),
    status: text('status', { enum: ROLLOUT_STATUSES }).notNull().default('pending'),
    /** The batch being worked on: 0 = canary. */
    batch: integer('batch').notNull().default(0),
    batches: integer('batches').notNull().default(0),
    failures: integer('failures').notNull().default(0),
    trigger: text('trigger', { enum: ['manual', 'schedule'] }).notNull(),
    requestedBy: text('requested_by'),
    /** Why it halted, closed or was cancelled. */
    reason: text('reason'),
    /** No host starts after this (scheduled runs: slot + window). */
    windowEndsAt: ms('window_ends_at'),
    createdAt: ms('created_at').notNull(),
    startedAt: ms('started_at'),
    finishedAt: ms('finished_at'),
  },
  (t) => [index('rollouts_policy').on(t.policyId, t.createdAt), index('rollouts_status').on(t.status)],
);

/** Each host of a rollout: its batch, where it is, its jobs, and why it was skipped or failed. */
export const rolloutHosts = sqliteTable(
  'rollout_hosts',
  {
    rolloutId: text('rollout_id').notNull().references(() => rollouts.id, { onDelete: 'cascade' }),
    hostId: text('host_id').notNull().references(() => hosts.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    /** Order within the rollout. */
    position: integer('position').notNull(),
    /** 0 = canary, 1… = batches; null = skipped at the start. */
    batch: integer('batch'),
    status: text('status', { enum: ROLLOUT_HOST_STATUSES }).notNull(),
    jobId: text('job_id'),
    rebootJobId: text('reboot_job_id'),
    reason: text('reason'),
    /** The packages the upgrade was given (null = the whole system). */
    packages: text('packages', { mode: 'json' }).$type<string[] | null>(),
  },
  (t) => [primaryKey({ columns: [t.rolloutId, t.hostId] })],
);

// ---- notifications ----------------------------------------------------------------------------

/** Where notifications go. Secret settings (webhook URLs, tokens, passwords) live only in
 * `secret`, AES-GCM encrypted with the NOTIFY_KEY Worker secret (worker/notify/secrets.ts). */
export const notifyChannels = sqliteTable('notify_channels', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  type: text('type').notNull(),
  /** 'worker' or the id of the relay that delivers. */
  via: text('via').notNull().default('worker'),
  events: text('events', { mode: 'json' }).$type<string[]>().notNull().default([]),
  tags: text('tags', { mode: 'json' }).$type<string[]>().notNull().default([]),
  minSeverity: text('min_severity', { enum: ['info', 'warning', 'critical'] }).notNull().default('info'),
  enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
  maxPerHour: integer('max_per_hour').notNull().default(30),
  /** The non-secret settings. */
  config: text('config', { mode: 'json' }).$type<Record<string, unknown>>().notNull().default({}),
  /** Encrypted JSON of the secret settings: `v1.<iv>.<ciphertext>` (base64url). */
  secret: text('secret'),
  lastSentAt: ms('last_sent_at'),
  lastError: text('last_error'),
  lastErrorAt: ms('last_error_at'),
  createdAt: ms('created_at').notNull(),
  updatedAt: ms('updated_at').notNull(),
});

/** Facts noticed but not yet announced: collected for a short window, then flushed as one
 * message per channel and event name (worker/notify/outbox.ts). */
export const notifyEvents = sqliteTable(
  'notify_events',
  {
    id: text('id').primaryKey(),
    event: text('event').notNull(),
    hostId: text('host_id'),
    /** What the message says about this fact ({name, detail, jobId?, relayId?, rank}). */
    data: text('data', { mode: 'json' }).$type<{ name: string; detail: string; jobId?: string; relayId?: string; rank: number }>().notNull(),
    createdAt: ms('created_at').notNull(),
  },
  (t) => [index('notify_events_created').on(t.createdAt)],
);

/** The outbox and the delivery log: one row per message per channel. */
export const notifyDeliveries = sqliteTable(
  'notify_deliveries',
  {
    id: text('id').primaryKey(),
    channelId: text('channel_id')
      .notNull()
      .references(() => notifyChannels.id, { onDelete: 'cascade' }),
    event: text('event').notNull(),
    status: text('status', { enum: ['pending', 'sent', 'failed'] }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** The message (rendered for the channel's type at send time, with its secrets). */
    message: text('message', { mode: 'json' }).$type<NotifyMessage>().notNull(),
    error: text('error'),
    createdAt: ms('created_at').notNull(),
    nextAttemptAt: ms('next_attempt_at'),
    sentAt: ms('sent_at'),
  },
  (t) => [
    index('notify_deliveries_channel').on(t.channelId, t.createdAt),
    index('notify_deliveries_due').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
  ],
);

/** What was last announced about each thing (`host:<id>`, `relay:<id>`, `digest`), so the
 * same fact is not sent twice: only changes are. */
export const notifyState = sqliteTable('notify_state', {
  key: text('key').primaryKey(),
  value: text('value', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
  updatedAt: ms('updated_at').notNull(),
});
