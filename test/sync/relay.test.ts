/**
 * The relay engine, sans-I/O: engines on devchains in temporary files, joined
 * by a harness that encodes every message with the relay schemas, decodes it
 * on the other side and steps a manual clock. Misbehaving peers are played by
 * calling the engine directly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex, type Hash } from '../../src/chain/adapter.ts';
import { encodeTx, type Devchain } from '../../src/chain/devchain/index.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { isPqnetError, type Reason } from '../../src/core/errors.ts';
import { SeededRandom } from '../../src/core/random.ts';
import { CompactBuilder } from '../../src/sync/compact.ts';
import { Mempool } from '../../src/sync/mempool.ts';
import { InvKind, relayMessages, type InvItem, type RelayMessages } from '../../src/sync/relay-messages.ts';
import { RelayEngine, type RelayAction, type RelayEngineOptions } from '../../src/sync/relay.ts';
import { MessageRegistry, type MessageType } from '../../src/wire/registry.ts';
import { T0, inTempChains } from '../chain/_devchain.ts';

const WALL = T0 + 3_600_000;

interface Side {
  readonly name: string;
  readonly chain: Devchain;
  readonly engine: RelayEngine;
  readonly mempool: Mempool;
}

/** Engines joined through encoded messages; what each received is counted by message name. */
class Net {
  readonly clock = new ManualClock();
  readonly sides = new Map<string, Side>();
  readonly received = new Map<string, Map<string, number>>(); // "to<-from" -> type -> count
  readonly penalties: { by: string; peer: string; reason: Reason }[] = [];
  readonly events: { at: string; action: RelayAction }[] = [];
  readonly m: RelayMessages;
  readonly #reg: MessageRegistry;

  constructor(m: RelayMessages) {
    this.m = m;
    this.#reg = new MessageRegistry(m.types);
  }

  add(name: string, chain: Devchain, options: Partial<RelayEngineOptions> = {}): Side {
    const mempool = new Mempool(chain);
    const side = { name, chain, mempool, engine: new RelayEngine(chain, mempool, { trickleMs: 100, ...options }, new SeededRandom(name)) };
    this.sides.set(name, side);
    return side;
  }

  link(a: Side, b: Side): void {
    a.engine.addPeer(b.name, this.clock.now());
    b.engine.addPeer(a.name, this.clock.now());
  }

  count(to: string, from: string, type: string): number {
    return this.received.get(`${to}<-${from}`)?.get(type) ?? 0;
  }

  /** Poll every engine and deliver what it says until a round is quiet; then, if `settle`, step to the next deadline and go on (bounded). */
  run(settle = true, maxRounds = 200): void {
    for (let i = 0; i < maxRounds; i++) {
      let busy = false;
      for (const s of this.sides.values()) {
        for (const a of s.engine.poll(this.clock.now())) {
          busy = true;
          this.#deliver(s, a);
        }
      }
      if (busy) continue;
      if (!settle) return;
      const next = Math.min(...[...this.sides.values()].map((s) => s.engine.nextDeadline(this.clock.now()) ?? Infinity));
      if (!Number.isFinite(next)) return;
      this.clock.runUntil(Math.max(next, this.clock.now()));
    }
    assert.fail('the engines kept talking');
  }

  /** Encode and decode through the registry, as the wire would. */
  wire<T>(type: MessageType<T>, value: T, from: string, to: string): T {
    const bytes = this.#reg.encode(type, value);
    const key = `${to}<-${from}`;
    const counts = this.received.get(key) ?? new Map<string, number>();
    counts.set(type.name, (counts.get(type.name) ?? 0) + 1);
    this.received.set(key, counts);
    return this.#reg.decode(type.id, type.channel, bytes).value as T;
  }

