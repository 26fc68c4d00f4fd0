/**
 * Relay over real nodes on tcp://127.0.0.1:0, each with a devchain in a
 * temporary SQLite file: a transaction crosses a line of three nodes, a block
 * announced compactly is rebuilt from the receiver's mempool, and evil peers
 * (test/node/_evil.ts) that push invalid or unrequested data or flood INVs are
 * penalised.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex } from '../../src/chain/adapter.ts';
import { encodeTx, type Devchain } from '../../src/chain/devchain/index.ts';
import { SystemClock } from '../../src/core/clock.ts';
import type { Node } from '../../src/node/node.ts';
import { Relay, type RelayOptions } from '../../src/node/relay.ts';
import { SYNC_PROTOCOL } from '../../src/sync/messages.ts';
import { InvKind, type InvItem } from '../../src/sync/relay-messages.ts';
import { tempDir, withChains } from '../chain/_devchain.ts';
import { Evils } from './_evil.ts';
import { testNodes, until } from './_nodes.ts';

const FAST: RelayOptions = { engine: { trickleMs: 10 } };

interface Site {
  readonly node: Node;
  readonly chain: Devchain;
  readonly relay: Relay;
}

/** Nodes with devchains and relays; everything is stopped, closed and removed afterwards (relays, then nodes, then chains). */
async function withSites(fn: (make: (name: string, options?: RelayOptions) => Site, chain: (name: string) => Devchain) => Promise<void>): Promise<void> {
  const dir = await tempDir('pqnet-relay-node-');
  const t = testNodes();
  const relays: Relay[] = [];
  try {
    await withChains(async (open) => {
      try {
        await fn((name, options = FAST) => {
          const chain = open(dir.file(name));
          const node = t.make(name, { protocols: [SYNC_PROTOCOL], height: () => chain.tip().height });
          const relay = new Relay(node, chain, new SystemClock(), options);
          relays.push(relay);
          return { node, chain, relay };
        }, (name) => open(dir.file(name)));
      } finally {
        for (const r of relays) r.stop();
        await t.cleanup();
      }
    });
  } finally {
    await dir.cleanup();
  }
}

test('a transaction submitted at A reaches C through B: each node receives it once, and nobody fetches it twice', async () => {
  await withSites(async (make) => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => make(n)) as [Site, Site, Site];
    for (const s of [a, b, c]) await s.node.start();
    await b.node.connect(a.node.listenAddresses[0]!);
    await c.node.connect(b.node.listenAddresses[0]!);
    await until(() => b.relay.engine.peers().length === 2 && a.relay.engine.peers().length === 1 && c.relay.engine.peers().length === 1, 'relay peers');
    const [t1] = a.chain.makeTxs(1, 1);
    const accepted: string[] = [];
    for (const s of [b, c]) s.relay.on('tx', (tx, from) => accepted.push(`${s.node.agent}<-${from === a.node.peerId ? 'a' : from === b.node.peerId ? 'b' : '?'}:${hex(tx.id)}`));
    const id = a.relay.submitTx(t1!);
    await until(() => c.relay.mempool.has(id), 'the transaction at C');
    assert.ok(b.relay.mempool.has(id));
    assert.deepEqual(accepted, [`test/b<-a:${hex(id)}`, `test/c<-b:${hex(id)}`]);
    // A second transaction, from C: once it is at A, any echo of the first would have gone out before it.
    const [t2] = c.chain.makeTxs(1, 2);
    const id2 = c.relay.submitTx(t2!);
    await until(() => a.relay.mempool.has(id2), 'the second transaction at A');
    const count = (s: Site, from: Site, dir: 'in' | 'out', type: string): number => s.node.messageCounts(from.node.peerId)?.[dir][type] ?? 0;
    assert.equal(count(b, a, 'in', 'relay.tx'), 1, 'B got the first from A once');
    assert.equal(count(c, b, 'in', 'relay.tx'), 1, 'C got the first from B once');
    assert.equal(count(b, c, 'in', 'relay.tx'), 1, 'B got the second from C once');
    assert.equal(count(a, b, 'in', 'relay.tx'), 1, 'A got the second from B once');
    assert.equal(count(b, a, 'out', 'relay.getdata'), 1, 'B asked A once');
    assert.equal(count(c, b, 'out', 'relay.getdata'), 1, 'C asked B once');
    assert.equal(count(b, c, 'in', 'relay.inv'), 1, 'C announced only its own transaction to B');
    assert.equal(count(a, b, 'in', 'relay.inv'), 1, 'B announced only the second to A');
    for (const s of [a, b, c]) {
      assert.equal(s.relay.mempool.size, 2);
      assert.deepEqual(s.node.health().offenses, {});
    }
    assert.equal(b.relay.stats().txsAccepted, 2);
    assert.equal(b.relay.stats().txsRequested, 2);
  });
});

