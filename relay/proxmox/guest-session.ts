// An SshSession for a Proxmox guest, made of its node's session: every command runs inside
// the guest through the node — `pct exec <vmid> -- /bin/sh -c '…'` for a container,
// `qm guest exec <vmid> … -- /bin/sh -c '…'` (the QEMU guest agent) for a VM — so every
// operation and package-manager module works unchanged. No SSH server, key or agent of
// PatchMan's inside the guest.
//
// Containers stream like any host. `qm guest exec` does not: it answers once the command has
// ended, with JSON (parse.ts parseGuestExec). Long runs are detached anyway (relay/run.ts),
// and for VMs they are followed by polling only (see `streams`).
import { constants } from 'node:os';
import { OpError } from '../errors.ts';
import { tail } from '../pkg/shell.ts';
import { describeTarget, type ExecOptions, type ExecResult, type SshSession, type SshTarget } from '../ssh.ts';
import { guestExecCommand, QM_EXEC_DEFAULT_TIMEOUT_S, type RootPrefix } from './commands.ts';
import { guestLabel } from './guest-list.ts';
import { agentOutputBytes, agentProblem, parseGuestExec } from './parse.ts';

/** Slack on top of `qm guest exec --timeout` before the relay stops waiting for qm itself. */
const QM_EXEC_SLACK_MS = 15_000;
const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

export type GuestTarget = SshTarget & { guest: NonNullable<SshTarget['guest']> };

export class GuestSession implements SshSession {
  readonly target: GuestTarget;
  readonly node: SshSession;
  readonly prefix: RootPrefix;
  /** Whether output arrives as the command writes it (false for `qm guest exec`). */
  readonly streams: boolean;

  constructor(node: SshSession, target: GuestTarget, prefix: RootPrefix) {
    this.node = node;
    this.target = target;
    this.prefix = prefix;
    this.streams = target.guest.kind === 'lxc';
  }

  get hostKey(): SshSession['hostKey'] {
    return this.node.hostKey;
  }

  get kex(): string | undefined {
    return this.node.kex;
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const { kind, vmid } = this.target.guest;
    if (kind === 'lxc') return this.node.exec(guestExecCommand(this.prefix, kind, vmid, command, { stdin: opts.stdin !== undefined }), opts);
    return this.#qemuExec(command, opts);
  }

  async #qemuExec(command: string, opts: ExecOptions): Promise<ExecResult> {
    const { kind, vmid } = this.target.guest;
    const timeoutS = opts.timeoutMs !== undefined ? Math.ceil(opts.timeoutMs / 1000) : QM_EXEC_DEFAULT_TIMEOUT_S;
    const line = guestExecCommand(this.prefix, kind, vmid, command, { stdin: opts.stdin !== undefined, timeoutS });
    const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    const r = await this.node.exec(line, {
      stdin: opts.stdin,
      timeoutMs: timeoutS * 1000 + QM_EXEC_SLACK_MS,
      signal: opts.signal,
      // JSON escapes make the answer bigger than the command's own output
      maxOutputBytes: max * 2 + 4096,
    });
    const where = describeTarget(this.target);
    if (r.code !== 0) {
      const why = agentProblem(r.stderr);
      if (why) throw new OpError('unreachable', `Cannot run commands in ${guestLabel(this.target.guest)} (${where}): ${why}.`);
      throw new OpError('command-failed', `qm guest exec for ${where} exited with status ${r.code}: ${tail(r.stderr || r.stdout, 300)}`, { exitCode: r.code ?? undefined });
    }
    const out = parseGuestExec(r.stdout);
    if (!out.exited) throw new OpError('timeout', `Command in ${where} did not finish within ${timeoutS} s (qm guest exec returned pid ${out.pid ?? '?'}); it may still be running in the VM`);
    const stdoutBytes = agentOutputBytes(out.stdout);
    const stderr = agentOutputBytes(out.stderr).toString('utf8');
    if (stdoutBytes.length > max || Buffer.byteLength(stderr) > max) {
      throw new OpError('command-failed', `Command in ${where} produced more than ${max} bytes of output`);
    }
    let stdout = stdoutBytes.toString('utf8');
    if (opts.onStdout) {
      if (stdoutBytes.length > 0) opts.onStdout(stdoutBytes);
      stdout = '';
    }
    return {
      code: out.exitCode,
      signal: out.signal === null ? null : signalName(out.signal),
      stdout,
      stderr,
      ...(opts.binary ? { stdoutBytes } : {}),
    };
  }

  close(): void {
    this.node.close();
  }
}

function signalName(n: number): string {
  const name = Object.entries(constants.signals).find(([, num]) => num === n)?.[0];
  return name ? name.replace(/^SIG/, '') : String(n);
}
