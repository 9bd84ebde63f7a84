import { Hono } from 'hono';
import { isNull } from 'drizzle-orm';
import { SettingsPatch } from '../../protocol/api.ts';
import type { AppEnv, Env } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { ApiError, readBody } from '../lib/http.ts';
import { readSettings, writeSettings } from '../settings.ts';
import { relayHub } from '../relay-hub.ts';

export const settingsRoutes = new Hono<AppEnv>()
  .get('/', async (c) => c.json(await readSettings(openDb(c.env.DB))))
  .put('/', async (c) => {
    const patch = await readBody(c, SettingsPatch);
    const db = openDb(c.env.DB);
    const before = await readSettings(db);
    const merged = { ...before, ...patch };
    if (merged.accessEnabled && (!merged.accessTeamDomain || !merged.accessAudience)) {
      throw new ApiError(400, 'invalid', 'accessEnabled: set the Access team domain and the application audience (AUD) tag first', 'accessEnabled');
    }
    const after = await writeSettings(db, patch);
    if (after.scanConcurrency !== before.scanConcurrency) {
      const relays = await db.select({ id: schema.relays.id }).from(schema.relays).where(isNull(schema.relays.revokedAt));
      await Promise.all(relays.map((r) => relayHub(c.env, r.id).configure(after.scanConcurrency)));
    }
    return c.json(after);
  });
