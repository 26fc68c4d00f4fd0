import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isPqnetError } from '../../src/core/errors.ts';
import { BanList, CidrSet, DEFAULT_BAN_OPTIONS, canonicalBanTarget, normalizeCidr, parseCidr } from '../../src/peer/bans.ts';
import type { BanKind, BanRecord, BanStore } from '../../src/peer/types.ts';
import { PeerId } from '../../src/secure/identity.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MEMORY = DEFAULT_BAN_OPTIONS.offenseMemoryMs;
const peer = (n: number): string => new PeerId(new Uint8Array(32).fill(n)).toString();

/** In-memory BanStore that records every call. */
class MemoryBanStore implements BanStore {
  readonly rows = new Map<string, BanRecord>();
  readonly calls: string[] = [];
  loadBans(): BanRecord[] {
    this.calls.push('load');
    return [...this.rows.values()];
  }
  saveBan(ban: BanRecord): void {
    this.calls.push(`save ${ban.kind} ${ban.target}`);
    this.rows.set(`${ban.kind} ${ban.target}`, ban);
  }
  deleteBan(kind: BanKind, target: string): void {
    this.calls.push(`delete ${kind} ${target}`);
    this.rows.delete(`${kind} ${target}`);
  }
}

const invalidArgument = (e: unknown): boolean => isPqnetError(e) && e.code === 'INVALID_ARGUMENT';

test('a first ban lasts baseBanMs and is saved at once', () => {
  const store = new MemoryBanStore();
  const bans = new BanList(store, {}, 0);
  const rec = bans.ban('peer', peer(1), 'PEER_LOW_SCORE', 1000, { note: 'score 0' });
  assert.deepEqual(rec, { kind: 'peer', target: peer(1), reason: 'PEER_LOW_SCORE', createdAt: 1000, expiresAt: 1000 + HOUR, offenses: 1, note: 'score 0' });
  assert.deepEqual(store.calls, ['load', `save peer ${peer(1)}`]);
  assert.equal(store.rows.get(`peer ${peer(1)}`), rec);
});

test('repeat bans escalate 1 h, 4 h, 16 h, … up to maxBanMs', () => {
  const bans = new BanList(undefined, {}, 0);
  const durations: number[] = [];
  let now = 0;
  for (let i = 0; i < 6; i++) {
    const rec = bans.ban('address', '192.0.2.1', 'OPERATOR_BAN', now);
    assert.equal(rec.offenses, i + 1);
    durations.push(rec.expiresAt - rec.createdAt);
    now = rec.expiresAt + DAY; // expired, but well within the memory
  }
  assert.deepEqual(durations, [HOUR, 4 * HOUR, 16 * HOUR, 64 * HOUR, 256 * HOUR, 30 * DAY]);
});

test('re-banning an active target escalates too', () => {
  const bans = new BanList(undefined, {}, 0);
  bans.ban('peer', peer(1), 'INVALID_BLOCK', 0);
  assert.equal(bans.ban('peer', peer(1), 'INVALID_BLOCK', 10).offenses, 2);
});

test('an explicit duration replaces the escalated one but still counts as an offense', () => {
  const bans = new BanList(undefined, {}, 0);
  bans.ban('peer', peer(1), 'OPERATOR_BAN', 0);
  const rec = bans.ban('peer', peer(1), 'OPERATOR_BAN', 0, { durationMs: 60_000 });
  assert.equal(rec.expiresAt, 60_000);
  assert.equal(rec.offenses, 2);
  assert.throws(() => bans.ban('peer', peer(1), 'OPERATOR_BAN', 0, { durationMs: 0 }), RangeError);
  assert.throws(() => bans.ban('peer', peer(1), 'OPERATOR_BAN', 0, { durationMs: Infinity }), RangeError);
});

test('after offenseMemoryMs past expiry, escalation starts over', () => {
  const bans = new BanList(undefined, {}, 0);
  const first = bans.ban('peer', peer(1), 'INVALID_BLOCK', 0);
  assert.equal(bans.ban('peer', peer(1), 'INVALID_BLOCK', first.expiresAt + MEMORY - 1).offenses, 2, 'just inside the memory');
  const second = bans.isBanned({ peerId: peer(1) }, first.expiresAt + MEMORY)!;
  assert.equal(bans.ban('peer', peer(1), 'INVALID_BLOCK', second.expiresAt + MEMORY).offenses, 1, 'just outside');
});

