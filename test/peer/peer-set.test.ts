import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isPqnetError } from '../../src/core/errors.ts';
import {
  DEFAULT_PEER_SET_OPTIONS,
  PeerSet,
  addressKey,
  subnetKey,
  type Direction,
  type PeerSetInit,
  type Slot,
  type SlotInit,
} from '../../src/peer/peer-set.ts';

const invalidArgument = (e: unknown): boolean => isPqnetError(e) && e.code === 'INVALID_ARGUMENT';
const NO_PROTECTION = { subnets: 0, lowLatency: 0, useful: 0, longLived: 0 };

let counter = 0;
/** Add a slot (inbound, not must-connect, opened at 0 unless told otherwise). */
function add(set: PeerSet, host: string, o: Partial<SlotInit> = {}): Slot {
  return set.add({ key: `${host}#${counter++}`, direction: 'inbound', host, mustConnect: false, openedAt: 0, ...o });
}

/** Admit and add `host` `times` times; returns how many were admitted and the refusals seen. */
function fill(set: PeerSet, host: string, times: number, direction: Direction = 'inbound'): { admitted: number; refusals: string[] } {
  let admitted = 0;
  const refusals: string[] = [];
  for (let i = 0; i < times; i++) {
    const r = direction === 'inbound' ? set.admitInbound(host, 0) : set.admitOutbound(host, false);
    if (r.ok) {
      assert.equal((r as { evict?: string }).evict, undefined);
      add(set, host, { direction });
      admitted++;
    } else refusals.push(r.reason);
  }
  return { admitted, refusals };
}

const roomy = (o: PeerSetInit = {}): PeerSet => new PeerSet({ maxPeers: 10_000, maxOutbound: 5_000, ...o });

// ---- options ----

test('defaults: 50 peers, 8 outbound, 4 per IP, 8 per subnet, protection 4/8/4/8', () => {
  const set = new PeerSet();
  assert.deepEqual(set.options, { maxPeers: 50, maxOutbound: 8, maxPeersPerIp: 4, maxPeersPerSubnet: 8, protect: { subnets: 4, lowLatency: 8, useful: 4, longLived: 8 } });
  assert.deepEqual(set.options, DEFAULT_PEER_SET_OPTIONS);
  assert.ok(Object.isFrozen(set.options) && Object.isFrozen(set.options.protect));
  assert.deepEqual(new PeerSet({ protect: { useful: 1 } }).options.protect, { subnets: 4, lowLatency: 8, useful: 1, longLived: 8 }, 'protect merges with the defaults');
});

test('options must be non-negative integers, and maxOutbound at most maxPeers', () => {
  for (const bad of [{ maxPeers: 1.5 }, { maxPeers: -1 }, { maxPeersPerIp: Number.NaN }, { maxPeersPerSubnet: Infinity }, { maxOutbound: 51 }, { maxPeers: 4 }, { protect: { longLived: -1 } }, { protect: { subnets: 0.5 } }]) {
    assert.throws(() => new PeerSet(bad), RangeError, JSON.stringify(bad));
  }
  assert.doesNotThrow(() => new PeerSet({ maxPeers: 0, maxOutbound: 0, maxPeersPerIp: 0, maxPeersPerSubnet: 0, protect: NO_PROTECTION }));
});

// ---- keys ----

test('address and subnet keys: canonical IPv4 /24 and IPv6 /64, IPv4-mapped is IPv4, names are their own subnet', () => {
  assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
  assert.equal(subnetKey('192.0.2.7'), '192.0.2.0/24');
  assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('::ffff:c000:207'), '192.0.2.7');
  assert.equal(subnetKey('::FFFF:192.0.2.200'), '192.0.2.0/24');
  assert.equal(addressKey('2001:DB8:0:0::1'), '2001:db8::1');
  assert.equal(subnetKey('2001:db8:0:7:ffff::1'), '2001:db8:0:7::/64');
  assert.equal(subnetKey('fe80::1%eth0'), 'fe80::/64');
  assert.equal(addressKey('alice'), 'name:alice');
  assert.equal(subnetKey('alice'), 'name:alice');
  assert.notEqual(subnetKey('192.0.2.0/24'), subnetKey('192.0.2.1'), 'a host name that looks like a CIDR is not that subnet');
});

// ---- caps ----

test('100 inbound admissions from one IP stop at maxPeersPerIp', () => {
  const set = roomy();
  const { admitted, refusals } = fill(set, '198.51.100.9', 100);
  assert.equal(admitted, 4);
  assert.deepEqual(new Set(refusals), new Set(['TOO_MANY_PER_IP']));
  assert.equal(set.counts().inbound, 4);
  assert.deepEqual(set.admitInbound('198.51.100.10', 0), { ok: true }, 'another address of the subnet still fits');
});

