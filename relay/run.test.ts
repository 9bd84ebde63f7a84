// Detached runs (relay/run.ts) on a real host: a real OpenSSH sshd on this machine
// (relay/test/sshd.ts, root login, HOME in a temp dir), with harmless commands instead of
// an upgrade. Plus parsePoll on hand-made poll outputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpError } from './errors.ts';
import { loadOrCreateKeyPair, type KeyPair } from './keys.ts';
import { KnownHosts } from './known-hosts.ts';
import { SH_COMMAND, splitMarked } from './pkg/shell.ts';
import { POLL_MAX_BYTES, collectScript, followRun, parsePoll, startRun } from './run.ts';
import { openSession, type SshSession } from './ssh.ts';
import { startSshd, type Sshd } from './test/sshd.ts';

let tmp: string;
let key: KeyPair;
let sshd: Sshd;
let ctx: { privateKey: string; knownHosts: KnownHosts };
const target = () => ({ address: '127.0.0.1', port: sshd.port, user: 'root' });
const runsDir = () => join(sshd.dir, 'home', '.cache', 'patchman', 'runs');

/** Lines with pauses between them, a byte that is not UTF-8, a two-byte character written
 * in two halves 0.4 s apart, and exit status 3. Counts its starts in $HOME/starts-<id>. */
const command = (id: string) =>
  [
    `echo start >> "$HOME/starts-${id}"`,
    "printf 'line one\\n'",
    'sleep 0.4',
    "printf 'bad \\377 byte\\n'",
    'sleep 0.4',
    "printf 'caf\\303'",
    'sleep 0.4',
    "printf '\\251 done\\n'",
    'exit 3',
  ].join('\n');
const RAW = Buffer.concat([Buffer.from('line one\nbad '), Buffer.from([0xff]), Buffer.from(' byte\ncaf'), Buffer.from([0xc3]), Buffer.from([0xa9]), Buffer.from(' done\n')]);
const TEXT = 'line one\nbad \uFFFD byte\ncafé done\n';
/** Where the é starts in RAW. */
const E_AT = RAW.indexOf(0xc3);

interface Followed {
  result: { exitCode: number; size: number; tail: string };
  chunks: { text: string; from: number; to: number }[];
  notes: string[];
  text: string;
}

async function follow(runId: string, from = 0, maxBytes?: number): Promise<Followed> {
  let session: SshSession | null = null;
  const chunks: Followed['chunks'] = [];
  const notes: string[] = [];
  let offset = from;
  try {
    const result = await followRun(runId, {
      offset: () => offset,
      onData: (text, range) => {
        chunks.push({ text, ...range });
        offset = range.to;
      },
      onNote: (n) => notes.push(n),
      session: async () => (session ??= await openSession(target(), ctx)),
      dropSession: () => {
        session?.close();
        session = null;
      },
      pollIntervalMs: 30,
      deadline: Date.now() + 30_000,
      reconnectDelayMs: 100,
      maxBytes,
    });
    return { result, chunks, notes, text: chunks.map((c) => c.text).join('') };
  } finally {
    (session as SshSession | null)?.close();
  }
}

