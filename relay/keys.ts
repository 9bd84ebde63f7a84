// The relay's SSH identity: one ed25519 key pair, created on first start and kept in the
// relay's data dir. The private key never leaves this machine and is never logged; only the
// public key (for authorized_keys) and its fingerprint are shown anywhere.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';

export interface KeyPair {
  /** OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`). Secret. */
  privateKey: string;
  /** One line: `ssh-ed25519 AAAA… patchman-relay@host`. */
  publicKey: string;
  /** `SHA256:…` (base64, no padding), as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

export const PRIVATE_KEY_FILE = 'id_ed25519';
export const PUBLIC_KEY_FILE = 'id_ed25519.pub';

/** OpenSSH fingerprint of a public key blob (the wire-format key). */
export function fingerprintOfBlob(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await chmod(tmp, mode); // the umask may have narrowed or (for .pub) we want it exact
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function derive(privateKey: string, source: string): KeyPair {
  const parsed = ssh2.utils.parseKey(privateKey);
  // Never include the key material in an error message.
  if (parsed instanceof Error || Array.isArray(parsed)) {
    throw new Error(`${source} is not a readable OpenSSH private key`);
  }
  if (parsed.type !== 'ssh-ed25519' || !parsed.isPrivateKey()) {
    throw new Error(`${source} is not an ed25519 private key (found ${parsed.type})`);
  }
  const blob = parsed.getPublicSSH();
  const comment = parsed.comment.replace(/[\r\n]/g, ' ').trim();
  const publicKey = `ssh-ed25519 ${blob.toString('base64')}${comment ? ' ' + comment : ''}`;
  return { privateKey, publicKey, fingerprint: fingerprintOfBlob(blob) };
}

/** A new ed25519 private key in OpenSSH format, checked before use. ssh2 1.17's keygen strips
 * leading zero bytes from the public key, so about 1 key in 256 comes out malformed (neither
 * ssh2 nor ssh-keygen can read it; mscdex/ssh2#1390, #1513): such keys are thrown away. */
export function generateEd25519(comment: string): string {
  for (let attempt = 0; attempt < 16; attempt++) {
    const generated = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    const parsed = ssh2.utils.parseKey(generated.private);
    if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey()) continue;
    const blob = parsed.getPublicSSH();
    // 4 + "ssh-ed25519" (11) + 4 + 32-byte key, and the same key ssh2 printed as public.
    if (blob.length !== 51 || generated.public.split(' ')[1] !== blob.toString('base64')) continue;
    const probe = Buffer.from('patchman key check');
    if (!parsed.verify(probe, parsed.sign(probe))) continue;
    return generated.private;
  }
  throw new Error('could not generate a valid ed25519 key pair');
}

/** Load the relay's key pair from `dataDir`, creating it (and the dir, 0700) on first use. */
export async function loadOrCreateKeyPair(dataDir: string): Promise<KeyPair> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const privPath = join(dataDir, PRIVATE_KEY_FILE);
  const pubPath = join(dataDir, PUBLIC_KEY_FILE);

  let privateKey: string;
  try {
    privateKey = await readFile(privPath, 'utf8');
    // Someone loosened the permissions: put them back rather than run with a readable key.
    const st = await stat(privPath);
    if ((st.mode & 0o077) !== 0) await chmod(privPath, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const host = hostname().replace(/\s+/g, '-') || 'localhost';
    privateKey = generateEd25519(`patchman-relay@${host}`);
    await writeAtomic(privPath, privateKey, 0o600);
  }

  const pair = derive(privateKey, privPath);

  // The .pub file is a convenience copy for the operator; keep it in step with the private key.
  let pubOnDisk: string | undefined;
  try {
    pubOnDisk = await readFile(pubPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pubOnDisk?.trim() !== pair.publicKey) await writeAtomic(pubPath, pair.publicKey + '\n', 0o644);

  return pair;
}