test('the per-IP cap counts both directions, and applies to outbound dials', () => {
  const set = roomy();
  assert.equal(fill(set, '198.51.100.9', 2, 'outbound').admitted, 2);
  assert.equal(fill(set, '198.51.100.9', 5, 'inbound').admitted, 2);
  assert.deepEqual(set.admitOutbound('198.51.100.9', false), { ok: false, reason: 'TOO_MANY_PER_IP' });
});

test('IPv4 subnet cap: 8 per /24, then PEER_SUBNET_LIMIT; the next /24 is free', () => {
  const set = roomy();
  for (let i = 1; i <= 8; i++) assert.equal(fill(set, `203.0.113.${i}`, 1).admitted, 1);
  assert.deepEqual(set.admitInbound('203.0.113.200', 0), { ok: false, reason: 'PEER_SUBNET_LIMIT' });
  assert.deepEqual(set.admitOutbound('203.0.113.201', false), { ok: false, reason: 'PEER_SUBNET_LIMIT' });
  assert.deepEqual(set.admitInbound('203.0.112.1', 0), { ok: true });
  assert.deepEqual(set.admitInbound('203.0.114.1', 0), { ok: true });
});

test('the per-IP cap is checked before the subnet cap', () => {
  const set = roomy({ maxPeersPerIp: 2, maxPeersPerSubnet: 2 });
  fill(set, '203.0.113.1', 2);
  assert.deepEqual(set.admitInbound('203.0.113.1', 0), { ok: false, reason: 'TOO_MANY_PER_IP' });
  assert.deepEqual(set.admitInbound('203.0.113.2', 0), { ok: false, reason: 'PEER_SUBNET_LIMIT' });
});

test('IPv6: per-IP cap on the exact address whatever its spelling, subnet cap per /64', () => {
  const set = roomy();
  const spellings = ['2001:db8::1', '2001:DB8:0:0:0:0:0:1', '2001:db8:0::1', '2001:db8::0:1'];
  for (const s of spellings) assert.equal(fill(set, s, 1).admitted, 1, s);
  assert.deepEqual(set.admitInbound('2001:db8::1', 0), { ok: false, reason: 'TOO_MANY_PER_IP' });
  for (let i = 2; i <= 5; i++) assert.equal(fill(set, `2001:db8::${i}:${i}`, 1).admitted, 1);
  assert.deepEqual(set.admitInbound('2001:db8::ffff:ffff:ffff:ffff', 0), { ok: false, reason: 'PEER_SUBNET_LIMIT' }, 'same /64');
  assert.deepEqual(set.admitInbound('2001:db8:0:1::1', 0), { ok: true }, 'next /64');
});

test('IPv4-mapped IPv6 counts as the IPv4 address and its /24', () => {
  const set = roomy();
  fill(set, '192.0.2.1', 2);
  fill(set, '::ffff:192.0.2.1', 1);
  fill(set, '::ffff:c000:201', 1);
  assert.deepEqual(set.admitInbound('192.0.2.1', 0), { ok: false, reason: 'TOO_MANY_PER_IP' });
  assert.deepEqual(set.admitInbound('::ffff:192.0.2.1', 0), { ok: false, reason: 'TOO_MANY_PER_IP' });
  for (let i = 2; i <= 5; i++) fill(set, `::ffff:192.0.2.${i}`, 1);
  assert.deepEqual(set.admitInbound('192.0.2.99', 0), { ok: false, reason: 'PEER_SUBNET_LIMIT' });
});

test('non-IP hosts are each their own subnet', () => {
  const set = roomy({ maxPeersPerIp: 3, maxPeersPerSubnet: 3 });
  assert.deepEqual(fill(set, 'alice', 5), { admitted: 3, refusals: ['TOO_MANY_PER_IP', 'TOO_MANY_PER_IP'] });
  assert.equal(fill(set, 'bob', 3).admitted, 3);
  assert.equal(fill(set, 'carol', 3).admitted, 3);
});

// ---- quotas ----

test('outbound quota, inbound room and the total cap', () => {
  const set = new PeerSet({ maxPeers: 10, maxOutbound: 3 });
  for (let i = 0; i < 3; i++) assert.equal(fill(set, `10.0.${i}.1`, 1, 'outbound').admitted, 1);
  assert.deepEqual(set.admitOutbound('10.9.0.1', false), { ok: false, reason: 'PEER_LIMIT' });
  for (let i = 0; i < 7; i++) assert.equal(fill(set, `10.1.${i}.1`, 1).admitted, 1);
  assert.deepEqual(set.admitInbound('10.9.0.1', 0), { ok: false, reason: 'PEER_LIMIT' }, 'room full, nothing evictable (all handshaking)');
  assert.deepEqual(set.counts(), { total: 10, inbound: 7, outbound: 3, mustConnect: 0, active: 0 });
});

