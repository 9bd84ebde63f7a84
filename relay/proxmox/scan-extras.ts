// What a scan adds for Proxmox: on a PVE node (not a guest target), the node's guests; on a
// guest target, the guest's snapshots. Neither may fail the package scan: a problem becomes
// a warning.
import type { GuestSnapshot, ProxmoxGuest } from '../../protocol/proxmox.ts';
import type { ProbeResult } from '../../protocol/relay.ts';
import type { SshSession } from '../ssh.ts';
import { rootPrefixFor } from './commands.ts';
import { discoverGuests } from './discover.ts';
import { GuestSession } from './guest-session.ts';
import { listSnapshots } from './snapshots.ts';

export async function proxmoxScanExtras(
  session: SshSession,
  probe: ProbeResult,
  warnings: string[],
): Promise<{ guests?: ProxmoxGuest[]; snapshots?: GuestSnapshot[] }> {
  if (session instanceof GuestSession) {
    try {
      return { snapshots: await listSnapshots(session.node, session.prefix, session.target.guest) };
    } catch (err) {
      warnings.push(`could not list the guest's snapshots: ${(err as Error).message}`);
      return {};
    }
  }
  if (probe.proxmox?.product !== 'pve') return {};
  try {
    return { guests: await discoverGuests(session, rootPrefixFor(session.target.user)) };
  } catch (err) {
    warnings.push(`could not list the Proxmox guests of this node: ${(err as Error).message}`);
    return {};
  }
}
