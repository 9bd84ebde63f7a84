import * as v from 'valibot';
import { DEFAULT_SETTINGS, Settings, type Settings as SettingsT } from '../protocol/api.ts';
import { schema, type Db } from './db/index.ts';

/** Stored settings over the defaults; a stored value that no longer validates (a range
 * narrowed since) falls back to its own default, leaving the others as they are. */
export async function readSettings(db: Db): Promise<SettingsT> {
  return settingsFrom(await settingsQuery(db));
}

/** The stored settings rows, as a query that can join a D1 batch (worker/auth/credential.ts). */
export const settingsQuery = (db: Db) => db.select().from(schema.settings);

/** The settings those rows make, by the rule of readSettings. */
export function settingsFrom(rows: (typeof schema.settings.$inferSelect)[]): SettingsT {
  const merged: Record<string, unknown> = { ...DEFAULT_SETTINGS };
  for (const r of rows) {
    const field = Settings.entries[r.key as keyof SettingsT];
    if (field && v.safeParse(field, r.value).success) merged[r.key] = r.value;
  }
  const parsed = v.safeParse(Settings, merged);
  return parsed.success ? parsed.output : DEFAULT_SETTINGS;
}

export async function writeSettings(db: Db, patch: Partial<SettingsT>): Promise<SettingsT> {
  const entries = Object.entries(patch).filter(([, value]) => value !== undefined);
  if (entries.length) {
    await db.batch(
      entries.map(([key, value]) =>
        db.insert(schema.settings).values({ key, value }).onConflictDoUpdate({ target: schema.settings.key, set: { value } }),
      ) as [any, ...any[]],
    );
  }
  return readSettings(db);
}
