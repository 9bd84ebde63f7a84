// TEST DOUBLE of Proxmox VE's command line (pct, qm, pvesh, pveversion) for
// relay/test/pve-node.ts — NOT Proxmox. It answers the commands PatchMan's relay runs
// (relay/proxmox/commands.ts) in the formats of the real CLI (relay/proxmox/fixtures/), from
// a state directory. Inside a "guest" everything is real: `pct exec` / `qm guest exec` run
// the command with chroot in a real Debian root (an overlayfs over the debootstrap root of
// relay/test/debian-root.ts), so apt and dpkg there are real. A snapshot is a copy of the
// overlay's upper directory; a rollback puts that copy back and mounts the overlay again.
//
// Usage (through the wrappers pve-node.ts writes): standin.mjs <pct|qm|pvesh|pveversion> args…
// State: $PVE_STANDIN_STATE/guests.json, snap/<vmid>/<name>/{meta.json,upper}, calls.log
import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';

const STATE = process.env.PVE_STANDIN_STATE;
const [tool, ...args] = process.argv.slice(2);
const NODE = hostname().split('.')[0];
const GUEST_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LC_ALL: 'C', LANG: 'C' };

appendFileSync(join(STATE, 'calls.log'), [tool, ...args].join(' ').replace(/\n/g, '\\n') + '\n');

const load = () => JSON.parse(readFileSync(join(STATE, 'guests.json'), 'utf8'));
const save = (g) => writeFileSync(join(STATE, 'guests.json'), JSON.stringify(g, null, 1));
const fail = (msg, code = 255) => {
  process.stderr.write(msg.endsWith('\n') ? msg : msg + '\n');
  process.exit(code);
};
const guestOf = (kind, id) => {
  const g = load()[id];
  if (!g || g.kind !== kind) fail(`Configuration file 'nodes/${NODE}/${kind === 'lxc' ? 'lxc' : 'qemu-server'}/${id}.conf' does not exist`, 2);
  return g;
};
const pad = (s, n) => String(s).padEnd(n);
const two = (n) => String(n).padStart(2, '0');
/** strftime("%F %H:%M:%S", localtime): local time as TZ says, like Perl's. */
const localTime = (t) => {
  const d = new Date(t * 1000);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
};

function config(g) {
  const disk = g.storage === 'local' ? `local:${g.vmid}/vm-${g.vmid}-disk-0.raw,size=8G` : `${g.storage}:vm-${g.vmid}-disk-0,size=8G`;
  const lines = g.kind === 'lxc'
    ? { arch: 'amd64', cores: '1', hostname: g.name, memory: '512', net0: 'name=eth0,bridge=vmbr0,ip=dhcp,type=veth', ostype: g.ostype ?? 'debian', rootfs: disk, swap: '512', unprivileged: '1' }
    : { ...(g.agent ? { agent: '1' } : {}), boot: 'order=scsi0', cores: '2', memory: '2048', name: g.name, ostype: 'l26', scsi0: disk, scsihw: 'virtio-scsi-single' };
  return Object.keys(lines).sort().map((k) => `${k}: ${lines[k]}\n`).join('');
}

function sh(cmd, argv) {
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) fail(`${cmd} ${argv.join(' ')}: ${r.stderr}`);
}
/** The guest's root: overlay(lower = pristine Debian root, upper) with /proc and /dev. */
// The layout of relay/test/debian-root.ts mountOverlay (this runs as its own process, on the
// node's PATH, so it repeats the three mounts rather than import a .ts module).
function mountRoot(g) {
  sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${g.lower},upperdir=${g.base}/upper,workdir=${g.base}/work`, `${g.base}/root`]);
  sh('mount', ['-t', 'proc', 'proc', `${g.base}/root/proc`]);
  sh('mount', ['--bind', '/dev', `${g.base}/root/dev`]);
}
function umountRoot(g) {
  for (const m of ['root/dev', 'root/proc', 'root']) spawnSync('umount', ['-l', `${g.base}/${m}`]);
}

function snapshots(id) {
  const dir = join(STATE, 'snap', String(id));
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((name) => ({ name, ...JSON.parse(readFileSync(join(dir, name, 'meta.json'), 'utf8')) })).sort((a, b) => a.snaptime - b.snaptime);
}

/** GuestHelpers::print_snapshot_tree for a chain (each snapshot the parent of the next). */
function printTree(id) {
  let prefix = '`->';
  const row = (name, time, desc) => {
    const len = Math.max(0, 30 - prefix.length);
    process.stdout.write(`${prefix} ${pad(name, len)} ${pad(time, 23)} ${desc}\n`);
    prefix = ' ' + prefix;
  };
  for (const s of snapshots(id)) row(s.name, localTime(s.snaptime), (s.description || 'no-description').split('\n')[0]);
  row('current', '', 'You are here!');
}

