// The D1 schema. Migrations in migrations/ are generated from this file by drizzle-kit
// (`npm run db:generate`); never edit them by hand.
import { sql } from 'drizzle-orm';
import { sqliteTable, text, integer, index, uniqueIndex, primaryKey } from 'drizzle-orm/sqlite-core';
import type { InferOutput } from 'valibot';
import type { StackContainer } from '../../protocol/relay.ts';

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
    packageManager: text('package_manager', { enum: ['apt', 'pacman', 'dnf', 'yum', 'zypper', 'apk'] }),
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
    /** The host key the relay has pinned (as of the last good connection), `SHA256:…`. */
    hostKey: text('host_key'),
    /** A different key the host offered: the host is blocked until an admin accepts it. */
    hostKeyOffered: text('host_key_offered'),
    createdAt: ms('created_at').notNull(),
    updatedAt: ms('updated_at').notNull(),
  },
  (t) => [uniqueIndex('hosts_target').on(t.relayId, t.address, t.port, t.user)],
);

export const jobs = sqliteTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    kind: text('kind', { enum: ['scan', 'upgrade', 'reboot', 'docker-scan', 'stack-update'] }).notNull(),
    hostId: text('host_id')
      .notNull()
      .references(() => hosts.id, { onDelete: 'cascade' }),
    relayId: text('relay_id'),
    status: text('status', {
      enum: ['queued', 'dispatched', 'running', 'succeeded', 'failed', 'cancelled', 'lost'],
    })
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
    params: text('params', { mode: 'json' }).$type<{ packages?: string[]; bootId?: string | null; stack?: string; services?: string[] }>(),
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
  },
  (t) => [
    index('jobs_host').on(t.hostId, t.createdAt),
    index('jobs_relay_status').on(t.relayId, t.status),
    index('jobs_created').on(t.createdAt),
    // One change at a time per host, enforced by the database: a second upgrade, reboot or
    // stack update while one is queued or running fails this index (→ 409), even when two
    // requests race.
    uniqueIndex('jobs_one_change_per_host')
      .on(t.hostId)
      .where(sql`${t.kind} in ('upgrade', 'reboot', 'stack-update') and ${t.status} in ('queued', 'dispatched', 'running')`),
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
    /** HTTP status of the request. */
    status: integer('status').notNull(),
    ip: text('ip'),
    userAgent: text('user_agent'),
  },
  (t) => [index('audit_at').on(t.at)],
);