  #deliver(from: Side, a: RelayAction): void {
    const now = this.clock.now();
    const m = this.m;
    if (a.type === 'penalize') {
      this.penalties.push({ by: from.name, peer: a.peer, reason: a.reason });
      return;
    }
    if (a.type === 'accepted' || a.type === 'imported' || a.type === 'announced') {
      this.events.push({ at: from.name, action: a });
      return;
    }
    const to = this.sides.get(a.peer)!;
    const e = to.engine;
    switch (a.type) {
      case 'inv':
        return e.onInv(from.name, this.wire(m.inv, a.items, from.name, to.name), now);
      case 'getdata':
        return e.onGetData(from.name, this.wire(m.getData, a.items, from.name, to.name), now);
      case 'notfound':
        return e.onNotFound(from.name, this.wire(m.notFound, a.items, from.name, to.name), now);
      case 'tx':
        return e.onTx(from.name, this.wire(m.tx, [a.bytes], from.name, to.name)[0], now);
      case 'block':
        return e.onBlock(from.name, this.wire(m.block, [a.bytes], from.name, to.name)[0], now, WALL);
      case 'compact':
        return e.onCompactBlock(from.name, this.wire(m.compactBlock, a.message, from.name, to.name), now, WALL);
      case 'getblocktxn': {
        const [, [hash, indexes]] = this.wire(m.getBlockTxn.request, [0, [a.hash, a.indexes]], from.name, to.name);
        let txs: Uint8Array[];
        try {
          txs = e.serveBlockTxn(from.name, hash, indexes);
        } catch (err) {
          assert.ok(isPqnetError(err));
          from.engine.onBlockTxnFailed(to.name, a.hash);
          return;
        }
        const [, , body] = this.wire(m.getBlockTxn.response, [0, 0, txs], to.name, from.name);
        from.engine.onBlockTxn(to.name, a.hash, body!, now);
        return;
      }
    }
  }
}

async function withNet(fn: (net: Net, open: (name: string) => Devchain) => void | Promise<void>): Promise<void> {
  await inTempChains('pqnet-relay-', async (open, dir) => {
    const first = open(dir.file('limits'));
    await fn(new Net(relayMessages(first.limits)), (name) => open(dir.file(name)));
  });
}

const has = (s: Side, id: Hash): boolean => s.mempool.has(id);
const typePeer = (a: RelayAction): [string, string | undefined] => [a.type, 'peer' in a ? a.peer : undefined];

test('a transaction submitted at A reaches C through B; each node receives it once and nothing is announced back', async () => {
  await withNet((net, open) => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => net.add(n, open(n))) as [Side, Side, Side];
    net.link(a, b);
    net.link(b, c);
    const [bytes] = a.chain.makeTxs(1, 1);
    const id = a.engine.submitTx(bytes!, net.clock.now());
    net.run();
    assert.ok(has(b, id) && has(c, id));
    assert.equal(net.count('b', 'a', 'relay.tx'), 1);
    assert.equal(net.count('c', 'b', 'relay.tx'), 1);
    assert.equal(net.count('b', 'c', 'relay.inv'), 0, 'C does not announce it back to B');
    assert.equal(net.count('a', 'b', 'relay.inv'), 0, 'B does not announce it back to A');
    assert.equal(net.count('a', 'b', 'relay.getdata'), 1);
    assert.equal(net.count('b', 'c', 'relay.getdata'), 1);
    assert.deepEqual(net.events.filter((e) => e.action.type === 'accepted').map((e) => e.at), ['a', 'b', 'c']);
    assert.equal(net.penalties.length, 0);
    assert.ok(b.engine.knows('a', InvKind.TX, id) && b.engine.knows('c', InvKind.TX, id));
    // Submitting it again changes nothing.
    assert.deepEqual(a.engine.submitTx(bytes!, net.clock.now()), id);
    net.run();
    assert.equal(net.count('b', 'a', 'relay.inv'), 1);
  });
});

test('announcements are batched per trickle interval', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'), { trickleMs: 1_000 });
    const b = net.add('b', open('b'));
    net.link(a, b);
    const txs = a.chain.makeTxs(12, 2);
    a.engine.submitTx(txs[0]!, net.clock.now());
    net.run(false);
    assert.equal(net.count('b', 'a', 'relay.inv'), 1, 'the first goes at once');
    for (const t of txs.slice(1)) a.engine.submitTx(t, net.clock.now());
    net.run(false);
    assert.equal(net.count('b', 'a', 'relay.inv'), 1, 'the rest wait for the trickle');
    net.clock.advance(1_000);
    net.run();
    assert.equal(net.count('b', 'a', 'relay.inv'), 2, 'eleven transactions in one INV');
    assert.equal(b.mempool.size, 12);
    assert.equal(a.engine.stats().txsAnnounced, 12);
  });
});

