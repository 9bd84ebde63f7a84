import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import type { ExecResult, SshSession } from '../ssh.ts';
import { snapshotAndPrune } from './snapshots.ts';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

/** A node whose snapshot list is fixtures/pct-listsnapshot.txt (before_upgrade, patchman-01hf3k2,
 * patchman-01hg7q9) plus whatever `pct snapshot` added; `delsnapshot` of `failing` fails. */
function node(opts: { failing?: string } = {}) {
  const seen: string[] = [];
  let extra = '';
  const session: SshSession = {
    target: { address: '192.0.2.7', port: 22, user: 'root' },
    hostKey: { fingerprint: 'SHA256:x', pinnedNow: false },
    kex: undefined,
    async exec(cmd): Promise<ExecResult> {
      seen.push(cmd);
      const ok = (stdout = ''): ExecResult => ({ code: 0, signal: null, stdout, stderr: '' });
      if (cmd.includes(' listsnapshot ')) return ok(fixture('pct-listsnapshot.txt').replace(/^.*current.*\n/m, '') + extra + '    `-> current                                       You are here!\n');
      if (cmd.includes(' config ')) return ok(fixture('pct-config-lvmthin.txt'));
      if (cmd.includes('pvesh get /storage')) return ok(fixture('pvesh-storage.json'));
      if (cmd.includes(' snapshot ')) {
        extra = `    \`-> patchman-new                    2024-12-09 03:00:00     PatchMan before job new\n`;
        return ok();
      }
      if (cmd.includes(' delsnapshot ') && opts.failing && cmd.includes(opts.failing)) return { code: 255, signal: null, stdout: '', stderr: 'lvremove failed' };
      return ok();
    },
    close() {},
  };
  return { session, seen };
}

const req = { name: 'patchman-new', description: 'PatchMan before job new', keep: 2 };
const guest = { kind: 'lxc' as const, vmid: 105 };

describe('snapshotAndPrune', () => {
  it('takes the snapshot, then deletes the oldest PatchMan ones beyond keep and nobody else\'s', async () => {
    const { session, seen } = node();
    const warnings: string[] = [];
    const r = await snapshotAndPrune(session, '', guest, req, () => {}, warnings);
    expect(r).toEqual({ name: 'patchman-new', taken: true, pruned: ['patchman-01hf3k2'] });
    expect(seen).toContain("env LC_ALL=C LANG=C TZ=UTC pct snapshot 105 'patchman-new' --description 'PatchMan before job new'");
    expect(seen.filter((c) => c.includes('delsnapshot'))).toEqual(["env LC_ALL=C LANG=C TZ=UTC pct delsnapshot 105 'patchman-01hf3k2'"]);
    expect(warnings).toEqual([]);
  });

  it('does not take a snapshot that exists already (a re-sent request)', async () => {
    const { session, seen } = node();
    await snapshotAndPrune(session, '', guest, { ...req, name: 'patchman-01hg7q9' }, () => {}, []);
    expect(seen.some((c) => / snapshot 105 /.test(c))).toBe(false);
  });

  it('a prune that fails is a warning, not a failure', async () => {
    const { session } = node({ failing: 'patchman-01hf3k2' });
    const warnings: string[] = [];
    const r = await snapshotAndPrune(session, '', guest, req, () => {}, warnings);
    expect(r.pruned).toEqual([]);
    expect(warnings).toEqual([expect.stringMatching(/could not delete the older PatchMan snapshot patchman-01hf3k2: .*lvremove failed/)]);
  });
});
