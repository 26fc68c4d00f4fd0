import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPqnetError } from '../../src/core/errors.ts';
import { TopicTable } from '../../src/gossip/topics.ts';
import { fullNet, payloadOf, RouterNet } from './_net.ts';

function meshSymmetric(net: RouterNet, topic: string): void {
  for (const [name, r] of net.routers) {
    for (const m of r.meshPeers(topic)) assert.ok(net.get(m).meshPeers(topic).includes(name), `${name} has ${m} in its mesh but not the reverse`);
  }
}

test('mesh: every node settles within [D_low, D_high], symmetric, and keeps D_out outbound', () => {
  const net = fullNet(20);
  net.subscribe('blocks');
  net.advance(5_000);
  for (const [name, r] of net.routers) {
    const mesh = r.meshPeers('blocks');
    assert.ok(mesh.length >= r.params.Dlo && mesh.length <= r.params.Dhi, `${name}: mesh ${mesh.length}`);
  }
  meshSymmetric(net, 'blocks');
  // Nodes that dialled others (all but the last) keep at least D_out outbound members once they have D_low.
  const r0 = net.get('n0');
  assert.equal(r0.topicPeers('blocks').length, 19);
});

test('publish reaches every subscriber; each node validates the item once and duplicates are counted', () => {
  const net = fullNet(12);
  net.subscribe('txs');
  net.advance(3_000);
  const item = payloadOf(1);
  net.publish('n0', 'txs', item);
  assert.deepEqual(net.receivers(item), new Set([...net.routers.keys()].filter((n) => n !== 'n0')));
  const perNode = new Map<string, number>();
  for (const v of net.validations) perNode.set(v.node, (perNode.get(v.node) ?? 0) + 1);
  for (const [n, c] of perNode) assert.equal(c, 1, `${n} validated ${c} times`);
  const dup = [...net.routers.values()].reduce((s, r) => s + (r.stats().topics.txs?.received.duplicate ?? 0), 0);
  assert.ok(dup > 0, 'mesh forwarding produces some duplicates, which are counted');
  // Nobody forwards back to the node it got the item from.
  const firstFrom = new Map(net.delivered.map((d) => [d.node, d.from]));
  for (const s of net.items()) if (s.from !== 'n0') assert.notEqual(firstFrom.get(s.from), s.to);
});

test('a local duplicate publish and an unknown topic are refused with typed errors', () => {
  const net = fullNet(3);
  net.subscribe('txs');
  net.publish('n0', 'txs', payloadOf(7));
  assert.throws(() => net.publish('n0', 'txs', payloadOf(7)), (e) => isPqnetError(e) && e.code === 'GOSSIP_DUPLICATE');
  assert.throws(() => net.publish('n0', 'nope', payloadOf(7)), (e) => isPqnetError(e) && e.code === 'GOSSIP_UNKNOWN_TOPIC');
  assert.throws(() => net.publish('n0', 'votes', new Uint8Array(16 * 1024 + 1)), (e) => isPqnetError(e) && e.code === 'GOSSIP_OVERSIZE');
});

test('reject: the sender is penalised, the item goes no further, and a later copy from another peer is penalised too', () => {
  const net = fullNet(4);
  net.subscribe('txs');
  net.advance(2_000);
  net.validators.set('n1', () => 'reject');
  const bad = payloadOf(99);
  net.inject('n3', 'n1', 'txs', bad);
  assert.deepEqual(net.penalties.map((p) => [p.by, p.peer, p.reason]), [['n1', 'n3', 'GOSSIP_INVALID']]);
  assert.equal(net.items((s) => s.from === 'n1').length, 0, 'a rejected item is not forwarded');
  assert.equal(net.get('n1').stats().topics.txs!.received.rejected, 1);
  net.inject('n2', 'n1', 'txs', bad);
  assert.equal(net.penalties.filter((p) => p.peer === 'n2' && p.reason === 'GOSSIP_INVALID').length, 1);
  assert.equal(net.validations.filter((v) => v.node === 'n1').length, 1, 'validated once');
});

test('ignore: not forwarded, not delivered, no penalty', () => {
  const net = fullNet(4);
  net.subscribe('txs');
  net.advance(2_000);
  net.validators.set('n1', () => 'ignore');
  net.inject('n3', 'n1', 'txs', payloadOf(5));
  assert.equal(net.penalties.length, 0);
  assert.equal(net.items((s) => s.from === 'n1').length, 0);
  assert.equal(net.delivered.filter((d) => d.node === 'n1').length, 0);
  assert.equal(net.get('n1').stats().topics.txs!.received.ignored, 1);
});

