// What to run on the LAN box to install a relay and start it with a new token (README,
// "Deploy"): the one copy of these commands, for the wizard, the Pair a relay dialog and
// Settings → Relays. The token is base64url and the origin a URL, so single quotes need no
// escaping here; anything else is replaced by a placeholder rather than put into a command
// line shown for copying.

const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;
const SAFE_ORIGIN = /^https?:\/\/[A-Za-z0-9.:[\]-]+$/;

function safe(origin: string, token: string): [string, string] {
  return [SAFE_ORIGIN.test(origin) ? origin : 'https://patchman.example.com', SAFE_TOKEN.test(token) ? token : 'pmr_…'];
}

/** Once per machine, as root, next to relay/dist and relay/deploy: the relay bundle, its
 * systemd unit (enabled at boot) and a private env file. */
export const RELAY_INSTALL = [
  'install -D -m 0755 relay/dist/patchman-relay.cjs /opt/patchman/patchman-relay.cjs',
  'install -D -m 0644 relay/deploy/patchman-relay.service /etc/systemd/system/patchman-relay.service',
  'install -m 0600 /dev/null /etc/patchman-relay.env',
  'systemctl daemon-reload && systemctl enable patchman-relay',
].join('\n');

/** The same in a checkout of PatchMan: build the bundle first. */
export const RELAY_BUILD_AND_INSTALL = `npm run build:relay    # on any machine with the repo: relay/dist/patchman-relay.cjs\n${RELAY_INSTALL}`;

/** As root on the relay's machine: write its settings, then start it now and at every boot
 * (`enable --now`), or restart it so that it takes a new token (`restart`). */
export function relayServiceCommand(origin: string, token: string, systemctl: 'enable --now' | 'restart' = 'enable --now'): string {
  const [url, secret] = safe(origin, token);
  return `printf 'PATCHMAN_URL=${url}\\nPATCHMAN_RELAY_TOKEN=${secret}\\n' > /etc/patchman-relay.env && systemctl ${systemctl} patchman-relay`;
}

/** A one-off run in the foreground (trying it out): stops with the shell. */
export function relayOneOffCommand(...args: [origin: string, token: string]): string {
  const [origin, token] = safe(...args);
  return `PATCHMAN_URL=${origin} PATCHMAN_RELAY_TOKEN=${token} node patchman-relay.cjs`;
}
