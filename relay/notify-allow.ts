// Where this relay may deliver notifications: PATCHMAN_NOTIFY_ALLOW, a comma-separated list
// of host:port (e.g. `ntfy.lan:80,192.168.1.5:8080,mail.lan:587`). Nothing else: the relay
// must never become an HTTP proxy the cloud can point anywhere on the LAN.
import { isHostAddress } from '../protocol/fields.ts';

export interface NotifyAllowlist {
  allows(host: string, port: number): boolean;
  /** For the relay's log: what is allowed. */
  describe(): string;
}

const norm = (host: string) => host.replace(/^\[|\]$/g, '').toLowerCase();

/** Parse the setting; throws with the offending entry. */
export function parseNotifyAllow(value: string): NotifyAllowlist {
  const entries = new Set<string>();
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(raw);
    const host = m ? norm(m[1]) : '';
    const port = m ? Number(m[2]) : 0;
    if (!m || !isHostAddress(host) || port < 1 || port > 65535) throw new Error(`"${raw}" is not host:port`);
    entries.add(`${host}|${port}`);
  }
  return {
    allows: (host, port) => entries.has(`${norm(host)}|${port}`),
    describe: () => (entries.size ? [...entries].map((e) => e.replace('|', ':')).join(', ') : 'nothing'),
  };
}
