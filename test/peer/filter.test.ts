import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPqnetError } from '../../src/core/errors.ts';
import { AddressFilter } from '../../src/peer/filter.ts';

test('with no lists every host passes', () => {
  const f = new AddressFilter();
  for (const host of ['127.0.0.1', '::1', '203.0.113.5', 'alice']) assert.deepEqual(f.check(host), { ok: true });
});

test('deny refuses matching hosts and names the rule', () => {
  const f = new AddressFilter({ deny: ['10.0.0.0/8', '2001:db8::/32', '198.51.100.7'] });
  assert.deepEqual(f.check('10.1.2.3'), { ok: false, reason: 'PEER_DENIED', rule: 'deny 10.0.0.0/8' });
  assert.deepEqual(f.check('2001:db8:1::1'), { ok: false, reason: 'PEER_DENIED', rule: 'deny 2001:db8::/32' });
  assert.deepEqual(f.check('198.51.100.7'), { ok: false, reason: 'PEER_DENIED', rule: 'deny 198.51.100.7' });
  assert.deepEqual(f.check('198.51.100.8'), { ok: true });
  assert.deepEqual(f.check('11.0.0.1'), { ok: true });
  assert.deepEqual(f.check('2001:db9::1'), { ok: true });
});

test('a non-empty allow list refuses everything else, loopback and non-IP hosts included', () => {
  const f = new AddressFilter({ allow: ['192.0.2.0/24', '2001:db8::/48'] });
  assert.deepEqual(f.check('192.0.2.200'), { ok: true });
  assert.deepEqual(f.check('2001:db8:0:ffff::1'), { ok: true });
  for (const host of ['192.0.3.1', '127.0.0.1', '::1', '2001:db8:1::1', 'alice']) {
    assert.deepEqual(f.check(host), { ok: false, reason: 'PEER_DENIED', rule: 'not in allow list' }, host);
  }
});

test('deny wins over allow, the most specific deny entry is named', () => {
  const f = new AddressFilter({ allow: ['10.0.0.0/8'], deny: ['10.9.0.0/16', '10.9.9.0/24'] });
  assert.deepEqual(f.check('10.1.1.1'), { ok: true });
  assert.deepEqual(f.check('10.9.9.9'), { ok: false, reason: 'PEER_DENIED', rule: 'deny 10.9.9.0/24' });
  assert.deepEqual(f.check('10.9.8.1'), { ok: false, reason: 'PEER_DENIED', rule: 'deny 10.9.0.0/16' });
});

test('IPv4-mapped IPv6 hosts match IPv4 entries, and mapped entries match IPv4 hosts', () => {
  const f = new AddressFilter({ allow: ['192.0.2.0/24'], deny: ['::ffff:192.0.2.128/121'] });
  assert.deepEqual(f.check('::ffff:192.0.2.1'), { ok: true });
  assert.deepEqual(f.check('::ffff:192.0.2.200'), { ok: false, reason: 'PEER_DENIED', rule: 'deny 192.0.2.128/25' });
  assert.deepEqual(f.check('192.0.2.200'), { ok: false, reason: 'PEER_DENIED', rule: 'deny 192.0.2.128/25' });
});

test('entries are kept in canonical form, without duplicates', () => {
  const f = new AddressFilter({ allow: ['192.0.2.7/24', '192.0.2.0/24', '2001:DB8:0::/32'], deny: ['::ffff:10.0.0.1'] });
  assert.deepEqual(f.allow, ['192.0.2.0/24', '2001:db8::/32']);
  assert.deepEqual(f.deny, ['10.0.0.1']);
});

test('an invalid entry is refused with INVALID_ARGUMENT naming it', () => {
  for (const [opts, bad] of [
    [{ allow: ['10.0.0.0/8', 'example.com'] }, 'example.com'],
    [{ deny: ['10.0.0.0/33'] }, '10.0.0.0/33'],
    [{ deny: ['fe80::1%eth0'] }, 'fe80::1%eth0'],
  ] as const) {
    assert.throws(
      () => new AddressFilter(opts),
      (e: unknown) => isPqnetError(e) && e.code === 'INVALID_ARGUMENT' && e.message.includes(JSON.stringify(bad)),
      bad,
    );
  }
});
