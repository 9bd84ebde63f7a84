// What a policy would do right now, host by host: which hosts it selects, which it skips and
// why, and exactly which packages each would get. The preview shows it; a rollout asks again
// for each host just before starting it, so a host never gets more than its plan says.
import { and, inArray, isNull } from 'drizzle-orm';
import { matchesAny, wantsEverythingSpec, type PlannedPackage, type PolicySpec, type Preview, type PreviewHost, type Selector } from '../protocol/policy.ts';
import { fullUpgradeOnly, PROXMOX_FULL_ONLY } from '../protocol/upgrade-rules.ts';
import { schema, type Db, type HostRow } from './db/index.ts';
import { unsnapshottableGuests } from './guest-changes.ts';

const { hosts, hostUpdates, updateSightings } = schema;

const DAY_MS = 86_400_000;
/** D1 binds at most 100 parameters per statement. */
const IDS_PER_QUERY = 90;

/** Packages whose upgrade means a reboot to take effect (kernels). */
const KERNEL = /^(linux-image|linux-modules|linux|linux-lts|linux-zen|linux-hardened|kernel|kernel-core|pve-kernel|proxmox-kernel)(-|$)/;

export function selects(selector: Selector, h: HostRow): boolean {
  if (selector.tags?.length && !selector.tags.some((t) => h.tags.includes(t))) return false;
  if (selector.hostIds?.length && !selector.hostIds.includes(h.id)) return false;
  if (selector.packageManagers?.length && !(h.packageManager && selector.packageManagers.includes(h.packageManager))) return false;
  if (selector.relayIds?.length && !(h.relayId && selector.relayIds.includes(h.relayId))) return false;
  return true;
}


/** The reboot rule in plain words (preview and audit). */
export function rebootWording(spec: PolicySpec): string {
  return spec.reboot === 'if-required'
    ? 'Hosts that need a reboot after their upgrade are rebooted, one at a time, within the window; PatchMan waits for each to come back and rescans it.'
    : 'Nothing is rebooted: hosts that need a reboot afterwards are only reported.';
}

type Pending = typeof hostUpdates.$inferSelect;

interface HostFacts {
  updates: Pending[];
  /** `name\0newVersion` → first seen (open sightings only). */
  firstSeen: Map<string, number>;
}

async function loadFacts(db: Db, ids: string[], withSightings: boolean): Promise<Map<string, HostFacts>> {
  const facts = new Map<string, HostFacts>(ids.map((id) => [id, { updates: [], firstSeen: new Map() }]));
  for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
    const chunk = ids.slice(i, i + IDS_PER_QUERY);
    for (const u of await db.select().from(hostUpdates).where(inArray(hostUpdates.hostId, chunk))) facts.get(u.hostId)!.updates.push(u);
    if (withSightings) {
      const rows = await db
        .select()
        .from(updateSightings)
        .where(and(inArray(updateSightings.hostId, chunk), isNull(updateSightings.resolvedAt)));
      for (const s of rows) facts.get(s.hostId)!.firstSeen.set(`${s.name}\0${s.newVersion}`, s.firstSeenAt);
    }
  }
  return facts;
}

/** Why the policy leaves this host alone before looking at its packages, or null. */
function hostSkip(spec: PolicySpec, h: HostRow, now: number): string | null {
  if (h.monitorOnly) return 'monitor-only: PatchMan scans this host but never changes it';
  if (!h.relayId) return 'no relay assigned';
  if (h.hostKeyOffered) return `its SSH host key changed (${h.hostKeyOffered}); an admin must accept the new key first`;
  if (h.status === 'offline' || h.status === 'error') return `its last scan failed: ${h.statusReason ?? h.status}`;
  if (!h.lastScanAt) return 'never scanned';
  if (h.lastScanAt < now - spec.maxScanAgeHours * 3_600_000) return `its last scan is older than ${spec.maxScanAgeHours} h`;
  if (!h.packageManager) return 'no supported package manager';
  return null;
}

function planOne(spec: PolicySpec, h: HostRow, facts: HostFacts, now: number): PreviewHost {
  const base = { hostId: h.id, name: h.name, packages: [] as PlannedPackage[], full: false, rebootExpected: false };
  const skip = (reason: string): PreviewHost => ({ ...base, action: 'skip', reason });
  const why = hostSkip(spec, h, now);
  if (why) return skip(why);

  const full = wantsEverythingSpec(spec);
  if (!full) {
    const whole = fullUpgradeOnly(h);
    if (whole) return skip(`the policy picks packages, but this host can only be upgraded as a whole: ${whole}`);
  } else if (spec.aptMode === 'upgrade' && h.proxmox) {
    return skip(`aptMode "upgrade" is not allowed here: ${PROXMOX_FULL_ONLY}`);
  }

  const held = new Set(h.held.map((p) => p.name));
  const cutoff = now - spec.cooldownDays * DAY_MS;
  const chosen = new Map<string, PlannedPackage>();
  for (const u of facts.updates) {
    if (!full) {
      if (spec.scope === 'security' && !u.security) continue;
      if (spec.include?.length && !matchesAny(u.name, spec.include)) continue;
      if (spec.exclude?.length && matchesAny(u.name, spec.exclude)) continue;
      if (held.has(u.name)) continue;
      if (spec.cooldownDays > 0 && (facts.firstSeen.get(`${u.name}\0${u.newVersion}`) ?? now) > cutoff) continue;
    }
    // one entry per name (a package pending for two architectures is upgraded once)
    if (!chosen.has(u.name)) chosen.set(u.name, { name: u.name, currentVersion: u.currentVersion, newVersion: u.newVersion, security: u.security });
  }
  const packages = [...chosen.values()].sort((a, b) => a.name.localeCompare(b.name));
  if (packages.length === 0) {
    return { ...skip(facts.updates.length ? 'nothing pending that the policy applies (scope, globs, held packages or cooldown)' : 'up to date') };
  }
  return {
    ...base,
    action: 'upgrade',
    packages,
    full,
    rebootExpected: !!h.rebootRequired || packages.some((p) => KERNEL.test(p.name)),
  };
}

/** The policy's plan for every host it selects (sorted by name). A policy that selects no host
 * has an empty plan; that is valid. */
export async function planPolicy(db: Db, spec: PolicySpec, now: number, only?: string[]): Promise<PreviewHost[]> {
  const all = only?.length ? await selectHosts(db, only) : await db.select().from(hosts);
  const selected = all.filter((h) => selects(spec.selector, h)).sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  const facts = await loadFacts(
    db,
    selected.map((h) => h.id),
    spec.cooldownDays > 0,
  );
  const noSnapshot = await unsnapshottableGuests(db, selected);
  return selected.map((h) => {
    const plan = planOne(spec, h, facts.get(h.id)!, now);
    const why = noSnapshot.get(h.id);
    return why && plan.action === 'upgrade' ? { ...plan, action: 'skip', reason: why, packages: [], full: false, rebootExpected: false } : plan;
  });
}

async function selectHosts(db: Db, ids: string[]): Promise<HostRow[]> {
  const out: HostRow[] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_QUERY) out.push(...(await db.select().from(hosts).where(inArray(hosts.id, ids.slice(i, i + IDS_PER_QUERY)))));
  return out;
}

export async function previewPolicy(db: Db, spec: PolicySpec, now: number): Promise<Preview> {
  return { hosts: await planPolicy(db, spec, now), reboot: rebootWording(spec) };
}
