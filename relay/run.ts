// Detached runs: a long, host-changing command (an upgrade) started on the managed host
// outside the SSH session, so that a dropped connection, a relay restart or a redeployed
// Worker never kills dpkg half-way. The run lives in files under the SSH user's home:
//
//   ~/.cache/patchman/runs/<runId>.sh      the command (written by the start script)
//   (or /var/tmp/patchman-<uid>/ for a user without a writable home: RUN_DIR_LINES)
//   ~/.cache/patchman/runs/<runId>.log     its output (stdout + stderr), appended
//   ~/.cache/patchman/runs/<runId>.before  installed packages before it started
//   ~/.cache/patchman/runs/<runId>.pid     the wrapper's pid,  .boot  the boot id then
//   ~/.cache/patchman/runs/<runId>.rc      its exit status, written (atomically) when it ends
//
// The relay follows a run by polling: each poll prints the state and the log from a byte
// offset, so re-attaching after any interruption is "poll from where the Worker's copy
// ends". A run id is started at most once: the start script does nothing if the run exists.
// `runId` is an Id (protocol/fields.ts: [A-Za-z0-9_-]) and offsets are integers; nothing else
// from a request reaches these scripts.
import * as v from 'valibot';
import { Id } from '../protocol/fields.ts';
import { OpError } from './errors.ts';
import { describeTarget, type SshSession } from './ssh.ts';
import { SCRIPT_PROLOGUE, SH_COMMAND } from './pkg/shell.ts';

/** Shell lines that set `$d` to the run directory: ~/.cache/patchman/runs, or, for a user
 * without a writable home (a service account made with --no-create-home),
 * /var/tmp/patchman-<uid> — created private, and refused if it is a symlink or someone
 * else's (another local user must not be able to plant a run script). Every script
 * computes it the same way, so a poll finds what the start created. */
export const RUN_DIR_LINES = [
  'd="${HOME:-/nonexistent}/.cache/patchman/runs"',
  'mkdir -p "$d" 2>/dev/null',
  'if [ ! -w "$d" ]; then',
  '  d="/var/tmp/patchman-$(id -u)"',
  '  mkdir -m 700 "$d" 2>/dev/null',
  '  if [ -L "$d" ] || [ ! -O "$d" ]; then echo "unsafe or missing run directory $d" >&2; exit 3; fi',
  'fi',
];
export const RUN_START_BEGIN = '@@patchman-run 1';
export const RUN_POLL_BEGIN = '@@patchman-poll 1';
/** Most log bytes one poll returns; a bigger backlog takes several polls. */
export const POLL_MAX_BYTES = 256 * 1024;
/** Runs older than this are deleted by the next start on the same host. */
const KEEP_DAYS = 14;

function runPath(runId: string): string {
  if (!v.is(Id, runId)) throw new OpError('invalid-request', 'invalid run id');
  return `"$d/${runId}"`;
}

/**
 * The start script. `command` is the body of the run's own script: a constant the package
 * module built from string literals and allowlisted, quoted package names. It goes into the
 * run's .sh through a quoted here-document, so the start script never evaluates it.
 * `beforeCommand` lists the installed packages (read-only) into .before.
 */
export function startScript(runId: string, command: string, beforeCommand: string): string {
  const r = runPath(runId);
  if (command.includes('\nPATCHMAN_RUN_EOF')) throw new OpError('internal', 'run command contains the here-document marker');
  return [
    '{',
    ...SCRIPT_PROLOGUE,
    'umask 077',
    ...RUN_DIR_LINES,
    `find "$d" -type f -mtime +${KEEP_DAYS} -exec rm -f {} + 2>/dev/null`,
    `r=${r}`,
    `printf '\\n${RUN_START_BEGIN}\\n'`,
    'if [ -e "$r.log" ]; then echo exists; exit 0; fi',
    "cat > \"$r.sh\" <<'PATCHMAN_RUN_EOF'",
    command,
    'PATCHMAN_RUN_EOF',
    `${beforeCommand} > "$r.before" 2>/dev/null`,
    'cat /proc/sys/kernel/random/boot_id > "$r.boot" 2>/dev/null',
    ': > "$r.log"',
    'if command -v setsid >/dev/null 2>&1; then detach=setsid; else detach=nohup; fi',
    // The wrapper records its pid, runs the command with all output in the log, then writes
    // the exit status through a rename so a reader never sees half a number.
    `$detach /bin/sh -c 'echo $$ > "$1.pid"; /bin/sh "$1.sh" >> "$1.log" 2>&1 </dev/null; echo $? > "$1.rc.tmp"; mv -f "$1.rc.tmp" "$1.rc"' patchman-run "$r" </dev/null >/dev/null 2>&1 &`,
    'echo started',
    '} </dev/null',
    '',
  ].join('\n');
}

