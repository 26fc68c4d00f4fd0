import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../src/core/random.ts';
import { ChokeTracker } from '../../src/gossip/choke.ts';
import { controlFromWire, controlToWire, emptyControl, gossipMessages } from '../../src/gossip/messages.ts';
import { GossipRouter } from '../../src/gossip/router.ts';
import { fullNet, payloadOf, RouterNet } from './_net.ts';

/** n0 dials each of `others` (a star around n0), all subscribed to txs. */
function star(others: string[], params: ConstructorParameters<typeof RouterNet>[0]): RouterNet {
  const net = new RouterNet(params);
  net.add('n0');
  for (const o of others) net.add(o);
  for (const o of others) net.connect('n0', o);
  net.subscribe('txs');
  net.advance(1_500);
  return net;
}

function choking(net: RouterNet, name: string, topic = 'txs'): string[] {
  return net.get(name).meshPeers(topic).filter((m) => net.get(name).peerStatus(m, net.now)?.choking.includes(topic));
}

test('ChokeTracker: a window ranks members by first deliveries, then duplicates, and chokes all but the best', () => {
  const c = new ChokeTracker(2, 6);
  const mesh = new Set(['a', 'b', 'c', 'd']);
  for (const p of mesh) assert.equal(c.joined(p, new Set([...mesh].filter((x) => x < p)), 0), p > 'b', 'members beyond D_unchoked join choked');
  assert.deepEqual([...c.choking].sort(), ['c', 'd']);
  assert.ok(c.unchoke('c', 0) && c.unchoke('d', 0));
  assert.equal(c.unchoke('d', 0), false, 'unchoking an open member is a no-op');
  // a: 1 first 3 dups; b: 1 first; c: 2 firsts; d: nothing (a dropper or downstream of us).
  const feed: [string | undefined, boolean][] = [['a', false], ['c', false], ['c', false], ['b', false], [undefined, false], ['x', true]];
  const due = feed.map(([p]) => c.first(p));
  for (let i = 0; i < 3; i++) c.duplicate('a');
  assert.deepEqual(due, [false, false, false, false, false, true], 'the window closes after `window` items');
  assert.deepEqual(c.decide(mesh, 10, new SeededRandom('d')).choke.sort(), ['b', 'd'], 'keeps c (most firsts) and a (ties b on firsts, more duplicates)');
  assert.deepEqual([...c.choking].sort(), ['b', 'd']);
  // Refill: a leaves, so one choked member is unchoked to keep two pushing.
  c.left('a');
  mesh.delete('a');
  const refill = c.refill(mesh, new SeededRandom('r'));
  assert.equal(refill.length, 1);
  assert.ok(['b', 'd'].includes(refill[0]!));
});

test('ChokeTracker: no member is choked while one unchoked during the window is open (its tally is partial)', () => {
  const c = new ChokeTracker(1, 2);
  const mesh = new Set(['a', 'b']);
  c.joined('a', new Set(), 0);
  assert.equal(c.joined('b', new Set(['a']), 0), true);
  c.unchoke('b', 5);
  c.first('a');
  c.first('a');
  const rng = new SeededRandom('d');
  assert.deepEqual(c.decide(mesh, 10, rng).choke, [], 'b was unchoked at 5, inside the window that opened at 0');
  c.first('b');
  c.first('b');
  assert.deepEqual(c.decide(mesh, 20, rng).choke, ['a'], 'the next window judges both: a delivered nothing first');
});