test('one GETDATA per transaction however many announce it; a timeout (SYNC_STALL) or NOTFOUND moves to the next announcer; a late answer is still taken', async () => {
  await withNet((net, open) => {
    const b = net.add('b', open('b'), { txTimeoutMs: 5_000 });
    const chain = open('src');
    for (const n of ['x', 'y', 'z']) b.engine.addPeer(n, 0);
    const txs = chain.makeTxs(2, 3);
    const ids = txs.map((t) => chain.decodeTx(t).id);
    const item: InvItem = [InvKind.TX, ids[0]!];
    for (const n of ['x', 'y', 'z']) b.engine.onInv(n, [item], 0);
    const first = b.engine.poll(0);
    const getdata = first.filter((a) => a.type === 'getdata');
    assert.equal(getdata.length, 1);
    assert.deepEqual(typePeer(getdata[0]!), ['getdata', 'x']);
    // x says nothing: after the timeout, y is asked and x blamed.
    assert.deepEqual(b.engine.poll(4_999), []);
    const second = b.engine.poll(5_000);
    assert.deepEqual(second.map(typePeer), [['penalize', 'x'], ['getdata', 'y']]);
    assert.equal((second[0] as { reason: Reason }).reason, 'SYNC_STALL');
    // y has evicted it: NOTFOUND, and z is asked at once.
    b.engine.onNotFound('y', [item], 5_001);
    assert.deepEqual(b.engine.poll(5_001).map(typePeer), [['getdata', 'z']]);
    // x answers late: taken without penalty; z's answer then finds it known.
    b.engine.onTx('x', txs[0]!, 5_002);
    b.engine.onTx('z', txs[0]!, 5_003);
    const after = b.engine.poll(5_004);
    assert.ok(after.some((a) => a.type === 'accepted'));
    assert.ok(!after.some((a) => a.type === 'penalize'));
    assert.ok(b.mempool.has(ids[0]!));
    assert.equal(b.engine.stats().txsAccepted, 1);
    // Announced again later: it was seen, so it is not fetched again.
    b.engine.onInv('y', [item], 6_000);
    assert.ok(!b.engine.poll(6_000).some((a) => a.type === 'getdata'));
    // Nobody else announced the second one: after x's NOTFOUND it is forgotten until announced again.
    b.engine.onInv('x', [[InvKind.TX, ids[1]!]], 7_000);
    assert.equal(b.engine.poll(7_000).filter((a) => a.type === 'getdata').length, 1);
    b.engine.onNotFound('x', [[InvKind.TX, ids[1]!]], 7_001);
    assert.deepEqual(b.engine.poll(7_001), []);
    assert.equal(b.engine.stats().pendingFetches, 0);
    void net;
  });
});

test('rate caps: inventory entries and pushed transactions over their buckets are dropped with SYNC_RELAY_FLOOD', async () => {
  await withNet((net, open) => {
    const b = net.add('b', open('b'), { invEntriesPerSecond: 10, invEntriesBurst: 20, txsPerSecond: 1, txsBurst: 2 });
    const src = open('src');
    b.engine.addPeer('x', 0);
    const ids = src.makeTxs(30, 4).map((t) => src.decodeTx(t).id);
    b.engine.onInv('x', ids.slice(0, 20).map((id) => [InvKind.TX, id]), 0);
    b.engine.onInv('x', ids.slice(20, 21).map((id) => [InvKind.TX, id]), 0);
    const actions = b.engine.poll(0);
    const flood = actions.filter((a) => a.type === 'penalize');
    assert.deepEqual(flood.map((a) => (a as { reason: Reason }).reason), ['SYNC_RELAY_FLOOD']);
    const asked = actions.filter((a) => a.type === 'getdata').flatMap((a) => (a as { items: InvItem[] }).items);
    assert.equal(asked.length, 20, 'the entries of the dropped INV are not fetched');
    // A second later ten more tokens are there.
    b.engine.onInv('x', ids.slice(20, 30).map((id) => [InvKind.TX, id]), 1_000);
    assert.ok(!b.engine.poll(1_000).some((a) => a.type === 'penalize'));
    // Pushes: the bucket is checked before anything is decoded.
    const junk = new Uint8Array([0xff]);
    for (let i = 0; i < 3; i++) b.engine.onTx('x', junk, 2_000);
    const reasons = b.engine.poll(2_000).filter((a) => a.type === 'penalize').map((a) => (a as { reason: Reason }).reason);
    assert.deepEqual(reasons, ['CHAIN_BAD_TX', 'CHAIN_BAD_TX', 'SYNC_RELAY_FLOOD']);
    void net;
  });
});

