// The Help & FAQ page: its text, and the live search over it (matching and highlighting).
//
// Text fields take three bits of inline markup: `code`, **bold** and [a link](https://…).
// Everything else is plain text; nothing here is ever rendered as HTML.
import { sudoersLines, SUDO_COMMANDS, SUDO_ENV_KEEP } from '$protocol/setup.ts';
import { PACKAGE_MANAGERS, PACKAGE_MANAGER_NAMES, TUMBLEWEED_FULL_ONLY } from '$protocol/package-managers.ts';

/** The package managers as the operator knows them (yum is dnf under its old name). */
const MANAGERS = PACKAGE_MANAGER_NAMES.filter((n) => n !== 'yum').map((n) => PACKAGE_MANAGERS[n]);

export type HelpBlock =
  | { type: 'p'; text: string }
  | { type: 'list'; items: string[]; ordered?: boolean }
  | { type: 'code'; code: string; label?: string }
  | { type: 'note'; text: string };

export interface HelpQuestion {
  id: string;
  q: string;
  blocks: HelpBlock[];
}

export interface HelpSection {
  id: string;
  title: string;
  /** One line under the title. */
  summary: string;
  /** Said before the questions. */
  intro: HelpBlock[];
  questions: HelpQuestion[];
}

const SUDO_USER = 'patchman';

