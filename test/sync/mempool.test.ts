/**
 * The mempool on devchains in temporary files: admission through checkTx,
 * bounds and eviction (FIFO and by priority), removal of mined transactions,
 * the bounded re-check after a block, and re-admission after a reorg.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex, type ChainTx, type ImportResult } from '../../src/chain/adapter.ts';
import { encodeTx, type Devchain, type DevTx } from '../../src/chain/devchain/index.ts';
import { Mempool } from '../../src/sync/mempool.ts';
import { code, headersOf, syncHeaders, tempDir, withChains } from '../chain/_devchain.ts';

const txsOf = (chain: Devchain, count: number, seed: number): DevTx[] => chain.makeTxs(count, seed).map((b) => chain.decodeTx(b));

async function withChain(fn: (open: (name: string) => Devchain) => void): Promise<void> {
  const dir = await tempDir('pqnet-mempool-');
  try {
    await withChains((open) => fn((name) => open(dir.file(name))));
  } finally {
    await dir.cleanup();
  }
}

test('admission: checkTx decides, a held transaction is "known", an inadmissible one throws CHAIN_BAD_TX', async () => {
  await withChain((open) => {
    const chain = open('a');
    const pool = new Mempool(chain);
    const [t1, t2] = txsOf(chain, 2, 1);
    assert.equal(pool.add(t1!), 'added');
    assert.equal(pool.add(t1!), 'known');
    assert.equal(pool.add(t2!), 'added');
    assert.equal(pool.size, 2);
    assert.equal(pool.bytes, t1!.bytes.length + t2!.bytes.length);
    assert.ok(pool.has(t1!.id));
    assert.equal(pool.get(t2!.id), t2);
    assert.deepEqual([...pool.txs()].map((t) => hex(t.id)), [hex(t1!.id), hex(t2!.id)]);
    const stranger = chain.decodeTx(encodeTx({ from: new Uint8Array(32).fill(3), to: chain.genesisAccountIds[0]!, amount: 1, fee: 0, nonce: 0, memo: new Uint8Array(0) }));
    assert.throws(() => pool.add(stranger), code('CHAIN_BAD_TX', /unknown sender/));
    assert.equal(pool.size, 2);
    assert.equal(pool.remove([t1!.id, stranger.id]), 1);
    assert.equal(pool.size, 1);
  });
});

test('full by count or bytes without priorities: the oldest are evicted (first in, first out)', async () => {
  await withChain((open) => {
    const chain = open('a');
    const txs = txsOf(chain, 8, 2);
    const byCount = new Mempool(chain, { maxTxs: 5 });
    for (const t of txs) assert.equal(byCount.add(t), 'added');
    assert.equal(byCount.size, 5);
    assert.deepEqual([...byCount.txs()].map((t) => hex(t.id)), txs.slice(3).map((t) => hex(t.id)));
    assert.equal(byCount.stats().evicted, 3);
    const size = txs[0]!.bytes.length; // makeTxs transactions have empty memos: all near one size
    const byBytes = new Mempool(chain, { maxBytes: size * 3 + 2 });
    for (const t of txs) byBytes.add(t);
    assert.ok(byBytes.bytes <= size * 3 + 2);
    assert.ok(byBytes.has(txs[7]!.id) && !byBytes.has(txs[0]!.id));
    const tiny = new Mempool(chain, { maxBytes: 10 });
    assert.equal(tiny.add(txs[0]!), 'full', 'larger than the whole budget');
  });
});

test('full with a priority: the lowest go first, and a newcomer that does not beat them is refused without evicting anything', async () => {
  await withChain((open) => {
    const chain = open('a');
    const ids = chain.genesisAccountIds;
    const tx = (i: number, fee: number): DevTx => chain.decodeTx(encodeTx({ from: ids[i]!, to: ids[i + 1]!, amount: 1, fee, nonce: 0, memo: new Uint8Array(0) }));
    const pool = new Mempool(chain, { maxTxs: 3, priority: (t: ChainTx) => (t as DevTx).fee });
    const [a, b, c] = [tx(0, 5), tx(2, 1), tx(4, 9)];
    for (const t of [a, b, c]) assert.equal(pool.add(t!), 'added');
    assert.equal(pool.add(tx(6, 1)), 'full', 'ties the lowest: refused');
    assert.equal(pool.size, 3);
    assert.equal(pool.add(tx(8, 7)), 'added', 'beats the lowest (fee 1)');
    assert.ok(!pool.has(b!.id) && pool.has(a!.id) && pool.has(c!.id));
    assert.equal(pool.add(tx(10, 6)), 'added', 'then fee 5 goes');
    assert.ok(!pool.has(a!.id));
    assert.deepEqual([...pool.txs()].map((t) => (t as DevTx).fee).sort((x, y) => x - y), [6, 7, 9]);
    // Removals leave stale heap entries that never evict a live transaction.
    pool.remove([c!.id]);
    assert.equal(pool.add(tx(12, 2)), 'added');
    assert.equal(pool.add(tx(14, 3)), 'added', 'evicts fee 2, not a removed entry');
    assert.deepEqual([...pool.txs()].map((t) => (t as DevTx).fee).sort((x, y) => x - y), [3, 6, 7]);
  });
});

test('a connected block takes its transactions out; the re-check pass, run in bounded steps, drops what the block made invalid', async () => {
  await withChain((open) => {
    const chain = open('a');
    const ids = chain.genesisAccountIds;
    const pool = new Mempool(chain);
    const spend = (to: number, amount: number): DevTx => chain.decodeTx(encodeTx({ from: ids[0]!, to: ids[to]!, amount, fee: 0, nonce: 0, memo: new Uint8Array(0) }));
    const mined = spend(1, 10);
    const conflict = spend(2, 10); // the same sender and nonce
    const others = txsOf(chain, 6, 3).filter((t) => !t.from.every((x, i) => x === ids[0]![i]));
    for (const t of [mined, conflict, ...others]) assert.equal(pool.add(t), 'added');
    const block = chain.mine({ txs: [mined.bytes] });
    assert.equal(pool.blockConnected(block.txIds), 1);
    assert.ok(!pool.has(mined.id));
    assert.equal(pool.recheckPending, pool.size);
    // Budget 2 per call: the pass takes several calls and finds the conflict on its way.
    let calls = 0;
    while (pool.recheckPending > 0) {
      pool.recheck(2);
      calls++;
    }
    assert.ok(calls >= Math.ceil((others.length + 1) / 2));
    assert.ok(!pool.has(conflict.id), 'the conflicting spend is gone');
    assert.equal(pool.size, others.length);
    assert.equal(pool.stats().mined, 1);
    assert.equal(pool.stats().invalidated, 1);
  });
});

test('a reorganisation brings the transactions of disconnected blocks back, except those in the new chain', async () => {
  await withChain((open) => {
    const a = open('a');
    const b = open('b');
    const pool = new Mempool(a);
    const txs = a.makeTxs(6, 4);
    const shared = txs.slice(0, 2);
    const mineA = a.mine({ txs });
    pool.blockConnected(mineA.txIds);
    assert.equal(pool.size, 0);
    // B builds a heavier branch from genesis that includes two of the same transactions.
    b.mine({ txs: shared });
    b.mine();
    const headers = headersOf(b, 1, 2);
    syncHeaders(a, headers);
    let result: ImportResult = { connected: [], disconnected: [] };
    for (const h of headers) result = a.importBlock(a.decodeBlock(b.block(h.hash)!));
    assert.deepEqual(result.disconnected.map(hex), [hex(mineA.header.hash)]);
    assert.equal(result.connected.length, 2);
    const exclude = new Set<string>();
    for (const h of result.connected) for (const id of a.decodeBlock(a.block(h)!).txIds) exclude.add(hex(id));
    const back = pool.readmit(mineA.txs, exclude);
    assert.equal(back, 4);
    assert.deepEqual([...pool.txs()].map((t) => hex(t.id)), mineA.txIds.slice(2).map(hex));
    assert.equal(pool.stats().readmitted, 4);
  });
});