test('an unrequested TX is SYNC_UNREQUESTED and dropped; an inadmissible one is CHAIN_BAD_TX and not relayed', async () => {
  await withNet((net, open) => {
    const b = net.add('b', open('b'));
    const c = net.add('c', open('c'));
    net.link(b, c);
    b.engine.addPeer('x', 0);
    const [good] = b.chain.makeTxs(1, 5);
    b.engine.onTx('x', good!, 0);
    net.run();
    assert.deepEqual(net.penalties.map((p) => [p.peer, p.reason]), [['x', 'SYNC_UNREQUESTED']]);
    assert.equal(b.mempool.size, 0);
    // Inadmissible: a sender that does not exist.
    const bad = encodeTx({ from: new Uint8Array(32).fill(9), to: b.chain.genesisAccountIds[0]!, amount: 1, fee: 0, nonce: 0, memo: new Uint8Array(0) });
    const badId = b.chain.decodeTx(bad).id;
    b.engine.onInv('x', [[InvKind.TX, badId]], net.clock.now());
    const ask = b.engine.poll(net.clock.now());
    assert.deepEqual(ask.map(typePeer), [['getdata', 'x']]);
    b.engine.onTx('x', bad, net.clock.now());
    net.run();
    assert.deepEqual(net.penalties.map((p) => [p.peer, p.reason]), [['x', 'SYNC_UNREQUESTED'], ['x', 'CHAIN_BAD_TX']]);
    assert.ok(!b.mempool.has(badId));
    assert.equal(net.count('c', 'b', 'relay.inv'), 0, 'not relayed');
    assert.equal(b.engine.stats().txsRejected, 1);
    // Announced again, it is not fetched again.
    b.engine.onInv('x', [[InvKind.TX, badId]], net.clock.now());
    assert.ok(!b.engine.poll(net.clock.now()).some((a) => a.type === 'getdata'));
  });
});

test('GETDATA is served from the mempool and the chain, NOTFOUND for the rest', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'));
    a.engine.addPeer('x', 0);
    const [t1, t2] = a.chain.makeTxs(2, 6);
    a.engine.submitTx(t1!, 0);
    const block = a.chain.mine();
    const missing = a.chain.decodeTx(t2!).id;
    a.engine.onGetData('x', [[InvKind.TX, a.chain.decodeTx(t1!).id], [InvKind.TX, missing], [InvKind.BLOCK, block.header.hash], [InvKind.BLOCK, new Uint8Array(32)]], 0);
    const out = a.engine.poll(0).filter((x) => x.type !== 'inv' && x.type !== 'accepted');
    assert.deepEqual(out.map((x) => x.type), ['tx', 'block', 'notfound']);
    assert.deepEqual((out[2] as { items: InvItem[] }).items.map(([k, h]) => [k, hex(h)]), [[InvKind.TX, hex(missing)], [InvKind.BLOCK, hex(new Uint8Array(32))]]);
    void net;
  });
});