test('choke at join: a node keeps D_unchoked members pushing; the others announce by IHAVE and do not push', () => {
  const net = fullNet(9, { Dunchoked: 2 });
  net.subscribe('txs');
  net.advance(3_000);
  for (const [name, r] of net.routers) {
    const mesh = r.meshPeers('txs');
    const choked = choking(net, name);
    assert.equal(mesh.length - choked.length, Math.min(2, mesh.length), `${name}: ${mesh.length} members, ${choked.length} choked`);
    for (const m of choked) assert.deepEqual(net.get(m).peerStatus(name, net.now)?.chokedBy, ['txs'], `${m} knows ${name} choked it`);
  }
  const origin = 'n8';
  const item = payloadOf(1);
  const id = net.publish(origin, 'txs', item);
  assert.equal(net.receivers(item).size, 8);
  for (const s of net.items((s) => s.from !== origin)) {
    assert.ok(!choking(net, s.to).includes(s.from), `${s.from} pushed to ${s.to}, which choked it`);
  }
  const announced = net.controls((c) => c.from !== origin && c.control.ihave.some(([, ids]) => ids.some((x) => Buffer.compare(x, id) === 0)));
  assert.ok(announced.length > 0, 'choked members announce the item');
  for (const a of announced) assert.ok(choking(net, a.to).includes(a.from), `${a.from} announced to ${a.to} at once though not choked by it`);
});

test('the origin pushes its own items to members that choked it', () => {
  const net = fullNet(6, { Dunchoked: 1, floodPublish: false });
  net.subscribe('txs');
  net.advance(3_000);
  const chokedBy = net.get('n0').meshPeers('txs').filter((m) => choking(net, m).includes('n0'));
  assert.ok(chokedBy.length > 0, 'n0 is choked by some of its members');
  net.publish('n0', 'txs', payloadOf(2));
  const pushedTo = new Set(net.items((s) => s.from === 'n0').map((s) => s.to));
  for (const m of net.get('n0').meshPeers('txs')) assert.ok(pushedTo.has(m), `n0 pushed to its member ${m}`);
});

test('ChokeTracker: every `exploreWindows` decisions one member choked before is unchoked, to be judged by the next full window', () => {
  const c = new ChokeTracker(1, 1, 2);
  const mesh = new Set(['a', 'b', 'c']);
  c.joined('a', new Set(), 0);
  c.joined('b', new Set(['a']), 0);
  c.joined('c', new Set(['a', 'b']), 0);
  const rng = new SeededRandom('x');
  c.first('a');
  assert.deepEqual(c.decide(mesh, 10, rng), { choke: [], unchoke: undefined });
  c.first('a');
  const second = c.decide(mesh, 20, rng);
  assert.deepEqual(second.choke, []);
  assert.ok(second.unchoke === 'b' || second.unchoke === 'c', 'the second decision explores');
  assert.equal(c.choking.has(second.unchoke), false);
  // The explored member is judged in the next window, in full: it delivers, a does not.
  c.first(second.unchoke);
  const third = c.decide(mesh, 30, rng);
  assert.deepEqual(third.choke, ['a']);
});

test('a window decision chokes the member that delivered nothing first and keeps the explored one that did', () => {
  const net = star(['a', 'b', 'c'], { D: 3, Dlo: 2, Dhi: 6, Dscore: 2, Dout: 1, Dunchoked: 1, chokeWindow: 4, unchokeExploreWindows: 1 });
  const open = net.get('n0').meshPeers('txs').filter((m) => !choking(net, 'n0').includes(m));
  assert.equal(open.length, 1);
  const [first] = open as [string];
  // Window 1: items from the open member; the decision explores one choked member.
  for (let k = 0; k < 4; k++) net.inject(first, 'n0', 'txs', payloadOf(100 + k));
  const unchoked = net.controls((c) => c.from === 'n0' && c.control.unchoke.length > 0);
  assert.equal(unchoked.length, 1, 'one member unchoked to be measured');
  const explored = unchoked[0]!.to;
  // Window 2: the explored member delivers every item first.
  for (let k = 0; k < 4; k++) net.inject(explored, 'n0', 'txs', payloadOf(200 + k));
  assert.ok(choking(net, 'n0').includes(first), `${first} delivered nothing in the window and is choked`);
  assert.equal(choking(net, 'n0').includes(explored), false, `${explored} stays unchoked`);
  assert.equal(net.controls((c) => c.from === 'n0' && c.to === first && c.control.choke.includes('txs')).length, 1);
});

