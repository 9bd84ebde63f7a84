// Pending events → one message per event name for one channel: counts, the worst first, a
// link. A "Scan all" over 1,000 hosts is one "security updates" message, not 1,000.
import { EVENT_SEVERITY, type NotifyEvent, type NotifyMessage } from '../../protocol/notify.ts';

/** Items listed in one message; the rest are counted ("…and 12 more"). */
export const MAX_ITEMS = 10;

export interface PendingFact {
  event: NotifyEvent;
  hostId: string | null;
  data: { name: string; detail: string; jobId?: string; relayId?: string; rank: number };
}

const s = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

const TITLE: Record<NotifyEvent, (n: number) => string> = {
  'security-updates': (n) => `New security updates on ${s(n, 'host')}`,
  'reboot-required': (n) => `${s(n, 'host')} ${n === 1 ? 'needs' : 'need'} a reboot`,
  'host-unreachable': (n) => `${s(n, 'host')} unreachable`,
  'host-back': (n) => `${s(n, 'host')} reachable again`,
  'host-key-changed': (n) => `Host key changed on ${s(n, 'host')}: blocked until an admin accepts it`,
  'job-failed': (n) => `${s(n, 'job')} failed`,
  'job-succeeded': (n) => `${s(n, 'job')} succeeded`,
  'rollout-finished': (n) => `${s(n, 'rollout')} finished`,
  'relay-down': (n) => `${s(n, 'relay', 'relays')} disconnected`,
  'relay-back': (n) => `${s(n, 'relay', 'relays')} connected again`,
  'images-outdated': (n) => `Newer Docker images on ${s(n, 'host')}`,
  digest: () => 'PatchMan digest',
};

export function itemLink(base: string | null, f: PendingFact['data'] & { hostId?: string | null }): string | null {
  if (!base) return null;
  if (f.jobId) return `${base}/history?job=${encodeURIComponent(f.jobId)}`;
  if (f.hostId) return `${base}/hosts/${encodeURIComponent(f.hostId)}`;
  if (f.relayId) return `${base}/settings`;
  return `${base}/`;
}

export function buildMessage(event: NotifyEvent, facts: PendingFact[], base: string | null, now: number): NotifyMessage {
  const sorted = [...facts].sort((a, b) => b.data.rank - a.data.rank);
  const items = sorted.slice(0, MAX_ITEMS).map((f) => ({
    ...(f.hostId ? { hostId: f.hostId } : {}),
    ...(f.data.jobId ? { jobId: f.data.jobId } : {}),
    ...(f.data.relayId ? { relayId: f.data.relayId } : {}),
    name: f.data.name,
    detail: f.data.detail,
    link: itemLink(base, { ...f.data, hostId: f.hostId }),
  }));
  const more = sorted.length - items.length;
  let text: string;
  if (event === 'digest') text = sorted.map((f) => f.data.detail).join('\n');
  else {
    const lines = items.map((i) => `• ${i.name}: ${i.detail}`);
    if (more > 0) lines.push(`…and ${more} more`);
    if (event === 'security-updates') {
      const total = sorted.reduce((sum, f) => sum + f.data.rank, 0);
      lines.unshift(`${s(total, 'security update')} pending on ${s(sorted.length, 'host')}; the most first:`);
    }
    text = lines.join('\n');
  }
  const link = items.length === 1 && sorted.length === 1 ? items[0].link : base ? (event === 'job-failed' || event === 'job-succeeded' ? `${base}/history` : `${base}/`) : null;
  return { event, severity: EVENT_SEVERITY[event], title: TITLE[event](sorted.length), text, link, at: new Date(now).toISOString(), count: sorted.length, items };
}

export function testMessage(base: string | null, channelName: string, now: number): NotifyMessage {
  return {
    event: 'test',
    severity: 'info',
    title: 'PatchMan test message',
    text: `This is a test of the channel "${channelName}". If you read this, it works.`,
    link: base ? `${base}/settings/notifications` : null,
    at: new Date(now).toISOString(),
    count: 0,
    items: [],
  };
}
