import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { PqnetError } from '../../src/core/errors.ts';
import type { PeerInfo } from '../../src/node/node.ts';
import { Echo, payload, Tx, Vote } from '../mux/_types.ts';
import { rejectsWith, settle } from '../mux/_pair.ts';
import { testNodes, until } from './_nodes.ts';

test('two nodes connect, exchange HELLO and identify, measure RTT, talk on channels and by request', async () => {
  const t = testNodes();
  try {
    const a = t.make('a', { height: () => 42, protocols: ['test/extra/1', 'only-a/1'], timers: { pingIntervalMs: 50 } });
    const b = t.make('b', { height: () => 7, protocols: ['test/extra/1'], capabilities: 3 });
    for (const n of [a, b]) {
      n.register(Vote);
      n.register(Tx);
      n.registerRequest(Echo);
    }
    const got: [string, string][] = [];
    b.subscribe(Vote, ([v], peer) => void got.push([peer.peerId!, String(v.length)]));
    b.handle(Echo, ([text, n], peer) => {
      assert.equal(peer.peerId, a.peerId);
      return payload(n + text.length);
    });
    await a.start();
    await b.start();
    const info = await a.connect(b.listenAddresses[0]!);
    assert.equal(info.peerId, b.peerId);
    assert.equal(info.state, 'active');
    assert.equal(info.height, 7);
    assert.equal(info.capabilities, 3);
    assert.equal(info.agent, 'test/b');
    assert.deepEqual(info.protocols, ['test/extra/1']);
    assert.deepEqual(info.listenAddresses, b.listenAddresses);
    assert.ok(Math.abs(info.clockSkewMs!) < 5_000);
    await until(() => b.peer(a.peerId)?.state === 'active', 'b to see a active');
    assert.equal(b.peer(a.peerId)!.height, 42);
    assert.equal(b.peer(a.peerId)!.direction, 'inbound');

    await a.send(b.peerId, Vote, [payload(100)]);
    assert.equal(a.broadcast(Vote, [payload(5)]), 1);
    await until(() => got.length === 2, 'two votes');
    assert.deepEqual(got, [
      [a.peerId, '100'],
      [a.peerId, '5'],
    ]);
    assert.deepEqual(await a.request(b.peerId, Echo, ['abc', 10]), payload(13));
    await until(() => a.peer(b.peerId)!.rttMs !== undefined, 'an RTT sample');
    assert.ok(a.peer(b.peerId)!.rttMs! >= 0);

    const h = a.health();
    assert.equal(h.peers.active, 1);
    assert.equal(h.outbound, 1);
    assert.equal(h.peerBook, 1);

    // Graceful stop: the remote learns why.
    const closed = once(b, 'peer:closed') as Promise<[PeerInfo, PqnetError]>;
    await a.stop();
    const [, reason] = await closed;
    assert.equal(reason.code, 'REMOTE_CLOSED');
    assert.equal(reason.details?.remoteReason, 'SHUTDOWN');
  } finally {
    await t.cleanup();
  }
});

test('one connection per peer-id, no connection to ourselves', async () => {
  const t = testNodes();
  try {
    const a = t.make('a');
    const b = t.make('b');
    await a.start();
    await b.start();
    const [lo, hi] = a.peerId < b.peerId ? [a, b] : [b, a];
    const kept = await lo.connect(hi.listenAddresses[0]!);
    // hi dialling lo while lo is connected to hi: hi's connection is the one the higher peer-id
    // dialled, so both sides refuse it, and connect() resolves with the connection that stays.
    const again = await hi.connect(lo.listenAddresses[0]!);
    assert.equal(again.peerId, lo.peerId);
    assert.equal(again.direction, 'inbound');
    await until(() => a.peers().length === 1 && b.peers().length === 1, 'one connection each');
    assert.equal(lo.peers()[0]!.key, kept.key);
    assert.equal((hi.health().disconnects['PEER_DUPLICATE'] ?? 0) + (hi.health().disconnects['REMOTE_CLOSED'] ?? 0), 1, JSON.stringify(hi.health().disconnects));
    // lo knows who answers at hi's address: connecting again resolves with the connection it has.
    const twice = await lo.connect(hi.listenAddresses[0]!);
    assert.equal(twice.key, kept.key);
    const self = await a.connect(a.listenAddresses[0]!).then(
      () => 'connected',
      (e: PqnetError) => e.code,
    );
    assert.ok(['HS_SELF_CONNECT', 'PEER_SELF'].includes(self), self);
    await until(() => a.peers().length === 1 && b.peers().length === 1, 'one peer each');
    assert.equal(lo.peers()[0]!.key, kept.key);
  } finally {
    await t.cleanup();
  }
});

