import { Hono } from 'hono';
import { inArray } from 'drizzle-orm';
import { ScanRequest } from '../../protocol/api.ts';
import type { AppEnv, Env } from '../env.ts';
import { openDb, schema } from '../db/index.ts';
import { readBody } from '../lib/http.ts';
import { startScans } from '../hosts.ts';
import { namesInWords } from '../auth/audit.ts';

const { hosts } = schema;

// POST /api/scans {hostIds?}: scan the named hosts, or all of them.
export const scanRoutes = new Hono<AppEnv>().post('/', async (c) => {
  const { hostIds } = await readBody(c, ScanRequest);
  const db = openDb(c.env.DB);
  // (what startScans and the audit line need, not whole host rows)
  const columns = { id: hosts.id, relayId: hosts.relayId, name: hosts.name };
  let targets = [];
  if (hostIds === undefined) targets = await db.select(columns).from(hosts);
  else for (let i = 0; i < hostIds.length; i += 90) targets.push(...(await db.select(columns).from(hosts).where(inArray(hosts.id, hostIds.slice(i, i + 90)))));
  c.set('audit', { target: null, detail: hostIds === undefined ? `all ${targets.length} hosts` : namesInWords(targets.map((h) => h.name)) });
  const { jobIds } = await startScans(c.env, db, targets, c.get('identity').name);
  return c.json({ jobIds }, 202);
});