test('expired bans do not match; active lists only unexpired ones', () => {
  const bans = new BanList(undefined, {}, 0);
  const a = bans.ban('peer', peer(1), 'INVALID_BLOCK', 0);
  bans.ban('address', '198.51.100.0/24', 'OPERATOR_BAN', 0, { durationMs: 2 * HOUR });
  assert.equal(bans.isBanned({ peerId: peer(1) }, a.expiresAt - 1), a);
  assert.equal(bans.isBanned({ peerId: peer(1) }, a.expiresAt), undefined);
  assert.deepEqual(
    bans.active(a.expiresAt).map((r) => r.target),
    ['198.51.100.0/24'],
  );
  assert.deepEqual(bans.active(2 * HOUR), []);
});

test('isBanned checks the peer-id first, then the most specific address ban', () => {
  const bans = new BanList(undefined, {}, 0);
  const wide = bans.ban('address', '10.0.0.0/8', 'OPERATOR_BAN', 0, { durationMs: 10 * HOUR });
  const narrow = bans.ban('address', '10.1.2.0/24', 'OPERATOR_BAN', 0, { durationMs: HOUR });
  const byPeer = bans.ban('peer', peer(2), 'INVALID_BLOCK', 0);
  assert.equal(bans.isBanned({ peerId: peer(2), host: '10.1.2.3' }, 0), byPeer);
  assert.equal(bans.isBanned({ peerId: peer(3), host: '10.1.2.3' }, 0), narrow);
  assert.equal(bans.isBanned({ host: '10.1.2.3' }, HOUR), wide, 'the narrow ban expired; the wide one still covers the host');
  assert.equal(bans.isBanned({ host: '11.0.0.1' }, 0), undefined);
  assert.equal(bans.isBanned({ host: 'alice' }, 0), undefined, 'a memory-transport name matches no address ban');
  assert.equal(bans.isBanned({}, 0), undefined);
});

test('CIDR matching: IPv4, IPv6 and IPv4-mapped IPv6', () => {
  const bans = new BanList(undefined, {}, 0);
  bans.ban('address', '192.0.2.0/24', 'OPERATOR_BAN', 0);
  bans.ban('address', '2001:db8:aa::/48', 'OPERATOR_BAN', 0);
  bans.ban('address', '203.0.113.9', 'OPERATOR_BAN', 0);
  const banned = (host: string): boolean => bans.isBanned({ host }, 0) !== undefined;
  assert.ok(banned('192.0.2.0') && banned('192.0.2.255'));
  assert.ok(!banned('192.0.3.0') && !banned('192.0.1.255'));
  assert.ok(banned('2001:db8:aa::1') && banned('2001:DB8:AA:FFFF:FFFF:FFFF:FFFF:FFFF'));
  assert.ok(!banned('2001:db8:ab::1'));
  assert.ok(banned('::ffff:192.0.2.77') && banned('::FFFF:c000:0201'), 'mapped IPv6 matches the IPv4 range');
  assert.ok(banned('::ffff:203.0.113.9') && !banned('::ffff:203.0.113.10'));
  assert.ok(!banned('::192.0.2.1'), 'IPv4-compatible (not mapped) is IPv6');
  assert.ok(banned('2001:db8:aa::1%eth0'), 'a zone is ignored');
});

test('a ban given as mapped IPv6 is an IPv4 ban', () => {
  const bans = new BanList(undefined, {}, 0);
  assert.equal(bans.ban('address', '::ffff:192.0.2.0/120', 'OPERATOR_BAN', 0).target, '192.0.2.0/24');
  assert.ok(bans.isBanned({ host: '192.0.2.5' }, 0));
});

