// Who is signed in (GET /api/auth/session), and what their role lets them do. The layout loads
// it on start; every 401 from the API ends it (the layout then sends the browser to the
// sign-in page, or to the first-run wizard when there is no admin yet).
import type { Me, Role, SetupState } from '$protocol/api.ts';
import { api, setUnauthenticatedHandler } from './api.ts';

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** What each role may do, in a few words (the user menu, the tooltips). */
export const ROLE_ABILITIES: Record<Role, string> = {
  viewer: 'can look at everything, and change nothing',
  operator: 'can scan, test, upgrade and reboot hosts, and update Docker stacks',
  admin: 'can do everything: hosts, relays, settings, users',
};

/** The session is asked for as soon as this module loads (with the layout's code), not
 * after every route's code has loaded and the layout has mounted: on the dashboard it is
 * what the first host row waits for last. The first load() takes the answer. */
let early: ReturnType<typeof api.session> | null = typeof window !== 'undefined' ? api.session() : null;
early?.catch(() => {}); // the first load() sees the failure and says so

const article = (role: Role) => (role === 'admin' || role === 'operator' ? 'an' : 'a');

export type SessionState = 'loading' | 'signed-in' | 'signed-out' | 'error';

class Session {
  me = $state<Me | null>(null);
  state = $state<SessionState>('loading');
  /** Why the session could not be loaded: the server is down (state 'error'), or Cloudflare
   * Access let someone in who has no PatchMan account (a 403; state 'signed-out'). */
  error = $state<string | null>(null);
  /** GET /api/setup, once asked (after a 401, or by the sign-in and setup pages). */
  setup = $state<SetupState | null>(null);

  role = $derived<Role | null>(this.me?.user.role ?? null);

  #loading: Promise<void> | null = null;

  constructor() {
    setUnauthenticatedHandler(() => this.#signedOut());
  }

  /** Does the signed-in user have at least this role? */
  can(role: Role): boolean {
    return !!this.me && RANK[this.me.user.role] >= RANK[role];
  }

  /** Why the user cannot do something that needs `role`, or null when they can. */
  needs(role: Role, what = 'This'): string | null {
    if (this.can(role)) return null;
    const mine = this.me?.user.role;
    return `${what} needs the ${role} role${mine ? `; you are ${article(mine)} ${mine}` : ''}.`;
  }

  /** Ask who we are (once; concurrent calls share the request). */
  load(): Promise<void> {
    if (this.#loading) return this.#loading;
    this.#loading = (async () => {
      try {
        // (GET /api/auth/session answers "nobody" with a 200: no failed request in the console)
        const asked = early ?? api.session();
        early = null;
        const { me, error } = await asked;
        if (me) {
          this.me = me;
          this.state = 'signed-in';
          this.error = null;
        } else {
          // first ask whether there is an admin at all: the layout sends us to the sign-in
          // page or to the first-run wizard as soon as the state says signed out
          await this.loadSetup().catch(() => undefined);
          this.me = null;
          this.error = error ?? null;
          this.state = 'signed-out';
        }
      } catch (err) {
        this.state = 'error';
        this.error = err instanceof Error ? err.message : String(err);
      } finally {
        this.#loading = null;
      }
    })();
    return this.#loading;
  }

  async loadSetup(): Promise<SetupState> {
    const s = await api.setupState();
    this.setup = s;
    return s;
  }

  /** Signed in (by the sign-in page or the setup wizard): remember who. */
  signedIn(me: Me) {
    this.me = me;
    this.state = 'signed-in';
    this.error = null;
    if (this.setup) this.setup = { ...this.setup, needed: false };
  }

  async login(username: string, password: string): Promise<Me> {
    const me = await api.login(username, password);
    this.signedIn(me);
    return me;
  }

  async logout(): Promise<void> {
    try {
      await api.logout();
    } finally {
      this.me = null;
      this.state = 'signed-out';
    }
  }

  #signedOut() {
    if (this.state !== 'signed-in') return;
    this.me = null;
    this.state = 'signed-out';
  }
}

export const session = new Session();

/** Where to go after signing in: a path on this site only (never another origin). */
export function safeNext(next: string | null | undefined): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  if (next.startsWith('/login') || next.startsWith('/setup')) return '/';
  return next;
}
