// Field validators shared by the API and the relay. Anything that ends up in an SSH
// connection or a command on a managed host passes through one of these allowlists first.
import * as v from 'valibot';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-f:]+(%[a-z0-9_.-]+)?$/i;

/** RFC 1123 host name, IPv4 address, or IPv6 address (no brackets). */
export function isHostAddress(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  if (IPV4.test(s)) return true;
  if (s.includes(':')) return IPV6.test(s) && s.split(':').length >= 3 && s.split(':').length <= 8 + 1;
  // all-numeric dotted names that are not a valid IPv4 (e.g. 300.1.1.1) are refused
  if (/^[\d.]+$/.test(s)) return false;
  return s.split('.').every((label) => LABEL.test(label));
}

export const HostAddress = v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.check(isHostAddress, 'must be an RFC 1123 host name or an IP address'),
);

export const Port = v.pipe(
  v.number('must be a number'),
  v.integer('must be a whole number'),
  v.minValue(1, 'must be between 1 and 65535'),
  v.maxValue(65535, 'must be between 1 and 65535'),
);

/** POSIX portable user names (what useradd accepts by default), at most 32 characters. */
export const PosixUser = v.pipe(
  v.string('must be a string'),
  v.regex(/^[a-z_][a-z0-9_-]{0,30}[a-z0-9_$-]?$/, 'must be a POSIX user name (lower case letters, digits, _ and -)'),
);

/** A human label: printable, no control characters, 1–64 characters. */
export const Label = v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.minLength(1, 'must not be empty'),
  v.maxLength(64, 'must be at most 64 characters'),
  v.regex(/^[^\p{C}]+$/u, 'must not contain control characters'),
);

export const Tag = v.pipe(
  v.string('must be a string'),
  v.regex(/^[a-z0-9][a-z0-9_.-]{0,31}$/i, 'tags are letters, digits, _ . - (at most 32)'),
);

export const Id = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an id'));

/**
 * A package name as apt, dpkg and pacman spell them, with an optional `:arch` (apt). The
 * allowlist is what keeps a name from becoming an option or a shell word: it must start with
 * a letter or digit (never `-`), and may hold only letters, digits and `+ . _ @ -` — no
 * spaces, `=`, `/`, quotes or shell metacharacters. Checked at the API and again at the relay.
 */
export const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._@-]{0,127}(?::[a-z0-9][a-z0-9-]{0,31})?$/;

export const PackageName = v.pipe(
  v.string('must be a string'),
  v.regex(PACKAGE_NAME, 'must be a package name (letters, digits and + . _ @ -, not starting with -)'),
);

/** `Idempotency-Key` header: a retried or double-clicked request returns the first job. */
export const IdempotencyKey = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.:-]{8,128}$/, 'must be 8–128 letters, digits or _ . : -'));

/** A Compose project name as Compose itself allows it (lower case, digits, `_` and `-`). */
export const StackName = v.pipe(v.string('must be a string'), v.regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a Compose project name (a-z, 0-9, _ and -)'));

/** A Compose service name. */
export const ServiceName = v.pipe(v.string('must be a string'), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'must be a service name (letters, digits, _ . -)'));
