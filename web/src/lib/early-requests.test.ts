import { afterEach, describe, expect, it, vi } from 'vitest';
import { api } from './api.ts';
import { DASHBOARD_LIST_PATHS, EARLY_GLOBAL, EARLY_SESSION_PATH, earlyScript, forgetEarly, takeEarly } from './early-requests.ts';

/** Run /early.js in a fake page at `pathname`, with a fetch that answers the session as given. */
async function runScript(pathname: string, me: object | null) {
  const asked: string[] = [];
  const fetch = vi.fn(async (p: string) => {
    asked.push(p);
    return new Response(JSON.stringify(p === EARLY_SESSION_PATH ? { me } : [{ from: 'early', p }]), { status: 200 });
  });
  const window: Record<string, unknown> = {};
  new Function('window', 'location', 'fetch', earlyScript())(window, { pathname }, fetch);
  await new Promise((r) => setTimeout(r, 10));
  return { asked, early: window[EARLY_GLOBAL] as Record<string, Promise<Response | null>> | undefined };
}

afterEach(() => {
  delete (globalThis as Record<string, unknown>)[EARLY_GLOBAL];
  vi.unstubAllGlobals();
});

describe('/early.js', () => {
  it('on the dashboard: the session and every list the first resync fetches, at once', async () => {
    const { asked, early } = await runScript('/', { user: { id: 'u' } });
    expect(asked).toEqual([EARLY_SESSION_PATH, ...DASHBOARD_LIST_PATHS]);
    expect(Object.keys(early!).sort()).toEqual([EARLY_SESSION_PATH, ...DASHBOARD_LIST_PATHS].sort());
  });

  it('signed out: the session only (the lists would answer 401, red in the console); the app then asks itself', async () => {
    const { asked, early } = await runScript('/', null);
    expect(asked).toEqual([EARLY_SESSION_PATH]);
    (globalThis as Record<string, unknown>)[EARLY_GLOBAL] = early;
    expect(await takeEarly('/api/hosts')).toBeNull();
  });

  it('elsewhere than the dashboard: nothing', async () => {
    expect((await runScript('/settings', { user: {} })).asked).toEqual([]);
    expect((await runScript('/login', null)).asked).toEqual([]);
  });

  it("the app's own GETs of those paths take the early answers, each once", async () => {
    const { early } = await runScript('/', { user: { id: 'u' } });
    (globalThis as Record<string, unknown>)[EARLY_GLOBAL] = early;
    const late = vi.fn(async (p: string) => new Response(JSON.stringify([{ from: 'app', p }]), { status: 200 }));
    vi.stubGlobal('fetch', late);
    // the calls live.svelte.ts makes for its first resync ask for exactly these paths
    const answers = await Promise.all([
      api.health(),
      api.relays(),
      api.hosts(),
      api.jobs({ limit: 200 }),
      api.jobs({ kind: 'upgrade', limit: 200 }),
      api.jobs({ kind: 'reboot', limit: 100 }),
      api.jobs({ kind: 'stack-update', limit: 100 }),
    ]);
    expect(answers.map((a: any) => (Array.isArray(a) ? a[0].from : a.from))).toEqual(Array(7).fill('early'));
    expect(late).not.toHaveBeenCalled();
    expect(takeEarly('/api/hosts')).toBeNull(); // taken
    forgetEarly(); // signed out: what nobody took goes
    expect(takeEarly('/api/relays')).toBeNull();
    await api.hosts();
    expect(late).toHaveBeenCalledTimes(1); // asked afresh
  });
});