test('rate cap: pushes beyond the topic bucket are dropped and penalised; the bucket refills with time', () => {
  const net = fullNet(2);
  net.subscribe('blocks');
  // blocks: 60 per minute, burst 10.
  for (let i = 0; i < 15; i++) net.inject('n1', 'n0', 'blocks', payloadOf(i));
  const s = net.get('n0').stats().topics.blocks!.received;
  assert.equal(s.accepted, 10);
  assert.equal(s.rate_limited, 5);
  assert.equal(net.penalties.filter((p) => p.reason === 'GOSSIP_RATE_LIMITED').length, 5);
  net.advance(2_000);
  net.inject('n1', 'n0', 'blocks', payloadOf(100));
  assert.equal(net.get('n0').stats().topics.blocks!.received.accepted, 11);
});

test('oversize items are dropped with GOSSIP_OVERSIZE', () => {
  const net = fullNet(2);
  net.subscribe('votes');
  net.inject('n1', 'n0', 'votes', new Uint8Array(16 * 1024 + 1));
  assert.deepEqual(net.penalties.map((p) => p.reason), ['GOSSIP_OVERSIZE']);
  assert.equal(net.validations.length, 0);
});

test('items for topics we do not subscribe to, or unknown topics, are dropped without penalty', () => {
  const net = fullNet(2);
  net.subscribe('txs', 'n1');
  net.inject('n1', 'n0', 'txs', payloadOf(1));
  net.inject('n1', 'n0', 'no-such-topic', payloadOf(2));
  assert.equal(net.get('n0').stats().topics.txs!.received.unsubscribed, 1);
  assert.equal(net.validations.length, 0);
  assert.equal(net.penalties.length, 0);
});

test('greylist rule: nothing is taken from or sent to a peer below the greylist score', () => {
  const net = fullNet(3);
  net.subscribe('txs');
  net.advance(2_000);
  net.scores.get('n0')!.set('n2', 20);
  net.inject('n2', 'n0', 'txs', payloadOf(1));
  assert.equal(net.get('n0').stats().topics.txs!.received.greylisted, 1);
  net.publish('n0', 'txs', payloadOf(2));
  assert.equal(net.items((s) => s.from === 'n0' && s.to === 'n2').length, 0);
  net.advance(1_000);
  assert.ok(!net.get('n0').meshPeers('txs').includes('n2'), 'a greylisted peer leaves the mesh');
});

test('IHAVE/IWANT: a node outside the mesh learns ids by gossip and pulls the item', () => {
  // n0 publishes to its mesh only (no flood publishing); n5 is connected to n0 alone and not in its mesh.
  const net = new RouterNet({ D: 2, Dlo: 2, Dhi: 3, Dscore: 1, Dout: 1, Dlazy: 1, floodPublish: false });
  for (let i = 0; i < 6; i++) net.add(`n${i}`);
  for (let i = 1; i < 5; i++) net.connect('n0', `n${i}`);
  net.connect('n5', 'n0');
  net.subscribe('txs', 'n0', 'n1', 'n2', 'n3', 'n4');
  net.advance(3_000);
  net.subscribe('txs', 'n5');
  // Keep n5 out of n0's mesh: n0's mesh is full enough and n5 is in backoff.
  net.injectControl('n0', 'n5', { prune: [['txs', 60]] });
  net.injectControl('n5', 'n0', { prune: [['txs', 60]] });
  net.advance(1_000);
  assert.ok(!net.get('n0').meshPeers('txs').includes('n5'));
  const item = payloadOf(3);
  net.publish('n0', 'txs', item);
  assert.ok(!net.receivers(item).has('n5'), 'not pushed');
  net.advance(3_000);
  assert.ok(net.receivers(item).has('n5'), 'pulled after IHAVE');
  assert.ok(net.controls((c) => c.from === 'n5' && c.control.iwant.length > 0).length >= 1);
});

