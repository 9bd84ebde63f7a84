import { Hono } from 'hono';
import { and, desc, eq } from 'drizzle-orm';
import { ChannelBody, DeliveryQuery, NotifySettingsPatch, type NotificationDelivery } from '../../protocol/notify.ts';
import type { AppEnv } from '../env.ts';
import { openDb, schema, type NotifyDeliveryRow } from '../db/index.ts';
import { notFound, readBody, readQuery } from '../lib/http.ts';
import { newId } from '../lib/crypto.ts';
import { channelJson, channelValues } from '../notify/channel-store.ts';
import { sendTest } from '../notify/outbox.ts';
import { testMessage } from '../notify/message.ts';
import { publicBase, readNotifySettings, writeNotifySettings } from '../notify/settings.ts';

const { notifyChannels, notifyDeliveries } = schema;
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function deliveryJson(d: NotifyDeliveryRow): NotificationDelivery {
  return {
    id: d.id,
    channelId: d.channelId,
    event: d.event as NotificationDelivery['event'],
    status: d.status,
    attempts: d.attempts,
    title: d.message.title,
    error: d.error,
    at: new Date(d.createdAt).toISOString(),
    sentAt: iso(d.sentAt),
    nextAttemptAt: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
  };
}

// Notification channels (secrets write-only), their delivery log, and the notification
// settings. Reading is for every role; changing and "Send test" are for admins (policy.ts).
export const notificationRoutes = new Hono<AppEnv>()
  .get('/channels', async (c) => {
    const rows = await openDb(c.env.DB).select().from(notifyChannels).orderBy(notifyChannels.createdAt);
    return c.json(await Promise.all(rows.map((r) => channelJson(c.env, r))));
  })
  .post('/channels', async (c) => {
    const body = await readBody(c, ChannelBody);
    const db = openDb(c.env.DB);
    const values = await channelValues(c.env, db, body, null);
    const [row] = await db.insert(notifyChannels).values({ id: newId(), createdAt: Date.now(), ...values }).returning();
    return c.json(await channelJson(c.env, row), 201);
  })
  .get('/channels/:id', async (c) => {
    const row = await openDb(c.env.DB).query.notifyChannels.findFirst({ where: eq(notifyChannels.id, c.req.param('id')) });
    if (!row) throw notFound('channel');
    return c.json(await channelJson(c.env, row));
  })
  .put('/channels/:id', async (c) => {
    const db = openDb(c.env.DB);
    const existing = await db.query.notifyChannels.findFirst({ where: eq(notifyChannels.id, c.req.param('id')) });
    if (!existing) throw notFound('channel');
    const body = await readBody(c, ChannelBody);
    const values = await channelValues(c.env, db, body, existing);
    const [row] = await db.update(notifyChannels).set(values).where(eq(notifyChannels.id, existing.id)).returning();
    return c.json(await channelJson(c.env, row));
  })
  .delete('/channels/:id', async (c) => {
    const [row] = await openDb(c.env.DB).delete(notifyChannels).where(eq(notifyChannels.id, c.req.param('id'))).returning({ id: notifyChannels.id });
    if (!row) throw notFound('channel');
    return c.body(null, 204);
  })
  .post('/channels/:id/test', async (c) => {
    const db = openDb(c.env.DB);
    const ch = await db.query.notifyChannels.findFirst({ where: eq(notifyChannels.id, c.req.param('id')) });
    if (!ch) throw notFound('channel');
    const base = publicBase(c.env, await readNotifySettings(db)) ?? new URL(c.req.url).origin;
    const delivery = await sendTest(c.env, db, ch, testMessage(base, ch.name, Date.now()));
    return c.json({ delivery: deliveryJson(delivery) });
  })
  .get('/deliveries', async (c) => {
    const q = readQuery(c, DeliveryQuery);
    const rows = await openDb(c.env.DB)
      .select()
      .from(notifyDeliveries)
      .where(and(q.channelId ? eq(notifyDeliveries.channelId, q.channelId) : undefined))
      .orderBy(desc(notifyDeliveries.createdAt))
      .limit(Math.min(q.limit, 500));
    return c.json(rows.map(deliveryJson));
  })
  .get('/settings', async (c) => c.json(await readNotifySettings(openDb(c.env.DB))))
  .put('/settings', async (c) => {
    const patch = await readBody(c, NotifySettingsPatch);
    return c.json(await writeNotifySettings(openDb(c.env.DB), patch));
  });