async function withSession<T>(fn: (s: SshSession) => Promise<T>): Promise<T> {
  const s = await openSession(target(), ctx);
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

async function followError(runId: string): Promise<OpError> {
  try {
    await follow(runId);
  } catch (e) {
    if (e instanceof OpError) return e;
    throw e;
  }
  throw new Error('expected followRun to fail');
}

async function waitFor(path: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (existsSync(path)) {
      const text = readFileSync(path, 'utf8').trim();
      if (text) return text;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path} did not appear`);
}

/** Kill a run's wrapper and what it started (setsid made the wrapper a group leader). */
function killRun(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

const started: number[] = [];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'patchman-run-'));
  key = await loadOrCreateKeyPair(join(tmp, 'relay'));
  sshd = await startSshd({ authorizedKeys: [key.publicKey] });
  ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')) };
});

afterAll(async () => {
  for (const pid of started) killRun(pid);
  await sshd?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a detached run on a real host', () => {
  it('streams the log as it is written: U+FFFD for bytes that are not UTF-8, split characters joined, contiguous ranges, the exit status', async () => {
    expect(await withSession((s) => startRun(s, 'run-a', command('a'), 'echo before-list'))).toBe('started');
    const f = await follow('run-a');
    expect(f.result.exitCode).toBe(3);
    expect(f.text).toBe(TEXT);
    expect(f.result.tail).toBe(TEXT);
    expect(f.result.size).toBe(RAW.length);
    let at = 0;
    for (const c of f.chunks) {
      expect(c.from).toBe(at);
      expect(c.to).toBeGreaterThan(c.from);
      at = c.to;
    }
    expect(at).toBe(RAW.length);
    expect(f.notes).toEqual([]);
    // Polls that end between the two bytes of "é" (forced by the poll size): joined again.
    const split = await follow('run-a', 0, E_AT + 1);
    expect(split.chunks.map((c) => c.to)).toContain(E_AT + 1);
    expect(split.text).toBe(TEXT);
    // The files on the host.
    expect(readFileSync(join(runsDir(), 'run-a.log'))).toEqual(RAW);
    expect(readFileSync(join(runsDir(), 'run-a.rc'), 'utf8')).toBe('3\n');
    expect(readFileSync(join(runsDir(), 'run-a.before'), 'utf8')).toBe('before-list\n');
    expect(readFileSync(join(runsDir(), 'run-a.sh'), 'utf8')).toBe(command('a') + '\n');
  });

  it('follows a running log as it grows (tail -f), not once per poll interval: each line arrives about when it is written', async () => {
    const cmd = ["printf 'one\\n'", 'sleep 1', "printf 'two\\n'", 'sleep 1', "printf 'three\\n'", 'exit 0'].join('\n');
    expect(await withSession((s) => startRun(s, 'run-stream', cmd, 'true'))).toBe('started');
    let session: SshSession | null = null;
    const arrivals: { text: string; at: number; from: number }[] = [];
    let offset = 0;
    const t0 = Date.now();
    try {
      const result = await followRun('run-stream', {
        offset: () => offset,
        onData: (text, range) => {
          arrivals.push({ text, at: Date.now() - t0, from: range.from });
          offset = range.to;
        },
        onNote: () => {},
        session: async () => (session ??= await openSession(target(), ctx)),
        dropSession: () => {
          session?.close();
          session = null;
        },
        // polling alone would see "two" and "three" only after 20 s
        pollIntervalMs: 20_000,
        deadline: Date.now() + 60_000,
      });
      expect(result.exitCode).toBe(0);
    } finally {
      (session as SshSession | null)?.close();
    }
    expect(arrivals.map((a) => a.text).join('')).toBe('one\ntwo\nthree\n');
    const two = arrivals.find((a) => a.text.includes('two'))!;
    const three = arrivals.find((a) => a.text.includes('three'))!;
    // "two" came on its own, before "three" was written, and the whole run took seconds
    expect(two.text).not.toContain('three');
    expect(three.at - two.at).toBeGreaterThan(500);
    expect(Date.now() - t0).toBeLessThan(15_000);
  }, 30_000);

  it('the same run id again: "exists", and the command does not run a second time', async () => {
    const size = readFileSync(join(runsDir(), 'run-a.log')).length;
    expect(await withSession((s) => startRun(s, 'run-a', command('a'), 'echo before-list'))).toBe('exists');
    await new Promise((r) => setTimeout(r, 300));
    expect(readFileSync(join(sshd.dir, 'home', 'starts-a'), 'utf8')).toBe('start\n');
    expect(readFileSync(join(runsDir(), 'run-a.log')).length).toBe(size);
    expect(readdirSync(runsDir()).filter((f) => f.startsWith('run-a.')).sort()).toEqual(['run-a.before', 'run-a.boot', 'run-a.log', 'run-a.pid', 'run-a.rc', 'run-a.sh']);
  });

  it('following from an offset resumes exactly there', async () => {
    const f = await follow('run-a', 5);
    expect(f.chunks[0].from).toBe(5);
    expect(f.text).toBe(new TextDecoder().decode(RAW.subarray(5)));
    expect(f.result.exitCode).toBe(3);
    // From the middle of a character: that half is not text.
    const mid = await follow('run-a', E_AT + 1);
    expect(mid.text).toBe('\uFFFD done\n');
    // From the end: nothing more to send, only the status.
    const end = await follow('run-a', RAW.length);
    expect(end.chunks).toEqual([]);
    expect(end.result).toMatchObject({ exitCode: 3, size: RAW.length });
  });

  it('the collect script lists what .before saved and what is installed now', async () => {
    const r = await withSession((s) => s.exec(SH_COMMAND, { stdin: collectScript('run-a', 'echo after-list'), timeoutMs: 10_000 }));
    const sections = splitMarked(r.stdout, '@@patchman-collect 1', ['before', 'after'], 'collect');
    expect(sections.get('before')).toEqual(['before-list', '']);
    expect(sections.get('after')).toEqual(['after-list', '']);
  });

  it('a log bigger than one poll arrives in several polls, whole', async () => {
    const n = Math.floor(POLL_MAX_BYTES * 2.5);
    expect(await withSession((s) => startRun(s, 'run-big', `head -c ${n} /dev/zero | tr '\\000' x`, 'true'))).toBe('started');
    const f = await follow('run-big');
    expect(f.result).toMatchObject({ exitCode: 0, size: n });
    expect(f.text).toBe('x'.repeat(n));
    expect(f.chunks.length).toBeGreaterThanOrEqual(3);
    for (const c of f.chunks) expect(c.to - c.from).toBeLessThanOrEqual(POLL_MAX_BYTES);
  });

  it('a run that was never started: not-started', async () => {
    const err = await followError('run-never');
    expect(err.code).toBe('not-started');
  });

  it('a run whose wrapper was killed: lost, saying it was killed', async () => {
    expect(await withSession((s) => startRun(s, 'run-kill', 'echo going\nsleep 30', 'true'))).toBe('started');
    const pid = Number(await waitFor(join(runsDir(), 'run-kill.pid')));
    started.push(pid);
    killRun(pid);
    const err = await followError('run-kill');
    expect(err.code).toBe('lost');
    expect(err.message).toMatch(/^The run was killed on the host before it finished/);
  });

  it('a run the host lost to a reboot (the boot id changed, no exit status): lost, saying so', async () => {
    expect(await withSession((s) => startRun(s, 'run-boot', 'sleep 30', 'true'))).toBe('started');
    started.push(Number(await waitFor(join(runsDir(), 'run-boot.pid'))));
    writeFileSync(join(runsDir(), 'run-boot.boot'), '00000000-0000-4000-8000-000000000000\n');
    const err = await followError('run-boot');
    expect(err.code).toBe('lost');
    expect(err.message).toMatch(/^The host rebooted while the run was going/);
  });
});

describe('parsePoll', () => {
  const poll = (head: string, data: Buffer | string = '') => Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(data) ? data : Buffer.from(data)]);
  const thrown = (out: Buffer): OpError => {
    try {
      parsePoll(out);
    } catch (e) {
      if (e instanceof OpError) return e;
      throw e;
    }
    throw new Error('expected an OpError');
  };

  it('none', () => {
    expect(parsePoll(poll('@@patchman-poll 1\nnone\n'))).toEqual({ state: 'none' });
  });

  it('running, with the data bytes exactly as they came (not decoded)', () => {
    const bytes = Buffer.from([0xff, 0x00, 0x0a, 0xc3]);
    const p = parsePoll(poll('@@patchman-poll 1\nrunning\nsize 42\n@@data\n', bytes));
    expect(p).toEqual({ state: 'running', size: 42, data: bytes });
  });

  it('done with its status, vanished with its reason', () => {
    expect(parsePoll(poll('@@patchman-poll 1\ndone 100\nsize 7\n@@data\n', 'E: lock'))).toEqual({ state: 'done', exitCode: 100, size: 7, data: Buffer.from('E: lock') });
    expect(parsePoll(poll('@@patchman-poll 1\nvanished rebooted\nsize 0\n@@data\n'))).toEqual({ state: 'vanished', why: 'rebooted', size: 0, data: Buffer.alloc(0) });
    expect(parsePoll(poll('@@patchman-poll 1\nvanished killed\nsize 3\n@@data\n', 'abc'))).toMatchObject({ state: 'vanished', why: 'killed' });
  });

  it('skips what a login shell printed before the marker', () => {
    expect(parsePoll(poll('Welcome to host!\n@@patchman-poll 1\ndone 0\nsize 2\n@@data\n', 'ok'))).toEqual({ state: 'done', exitCode: 0, size: 2, data: Buffer.from('ok') });
  });

  it('a log that contains the marker lines itself is data, not structure', () => {
    const p = parsePoll(poll('@@patchman-poll 1\nrunning\nsize 30\n@@data\n', 'x\n@@data\ndone 0\n'));
    expect(p).toEqual({ state: 'running', size: 30, data: Buffer.from('x\n@@data\ndone 0\n') });
  });

  it('refuses output that is not a poll, or that ends early, or an unknown state', () => {
    expect(thrown(poll('sh: 1: syntax error\n')).message).toMatch(/no begin marker/);
    expect(thrown(poll('@@patchman-poll 1\nrunning\n')).message).toMatch(/ended early/);
    expect(thrown(poll('@@patchman-poll 1\nrunning\nsize 5\n')).message).toMatch(/ended early/);
    expect(thrown(poll('@@patchman-poll 1\nrunning\nsize x\n@@data\n')).message).toMatch(/ended early/);
    expect(thrown(poll('@@patchman-poll 1\npaused\nsize 1\n@@data\n')).message).toMatch(/unknown state "paused"/);
    expect(thrown(poll('@@patchman-poll 1\ndone\nsize 1\n@@data\n')).code).toBe('command-failed');
  });
});
