// Which hosts this relay refuses to change, whatever the Worker asks: the second key of the
// monitor-only rule (the Worker refuses first; a compromised Worker still cannot patch or
// reboot these). PATCHMAN_MONITOR_ONLY is a comma-separated list of addresses; `self` means
// this machine (localhost, 127.0.0.1, ::1, its host name, its interface addresses) and is the default;
// `none` allows changing every host.
import { hostname, networkInterfaces } from 'node:os';
import type { SshTarget } from './ssh.ts';

export function selfAddresses(): string[] {
  const out = ['localhost', '127.0.0.1', '::1', hostname().toLowerCase()];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.push(a.address.toLowerCase());
  return out;
}

export function parseMonitorOnly(spec: string): { self: boolean; addresses: Set<string> } {
  const words = spec
    .split(',')
    .map((w) => w.trim().toLowerCase())
    .filter((w) => w !== '');
  if (words.length === 1 && words[0] === 'none') return { self: false, addresses: new Set() };
  return { self: words.includes('self'), addresses: new Set(words.filter((w) => w !== 'self')) };
}

/** A checker for OpContext.monitorOnly. */
export function monitorOnlyPolicy(spec: string, self: () => string[] = selfAddresses): (t: SshTarget) => string | null {
  const p = parseMonitorOnly(spec);
  return (t) => {
    const a = t.address.toLowerCase();
    if (p.addresses.has(a)) return `${t.address} is listed in this relay's PATCHMAN_MONITOR_ONLY`;
    // Exact addresses, like the Worker's isRelayBox: other 127.x.y.z addresses are separate
    // hosts as far as PatchMan knows (port forwards, containers, the simulator's fleet).
    if (p.self && self().includes(a)) {
      return `${t.address} is the relay's own machine, which the relay never changes by default (PATCHMAN_MONITOR_ONLY=self)`;
    }
    return null;
  };
}
