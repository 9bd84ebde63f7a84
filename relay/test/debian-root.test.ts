import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aptOn } from './apt-local.ts';
import { debianRoot, overlayRoot, type OverlayRoot } from './debian-root.ts';

describe('debianRoot / overlayRoot (test helpers)', () => {
  let a: OverlayRoot;
  let b: OverlayRoot;
  beforeAll(async () => {
    [a, b] = await Promise.all([overlayRoot(), overlayRoot()]);
  }, 900_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('is Debian 12 with real pending security updates from the security pocket', async () => {
    expect(readFileSync(join(a.dir, 'etc/os-release'), 'utf8')).toMatch(/^VERSION_CODENAME=bookworm$/m);
    const pending = aptOn(a.dir).aptSimulation();
    expect(pending.size).toBeGreaterThan(0);
    expect([...pending.values()].some((p) => p.security)).toBe(true);
    expect(await a.run(['sh', '-c', 'echo $(id -u) $(ls /proc/self/fd | wc -l)'])).toMatch(/^0 \d+/);
  });

  it('gives every test its own writable copy and leaves the pristine root as it was', async () => {
    writeFileSync(join(a.dir, 'etc/patchman-marker'), 'a');
    expect(existsSync(join(b.dir, 'etc/patchman-marker'))).toBe(false);
    expect(existsSync(join(await debianRoot(), 'etc/patchman-marker'))).toBe(false);
    const dir = a.dir;
    await a.stop();
    expect(existsSync(dir)).toBe(false);
  });
});