test('the total cap holds outbound dials back when inbound slots took more than their room', () => {
  const set = new PeerSet({ maxPeers: 10, maxOutbound: 4 });
  for (let i = 0; i < 8; i++) add(set, `10.1.${i}.1`); // added without admission
  assert.equal(fill(set, '10.9.0.1', 5, 'outbound').admitted, 2);
  assert.deepEqual(set.admitOutbound('10.9.1.1', false), { ok: false, reason: 'PEER_LIMIT' });
});

test('the inbound room is counted on inbound slots only', () => {
  const set = new PeerSet({ maxPeers: 6, maxOutbound: 2 });
  assert.equal(fill(set, '10.1.0.1', 1, 'outbound').admitted, 1);
  for (let i = 0; i < 4; i++) assert.equal(fill(set, `10.2.${i}.1`, 1).admitted, 1);
  assert.equal(set.admitInbound('10.3.0.1', 0).ok, false);
  assert.deepEqual(set.admitOutbound('10.1.1.1', false), { ok: true }, 'one outbound slot left');
});

test('maxPeers − maxOutbound = 0 refuses every inbound connection', () => {
  const set = new PeerSet({ maxPeers: 4, maxOutbound: 4 });
  assert.deepEqual(set.admitInbound('10.0.0.1', 0), { ok: false, reason: 'PEER_LIMIT' });
});

// ---- must-connect ----

test('must-connect dials are admitted whatever the caps, and use none of them', () => {
  const set = new PeerSet({ maxPeers: 4, maxOutbound: 2, maxPeersPerIp: 1, maxPeersPerSubnet: 1 });
  fill(set, '10.0.0.1', 1, 'outbound');
  fill(set, '10.0.1.1', 1, 'outbound');
  fill(set, '10.0.2.1', 1, 'inbound');
  fill(set, '10.0.3.1', 1, 'inbound');
  assert.deepEqual(set.admitOutbound('10.0.0.1', false), { ok: false, reason: 'PEER_LIMIT' });
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(set.admitOutbound('10.0.0.1', true), { ok: true }, 'quota, total, IP and subnet all full');
    add(set, '10.0.0.1', { direction: 'outbound', mustConnect: true });
  }
  assert.deepEqual(set.counts(), { total: 9, inbound: 2, outbound: 7, mustConnect: 5, active: 0 });

  const fresh = new PeerSet({ maxPeers: 4, maxOutbound: 2, maxPeersPerIp: 1, maxPeersPerSubnet: 1 });
  for (let i = 0; i < 3; i++) add(fresh, '10.0.0.1', { direction: i === 0 ? 'inbound' : 'outbound', mustConnect: true });
  assert.deepEqual(fresh.admitOutbound('10.0.0.1', false), { ok: true }, 'must-connect peers leave the per-IP cap alone');
  assert.equal(fill(fresh, '10.0.1.1', 3, 'outbound').admitted, 1);
  assert.equal(fill(fresh, '10.0.2.1', 3, 'outbound').admitted, 1, 'and the outbound quota');
  assert.equal(fill(fresh, '10.0.3.1', 1).admitted, 1);
  assert.equal(fill(fresh, '10.0.4.1', 1).admitted, 1, 'and the inbound room');
});

test('must-connect inbound peers are never evicted', () => {
  const set = new PeerSet({ maxPeers: 2, maxOutbound: 0, protect: NO_PROTECTION });
  add(set, '10.0.0.1', { mustConnect: true, active: true, key: 'must' });
  add(set, '10.0.0.2', { active: true, key: 'plain', openedAt: -5 });
  assert.equal(set.selectEviction(0), 'plain');
  set.remove('plain');
  assert.equal(set.selectEviction(0), undefined);
});

// ---- add / remove / get ----

