// A rogue relay: a second, valid relay token in the wrong hands. It connects and says hello
// like a relay, then sends output and responses for jobs that were dispatched to the other
// relay (forged logs, a forged failure, a forged "ok" scan of a made-up OS), and replays each
// message a few times, alone and inside batch frames (it takes the `batch` feature a relay
// may offer). Everything it sends carries ROGUE_MARK so the invariants can look for it in D1.
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '../../protocol/relay.ts';
import type { Api } from './stack.ts';

export const ROGUE_MARK = 'ROGUE-FORGED';
/** The OS name a forged scan claims. */
export const ROGUE_OS = 'RogueOS';

/** Messages per burst, and the pause between bursts. */
const PACE_BATCH = 40;
const PACE_MS = 100;

const ROGUE_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogusBogusBogusBogusBogusBogusBogusBogus rogue';

export class Rogue {
  #ws: WebSocket;
  sent = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
  }

  /** A new relay token (as an admin would hand out for another site), and a socket with it. */
  static async connect(url: string, api: Api): Promise<Rogue> {
    const made = await api('/api/relays', { method: 'POST', json: { name: 'rogue site' } });
    if (made.status !== 201) throw new Error(`rogue relay: ${made.status} ${JSON.stringify(made.body)}`);
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/relay/connect', { headers: { Authorization: `Bearer ${made.body.token}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.on('error', () => {});
    const welcome = new Promise<void>((resolve) => {
      ws.on('message', (d) => {
        if (String(d).includes('"welcome"')) resolve();
      });
      setTimeout(resolve, 10_000);
    });
    ws.send(JSON.stringify({ type: 'hello', v: PROTOCOL_VERSION, version: '0.0.0-rogue', publicKey: ROGUE_KEY, hostname: 'rogue', features: ['batch'] }));
    await welcome;
    return new Rogue(ws);
  }

  get open(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** Send a frame `times` times; it counts as the messages it carries. */
  async #send(msg: unknown, times: number, carries = 1): Promise<void> {
    for (let i = 0; i < times; i++) {
      if (this.#ws.readyState !== WebSocket.OPEN) return;
      this.#ws.send(JSON.stringify(msg));
      // Paced: what is tested is that forged messages are dropped. An unpaced flood of
      // thousands stalls the local Worker past the suite's short heartbeat timeout and the
      // genuine relay is dropped (docs/RELIABILITY.md, "What the suite found").
      const before = this.sent;
      this.sent += carries;
      if (Math.floor(this.sent / PACE_BATCH) > Math.floor(before / PACE_BATCH)) await new Promise((r) => setTimeout(r, PACE_MS));
    }
  }

  /** Forge and replay messages for these (other relay's) jobs: each alone, then all of a job's
   * in one batch frame. */
  async attack(jobs: { id: string; logBytes?: number }[], replays: number): Promise<void> {
    for (const j of jobs) {
      const forged = [
        { type: 'output', id: j.id, data: `${ROGUE_MARK} forged log line\n` },
        { type: 'output', id: j.id, data: `${ROGUE_MARK} forged ranged log\n`, range: { from: j.logBytes ?? 0, to: (j.logBytes ?? 0) + 30 } },
        { type: 'response', id: j.id, ok: true, result: forgedScan() },
        { type: 'response', id: j.id, ok: false, error: { code: 'command-failed', message: `${ROGUE_MARK} forged failure` } },
      ];
      for (const msg of forged) await this.#send(msg, replays);
      await this.#send({ type: 'batch', messages: forged }, replays, forged.length);
    }
  }

  close(): void {
    this.#ws.terminate();
  }
}

function forgedScan() {
  return {
    probe: {
      os: { id: 'rogue', name: ROGUE_OS, version: '6.6.6', prettyName: `${ROGUE_OS} ${ROGUE_MARK}`, idLike: [] },
      kernel: '6.6.6-rogue',
      arch: 'x86_64',
      hostname: 'rogue',
      bootId: '00000000-0000-4000-a000-000000000666',
      uptimeSeconds: 1,
      packageManagers: ['apt'],
      proxmox: null,
      docker: false,
      privilege: 'root',
    },
    packageManager: 'apt',
    updates: [],
    held: [],
    warnings: [],
    reboot: { required: false, reason: null },
  };
}
