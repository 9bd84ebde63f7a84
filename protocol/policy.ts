// Patch policies and rollouts: the API bodies and responses (`/api/policies`, `/api/rollouts`),
// the package glob rule, and the schedule rule (cron in an IANA time zone, via croner, which
// gets DST right). The Worker validates with these; the dashboard shows next runs with them.
import * as v from 'valibot';
import { Cron } from 'croner';
import { Id, Label, Tag } from './fields.ts';
import { PackageManagerName } from './relay.ts';

// ---- package globs -----------------------------------------------------------------------

/** A package glob: the characters of a package name plus `*` and `?`. No brackets, spaces,
 * quotes or shell characters — a glob is matched by the Worker and never reaches a shell. */
export const GLOB = /^[A-Za-z0-9*?][A-Za-z0-9+._@*?:-]{0,127}$/;

export const PackageGlob = v.pipe(
  v.string('must be a string'),
  v.regex(GLOB, 'must be a package glob: letters, digits, + . _ @ : - and the wildcards * ? (no spaces or shell characters)'),
);

/** `linux-image-*` → /^linux-image-.*$/ (everything else literal). */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export function matchesAny(name: string, globs: readonly string[]): boolean {
  return globs.some((g) => globToRegExp(g).test(name));
}

// ---- schedules -----------------------------------------------------------------------------

/** Whether the runtime knows this IANA time zone. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return /\//.test(tz) || tz === 'UTC';
  } catch {
    return false;
  }
}

/** Why a cron expression is not one we accept (five fields: minute hour day month weekday), or null. */
export function cronProblem(expr: string): string | null {
  if (expr.trim().split(/\s+/).length !== 5) return 'must have five fields: minute hour day-of-month month day-of-week (e.g. "30 2 * * 0")';
  try {
    new Cron(expr, { paused: true });
    return null;
  } catch (err) {
    return `is not a valid cron expression: ${(err as Error).message.replace(/^CronPattern: /, '')}`;
  }
}

/** The next `n` run times after `after` of a cron expression in a time zone (DST-correct: a
 * time skipped by the spring change runs at the first valid minute after it, a time repeated
 * by the autumn change runs once). */
export function nextRuns(cron: string, timeZone: string, n: number, after: Date): Date[] {
  return new Cron(cron, { timezone: timeZone, paused: true }).nextRuns(n, after);
}

/** Longest window a scheduled rollout may keep starting hosts. */
export const MAX_WINDOW_MINUTES = 24 * 60;

export const Schedule = v.pipe(
  v.strictObject({
    cron: v.pipe(
      v.string('must be a string'),
      v.maxLength(100),
      v.check((s) => cronProblem(s) === null, (issue) => cronProblem(String(issue.input)) ?? 'invalid'),
    ),
    timeZone: v.pipe(v.string('must be a string'), v.maxLength(64), v.check(isTimeZone, 'must be an IANA time zone such as Europe/Berlin')),
    windowMinutes: v.pipe(v.number('must be a number'), v.integer('must be whole minutes'), v.minValue(5, 'must be at least 5'), v.maxValue(MAX_WINDOW_MINUTES, `must be at most ${MAX_WINDOW_MINUTES}`)),
  }),
);

// ---- policies ------------------------------------------------------------------------------

const list = <T extends v.GenericSchema>(item: T, max: number) => v.optional(v.pipe(v.array(item, 'must be a list'), v.maxLength(max, `at most ${max}`)));

export const Selector = v.pipe(
  v.strictObject({
    tags: list(Tag, 64),
    hostIds: list(Id, 5000),
    packageManagers: list(PackageManagerName, 6),
    relayIds: list(Id, 100),
  }),
  v.check((s) => Object.values(s).some((l) => l && l.length > 0), 'must name at least one of tags, hostIds, packageManagers or relayIds'),
);
export type Selector = v.InferOutput<typeof Selector>;

const Count = (min: number, max: number) =>
  v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(min, `must be ${min}–${max}`), v.maxValue(max, `must be ${min}–${max}`));

