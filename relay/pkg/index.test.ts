import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { apt } from './apt.ts';
import { moduleFor, registry } from './index.ts';
import { pacman } from './pacman.ts';
import { dnf } from './dnf.ts';

describe('the package-manager registry', () => {
  it('maps probe names to modules that carry the same name', () => {
    for (const [name, mod] of Object.entries(registry)) expect(mod?.name).toBe(name);
    expect(Object.keys(registry).sort()).toEqual(['apk', 'apt', 'dnf', 'pacman', 'zypper']);
    expect(Object.isFrozen(registry)).toBe(true);
  });

  it('picks the first supported package manager in the probe order, or none', () => {
    expect(moduleFor({ packageManagers: ['apt'] })).toBe(apt);
    expect(moduleFor({ packageManagers: ['pacman'] })).toBe(pacman);
    // A Debian box with pacman installed from the archive is still managed with apt.
    expect(moduleFor({ packageManagers: ['apt', 'pacman'] })).toBe(apt);
    expect(moduleFor({ packageManagers: ['dnf', 'pacman'] })).toBe(dnf);
    expect(moduleFor({ packageManagers: ['pacman', 'dnf'] })).toBe(pacman);
    expect(moduleFor({ packageManagers: ['yum'] })).toBeNull(); // yum alone: RHEL/CentOS 7
    expect(moduleFor({ packageManagers: [] })).toBeNull();
  });

  it('modules never import each other (adding one never touches another); each reads only its descriptor', () => {
    for (const file of ['apt.ts', 'pacman.ts', 'dnf.ts', 'zypper.ts', 'apk.ts']) {
      const src = readFileSync(join(import.meta.dirname, file), 'utf8');
      const imports = [...src.matchAll(/from '(\.[^']+)'/g)].map((m) => m[1]);
      expect(imports.every((i) => ['../errors.ts', '../ssh.ts', './shell.ts', './types.ts', './reboot-check.ts', '../../protocol/package-managers.ts'].includes(i)), `${file}: ${imports.join(', ')}`).toBe(true);
    }
  });
});
