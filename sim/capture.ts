// Record what THIS machine (Debian 12) answers to every command the relay sends, through a
// real OpenSSH sshd (relay/test/sshd.ts) logged in as root, exactly as the relay runs them.
// The simulated Debian hosts replay these files. Re-run after a relay command changes:
//
//   node sim/capture.ts            → sim/fixtures/debian12-local/
//   node sim/capture.ts --current  → sim/fixtures/debian12-current/: apt-list and
//        apt-showhold again, but apt sees no package lists (APT_CONFIG points Dir::State::Lists at an empty dir and
//        the sources at /dev/null), so apt reports this machine as fully up to date. Run
//        through `/bin/sh -c` locally because sshd would not pass APT_CONFIG on.
//
// Needs root and openssh-server. Writes <kind>.stdout, <kind>.stderr, <kind>.code, meta.json.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateKeyPair } from '../relay/keys.ts';
import { KnownHosts } from '../relay/known-hosts.ts';
import { openSession } from '../relay/ssh.ts';
import { startSshd } from '../relay/test/sshd.ts';
import { relayCommands, type RelayCommand } from './commands.ts';

interface Captured {
  stdout: string;
  stderr: string;
  code: number | null;
}

function runLocal(c: RelayCommand, env: NodeJS.ProcessEnv): Promise<Captured> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', c.command], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code }));
    child.stdin.end(c.stdin ?? '');
  });
}

async function main(): Promise<void> {
  const current = process.argv.includes('--current');
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
  const outDir = join(import.meta.dirname, 'fixtures', current ? 'debian12-current' : 'debian12-local');
  mkdirSync(outDir, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'patchman-capture-'));
  // This machine has apt: everything a root login's scan can send with apt (no other group's).
  const commands = relayCommands().filter(
    (c) => (c.group === undefined || c.group === 'apt') && !c.sudo && (current ? ['apt-list', 'apt-showhold'].includes(c.kind) : true) && (!only || only.includes(c.kind)),
  );
  const results: Array<{ kind: string; command: string; stdinBytes: number; code: number | null }> = [];
  const save = (c: RelayCommand, r: Captured): void => {
    writeFileSync(join(outDir, `${c.kind}.stdout`), r.stdout);
    writeFileSync(join(outDir, `${c.kind}.stderr`), r.stderr);
    writeFileSync(join(outDir, `${c.kind}.code`), `${r.code}\n`);
    results.push({ kind: c.kind, command: c.command, stdinBytes: Buffer.byteLength(c.stdin ?? ''), code: r.code });
    console.log(`${c.kind}: exit ${r.code}, ${r.stdout.length} bytes stdout, ${r.stderr.length} bytes stderr`);
  };
  try {
    if (current) {
      const lists = join(tmp, 'lists');
      mkdirSync(join(lists, 'partial'), { recursive: true });
      const conf = join(tmp, 'apt.conf');
      writeFileSync(
        conf,
        `Dir::State::Lists "${lists}";\nDir::Etc::SourceList "/dev/null";\nDir::Etc::SourceParts "${join(tmp, 'sources.list.d')}";\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n`,
      );
      mkdirSync(join(tmp, 'sources.list.d'));
      for (const c of commands) save(c, await runLocal(c, { ...process.env, APT_CONFIG: conf, LC_ALL: 'C' }));
    } else {
      const key = await loadOrCreateKeyPair(join(tmp, 'relay'));
      const sshd = await startSshd({ authorizedKeys: [key.publicKey] });
      try {
        const ctx = { privateKey: key.privateKey, knownHosts: KnownHosts.open(join(tmp, 'relay')) };
        const session = await openSession({ address: '127.0.0.1', port: sshd.port, user: 'root' }, ctx);
        try {
          for (const c of commands) save(c, await session.exec(c.command, { stdin: c.stdin, timeoutMs: 600_000 }));
        } finally {
          session.close();
        }
      } finally {
        await sshd.stop();
      }
    }
    writeFileSync(
      join(outDir, only ? `meta.${only.join('+')}.json` : 'meta.json'),
      JSON.stringify(
        {
          capturedAt: new Date().toISOString(),
          machine: `${hostname()} (Debian 12, this project's development machine)`,
          how: current ? 'local /bin/sh -c with APT_CONFIG (empty package lists)' : 'real OpenSSH sshd (relay/test/sshd.ts), root login, relay/ssh.ts exec',
          commands: results,
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
