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

  it("replaces nodes' lists whole, in two statements for many nodes: a VMID listed twice on a node kept once, another node's untouched", async () => {
    const db = openDb(testEnv.DB);
    const now = Date.now();
    for (const id of ['n1', 'n2', 'n3']) await db.insert(schema.hosts).values({ id, name: `pve-${id}`, address: '192.0.2.9', createdAt: now, updatedAt: now });
    await db.batch(replaceGuestsStatements(db, [{ nodeHostId: 'n1', guests: [guest(999, 'gone')] }, { nodeHostId: 'n3', guests: [guest(300)] }]) as [never]);
    const list = [...Array.from({ length: 30 }, (_, i) => guest(100 + i)), guest(100, 'duplicate')];
    // the same VMIDs on another node are that node's
    const statements = replaceGuestsStatements(db, [{ nodeHostId: 'n1', guests: list }, { nodeHostId: 'n2', guests: [guest(100), guest(101)] }], now);
    expect(statements.length).toBe(2);
    await db.batch(statements as [never]);
    const rows = await db.select().from(schema.proxmoxGuests).where(eq(schema.proxmoxGuests.nodeHostId, 'n1'));
    expect(rows.length).toBe(30);
    expect(rows.find((r) => r.vmid === 100)).toMatchObject({ name: 'ct100', snapshots: true, reachable: true, seenAt: now });
    expect(rows.some((r) => r.vmid === 999)).toBe(false);
    expect((await db.select().from(schema.proxmoxGuests).where(eq(schema.proxmoxGuests.nodeHostId, 'n2'))).map((r) => r.vmid).sort()).toEqual([100, 101]);
    expect((await db.select().from(schema.proxmoxGuests).where(eq(schema.proxmoxGuests.nodeHostId, 'n3'))).map((r) => r.vmid)).toEqual([300]);
    expect(replaceGuestsStatements(db, [])).toEqual([]);
    // deleting the node deletes its list
    await db.delete(schema.hosts).where(eq(schema.hosts.id, 'n1'));
    expect((await db.select().from(schema.proxmoxGuests).where(eq(schema.proxmoxGuests.nodeHostId, 'n1'))).length).toBe(0);
  });
});
