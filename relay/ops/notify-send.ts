// `notify.send`: deliver one notification the Worker rendered — an HTTP POST or an e-mail
// (nodemailer) — but only to a host:port in this relay's PATCHMAN_NOTIFY_ALLOW. Anything
// else is refused and logged. Redirects are not followed (they could lead anywhere). Secrets
// in the request (tokens in URLs, SMTP passwords) never reach a log line: only host:port.
import nodemailer from 'nodemailer';
import type { OperationParams, OperationResult } from '../../protocol/relay.ts';
import { OpError } from '../errors.ts';
import type { OpContext } from './context.ts';

const TIMEOUT_MS = 15_000;
/** Headers that would change where or how the request goes, not what it says. */
const FORBIDDEN_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'keep-alive', 'expect']);

function checkAllowed(ctx: OpContext, host: string, port: number, what: string) {
  if (ctx.notifyAllow?.allows(host, port)) return;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  ctx.log?.(`relay: refused notify.send ${what} to ${where}: not in PATCHMAN_NOTIFY_ALLOW`);
  throw new OpError('not-allowed', `${where} is not in this relay's PATCHMAN_NOTIFY_ALLOW`);
}

export async function runNotifySend(params: OperationParams<'notify.send'>, ctx: OpContext): Promise<OperationResult<'notify.send'>> {
  if (params.kind === 'http') {
    const url = new URL(params.url);
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    checkAllowed(ctx, url.hostname, port, 'HTTP');
    const bad = Object.keys(params.headers).find((h) => FORBIDDEN_HEADERS.has(h.toLowerCase()));
    if (bad) throw new OpError('invalid-request', `notify.send may not set the ${bad} header`);
    let res: Response;
    try {
      res = await fetch(url, { method: 'POST', headers: params.headers, body: params.body, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
      throw new OpError('delivery-failed', `${url.hostname}:${port} did not answer (${cause})`);
    }
    const text = (await res.text().catch(() => '')).slice(0, 200);
    if (res.status < 200 || res.status >= 300) throw new OpError('delivery-failed', `HTTP ${res.status}${text ? `: ${text}` : ''}`);
    return { status: res.status, detail: text };
  }

  const { server, mail } = params;
  checkAllowed(ctx, server.host, server.port, 'e-mail');
  const transport = nodemailer.createTransport({
    host: server.host,
    port: server.port,
    secure: server.security === 'tls',
    requireTLS: server.security === 'starttls',
    ignoreTLS: server.security === 'none',
    ...(server.user ? { auth: { user: server.user, pass: server.password ?? '' } } : {}),
    tls: { rejectUnauthorized: server.tlsVerify !== false },
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS,
  });
  try {
    const info = await transport.sendMail({ from: mail.from, to: mail.to, subject: mail.subject, text: mail.text });
    return { status: 250, detail: String(info.response ?? '').slice(0, 200) };
  } catch (err) {
    const e = err as { responseCode?: number; code?: string; message?: string };
    throw new OpError('delivery-failed', `SMTP ${server.host}:${server.port}: ${e.responseCode ? `${e.responseCode} ` : ''}${e.code ?? ''} ${(e.message ?? '').slice(0, 200)}`.trim());
  } finally {
    transport.close();
  }
}