test('add copies the slot, fills defaults, and refuses duplicates', () => {
  const set = new PeerSet();
  const init = { key: 'k', direction: 'outbound', host: '10.0.0.1', mustConnect: false, openedAt: 7 } as const;
  const slot = set.add(init);
  assert.deepEqual(slot, { ...init, peerId: undefined, active: false, rttMs: undefined, lastUsefulAt: undefined });
  assert.notEqual(slot, init);
  assert.equal(set.get('k'), slot);
  assert.equal(set.get('nope'), undefined);
  assert.throws(() => set.add(init), invalidArgument);
  set.add({ ...init, key: 'k2', peerId: 'P' });
  assert.equal(set.byPeerId('P')?.key, 'k2');
  assert.throws(() => set.add({ ...init, key: 'k3', peerId: 'P' }), invalidArgument, 'peer-id already held');
  assert.throws(() => set.add({ ...init, key: 'k4', direction: 'sideways' as Direction }), invalidArgument);
  assert.throws(() => set.add({ ...init, key: 'k5', openedAt: Number.NaN }), invalidArgument);
  assert.deepEqual(set.slots().map((s) => s.key), ['k', 'k2']);
});

test('remove() frees the IP, subnet and quota capacity and the peer-id', () => {
  const set = new PeerSet({ maxPeers: 10, maxOutbound: 1, maxPeersPerIp: 1, maxPeersPerSubnet: 2 });
  const a = add(set, '10.0.0.1', { key: 'a' });
  add(set, '10.0.0.2', { key: 'b' });
  const o = add(set, '10.0.9.1', { key: 'o', direction: 'outbound' });
  assert.equal(set.claimPeerId('a', 'PA', 'ME'), undefined);
  assert.deepEqual(set.admitInbound('10.0.0.1', 0), { ok: false, reason: 'TOO_MANY_PER_IP' });
  assert.deepEqual(set.admitInbound('10.0.0.3', 0), { ok: false, reason: 'PEER_SUBNET_LIMIT' });
  assert.deepEqual(set.admitOutbound('10.0.8.1', false), { ok: false, reason: 'PEER_LIMIT' });
  assert.equal(set.remove('a'), a);
  assert.equal(set.remove('a'), undefined);
  assert.equal(set.remove('o'), o);
  assert.deepEqual(set.admitInbound('10.0.0.1', 0), { ok: true });
  assert.deepEqual(set.admitInbound('10.0.0.3', 0), { ok: true });
  assert.deepEqual(set.admitOutbound('10.0.8.1', false), { ok: true });
  assert.equal(set.byPeerId('PA'), undefined);
  add(set, '10.0.5.1', { key: 'a2' });
  assert.equal(set.claimPeerId('a2', 'PA', 'ME'), undefined, 'the peer may come back');
  assert.deepEqual(set.counts(), { total: 2, inbound: 2, outbound: 0, mustConnect: 0, active: 0 });
});

// ---- peer-ids ----

test('claimPeerId: self, duplicate (the existing connection wins), then recorded', () => {
  const set = new PeerSet();
  add(set, '10.0.0.1', { key: 'first' });
  add(set, '10.0.0.2', { key: 'second', direction: 'outbound' });
  add(set, '10.0.0.3', { key: 'loop' });
  assert.equal(set.claimPeerId('loop', 'ME', 'ME'), 'PEER_SELF');
  assert.equal(set.get('loop')?.peerId, undefined);
  assert.equal(set.claimPeerId('first', 'P', 'ME'), undefined);
  assert.equal(set.claimPeerId('second', 'P', 'ME'), 'PEER_DUPLICATE');
  assert.equal(set.byPeerId('P')?.key, 'first');
  assert.equal(set.get('second')?.peerId, undefined);
  assert.equal(set.claimPeerId('first', 'P', 'ME'), undefined, 'claiming again is a no-op');
  assert.throws(() => set.claimPeerId('first', 'Q', 'ME'), invalidArgument, 'a connection does not change peer');
  assert.throws(() => set.claimPeerId('nope', 'Q', 'ME'), invalidArgument);
  set.remove('second');
  assert.equal(set.byPeerId('P')?.key, 'first', 'removing the refused duplicate keeps the winner indexed');
});

test('claimPeerId with supersede: the newcomer takes the id over; removing the old holder keeps it indexed', () => {
  const set = new PeerSet();
  add(set, '10.0.0.1', { key: 'old' });
  add(set, '10.0.0.1', { key: 'new', direction: 'outbound' });
  assert.equal(set.claimPeerId('old', 'P', 'ME'), undefined);
  assert.equal(set.claimPeerId('new', 'P', 'ME', { supersede: true }), undefined);
  assert.equal(set.byPeerId('P')?.key, 'new');
  set.remove('old');
  assert.equal(set.byPeerId('P')?.key, 'new');
});

