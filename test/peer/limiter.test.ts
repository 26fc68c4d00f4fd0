import assert from 'node:assert/strict';
import test from 'node:test';
import { ConnectionLimiter } from '../../src/peer/limiter.ts';
import { Channel } from '../../src/wire/channels.ts';
import { defineMessage } from '../../src/wire/registry.ts';
import { bytes, tuple } from '../../src/wire/schema.ts';

const Plain = defineMessage({ id: 0x9001, name: 'plain', channel: Channel.GOSSIP, maxBytes: 64, schema: tuple(bytes(0, 32)) });
const Rated = defineMessage({ id: 0x9002, name: 'rated', channel: Channel.GOSSIP, maxBytes: 64, schema: tuple(bytes(0, 32)), ratePerSecond: 5 });

test('connection bucket: a burst of twice the rate, then drops until tokens accrue', () => {
  const l = new ConnectionLimiter({ messagesPerSecond: 10, bytesPerSecond: 1e9 }, 0);
  let admitted = 0;
  for (let i = 0; i < 50; i++) if (l.admit(Plain, 0) === undefined) admitted++;
  assert.equal(admitted, 20);
  assert.equal(l.dropped.messages, 30);
  // 100 ms later one token has accrued.
  assert.equal(l.admit(Plain, 100), undefined);
  assert.equal(l.admit(Plain, 100), 'MSG_RATE_LIMITED');
});

test('per-type bucket: its own rate, and a message the connection bucket refuses spends no per-type token', () => {
  const l = new ConnectionLimiter({ messagesPerSecond: 3, bytesPerSecond: 1e9 }, 0);
  // Connection burst 6: spend it on untyped messages.
  for (let i = 0; i < 6; i++) assert.equal(l.admit(Plain, 0), undefined);
  // The connection bucket is empty: rated messages are refused there, 20 times.
  for (let i = 0; i < 20; i++) assert.equal(l.admit(Rated, 0), 'MSG_RATE_LIMITED');
  assert.equal(l.dropped.messages, 20);
  assert.equal(l.dropped.type, 0);
  // Once the connection bucket refills (2 s → full burst of 6), the rated type still has its
  // whole burst of 10 unspent: 6 pass (connection-limited), none refused by the type bucket.
  for (let i = 0; i < 6; i++) assert.equal(l.admit(Rated, 2_000), undefined, `rated message ${i}`);
  assert.equal(l.dropped.type, 0);
});

test('per-type bucket refuses over its rate while the connection bucket has room', () => {
  const l = new ConnectionLimiter({ messagesPerSecond: 1000, bytesPerSecond: 1e9 }, 0);
  let admitted = 0;
  for (let i = 0; i < 30; i++) if (l.admit(Rated, 0) === undefined) admitted++;
  assert.equal(admitted, 10);
  assert.equal(l.dropped.type, 20);
  assert.equal(l.admit(Plain, 0), undefined, 'other types are unaffected');
});

test('byte bucket: charged chunks put it in debt, and new messages are dropped until it is repaid', () => {
  const l = new ConnectionLimiter({ messagesPerSecond: 1000, bytesPerSecond: 1000 }, 0);
  assert.equal(l.admit(Plain, 0), undefined);
  l.charge(5000, 0); // burst 2000: 3000 in debt
  assert.equal(l.admit(Plain, 0), 'MSG_RATE_LIMITED');
  assert.equal(l.dropped.bytes, 1);
  assert.equal(l.admit(Plain, 2_000), 'MSG_RATE_LIMITED', 'still 1000 in debt');
  assert.equal(l.admit(Plain, 3_000), undefined, 'repaid');
});