test('compact relay A → B → C: B rebuilds from a mempool missing 10% and asks for exactly those; C gets from B what it is not known to have prefilled', async () => {
  await withNet((net, open) => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => net.add(n, open(n))) as [Side, Side, Side];
    net.link(a, b);
    net.link(b, c);
    const txs = a.chain.makeTxs(50, 7);
    for (const t of txs) a.engine.submitTx(t, net.clock.now());
    net.run();
    assert.equal(b.mempool.size, 50);
    assert.equal(c.mempool.size, 50);
    // B and C lose five of them (evicted, say); A and B still believe the peer has them.
    const lost = txs.filter((_, i) => i % 10 === 3).map((t) => a.chain.decodeTx(t).id);
    b.mempool.remove(lost);
    c.mempool.remove(lost);
    const block = a.chain.mine({ txs });
    assert.equal(block.txs.length, 50);
    a.engine.onChainChanged({ connected: [block.header.hash], disconnected: [] }, net.clock.now());
    net.run();
    for (const s of [b, c]) assert.equal(hex(s.chain.tip().hash), hex(block.header.hash), `${s.name} imported it`);
    assert.equal(net.count('b', 'a', 'relay.cmpctblock'), 1);
    assert.equal(net.count('a', 'b', 'relay.getblocktxn.request'), 1);
    assert.equal(b.engine.stats().blockTxnRequested, 5);
    assert.equal(b.engine.stats().compactRebuilt, 1);
    assert.equal(b.engine.stats().compactWithMissing, 1);
    assert.equal(net.count('b', 'a', 'relay.block'), 0, 'no full block');
    assert.equal(net.count('a', 'b', 'relay.getdata'), 1, 'one GETDATA: the transactions\' batch before the block');
    // B announced all fifty to C before either lost five, so nothing is prefilled for C: C asks B for its five.
    assert.equal(net.count('c', 'b', 'relay.cmpctblock'), 1);
    assert.equal(c.engine.stats().compactRebuilt, 1);
    assert.equal(c.engine.stats().blockTxnRequested, 5);
    assert.equal(net.count('b', 'c', 'relay.cmpctblock'), 0, 'not sent back');
    // Mempools are empty again, and the mined transactions are not fetched if announced.
    for (const s of [a, b, c]) assert.equal(s.mempool.size, 0, s.name);
    assert.deepEqual(net.events.filter((e) => e.action.type === 'imported').map((e) => e.at), ['b', 'c']);
    assert.equal(net.penalties.length, 0);
  });
});

test('prefill: a peer not known to have a transaction gets it inside the compact block and needs no round trip', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'));
    const b = net.add('b', open('b'));
    net.link(a, b);
    const txs = a.chain.makeTxs(20, 8);
    for (const t of txs.slice(0, 15)) a.engine.submitTx(t, net.clock.now());
    net.run();
    const block = a.chain.mine({ txs });
    a.engine.onChainChanged({ connected: [block.header.hash], disconnected: [] }, net.clock.now());
    net.run();
    assert.equal(hex(b.chain.tip().hash), hex(block.header.hash));
    assert.equal(net.count('a', 'b', 'relay.getblocktxn.request'), 0);
    assert.equal(b.engine.stats().compactWithMissing, 0);
    assert.equal(b.engine.stats().compactRebuilt, 1);
  });
});

test('a compact block whose parent is unknown is reported for headers-first sync and nothing is stored', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'));
    const b = net.add('b', open('b'));
    a.chain.mineChain(2);
    net.link(a, b);
    a.engine.announceBlock(a.chain.tip().hash);
    net.run();
    const ev = net.events.filter((e) => e.action.type === 'announced');
    assert.equal(ev.length, 1);
    assert.equal(ev[0]!.at, 'b');
    assert.deepEqual(ev[0]!.action.type === 'announced' ? [ev[0]!.action.peer, ev[0]!.action.height] : [], ['a', 2]);
    assert.equal(b.chain.header(a.chain.tip().hash), undefined);
    assert.equal(b.chain.bestHeader().height, 0);
    // A block INV for an unknown header: reported too, height unknown.
    b.engine.onInv('a', [[InvKind.BLOCK, a.chain.tip().hash]], net.clock.now());
    net.run();
    const inv = net.events.filter((e) => e.action.type === 'announced');
    assert.equal(inv.length, 2);
    assert.equal(inv[1]!.action.type === 'announced' ? inv[1]!.action.height : 0, undefined);
  });
});

