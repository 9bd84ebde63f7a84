// Every package module checks "reboot needed?" the same way: one constant script of its own
// on stdin, then its own parser over what the script printed.
import { OpError } from '../errors.ts';
import { describeTarget, type SshSession } from '../ssh.ts';
import { describeExit, DEFAULT_REBOOT_TIMEOUT_MS, SH_COMMAND, tail } from './shell.ts';
import type { PackageManagerModule, RebootState } from './types.ts';

/** Most a reboot-check script may print. */
const REBOOT_OUTPUT_MAX_BYTES = 1024 * 1024;

/** A module's `rebootCheck`: run `script`, fail with its exit and output, else `parse` it. */
export function scriptRebootCheck(script: string, parse: (stdout: string) => RebootState): PackageManagerModule['rebootCheck'] {
  return async (session: SshSession, _probe, opts = {}) => {
    const r = await session.exec(SH_COMMAND, { stdin: script, timeoutMs: opts.timeoutMs ?? DEFAULT_REBOOT_TIMEOUT_MS, maxOutputBytes: REBOOT_OUTPUT_MAX_BYTES });
    if (r.code !== 0) throw new OpError('command-failed', `The reboot check on ${describeTarget(session.target)} ${describeExit(r)}: ${tail(r.stderr) || tail(r.stdout)}`);
    return parse(r.stdout);
  };
}