test('a block announced compactly is rebuilt at the receiver, which asks only for the transactions it lacked', async () => {
  await withSites(async (make) => {
    const a = make('a');
    const b = make('b');
    for (const s of [a, b]) await s.node.start();
    await b.node.connect(a.node.listenAddresses[0]!);
    await until(() => a.relay.engine.peers().length === 1 && b.relay.engine.peers().length === 1, 'relay peers');
    const N = 200;
    const txs = a.chain.makeTxs(N, 3);
    for (const t of txs) a.relay.submitTx(t);
    await until(() => b.relay.mempool.size === N, 'B to hold every transaction');
    // B loses 10% of them (evicted, say); A still believes B has them, so it prefills nothing.
    const lost = txs.filter((_, i) => i % 10 === 7).map((t) => a.chain.decodeTx(t).id);
    assert.equal(b.relay.mempool.remove(lost), N / 10);
    const blocks: string[] = [];
    b.relay.on('block', (header, from, result) => blocks.push(`${hex(header.hash)} from ${from === a.node.peerId ? 'a' : '?'} connected ${result.connected.length}`));
    const block = a.chain.mine({ txs });
    assert.equal(block.txs.length, N);
    a.relay.onChainChanged({ connected: [block.header.hash], disconnected: [] });
    await until(() => hex(b.chain.tip().hash) === hex(block.header.hash), 'B to import the block');
    assert.deepEqual(blocks, [`${hex(block.header.hash)} from a connected 1`]);
    const stats = b.relay.stats();
    assert.equal(stats.compactReceived, 1);
    assert.equal(stats.compactRebuilt, 1);
    assert.equal(stats.compactWithMissing, 1);
    assert.equal(stats.blockTxnRequested, N / 10, 'exactly the missing transactions');
    assert.equal(stats.blockTxnBytes, txs.filter((_, i) => i % 10 === 7).reduce((n, t) => n + t.length, 0));
    assert.equal(stats.compactFallbacks, 0);
    assert.equal(stats.blocksRequested, 0, 'no GETDATA for the block');
    assert.equal(stats.fullBlocksReceived, 0);
    const counts = b.node.messageCounts(a.node.peerId)!;
    assert.equal(counts.in['relay.cmpctblock'], 1);
    assert.equal(counts.out['relay.getblocktxn.request'], 1);
    assert.equal(counts.in['relay.getblocktxn.response'], 1);
    assert.equal(counts.in['relay.block'], undefined, 'no full block crossed');
    // Both mempools follow the chain.
    assert.equal(b.relay.mempool.size, 0);
    assert.equal(a.relay.mempool.size, 0);
    assert.deepEqual(b.node.health().offenses, {});
  });
});

