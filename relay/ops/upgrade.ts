// The `upgrade` operation: probe, pick the package module, start the upgrade as a detached
// run on the host (relay/run.ts), stream its log to the Worker while it goes, then compare
// the installed packages before and after and check whether a reboot is needed.
//
// The same request sent again (same runId) re-attaches: in this process it joins the run
// being followed; after a relay restart (`resume`) it polls the run the host still has.
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import { PROXMOX_FULL_ONLY, fullUpgradeOnly } from '../../protocol/package-managers.ts';
import { OpError } from '../errors.ts';
import { moduleFor } from '../pkg/index.ts';
import { SH_COMMAND, splitMarked } from '../pkg/shell.ts';
import { collectScript, startRun } from '../run.ts';
import { describeTarget, type SshSession, type SshTarget } from '../ssh.ts';
import type { ActiveRun, OpContext } from './context.ts';
import { followForWorker, followOnce, HostLink, resendRewound } from './detached.ts';
import { SNAPSHOT_NEEDS_GUEST, snapshotBeforeRun } from '../proxmox/upgrade-snapshot.ts';
import { DEFAULT_PROBE_TIMEOUT_MS, probeSession } from './probe.ts';

type Params = OperationParams<'upgrade'>;
type Result = OperationResult<'upgrade'>;

export { PROXMOX_FULL_ONLY };

/** Refuse to change a host the relay itself protects. */
export function refuseMonitorOnly(target: SshTarget, ctx: OpContext, what: string): void {
  const why = ctx.monitorOnly?.(target);
  if (why) throw new OpError('monitor-only', `The relay refused to ${what} ${describeTarget(target)}: ${why}. Scans still work.`);
}

export async function runUpgrade(params: Params, ctx: OpContext): Promise<Result> {
  refuseMonitorOnly(params.target, ctx, 'upgrade');
  if (params.snapshot && !params.target.guest) throw new OpError('invalid-request', SNAPSHOT_NEEDS_GUEST);
  return followOnce(ctx, params.runId, params.offset, (run) => upgrade(params, ctx, run));
}

async function upgrade(params: Params, ctx: OpContext, run: ActiveRun): Promise<Result> {
  const started = Date.now();
  const where = describeTarget(params.target);
  const link = await HostLink.open(params.target, ctx);
  try {
    const session = await link.session();
    const probe = await probeSession(session, DEFAULT_PROBE_TIMEOUT_MS);
    const mod = moduleFor(probe);
    if (!mod) throw new OpError('unsupported-os', `${probe.os.prettyName || 'This OS'} on ${where} has no package manager PatchMan can upgrade`);
    if (params.packages) {
      const whole = fullUpgradeOnly({ proxmox: probe.proxmox, packageManager: mod.name, os: probe.os });
      if (whole) throw new OpError('invalid-request', whole);
    }
    if (params.aptMode === 'upgrade') {
      if (params.packages) throw new OpError('invalid-request', 'aptMode "upgrade" is for whole-system upgrades; named packages are upgraded with install --only-upgrade');
      if (mod.name !== 'apt') throw new OpError('invalid-request', `aptMode "upgrade" is for apt hosts; ${mod.name} cannot do it`);
      if (probe.proxmox) throw new OpError('invalid-request', PROXMOX_FULL_ONLY);
    }
    const packages = params.packages ?? null;
    const warnings: string[] = [];
    const snapshot = params.snapshot
      ? await snapshotBeforeRun(session, params.runId, params.snapshot, params.resume, (line) => ctx.output?.(`[patchman] ${line}\n`), warnings)
      : undefined;
    if (!params.resume) {
      // (a resumed run needs no script: it only polls, whatever sudo says today)
      const script = mod.upgrade.runScript({ privilege: probe.privilege, packages, osId: probe.os.id, aptMode: params.aptMode });
      const state = await startRun(session, params.runId, script, mod.upgrade.installedCommand);
      ctx.output?.(state === 'started' ? `[patchman] ${packages ? `upgrading ${packages.length} package(s)` : 'full upgrade'} started on ${where}\n` : '[patchman] the run already exists on the host; following it\n');
    }
    const followed = await followForWorker(params.runId, run, ctx, link, started);
    const s = await link.session();
    const changes = await collectChanges(s, params.runId, mod.upgrade, warnings);
    if (followed.exitCode !== 0) {
      await resendRewound(params.runId, run, ctx, link, started, followed.size);
      throw mod.upgrade.failure(followed.exitCode, followed.tail, where);
    }
    const reboot = await mod.rebootCheck(s, probe);
    await resendRewound(params.runId, run, ctx, link, started, followed.size);
    return {
      packageManager: mod.name,
      mode: packages ? 'selective' : 'full',
      exitCode: followed.exitCode,
      changes,
      logBytes: followed.size,
      logTail: followed.tail,
      durationMs: Date.now() - started,
      reboot,
      warnings,
      ...(snapshot ? { snapshot } : {}),
    };
  } finally {
    link.drop();
  }
}

type Upgrader = NonNullable<ReturnType<typeof moduleFor>>['upgrade'];

/** Installed versions before (saved by the start script) and now, compared. */
async function collectChanges(session: SshSession, runId: string, up: Upgrader, warnings: string[]): Promise<Result['changes']> {
  const r = await session.exec(SH_COMMAND, { stdin: collectScript(runId, up.installedCommand), timeoutMs: 120_000, maxOutputBytes: 64 * 1024 * 1024 });
  const s = splitMarked(r.stdout, '@@patchman-collect 1', ['before', 'after'], 'the installed-packages listing');
  const before = up.parseInstalled((s.get('before') ?? []).join('\n'));
  const after = up.parseInstalled((s.get('after') ?? []).join('\n'));
  if (before.size === 0) {
    warnings.push('There is no list of the packages installed before the run, so what it changed is unknown; the rescan shows what is pending now.');
    return [];
  }
  return diffInstalled(before, after);
}

export function diffInstalled(before: Map<string, string>, after: Map<string, string>): Result['changes'] {
  const changes: Result['changes'] = [];
  for (const [name, to] of after) {
    const from = before.get(name) ?? null;
    if (from !== to) changes.push({ name, from, to });
  }
  for (const [name, from] of before) if (!after.has(name)) changes.push({ name, from, to: null });
  return changes.sort((a, b) => a.name.localeCompare(b.name));
}