/** The poll script: the run's state, then (after a `@@data` line) its log from `offset`. */
export function pollScript(runId: string, offset: number, maxBytes = POLL_MAX_BYTES): string {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new OpError('internal', 'invalid log offset');
  const r = runPath(runId);
  return [
    '{',
    'umask 077',
    ...RUN_DIR_LINES,
    `r=${r}`,
    `printf '${RUN_POLL_BEGIN}\\n'`,
    'if [ ! -e "$r.log" ]; then echo none; exit 0; fi',
    'if [ -e "$r.rc" ]; then echo "done $(cat "$r.rc")"',
    // No exit status, and the wrapper is gone (killed, or the host rebooted since): the run
    // ended without saying how.
    'elif [ "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" != "$(cat "$r.boot" 2>/dev/null)" ]; then echo vanished rebooted',
    // (a zombie still answers kill -0: its /proc status says Z until something reaps it)
    // (the wrapper may have written the status and exited since the first test: look again)
    'elif [ -s "$r.pid" ] && { ! kill -0 "$(cat "$r.pid")" 2>/dev/null || grep -qs "^State:[[:space:]]*Z" "/proc/$(cat "$r.pid")/status"; }; then',
    '  if [ -e "$r.rc" ]; then echo "done $(cat "$r.rc")"; else echo vanished killed; fi',
    'else echo running',
    'fi',
    'echo "size $(wc -c < "$r.log")"',
    "echo '@@data'",
    `tail -c +${offset + 1} "$r.log" | head -c ${maxBytes}`,
    '} </dev/null',
    '',
  ].join('\n');
}

/** Longest one follow (streamScript) lasts before the relay polls again (and re-follows). */
export const FOLLOW_MAX_SECONDS = 300;

/**
 * The follow script: the run's log from `offset` as it grows (`tail -f`: inotify where the
 * host has it), ended by the script itself once the exit status file appears, the wrapper is
 * gone, or FOLLOW_MAX_SECONDS passed — it never decides how the run ended: the poll after it
 * does, and re-sends anything the follow did not pass on. (The script ends itself because
 * OpenSSH ignores signals for root sessions; closing the channel alone could leave it.)
 */
export function followScript(runId: string, offset: number): string {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new OpError('internal', 'invalid log offset');
  const r = runPath(runId);
  return [
    '{',
    'umask 077',
    ...RUN_DIR_LINES,
    `r=${r}`,
    'if [ ! -e "$r.log" ] || [ -e "$r.rc" ]; then exit 0; fi',
    `tail -c +${offset + 1} -f "$r.log" &`,
    't=$!',
    'n=0',
    `while [ ! -e "$r.rc" ] && [ $n -lt ${FOLLOW_MAX_SECONDS * 5} ] && [ -s "$r.pid" ] && kill -0 "$(cat "$r.pid")" 2>/dev/null; do`,
    '  sleep 0.2 2>/dev/null || sleep 1',
    '  n=$((n+1))',
    'done',
    'kill $t 2>/dev/null',
    'wait $t 2>/dev/null',
    'exit 0',
    '} </dev/null',
    '',
  ].join('\n');
}

/** The packages installed before the run (what the start script saved) and now. */
export function collectScript(runId: string, installedCommand: string): string {
  const r = runPath(runId);
  return [
    '{',
    ...SCRIPT_PROLOGUE,
    'umask 077',
    ...RUN_DIR_LINES,
    `r=${r}`,
    "printf '@@patchman-collect 1\\n@@before\\n'",
    'cat "$r.before" 2>/dev/null',
    "printf '\\n@@after\\n'",
    installedCommand,
    "printf '\\n@@end\\n'",
    '} </dev/null',
    '',
  ].join('\n');
}