export const RolloutPlan = v.pipe(
  v.strictObject({
    /** The first N matching hosts, or these hosts, go first, alone. */
    canary: v.optional(v.union([Count(0, 100), v.pipe(v.array(Id, 'must be a number or a list of host ids'), v.minLength(1), v.maxLength(100))], 'must be a number of hosts or a list of host ids'), 1),
    batchSize: v.optional(Count(1, 1000)),
    batchPercent: v.optional(Count(1, 100)),
    concurrency: v.optional(Count(1, 100), 5),
    haltAfterFailures: v.optional(Count(1, 1000), 1),
    /** Between batches, the upgraded hosts must have been rescanned and be online. */
    rescanBetweenBatches: v.optional(v.boolean('must be true or false'), true),
  }),
  v.check((r) => !(r.batchSize !== undefined && r.batchPercent !== undefined), 'give batchSize or batchPercent, not both'),
);

export const PolicyBody = v.strictObject({
  name: Label,
  enabled: v.optional(v.boolean('must be true or false'), true),
  selector: Selector,
  scope: v.optional(v.picklist(['security', 'all'], 'must be security or all'), 'security'),
  include: list(PackageGlob, 100),
  exclude: list(PackageGlob, 100),
  aptMode: v.optional(v.picklist(['dist-upgrade', 'upgrade'], 'must be dist-upgrade or upgrade'), 'dist-upgrade'),
  schedule: v.optional(v.nullable(Schedule), null),
  cooldownDays: v.optional(Count(0, 365), 0),
  /** Hosts whose last successful scan is older than this are skipped. */
  maxScanAgeHours: v.optional(Count(1, 24 * 90), 48),
  rollout: v.optional(RolloutPlan, {}),
  reboot: v.optional(v.picklist(['never', 'if-required'], 'must be never or if-required'), 'never'),
});
export type PolicyBody = v.InferOutput<typeof PolicyBody>;
/** What a policy stores (everything but its id and name bookkeeping). */
export type PolicySpec = Omit<PolicyBody, 'name' | 'enabled'>;

export type Policy = PolicyBody & { id: string; nextRuns: string[]; createdAt: string; updatedAt: string; lastRunAt: string | null };

/** True when the policy asks for the whole system (no filter at all): a full upgrade. Any
 * filter means named packages, which pacman and Proxmox hosts cannot do. */
export function wantsEverythingSpec(spec: { scope: string; include?: string[]; exclude?: string[]; cooldownDays: number }): boolean {
  return spec.scope === 'all' && !spec.include?.length && !spec.exclude?.length && spec.cooldownDays === 0;
}

// ---- preview -------------------------------------------------------------------------------

export interface PlannedPackage {
  name: string;
  currentVersion: string | null;
  newVersion: string;
  security: boolean;
}

export interface PreviewHost {
  hostId: string;
  name: string;
  action: 'upgrade' | 'skip';
  reason?: string;
  packages: PlannedPackage[];
  /** True: the whole system is upgraded (apt `dist-upgrade`/`upgrade`, pacman -Syu); false: exactly `packages`. */
  full: boolean;
  rebootExpected: boolean;
}

export interface Preview {
  hosts: PreviewHost[];
  /** Plain words for what the policy does about reboots (also in the audit). */
  reboot: string;
}

// ---- rollouts ------------------------------------------------------------------------------

export const ROLLOUT_STATUSES = ['pending', 'running', 'paused', 'done', 'halted', 'cancelled', 'window-closed'] as const;
export type RolloutStatus = (typeof ROLLOUT_STATUSES)[number];
/** A rollout in one of these may still start hosts. */
export const ROLLOUT_LIVE: RolloutStatus[] = ['pending', 'running', 'paused'];

export const ROLLOUT_HOST_STATUSES = ['waiting', 'running', 'rescanning', 'reboot-waiting', 'rebooting', 'succeeded', 'failed', 'skipped', 'not-started'] as const;
export type RolloutHostStatus = (typeof ROLLOUT_HOST_STATUSES)[number];

export interface RolloutHost {
  hostId: string;
  name: string;
  /** 0 = canary, 1… = batches; null = skipped before any batch. */
  batch: number | null;
  status: RolloutHostStatus;
  jobId?: string;
  rebootJobId?: string;
  reason?: string;
  packages: string[] | null;
}

export interface Rollout {
  id: string;
  policyId: string | null;
  policyName: string;
  status: RolloutStatus;
  phase: 'canary' | 'batches' | null;
  /** The batch being worked on (0 = canary). */
  batch: number;
  batches: number;
  trigger: 'manual' | 'schedule';
  requestedBy: string | null;
  reason: string | null;
  reboot: 'never' | 'if-required';
  failures: number;
  hosts: RolloutHost[];
  windowEndsAt: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export const RolloutQuery = v.strictObject({ policyId: v.optional(Id) });
