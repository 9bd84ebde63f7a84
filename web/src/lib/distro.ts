import type { Host } from '$protocol/api.ts';

export type Distro = 'debian' | 'ubuntu' | 'arch' | 'proxmox' | 'other';

const ARCH_LIKE = new Set(['arch', 'archarm', 'cachyos', 'manjaro', 'manjaro-arm', 'endeavouros', 'garuda', 'artix']);
const UBUNTU_LIKE = new Set(['ubuntu', 'pop', 'linuxmint', 'elementary', 'zorin', 'neon']);
const DEBIAN_LIKE = new Set(['debian', 'raspbian', 'devuan', 'kali']);

/** Which badge a host gets: Proxmox wins over the Debian underneath it. */
export function distroOf(host: Pick<Host, 'os' | 'proxmox'>): Distro {
  if (host.proxmox) return 'proxmox';
  const id = host.os?.id.toLowerCase() ?? '';
  if (ARCH_LIKE.has(id)) return 'arch';
  if (UBUNTU_LIKE.has(id)) return 'ubuntu';
  if (DEBIAN_LIKE.has(id)) return 'debian';
  return 'other';
}

export function distroLabel(host: Pick<Host, 'os' | 'proxmox'>): string {
  if (host.proxmox) return host.proxmox.product === 'pbs' ? 'PBS' : 'PVE';
  const d = distroOf(host);
  if (d === 'arch') return host.os?.id === 'arch' ? 'Arch' : (host.os?.name.split(' ')[0] ?? 'Arch');
  if (d === 'ubuntu') return 'Ubuntu';
  if (d === 'debian') return 'Debian';
  return host.os?.name.split(' ')[0] || host.os?.id || 'Linux';
}
