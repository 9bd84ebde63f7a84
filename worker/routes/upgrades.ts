import { Hono } from 'hono';
import { inArray } from 'drizzle-orm';
import { BulkUpgradeRequest, type BulkResult } from '../../protocol/api.ts';
import type { AppEnv, Env } from '../env.ts';
import { openDb, schema, type HostRow } from '../db/index.ts';
import { ApiError, readBody, readIdempotencyKey } from '../lib/http.ts';
import { startChange } from '../changes.ts';
import { relayHub } from '../relay-hub.ts';
import { namesInWords } from '../auth/audit.ts';

const { hosts } = schema;

// POST /api/upgrades {confirm, hostIds}: full upgrades of several hosts. Each host gets its
// own job or its own reason for refusal; one refusal does not stop the rest. With an
// Idempotency-Key, a retried request returns the same jobs.
export const upgradeRoutes = new Hono<AppEnv>().post('/', async (c) => {
  const { hostIds, snapshot } = await readBody(c, BulkUpgradeRequest);
  const key = readIdempotencyKey(c);
  const db = openDb(c.env.DB);
  const found = new Map<string, HostRow>();
  const ids = [...new Set(hostIds)];
  for (let i = 0; i < ids.length; i += 90) {
    for (const h of await db.select().from(hosts).where(inArray(hosts.id, ids.slice(i, i + 90)))) found.set(h.id, h);
  }
  c.set('audit', { target: null, detail: namesInWords(ids.map((id) => found.get(id)?.name ?? id)) });
  const results: BulkResult['results'] = [];
  const relays = new Set<string>();
  for (const id of ids) {
    const host = found.get(id);
    if (!host) {
      results.push({ hostId: id, error: { code: 'not-found', message: 'host not found' } });
      continue;
    }
    try {
      const { job } = await startChange(c.env, db, host, { kind: 'upgrade', withoutSnapshot: snapshot === false, idempotencyKey: key ? `${key}:${id}` : null, requestedBy: c.get('identity').name }, { dispatch: false });
      results.push({ hostId: id, jobId: job.id });
      if (host.relayId) relays.add(host.relayId);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      results.push({ hostId: id, error: { code: err.code, message: err.message } });
    }
  }
  await Promise.all([...relays].map((r) => relayHub(c.env, r).dispatch()));
  return c.json({ results } satisfies BulkResult);
});
