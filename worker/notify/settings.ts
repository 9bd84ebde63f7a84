// The notification settings (public URL for links, thresholds, digest), one JSON value under
// the `notify` key of the settings table, over DEFAULT_NOTIFY_SETTINGS.
import * as v from 'valibot';
import { eq } from 'drizzle-orm';
import { DEFAULT_NOTIFY_SETTINGS, NotifySettings } from '../../protocol/notify.ts';
import type { Env } from '../env.ts';
import { schema, type Db } from '../db/index.ts';

const KEY = 'notify';

export async function readNotifySettings(db: Db): Promise<NotifySettings> {
  const row = await db.query.settings.findFirst({ where: eq(schema.settings.key, KEY) });
  const parsed = v.safeParse(NotifySettings, { ...DEFAULT_NOTIFY_SETTINGS, ...((row?.value as object) ?? {}) });
  return parsed.success ? parsed.output : DEFAULT_NOTIFY_SETTINGS;
}

export async function writeNotifySettings(db: Db, patch: Partial<NotifySettings>): Promise<NotifySettings> {
  const value = { ...(await readNotifySettings(db)), ...patch };
  await db.insert(schema.settings).values({ key: KEY, value }).onConflictDoUpdate({ target: schema.settings.key, set: { value } });
  return value;
}

/** Where links in messages point: the setting, else what npm start says, else none. */
export function publicBase(env: Env, s: NotifySettings): string | null {
  const base = s.publicUrl || env.PATCHMAN_PUBLIC_URL || '';
  return base ? base.replace(/\/+$/, '') : null;
}