export type PollState =
  | { state: 'none' }
  | { state: 'running'; size: number; data: Buffer }
  | { state: 'done'; exitCode: number; size: number; data: Buffer }
  | { state: 'vanished'; why: 'rebooted' | 'killed'; size: number; data: Buffer };

/** Parse a poll's raw stdout. */
export function parsePoll(out: Buffer): PollState {
  const head = out.subarray(0, Math.min(out.length, 512)).toString('latin1');
  const begin = head.indexOf(RUN_POLL_BEGIN + '\n');
  if (begin < 0) throw new OpError('command-failed', 'the run poll printed something unrecognised (no begin marker)');
  const lines = head.slice(begin + RUN_POLL_BEGIN.length + 1).split('\n');
  const status = lines[0] ?? '';
  if (status === 'none') return { state: 'none' };
  const size = Number(/^size (\d+)$/.exec(lines[1] ?? '')?.[1] ?? NaN);
  const marker = head.indexOf('\n@@data\n', begin);
  if (!Number.isFinite(size) || marker < 0) throw new OpError('command-failed', 'the run poll ended early');
  const data = out.subarray(marker + '\n@@data\n'.length);
  const done = /^done (\d+)$/.exec(status);
  if (done) return { state: 'done', exitCode: Number(done[1]), size, data };
  const vanished = /^vanished (rebooted|killed)$/.exec(status);
  if (vanished) return { state: 'vanished', why: vanished[1] as 'rebooted' | 'killed', size, data };
  if (status === 'running') return { state: 'running', size, data };
  throw new OpError('command-failed', `the run poll reported an unknown state ${JSON.stringify(status.slice(0, 40))}`);
}

/** Start the run unless it exists. Returns whether this call started it. */
export async function startRun(session: SshSession, runId: string, command: string, beforeCommand: string): Promise<'started' | 'exists'> {
  const r = await session.exec(SH_COMMAND, { stdin: startScript(runId, command, beforeCommand), timeoutMs: 120_000 });
  const line = r.stdout.split('\n').slice(r.stdout.split('\n').indexOf(RUN_START_BEGIN) + 1)[0]?.trim();
  if (r.code === 0 && r.stdout.includes(RUN_START_BEGIN) && (line === 'started' || line === 'exists')) return line;
  throw new OpError('command-failed', `Could not start the run on ${describeTarget(session.target)}: ${(r.stderr || r.stdout).trim().slice(-300) || `exit ${r.code}`}`);
}

export interface FollowOptions {
  /** Where the Worker's copy of the log ends. Re-read by every poll, so it can be rewound. */
  offset: () => number;
  /** Called with each new slice of the log, decoded, and its byte range. */
  onData: (text: string, range: { from: number; to: number }) => void;
  /** A line of the relay's own (reconnects), not from the host. */
  onNote: (text: string) => void;
  /** A live session; called again after the connection drops. */
  session: () => Promise<SshSession>;
  /** The session died: forget it so session() opens a new one. */
  dropSession: () => void;
  pollIntervalMs: number;
  /** Give up (outcome unknown) after this. */
  deadline: number;
  /** Wait between reconnect attempts. */
  reconnectDelayMs?: number;
  /** Most log bytes per poll (default POLL_MAX_BYTES). */
  maxBytes?: number;
  /** Between polls, follow the log as it grows (followScript) instead of waiting
   * pollIntervalMs: a line reaches the Worker as soon as it is written. Default true. */
  stream?: boolean;
}

/**
 * Follow a run until it ends: poll, pass new log bytes on, reconnect when SSH drops.
 * Resolves with the exit status; throws 'not-started' (no such run), 'lost' (the run ended
 * without an exit status, or the deadline passed while it was still unfinished).
 */
