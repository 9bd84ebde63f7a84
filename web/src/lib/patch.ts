// Plain words for patching: what a host allows (full or selective upgrades, reboots), why a
// button is disabled, what a finished upgrade or reboot did, and small helpers for logs.
import type { Host, Job } from '$protocol/api.ts';
import type { PackageUpdate } from '$protocol/relay.ts';
import { LEGACY_FAILURE_CODES, PACKAGE_FAILURES, fullUpgradeOnly } from '$protocol/package-managers.ts';
import { ApiError } from './api.ts';

export const MONITOR_ONLY_REASON = 'Monitor only: PatchMan never changes this host. To patch it from here, turn “Monitor only” off in Edit host.';

/** Why this host's packages cannot be picked one by one, or null when they can (apt, not Proxmox). */
export function selectiveBlock(host: Host): string | null {
  if (host.packageManager === null && !host.proxmox) return 'Scan this host first.';
  return fullUpgradeOnly(host);
}

/** Why no upgrade or reboot can be started now (monitor-only, no relay, one already running), or null. */
export function changeBlock(host: Host, active: Job | null | undefined): string | null {
  if (host.monitorOnly) return MONITOR_ONLY_REASON;
  if (!host.relayId) return 'No relay reaches this host: choose one in Edit host.';
  if (active) return `${changeName(active)} of this host is already ${active.status === 'queued' ? 'queued' : 'running'}.`;
  return null;
}

/** Why a full upgrade cannot be started, or null. */
export function upgradeBlock(host: Host, active: Job | null | undefined): string | null {
  const b = changeBlock(host, active);
  if (b) return b;
  if (!host.packageManager) return 'Scan this host first: PatchMan does not know its package manager yet.';
  if (host.updatesCount === 0) return 'Nothing to upgrade: no updates pending as of the last scan.';
  return null;
}

/** The name an upgrade request uses for a package: `name:arch` for a foreign architecture
 * (i386 on amd64), else the bare name. */
const NATIVE = new Set(['all', 'any', 'noarch', 'amd64', 'x86_64']);
export function foreignArch(arch: string, hostArch: string | null): boolean {
  return !!arch && !NATIVE.has(arch) && arch !== hostArch && !(hostArch === 'aarch64' && arch === 'arm64');
}
export function packageSpec(u: PackageUpdate, hostArch: string | null): string {
  return foreignArch(u.arch, hostArch) ? `${u.name}:${u.arch}` : u.name;
}

/** Security updates first, then by name. */
export function sortUpdates(updates: PackageUpdate[]): PackageUpdate[] {
  return updates.toSorted((a, b) => Number(b.security) - Number(a.security) || a.name.localeCompare(b.name, undefined, { numeric: true }));
}

/** A 409's code in plain words (the API's message says the rest). */
export function refusalText(code: string, message: string): string {
  switch (code) {
    case 'monitor-only':
      return 'it is monitor only (never changed by PatchMan)';
    case 'busy':
      return 'another job is running on it';
    case 'full-upgrade-only':
      return 'it can only be upgraded as a whole';
    case 'no-relay':
      return 'no relay reaches it';
    case 'nothing-pending':
    case 'no-updates':
      return 'no updates are pending';
    case 'host-key-changed':
      return 'its SSH host key changed: an admin must accept the new key first';
    case 'no-snapshot':
      return 'its storage cannot take the snapshot PatchMan takes first; upgrade it from its own page to go on without one';
    case 'guest':
      return 'it is a Proxmox guest: restart it in Proxmox';
    default:
      return message;
  }
}

const DONE = { reboot: 'rebooted', upgrade: 'upgraded' } as const;

/**
 * Why the server did not start a reboot or an upgrade, in words: the host `name` refused it
 * for now (409; only with a name), or this server has no such API yet (404). Null for any
 * other error.
 */
export function notStarted(err: unknown, what: 'reboot' | 'upgrade', name?: string): string | null {
  if (!(err instanceof ApiError)) return null;
  if (err.status === 409 && name !== undefined) return `${name} cannot be ${DONE[what]} now: ${refusalText(err.code, err.message)}.`;
  if (err.status === 404 && err.code === 'http_404') return `This PatchMan server cannot ${what} hosts yet (no ${what} API).`;
  return null;
}

/** Jobs that change a host: one at a time per host. */
export const isChangeJob = (job: Job) => job.kind === 'upgrade' || job.kind === 'reboot' || job.kind === 'stack-update' || job.kind === 'rollback';
/** Upgrades and reboots: what the patch banner follows (stack updates have their own page). */
export const isPatchJob = (job: Job) => job.kind === 'upgrade' || job.kind === 'reboot';

