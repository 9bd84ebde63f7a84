// A fleet of simulated SSH hosts in one process: each host on its own 127.x.y.z address
// (never 127.0.0.1, which PatchMan reads as "the relay's own box"), with a profile (which
// distribution, what it answers), a stable ed25519 host key kept in a state dir, and an
// optional failure mode and latency.
//
//   import { startFleet } from './sim/fleet.ts';
//   const fleet = await startFleet({ hosts: [{ profile: 'debian12-security' }], authorizedKeys: [pub], stateDir });
//
// CLI: `node sim/fleet.ts --count 50` prints the host list as JSON and serves until Ctrl-C
// (`--help` for the options).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateEd25519 } from '../relay/keys.ts';
import { fingerprintOfBlob } from '../relay/keys.ts';
import { SimHost, publicKeyBlob, FAILURE_MODES, type CommandTable, type FailureMode, type Latency, type UnknownCommand } from './host.ts';
import { PROFILES, PROFILE_NAMES, commandTable, type Profile, type ProfileName } from './profiles.ts';
import { SimProxmoxNode } from './proxmox.ts';
import { SimRegistry } from './docker.ts';

export type { FailureMode, Latency, ProfileName };
export { PROFILES, PROFILE_NAMES, FAILURE_MODES };

export interface HostSpec {
  /** Unique; also the host's hostname. Default `<profile>-<n>`. */
  name?: string;
  profile: ProfileName;
  /** Default: the next address after `baseAddress`. */
  address?: string;
  /** Default: the fleet's `port`. */
  port?: number;
  failure?: FailureMode | null;
  latency?: Latency;
}

export interface FleetOptions {
  hosts: HostSpec[];
  /** OpenSSH public key lines (the relay's key). */
  authorizedKeys: string[];
  /** Host keys live in `<stateDir>/hostkeys/` and survive restarts. */
  stateDir: string;
  /** First address handed out (default 127.77.0.1); the next hosts get the following ones. */
  baseAddress?: string;
  /** Port for every host without its own (default 0: a free port per host). */
  port?: number;
  /** Latency for every host without its own. */
  latency?: Latency;
}

export interface FleetHost {
  name: string;
  address: string;
  port: number;
  profile: ProfileName;
  failure: FailureMode | null;
  /** `SHA256:…` of the host key it presents normally. */
  hostKeyFingerprint: string;
}

export interface Fleet {
  hosts: FleetHost[];
  /** Switch a host's failure mode at run time (null: healthy again). */
  setFailure(name: string, mode: FailureMode | null): Promise<void>;
  /** Commands that had no recorded output (each answered with exit 127). */
  unknownCommands: UnknownCommand[];
  /** Commands answered, by kind. */
  counts: Record<string, number>;
  stop(): Promise<void>;
}

