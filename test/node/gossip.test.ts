import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { SystemClock } from '../../src/core/clock.ts';
import { GOSSIP_PROTOCOL, gossipMessages } from '../../src/gossip/messages.ts';
import { Gossip, type GossipMessage } from '../../src/node/gossip.ts';
import { addGossipMetrics } from '../../src/node/gossip-metrics.ts';
import type { Node } from '../../src/node/node.ts';
import { testNodes, until } from './_nodes.ts';

const FAST = { heartbeatMs: 100 };

async function line(t: ReturnType<typeof testNodes>, names: string[]): Promise<{ nodes: Node[]; gossip: Gossip[]; got: GossipMessage[][] }> {
  const clock = new SystemClock();
  const nodes = names.map((n) => t.make(n, { protocols: [GOSSIP_PROTOCOL] }));
  const gossip = nodes.map((n) => new Gossip(n, clock, { params: FAST }));
  const got: GossipMessage[][] = gossip.map(() => []);
  gossip.forEach((g, i) => g.on('message', (m) => got[i]!.push(m)));
  for (const n of nodes) await n.start();
  for (let i = 1; i < nodes.length; i++) await nodes[i - 1]!.connect(nodes[i]!.listenAddresses[0]!);
  return { nodes, gossip, got };
}

test('gossip over TCP: an item published at one end of a line reaches every node once, with its sender', async () => {
  const t = testNodes();
  try {
    const { gossip, got, nodes } = await line(t, ['a', 'b', 'c', 'd']);
    for (const g of gossip) g.subscribe('txs');
    await until(() => gossip.every((g) => g.router.meshPeers('txs').length >= 1) && gossip[1]!.router.meshPeers('txs').length === 2, 'mesh', 2_000);
    const registry = new Registry();
    const metrics = addGossipMetrics(gossip[1]!, registry);
    const item = new TextEncoder().encode('hello gossip');
    const id = gossip[0]!.publish('txs', item);
    await until(() => got.slice(1).every((g) => g.length === 1), 'delivery', 2_000);
    const text = await registry.metrics();
    metrics.close();
    assert.match(text, /p2p_gossip_messages_total\{topic="txs",outcome="accepted"\} 1\n/);
    assert.match(text, /p2p_gossip_peers\{topic="txs",kind="mesh"\} 2\n/);
    assert.match(text, /p2p_gossip_fanout_count\{topic="txs"\} 1\n/, 'b forwarded the item once');
    assert.match(text, /p2p_gossip_delivery_seconds_count\{topic="txs"\} 1\n/);
    assert.equal(got[0]!.length, 0, 'the publisher is not delivered its own item');
    for (let i = 1; i < 4; i++) {
      assert.deepEqual(got[i]![0]!.payload, item);
      assert.deepEqual(got[i]![0]!.id, id);
      assert.equal(got[i]![0]!.from, nodes[i - 1]!.peerId);
    }
  } finally {
    await t.cleanup();
  }
});

test('gossip over TCP: a peer pushing invalid items is penalised by the validator and banned', async () => {
  const t = testNodes();
  try {
    const { gossip, nodes } = await line(t, ['v', 'spam']);
    gossip[0]!.setValidator('txs', (payload) => Promise.resolve(payload[0] === 0xff ? 'reject' : 'accept'));
    for (const g of gossip) g.subscribe('txs');
    const spammer = nodes[1]!;
    await until(() => gossip[0]!.router.topicPeers('txs').length === 1, 'subscription', 2_000);
    // The spammer's own router would never forward these; it sends raw items.
    for (let i = 0; i < 10; i++) {
      await spammer.send(nodes[0]!.peerId, gossipMessages.item.transactions, ['txs', new Uint8Array([0xff, i])]).catch(() => undefined);
    }
    await until(() => nodes[0]!.bans().some((b) => b.target === spammer.peerId), 'ban', 2_000);
    const s = gossip[0]!.stats().topics.txs!;
    assert.ok(s.received.rejected >= 4, `rejected ${s.received.rejected}`);
    assert.equal(s.received.accepted, 0);
  } finally {
    await t.cleanup();
  }
});

test('gossip over TCP: a validator that throws makes the item ignored and reports a fault', async () => {
  const t = testNodes();
  try {
    const { gossip, got } = await line(t, ['a', 'b']);
    const faults: unknown[] = [];
    gossip[1]!.on('fault', (e) => faults.push(e));
    gossip[1]!.setValidator('votes', () => {
      throw new Error('validator bug');
    });
    for (const g of gossip) g.subscribe('votes');
    await until(() => gossip[0]!.router.topicPeers('votes').length === 1, 'subscription', 2_000);
    gossip[0]!.publish('votes', new Uint8Array([1, 2, 3]));
    await until(() => faults.length === 1, 'fault', 2_000);
    assert.equal(got[1]!.length, 0);
    assert.equal(gossip[1]!.stats().topics.votes!.received.ignored, 1);
  } finally {
    await t.cleanup();
  }
});

test('gossip: peers that do not announce the gossip protocol are not gossip peers', async () => {
  const t = testNodes();
  try {
    const clock = new SystemClock();
    const a = t.make('a', { protocols: [GOSSIP_PROTOCOL] });
    const b = t.make('b');
    const ga = new Gossip(a, clock, { params: FAST });
    new Gossip(b, clock, { params: FAST });
    ga.subscribe('txs');
    await a.start();
    await b.start();
    await a.connect(b.listenAddresses[0]!);
    assert.equal(ga.router.peerStatus(b.peerId, 0), undefined);
    assert.equal(ga.router.topicPeers('txs').length, 0);
  } finally {
    await t.cleanup();
  }
});