test('a BLOCKTXN answer that does not rebuild the block is SYNC_BAD_COMPACT, and the full block is fetched instead', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'));
    const b = net.add('b', open('b'));
    net.link(a, b);
    const txs = a.chain.makeTxs(10, 9);
    for (const t of txs) a.engine.submitTx(t, net.clock.now());
    net.run();
    const block = a.chain.mine({ txs });
    b.mempool.remove([block.txIds[2]!]);
    a.engine.onChainChanged({ connected: [block.header.hash], disconnected: [] }, net.clock.now());
    // Deliver A's compact block; then answer B's GETBLOCKTXN with the wrong transaction.
    const acts = a.engine.poll(net.clock.now());
    const compact = acts.find((x) => x.type === 'compact');
    assert.ok(compact?.type === 'compact');
    b.engine.onCompactBlock('a', compact.message, net.clock.now(), WALL);
    const ask = b.engine.poll(net.clock.now()).find((x) => x.type === 'getblocktxn');
    assert.ok(ask?.type === 'getblocktxn');
    assert.deepEqual(ask.indexes, [2]);
    b.engine.onBlockTxn('a', block.header.hash, [block.txs[3]!], net.clock.now());
    const after = b.engine.poll(net.clock.now());
    assert.deepEqual(after.map((x) => x.type), ['penalize', 'getdata']);
    assert.equal((after[0] as { reason: Reason }).reason, 'SYNC_BAD_COMPACT');
    assert.deepEqual((after[1] as { items: InvItem[] }).items.map(([k, h]) => [k, hex(h)]), [[InvKind.BLOCK, hex(block.header.hash)]]);
    // A serves the full block; B imports it.
    a.engine.onGetData('b', (after[1] as { items: InvItem[] }).items, net.clock.now());
    net.run();
    assert.equal(hex(b.chain.tip().hash), hex(block.header.hash));
    assert.equal(b.engine.stats().fullBlocksReceived, 1);
    assert.equal(b.engine.stats().compactFallbacks, 1);
  });
});

test('a failed GETBLOCKTXN falls back to the full block from another announcer; an unrequested BLOCK is SYNC_UNREQUESTED', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'));
    const c = net.add('c', open('c'));
    const b = net.add('b', open('b'));
    net.link(a, b);
    net.link(c, b);
    const txs = a.chain.makeTxs(4, 10);
    const block = a.chain.mine({ txs });
    // C has the same block (copied), and announces it too.
    c.chain.storeHeaders([c.chain.decodeHeader(block.header.bytes)]);
    c.chain.importBlock(c.chain.decodeBlock(block.bytes));
    // Nothing prefilled (as from a peer that believes B has every transaction); B's mempool is empty.
    const msg = new CompactBuilder(block, new Uint8Array(8).fill(1)).build();
    b.engine.onCompactBlock('a', msg, 0, WALL);
    assert.ok(b.engine.poll(0).some((x) => x.type === 'getblocktxn'));
    b.engine.onCompactBlock('c', msg, 0, WALL); // C's announcement while A's rebuild is under way
    assert.deepEqual(b.engine.poll(0), []);
    b.engine.onBlockTxnFailed('a', block.header.hash);
    const next = b.engine.poll(1);
    assert.deepEqual(next.map(typePeer), [['getdata', 'c']]);
    // A pushes the full block unasked.
    b.engine.onBlock('a', block.bytes, 2, WALL);
    assert.deepEqual(b.engine.poll(2).map((x) => x.type === 'penalize' && x.reason), ['SYNC_UNREQUESTED']);
    c.engine.onGetData('b', (next[0] as { items: InvItem[] }).items, 3);
    net.run();
    assert.equal(hex(b.chain.tip().hash), hex(block.header.hash));
  });
});

test('a collision in the compact block fetches the full block without blame', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'));
    const b = net.add('b', open('b'));
    net.link(a, b);
    const block = a.chain.mine({ txs: a.chain.makeTxs(3, 11) });
    const forged: [Uint8Array, Uint8Array, Uint8Array, [number, Uint8Array][]] = [block.header.bytes, new Uint8Array(8), new Uint8Array(18), []];
    b.engine.onCompactBlock('a', forged, 0, WALL);
    const out = b.engine.poll(0);
    assert.deepEqual(out.map((x) => x.type), ['getdata']);
    a.engine.onGetData('b', (out[0] as { items: InvItem[] }).items, 0);
    net.run();
    assert.equal(hex(b.chain.tip().hash), hex(block.header.hash));
    assert.equal(net.penalties.length, 0);
  });
});

