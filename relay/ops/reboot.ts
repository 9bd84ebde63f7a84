// The `reboot` operation: read the boot id, ask the host to reboot (through sudo -n unless
// root), then try SSH every few seconds until the host answers with a different boot id.
// A resumed request (the relay restarted meanwhile) only waits. The Worker rescans after.
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import { describeExit, privileged, sudoRefused, sudoRefusedError, tail } from '../pkg/shell.ts';
import { describeTarget, openSession, type SshSession } from '../ssh.ts';
import type { OpContext } from './context.ts';
import { DEFAULT_PROBE_TIMEOUT_MS, probeSession } from './probe.ts';
import { refuseMonitorOnly } from './upgrade.ts';

type Params = OperationParams<'reboot'>;
type Result = OperationResult<'reboot'>;

/** `reboot` returns at once on systemd hosts (it queues the job); the sudoers line allows
 * /usr/sbin/reboot. */
export const REBOOT_COMMAND = 'reboot';
/** Guests are not rebooted through their node (yet): a container shares the node's kernel and
 * boot id, so this operation could not tell that it came back; `pct reboot` / `qm reboot` in
 * Proxmox does it. */
export const GUEST_REBOOT_REFUSED =
  'PatchMan does not reboot Proxmox guests: a container shares its node\'s kernel (restart its services, or use pct reboot / qm reboot in Proxmox).';
export const BOOT_ID_COMMAND = 'cat /proc/sys/kernel/random/boot_id; uname -r';

export async function runReboot(params: Params, ctx: OpContext): Promise<Result> {
  refuseMonitorOnly(params.target, ctx, 'reboot');
  if (params.target.guest) throw new OpError('invalid-request', GUEST_REBOOT_REFUSED);
  const where = describeTarget(params.target);
  const say = (line: string) => ctx.output?.(`[patchman] ${line}\n`);
  let before = params.bootId ?? null;
  const rebootAt = Date.now();

  if (!params.resume) {
    const session = await openSession(params.target, ctx);
    try {
      const probe = await probeSession(session, DEFAULT_PROBE_TIMEOUT_MS);
      before = probe.bootId;
      const command = privileged(REBOOT_COMMAND, probe.privilege); // 'sudo-password' before anything
      say(`rebooting ${where} (boot id ${before}, kernel ${probe.kernel})`);
      await issueReboot(session, command, where);
    } finally {
      session.close();
    }
  } else {
    say(`re-attached: waiting for ${where} to come back`);
  }
  if (!before) throw new OpError('lost', `The boot id of ${where} before the reboot is unknown, so its return cannot be recognised; rescan the host.`);

  const deadline = rebootAt + params.waitSeconds * 1000;
  const retryMs = ctx.rebootRetryMs ?? 5000;
  let sawDown = false;
  for (;;) {
    await sleep(retryMs);
    let session: SshSession | null = null;
    try {
      session = await openSession(params.target, { ...ctx, connectTimeoutMs: Math.min(ctx.connectTimeoutMs ?? 10_000, 10_000) });
      const r = await session.exec(BOOT_ID_COMMAND, { timeoutMs: 15_000 });
      const [bootId = '', kernel = ''] = r.stdout.split('\n').map((l) => l.trim());
      if (r.code === 0 && bootId && bootId !== before) {
        const downMs = Date.now() - rebootAt;
        say(`${where} is back after ${Math.round(downMs / 1000)} s (boot id ${bootId}, kernel ${kernel})`);
        return { bootIdBefore: before, bootIdAfter: bootId, downMs, kernel };
      }
    } catch (err) {
      if (!(err instanceof OpError) || (err.code !== 'unreachable' && err.code !== 'timeout')) throw err;
      if (!sawDown) say(`${where} is down; waiting for it to come back (up to ${params.waitSeconds < 120 ? `${params.waitSeconds} s` : `${Math.round(params.waitSeconds / 60)} min`})`);
      sawDown = true;
    } finally {
      session?.close();
    }
    if (Date.now() > deadline) {
      throw new OpError(
        'host-down',
        sawDown
          ? `${where} went down for the reboot and did not come back within ${params.waitSeconds} s. Check its console: it may be stuck in the firmware, a disk check, or a boot failure.`
          : `${where} did not go down within ${params.waitSeconds} s of the reboot command (same boot id); the reboot may be blocked by an inhibitor.`,
      );
    }
  }
}

/** Ask for the reboot. The connection may die under the command: that is success too. */
async function issueReboot(session: SshSession, command: string, where: string): Promise<void> {
  try {
    const r = await session.exec(command, { timeoutMs: 20_000 });
    if (r.code === 0 || r.code === null) return;
    if (sudoRefused(r.stderr)) throw sudoRefusedError(session, 'reboot', r.stderr);
    throw new OpError('command-failed', `reboot on ${where} ${describeExit(r)}: ${tail(r.stderr) || tail(r.stdout)}`, { exitCode: r.code });
  } catch (err) {
    if (err instanceof OpError && (err.code === 'unreachable' || err.code === 'timeout')) return; // going down
    throw err;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