test('evil peers: an inadmissible pushed transaction is CHAIN_BAD_TX and not relayed; unrequested TX and BLOCK are SYNC_UNREQUESTED; an INV flood is SYNC_RELAY_FLOOD', async () => {
  const ev = new Evils();
  try {
    await withSites(async (make, chainOf) => {
      const b = make('b', { engine: { trickleMs: 10, invEntriesPerSecond: 100, invEntriesBurst: 200 } });
      const c = make('c');
      for (const s of [b, c]) await s.node.start();
      await c.node.connect(b.node.listenAddresses[0]!);
      const types = b.relay.messages.types;
      const m = b.relay.messages;
      const evilOf = async (name: string) => {
        const e = await ev.active(b.node, { name, protocols: [SYNC_PROTOCOL], types });
        await until(() => b.relay.engine.peers().includes(e.peerId), `${name} a relay peer`);
        return e;
      };
      const getdatas = (e: { inbound: { type: { name: string }; value: unknown }[] }): InvItem[] =>
        e.inbound.filter((x) => x.type.name === 'relay.getdata').flatMap((x) => x.value as InvItem[]);

      // (3) An inadmissible transaction (its sender does not exist), announced and then delivered on request.
      const liar = await evilOf('liar');
      const bad = encodeTx({ from: new Uint8Array(32).fill(5), to: b.chain.genesisAccountIds[0]!, amount: 1, fee: 0, nonce: 0, memo: new Uint8Array(0) });
      const badId = b.chain.decodeTx(bad).id;
      await liar.send(m.inv, [[InvKind.TX, badId]]);
      await until(() => getdatas(liar).length === 1, 'B to ask the liar for it');
      await liar.send(m.tx, [bad]);
      await until(() => b.node.health().offenses['CHAIN_BAD_TX'] === 1, 'CHAIN_BAD_TX');
      assert.ok(!b.relay.mempool.has(badId));
      assert.equal(b.relay.stats().txsRejected, 1);
      assert.ok(b.node.scores().some((s) => s.peerId === liar.peerId && s.score < 50));
      // A valid transaction afterwards reaches C: the bad one never did.
      const good = b.relay.submitTx(b.chain.makeTxs(1, 4)[0]!);
      await until(() => c.relay.mempool.has(good), 'the valid transaction at C');
      assert.equal(c.relay.mempool.size, 1);
      assert.equal(c.relay.stats().txsReceived, 1);

      // (5) Unrequested: a valid transaction and a valid block pushed without being asked for.
      const pusher = await evilOf('pusher');
      const [tx] = b.chain.makeTxs(1, 5);
      await pusher.send(m.tx, [tx!]);
      const other = chainOf('other');
      const block = other.mine({ txs: other.makeTxs(2, 6) });
      await pusher.send(m.block, [block.bytes]);
      await until(() => b.node.health().offenses['SYNC_UNREQUESTED'] === 2, 'two SYNC_UNREQUESTED');
      assert.ok(!b.relay.mempool.has(b.chain.decodeTx(tx!).id));
      assert.equal(b.chain.header(block.header.hash), undefined, 'the block was not taken');

      // (4) An INV flood: 3 x 100 entries against a burst of 200.
      const flooder = await evilOf('flooder');
      const fresh = (i: number): Uint8Array => Uint8Array.from({ length: 32 }, (_, j) => (j === 0 ? i & 0xff : j === 1 ? i >> 8 : 0xee));
      for (let k = 0; k < 3; k++) await flooder.send(m.inv, Array.from({ length: 100 }, (_, i): InvItem => [InvKind.TX, fresh(k * 100 + i)]));
      await until(() => (b.node.health().offenses['SYNC_RELAY_FLOOD'] ?? 0) >= 1, 'SYNC_RELAY_FLOOD');
      // The dropped INV's entries were never taken up: 200 fetches, not 300.
      assert.equal(b.relay.stats().pendingFetches, 200);
      await until(() => getdatas(flooder).length === 200, 'GETDATAs for the first 200');
      assert.deepEqual(b.node.health().offenses['SYNC_RELAY_FLOOD'], 1);
    });
  } finally {
    ev.cleanup();
  }
});
