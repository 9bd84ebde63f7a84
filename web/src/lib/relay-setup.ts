// What to run on the LAN box to start a relay with a new token (README, "Deploy"). The token
// is base64url and the origin a URL, so single quotes need no escaping here; anything else
// is replaced by a placeholder rather than put into a command line shown for copying.

const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;
const SAFE_ORIGIN = /^https?:\/\/[A-Za-z0-9.:[\]-]+$/;

function safe(origin: string, token: string): [string, string] {
  return [SAFE_ORIGIN.test(origin) ? origin : 'https://patchman.example.com', SAFE_TOKEN.test(token) ? token : 'pmr_…'];
}

/** Once per machine, as root: the relay bundle, its systemd unit and a private env file. */
export const RELAY_INSTALL = [
  'npm run build:relay    # on any machine with the repo: relay/dist/patchman-relay.cjs',
  'install -D -m 0755 relay/dist/patchman-relay.cjs /opt/patchman/patchman-relay.cjs',
  'install -D -m 0644 relay/deploy/patchman-relay.service /etc/systemd/system/patchman-relay.service',
  'install -m 0600 /dev/null /etc/patchman-relay.env && systemctl daemon-reload',
].join('\n');

/** As root on the relay's machine: its settings, then start it now and at every boot. */
export function relayServiceCommand(...args: [origin: string, token: string]): string {
  const [origin, token] = safe(...args);
  return `printf 'PATCHMAN_URL=${origin}\\nPATCHMAN_RELAY_TOKEN=${token}\\n' > /etc/patchman-relay.env && systemctl enable --now patchman-relay`;
}

/** A one-off run in the foreground (trying it out): stops with the shell. */
export function relayOneOffCommand(...args: [origin: string, token: string]): string {
  const [origin, token] = safe(...args);
  return `PATCHMAN_URL=${origin} PATCHMAN_RELAY_TOKEN=${token} node patchman-relay.cjs`;
}
