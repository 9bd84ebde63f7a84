import { Hono } from 'hono';
import { isNull } from 'drizzle-orm';
import { SettingsPatch } from '../../protocol/api.ts';
import type { Env } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { readBody } from '../lib/http.ts';
import { readSettings, writeSettings } from '../settings.ts';
import { relayHub } from '../relay-hub.ts';

export const settingsRoutes = new Hono<{ Bindings: Env }>()
  .get('/', async (c) => c.json(await readSettings(openDb(c.env.DB))))
  .put('/', async (c) => {
    const patch = await readBody(c, SettingsPatch);
    const db = openDb(c.env.DB);
    const before = await readSettings(db);
    const after = await writeSettings(db, patch);
    if (after.scanConcurrency !== before.scanConcurrency) {
      const relays = await db.select({ id: schema.relays.id }).from(schema.relays).where(isNull(schema.relays.revokedAt));
      await Promise.all(relays.map((r) => relayHub(c.env, r.id).configure(after.scanConcurrency)));
    }
    return c.json(after);
  });