test('connect() to an address already being dialled waits for that dial instead of failing', async () => {
  const t = testNodes();
  try {
    const a = t.make('a');
    const b = t.make('b');
    await a.start();
    await b.start();
    const addr = b.listenAddresses[0]!;
    const [first, second] = await Promise.all([a.connect(addr), a.connect(addr)]);
    assert.equal(first.peerId, b.peerId);
    assert.equal(second.key, first.key, 'the same connection');
    assert.equal(a.peers().length, 1);
  } finally {
    await t.cleanup();
  }
});

test('simultaneous dials: both sides keep the connection the lower peer-id dialled', async () => {
  const t = testNodes();
  try {
    const a = t.make('a');
    const b = t.make('b');
    await a.start();
    await b.start();
    const lower = a.peerId < b.peerId ? a : b;
    for (let round = 0; round < 5; round++) {
      const [ab, ba] = await Promise.all([a.connect(b.listenAddresses[0]!), b.connect(a.listenAddresses[0]!)]);
      assert.equal(ab.peerId, b.peerId);
      assert.equal(ba.peerId, a.peerId);
      await until(() => a.peers().length === 1 && b.peers().length === 1, `round ${round}: one connection each`);
      const [pa, pb] = [a.peers()[0]!, b.peers()[0]!];
      assert.equal(pa.state, 'active');
      assert.equal(pb.state, 'active');
      // The same connection on both sides: outbound at the lower peer-id.
      assert.equal(pa.direction, lower === a ? 'outbound' : 'inbound', `round ${round}`);
      assert.equal(pb.direction, lower === b ? 'outbound' : 'inbound', `round ${round}`);
      const gone = once(b, 'peer:closed');
      a.disconnect(b.peerId);
      await gone;
      await until(() => a.peers().length === 0 && b.peers().length === 0, `round ${round}: disconnected`);
    }
  } finally {
    await t.cleanup();
  }
});

