// Badges for the OS families and derivatives the probe recognises (os-release IDs as those
// systems ship them; Raspberry Pi OS and DietPi as relay/ops/probe.ts withDerivative names them).
import { describe, expect, it } from 'vitest';
import { distroLabel, distroOf } from './distro.ts';

const host = (id: string, name = id) => ({ os: { id, name, version: '', prettyName: name } });

describe('distro badges', () => {
  it.each([
    ['fedora', 'fedora', 'Fedora'],
    ['rhel', 'fedora', 'RHEL'],
    ['rocky', 'fedora', 'Rocky'],
    ['almalinux', 'fedora', 'Alma'],
    ['ol', 'fedora', 'Oracle'],
    ['opensuse-leap', 'suse', 'openSUSE Leap'],
    ['opensuse-tumbleweed', 'suse', 'Tumbleweed'],
    ['opensuse-microos', 'suse', 'openSUSE'],
    ['sles', 'suse', 'SLES'],
    ['alpine', 'alpine', 'Alpine'],
    ['linuxmint', 'ubuntu', 'Mint'],
    ['pop', 'ubuntu', 'Pop!_OS'],
    ['raspbian', 'debian', 'Raspberry Pi OS'],
    ['dietpi', 'debian', 'DietPi'],
    ['manjaro', 'arch', 'Manjaro'],
    ['endeavouros', 'arch', 'EndeavourOS'],
  ])('%s → %s badge "%s"', (id, family, label) => {
    const h = host(id, id === 'opensuse-microos' ? 'openSUSE MicroOS' : id);
    expect(distroOf(h)).toBe(family);
    expect(distroLabel(h)).toBe(label);
  });

  it('CentOS Stream keeps ID=centos; its NAME says Stream', () => {
    expect(distroLabel(host('centos', 'CentOS Stream'))).toBe('CentOS Stream');
    expect(distroOf(host('centos', 'CentOS Stream'))).toBe('fedora');
  });
});
