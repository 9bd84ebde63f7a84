// The faults the suite injects, by kind. Host faults hit one simulated host during one job
// on it; process faults hit the relay, the Worker, or come from a rogue relay, at a random
// moment while the round's jobs run.

export const FAULT_KINDS = [
  'ssh-drop-scan',
  'ssh-drop-upgrade',
  'host-reboot',
  'relay-kill',
  'relay-freeze',
  'worker-restart',
  'host-slow',
  'host-silent',
  'sshd-refusing',
  'rogue-relay',
  'disk-full',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What each kind does, for the figures. */
export const FAULT_TEXT: Record<FaultKind, string> = {
  'ssh-drop-scan': 'every SSH connection of the host drops mid-command while it is scanned',
  'ssh-drop-upgrade': 'the TCP connections of the host are cut (1–3 times) while an upgrade runs',
  'host-reboot': 'the host reboots on its own while an upgrade runs (the run dies with it)',
  'relay-kill': 'the relay is killed (SIGKILL) while jobs run, and started again',
  'relay-freeze': 'the relay is frozen (SIGSTOP) past the heartbeat timeout, then resumed (SIGCONT)',
  'worker-restart': 'wrangler dev is killed (SIGKILL) while jobs run and restarted on the same port and state',
  'host-slow': 'every command on the host takes 1–2 s longer, its SSH banner 0.5 s',
  'host-silent': 'the host accepts SSH but no command ever answers (scan)',
  'sshd-refusing': 'nothing listens on the host\'s SSH port (scan)',
  'rogue-relay': 'a second relay token sends forged output and responses for the first relay\'s jobs, each replayed',
  'disk-full': 'the host\'s disk fills while an upgrade logs: the log stops half-way, apt exits 100',
};

/** Host faults that need an upgrade on their host (the others go with a scan). */
export const UPGRADE_FAULTS: FaultKind[] = ['ssh-drop-upgrade', 'host-reboot', 'disk-full'];
export const SCAN_FAULTS: FaultKind[] = ['ssh-drop-scan', 'host-silent', 'sshd-refusing'];
/** Faults after which a job may honestly end `lost` (its outcome could not be known). */
export const MAY_LOSE: FaultKind[] = ['host-reboot', 'relay-kill', 'relay-freeze', 'worker-restart'];
export const PROCESS_FAULTS: FaultKind[] = ['relay-kill', 'relay-freeze', 'worker-restart', 'rogue-relay'];
