// Relay results as the relay sends them (shapes from protocol/relay.ts; values from a real
// Debian 12 scan: see relay/pkg/fixtures for the raw apt output).
export const probeResult = {
  os: { id: 'debian', name: 'Debian GNU/Linux', version: '12 (bookworm)', prettyName: 'Debian GNU/Linux 12 (bookworm)', idLike: [] },
  kernel: '6.1.0-40-amd64',
  arch: 'x86_64',
  hostname: 'web1',
  bootId: '0f3c8f6e-8d1e-4c33-9a51-2f1b1f1c9b0e',
  uptimeSeconds: 3600.5,
  packageManagers: ['apt'],
  proxmox: null,
  docker: false,
  privilege: 'root',
};

export const scanResult = {
  probe: probeResult,
  packageManager: 'apt',
  updates: [
    { name: 'tzdata', currentVersion: '2024a-0+deb12u1', newVersion: '2025b-0+deb12u1', repository: 'Debian:12.12/stable', security: false, arch: 'all' },
    { name: 'openssl', currentVersion: '3.0.15-1~deb12u1', newVersion: '3.0.17-1~deb12u2', repository: 'Debian-Security:12/stable-security', security: true, arch: 'amd64' },
    { name: 'libssl3', currentVersion: '3.0.15-1~deb12u1', newVersion: '3.0.17-1~deb12u2', repository: 'Debian:12.12/stable, Debian-Security:12/stable-security', security: true, arch: 'amd64' },
  ],
  held: [{ name: 'linux-image-amd64', reason: 'kept-back' }],
  reboot: { required: true, reason: '/run/reboot-required (linux-image-6.1.0-41-amd64)' },
  warnings: [],
};

export function scanWith(overrides: Record<string, unknown>) {
  return { ...scanResult, ...overrides };
}
