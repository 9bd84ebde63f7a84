import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { monitorOnlyPolicy, parseMonitorOnly, selfAddresses } from './policy.ts';

const t = (address: string) => ({ address, port: 22, user: 'root' });

describe('parseMonitorOnly', () => {
  it('self: this machine only', () => {
    expect(parseMonitorOnly('self')).toEqual({ self: true, addresses: new Set() });
  });

  it('none: nothing is protected', () => {
    expect(parseMonitorOnly('none')).toEqual({ self: false, addresses: new Set() });
    expect(parseMonitorOnly(' NONE ')).toEqual({ self: false, addresses: new Set() });
  });

  it('a list: trimmed, lower-cased, empty entries dropped, self kept as a flag', () => {
    expect(parseMonitorOnly(' 10.0.0.5, NAS.lan ,,self, fd00::1 ')).toEqual({ self: true, addresses: new Set(['10.0.0.5', 'nas.lan', 'fd00::1']) });
    expect(parseMonitorOnly('10.0.0.5,10.0.0.6')).toEqual({ self: false, addresses: new Set(['10.0.0.5', '10.0.0.6']) });
  });

  it('"none" only means none on its own', () => {
    expect(parseMonitorOnly('none,self')).toEqual({ self: true, addresses: new Set(['none']) });
  });
});

describe('monitorOnlyPolicy', () => {
  const self = () => ['localhost', '127.0.0.1', '::1', 'relaybox', '192.168.1.10'];

  it('self: this machine\'s names and addresses (loopback included) are refused, case-insensitively', () => {
    const p = monitorOnlyPolicy('self', self);
    for (const a of ['127.0.0.1', '::1', 'localhost', 'LOCALHOST', 'relaybox', 'RelayBox', '192.168.1.10']) {
      expect(p(t(a)), a).toMatch(/is the relay's own machine, which the relay never changes by default \(PATCHMAN_MONITOR_ONLY=self\)$/);
    }
    expect(p(t('192.168.1.11'))).toBeNull();
    expect(p(t('nas.lan'))).toBeNull();
  });

  it('self matches exact addresses: another 127.x.y.z is a separate host (a port forward, the simulated fleet)', () => {
    const p = monitorOnlyPolicy('self', self);
    expect(p(t('127.93.0.7'))).toBeNull();
    expect(p(t('127.0.0.2'))).toBeNull();
  });

  it('listed addresses are refused, case-insensitively, naming the setting', () => {
    const p = monitorOnlyPolicy('10.0.0.5,NAS.lan', self);
    expect(p(t('10.0.0.5'))).toBe("10.0.0.5 is listed in this relay's PATCHMAN_MONITOR_ONLY");
    expect(p(t('nas.LAN'))).toBe("nas.LAN is listed in this relay's PATCHMAN_MONITOR_ONLY");
    expect(p(t('10.0.0.50'))).toBeNull();
    // Without `self` in the list, this machine may be changed.
    expect(p(t('127.0.0.1'))).toBeNull();
    expect(p(t('relaybox'))).toBeNull();
  });

  it('none: every host may be changed, loopback included', () => {
    const p = monitorOnlyPolicy('none', self);
    for (const a of ['127.0.0.1', '::1', 'localhost', 'relaybox', '10.0.0.5']) expect(p(t(a)), a).toBeNull();
  });

  it('self plus a list refuses both', () => {
    const p = monitorOnlyPolicy('self,10.0.0.5', self);
    expect(p(t('10.0.0.5'))).toMatch(/listed/);
    expect(p(t('::1'))).toMatch(/own machine/);
    expect(p(t('10.0.0.6'))).toBeNull();
  });

  it('the real self addresses include loopback and this host name', () => {
    const real = selfAddresses();
    expect(real).toEqual(expect.arrayContaining(['localhost', '127.0.0.1', '::1', hostname().toLowerCase()]));
    expect(monitorOnlyPolicy('self')(t(hostname()))).toMatch(/own machine/);
  });
});