/** "An upgrade", "A reboot", "An update of stack media". */
export function changeName(job: Pick<Job, 'kind' | 'stack'>): string {
  if (job.kind === 'reboot') return 'A reboot';
  if (job.kind === 'stack-update') return job.stack ? `An update of stack ${job.stack}` : 'A stack update';
  if (job.kind === 'rollback') return 'A rollback';
  return 'An upgrade';
}

/** "1 host", "3 hosts". */
export const plural = (n: number, one: string, many = one + 's') => `${n} ${n === 1 ? one : many}`;

/** What an upgrade changed, counted: "12 packages upgraded, 1 installed". */
export function changesText(job: Job): string | null {
  const changes = job.changes;
  if (!changes) return null;
  let upgraded = 0, installed = 0, removed = 0;
  for (const c of changes) {
    if (c.from === null) installed++;
    else if (c.to === null) removed++;
    else upgraded++;
  }
  const parts: string[] = [];
  if (upgraded) parts.push(plural(upgraded, 'package') + ' upgraded');
  if (installed) parts.push(`${upgraded ? installed : plural(installed, 'package')} newly installed`);
  if (removed) parts.push(`${upgraded || installed ? removed : plural(removed, 'package')} removed`);
  return parts.length ? parts.join(', ') : 'nothing changed (every package was already up to date)';
}

/** What a stack update changed: "2 containers updated to newer images". */
export function stackChangesText(job: Job): string | null {
  if (!job.changes) return null;
  const n = job.changes.length;
  if (n === 0) return job.exitCode ? job.summary : 'nothing changed: every image was already up to date';
  return `${plural(n, 'container')} recreated with a newer image`;
}

/** The outcome of a finished job in a sentence. */
export function outcomeText(job: Job): string {
  switch (job.status) {
    case 'succeeded':
      if (job.kind === 'upgrade') return changesText(job) ?? job.summary ?? 'Upgrade finished';
      if (job.kind === 'reboot') return job.summary ?? 'The host rebooted and is back';
      if (job.kind === 'stack-update') return stackChangesText(job) ?? job.summary ?? 'Stack updated';
      return job.summary ?? 'Done';
    case 'failed':
      return job.error ? errorText(job.error.code, job.error.message) : job.exitCode != null ? `Failed with exit code ${job.exitCode}` : 'Failed';
    case 'lost':
      return job.error?.message ?? 'The relay lost track of this job: its outcome is unknown. Scan the host to see where it stands.';
    case 'cancelled':
      return job.error?.message ?? 'Cancelled before it started: nothing was changed.';
    default:
      return job.status;
  }
}

/** A job error in plain words: a short explanation for the codes that need one, then the message. */
export function errorText(code: string, message: string): string {
  const lead: Record<string, string> = {
    ...PACKAGE_FAILURES,
    'dpkg-interrupted': 'An earlier dpkg run was interrupted; run “dpkg --configure -a” on the host first',
    'sudo-password': 'sudo asked for a password',
    'host-down': 'The host did not come back after the reboot',
    unreachable: 'The host could not be reached',
    timeout: 'The host did not answer in time',
    'auth-refused': 'The host refused the relay’s SSH key',
    'host-key-changed': 'The host’s SSH key has changed',
    'relay-disconnected': 'The relay disconnected',
    'monitor-only': 'The host is monitor only',
    'not-started': 'The run never started on the host: nothing was changed',
  };
  const l = lead[code] ?? lead[LEGACY_FAILURE_CODES[code] ?? ''];
  if (!l) return message;
  if (!message || message.toLowerCase().startsWith(l.toLowerCase())) return message || l;
  return `${l}: ${message}`;
}

