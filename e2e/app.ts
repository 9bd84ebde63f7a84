// Start the whole app the way a user does (`npm start`) in a temp state dir on a free
// port, for end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { freePort } from '../relay/test/sshd.ts';

const root = resolve(import.meta.dirname, '..');

export interface RunningApp {
  url: string;
  state: string;
  /** The `npm start` process (its tree holds workerd and the relay). */
  pid: number;
  output: () => string;
  /** Calls the API as the admin (an admin API token), unless `anonymous`. */
  api: <T = any>(path: string, init?: RequestInit & { json?: unknown; anonymous?: boolean }) => Promise<{ status: number; body: T }>;
  /** A browser page signed in as the admin (its session cookie in a fresh context). */
  page: (browser: Browser, opts?: BrowserContextOptions) => Promise<Page>;
  stop: () => Promise<void>;
}

export const ADMIN = { username: 'admin', password: 'e2e-admin-password-1' };

/** `npm start` in a temp state dir. Unless `setup` is false, the first admin is created
 * (POST /api/setup, allowed without the secret on localhost) and an admin API token made
 * for `api()`; with `setup: false` the app is left on its first-run wizard. */
export async function startApp(env: Record<string, string> = {}, opts: { setup?: boolean } = {}): Promise<RunningApp> {
  const state = mkdtempSync(join(tmpdir(), 'patchman-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let out = '';
  const child: ChildProcess = spawn('npm', ['start'], {
    cwd: root,
    env: { ...process.env, PORT: String(port), PATCHMAN_STATE: state, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  const stop = async () => {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // gone
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
    rmSync(state, { recursive: true, force: true });
  };

  const deadline = Date.now() + 240_000;
  while (!out.includes(`PatchMan is running at ${url}`)) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${out}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`npm start did not come up:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  let token: string | null = null;
  let session: string | null = null;
  const api = async (path: string, init: RequestInit & { json?: unknown; anonymous?: boolean } = {}) => {
    const { json, anonymous, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (json !== undefined) headers.set('Content-Type', 'application/json');
    if (token && !anonymous && !headers.has('Authorization')) headers.set('Authorization', `Bearer ${token}`);
    const res = await fetch(url + path, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  if (opts.setup !== false) {
    const res = await fetch(url + '/api/setup', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ADMIN) });
    if (res.status !== 201) throw new Error(`setup: ${res.status} ${await res.text()}`);
    session = /__Host-patchman_session=([^;]+)/.exec(res.headers.get('Set-Cookie') ?? '')?.[1] ?? null;
    const made = await fetch(url + '/api/tokens', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Cookie: `__Host-patchman_session=${session}` },
      body: JSON.stringify({ name: 'e2e', role: 'admin' }),
    });
    if (made.status !== 201) throw new Error(`token: ${made.status} ${await made.text()}`);
    token = ((await made.json()) as { secret: string }).secret;
  }
  const page = async (browser: Browser, ctxOpts: BrowserContextOptions = {}) => {
    const context = await browser.newContext(ctxOpts);
    if (session) {
      // (Chromium sets a Secure cookie only through an https URL; it then sends it to
      // http://127.0.0.1 too, which browsers treat as a secure origin)
      await context.addCookies([{ name: '__Host-patchman_session', value: session, url: url.replace('http:', 'https:'), httpOnly: true, secure: true, sameSite: 'Strict' }]);
    }
    return context.newPage();
  };
  return { url, state, pid: child.pid!, output: () => out, api, page, stop };
}

export async function until<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
