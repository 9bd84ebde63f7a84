// D1 rows → the API's JSON shapes (protocol/api.ts). Secrets (token hashes) never leave here.
import type { ApiToken, AuditEntry, Host, Job, Relay, Stack, User } from '../../protocol/api.ts';
import type { HostListItem } from '../../protocol/host-query.ts';
import { schema, type HostRow, type JobRow, type RelayRow, type StackRow } from '../db/index.ts';
import { sshKeyFingerprint } from '../relay-key.ts';

const iso = (t: number | null | undefined) => (t == null ? null : new Date(t).toISOString());

export function relayJson(r: RelayRow, live: { connected: boolean; lastSeenAt: number | null }): Relay {
  const lastSeen = Math.max(r.lastSeenAt ?? 0, live.lastSeenAt ?? 0) || null;
  return {
    id: r.id,
    name: r.name,
    connected: live.connected,
    publicKey: r.publicKey,
    version: r.version,
    hostname: r.hostname,
    lastSeenAt: iso(lastSeen),
    createdAt: iso(r.createdAt)!,
    publicKeyFingerprint: r.publicKey ? sshKeyFingerprint(r.publicKey) : null,
    publicKeyOffered: r.publicKeyOffered,
    publicKeyOfferedFingerprint: r.publicKeyOffered ? sshKeyFingerprint(r.publicKeyOffered) : null,
  };
}

const { hosts } = schema;
/** The host columns a list row is made of: a page of `GET /api/hosts` reads only these (reading
 * whole rows, holds, warnings and snapshots included, the page cost the Worker 5.1–5.3 ms of
 * CPU a request, 3.9–4.6 ms now: bench:api). */
export const HOST_LIST_COLUMNS = {
  id: hosts.id, name: hosts.name, address: hosts.address, port: hosts.port, user: hosts.user, relayId: hosts.relayId, tags: hosts.tags, monitorOnly: hosts.monitorOnly,
  status: hosts.status, statusReason: hosts.statusReason, osId: hosts.osId, osName: hosts.osName, osVersion: hosts.osVersion, osPrettyName: hosts.osPrettyName,
  packageManager: hosts.packageManager, proxmox: hosts.proxmox, docker: hosts.docker, updatesCount: hosts.updatesCount, securityCount: hosts.securityCount,
  rebootRequired: hosts.rebootRequired, lastScanAt: hosts.lastScanAt, oldestSecurityAt: hosts.oldestSecurityAt, hostKeyOffered: hosts.hostKeyOffered,
  guestOf: hosts.guestOf, guestKind: hosts.guestKind, guestVmid: hosts.guestVmid,
};
export type HostListRow = { [K in keyof typeof HOST_LIST_COLUMNS]: HostRow[K] };

/** A host as the list shows it (protocol/host-query.ts HostListItem). */
export function hostListJson(h: HostListRow): HostListItem {
  return {
    id: h.id,
    name: h.name,
    address: h.address,
    port: h.port,
    user: h.user,
    relayId: h.relayId,
    tags: h.tags,
    monitorOnly: h.monitorOnly,
    status: h.status,
    statusReason: h.statusReason,
    os: h.osId
      ? { id: h.osId, name: h.osName ?? '', version: h.osVersion ?? '', prettyName: h.osPrettyName ?? '' }
      : null,
    packageManager: h.packageManager,
    proxmox: h.proxmox ?? null,
    docker: h.docker,
    updatesCount: h.updatesCount,
    securityCount: h.securityCount,
    rebootRequired: h.rebootRequired,
    lastScanAt: iso(h.lastScanAt),
    oldestSecurityFirstSeenAt: iso(h.oldestSecurityAt),
    hostKeyOffered: h.hostKeyOffered,
    guest: h.guestOf && h.guestKind && h.guestVmid != null ? { nodeId: h.guestOf, type: h.guestKind, vmid: h.guestVmid } : null,
  };
}

/** A whole host: its list row and the rest. */
export function hostJson(h: HostRow): Host {
  return {
    ...hostListJson(h),
    packageManagers: h.packageManagers as Host['packageManagers'],
    kernel: h.kernel,
    arch: h.arch,
    bootId: h.bootId,
    bootedAt: iso(h.bootedAt),
    privilege: h.privilege,
    held: h.held,
    scanWarnings: h.scanWarnings,
    rebootReason: h.rebootReason,
    hostKey: h.hostKey,
    createdAt: iso(h.createdAt)!,
    snapshots: h.guestOf ? (h.guestSnapshots ?? null) : null,
  };
}

export function jobJson(j: JobRow): Job {
  return {
    id: j.id,
    kind: j.kind,
    hostId: j.hostId,
    relayId: j.relayId,
    status: j.status,
    exitCode: j.exitCode,
    summary: j.summary,
    error: j.errorCode ? { code: j.errorCode, message: j.errorMessage ?? '' } : null,
    requestedBy: j.requestedBy,
    packages: j.params?.packages ?? null,
    changes: j.changes ?? null,
    stack: j.params?.stack ?? null,
    services: j.params?.services ?? null,
    logBytes: j.logBytes,
    logTruncated: j.logTruncated,
    snapshot: j.snapshot ?? null,
    withoutSnapshot: j.params?.snapshot === false,
    rollback: j.params?.rollback ?? null,
    createdAt: iso(j.createdAt)!,
    startedAt: iso(j.startedAt),
    finishedAt: iso(j.finishedAt),
    durationMs: j.startedAt != null && j.finishedAt != null ? j.finishedAt - j.startedAt : null,
  };
}

export function stackJson(s: StackRow, hostName: string): Stack {
  return {
    id: s.id,
    hostId: s.hostId,
    hostName,
    name: s.name,
    status: s.status,
    workingDir: s.workingDir,
    configFiles: s.configFiles,
    containers: s.containers,
    updatesCount: s.updatesCount,
    uncheckableCount: s.uncheckableCount,
    checkedAt: iso(s.checkedAt)!,
    error: s.error,
  };
}

/** Never the password hash. */
export function userJson(u: typeof schema.users.$inferSelect): User {
  return { id: u.id, username: u.username, role: u.role, createdAt: iso(u.createdAt)!, lastLoginAt: iso(u.lastLoginAt), disabled: !!u.disabledAt };
}

/** Never the token's hash. */
export function tokenJson(t: typeof schema.apiTokens.$inferSelect): ApiToken {
  return { id: t.id, name: t.name, role: t.role, createdBy: t.createdBy, createdAt: iso(t.createdAt)!, lastUsedAt: iso(t.lastUsedAt) };
}

export function auditJson(r: typeof schema.audit.$inferSelect): AuditEntry {
  return { id: r.id, at: iso(r.at)!, actor: r.actor, actorType: r.actorType, action: r.action, target: r.target, detail: r.detail, status: r.status, ip: r.ip };
}