test('markMustConnect moves a connection out of the quotas and per-IP counts, and out of eviction', () => {
  const set = new PeerSet({ maxPeers: 3, maxOutbound: 1, maxPeersPerIp: 2 });
  add(set, '10.0.0.1', { key: 'a', active: true });
  add(set, '10.0.0.1', { key: 'b', active: true });
  assert.equal(set.admitInbound('10.0.0.1', 0).ok, false, 'per-IP cap reached');
  set.markMustConnect('a');
  set.markMustConnect('a'); // idempotent
  assert.equal(set.get('a')?.mustConnect, true);
  assert.deepEqual(set.counts(), { total: 2, inbound: 2, outbound: 0, mustConnect: 1, active: 2 });
  assert.equal(set.admitInbound('10.0.0.1', 0).ok, true, 'room on the IP again');
  assert.notEqual(set.selectEviction(0), 'a');
  set.remove('a');
  assert.deepEqual(set.counts(), { total: 1, inbound: 1, outbound: 0, mustConnect: 0, active: 1 });
});

// ---- eviction ----

/** Active inbound candidate. */
function cand(set: PeerSet, key: string, host: string, o: Partial<SlotInit> = {}): Slot {
  return set.add({ key, direction: 'inbound', host, mustConnect: false, openedAt: 0, active: true, ...o });
}

test('only active, inbound, non-must-connect peers are eviction candidates', () => {
  const set = new PeerSet({ maxPeers: 10, maxOutbound: 2, protect: NO_PROTECTION });
  add(set, '10.0.0.1', { key: 'handshaking', openedAt: 9 });
  add(set, '10.0.0.2', { key: 'outbound', direction: 'outbound', active: true, openedAt: 9 });
  add(set, '10.0.0.3', { key: 'must', mustConnect: true, active: true, openedAt: 9 });
  assert.equal(set.selectEviction(10), undefined);
  cand(set, 'victim', '10.0.0.4');
  assert.equal(set.selectEviction(10), 'victim');
});

test('a full inbound room proposes the eviction victim; the caller swaps', () => {
  const set = new PeerSet({ maxPeers: 5, maxOutbound: 1, protect: NO_PROTECTION });
  for (let i = 0; i < 4; i++) cand(set, `in${i}`, `10.0.${i}.1`, { openedAt: i });
  const r = set.admitInbound('10.9.0.1', 100);
  assert.deepEqual(r, { ok: true, evict: 'in3' });
  set.remove(r.evict!);
  add(set, '10.9.0.1', { key: 'new', openedAt: 100 });
  assert.deepEqual(set.counts(), { total: 4, inbound: 4, outbound: 0, mustConnect: 0, active: 3 });
  assert.deepEqual(set.admitInbound('10.9.0.1', 100), { ok: true, evict: 'in2' }, 'the newcomer is not yet active, so not a candidate');
  assert.deepEqual(set.admitInbound('10.0.0.1', 100), { ok: true, evict: 'in2' });
});

test('caps are checked before eviction is considered', () => {
  const set = new PeerSet({ maxPeers: 3, maxOutbound: 0, maxPeersPerIp: 1, protect: NO_PROTECTION });
  cand(set, 'a', '10.0.0.1');
  cand(set, 'b', '10.0.1.1');
  cand(set, 'c', '10.0.2.1');
  assert.deepEqual(set.admitInbound('10.0.0.1', 0), { ok: false, reason: 'TOO_MANY_PER_IP' });
});

test('eviction takes the most crowded subnet first, youngest first; ties go to the subnet with the youngest peer', () => {
  const set = new PeerSet({ protect: NO_PROTECTION });
  cand(set, 'x1', '10.0.0.1', { openedAt: 1 });
  cand(set, 'x2', '10.0.0.2', { openedAt: 2 });
  cand(set, 'x3', '10.0.0.3', { openedAt: 3 });
  cand(set, 'y1', '10.0.1.1', { openedAt: 10 });
  cand(set, 'y2', '10.0.1.2', { openedAt: 11 });
  cand(set, 'z1', 'alice', { openedAt: 50 });
  const order: string[] = [];
  for (let k = set.selectEviction(100); k !== undefined; k = set.selectEviction(100)) {
    order.push(k);
    set.remove(k);
  }
  // x 3 > y 2: x3. Then x 2 = y 2, y is younger: y2. Then x 2: x2. Then 1-1-1, youngest z1, y1, x1.
  assert.deepEqual(order, ['x3', 'y2', 'x2', 'z1', 'y1', 'x1']);
});

test('eviction ties on age break by key', () => {
  const set = new PeerSet({ protect: NO_PROTECTION });
  cand(set, 'b', '10.0.0.2');
  cand(set, 'a', '10.0.0.1');
  cand(set, 'c', '10.0.1.1');
  assert.equal(set.selectEviction(0), 'b', 'crowded subnet, same age: the larger key counts as younger');
  set.remove('b');
  assert.equal(set.selectEviction(0), 'c');
});

