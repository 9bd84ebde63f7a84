// Trust-on-first-use host key pinning. The first key a host presents is pinned; from then
// on a different key is refused until an admin accepts the new fingerprint. Backed by
// `<dataDir>/known_hosts.json`, rewritten atomically (temp file + rename) on every change.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprintOfBlob } from './keys.ts';

export interface HostPin {
  keyType: string;
  /** `SHA256:…` */
  fingerprint: string;
  /** ISO 8601 */
  firstSeenAt: string;
}

export type HostKeyCheck = { ok: true; pinnedNow: boolean } | { ok: false; expected: string; got: string };

export const KNOWN_HOSTS_FILE = 'known_hosts.json';

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** `[address]:port`, the key the store uses (addresses compared case-insensitively). */
export function hostKeyId(address: string, port: number): string {
  return `[${address.trim().toLowerCase()}]:${port}`;
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, …). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return 'unknown';
  const type = blob.toString('latin1', 4, 4 + len);
  return /^[\x21-\x7e]+$/.test(type) ? type : 'unknown';
}

function isPin(x: unknown): x is HostPin {
  if (typeof x !== 'object' || x === null) return false;
  const p = x as Record<string, unknown>;
  return (
    typeof p.keyType === 'string' &&
    typeof p.fingerprint === 'string' &&
    FINGERPRINT.test(p.fingerprint) &&
    typeof p.firstSeenAt === 'string'
  );
}

export class KnownHosts {
  readonly path: string;
  #pins: Map<string, HostPin>;
  #now: () => Date;

  private constructor(path: string, pins: Map<string, HostPin>, now: () => Date) {
    this.path = path;
    this.#pins = pins;
    this.#now = now;
  }

  /** Load the store from `dataDir` (an absent file is an empty store). A file that cannot be
   * read as a pin map is an error: silently starting empty would re-trust every host. */
  static open(dataDir: string, opts: { now?: () => Date } = {}): KnownHosts {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, KNOWN_HOSTS_FILE);
    const pins = new Map<string, HostPin>();
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch {
        throw new Error(`${path} is not valid JSON; fix or remove it (removing it forgets every pinned host key)`);
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data)) {
        throw new Error(`${path} must hold an object of pinned host keys`);
      }
      for (const [id, pin] of Object.entries(data)) {
        if (!isPin(pin)) throw new Error(`${path}: entry ${JSON.stringify(id)} is not a valid host key pin`);
        pins.set(id, { keyType: pin.keyType, fingerprint: pin.fingerprint, firstSeenAt: pin.firstSeenAt });
      }
    }
    return new KnownHosts(path, pins, opts.now ?? (() => new Date()));
  }

  get(address: string, port: number): HostPin | undefined {
    const pin = this.#pins.get(hostKeyId(address, port));
    return pin && { ...pin };
  }

  /** Compare the key a host presented with its pin; pin it if the host is new. */
  check(address: string, port: number, keyBlob: Buffer): HostKeyCheck {
    const id = hostKeyId(address, port);
    const got = fingerprintOfBlob(keyBlob);
    const pin = this.#pins.get(id);
    if (pin) {
      return pin.fingerprint === got ? { ok: true, pinnedNow: false } : { ok: false, expected: pin.fingerprint, got };
    }
    this.#pins.set(id, { keyType: keyTypeOfBlob(keyBlob), fingerprint: got, firstSeenAt: this.#now().toISOString() });
    this.#save();
    return { ok: true, pinnedNow: true };
  }

  /** Replace a host's pin with `fingerprint` (the admin accepted a new host key). */
  accept(address: string, port: number, fingerprint: string, keyType?: string): void {
    if (!FINGERPRINT.test(fingerprint)) throw new Error('fingerprint must look like SHA256:<43 base64 characters>');
    const id = hostKeyId(address, port);
    const previous = this.#pins.get(id);
    this.#pins.set(id, {
      keyType: keyType ?? previous?.keyType ?? 'unknown',
      fingerprint,
      firstSeenAt: this.#now().toISOString(),
    });
    this.#save();
  }

  /** Forget a host's pin (its next key is trusted on first use again). */
  forget(address: string, port: number): boolean {
    const removed = this.#pins.delete(hostKeyId(address, port));
    if (removed) this.#save();
    return removed;
  }

  #save(): void {
    const data: Record<string, HostPin> = {};
    for (const [id, pin] of [...this.#pins].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) data[id] = pin;
    const tmp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
      renameSync(tmp, this.path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
  }
}