test('a choked member whose IHAVE beats every push is unchoked', () => {
  // n0 -- a (open), n0 -- b (choked), b -- d; d publishes, so b has the item before n0 and announces it.
  const net = new RouterNet({ D: 2, Dlo: 1, Dhi: 4, Dscore: 1, Dout: 0, Dunchoked: 1, floodPublish: false });
  for (const n of ['n0', 'a', 'b', 'd']) net.add(n);
  net.connect('n0', 'a');
  net.connect('n0', 'b');
  net.connect('b', 'd');
  net.subscribe('txs');
  net.advance(1_500);
  const choked = choking(net, 'n0');
  assert.equal(choked.length, 1);
  const b = choked[0]!;
  const d = b === 'b' ? 'd' : undefined;
  assert.ok(d !== undefined, 'the later GRAFT (b) is the choked one');
  const item = payloadOf(3);
  net.publish(d, 'txs', item);
  assert.ok(net.receivers(item).has('n0'));
  assert.ok(net.controls((c) => c.from === 'n0' && c.to === 'b' && c.control.iwant.length > 0).length > 0, 'n0 pulled the item from b');
  assert.equal(net.controls((c) => c.from === 'n0' && c.to === 'b' && c.control.unchoke.includes('txs')).length, 1);
  assert.deepEqual(choking(net, 'n0'), []);
});

test('when an unchoked member leaves, a choked one is unchoked at the next heartbeat', () => {
  const net = star(['a', 'b', 'c', 'e'], { D: 4, Dlo: 2, Dhi: 8, Dout: 1, Dunchoked: 2, unchokeExploreWindows: 0 });
  const r = net.get('n0');
  const open = r.meshPeers('txs').filter((m) => !choking(net, 'n0').includes(m));
  assert.equal(open.length, 2);
  assert.equal(choking(net, 'n0').length, 2);
  net.disconnect('n0', open[0]!);
  net.advance(1_000);
  assert.equal(choking(net, 'n0').length, 1, 'one choked member unchoked');
  assert.equal(r.stats().control.unchoke.sent, 1);
});

test("a choked member's per-item IHAVEs are exempt from the IHAVE message cap, within an id budget", () => {
  const net = star(['a', 'b', 'c'], { D: 3, Dlo: 2, Dhi: 6, Dscore: 2, Dout: 1, Dunchoked: 1, maxIHaveMessages: 2, maxIHaveLength: 20, unchokeExploreWindows: 0 });
  const [b] = choking(net, 'n0');
  assert.ok(b !== undefined);
  for (let k = 0; k < 5; k++) net.injectControl(b, 'n0', { ihave: [['txs', [new Uint8Array(20).fill(k + 1)]]] });
  assert.deepEqual(net.penalties.filter((p) => p.peer === b), [], 'five IHAVEs from a member we choked');
  net.injectControl(b, 'n0', { ihave: [['txs', Array.from({ length: 20 }, (_, i) => new Uint8Array(20).fill(100 + i))]] });
  assert.deepEqual(net.penalties.filter((p) => p.peer === b).map((p) => p.reason), ['GOSSIP_CONTROL_FLOOD'], 'over the id budget');
});