test('protection: one peer per subnet, from the rarest subnets, oldest first', () => {
  const set = new PeerSet({ protect: { ...NO_PROTECTION, subnets: 2 } });
  cand(set, 'a1', '10.0.0.1', { openedAt: 1 });
  cand(set, 'a2', '10.0.0.2', { openedAt: 2 });
  cand(set, 'a3', '10.0.0.3', { openedAt: 3 });
  cand(set, 'b1', '10.0.1.1', { openedAt: 50 });
  cand(set, 'c1', '2001:db8::1', { openedAt: 60 });
  const order: string[] = [];
  for (let k = set.selectEviction(100); k !== undefined; k = set.selectEviction(100)) {
    order.push(k);
    set.remove(k);
  }
  // b1 and c1 are alone in their subnets and protected while a is crowded; once a is
  // down to a1, three singletons tie and the two oldest (a1, b1) are protected.
  assert.deepEqual(order, ['a3', 'a2', 'c1']);
  assert.deepEqual(set.slots().map((s) => s.key), ['a1', 'b1']);

  const one = new PeerSet({ protect: { ...NO_PROTECTION, subnets: 3 } });
  for (let i = 1; i <= 3; i++) cand(one, `a${i}`, `10.0.0.${i}`, { openedAt: i });
  assert.equal(one.selectEviction(100), 'a3');
  one.remove('a3');
  assert.equal(one.selectEviction(100), 'a2', 'one protected peer per subnet, however many the count allows');
  one.remove('a2');
  assert.equal(one.selectEviction(100), undefined);
});

test('protection: the lowest-RTT peers (measured only), ties by key', () => {
  const set = new PeerSet({ protect: { ...NO_PROTECTION, lowLatency: 2 } });
  cand(set, 'fast', '10.0.0.1', { openedAt: 30, rttMs: 10 });
  cand(set, 'medium', '10.0.0.2', { openedAt: 20, rttMs: 20 });
  cand(set, 'slow', '10.0.0.3', { openedAt: 10, rttMs: 30 });
  cand(set, 'unmeasured', '10.0.0.4', { openedAt: 5 });
  assert.equal(set.selectEviction(100), 'slow', 'the youngest two are protected by their RTT; the unmeasured one does not qualify');
  set.get('slow')!.rttMs = 1;
  assert.equal(set.selectEviction(100), 'medium', 'RTT is read when selecting');

  const tie = new PeerSet({ protect: { ...NO_PROTECTION, lowLatency: 1 } });
  cand(tie, 'a', '10.0.0.1', { openedAt: 2, rttMs: 5 });
  cand(tie, 'b', '10.0.0.2', { openedAt: 1, rttMs: 5 });
  assert.equal(tie.selectEviction(100), 'b', 'equal RTT: a is protected by key, so the older b goes');
});

test('protection: the most recently useful peers (never useful ones do not qualify)', () => {
  const set = new PeerSet({ protect: { ...NO_PROTECTION, useful: 2 } });
  cand(set, 'recent', '10.0.0.1', { openedAt: 30, lastUsefulAt: 90 });
  cand(set, 'earlier', '10.0.0.2', { openedAt: 20, lastUsefulAt: 80 });
  cand(set, 'stale', '10.0.0.3', { openedAt: 10, lastUsefulAt: 1 });
  cand(set, 'useless', '10.0.0.4', { openedAt: 5 });
  assert.equal(set.selectEviction(100), 'stale');
  set.get('useless')!.lastUsefulAt = 95;
  assert.equal(set.selectEviction(100), 'earlier', 'useless, now useful, takes the protection of earlier, the younger of the two left');
  set.get('stale')!.lastUsefulAt = 99;
  assert.equal(set.selectEviction(100), 'recent', 'recent lost its place to stale and useless; it is the youngest left');
});

test('protection: the longest-connected peers', () => {
  const set = new PeerSet({ protect: { ...NO_PROTECTION, longLived: 2 } });
  cand(set, 'oldest', '10.0.0.1', { openedAt: 1 });
  cand(set, 'old', '10.0.0.2', { openedAt: 2 });
  cand(set, 'young', '10.0.0.3', { openedAt: 3 });
  assert.equal(set.selectEviction(100), 'young');
  set.remove('young');
  assert.equal(set.selectEviction(100), undefined, 'everything left is protected');
});