test('a broken IWANT promise is penalised and the next peer that offered the item is asked', () => {
  const net = fullNet(3, { floodPublish: false });
  net.subscribe('txs');
  const item = payloadOf(4);
  // n0 and n2 both offer the item to n1 by IHAVE, but n0 never answers.
  const { id } = net.get('n2').publish('txs', item, net.now);
  net.silent.add('n0');
  net.injectControl('n0', 'n1', { ihave: [['txs', [id]]] });
  net.injectControl('n2', 'n1', { ihave: [['txs', [id]]] });
  assert.equal(net.controls((c) => c.from === 'n1' && c.control.iwant.length > 0).length, 1, 'one IWANT at a time');
  net.advance(3_100);
  assert.ok(net.penalties.some((p) => p.by === 'n1' && p.peer === 'n0' && p.reason === 'GOSSIP_BROKEN_PROMISE'));
  assert.ok(net.receivers(item).has('n1'), 'fetched from the second offerer');
});

test('IDONTWANT: a large item makes the receiver tell its other mesh peers, who then do not push it', () => {
  const topics = (): TopicTable => {
    const t = new TopicTable();
    t.define('big', { maxBytes: 512 * 1024, idontwantMinBytes: 1_000, announceMinBytes: Infinity, rate: { count: 100, perMs: 1_000, burst: 100 } });
    return t;
  };
  const net = fullNet(8, {}, topics);
  net.subscribe('big');
  net.advance(3_000);
  const item = new Uint8Array(2_000).fill(1);
  net.publish('n0', 'big', item);
  // Every receiver told its other mesh peers.
  for (const n of [...net.routers.keys()].filter((x) => x !== 'n0')) {
    const others = net.get(n).meshPeers('big').filter((m) => m !== net.delivered.find((d) => d.node === n)!.from);
    const told = new Set(net.controls((c) => c.from === n && c.control.idontwant.length > 0).map((c) => c.to));
    for (const m of others) assert.ok(told.has(m), `${n} did not send IDONTWANT to ${m}`);
  }
  assert.equal(net.receivers(item).size, 7);
  // A peer that said IDONTWANT is not pushed the item.
  const second = new Uint8Array(2_000).fill(2);
  const mesh1 = net.get('n1').meshPeers('big');
  const [skip] = mesh1.filter((m) => m !== 'n0');
  const { id } = net.get('n0').publish('big', second, net.now); // n0 knows it; not forwarded (actions dropped)
  net.injectControl(skip!, 'n1', { idontwant: [id] });
  const before = net.items().length;
  net.inject('n0', 'n1', 'big', second);
  const pushes = net.items().slice(before).filter((s) => s.from === 'n1');
  assert.ok(pushes.length > 0);
  assert.ok(!pushes.some((s) => s.to === skip), `n1 pushed to ${skip} after its IDONTWANT`);
});

test('large items are announced and pulled: each receiver gets exactly one copy', () => {
  const topics = (): TopicTable => {
    const t = new TopicTable();
    t.define('blobs', { announceMinBytes: 10_000 });
    return t;
  };
  const net = fullNet(10, {}, topics);
  net.subscribe('blobs');
  net.advance(3_000);
  const item = new Uint8Array(50_000).fill(9);
  net.publish('n3', 'blobs', item);
  net.advance(500);
  assert.equal(net.receivers(item).size, 9);
  const copies = net.items((s) => s.action.type === 'item' && s.action.payload.length === item.length).length;
  assert.equal(copies, 9, 'one transfer per receiver');
});

test('GRAFT during the prune backoff is penalised and answered with PRUNE', () => {
  const net = fullNet(2);
  net.subscribe('txs');
  net.advance(2_000);
  assert.ok(net.get('n0').meshPeers('txs').includes('n1'));
  net.injectControl('n1', 'n0', { prune: [['txs', 60]] });
  assert.ok(!net.get('n0').meshPeers('txs').includes('n1'));
  net.injectControl('n1', 'n0', { graft: ['txs'] });
  assert.ok(net.penalties.some((p) => p.peer === 'n1' && p.reason === 'GOSSIP_GRAFT_BACKOFF'));
  assert.ok(!net.get('n0').meshPeers('txs').includes('n1'));
  net.advance(61_000, 1_000);
  assert.ok(net.get('n0').meshPeers('txs').includes('n1'), 'grafted again after the backoff');
});

