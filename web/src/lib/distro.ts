import type { Host } from '$protocol/api.ts';

export type Distro = 'debian' | 'ubuntu' | 'arch' | 'fedora' | 'suse' | 'alpine' | 'other';

const ARCH_LIKE = new Set(['arch', 'archarm', 'cachyos', 'manjaro', 'manjaro-arm', 'endeavouros', 'garuda', 'artix']);
const UBUNTU_LIKE = new Set(['ubuntu', 'pop', 'linuxmint', 'elementary', 'zorin', 'neon']);
const DEBIAN_LIKE = new Set(['debian', 'raspbian', 'dietpi', 'devuan', 'kali']);
const FEDORA_LIKE = new Set(['fedora', 'rhel', 'centos', 'rocky', 'almalinux', 'ol', 'amzn']);
const SUSE_LIKE_PREFIX = 'opensuse';
const SUSE_LIKE = new Set(['opensuse', 'opensuse-leap', 'opensuse-tumbleweed', 'sles', 'sled']);

/** Which OS badge a host gets (Proxmox has a badge of its own next to it). */
export function distroOf(host: Pick<Host, 'os'>): Distro {
  const id = host.os?.id.toLowerCase() ?? '';
  if (ARCH_LIKE.has(id)) return 'arch';
  if (UBUNTU_LIKE.has(id)) return 'ubuntu';
  if (DEBIAN_LIKE.has(id)) return 'debian';
  if (FEDORA_LIKE.has(id)) return 'fedora';
  if (SUSE_LIKE.has(id) || id.startsWith(SUSE_LIKE_PREFIX)) return 'suse';
  if (id === 'alpine') return 'alpine';
  return 'other';
}

const NAMES: Partial<Record<string, string>> = {
  arch: 'Arch',
  cachyos: 'CachyOS',
  endeavouros: 'EndeavourOS',
  manjaro: 'Manjaro',
  ubuntu: 'Ubuntu',
  pop: 'Pop!_OS',
  linuxmint: 'Mint',
  debian: 'Debian',
  raspbian: 'Raspberry Pi OS',
  dietpi: 'DietPi',
  fedora: 'Fedora',
  rhel: 'RHEL',
  centos: 'CentOS',
  rocky: 'Rocky',
  almalinux: 'Alma',
  ol: 'Oracle',
  alpine: 'Alpine',
  sles: 'SLES',
  'opensuse-leap': 'openSUSE Leap',
  'opensuse-tumbleweed': 'Tumbleweed',
};

export function distroLabel(host: Pick<Host, 'os'>): string {
  const id = host.os?.id.toLowerCase() ?? '';
  // CentOS Stream keeps ID=centos; its NAME says Stream.
  if (id === 'centos' && /stream/i.test(host.os?.name ?? '')) return 'CentOS Stream';
  return NAMES[id] ?? (host.os?.name.split(' ')[0] || host.os?.id || 'Linux');
}

export function proxmoxName(p: NonNullable<Host['proxmox']>): string {
  return p.product === 'pbs' ? 'Proxmox Backup Server' : 'Proxmox VE';
}

export function proxmoxShort(p: NonNullable<Host['proxmox']>): string {
  return `${p.product === 'pbs' ? 'PBS' : 'PVE'} ${p.version}`;
}
