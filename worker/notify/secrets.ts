// Channel secrets at rest: AES-256-GCM with a key derived from the NOTIFY_KEY Worker secret
// (`wrangler secret put NOTIFY_KEY`; `npm start` makes a local one). Only the Worker can read
// them back, to send a message; the API never returns them.
import { ApiError } from '../lib/http.ts';

const VERSION = 'v1';

const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
const unb64url = (s: string) => Uint8Array.from(atob(s.replaceAll('-', '+').replaceAll('_', '/')), (c) => c.charCodeAt(0));

async function keyFrom(secret: string | undefined): Promise<CryptoKey> {
  if (!secret || secret.length < 16) {
    throw new ApiError(503, 'notify-key-missing', 'channel secrets cannot be stored: set the NOTIFY_KEY Worker secret (at least 16 characters) with `wrangler secret put NOTIFY_KEY`');
  }
  const raw = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(secret));
  return crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
}

export async function encryptSecrets(keySecret: string | undefined, values: Record<string, string>): Promise<string> {
  const key = await keyFrom(keySecret);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, new TextEncoder().encode(JSON.stringify(values))));
  return `${VERSION}.${b64url(iv)}.${b64url(data)}`;
}

export async function decryptSecrets(keySecret: string | undefined, stored: string | null): Promise<Record<string, string>> {
  if (!stored) return {};
  const [version, iv, data] = stored.split('.');
  if (version !== VERSION || !iv || !data) throw new Error('stored channel secrets are in an unknown format');
  const key = await keyFrom(keySecret);
  try {
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64url(iv) }, key, unb64url(data));
    return JSON.parse(new TextDecoder().decode(plain)) as Record<string, string>;
  } catch {
    throw new Error('channel secrets cannot be decrypted: was NOTIFY_KEY changed? Enter the secrets again');
  }
}
