/** Random URL-safe token with 256 bits of entropy. */
export function randomToken(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let b64 = btoa(String.fromCharCode(...bytes));
  b64 = b64.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
  return `${prefix}_${b64}`;
}

/** SHA-256 hex. Tokens are 256-bit random, so a fast hash is enough to store them safely. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export const newId = () => crypto.randomUUID();