test('a reorganisation: transactions of the disconnected block return to the mempool, those of the new chain do not', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'));
    const other = open('other');
    const txs = a.chain.makeTxs(6, 12);
    for (const t of txs) a.engine.submitTx(t, 0);
    const mined = a.chain.mine({ txs });
    a.engine.onChainChanged({ connected: [mined.header.hash], disconnected: [] }, 0);
    assert.equal(a.mempool.size, 0);
    // A heavier branch including two of them.
    const b1 = other.mine({ txs: txs.slice(0, 2) });
    const b2 = other.mine();
    a.chain.storeHeaders([a.chain.decodeHeader(b1.header.bytes), a.chain.decodeHeader(b2.header.bytes)]);
    a.chain.importBlock(a.chain.decodeBlock(b1.bytes));
    const result = a.chain.importBlock(a.chain.decodeBlock(b2.bytes));
    assert.equal(result.disconnected.length, 1);
    a.engine.onChainChanged(result, 1);
    assert.deepEqual([...a.mempool.txs()].map((t) => hex(t.id)).sort(), mined.txIds.slice(2).map(hex).sort());
    void net;
  });
});

test('the known inventory is bounded: the oldest entries are forgotten', async () => {
  await withNet((net, open) => {
    const b = net.add('b', open('b'), { knownPerPeer: 3 });
    b.engine.addPeer('x', 0);
    const ids = Array.from({ length: 5 }, (_, i) => new Uint8Array(32).fill(i + 1));
    b.engine.onInv('x', ids.map((id) => [InvKind.TX, id]), 0);
    assert.deepEqual(ids.map((id) => b.engine.knows('x', InvKind.TX, id)), [false, false, true, true, true]);
    void net;
  });
});

test('GETBLOCKTXN is served for a held block with increasing indexes in range; anything else is INVALID_DATA', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'));
    const block = a.chain.mine({ txs: a.chain.makeTxs(5, 13) });
    assert.deepEqual(a.engine.serveBlockTxn('x', block.header.hash, [1, 4]).map(hex), [block.txs[1]!, block.txs[4]!].map(hex));
    for (const [hash, indexes] of [[new Uint8Array(32), [0]], [block.header.hash, [5]], [block.header.hash, [2, 2]], [block.header.hash, [3, 1]]] as const) {
      assert.throws(() => a.engine.serveBlockTxn('x', hash, indexes), (e: unknown) => isPqnetError(e) && e.code === 'INVALID_DATA');
    }
    void net;
  });
});

test('more blocks connected at once than maxCompactAnnounce: only the tip goes out, as a block INV', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'), { maxCompactAnnounce: 1 });
    const b = net.add('b', open('b'));
    net.link(a, b);
    const blocks = a.chain.mineChain(2);
    a.engine.onChainChanged({ connected: blocks.map((x) => x.header.hash), disconnected: [] }, 0);
    net.run();
    assert.equal(net.count('b', 'a', 'relay.cmpctblock'), 0);
    assert.equal(net.count('b', 'a', 'relay.inv'), 1);
    const ev = net.events.find((e) => e.action.type === 'announced');
    assert.ok(ev?.action.type === 'announced');
    assert.equal(hex(ev.action.hash), hex(blocks[1]!.header.hash));
    assert.ok(a.engine.knows('b', InvKind.BLOCK, blocks[1]!.header.hash));
  });
});

test('while catching up (headers ahead of the tip) connected blocks are not announced', async () => {
  await withNet((net, open) => {
    const a = net.add('a', open('a'));
    const b = net.add('b', open('b'));
    net.link(a, b);
    const src = open('src');
    const blocks = src.mineChain(3);
    a.chain.storeHeaders(blocks.map((x) => a.chain.decodeHeader(x.header.bytes)));
    const r1 = a.chain.importBlock(a.chain.decodeBlock(blocks[0]!.bytes));
    a.engine.onChainChanged(r1, 0);
    net.run();
    assert.equal(net.count('b', 'a', 'relay.cmpctblock'), 0, 'two more headers wait for their blocks');
    a.chain.importBlock(a.chain.decodeBlock(blocks[1]!.bytes));
    const r3 = a.chain.importBlock(a.chain.decodeBlock(blocks[2]!.bytes));
    a.engine.onChainChanged(r3, 1);
    net.run();
    assert.equal(net.count('b', 'a', 'relay.cmpctblock'), 1, 'caught up: the tip goes out');
  });
});
