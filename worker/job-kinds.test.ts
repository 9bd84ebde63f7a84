// The job-kind table against what depends on it outside TypeScript: the database's
// one-change-per-host index and the relay's list of operations that change a host.
import { describe, expect, it } from 'vitest';
import { ACTIVE_STATUSES, JobKind } from '../protocol/api.ts';
import { MUTATING_OPERATIONS, Operations } from '../protocol/relay.ts';
import { CHANGE_KINDS, JOB_KINDS, REPEATABLE_KINDS, RESUMABLE_KINDS, requestFor } from './job-kinds.ts';
import { testEnv } from './test/helpers.ts';
import type { HostRow, JobRow } from './db/index.ts';

describe('job kinds', () => {
  it('has one entry per kind, each running an operation the relay knows', () => {
    expect(Object.keys(JOB_KINDS).sort()).toEqual([...JobKind.options].sort());
    for (const k of JobKind.options) expect(Object.keys(Operations)).toContain(JOB_KINDS[k].operation);
  });

  it('marks exactly the kinds whose operation the relay treats as mutating as changing the host', () => {
    expect(CHANGE_KINDS.map((k) => JOB_KINDS[k].operation).sort()).toEqual([...MUTATING_OPERATIONS].sort());
    // a change must survive a relay reconnect; a scan may simply be sent again
    expect(RESUMABLE_KINDS.sort()).toEqual([...CHANGE_KINDS].sort());
    expect(REPEATABLE_KINDS.sort()).toEqual(['docker-scan', 'scan']);
  });

  it('agrees with the one-change-per-host index in D1', async () => {
    const row = await testEnv.DB.prepare(`select sql from sqlite_master where name = 'jobs_one_change_per_host'`).first<{ sql: string }>();
    const m = /"kind" in \(([^)]*)\) and "jobs"\."status" in \(([^)]*)\)/.exec(row!.sql);
    expect(m, row!.sql).not.toBeNull();
    const names = (s: string) => s.split(',').map((x) => x.trim().replace(/'/g, '')).sort();
    expect(names(m![1])).toEqual([...CHANGE_KINDS].sort());
    expect(names(m![2])).toEqual([...ACTIVE_STATUSES].sort());
  });

  it('builds each request from the job and its host, with the kind time limit', () => {
    const host = { address: '192.0.2.1', port: 2222, user: 'ops' } as HostRow;
    const job = { id: 'j1', kind: 'reboot', logOffset: 0, resume: true, params: { bootId: 'b1' } } as JobRow;
    expect(requestFor(job, host)).toEqual({
      op: 'reboot',
      params: { target: { address: '192.0.2.1', port: 2222, user: 'ops' }, runId: 'j1', resume: true, bootId: 'b1' },
      timeoutMs: 20 * 60_000,
    });
    expect(requestFor({ ...job, kind: 'docker-scan', params: { stack: 'media' } }, host)).toMatchObject({ op: 'docker.scan', params: { stack: 'media' } });
  });

  it("sends an adopted Proxmox guest's jobs to its node, naming the guest; a rollback restores the asked snapshot", () => {
    const guest = { address: '192.0.2.1', port: 22, user: 'root', guestOf: 'node1', guestKind: 'lxc', guestVmid: 101 } as HostRow;
    const job = { id: 'j2', kind: 'rollback', logOffset: 0, resume: false, params: { rollback: { snapshot: 'patchman-j1', jobId: 'j1' } } } as JobRow;
    expect(requestFor(job, guest)).toEqual({
      op: 'guest.rollback',
      params: { target: { address: '192.0.2.1', port: 22, user: 'root', guest: { kind: 'lxc', vmid: 101 } }, runId: 'j2', snapshot: 'patchman-j1' },
      timeoutMs: 20 * 60_000,
    });
    const snapshot = { name: 'patchman-j3', description: 'PatchMan job j3 upgrade', keep: 3 };
    expect(requestFor({ ...job, id: 'j3', kind: 'upgrade', params: { snapshot } }, guest).params).toMatchObject({ snapshot });
    // went on without one: nothing asked
    expect(requestFor({ ...job, id: 'j4', kind: 'upgrade', params: { snapshot: false } }, guest).params).not.toHaveProperty('snapshot');
  });
});