export const HELP_SECTIONS: HelpSection[] = [
  {
    id: 'patches',
    title: 'Patches',
    summary: 'How upgrades run, what they change, and how a job ends.',
    intro: [
      {
        type: 'p',
        text: 'An upgrade only runs when someone with the **operator** or **admin** role presses **Upgrade** (one host) or **Patch selected** (several hosts) and confirms. The confirmation lists what will change on which host before anything runs. PatchMan scans on a schedule, but it never upgrades on one unless an admin sets up a **policy** (see Policies).',
      },
    ],
    questions: [
      {
        id: 'upgrade-detached',
        q: 'How does an upgrade run on the host?',
        blocks: [
          {
            type: 'p',
            text: 'The relay starts the package manager **detached** on the host (with `setsid`), writing its output to a log file and its exit status to a file in `~/.cache/patchman/runs/` of the SSH user. The relay then follows that log and streams it to your browser.',
          },
          {
            type: 'p',
            text: 'Because the run does not belong to the SSH connection, a dropped connection, a restarted relay or a redeployed Worker never kills `dpkg` halfway: the relay re-attaches to the run and reads the rest of the log.',
          },
          {
            type: 'list',
            items: [
              'Commands are non-interactive: `LC_ALL=C DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a`, `--force-confdef --force-confold` (changed config files keep your version), `sudo -n` (never a password prompt).',
              'One change (upgrade, reboot or stack update) per host at a time; a second one is refused until the first has finished.',
              'After every upgrade the host is scanned again, so its page shows what is still pending and whether it needs a reboot.',
            ],
          },
        ],
      },
      {
        id: 'full-or-selected',
        q: 'Full upgrade or selected packages?',
        blocks: [
          {
            type: 'p',
            text: 'On a host page you can upgrade everything, or tick single packages and upgrade only those. Picking packages works on **apt hosts that are not Proxmox** (Debian, Ubuntu and derivatives), **dnf hosts** and **zypper hosts that are not Tumbleweed**; elsewhere the host page says why instead of showing checkboxes. A full upgrade may also install new dependencies or remove packages that block the upgrade, exactly as the scan showed.',
          },
          {
            type: 'list',
            items: MANAGERS.map(
              (d) =>
                `**${d.label}** (${d.systems}): full upgrade \`${d.command.full}\`; ${d.selective.ok ? `selected packages: ${d.command.selected}` : 'whole system only'}${d.securityMetadata ? '' : '; its repositories carry no security metadata, so no update counts as a security update'}.`,
            ),
          },
          {
            type: 'p',
            text: '**Patch selected** on the dashboard always runs full upgrades, one job per host.',
          },
        ],
      },
      {
        id: 'pacman',
        q: 'Why can I not pick packages on Arch or CachyOS?',
        blocks: [
          {
            type: 'p',
            text: 'Arch does not support partial upgrades: upgrading one package against newer repositories than the rest of the system can break it. PatchMan therefore upgrades pacman hosts only as a whole, with `pacman -Syu --noconfirm`. Scans never touch the real sync databases either: they use `checkupdates` (from pacman-contrib), which works on a private copy.',
          },
          { type: 'note', text: 'pacman repositories carry no security metadata, so Arch updates are never counted as security updates.' },
        ],
      },
      {
        id: 'tumbleweed-alpine',
        q: 'Why can I not pick packages on openSUSE Tumbleweed or Alpine?',
        blocks: [
          { type: 'p', text: TUMBLEWEED_FULL_ONLY },
          { type: 'p', text: PACKAGE_MANAGERS.apk.selective.ok ? '' : PACKAGE_MANAGERS.apk.selective.why },
        ],
      },
      {
        id: 'proxmox',
        q: 'How are Proxmox VE and Backup Server upgraded?',
        blocks: [
          {
            type: 'p',
            text: 'Always with a full upgrade (`apt-get dist-upgrade`, the same as `apt full-upgrade`), never package by package: Proxmox documents partial upgrades as unsupported. A request for single packages on a Proxmox host is refused with `full-upgrade-only`.',
          },
          {
            type: 'p',
            text: 'Proxmox hosts are usually managed as root, which is how Proxmox is administered. Rebooting a Proxmox VE node takes its virtual machines and containers down with it unless you migrate them first.',
          },
        ],
      },
      {
        id: 'job-status',
        q: 'What do “failed” and “lost” mean?',
        blocks: [
          {
            type: 'list',
            items: [
              '**succeeded**: the package manager exited with status 0; the job lists what changed (installed versions before and after).',
              '**failed**: the job ran and ended with an error, or was refused before changing anything (sudo wanted a password, another apt held the dpkg lock, an earlier dpkg run was interrupted, the host was unreachable). The job says why in plain words; the log and the exit code have the details. A job that waited more than an hour in the queue because its relay stayed offline also fails.',
              '**lost**: the outcome can no longer be known, for example because the relay never reported back before the job’s deadline. PatchMan never guesses “succeeded”: the upgrade may have run, completely or in part. **Rescan the host** to see what is installed and pending now.',
            ],
          },
        ],
      },
      {
        id: 'job-log',
        q: 'Where is the log of an upgrade?',
        blocks: [
          {
            type: 'p',
            text: 'Output streams to the host page and the patch banner while the job runs. Afterwards every job is kept in **History** with who asked, when, how long it took, the exit status, what changed and the full log. Logs are capped at 2 MiB with a visible marker; the last 16 KiB are always kept as well, so the end of a long log is never lost.',
          },
          {
            type: 'p',
            text: 'On the host itself the log of each run stays in `~/.cache/patchman/runs/<job id>.log` of the SSH user. Finished jobs are deleted from History after the retention period in Settings (30 days unless changed).',
          },
        ],
      },
      {
        id: 'monitor-only',
        q: 'What is a monitor-only host?',
        blocks: [
          {
            type: 'p',
            text: 'A host PatchMan scans but never changes: no upgrade, no reboot. It is checked twice, by the Worker and again by the relay. The relay’s own machine is monitor-only by default (`PATCHMAN_MONITOR_ONLY=self`), so a relay never patches or reboots the box it runs on. Turn it off in **Edit host** to patch a host from here.',
          },
        ],
      },
    ],
  },
  {
    id: 'reboots',
    title: 'Reboots',
    summary: 'Never automatic; PatchMan waits for the host to come back.',
    intro: [
      {
        type: 'p',
        text: 'PatchMan **never reboots a host on its own**, not even after an upgrade that needs one. It shows which hosts need a reboot and why; an operator presses **Reboot** and confirms.',
      },
    ],
    questions: [
      {
        id: 'reboot-needed',
        q: 'How does PatchMan know a host needs a reboot?',
        blocks: [
          {
            type: 'list',
            items: [
              'apt hosts: `/run/reboot-required` exists (the packages that asked for it are listed from `/run/reboot-required.pkgs`), or the running kernel is older than the newest one installed.',
              'pacman hosts: the running kernel’s modules directory `/usr/lib/modules/$(uname -r)` is gone, because the kernel package was upgraded.',
              ...MANAGERS.filter((d) => d.name !== 'apt' && d.name !== 'pacman').map((d) => `${d.label} hosts: ${d.reboot}`),
            ],
          },
        ],
      },
      {
        id: 'reboot-steps',
        q: 'What happens when I reboot a host?',
        blocks: [
          {
            type: 'list',
            ordered: true,
            items: [
              'The relay reads the host’s **boot id** (`/proc/sys/kernel/random/boot_id`), which changes with every boot.',
              'It runs `reboot` (through `sudo -n` unless it logs in as root).',
              'It tries SSH every few seconds until the host answers with a **different** boot id, and records how long the host was down (“back after 74 s”) and the kernel it came back with.',
              'The host is scanned again.',
            ],
          },
          {
            type: 'p',
            text: 'If the relay restarts while it waits, the job is resumed: a resumed reboot only waits for the host, it never reboots it a second time.',
          },
        ],
      },
      {
        id: 'reboot-timeout',
        q: 'How long may a host be down?',
        blocks: [
          {
            type: 'p',
            text: 'PatchMan waits up to **15 minutes** for the host to come back. Most servers are back within one or two; firmware checks, a long `fsck` or a large RAID controller can take longer.',
          },
        ],
      },
      {
        id: 'reboot-not-back',
        q: 'A host did not come back. What now?',
        blocks: [
          {
            type: 'p',
            text: 'After 15 minutes the job fails with `host-down` and says which of two things happened:',
          },
          {
            type: 'list',
            items: [
              '**It went down and did not come back**: look at its console (IPMI, the hypervisor, the screen). It may be stuck in the firmware, a disk check or a boot failure, or it booted without network.',
              '**It never went down** (same boot id): something blocked the reboot, such as a systemd inhibitor, or the command was not allowed.',
            ],
          },
          { type: 'p', text: 'Once the host is up again, press **Scan** on its page: the scan shows the running kernel and whether a reboot is still needed.' },
        ],
      },
    ],
  },
  {
    id: 'docker',
    title: 'Docker',
    summary: 'Docker Compose stacks: checking their images, updating them.',
    intro: [
      {
        type: 'p',
        text: 'When a scan finds Docker on a host, PatchMan also lists its Docker Compose stacks and checks their images. They are on the **Stacks** page: each stack with its host, its containers, and how many have a newer image.',
      },
    ],
    questions: [
      {
        id: 'docker-check',
        q: 'How does PatchMan check stacks for newer images?',
        blocks: [
          {
            type: 'p',
            text: 'The relay lists the Compose stacks on the host and their containers, then asks each image’s registry for the digest its tag points to now and compares it with the digest of the image the container runs. The check **pulls nothing and changes nothing**. It runs after every scan of a Docker host, and for one stack when you press **Check now**.',
          },
          {
            type: 'list',
            items: [
              '**Newer image available**: the tag now points to a different image than the one running.',
              '**Cannot be checked**: an image pinned by digest (it never changes under its tag), built locally, or without a registry digest. The reason is shown beside the container.',
              '**Check failed**: the registry did not answer or refused (rate limits, authentication). The next check tries again.',
            ],
          },
        ],
      },
      {
        id: 'docker-update',
        q: 'How is a stack updated?',
        blocks: [
          {
            type: 'p',
            text: 'Only when an operator asks, one stack at a time, after a confirmation that lists the containers getting newer images. In the stack’s directory, with its compose files, the relay runs `docker compose pull`, then `docker compose up -d` (for the whole stack, or only the services you chose). Compose recreates only the containers whose image changed; the others keep running. The output streams live like an upgrade, and the stack is checked again afterwards.',
          },
          {
            type: 'p',
            text: 'A stack update counts as a change of its host: one change per host at a time (an upgrade, a reboot or a stack update), and monitor-only hosts refuse it. Every update is in **History** with its log.',
          },
        ],
      },
      {
        id: 'docker-reboot',
        q: 'What happens to containers when a Docker host reboots?',
        blocks: [
          {
            type: 'p',
            text: 'They stop with the host and come back only if their restart policy says so (`restart: unless-stopped` or `always` in the compose file). Check that before you reboot a host that runs services.',
          },
        ],
      },
    ],
  },
  {
    id: 'policies',
    title: 'Policies',
    summary: 'Scheduled, staged rollouts: canary first, then batches, stopping when something fails.',
    intro: [
      {
        type: 'p',
        text: 'A **policy** (the **Policies** page; admins edit, operators run) patches a group of hosts by itself: which hosts (tags, package managers, relays or named hosts), which updates (security only or everything, include and exclude globs, a cooldown in days), when (a cron expression in your time zone, with a window after which no host starts) and how (a canary first, then batches, at most so many at once, halting after so many failures).',
      },
    ],
    questions: [
      {
        id: 'policy-preview',
        q: 'How do I know what a policy will do?',
        blocks: [
          {
            type: 'p',
            text: '**Preview** lists, host by host, exactly which packages would be installed now (current and new version, security or not), which hosts are skipped and why (monitor-only, a changed SSH host key, a failed or old scan, a package manager that cannot do what the policy asks), and whether a reboot is expected. A rollout plans each host again just before it starts it.',
          },
        ],
      },
      {
        id: 'policy-rollout',
        q: 'What happens during a rollout?',
        blocks: [
          {
            type: 'list',
            items: [
              'The canary hosts are upgraded first; the batches follow only when every host before them has finished, been rescanned and is back online.',
              'Each host step is an ordinary upgrade in **History**, requested by `policy <name>`, with its full log.',
              'When as many hosts as the policy allows have failed, the rollout **halts**: no further host starts.',
              '**Pause** holds new hosts back, **Cancel** starts none (upgrades under way finish and are reported). When the window closes, hosts not started yet are left alone.',
              'Nothing reboots unless the policy says **Reboot hosts that need it**: then they reboot one at a time, within the window.',
            ],
          },
        ],
      },
      {
        id: 'policy-pacman',
        q: 'Why are my Arch (pacman) or Proxmox hosts skipped?',
        blocks: [
          {
            type: 'p',
            text: 'A policy that picks packages (security only, globs or a cooldown) upgrades named packages. Arch does not support partial upgrades and Proxmox documents them as unsupported, so such hosts are skipped with that reason, never fully upgraded instead. A policy for **everything** with no globs and no cooldown upgrades them as a whole.',
          },
        ],
      },
    ],
  },
  {
    id: 'ssh-sudo',
    title: 'SSH and sudo setup',
    summary: 'What a host needs: a key in authorized_keys and sudo for the package tools.',
    intro: [
      {
        type: 'p',
        text: 'Nothing is installed on the managed hosts. Each one needs a running `sshd`, a user that accepts the relay’s SSH key, and either that user being root or passwordless sudo for the package tools only.',
      },
    ],
    questions: [
      {
        id: 'authorized-keys',
        q: 'How do I let the relay log in?',
        blocks: [
          {
            type: 'p',
            text: 'Copy the relay’s public key from **Settings → Relays** (or the Relays panel on the dashboard). Then, on the host, add it to `authorized_keys` of the user PatchMan logs in as (here `patchman`):',
          },
          {
            type: 'code',
            label: 'shell, as root on the host',
            code: `install -d -m 700 -o ${SUDO_USER} -g ${SUDO_USER} ~${SUDO_USER}/.ssh\necho 'ssh-ed25519 AAAA… patchman-relay@relaybox' >> ~${SUDO_USER}/.ssh/authorized_keys\nchown ${SUDO_USER}: ~${SUDO_USER}/.ssh/authorized_keys && chmod 600 ~${SUDO_USER}/.ssh/authorized_keys`,
          },
          {
            type: 'p',
            text: 'The **Add host** dialog shows the same commands with the real key and user filled in. `sshd` ignores keys in a `.ssh` folder that others can write to.',
          },
        ],
      },
      {
        id: 'sudoers',
        q: 'What sudo rights does a non-root user need?',
        blocks: [
          {
            type: 'p',
            text: `The package tools and reboot, without a password, and nothing else. Create \`/etc/sudoers.d/${SUDO_USER}\` as root with \`visudo -f /etc/sudoers.d/${SUDO_USER}\` (visudo checks the syntax before saving):`,
          },
          { type: 'code', label: `/etc/sudoers.d/${SUDO_USER}`, code: sudoersLines(SUDO_USER).trimEnd() },
          {
            type: 'p',
            text: `The first line keeps the environment the upgrade needs through sudo (\`${SUDO_ENV_KEEP.join(' ')}\`): the C locale so output can be parsed, and no prompts from debconf, needrestart or apt-listchanges. The second allows exactly ${SUDO_COMMANDS.length} binaries: ${SUDO_COMMANDS.map((c) => `\`${c}\``).join(', ')}.`,
          },
          {
            type: 'note',
            text: 'Name the file without a dot (`patchman`, not `patchman.conf`): sudo skips files in `/etc/sudoers.d` whose names contain a dot or end in `~`.',
          },
        ],
      },
      {
        id: 'root-or-sudo',
        q: 'Should PatchMan log in as root or as a sudo user?',
        blocks: [
          {
            type: 'list',
            items: [
              '**root** needs no sudo. `sshd` must allow key logins for root (`PermitRootLogin prohibit-password`, the default). Proxmox VE and Backup Server hosts are usually managed this way.',
              '**A dedicated user with sudo** keeps the relay’s key from being a full root login. Be aware that sudo for a package manager is close to root in practice (a package manager can install anything); the real limit is the relay itself, which only ever runs its own fixed commands, never a command string from the cloud.',
            ],
          },
        ],
      },
      {
        id: 'host-key-pinning',
        q: 'What is host key pinning?',
        blocks: [
          {
            type: 'p',
            text: 'The first time the relay connects to a host it remembers the host’s SSH key fingerprint (`SHA256:…`). Every later connection must present the same key. The pins live on the relay’s machine (in its data directory), never in the cloud.',
          },
        ],
      },
      {
        id: 'host-key-changed',
        q: '“Host key changed”: what do I do?',
        blocks: [
          {
            type: 'p',
            text: 'The host presented a different SSH key than the one pinned on first contact, so the relay refused to log in and the host is blocked. That is expected after a reinstall, a restored VM, a new machine on the same address or regenerated `sshd` keys; otherwise someone may be intercepting the connection.',
          },
          { type: 'p', text: 'Compare the offered fingerprint with the host’s own keys, on its console:' },
          { type: 'code', label: 'shell, on the host', code: 'for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$f"; done' },
          {
            type: 'p',
            text: 'If one matches, an admin accepts the new fingerprint (API: `POST /api/hosts/:id/accept-host-key` with `{"fingerprint": "SHA256:…"}`); the relay pins it and the host is scanned again. If none matches, find out why before going on.',
          },
        ],
      },
    ],
  },
  {
    id: 'relays',
    title: 'Firewalls and relays',
    summary: 'Outbound-only connections, one relay per network, tokens and rotation.',
    intro: [
      {
        type: 'p',
        text: 'A relay is a small Node.js daemon on one machine inside your network. It holds the SSH private key and the pinned host keys (the cloud never sees either), keeps one outbound WebSocket to PatchMan, and reaches your hosts over SSH.',
      },
    ],
    questions: [
      {
        id: 'ports',
        q: 'Which ports must be open?',
        blocks: [
          {
            type: 'list',
            items: [
              '**Relay → PatchMan**: outbound HTTPS (`wss://`, TCP 443) to the dashboard’s hostname. Nothing connects to the relay: no port forwarding, no inbound rule, no VPN.',
              '**Relay → hosts**: TCP 22 (or the SSH port you set per host) from the relay’s address to each host it manages.',
              '**Hosts**: nothing else. They need no outbound access to PatchMan, only their usual package mirrors.',
            ],
          },
        ],
      },
      {
        id: 'vlans',
        q: 'I have several VLANs or sites. How many relays?',
        blocks: [
          {
            type: 'p',
            text: 'One relay per VLAN or site whose hosts it can reach over SSH. If your firewall lets one machine reach port 22 everywhere, one relay is enough; if not, put a relay inside each network instead of opening SSH between networks. Each host is assigned the relay that reaches it (**Add host** / **Edit host**), and each relay works on a limited number of hosts at once (**Hosts at once, per relay** in Settings).',
          },
        ],
      },
      {
        id: 'relay-token',
        q: 'How does a relay authenticate?',
        blocks: [
          {
            type: 'p',
            text: 'With a bearer token (`pmr_…`) created by an admin in **Settings → Relays**. The token is shown **once**; PatchMan keeps only its SHA-256 hash. On the relay’s machine it goes into `/etc/patchman-relay.env` (mode 0600), next to the dashboard’s URL:',
          },
          {
            type: 'code',
            label: 'shell, as root on the relay’s machine',
            code: "printf 'PATCHMAN_URL=https://patchman.example.com\\nPATCHMAN_RELAY_TOKEN=pmr_…\\n' > /etc/patchman-relay.env && systemctl restart patchman-relay",
          },
          {
            type: 'p',
            text: 'Installing the relay on a new machine (its single-file bundle and systemd unit) is described in the README under “Deploy”. It creates its SSH key on first start and reconnects by itself after any drop.',
          },
        ],
      },
      {
        id: 'relay-rotate',
        q: 'How do I rotate or revoke a relay token?',
        blocks: [
          {
            type: 'list',
            items: [
              '**Rotate** (Settings → Relays) issues a new token, shown once. The old token stops working at once and the relay is disconnected until you write the new token to its env file and restart it. Its SSH key and pinned host keys stay as they are.',
              '**Revoke** closes the relay’s connection at once; its token never works again. Hosts assigned to it cannot be scanned or patched until you give them another relay.',
            ],
          },
          {
            type: 'p',
            text: 'While a relay is offline, its jobs wait in the queue and start when it reconnects; a job that waited more than an hour fails.',
          },
        ],
      },
    ],
  },
  {
    id: 'accounts',
    title: 'Accounts and security',
    summary: 'Roles, API tokens, Cloudflare Access, the setup secret and the audit log.',
    intro: [
      {
        type: 'p',
        text: 'Everyone signs in with a local account, or through Cloudflare Access when that mode is on. Every account has one role.',
      },
    ],
    questions: [
      {
        id: 'roles',
        q: 'What can each role do?',
        blocks: [
          {
            type: 'list',
            items: [
              '**Viewer**: sees every host, pending update, job and log. Changes nothing.',
              '**Operator**: a viewer who may also scan, test connections, upgrade and reboot hosts.',
              '**Admin**: everything, including adding and editing hosts, relays, settings, users, API tokens and reading the audit log.',
            ],
          },
          {
            type: 'p',
            text: 'PatchMan always keeps at least one enabled admin: the last one cannot be demoted, disabled or deleted.',
          },
        ],
      },
      {
        id: 'setup-secret',
        q: 'What is the setup secret?',
        blocks: [
          {
            type: 'p',
            text: 'The first-run wizard creates the first admin, only while no account exists. On `localhost` (`npm start`) it needs nothing else. On a deployed Worker it also asks for the setup secret, so that nobody who finds your new deployment first can claim it. Set it before you open the dashboard:',
          },
          { type: 'code', label: 'shell, in the repository', code: 'npx wrangler secret put SETUP_SECRET' },
        ],
      },
      {
        id: 'passwords-sessions',
        q: 'How are passwords and sessions handled?',
        blocks: [
          {
            type: 'list',
            items: [
              'Passwords have at least 12 characters and are stored as PBKDF2-SHA-256 hashes.',
              'A session lives in an HttpOnly, Secure, SameSite=Strict cookie. It ends after 12 hours without use, and after 7 days in any case. A new password or a disabled account ends all of that user’s sessions.',
              'After 5 failed sign-ins for one name from one address, that pair is locked for 30 seconds, doubling with each further failure up to 15 minutes.',
            ],
          },
        ],
      },
      {
        id: 'api-tokens',
        q: 'How do scripts use the API?',
        blocks: [
          {
            type: 'p',
            text: 'With an API token: an admin creates one in **Settings → API tokens** with a name and a role. The secret (`pmt_…`) is shown once; PatchMan keeps only its hash and shows when each token was last used. Send it as a bearer token:',
          },
          { type: 'code', label: 'shell', code: 'curl -H "Authorization: Bearer pmt_…" https://patchman.example.com/api/hosts' },
          { type: 'p', text: 'Revoking a token stops it at once. Give each script its own token with the lowest role it needs.' },
        ],
      },
      {
        id: 'cloudflare-access',
        q: 'What is Cloudflare Access mode?',
        blocks: [
          {
            type: 'p',
            text: 'Instead of passwords, PatchMan trusts [Cloudflare Access](https://developers.cloudflare.com/cloudflare-one/access-controls/applications/http-apps/authorization-cookie/validating-json/): every request must carry the `Cf-Access-Jwt-Assertion` that Access adds, which PatchMan verifies (signature, issuer, audience, expiry). The e-mail address in it must be the user name of an enabled PatchMan account, whose role applies.',
          },
          {
            type: 'list',
            ordered: true,
            items: [
              'In Cloudflare Zero Trust, create a self-hosted Access application that covers the **whole hostname** of PatchMan: once the mode is on, PatchMan refuses every request that did not come through Access.',
              'The relay cannot sign in to Access: give the path `/relay/connect` a **Bypass** policy (it is protected by the relay’s own token).',
              'In PatchMan, add users whose user name is their Access e-mail address (no password needed), at least one of them an admin.',
              'In **Settings → Cloudflare Access**, enter the team domain (`myteam.cloudflareaccess.com`) and the application’s Audience (AUD) tag, and turn it on.',
            ],
          },
          {
            type: 'p',
            text: 'While it is on, password sign-in is off and existing sessions are ignored. API tokens keep working, but Access must let those requests through (for example with an Access service token sent next to the bearer token).',
          },
        ],
      },
      {
        id: 'access-locked-out',
        q: 'I turned on Access mode and cannot get in.',
        blocks: [
          {
            type: 'p',
            text: 'Check that you reach PatchMan through the Access-protected hostname and that your Access e-mail is the user name of an enabled PatchMan admin. If you need to turn the mode off without the dashboard, change the setting in D1 directly:',
          },
          {
            type: 'code',
            label: 'shell, in the repository',
            code: `npx wrangler d1 execute DB --remote --command "UPDATE settings SET value = 'false' WHERE key = 'accessEnabled'"`,
          },
        ],
      },
      {
        id: 'audit-log',
        q: 'What is in the audit log?',
        blocks: [
          {
            type: 'p',
            text: 'Every request that tried to change something, whether it was allowed or refused, and every sign-in, including failed ones: when, who (and whether by password, API token or Cloudflare Access), what, on which object, the answer’s status and the client’s IP address. Request bodies are never recorded, so no password ends up there. Admins read it on the **Audit log** page.',
          },
        ],
      },
      {
        id: 'secrets',
        q: 'Which secrets does PatchMan keep?',
        blocks: [
          {
            type: 'list',
            items: [
              'Relay tokens and API tokens: only their SHA-256 hashes. Lost one? Rotate or create a new one.',
              'The SSH private key and the pinned host keys: only on the relay’s machine.',
              'Nothing secret is ever sent to the browser after it was first shown, or written to a log.',
            ],
          },
        ],
      },
    ],
  },
  {
    id: 'troubleshooting',
    title: 'Troubleshooting',
    summary: 'sudo prompts, dpkg locks, interrupted dpkg runs, unreachable hosts.',
    intro: [
      {
        type: 'p',
        text: 'A failed job or test says what went wrong in plain words. These are the common causes and what to do about them.',
      },
    ],
    questions: [
      {
        id: 'sudo-password',
        q: '“sudo asks for a password”',
        blocks: [
          {
            type: 'p',
            text: 'PatchMan runs the package manager with `sudo -n`, which fails instead of prompting. The user has no passwordless sudo for that command: add the sudoers file from **SSH and sudo setup**, or log in as root. To check, as that user on the host:',
          },
          { type: 'code', label: `shell, as ${SUDO_USER} on the host`, code: 'sudo -n -l /usr/bin/apt-get' },
          {
            type: 'p',
            text: 'It prints the path when the command is allowed, and an error otherwise. Common causes: a dot in the sudoers file name, a typo in the user name, or `sudo` not installed (`no sudo`).',
          },
        ],
      },
      {
        id: 'dpkg-lock',
        q: '“Another package manager run holds the dpkg lock”',
        blocks: [
          {
            type: 'p',
            text: 'Another apt or dpkg run was busy on the host, most often `unattended-upgrades` or the daily apt timer. apt waited 2 minutes for the lock and gave up; **nothing was changed**. Try again in a few minutes. The message names the process holding the lock; on the host, `ps -p <pid> -o pid,etime,cmd` shows what it is doing.',
          },
        ],
      },
      {
        id: 'dpkg-interrupted',
        q: '“dpkg was interrupted”',
        blocks: [
          {
            type: 'p',
            text: 'An earlier dpkg run stopped halfway (a crash, a power cut, someone pressing Ctrl-C), and apt refuses to go on until it is finished. On the host, as root:',
          },
          { type: 'code', label: 'shell, as root on the host', code: 'dpkg --configure -a' },
          { type: 'p', text: 'Then scan and upgrade again. PatchMan does not run this itself: it finishes whatever was interrupted, which deserves a look first.' },
        ],
      },
      {
        id: 'unreachable',
        q: 'A host is unreachable or offline',
        blocks: [
          { type: 'p', text: '**Test connection** (Add host / Edit host) tells which step failed:' },
          {
            type: 'list',
            items: [
              '**Cannot reach … on port 22**: nothing accepted the connection. Check the address and SSH port, that `sshd` runs, and that a firewall lets the relay’s machine in.',
              '**Did not answer in time**: the host is down or asleep, or a firewall silently drops the relay’s packets.',
              '**The host refused the relay’s SSH key**: the key is not in that user’s `authorized_keys`, or the `.ssh` folder is writable by others, or root logins are not allowed.',
              '**The relay is not connected**: the relay itself is offline; on its machine, `systemctl status patchman-relay` and `journalctl -u patchman-relay` say why.',
            ],
          },
          { type: 'p', text: 'To try the same path by hand, from the relay’s machine:' },
          { type: 'code', label: 'shell, on the relay’s machine', code: 'nc -vz 10.0.1.20 22' },
        ],
      },
      {
        id: 'job-queued',
        q: 'A job stays “queued”',
        blocks: [
          {
            type: 'p',
            text: 'Its relay is offline. Queued jobs are sent to the relay as soon as it connects; after an hour in the queue they fail. **Settings → Relays** shows whether each relay is connected and when it was last seen. A job shown as “dispatched” has reached the relay and waits for a free slot (**Hosts at once, per relay** in Settings).',
          },
        ],
      },
    ],
  },
];

