// Send one message to one channel, now: from the Worker (fetch) or through the channel's
// relay (the `notify.send` operation). Returns what happened; never throws, and an error
// never carries a secret (webhook URLs hold tokens).
import { SECRET_FIELDS, type ChannelType, type NotifyMessage, type NotifyOutgoing } from '../../protocol/notify.ts';
import type { Env } from '../env.ts';
import type { NotifyChannelRow } from '../db/index.ts';
import { askRelay } from '../relay-hub.ts';
import { channelKind } from './channels/index.ts';
import { fullConfig } from './channel-store.ts';

export const SEND_TIMEOUT_MS = 15_000;

export type SendOutcome = { ok: true } | { ok: false; error: string };

/** Replace every secret value in a text (an error may echo a URL). */
function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out.slice(0, 500);
}

async function fetchOut(out: Extract<NotifyOutgoing, { kind: 'http' }>): Promise<SendOutcome> {
  const res = await fetch(out.url, { method: 'POST', headers: out.headers, body: out.body, redirect: 'manual', signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
  const text = (await res.text().catch(() => '')).slice(0, 200);
  if (res.status >= 200 && res.status < 300) return { ok: true };
  return { ok: false, error: `HTTP ${res.status}${text ? `: ${text}` : ''}` };
}

export async function sendToChannel(env: Env, row: NotifyChannelRow, message: NotifyMessage): Promise<SendOutcome> {
  let secrets: string[] = [];
  try {
    const config = await fullConfig(env, row);
    const kind = channelKind(row.type as ChannelType);
    const type = row.type as ChannelType;
    secrets = [...SECRET_FIELDS[type].map((k) => config[k]).filter((x): x is string => typeof x === 'string'), kind.endpoint(config)];
    const out = await kind.render(message, config);
    if (row.via === 'worker') {
      if (out.kind !== 'http') return { ok: false, error: 'e-mail is sent through a relay' };
      return scrubbed(await fetchOut(out), secrets);
    }
    const answer = await askRelay(env, row.via, 'notify.send', out, SEND_TIMEOUT_MS + 5_000);
    if (answer.ok) return { ok: true };
    return scrubbed({ ok: false, error: `${answer.fromRelay ? 'the relay' : 'relay'}: ${answer.error.message}` }, secrets);
  } catch (err) {
    return scrubbed({ ok: false, error: err instanceof Error ? `${err.name === 'TimeoutError' ? 'timed out: ' : ''}${err.message}` : String(err) }, secrets);
  }
}

function scrubbed(o: SendOutcome, secrets: string[]): SendOutcome {
  return o.ok ? o : { ok: false, error: scrub(o.error, secrets) };
}