export async function followRun(runId: string, o: FollowOptions): Promise<{ exitCode: number; size: number; tail: string }> {
  // Non-UTF-8 bytes become U+FFFD; a character split across two polls is joined.
  let decoder = new TextDecoder('utf-8', { fatal: false });
  let decodedUpTo = -1; // the offset the decoder's state belongs to
  let tail = '';
  let disconnected = false;
  for (;;) {
    const from = o.offset();
    let out: Buffer;
    try {
      const session = await o.session();
      const maxBytes = o.maxBytes ?? POLL_MAX_BYTES;
      const r = await session.exec(SH_COMMAND, { stdin: pollScript(runId, from, maxBytes), timeoutMs: 60_000, binary: true, maxOutputBytes: maxBytes + 4096 });
      if (r.code !== 0 || !r.stdoutBytes) throw new OpError('command-failed', `the run poll exited with status ${r.code}: ${r.stderr.trim().slice(-200)}`);
      out = r.stdoutBytes;
      if (disconnected) o.onNote('[patchman] re-attached to the run\n');
      disconnected = false;
    } catch (err) {
      if (!(err instanceof OpError) || (err.code !== 'unreachable' && err.code !== 'timeout')) throw err;
      o.dropSession();
      if (!disconnected) o.onNote(`[patchman] lost the SSH connection (${err.message}); the run goes on on the host, re-attaching…\n`);
      disconnected = true;
      if (Date.now() > o.deadline) throw new OpError('lost', `Lost contact with the host and could not re-attach in time; whether the upgrade finished is unknown. ${err.message}`);
      await sleep(o.reconnectDelayMs ?? 2000);
      continue;
    }
    const p = parsePoll(out);
    if (p.state === 'none') throw new OpError('not-started', 'The run never started on the host, so nothing was changed.');
    if (p.data.length > 0) {
      // A rewound offset (a resumed request) starts a fresh decoder.
      if (decodedUpTo !== -1 && decodedUpTo !== from) decoder = new TextDecoder('utf-8', { fatal: false });
      const text = decoder.decode(p.data, { stream: true });
      decodedUpTo = from + p.data.length;
      tail = (tail + text).slice(-16_384);
      o.onData(text, { from, to: from + p.data.length });
    }
    const caughtUp = from + p.data.length >= p.size;
    if (p.state === 'done' && caughtUp) {
      // A log that ends inside a UTF-8 sequence: its replacement character belongs to the log too.
      const rest = decoder.decode();
      if (rest) o.onData(rest, { from: p.size, to: p.size });
      return { exitCode: p.exitCode, size: p.size, tail: tail + rest };
    }
    if (p.state === 'vanished' && caughtUp) {
      throw new OpError(
        'lost',
        p.why === 'rebooted'
          ? 'The host rebooted while the run was going; it left no exit status, so what it finished is unknown. Rescan the host and check dpkg/pacman before running it again.'
          : 'The run was killed on the host before it finished; what it changed is unknown. Rescan the host and check dpkg/pacman before running it again.',
      );
    }
    if (Date.now() > o.deadline) throw new OpError('lost', 'The run was still going when the relay stopped following it (time limit); its outcome is unknown.');
    if (!caughtUp) continue;
    const at = from + p.data.length;
    const followed = o.stream === false ? 'failed' : await follow(at);
    if (followed !== 'followed') await sleep(followed === 'ended-at-once' ? Math.min(150, o.pollIntervalMs) : o.pollIntervalMs);
  }

  /** Follow the log from `at` (where the last poll ended) until the follow script ends or
   * the Worker's offset is rewound; then the loop polls again. 'failed' if it could not
   * follow (e.g. a host whose shell lacks `tail -f`): the loop then waits and polls;
   * 'ended-at-once' (the run ended meanwhile, or nothing to follow): a short wait. */
  async function follow(at: number): Promise<'followed' | 'ended-at-once' | 'failed'> {
    let off = at;
    const started = Date.now();
    const stop = new AbortController();
    try {
      const session = await o.session();
      const r = await session.exec(SH_COMMAND, {
        stdin: followScript(runId, at),
        timeoutMs: Math.max(1000, Math.min((FOLLOW_MAX_SECONDS + 30) * 1000, o.deadline - Date.now())),
        signal: stop.signal,
        onStdout: (chunk) => {
          // a resumed request rewound the offset: stop, and poll from there
          if (o.offset() !== off) return stop.abort();
          const text = decoder.decode(chunk, { stream: true });
          decodedUpTo = off + chunk.length;
          tail = (tail + text).slice(-16_384);
          o.onData(text, { from: off, to: off + chunk.length });
          off += chunk.length;
        },
      });
      if (r.code !== 0) return off > at ? 'followed' : 'failed';
      return off > at || Date.now() - started > 500 ? 'followed' : 'ended-at-once';
    } catch {
      // a dropped connection, a timeout, a rewind: the next poll sorts it out
      return off > at || stop.signal.aborted ? 'followed' : 'failed';
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