test('targets are canonicalised', () => {
  assert.equal(normalizeCidr('192.0.2.7/24'), '192.0.2.0/24');
  assert.equal(normalizeCidr('192.0.2.7'), '192.0.2.7');
  assert.equal(normalizeCidr('192.0.2.7/32'), '192.0.2.7');
  assert.equal(normalizeCidr('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(normalizeCidr('2001:db8::1/128'), '2001:db8::1');
  assert.equal(normalizeCidr('2001:db8:1:2:3:4:5:6/64'), '2001:db8:1:2::/64');
  assert.equal(normalizeCidr('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'first of two equal zero runs');
  assert.equal(normalizeCidr('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'a single zero group stays');
  assert.equal(normalizeCidr('::'), '::');
  assert.equal(normalizeCidr('0.0.0.0/0'), '0.0.0.0/0');
  assert.equal(normalizeCidr('::ffff:1.2.3.4'), '1.2.3.4');
  const bans = new BanList(undefined, {}, 0);
  bans.ban('address', '192.0.2.7/24', 'OPERATOR_BAN', 0);
  assert.equal(bans.ban('address', '192.0.2.0/24', 'OPERATOR_BAN', 0).offenses, 2, 'same target once canonical');
  assert.equal(bans.unban('address', '192.0.2.99/24'), true);
});

test('invalid targets are refused with INVALID_ARGUMENT naming them', () => {
  for (const t of ['', 'abc', '1.2.3', '256.0.0.1', '01.2.3.4', '1.2.3.4/33', '1.2.3.4/', '1.2.3.4/08', '::/129', '1::2::3', 'fe80::1%eth0', ' 1.2.3.4', 'tcp://1.2.3.4:1']) {
    assert.throws(() => normalizeCidr(t), (e: unknown) => invalidArgument(e) && (e as Error).message.includes(JSON.stringify(t)), t);
  }
  const bans = new BanList(undefined, {}, 0);
  assert.throws(() => bans.ban('address', '10.0.0.0/40', 'OPERATOR_BAN', 0), invalidArgument);
  assert.throws(() => bans.ban('peer', 'pq1notapeerid', 'OPERATOR_BAN', 0), invalidArgument);
  assert.throws(() => bans.ban('peer', peer(1).toUpperCase(), 'OPERATOR_BAN', 0), invalidArgument);
  assert.throws(() => canonicalBanTarget('host' as BanKind, '1.2.3.4'), invalidArgument);
  assert.deepEqual(bans.active(0), []);
});

test('unban lifts the ban, forgets the history and deletes it from the store', () => {
  const store = new MemoryBanStore();
  const bans = new BanList(store, {}, 0);
  bans.ban('peer', peer(1), 'INVALID_BLOCK', 0);
  bans.ban('peer', peer(1), 'INVALID_BLOCK', 0);
  assert.equal(bans.unban('peer', peer(1)), true);
  assert.equal(bans.unban('peer', peer(1)), false);
  assert.equal(bans.isBanned({ peerId: peer(1) }, 0), undefined);
  assert.equal(store.rows.size, 0);
  assert.equal(bans.ban('peer', peer(1), 'INVALID_BLOCK', 0).offenses, 1);
});

test('reloading from the store keeps active bans and escalation; long-forgotten ones are deleted', () => {
  const store = new MemoryBanStore();
  const first = new BanList(store, {}, 0);
  first.ban('peer', peer(1), 'INVALID_BLOCK', 0); // expires at 1 h
  first.ban('peer', peer(1), 'INVALID_BLOCK', 0); // 4 h, offense 2
  first.ban('address', '2001:db8::/32', 'OPERATOR_BAN', 0, { durationMs: 10 * DAY });
  first.ban('address', '192.0.2.1', 'OPERATOR_BAN', 0); // 1 h: forgotten at 1 h + memory

  const now = HOUR + MEMORY; // the 1 h address ban is just forgotten; the 4 h peer ban is remembered for 3 h more
  store.calls.length = 0;
  const second = new BanList(store, {}, now);
  assert.deepEqual(store.calls, ['load', 'delete address 192.0.2.1']);
  assert.equal(second.isBanned({ peerId: peer(1) }, now), undefined, 'expired');
  assert.equal(second.isBanned({ host: '2001:db8::5' }, now), undefined, 'expired too');
  assert.equal(second.ban('peer', peer(1), 'INVALID_BLOCK', now).offenses, 3, 'escalation survived the restart');
  assert.equal(second.ban('address', '192.0.2.1', 'OPERATOR_BAN', now).offenses, 1);

  const third = new BanList(store, {}, now + 1);
  assert.equal(third.isBanned({ peerId: peer(1) }, now + 1)?.expiresAt, now + 16 * HOUR);
  assert.equal(third.isBanned({ host: '::ffff:192.0.2.1' }, now + 1)?.offenses, 1);
});

test('a corrupt stored target fails loudly', () => {
  const store = new MemoryBanStore();
  store.rows.set('x', { kind: 'address', target: 'not an ip', reason: 'OPERATOR_BAN', createdAt: 0, expiresAt: HOUR, offenses: 1, note: '' });
  assert.throws(
    () => new BanList(store, {}, 0),
    (e: unknown) => isPqnetError(e) && e.code === 'STORE_CORRUPT',
  );
});

test('prune drops records past the memory, here and in the store', () => {
  const store = new MemoryBanStore();
  const bans = new BanList(store, {}, 0);
  bans.ban('peer', peer(1), 'INVALID_BLOCK', 0); // expires 1 h
  bans.ban('address', '10.0.0.0/8', 'OPERATOR_BAN', 0, { durationMs: 2 * HOUR });
  assert.equal(bans.prune(HOUR + MEMORY - 1), 0);
  store.calls.length = 0;
  assert.equal(bans.prune(HOUR + MEMORY), 1);
  assert.deepEqual(store.calls, [`delete peer ${peer(1)}`]);
  assert.equal(bans.prune(2 * HOUR + MEMORY), 1);
  assert.equal(store.rows.size, 0);
  assert.equal(bans.ban('address', '10.0.0.0/8', 'OPERATOR_BAN', 3 * HOUR + MEMORY).offenses, 1);
});

test('options are validated', () => {
  assert.throws(() => new BanList(undefined, { baseBanMs: 0 }, 0), RangeError);
  assert.throws(() => new BanList(undefined, { escalation: 0.5 }, 0), RangeError);
  assert.throws(() => new BanList(undefined, { maxBanMs: 1 }, 0), RangeError);
  const bans = new BanList(undefined, { baseBanMs: 10, escalation: 1, maxBanMs: 10 }, 0);
  assert.equal(bans.ban('peer', peer(1), 'OPERATOR_BAN', 0).expiresAt, 10);
  assert.equal(bans.ban('peer', peer(1), 'OPERATOR_BAN', 0).expiresAt, 10, 'escalation 1: constant');
});

test('CidrSet: delete removes an entry and leaves others', () => {
  const set = new CidrSet<string>();
  set.set(parseCidr('10.0.0.0/8'), 'a');
  set.set(parseCidr('10.0.0.0/16'), 'b');
  assert.deepEqual([...set.match('10.0.1.1')], ['b', 'a']);
  assert.equal(set.delete(parseCidr('10.0.0.0/16')), true);
  assert.equal(set.delete(parseCidr('10.0.0.0/16')), false);
  assert.equal(set.lookup('10.0.1.1'), 'a');
  assert.deepEqual([...set.values()], ['a']);
});

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const ipv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));

test('property: a host matches a range iff it agrees with the range on the prefix bits', () => {
  fc.assert(
    fc.property(fc.oneof(fc.tuple(ipv4, fc.nat(32)), fc.tuple(ipv6, fc.nat(128))), fc.oneof(ipv4, ipv6), ([net, len], host) => {
      const range = parseCidr(`${net}/${len}`);
      const set = new CidrSet<true>();
      set.set(range, true);
      const h = parseCidr(host);
      const width = h.version === 4 ? 32 : 128;
      const expected = h.version === range.version && h.bits >> BigInt(width - range.prefix) === range.bits >> BigInt(width - range.prefix);
      assert.equal(set.lookup(host) === true, expected);
      assert.equal(set.lookup(net), true, 'the network address itself is inside');
    }),
  );
});

test('property: canonical text parses back to itself', () => {
  fc.assert(
    fc.property(fc.oneof(fc.tuple(ipv4, fc.nat(32)), fc.tuple(ipv6, fc.nat(128))), ([ip, len]) => {
      const text = normalizeCidr(`${ip}/${len}`);
      assert.equal(normalizeCidr(text), text);
    }),
  );
});
