// Keep a child process running, as systemd's Restart= does for the relay's unit: when it
// exits (crash, kill, error) it is started again after a pause that doubles each time, and
// starts small again once a run lasted long enough. Used by `npm start` for the local relay.
import type { ChildProcess } from 'node:child_process';
import { backoffDelay } from '../relay/backoff.ts';

export interface SuperviseOptions {
  name: string;
  spawn: () => ChildProcess;
  log: (line: string) => void;
  /** Pause before the first restart; doubles up to maxDelayMs (jittered like the relay's reconnects). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** A run this long resets the pause. */
  stableMs?: number;
  kill?: (child: ChildProcess) => void;
  random?: () => number;
}

export interface Supervisor {
  current: () => ChildProcess | null;
  /** Stop restarting and end the running process. */
  stop: () => void;
}

export const RESTART_INITIAL_MS = 1000;
export const RESTART_MAX_MS = 30_000;
export const RESTART_STABLE_MS = 60_000;

export function supervise(opts: SuperviseOptions): Supervisor {
  const { initialDelayMs = RESTART_INITIAL_MS, maxDelayMs = RESTART_MAX_MS, stableMs = RESTART_STABLE_MS } = opts;
  const kill = opts.kill ?? ((c: ChildProcess) => c.kill('SIGTERM'));
  let child: ChildProcess | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  let attempt = 0;

  const run = () => {
    timer = null;
    if (stopped) return;
    const startedAt = Date.now();
    const c = opts.spawn();
    child = c;
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      if (child === c) child = null;
      if (stopped) return;
      if (Date.now() - startedAt >= stableMs) attempt = 0;
      const delay = backoffDelay(attempt++, { initialMs: initialDelayMs, maxMs: maxDelayMs }, opts.random);
      opts.log(`${opts.name} exited (${signal ?? code}); restarting in ${delay / 1000} s`);
      timer = setTimeout(run, delay);
    };
    c.once('exit', onExit);
    c.once('error', (err) => {
      // could not even start (e.g. the binary is missing): 'exit' may not follow
      if (c.exitCode === null && c.signalCode === null && c.pid === undefined) onExit(null, null);
      opts.log(`${opts.name}: ${err.message}`);
    });
  };

  run();
  return {
    current: () => child,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (child) kill(child);
      child = null;
    },
  };
}
