import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHostPort, parseHostPort, schemeOf } from '../../src/transport/address.ts';

test('parses tcp addresses with IPv4, names and bracketed IPv6', () => {
  assert.deepEqual(parseHostPort('tcp://127.0.0.1:41000'), { scheme: 'tcp', host: '127.0.0.1', port: 41000 });
  assert.deepEqual(parseHostPort('tcp://localhost:0', 'tcp'), { scheme: 'tcp', host: 'localhost', port: 0 });
  assert.deepEqual(parseHostPort('tcp://[::1]:9'), { scheme: 'tcp', host: '::1', port: 9 });
  assert.equal(formatHostPort('tcp', '::1', 9), 'tcp://[::1]:9');
  assert.equal(formatHostPort('tcp', '10.0.0.1', 9), 'tcp://10.0.0.1:9');
  assert.equal(schemeOf('ws://a:1'), 'ws');
});

test('rejects malformed addresses with ADDRESS_INVALID', () => {
  for (const bad of ['127.0.0.1:80', 'tcp://127.0.0.1', 'tcp://127.0.0.1:65536', 'tcp://[zz]:1', 'tcp://:80', 'tcp://a b:1', 'tcp://1.2.3.4:80/x', '']) {
    assert.throws(() => parseHostPort(bad), (e: { code?: string }) => e.code === 'ADDRESS_INVALID', bad);
  }
  assert.throws(() => parseHostPort('ws://1.2.3.4:80', 'tcp'), (e: { code?: string }) => e.code === 'ADDRESS_INVALID');
  assert.throws(() => schemeOf('nope'), (e: { code?: string }) => e.code === 'ADDRESS_INVALID');
});

test('host groups: IPv4 as is, IPv4-mapped unwrapped, IPv6 by its /64', async () => {
  const { hostGroupKey } = await import('../../src/transport/address.ts');
  assert.equal(hostGroupKey('10.1.2.3'), '10.1.2.3');
  assert.equal(hostGroupKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(hostGroupKey('2001:db8:1:2:3:4:5:6'), hostGroupKey('2001:db8:1:2::7'));
  assert.notEqual(hostGroupKey('2001:db8:1:2::7'), hostGroupKey('2001:db8:1:3::7'));
  assert.equal(hostGroupKey('2001:db8::'), '2001:db8::/64');
  // The hex spelling of an IPv4-mapped address is the same host as the dotted one,
  // and not the /64 that every IPv4-mapped address would share.
  assert.equal(hostGroupKey('::ffff:c000:0201'), '192.0.2.1');
  assert.notEqual(hostGroupKey('::ffff:c000:0201'), hostGroupKey('::ffff:c000:0202'));
  assert.equal(hostGroupKey('fe80::1%eth0'), 'fe80::/64');
  assert.equal(hostGroupKey('mem://a'), 'mem://a');
});