// ---- inline markup ---------------------------------------------------------------------------

export type Inline = { kind: 'text' | 'code' | 'strong'; text: string } | { kind: 'link'; text: string; href: string };

const INLINE = /`([^`]+)`|\*\*(.+?)\*\*|\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g;

export function parseInline(text: string): Inline[] {
  const out: Inline[] = [];
  let at = 0;
  for (const m of text.matchAll(INLINE)) {
    const i = m.index ?? 0;
    if (i > at) out.push({ kind: 'text', text: text.slice(at, i) });
    if (m[1] !== undefined) out.push({ kind: 'code', text: m[1] });
    else if (m[2] !== undefined) out.push({ kind: 'strong', text: m[2] });
    else out.push({ kind: 'link', text: m[3], href: m[4] });
    at = i + m[0].length;
  }
  if (at < text.length) out.push({ kind: 'text', text: text.slice(at) });
  return out;
}

/** The text as it reads, without the markup. */
export function plainText(text: string): string {
  return parseInline(text)
    .map((t) => t.text)
    .join('');
}

function blockText(b: HelpBlock): string {
  switch (b.type) {
    case 'p':
    case 'note':
      return plainText(b.text);
    case 'list':
      return b.items.map(plainText).join('\n');
    case 'code':
      return `${b.label ?? ''}\n${b.code}`;
  }
}

// ---- search ----------------------------------------------------------------------------------

/** The words of a query, lower case, each at least one character; at most 8. */
export function queryTerms(q: string): string[] {
  const words = q.toLowerCase().split(/\s+/).filter(Boolean);
  return [...new Set(words)].slice(0, 8);
}

export interface Segment {
  text: string;
  mark: boolean;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Split `text` into plain and matched parts (every occurrence of every term, case-insensitive). */
export function highlight(text: string, terms: string[]): Segment[] {
  if (!terms.length || !text) return [{ text, mark: false }];
  const re = new RegExp(
    terms
      .toSorted((a, b) => b.length - a.length)
      .map(escapeRe)
      .join('|'),
    'gi',
  );
  const out: Segment[] = [];
  let at = 0;
  for (const m of text.matchAll(re)) {
    const i = m.index ?? 0;
    if (m[0].length === 0) continue;
    if (i > at) out.push({ text: text.slice(at, i), mark: false });
    out.push({ text: m[0], mark: true });
    at = i + m[0].length;
  }
  if (at < text.length) out.push({ text: text.slice(at), mark: false });
  return out;
}

const hasAll = (haystack: string, terms: string[]) => {
  const h = haystack.toLowerCase();
  return terms.every((t) => h.includes(t));
};

export interface HelpHit {
  /** Unique, usable as an element id suffix. */
  key: string;
  sectionId: string;
  /** Null: the hit is the section itself (its title or introduction). */
  questionId: string | null;
  title: string;
  /** The section's title, for a question. */
  context: string | null;
  /** A little of the text around the first match, when the match is not in the title. */
  snippet: string | null;
}

export interface SectionMatch {
  /** The title matched: show the whole section. */
  all: boolean;
  intro: boolean;
  questions: Set<string>;
}

export interface HelpSearch {
  terms: string[];
  hits: HelpHit[];
  sections: Map<string, SectionMatch>;
}

function snippetOf(text: string, terms: string[], radius = 60): string | null {
  const lower = text.toLowerCase();
  let first = -1;
  for (const t of terms) {
    const i = lower.indexOf(t);
    if (i >= 0 && (first < 0 || i < first)) first = i;
  }
  if (first < 0) return null;
  const flat = (s: string) => s.replace(/\s+/g, ' ');
  let start = Math.max(0, first - radius);
  let end = Math.min(text.length, first + radius * 2);
  // whole words at the edges
  if (start > 0) {
    const sp = text.indexOf(' ', start);
    if (sp >= 0 && sp < first) start = sp + 1;
  }
  if (end < text.length) {
    const sp = text.lastIndexOf(' ', end);
    if (sp > first) end = sp;
  }
  return `${start > 0 ? '… ' : ''}${flat(text.slice(start, end)).trim()}${end < text.length ? ' …' : ''}`;
}

/** Sections and questions that contain every word of the query, in the order of the page. */
export function searchHelp(sections: HelpSection[], q: string): HelpSearch {
  const terms = queryTerms(q);
  const hits: HelpHit[] = [];
  const matched = new Map<string, SectionMatch>();
  if (!terms.length) return { terms, hits, sections: matched };
  for (const s of sections) {
    const titleHit = hasAll(s.title, terms);
    const introText = [plainText(s.summary), ...s.intro.map(blockText)].join('\n');
    const intro = titleHit || hasAll(`${s.title}\n${introText}`, terms);
    const qs = new Set<string>();
    const qHits: HelpHit[] = [];
    for (const question of s.questions) {
      const answer = question.blocks.map(blockText).join('\n');
      if (titleHit || hasAll(`${s.title}\n${question.q}\n${answer}`, terms)) {
        qs.add(question.id);
        if (!titleHit) {
          qHits.push({
            key: `${s.id}--${question.id}`,
            sectionId: s.id,
            questionId: question.id,
            title: question.q,
            context: s.title,
            snippet: hasAll(question.q, terms) ? null : snippetOf(answer, terms),
          });
        }
      }
    }
    if (!intro && qs.size === 0) continue;
    matched.set(s.id, { all: titleHit, intro, questions: qs });
    if (intro) hits.push({ key: s.id, sectionId: s.id, questionId: null, title: s.title, context: null, snippet: titleHit ? plainText(s.summary) : snippetOf(introText, terms) });
    hits.push(...qHits);
  }
  // best first: answers whose title holds the words, then the page's order (sort is stable)
  const score = (h: HelpHit) => {
    const title = h.title.toLowerCase();
    const inTitle = terms.filter((t) => title.includes(t)).length;
    return (inTitle === terms.length ? terms.length + 1 : 0) + inTitle;
  };
  const ranked = hits.map((h) => ({ h, s: score(h) })).sort((a, b) => b.s - a.s);
  return { terms, hits: ranked.map((x) => x.h), sections: matched };
}