export function ipv4ToInt(a: string): number {
  const p = a.split('.').map(Number);
  if (p.length !== 4 || p.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new Error(`not an IPv4 address: ${a}`);
  return ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** `count` loopback addresses from `base` on, skipping .0 and .255 and 127.0.0.1. */
export function loopbackAddresses(base: string, count: number): string[] {
  const out: string[] = [];
  let n = ipv4ToInt(base);
  while (out.length < count) {
    const a = intToIpv4(n);
    if (n >>> 24 !== 127) throw new Error(`ran out of 127.0.0.0/8 addresses after ${out.length}`);
    const last = n & 255;
    if (last !== 0 && last !== 255 && a !== '127.0.0.1') out.push(a);
    n++;
  }
  return out;
}

function checkAddress(a: string): void {
  if (!/^127\./.test(a)) throw new Error(`simulated hosts live on 127.0.0.0/8 only, not ${a}`);
  if (a === '127.0.0.1') throw new Error('127.0.0.1 is the relay\'s own box to PatchMan; give simulated hosts other 127.x.y.z addresses');
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The host's ed25519 keys, created on first use in `<stateDir>/hostkeys/`. */
function hostKeys(stateDir: string, name: string): { key: string; rotated: string } {
  const dir = join(stateDir, 'hostkeys');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const load = (file: string): string => {
    const path = join(dir, file);
    if (existsSync(path)) return readFileSync(path, 'utf8');
    const key = generateEd25519(`root@${name}`);
    writeFileSync(path, key, { mode: 0o600 });
    return key;
  };
  return { key: load(`${name}_ed25519`), rotated: load(`${name}_ed25519.rotated`) };
}

/** A stable per-host UUID-shaped boot id (changes only with the name). */
/** A Proxmox VE node's table: its guests answer through it, each a machine of its own. */
function withGuests(profile: ProfileName, name: string, table: CommandTable): CommandTable {
  const guests = (PROFILES[profile] as Profile).guests;
  if (!guests) return table;
  return new SimProxmoxNode(table, () => name, guests.specs, (g) =>
    commandTable(guests.profile as ProfileName, { hostname: g.name, bootId: bootIdFor(`${name}/${g.vmid}`), failure: () => null, noDocker: true }),
  );
}

function bootIdFor(name: string): string {
  const h = createHash('sha256').update('boot:' + name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const stateDir = resolve(opts.stateDir);
  const unknownCommands: UnknownCommand[] = [];
  const counts: Record<string, number> = Object.create(null);
  const defaultPort = opts.port ?? 0;
  const autoAddresses = loopbackAddresses(opts.baseAddress ?? '127.77.0.1', opts.hosts.length);
  const perProfile = new Map<string, number>();
  const names = new Set<string>();
  const hosts: SimHost[] = [];
  // one stand-in registry for the fleet's Docker hosts (their images' tags point at it)
  const registry = opts.hosts.some((h) => PROFILES[h.profile]?.probe.docker) ? new SimRegistry() : null;
  await registry?.start();
  const info: FleetHost[] = [];

  for (const [i, spec] of opts.hosts.entries()) {
    if (!PROFILES[spec.profile]) throw new Error(`unknown profile ${JSON.stringify(spec.profile)} (have ${PROFILE_NAMES.join(', ')})`);
    let name = spec.name;
    if (name === undefined) {
      const n = (perProfile.get(spec.profile) ?? 0) + 1;
      perProfile.set(spec.profile, n);
      name = `${spec.profile}-${n}`;
    }
    if (!SAFE_NAME.test(name)) throw new Error(`host name ${JSON.stringify(name)} must be letters, digits, _ . - (at most 63)`);
    if (names.has(name)) throw new Error(`duplicate host name ${name}`);
    names.add(name);
    const address = spec.address ?? autoAddresses[i];
    checkAddress(address);
    const keys = hostKeys(stateDir, name);
    const profile = PROFILES[spec.profile];
    const host: SimHost = new SimHost({
      name,
      address,
      port: spec.port ?? defaultPort,
      hostKey: keys.key,
      rotatedHostKey: keys.rotated,
      authorizedKeys: opts.authorizedKeys,
      table: withGuests(spec.profile, name, commandTable(spec.profile, { hostname: name, bootId: bootIdFor(name), failure: (): FailureMode | null => host.failure }, undefined, registry ?? undefined)),
      failure: spec.failure ?? null,
      latency: spec.latency ?? opts.latency,
      ident: profile.sshIdent,
      onUnknownCommand: (u) => {
        if (unknownCommands.length < 1000) unknownCommands.push(u);
      },
      onExec: (_h, kind) => {
        counts[kind] = (counts[kind] ?? 0) + 1;
      },
    });
    hosts.push(host);
    info.push({
      name,
      address,
      port: 0,
      profile: spec.profile,
      failure: host.failure,
      hostKeyFingerprint: fingerprintOfBlob(publicKeyBlob(keys.key)),
    });
  }

  try {
    // Bind in batches: a thousand listens at once is fine, but errors are clearer this way.
    for (let i = 0; i < hosts.length; i += 100) await Promise.all(hosts.slice(i, i + 100).map((h) => h.start()));
  } catch (err) {
    await Promise.all(hosts.map((h) => h.stop()));
    await registry?.stop();
    throw err;
  }
  for (const [i, h] of hosts.entries()) info[i].port = h.port;

  const byName = new Map(hosts.map((h, i) => [h.name, { host: h, info: info[i] }]));
  return {
    hosts: info,
    unknownCommands,
    counts,
    async setFailure(name, mode) {
      const entry = byName.get(name);
      if (!entry) throw new Error(`no simulated host named ${name}`);
      await entry.host.setFailure(mode);
      entry.info.failure = mode;
    },
    async stop() {
      await Promise.all(hosts.map((h) => h.stop()));
      await registry?.stop();
    },
  };
}

/** Hosts for `count` machines: every profile in turn, the first `offline` of them refusing
 * connections (an offline machine). */
export function mixedFleet(count: number, opts: { profiles?: ProfileName[]; offline?: number } = {}): HostSpec[] {
  const profiles = opts.profiles ?? PROFILE_NAMES;
  const specs: HostSpec[] = [];
  for (let i = 0; i < count; i++) specs.push({ profile: profiles[i % profiles.length] });
  for (let i = 0; i < Math.min(opts.offline ?? 0, count); i++) specs[count - 1 - i].failure = 'refuse';
  return specs;
}

// ---- CLI ----------------------------------------------------------------------------

const USAGE = `usage: node sim/fleet.ts [options]
  --count N              hosts to start, every profile in turn (default 12)
  --profiles a,b         only these profiles (${PROFILE_NAMES.join(', ')})
  --offline N            of those, N refuse connections (default 0)
  --authorized-key LINE  the relay's public key (repeatable)
  --authorized-keys FILE one key per line (default: .patchman/relay/id_ed25519.pub if present)
  --state DIR            host keys (default .patchman/sim)
  --base ADDRESS         first address (default 127.77.0.1)
  --port N               port for every host (default 0: a free one each)
  --latency MS           per command (default 0)
  --jitter MS            extra random 0..MS per command (default 0)
  --out FILE             also write the host list (JSON) to FILE
Prints the host list as JSON on stdout, then serves until SIGINT/SIGTERM.`;

async function cli(argv: string[]): Promise<void> {
  const args = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      return;
    }
    if (!a.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${a}\n${USAGE}`);
    args.set(a.slice(2), [...(args.get(a.slice(2)) ?? []), argv[++i]]);
  }
  const one = (k: string): string | undefined => args.get(k)?.at(-1);
  const num = (k: string, d: number): number => {
    const s = one(k);
    if (s === undefined) return d;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} must be a whole number`);
    return n;
  };
  const root = resolve(import.meta.dirname, '..');
  const keys = [...(args.get('authorized-key') ?? [])];
  const keyFiles = args.get('authorized-keys') ?? (keys.length === 0 ? [join(root, '.patchman', 'relay', 'id_ed25519.pub')] : []);
  for (const f of keyFiles) {
    if (!existsSync(f)) throw new Error(`no authorized keys: ${f} does not exist (pass --authorized-key "ssh-ed25519 …")`);
    keys.push(...readFileSync(f, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  }
  const profiles = one('profiles')?.split(',') as ProfileName[] | undefined;
  for (const p of profiles ?? []) if (!PROFILES[p]) throw new Error(`unknown profile ${p}`);
  const stateDir = one('state') ?? join(root, '.patchman', 'sim');
  const fleet = await startFleet({
    hosts: mixedFleet(num('count', 12), { profiles, offline: num('offline', 0) }),
    authorizedKeys: keys,
    stateDir,
    baseAddress: one('base'),
    port: num('port', 0),
    latency: { commandMs: num('latency', 0), jitterMs: num('jitter', 0) },
  });
  const json = JSON.stringify(fleet.hosts.map(({ name, address, port, profile, failure }) => ({ name, address, port, profile, failure })), null, 2);
  const out = one('out');
  if (out) writeFileSync(out, json + '\n');
  process.stdout.write(json + '\n');
  const stop = (): void => {
    fleet.stop().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 3000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // SIGUSR2: the commands run so far, by kind, into <state>/counts.json (bench:scan-all checks
  // that both sides of a comparison asked the fleet for the same work)
  process.on('SIGUSR2', () => writeFileSync(join(stateDir, 'counts.json'), JSON.stringify(fleet.counts) + '\n'));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((err) => {
    console.error(`sim/fleet: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