test('must-connect peers configured on both sides settle on one connection', async () => {
  const t = testNodes();
  try {
    const b = t.make('b');
    await b.start();
    const bAddress = b.listenAddresses[0]!;
    await b.stop();
    const a = t.make('a');
    await a.start();
    const aAddress = a.listenAddresses[0]!;
    await a.stop();
    const a2 = t.make('a', { listen: [aAddress], mustConnect: [{ address: bAddress }] });
    const b2 = t.make('b', { listen: [bAddress], mustConnect: [{ address: aAddress }] });
    await Promise.all([a2.start(), b2.start()]);
    await until(() => a2.peers().some((p) => p.state === 'active') && b2.peers().some((p) => p.state === 'active'), 'connected');
    // Several maintenance rounds (50 ms each): no further dials, and the one connection stays.
    const closedBefore = Object.values(a2.health().disconnects).reduce((x, y) => x + y, 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(a2.peers().length, 1);
    assert.equal(b2.peers().length, 1);
    assert.equal(Object.values(a2.health().disconnects).reduce((x, y) => x + y, 0), closedBefore, JSON.stringify(a2.health().disconnects));
    // Both sides hold it as a must-connect peer, whichever side dialled it.
    assert.equal(a2.peers()[0]!.mustConnect, true);
    assert.equal(b2.peers()[0]!.mustConnect, true);
  } finally {
    await t.cleanup();
  }
});

test('bans: a banned peer is disconnected, and its reconnect is refused before the handshake; a restarted node remembers bans and its peer book', async () => {
  const t = testNodes();
  try {
    const a = t.make('a');
    const b = t.make('b');
    await a.start();
    await b.start();
    await b.connect(a.listenAddresses[0]!);
    await until(() => a.peers().length === 1, 'a to see b');
    const closed = once(b, 'peer:closed') as Promise<[PeerInfo, PqnetError]>;
    a.ban({ peerId: b.peerId }, { note: 'test' });
    a.ban({ address: '127.0.0.1' }, { durationMs: 60_000 });
    const [, reason] = await closed;
    assert.equal(reason.details?.remoteReason, 'PEER_BANNED');
    // Refused silently at accept: b's handshake just fails; a spent no handshake work on it.
    const work = a.health().handshakesInProgress;
    await assert.rejects(b.connect(a.listenAddresses[0]!));
    assert.equal(a.health().rejects['PEER_BANNED'], 1);
    assert.equal(work, 0);
    assert.equal(a.peers().length, 0);

    const address = a.listenAddresses[0]!;
    await a.stop();
    await b.stop();
    const a2 = t.make('a', { listen: [] });
    await a2.start();
    const bans = a2.bans().map((x) => `${x.kind}:${x.target}`).sort();
    assert.deepEqual(bans, ['address:127.0.0.1', `peer:${b.peerId}`]);
    const b2 = t.make('b', { listen: [] });
    await b2.start();
    assert.equal(b2.health().peerBook, 1, `b remembers ${address}`);
  } finally {
    await t.cleanup();
  }
});

test('a full node evicts an unprotected inbound peer to admit a new one', async () => {
  const t = testNodes();
  try {
    const hub = t.make('hub', {
      peerSet: { maxPeers: 3, maxOutbound: 1, maxPeersPerIp: 10, maxPeersPerSubnet: 10, protect: { subnets: 0, lowLatency: 0, useful: 0, longLived: 1 } },
    });
    const [c1, c2, c3] = [t.make('c1'), t.make('c2'), t.make('c3')];
    for (const n of [hub, c1, c2, c3]) await n.start();
    await c1.connect(hub.listenAddresses[0]!);
    await c2.connect(hub.listenAddresses[0]!);
    await until(() => hub.peers().filter((p) => p.state === 'active').length === 2, 'two inbound peers');
    // The inbound room (3 - 1 outbound) is full: c3 gets in by evicting c2 (c1 is protected as the longest connected).
    const evicted = once(c2, 'peer:closed') as Promise<[PeerInfo, PqnetError]>;
    await c3.connect(hub.listenAddresses[0]!);
    const [, reason] = await evicted;
    assert.equal(reason.details?.remoteReason, 'PEER_EVICTED');
    await until(() => hub.peers().length === 2, 'two peers again');
    assert.deepEqual(hub.peers().map((p) => p.peerId).sort(), [c1.peerId, c3.peerId].sort());
  } finally {
    await t.cleanup();
  }
});

test('a connection the listener\'s own caps refuse evicts nobody', async () => {
  const t = testNodes();
  try {
    // Full after two inbound peers, and the listener allows 127.0.0.1 two handshakes (then one per 1,000 s).
    const hub = t.make('hub', {
      peerSet: { maxPeers: 3, maxOutbound: 1, maxPeersPerIp: 10, maxPeersPerSubnet: 10, protect: { subnets: 0, lowLatency: 0, useful: 0, longLived: 1 } },
      limits: { handshakesPerHostPerSecond: 0.001, handshakeBurstPerHost: 2 },
    });
    const [c1, c2, c3] = [t.make('c1'), t.make('c2'), t.make('c3')];
    for (const n of [hub, c1, c2, c3]) await n.start();
    await c1.connect(hub.listenAddresses[0]!);
    await c2.connect(hub.listenAddresses[0]!);
    await until(() => hub.peers().filter((p) => p.state === 'active').length === 2, 'two inbound peers');
    // The peer set would evict c2 for c3, but the listener's rate cap refuses c3 first.
    const refused = await rejectsWith(c3.connect(hub.listenAddresses[0]!), 'HS_REJECTED');
    assert.match(refused.message, /HS_RATE_LIMITED/);
    await settle();
    assert.deepEqual(hub.peers().map((p) => [p.peerId, p.state]).sort(), [[c1.peerId, 'active'], [c2.peerId, 'active']].sort());
    assert.equal(hub.health().disconnects['PEER_EVICTED'], undefined);
  } finally {
    await t.cleanup();
  }
});

test('must-connect peers are redialled with backoff until they answer', async () => {
  const t = testNodes();
  try {
    const b = t.make('b');
    await b.start();
    const address = b.listenAddresses[0]!;
    await b.stop();
    const a = t.make('a', { mustConnect: [{ address, peerId: b.peerId }] });
    await a.start();
    await until(() => (a.health().disconnects['DIAL_FAILED'] ?? 0) + (a.health().disconnects['IO_ERROR'] ?? 0) >= 1, 'a failed dial');
    const b2 = t.make('b', { listen: [address] });
    await b2.start();
    await until(() => a.peer(b.peerId)?.state === 'active', 'a to reach b once it is back', 3_000);
    assert.equal(a.peer(b.peerId)!.mustConnect, true);
  } finally {
    await t.cleanup();
  }
});