test('an oversized mesh is pruned back to D, keeping the outbound quota', () => {
  const net = new RouterNet({ D: 4, Dlo: 3, Dhi: 6, Dscore: 2, Dout: 1 });
  for (let i = 0; i < 12; i++) net.add(`n${i}`);
  // n0 dials two peers; ten dial n0.
  net.connect('n0', 'n1');
  net.connect('n0', 'n2');
  for (let i = 3; i < 12; i++) net.connect(`n${i}`, 'n0');
  net.subscribe('txs');
  // Everyone grafts n0 at once.
  for (let i = 1; i < 12; i++) net.injectControl(`n${i}`, 'n0', { graft: ['txs'] });
  net.advance(1_000);
  const mesh = net.get('n0').meshPeers('txs');
  assert.ok(mesh.length <= 6, `mesh ${mesh.length}`);
  assert.ok(mesh.includes('n1') || mesh.includes('n2'), 'keeps an outbound member');
});

test('fanout: publishing to a topic we did not join goes to D peers, and the fanout expires', () => {
  const net = fullNet(10, { floodPublish: false, D: 3, Dlo: 2, Dhi: 5, Dscore: 1, Dout: 1 });
  net.subscribe('headers', ...[...net.routers.keys()].filter((n) => n !== 'n0'));
  net.advance(2_000);
  const item = payloadOf(8);
  net.publish('n0', 'headers', item);
  assert.equal(net.get('n0').fanoutPeers('headers').length, 3);
  assert.equal(net.items((s) => s.from === 'n0').length, 3);
  net.advance(3_000);
  assert.equal(net.receivers(item).size, 9);
  net.advance(61_000, 1_000);
  assert.equal(net.get('n0').fanoutPeers('headers').length, 0);
});

test('flood mode: every item goes to every subscribed peer but the sender, and there is no mesh', () => {
  const net = fullNet(5, { flood: true });
  net.subscribe('txs');
  net.advance(2_000);
  assert.equal(net.get('n0').meshPeers('txs').length, 0);
  net.publish('n0', 'txs', payloadOf(1));
  // The publisher sends to 4; every receiver forwards to the 3 others that are not the sender.
  assert.equal(net.items().length, 4 + 4 * 3);
  assert.equal(net.receivers(payloadOf(1)).size, 4);
});

test('P3: a mesh member that delivers nothing is pruned once the threshold is on', () => {
  const topics = (): TopicTable => {
    const t = new TopicTable();
    t.define('txs', { score: { meshDeliveryThreshold: 1, meshDeliveryActivationMs: 5_000 } });
    return t;
  };
  const net = fullNet(4, { D: 3, Dlo: 3, Dhi: 3, Dscore: 1, Dout: 1 }, topics);
  net.subscribe('txs');
  net.advance(2_000);
  net.validators.set('n3', () => 'ignore'); // n3 drops everything
  for (let i = 0; i < 30; i++) {
    net.publish(`n${i % 3}`, 'txs', payloadOf(1_000 + i));
    net.advance(300);
  }
  const deficits = net.penalties.filter((p) => p.by !== 'n3' && p.reason === 'GOSSIP_MESH_DEFICIT');
  assert.ok(deficits.length > 0 && deficits.every((p) => p.peer === 'n3'), `deficits: ${JSON.stringify(deficits)}`);
  for (const n of ['n0', 'n1', 'n2']) assert.ok(!net.get(n).meshPeers('txs').includes('n3'), `${n} still has the dropper in its mesh`);
});

test('topic scores: first deliveries and time in the mesh are paid out as rewards', () => {
  const net = fullNet(3);
  net.subscribe('txs');
  net.advance(2_000);
  net.inject('n1', 'n0', 'txs', payloadOf(1));
  net.advance(61_000, 1_000);
  const toN1 = net.rewards.filter((r) => r.by === 'n0' && r.peer === 'n1').reduce((s, r) => s + r.points, 0);
  assert.ok(toN1 > 0.2 + 0.9, `rewarded ${toN1}`);
  const st = net.get('n0').peerStatus('n1', net.now)!;
  assert.deepEqual(st.mesh, ['txs']);
  assert.ok(st.scores[0]!.inMeshMs >= 60_000);
});

test('opportunistic grafting brings better peers into a mesh of poor ones', () => {
  const net = fullNet(8, { D: 3, Dlo: 2, Dhi: 4, Dscore: 1, Dout: 1, opportunisticGraftTicks: 5 });
  net.subscribe('txs');
  net.advance(2_000);
  const mesh = net.get('n0').meshPeers('txs');
  for (const m of mesh) net.scores.get('n0')!.set(m, 40);
  for (const n of net.routers.keys()) if (!mesh.includes(n) && n !== 'n0') net.scores.get('n0')!.set(n, 70);
  net.advance(6_000, 1_000);
  const after = net.get('n0').meshPeers('txs');
  assert.ok(after.some((m) => !mesh.includes(m)), 'a better peer was grafted');
});