/** "3.2 s", "4 min 05 s", "1 h 02 min". */
export function formatDuration(ms: number | null | undefined): string | null {
  if (ms == null || !Number.isFinite(ms)) return null;
  const s = Math.max(0, Math.round(ms / 1000));
  if (ms < 10_000 && ms % 1000 !== 0) return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** A job's duration: durationMs when the API has it, else finished − started. */
export function jobDuration(job: Job): string | null {
  if (job.durationMs != null) return formatDuration(job.durationMs);
  if (!job.startedAt || !job.finishedAt) return null;
  return formatDuration(Date.parse(job.finishedAt) - Date.parse(job.startedAt));
}

/** Who asked: the scheduled run, this dashboard (no accounts yet: "you"), or a user name. */
export function whoLabel(requestedBy: string | null): string {
  if (requestedBy === null) return 'you';
  if (requestedBy === 'schedule' || requestedBy === 'scheduled') return 'scheduled';
  return requestedBy;
}

/** What a job was asked to do, in a few words. */
export function whatLabel(job: Job): string {
  switch (job.kind) {
    case 'upgrade':
      if (!job.packages) return 'full upgrade';
      if (job.packages.length <= 3) return job.packages.join(', ');
      return `${job.packages.slice(0, 3).join(', ')} +${job.packages.length - 3} more`;
    case 'reboot':
      return 'reboot';
    case 'scan':
      return 'check for updates';
    case 'docker-scan':
      return job.stack ? `check stack ${job.stack}` : 'check Compose stacks';
    case 'stack-update':
      if (!job.stack) return 'stack update';
      if (!job.services) return `stack ${job.stack}`;
      return `stack ${job.stack}: ${job.services.length <= 3 ? job.services.join(', ') : `${job.services.slice(0, 3).join(', ')} +${job.services.length - 3} more`}`;
    case 'rollback':
      return job.rollback ? `back to ${job.rollback.snapshot}` : 'rollback';
    default:
      return job.kind;
  }
}

export const KIND_LABELS: Record<Job['kind'], string> = {
  scan: 'Scan',
  upgrade: 'Upgrade',
  reboot: 'Reboot',
  'docker-scan': 'Stack check',
  'stack-update': 'Stack update',
  rollback: 'Rollback',
};

// ---- Docker images ---------------------------------------------------------------------

/** `sha256:abcd1234…` from a full digest (the whole one goes in a title). */
export function shortDigest(digest: string | null | undefined): string | null {
  if (!digest) return null;
  const m = /^(sha256:)?([0-9a-f]+)$/i.exec(digest);
  if (!m) return digest.length > 24 ? `${digest.slice(0, 24)}…` : digest;
  return `${m[1] ?? ''}${m[2].slice(0, 8)}${m[2].length > 8 ? '…' : ''}`;
}
export const STATUS_LABELS: Record<Job['status'], string> = {
  queued: 'queued',
  dispatched: 'starting',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
  lost: 'lost',
};

// ---- logs ------------------------------------------------------------------------------

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]/g;

/** Terminal output as plain text: no colour codes, and a line redrawn with \r shows only
 * its last state (apt's and pacman's progress lines). */
export function cleanLog(text: string): string {
  let s = text.replace(ANSI, '');
  if (s.includes('\r')) {
    s = s
      .replace(/\r\n/g, '\n')
      .split('\n')
      .map((line) => {
        const i = line.lastIndexOf('\r', line.length - 2);
        return i >= 0 ? line.slice(i + 1).replace(/\r$/, '') : line.replace(/\r$/, '');
      })
      .join('\n');
  }
  return s;
}

/** The last line with something on it (for a one-line progress view). */
export function lastLine(text: string): string | null {
  let end = text.length;
  while (end > 0) {
    const start = Math.max(text.lastIndexOf('\n', end - 1), text.lastIndexOf('\r', end - 1)) + 1;
    const line = text.slice(start, end).replace(ANSI, '').trim();
    if (line) return line.length > 300 ? line.slice(0, 300) + '…' : line;
    end = start - 1;
  }
  return null;
}

/** An image reference with a pinned digest shortened: `traefik@sha256:ffffffff…`. */
export function shortImage(image: string): string {
  return image.replace(/@sha256:([0-9a-f]{8})[0-9a-f]+/i, '@sha256:$1…');
}

/** Why this host's Compose stacks cannot be updated now, or null. */
export function stackUpdateBlock(host: Host | undefined, active: Job | null | undefined): string | null {
  if (!host) return null;
  if (host.monitorOnly) return 'Monitor only: PatchMan never changes this host, its containers included. To update its stacks from here, turn “Monitor only” off in Edit host.';
  if (host.hostKeyOffered) return `The SSH host key of ${host.name} changed: an admin must accept the new key on the host page first.`;
  return changeBlock(host, active);
}

type ImageCheckStatus = 'up-to-date' | 'update-available' | 'not-checkable' | 'error';

/** A container's image check in plain words. */
export function imageCheckText(check: { status: ImageCheckStatus; reason: string | null }): string {
  switch (check.status) {
    case 'up-to-date':
      return 'Up to date';
    case 'update-available':
      return 'Newer image available';
    case 'not-checkable':
      return check.reason ? `Cannot be checked: ${check.reason}` : 'Cannot be checked';
    case 'error':
      return check.reason ? `Check failed: ${check.reason}` : 'Check failed';
  }
}