test('protection steps apply in order, each to what the previous left', () => {
  const set = new PeerSet({ protect: { subnets: 1, lowLatency: 1, useful: 1, longLived: 1 } });
  cand(set, 'diverse', '10.0.1.1', { openedAt: 50 });
  cand(set, 'fast', '10.0.0.1', { openedAt: 70, rttMs: 1 });
  cand(set, 'useful', '10.0.0.2', { openedAt: 80, lastUsefulAt: 5 });
  cand(set, 'ancient', '10.0.0.3', { openedAt: 0 });
  cand(set, 'plain', '10.0.0.4', { openedAt: 60 });
  assert.equal(set.selectEviction(100), 'plain', 'the only unprotected candidate');
  // A peer protected by an earlier step does not use up a later one: diverse is now
  // the fastest, but the RTT slot still goes to the fastest of those left.
  set.get('diverse')!.rttMs = 0;
  assert.equal(set.selectEviction(100), 'plain');
  // plain now takes the RTT slot from fast; fast is not the oldest of the rest either.
  set.get('plain')!.rttMs = 0.5;
  assert.equal(set.selectEviction(100), 'fast');
});

test('with the default protection (24 slots), the 25th candidate is the victim; fewer and nothing is evictable', () => {
  const set = new PeerSet();
  // 4 lone subnets (diverse), youngest of all.
  for (let i = 0; i < 4; i++) cand(set, `diverse${i}`, `10.9.${i}.1`, { openedAt: 1000 + i });
  // 21 peers in three crowded subnets.
  const crowded = (i: number): string => `10.${i % 3}.0.${i + 1}`;
  let i = 0;
  for (let k = 0; k < 8; k++, i++) cand(set, `fast${k}`, crowded(i), { openedAt: 500 + i, rttMs: k });
  for (let k = 0; k < 4; k++, i++) cand(set, `useful${k}`, crowded(i), { openedAt: 500 + i, lastUsefulAt: 50 + k });
  for (let k = 0; k < 8; k++, i++) cand(set, `old${k}`, crowded(i), { openedAt: k });
  cand(set, 'victim', crowded(i), { openedAt: 400 });
  assert.equal(set.counts().active, 25);
  assert.equal(set.selectEviction(2000), 'victim');
  set.remove('victim');
  assert.equal(set.selectEviction(2000), undefined);

  const full = new PeerSet({ maxPeers: 27, maxOutbound: 3 });
  for (const s of set.slots()) full.add(s);
  assert.deepEqual(full.admitInbound('10.5.0.1', 2000), { ok: false, reason: 'PEER_LIMIT' }, 'everything protected');
});

// ---- scale ----

test('thousands of slots: admissions stay exact', () => {
  const set = new PeerSet({ maxPeers: 20_000, maxOutbound: 0, maxPeersPerIp: 2, maxPeersPerSubnet: 3 });
  let admitted = 0;
  for (let i = 0; i < 6000; i++) {
    const host = `10.${(i >> 8) & 0xff}.${i & 0xff}.${i % 5}`;
    if (set.admitInbound(host, i).ok) {
      add(set, host, { openedAt: i });
      admitted++;
    }
  }
  // Every i is in its own /24 (10.(i >> 8).(i & 255).x).
  assert.equal(admitted, 6000);
  for (let i = 0; i < 6000; i++) assert.equal(set.admitInbound(`10.${(i >> 8) & 0xff}.${i & 0xff}.200`, 0).ok, true);
  for (let j = 0; j < 2; j++) add(set, '10.0.0.100');
  assert.deepEqual(set.admitInbound('10.0.0.201', 0), { ok: false, reason: 'PEER_SUBNET_LIMIT' });
  assert.equal(set.counts().total, 6002);
});

// ---- property ----

const HOSTS = ['10.0.0.1', '10.0.0.2', '::ffff:10.0.0.1', '10.0.1.1', '2001:db8::1', '2001:db8::2', '2001:db8:0:1::1', 'alice', 'bob'];

type Op =
  | { t: 'in'; host: number; now: number; active: boolean }
  | { t: 'out'; host: number; must: boolean }
  | { t: 'mustIn'; host: number }
  | { t: 'remove'; pick: number }
  | { t: 'activate'; pick: number; rtt: number | undefined; useful: number | undefined }
  | { t: 'claim'; pick: number; peer: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('in' as const), host: fc.nat(HOSTS.length - 1), now: fc.nat(1000), active: fc.boolean() }), weight: 4 },
  fc.record({ t: fc.constant('out' as const), host: fc.nat(HOSTS.length - 1), must: fc.boolean() }),
  fc.record({ t: fc.constant('mustIn' as const), host: fc.nat(HOSTS.length - 1) }),
  fc.record({ t: fc.constant('remove' as const), pick: fc.nat() }),
  { arbitrary: fc.record({ t: fc.constant('activate' as const), pick: fc.nat(), rtt: fc.option(fc.nat(500), { nil: undefined }), useful: fc.option(fc.nat(1000), { nil: undefined }) }), weight: 2 },
  fc.record({ t: fc.constant('claim' as const), pick: fc.nat(), peer: fc.nat(6) }),
);

