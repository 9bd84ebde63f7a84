// What a relay may report about Proxmox guests, checked against what it was asked: a guest
// list only from a scan of a PVE node reached directly, snapshots only from a guest; and a
// node's list replaces the old one whole, in statements within D1's parameter limit.
import { describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { testEnv } from './test/helpers.ts';
import { openDb, schema } from './db/index.ts';
import { guestListRefusal, replaceGuestsStatements, snapshotListRefusal } from './guest-results.ts';
import type { ProxmoxGuest } from '../protocol/proxmox.ts';

const pve = { probe: { proxmox: { product: 'pve' as const, version: '8.4.1' } } } as never;
const pbs = { probe: { proxmox: { product: 'pbs' as const, version: '3.3' } } } as never;
const plain = { probe: { proxmox: null } } as never;

const guest = (vmid: number, name = `ct${vmid}`): ProxmoxGuest => ({
  vmid, kind: 'lxc', name, status: 'running', node: 'pve1', snapshots: true, snapshotReason: null, reachable: true, reachReason: null, ostype: 'debian',
});

describe('guest reports', () => {
  it('takes a guest list only from a PVE node reached directly, snapshots only from a guest', () => {
    const node = { guestOf: null, name: 'pve1' };
    const ct = { guestOf: 'n1', name: 'dns' };
    expect(guestListRefusal(node, pve)).toBeNull();
    expect(guestListRefusal(node, pbs)).toBe('pve1 is not a Proxmox VE node');
    expect(guestListRefusal(node, plain)).toBe('pve1 is not a Proxmox VE node');
    expect(guestListRefusal(ct, pve)).toBe('dns is a guest, not a Proxmox VE node');
    expect(snapshotListRefusal(ct)).toBeNull();
    expect(snapshotListRefusal(node)).toBe('pve1 is not a Proxmox guest');
  });

  it("replaces a node's list whole: 30 guests in several inserts, a VMID listed twice kept once", async () => {
    const db = openDb(testEnv.DB);
    const now = Date.now();
    await db.insert(schema.hosts).values({ id: 'n1', name: 'pve1', address: '192.0.2.9', createdAt: now, updatedAt: now });
    await db.batch(replaceGuestsStatements(db, 'n1', [guest(999, 'gone')]) as [never]);
    const list = [...Array.from({ length: 30 }, (_, i) => guest(100 + i)), guest(100, 'duplicate')];
    const statements = replaceGuestsStatements(db, 'n1', list, now);
    expect(statements.length).toBe(1 + Math.ceil(30 / 8));
    await db.batch(statements as [never]);
    const rows = await db.select().from(schema.proxmoxGuests).where(eq(schema.proxmoxGuests.nodeHostId, 'n1'));
    expect(rows.length).toBe(30);
    expect(rows.find((r) => r.vmid === 100)?.name).toBe('ct100');
    expect(rows.some((r) => r.vmid === 999)).toBe(false);
    // deleting the node deletes its list
    await db.delete(schema.hosts).where(eq(schema.hosts.id, 'n1'));
    expect((await db.select().from(schema.proxmoxGuests)).length).toBe(0);
  });
});