function snapshotCmd(kind, [id, name, ...rest]) {
  const g = guestOf(kind, id);
  if (!/^[A-Za-z][A-Za-z0-9_-]{1,39}$/.test(name ?? '')) fail(`400 Parameter verification failed.\nsnapname: invalid format\n`);
  const di = rest.indexOf('--description');
  const description = di >= 0 ? rest[di + 1] ?? '' : '';
  if (g.storage === 'local') fail('snapshot feature is not available');
  const dir = join(STATE, 'snap', String(id), name);
  if (existsSync(dir)) fail(`snapshot name '${name}' already used`);
  mkdirSync(dir, { recursive: true });
  cpSync(join(g.base, 'upper'), join(dir, 'upper'), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ description, snaptime: Math.floor(Date.now() / 1000) }));
}

function rollbackCmd(kind, [id, name, ...rest]) {
  const all = load();
  const g = guestOf(kind, id);
  const dir = join(STATE, 'snap', String(id), name ?? '');
  if (!name || !existsSync(dir)) fail(`snapshot '${name}' does not exist`);
  // a running guest is stopped by the rollback itself (a hard stop), as in Proxmox
  umountRoot(g);
  rmSync(join(g.base, 'upper'), { recursive: true, force: true });
  rmSync(join(g.base, 'work'), { recursive: true, force: true });
  mkdirSync(join(g.base, 'work'));
  cpSync(join(dir, 'upper'), join(g.base, 'upper'), { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  mountRoot(g);
  const si = rest.indexOf('--start');
  all[id].status = si >= 0 && rest[si + 1] !== '0' ? 'running' : 'stopped';
  save(all);
}

function execIn(g, argv, input) {
  return spawnSync('chroot', [`${g.base}/root`, ...argv], { env: GUEST_ENV, ...(input === undefined ? { stdio: 'inherit' } : { input, maxBuffer: 64 * 1024 * 1024 }) });
}

function pct([cmd, ...rest]) {
  switch (cmd) {
    case 'list': {
      const lxc = Object.values(load()).filter((g) => g.kind === 'lxc').sort((a, b) => a.vmid - b.vmid);
      if (lxc.length === 0) return;
      const f = (a, b, c, d) => `${pad(a, 10)} ${pad(b, 10)} ${pad(c, 12)} ${pad(d, 20)}\n`;
      process.stdout.write(f('VMID', 'Status', 'Lock', 'Name') + lxc.map((g) => f(g.vmid, g.status, '', g.name)).join(''));
      return;
    }
    case 'status':
      return void process.stdout.write(`status: ${guestOf('lxc', rest[0]).status}\n`);
    case 'config':
      return void process.stdout.write(config(guestOf('lxc', rest[0])));
    case 'exec': {
      const g = guestOf('lxc', rest[0]);
      if (g.status !== 'running') fail(`container '${rest[0]}' not running!`);
      const argv = rest.slice(rest.indexOf('--') + 1);
      const r = execIn(g, argv);
      return void process.exit(r.status ?? 128 + 9);
    }
    case 'snapshot':
      return snapshotCmd('lxc', rest);
    case 'delsnapshot':
      guestOf('lxc', rest[0]);
      return void rmSync(join(STATE, 'snap', rest[0], rest[1]), { recursive: true, force: true });
    case 'listsnapshot':
      guestOf('lxc', rest[0]);
      return printTree(rest[0]);
    case 'rollback':
      return rollbackCmd('lxc', rest);
  }
  fail(`ERROR: unknown command 'pct ${cmd}' (the test stand-in knows only what the relay runs)`);
}

function qm([cmd, ...rest]) {
  switch (cmd) {
    case 'list': {
      const vms = Object.values(load()).filter((g) => g.kind === 'qemu').sort((a, b) => a.vmid - b.vmid);
      if (vms.length === 0) return;
      const f = (a, b, c, d, e, p) => `${String(a).padStart(10)} ${pad(b, 20)} ${pad(c, 10)} ${pad(d, 10)} ${String(e).padStart(12)} ${pad(p, 10)}\n`;
      process.stdout.write(f('VMID', 'NAME', 'STATUS', 'MEM(MB)', 'BOOTDISK(GB)', 'PID') + vms.map((g) => f(g.vmid, g.name, g.status, 2048, '8.00', g.status === 'running' ? 4000 + g.vmid : 0)).join(''));
      return;
    }
    case 'status':
      return void process.stdout.write(`status: ${guestOf('qemu', rest[0]).status}\n`);
    case 'config':
      return void process.stdout.write(config(guestOf('qemu', rest[0])));
    case 'guest': {
      const [sub, id, ...more] = rest;
      const g = guestOf('qemu', id);
      if (!g.agent) fail('No QEMU guest agent configured');
      if (g.status !== 'running') fail(`VM ${id} is not running`);
      if (sub === 'cmd' && more[0] === 'ping') return;
      if (sub !== 'exec') break;
      const ti = more.indexOf('--timeout');
      const timeout = ti >= 0 ? Number(more[ti + 1]) : 30;
      const input = more.includes('--pass-stdin') ? readFileSync(0) : Buffer.alloc(0);
      const r = spawnSync('chroot', [`${g.base}/root`, ...more.slice(more.indexOf('--') + 1)], { env: GUEST_ENV, input, maxBuffer: 64 * 1024 * 1024, timeout: timeout > 0 ? timeout * 1000 : undefined });
      if (r.error?.code === 'ETIMEDOUT' || (r.signal && timeout > 0 && r.status === null && r.error)) {
        process.stderr.write('timeout reached, returning pid\n');
        return void process.stdout.write(`{\n   "pid" : ${r.pid}\n}\n`);
      }
      // $print_agent_result: to_json(pretty, canonical, utf8) of the decoded byte strings, so
      // each output byte is one character (non-ASCII output double-encoded); empty ones omitted
      const res = { exitcode: r.status ?? 0, exited: 1 };
      if (r.stdout?.length) res['out-data'] = r.stdout.toString('latin1');
      if (r.stderr?.length) res['err-data'] = r.stderr.toString('latin1');
      if (r.signal) res.signal = 9;
      const keys = Object.keys(res).sort();
      return void process.stdout.write(`{\n${keys.map((k) => `   ${JSON.stringify(k)} : ${JSON.stringify(res[k])}`).join(',\n')}\n}\n`);
    }
    case 'snapshot':
      return snapshotCmd('qemu', rest);
    case 'delsnapshot':
      guestOf('qemu', rest[0]);
      return void rmSync(join(STATE, 'snap', rest[0], rest[1]), { recursive: true, force: true });
    case 'listsnapshot':
      guestOf('qemu', rest[0]);
      return printTree(rest[0]);
    case 'rollback':
      return rollbackCmd('qemu', rest);
  }
  fail(`ERROR: unknown command 'qm ${cmd}' (the test stand-in knows only what the relay runs)`);
}

function pvesh(argv) {
  const path = argv[1];
  if (argv[0] === 'get' && path === '/cluster/resources') {
    const list = Object.values(load()).map((g) => ({ id: `${g.kind}/${g.vmid}`, maxmem: 536870912, name: g.name, node: NODE, status: g.status, template: 0, type: g.kind, vmid: g.vmid }));
    return void process.stdout.write(JSON.stringify(list) + '\n');
  }
  if (argv[0] === 'get' && path === '/storage') return void process.stdout.write(readFileSync(join(STATE, 'storage.json'), 'utf8'));
  fail(`No '${argv[0]}' handler defined for '${path}' (the test stand-in knows only what the relay runs)`);
}

switch (tool) {
  case 'pct':
    pct(args);
    break;
  case 'qm':
    qm(args);
    break;
  case 'pvesh':
    pvesh(args);
    break;
  case 'pveversion':
    process.stdout.write('pve-manager/8.2.4/faa83925c9641325 (running kernel: 6.8.8-3-pve)\n');
    break;
  default:
    fail(`unknown stand-in ${tool}`);
}