test('IHAVE gossip offers an id to a peer once, and never to a peer that sent or announced it', () => {
  const net = fullNet(8, { D: 2, Dlo: 1, Dhi: 3, Dscore: 1, Dout: 0, Dlazy: 8, Dunchoked: 0 });
  net.subscribe('txs');
  net.advance(3_000);
  const id = net.publish('n1', 'txs', payloadOf(4));
  const key = Buffer.from(id).toString('hex');
  const has = (ids: Uint8Array[]): boolean => ids.some((x) => Buffer.from(x).toString('hex') === key);
  // Offers by heartbeat: pair -> the heartbeats it was offered in.
  const offers = new Map<string, number[]>();
  for (let beat = 0; beat < 4; beat++) {
    const from = net.sent.length;
    net.advance(1_000);
    for (const s of net.sent.slice(from)) {
      if (s.action.type !== 'control' || !s.action.control.ihave.some(([, ids]) => has(ids))) continue;
      const k = `${s.from}>${s.to}`;
      offers.set(k, [...(offers.get(k) ?? []), beat]);
    }
  }
  assert.ok(offers.size > 0, 'the id is gossiped');
  for (const [k, beats] of offers) {
    assert.equal(beats.length, 1, `${k} offered it in heartbeats ${beats.join(', ')}`);
    const [from, to] = k.split('>') as [string, string];
    assert.notEqual(to, 'n1', `${from} offered the origin its own item`);
    const back = offers.get(`${to}>${from}`);
    // Offers can cross in one heartbeat; after one arrived, it is not answered by an offer back.
    if (back !== undefined) assert.equal(back[0], beats[0], `${to} offered it back to ${from} after being offered it`);
  }
});

test('CHOKE and UNCHOKE survive the wire, and a CHOKE for a topic outside the mesh is ignored', () => {
  const c = { ...emptyControl(), choke: ['txs'], unchoke: ['blocks'] };
  const wire = controlToWire(c);
  const decoded = gossipMessages.control.schema.check(JSON.parse(JSON.stringify(wire)), 'control');
  assert.deepEqual(controlFromWire(decoded), c);
  const r = new GossipRouter();
  r.addPeer('p', true, 0);
  r.onControl('p', { ...emptyControl(), choke: ['txs'] }, 0);
  assert.deepEqual(r.peerStatus('p', 0)?.chokedBy, []);
  assert.equal(r.stats().control.choke.received, 1);
});

test('a peer that joins the mesh is offered the recent ids it does not hold (items that went out just before it joined)', () => {
  // No lazy gossip to non-members: only the join offer can tell F about the item.
  const net = new RouterNet({ D: 1, Dlo: 1, Dhi: 2, Dscore: 1, Dout: 0, Dlazy: 0, gossipFactor: 0, floodPublish: false });
  for (const n of ['x', 'a', 'f']) net.add(n);
  net.connect('x', 'a');
  net.connect('x', 'f');
  net.subscribe('txs', 'x', 'a');
  net.advance(1_000);
  const item = payloadOf(5);
  net.publish('a', 'txs', item);
  assert.deepEqual(net.receivers(item), new Set(['x']));
  net.subscribe('txs', 'f'); // F grafts X
  assert.ok(net.get('x').meshPeers('txs').includes('f'));
  assert.ok(net.receivers(item).has('f'), 'F pulled the item X offered when it joined');
  net.advance(3_000);
  assert.equal(net.items((s) => s.to === 'f').length, 1, 'offered once, pulled once');
});

test('a disconnect clears the choke state on both sides: a member that comes back is neither choked nor choking', () => {
  const net = fullNet(6, { Dunchoked: 1 });
  net.subscribe('txs');
  net.advance(3_000);
  const r = net.get('n0');
  const m = r.meshPeers('txs').find((p) => r.peerStatus(p, net.now)?.chokedBy.includes('txs'));
  const c = r.meshPeers('txs').find((p) => choking(net, 'n0').includes(p));
  assert.ok(m !== undefined && c !== undefined, 'n0 has a member that choked it and one it choked');
  net.disconnect('n0', m);
  net.disconnect('n0', c);
  assert.equal(r.stats().topics.txs!.chokedBy, r.meshPeers('txs').filter((p) => r.peerStatus(p, net.now)?.chokedBy.length).length);
  assert.equal(r.stats().topics.txs!.choking, choking(net, 'n0').length);
  net.connect('n0', m);
  net.connect('n0', c);
  for (const p of [m, c]) assert.deepEqual(r.peerStatus(p, net.now), { ...r.peerStatus(p, net.now)!, mesh: [], choking: [], chokedBy: [] }, `${p} starts clean`);
});