const optionsArb = fc
  .record({
    maxPeers: fc.nat(12),
    outShare: fc.double({ min: 0, max: 1, noNaN: true }),
    maxPeersPerIp: fc.nat(4),
    maxPeersPerSubnet: fc.nat(6),
    protect: fc.record({ subnets: fc.nat(2), lowLatency: fc.nat(2), useful: fc.nat(2), longLived: fc.nat(2) }),
  })
  .map(({ outShare, ...o }) => ({ ...o, maxOutbound: Math.floor(o.maxPeers * outShare) }));

function recount(slots: Slot[]): ReturnType<PeerSet['counts']> {
  return {
    total: slots.length,
    inbound: slots.filter((s) => s.direction === 'inbound').length,
    outbound: slots.filter((s) => s.direction === 'outbound').length,
    mustConnect: slots.filter((s) => s.mustConnect).length,
    active: slots.filter((s) => s.active).length,
  };
}

function tally(slots: Slot[], keyOf: (host: string) => string): number {
  const m = new Map<string, number>();
  for (const s of slots) m.set(keyOf(s.host), (m.get(keyOf(s.host)) ?? 0) + 1);
  return Math.max(0, ...m.values());
}

test('property: counts() matches a recount of slots(), and admitted peers never exceed the caps', () => {
  let evictions = 0;
  fc.assert(
    fc.property(optionsArb, fc.array(opArb, { minLength: 20, maxLength: 100 }), (options, ops) => {
      const set = new PeerSet(options);
      let n = 0;
      for (const op of ops) {
        const slots = set.slots();
        const picked = slots.length === 0 ? undefined : slots[('pick' in op ? op.pick : 0) % slots.length]!;
        switch (op.t) {
          case 'in': {
            const r = set.admitInbound(HOSTS[op.host]!, op.now);
            if (!r.ok) break;
            if (r.evict !== undefined) {
              const victim = set.get(r.evict);
              assert.ok(victim !== undefined && victim.active && victim.direction === 'inbound' && !victim.mustConnect);
              set.remove(r.evict);
              evictions++;
            }
            set.add({ key: `k${n++}`, direction: 'inbound', host: HOSTS[op.host]!, mustConnect: false, openedAt: op.now, active: op.active });
            break;
          }
          case 'out':
            if (set.admitOutbound(HOSTS[op.host]!, op.must).ok) {
              set.add({ key: `k${n++}`, direction: 'outbound', host: HOSTS[op.host]!, mustConnect: op.must, openedAt: n });
            } else assert.equal(op.must, false, 'a must-connect dial is never refused');
            break;
          case 'mustIn':
            set.add({ key: `k${n++}`, direction: 'inbound', host: HOSTS[op.host]!, mustConnect: true, openedAt: n, active: true });
            break;
          case 'remove':
            if (picked !== undefined) assert.equal(set.remove(picked.key), picked);
            break;
          case 'activate':
            if (picked !== undefined) Object.assign(picked, { active: true, rttMs: op.rtt, lastUsefulAt: op.useful });
            break;
          case 'claim':
            if (picked !== undefined && picked.peerId === undefined) {
              const held = slots.some((s) => s.peerId === `P${op.peer}`);
              const r = set.claimPeerId(picked.key, `P${op.peer}`, 'P0');
              if (op.peer === 0) assert.equal(r, 'PEER_SELF');
              else assert.equal(r, held ? 'PEER_DUPLICATE' : undefined);
            }
            break;
        }
        const all = set.slots();
        assert.deepEqual(set.counts(), recount(all));
        const capped = all.filter((s) => !s.mustConnect);
        assert.ok(tally(capped, addressKey) <= options.maxPeersPerIp, 'per-IP cap');
        assert.ok(tally(capped, subnetKey) <= options.maxPeersPerSubnet, 'per-subnet cap');
        assert.ok(capped.filter((s) => s.direction === 'outbound').length <= options.maxOutbound, 'outbound quota');
        assert.ok(capped.filter((s) => s.direction === 'inbound').length <= options.maxPeers - options.maxOutbound, 'inbound room');
        const ids = all.flatMap((s) => (s.peerId === undefined ? [] : [s.peerId]));
        assert.equal(new Set(ids).size, ids.length, 'one connection per peer-id');
        for (const id of ids) assert.equal(set.byPeerId(id)?.peerId, id);
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(evictions > 0, 'the runs exercised eviction (about 100 per 300 runs)');
});
