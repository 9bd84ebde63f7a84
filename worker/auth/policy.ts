// Who may do what: one table for the whole API, so it can be read (and tested) in one place.
// Reading is for every role (except users, tokens and the audit log: admins); changing hosts (scan, upgrade, reboot, stack updates) is for
// operators; everything else that changes something (hosts, relays, settings, users,
// tokens) is for admins.
import type { ROLES } from '../db/schema.ts';

export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function atLeast(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

/** The lesser of two roles. */
export function lowerRole(a: Role, b: Role): Role {
  return RANK[a] <= RANK[b] ? a : b;
}

/** Requests operators may make besides reading. */
const OPERATOR: [method: string, path: RegExp][] = [
  ['POST', /^\/api\/hosts\/[^/]+\/(scan|upgrade|reboot|test)$/],
  ['POST', /^\/api\/hosts\/test$/],
  ['POST', /^\/api\/(scans|upgrades)$/],
  ['POST', /^\/api\/stacks\/[^/]+\/(check|update)$/],
  ['POST', /^\/api\/policies\/[^/]+\/run$/],
  ['POST', /^\/api\/rollouts\/[^/]+\/(pause|resume|cancel)$/],
  // rolling a Proxmox guest back to the snapshot an upgrade took is a change like the upgrade
  ['POST', /^\/api\/(jobs|hosts)\/[^/]+\/rollback$/],
];

/** Requests every signed-in user may make, whatever their role. */
const ANYONE: [method: string, path: RegExp][] = [
  ['POST', /^\/api\/auth\/logout$/],
  // reading what a policy would do changes nothing
  ['POST', /^\/api\/policies\/[^/]+\/preview$/],
]

/** Reading these is for admins only: who has access, and what everyone did. */
const ADMIN_READ = /^\/api\/(users|tokens|audit)(\/|$)/;

export function requiredRole(method: string, path: string): Role {
  if (method === 'GET' || method === 'HEAD') return ADMIN_READ.test(path) ? 'admin' : 'viewer';
  if (ANYONE.some(([m, p]) => m === method && p.test(path))) return 'viewer';
  if (OPERATOR.some(([m, p]) => m === method && p.test(path))) return 'operator';
  return 'admin';
}