test('the same seed gives the same meshes', () => {
  const meshes = (): string[][] => {
    const net = fullNet(15);
    net.subscribe('txs');
    net.advance(3_000);
    return [...net.routers.values()].map((r) => r.meshPeers('txs').sort());
  };
  assert.deepEqual(meshes(), meshes());
});

test('unsubscribe prunes the mesh and tells peers; peers stop sending', () => {
  const net = fullNet(4);
  net.subscribe('txs');
  net.advance(2_000);
  net.feed('n0', net.get('n0').unsubscribe('txs', net.now));
  net.run();
  assert.equal(net.get('n0').meshPeers('txs').length, 0);
  for (const n of ['n1', 'n2', 'n3']) assert.ok(!net.get(n).topicPeers('txs').includes('n0'));
  net.publish('n1', 'txs', payloadOf(5));
  assert.equal(net.items((s) => s.to === 'n0').length, 0);
});

test('a peer that leaves is dropped from meshes and its IWANT promises go to the next offerer', () => {
  const net = fullNet(3, { floodPublish: false });
  net.subscribe('txs');
  const item = payloadOf(6);
  const { id } = net.get('n2').publish('txs', item, net.now);
  net.silent.add('n0');
  net.injectControl('n0', 'n1', { ihave: [['txs', [id]]] });
  net.injectControl('n2', 'n1', { ihave: [['txs', [id]]] });
  net.disconnect('n0', 'n1');
  assert.ok(net.receivers(item).has('n1'));
  assert.ok(!net.get('n1').meshPeers('txs').includes('n0'));
});

test('a verdict that comes after the seen entry expired still frees its validation slot and settles the item', () => {
  const net = fullNet(2, { seenTtlMs: 1_000 });
  net.subscribe('txs');
  const r = net.get('n0');
  const actions = r.onItem('n1', 'txs', payloadOf(1), 0);
  const v = actions.find((a) => a.type === 'validate');
  assert.ok(v !== undefined && v.type === 'validate');
  assert.equal(r.stats().pendingValidations, 1);
  const out = r.validated(v.key, 'accept', 5_000);
  assert.equal(r.stats().pendingValidations, 0);
  assert.ok(out.some((a) => a.type === 'deliver'));
  // And the item is known again: a late copy is a duplicate, not validated anew.
  assert.ok(!r.onItem('n1', 'txs', payloadOf(1), 5_001).some((a) => a.type === 'validate'));
});

test('broken promises of one peer in one tick cost one penalty', () => {
  const net = fullNet(2, { floodPublish: false });
  net.subscribe('txs');
  net.silent.add('n1');
  const ids = [1, 2, 3, 4, 5].map((i) => net.get('n1').publish('txs', payloadOf(i), net.now).id);
  net.injectControl('n1', 'n0', { ihave: [['txs', ids]] });
  net.advance(3_100);
  assert.equal(net.penalties.filter((p) => p.reason === 'GOSSIP_BROKEN_PROMISE').length, 1);
  assert.equal(net.get('n0').stats().brokenPromises, 5);
});

test('a PRUNE backoff is honoured as the peer gave it', () => {
  const net = fullNet(2);
  net.subscribe('txs');
  net.advance(2_000);
  net.injectControl('n1', 'n0', { prune: [['txs', 10]] });
  net.advance(11_000, 1_000);
  assert.ok(net.get('n0').meshPeers('txs').includes('n1'), 'grafted again after 10 s');
});

test('flood mode sends no GRAFT, and subscriptions are capped at what one control message carries', () => {
  const net = fullNet(3, { flood: true });
  net.subscribe('txs');
  assert.equal(net.controls((c) => c.control.graft.length > 0).length, 0);
  const t = new TopicTable();
  for (let i = 0; i < 70; i++) t.define(`t${i}`);
  const capped = new RouterNet({}, () => t);
  const r = capped.add('x');
  for (let i = 0; i < 64; i++) r.subscribe(`t${i}`, 0);
  assert.throws(() => r.subscribe('t64', 0), (e) => isPqnetError(e) && e.code === 'INVALID_ARGUMENT');
});
