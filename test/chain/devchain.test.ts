import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hex } from '../../src/chain/adapter.ts';
import {
  bigintToBytes, bucketHashesOf, buildHeader, cborUint, decodeHeader, decodeSnapshot, decodeTx, encodeHeader, encodeTx, HEADER_VERSION, makeDevchainParams,
  MAX_HEADER_BYTES, MAX_MEMO_BYTES, MAX_NONCE_AHEAD, MAX_TX_BYTES, merkleRoot, mineHeader, sha3, stateRootOf, workOf, type DevchainParams,
} from '../../src/chain/devchain/index.ts';
import { buildSnapshot } from '../../src/chain/devchain/state.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { balances, blocksOf, code, forge, headersOf, syncHeaders, syncTo, T0, TEST_PARAMS, tempDir, withChains } from './_devchain.ts';

let tmp: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  tmp = await tempDir('pqnet-devchain-');
});
after(async () => {
  await tmp.cleanup();
});

const NOW = T0 + 3_600_000;

test('genesis is deterministic: same params, same hash; other params, another', async () => {
  await withChains((open) => {
    const a = open(tmp.file('g'));
    const b = open(tmp.file('g'));
    const c = open(tmp.file('g'), { ...TEST_PARAMS, chainId: 8 });
    assert.deepEqual(a.genesis, b.genesis);
    assert.notEqual(hex(a.genesis.hash), hex(c.genesis.hash));
    assert.equal(a.genesis.height, 0);
    assert.deepEqual(a.genesis.parent, new Uint8Array(32));
    assert.equal(a.genesis.work, workOf(a.params.target));
    assert.equal(a.genesis.totalWork, a.genesis.work);
    assert.ok(a.genesis.hasBlock);
    assert.deepEqual(a.tip(), a.genesis);
    assert.deepEqual(a.bestHeader(), a.genesis);
    assert.equal(a.headerAt(0)!.height, 0);
    // The default target gives ~16 hashes per block and 15 units of work.
    assert.equal(a.params.target, 1n << 252n);
    assert.equal(a.genesis.work, 15n);
    // Genesis decodes (exempt from proof of work) and its block is served.
    assert.equal(hex(a.decodeHeader(a.genesis.bytes).hash), hex(a.genesis.hash));
    assert.equal(a.decodeBlock(a.block(a.genesis.hash)!).txIds.length, 0);
    // A height-0 header that is not the genesis is refused.
    const other = buildHeader({ ...a.decodeHeader(a.genesis.bytes), nonce: 1 });
    assert.throws(() => a.decodeHeader(other.bytes), code('CHAIN_BAD_HEADER'));
    // Genesis accounts hold the genesis balance.
    assert.equal(a.genesisAccountIds.length, 200);
    assert.deepEqual(a.account(a.genesisAccountIds[0]!), { balance: a.params.genesisBalance, nonce: 0 });
  });
});

test('mine 200 blocks with transactions; reopening gives the same tip, best header and balances', async () => {
  const file = tmp.file('reopen');
  let tip: string;
  let state: string[];
  await withChains((open) => {
    const a = open(file);
    const blocks = a.mineChain(200, { txsPerBlock: 8, seed: 1 });
    assert.equal(blocks.length, 200);
    assert.equal(a.tip().height, 200);
    assert.ok(blocks.every((b) => b.txIds.length === 8), 'every block got its transactions');
    assert.deepEqual(a.bestHeader(), a.tip());
    assert.equal(a.tip().totalWork, 201n * a.genesis.work);
    assert.equal(hex(a.headerAt(100)!.hash), hex(blocks[99]!.header.hash));
    assert.equal(hex(a.headerAt(100, blocks[150]!.header.hash)!.hash), hex(blocks[99]!.header.hash));
    assert.equal(a.headerAt(201), undefined);
    assert.equal(a.headerAt(201, blocks[150]!.header.hash), undefined);
    // Money moved, fees were burnt, nonces count the transactions sent.
    const total = a.genesisAccountIds.reduce((s, id) => s + a.account(id)!.balance, 0n);
    assert.ok(total < 200n * a.params.genesisBalance);
    const sent = a.genesisAccountIds.reduce((s, id) => s + a.account(id)!.nonce, 0);
    assert.equal(sent, 1600);
    a.checkIntegrity();
    tip = hex(a.tip().hash);
    state = balances(a);
  });
  await withChains((open) => {
    const a = open(file);
    assert.equal(hex(a.tip().hash), tip);
    assert.equal(hex(a.bestHeader().hash), tip);
    assert.deepEqual(balances(a), state);
    a.checkIntegrity();
    // And it goes on from there.
    a.mineChain(2, { txsPerBlock: 3 });
    assert.equal(a.tip().height, 202);
  });
});

test('decodeHeader refuses bad CBOR, wrong fields, version, chain id, target, proof of work and oversize', async () => {
  await withChains((open) => {
    const a = open(tmp.file('hdr'));
    const block = a.mine({});
    const f = a.decodeHeader(block.header.bytes);
    const bad = (bytes: Uint8Array, why?: RegExp): void => assert.throws(() => a.decodeHeader(bytes), code('CHAIN_BAD_HEADER', why));
    bad(new Uint8Array([0xff, 0x00]));
    bad(block.header.bytes.subarray(0, block.header.bytes.length - 1));
    bad(new Uint8Array([...block.header.bytes, 0x00])); // trailing byte
    bad(new Uint8Array(0));
    // Non-canonical: the nonce with a longer head than needed.
    const prefix = encodeCbor([f.version, f.chainId, f.parent, f.height, f.timestampMs, f.txRoot, f.stateRoot, bigintToBytes(f.target, 32), 0]);
    bad(new Uint8Array([...prefix.subarray(0, prefix.length - 1), 0x19, 0x00, f.nonce]), /more bytes than necessary/);
    // Wrong shapes.
    bad(encodeCbor([1, 2, 3]));
    bad(encodeCbor({ version: 1 }));
    bad(encodeCbor([f.version, f.chainId, f.parent.subarray(0, 31), f.height, f.timestampMs, f.txRoot, f.stateRoot, bigintToBytes(f.target, 32), f.nonce]));
    bad(encodeCbor([f.version, f.chainId, f.parent, -1, f.timestampMs, f.txRoot, f.stateRoot, bigintToBytes(f.target, 32), f.nonce]));
    bad(encodeCbor([f.version, f.chainId, f.parent, f.height, 1.5, f.txRoot, f.stateRoot, bigintToBytes(f.target, 32), f.nonce]));
    // Valid proof of work but a wrong field.
    const base = { version: HEADER_VERSION, chainId: f.chainId, parent: f.parent, height: f.height, timestampMs: f.timestampMs, txRoot: f.txRoot, stateRoot: f.stateRoot, target: f.target };
    bad(mineHeader({ ...base, version: 2 }).bytes, /version 2/);
    bad(mineHeader({ ...base, chainId: 8 }).bytes, /chain id 8/);
    bad(mineHeader({ ...base, target: f.target >> 1n }).bytes, /target differs/); // harder target: still not the chain's
    bad(mineHeader({ ...base, target: f.target * 2n }).bytes, /target differs/);
    // Proof of work not met: nonces whose hash is above the target.
    let misses = 0;
    for (let nonce = 0; misses < 3; nonce++) {
      const h = buildHeader({ ...base, nonce });
      if (BigInt(`0x${hex(h.hash)}`) > f.target) {
        bad(h.bytes, /proof of work/);
        misses++;
      } else {
        assert.equal(hex(a.decodeHeader(h.bytes).hash), hex(h.hash));
      }
    }
    // Oversize: more bytes than the largest header, even before decoding.
    const big = new Uint8Array(MAX_HEADER_BYTES + 1);
    big.set(block.header.bytes);
    bad(big, /over its type cap|> 170/);
    assert.equal(a.limits.maxHeaderBytes, MAX_HEADER_BYTES);
  });
});

test('the size limits are exact: the largest header and transaction encode to them', () => {
  const max = Number.MAX_SAFE_INTEGER;
  const h = encodeHeader({
    version: HEADER_VERSION, chainId: 0xffff_ffff, parent: new Uint8Array(32), height: max, timestampMs: max,
    txRoot: new Uint8Array(32), stateRoot: new Uint8Array(32), target: (1n << 256n) - 1n, nonce: max,
  });
  assert.equal(h.length, MAX_HEADER_BYTES);
  const t = encodeTx({ from: new Uint8Array(32), to: new Uint8Array(32), amount: max, fee: max, nonce: max, memo: new Uint8Array(MAX_MEMO_BYTES) });
  assert.equal(t.length, MAX_TX_BYTES);
  assert.deepEqual(cborUint(max), encodeCbor(max));
  for (const n of [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32]) assert.deepEqual(cborUint(n), encodeCbor(n), String(n));
});

test('validateHeader refuses a wrong height, a wrong parent, a timestamp before the parent\'s or too far ahead', async () => {
  await withChains((open) => {
    const a = open(tmp.file('val'));
    a.mine({});
    const parent = a.tip();
    const pf = a.decodeHeader(parent.bytes);
    const mk = (over: { height?: number; timestampMs?: number; parent?: Uint8Array }) => a.decodeHeader(mineHeader({
      version: HEADER_VERSION, chainId: a.params.chainId, parent: over.parent ?? parent.hash, height: over.height ?? parent.height + 1,
      timestampMs: over.timestampMs ?? pf.timestampMs, txRoot: new Uint8Array(32), stateRoot: pf.stateRoot, target: a.params.target,
    }).bytes);
    const ok = mk({});
    a.validateHeader(ok, parent, NOW);
    const bad = (h: ReturnType<typeof mk>, nowMs = NOW): void => assert.throws(() => a.validateHeader(h, parent, nowMs), code('CHAIN_BAD_HEADER'));
    bad(mk({ height: parent.height + 2 }));
    bad(mk({ height: parent.height }));
    bad(mk({ parent: a.genesis.hash }));
    bad(mk({ timestampMs: pf.timestampMs - 1 }));
    // Same timestamp as the parent is fine; the future limit is inclusive.
    const future = mk({ timestampMs: NOW + a.params.maxFutureMs });
    a.validateHeader(future, parent, NOW);
    bad(future, NOW - 1);
    bad(mk({ timestampMs: NOW + a.params.maxFutureMs + 1 }));
    // A parent given as the engine builds it (spread, not stored) works the same.
    const child = a.decodeHeader(mineHeader({
      version: HEADER_VERSION, chainId: a.params.chainId, parent: ok.hash, height: ok.height + 1, timestampMs: ok.timestampMs,
      txRoot: new Uint8Array(32), stateRoot: pf.stateRoot, target: a.params.target,
    }).bytes);
    a.validateHeader(child, { ...ok, totalWork: parent.totalWork + ok.work, hasBlock: false }, NOW);
  });
});

test('storeHeaders: a missing parent stores nothing; headers-first sync imports blocks in order and in reverse order', async () => {
  await withChains((open) => {
    const a = open(tmp.file('hf-a'));
    a.mineChain(30, { txsPerBlock: 5, seed: 7 });
    const headers = headersOf(a, 1, 30);

    const b = open(tmp.file('hf-b'));
    const gap = [b.decodeHeader(headers[0]!.bytes), b.decodeHeader(headers[2]!.bytes)];
    assert.throws(() => b.storeHeaders(gap), code('CHAIN_UNKNOWN_PARENT'));
    assert.equal(b.header(headers[0]!.hash), undefined, 'nothing of the batch was stored');
    assert.deepEqual(b.bestHeader(), b.genesis);
    // A block whose header is not stored.
    assert.throws(() => b.importBlock(b.decodeBlock(a.block(headers[0]!.hash)!)), code('CHAIN_UNKNOWN_PARENT'));

    // In order: headers in two batches (the second overlapping the first), then each block connects at once.
    syncHeaders(b, headers.slice(0, 20));
    syncHeaders(b, headers.slice(10));
    assert.equal(hex(b.bestHeader().hash), hex(a.tip().hash));
    assert.equal(b.bestHeader().totalWork, a.tip().totalWork);
    assert.equal(b.bestHeader().hasBlock, false);
    assert.deepEqual(b.tip(), b.genesis);
    assert.equal(hex(b.headerAt(17)!.hash), hex(headers[16]!.hash));
    for (const [i, blk] of blocksOf(a, b, headers).entries()) {
      const r = b.importBlock(blk);
      assert.deepEqual(r, { connected: [headers[i]!.hash], disconnected: [] });
    }
    assert.equal(hex(b.tip().hash), hex(a.tip().hash));
    assert.ok(b.tip().hasBlock);
    assert.deepEqual(balances(b), balances(a));
    // Importing a block again changes nothing.
    assert.deepEqual(b.importBlock(b.decodeBlock(a.block(headers[5]!.hash)!)), { connected: [], disconnected: [] });
    b.checkIntegrity();

    // Reverse order: every body waits for its parent's, then the first one connects them all.
    const c = open(tmp.file('hf-c'));
    syncHeaders(c, headers);
    const blocks = blocksOf(a, c, headers).reverse();
    for (const blk of blocks.slice(0, -1)) {
      assert.deepEqual(c.importBlock(blk), { connected: [], disconnected: [] });
      assert.ok(c.header(blk.header.hash)!.hasBlock);
    }
    assert.deepEqual(c.tip(), c.genesis);
    const r = c.importBlock(blocks.at(-1)!);
    assert.deepEqual(r.connected.map(hex), headers.map((h) => hex(h.hash)));
    assert.equal(hex(c.tip().hash), hex(a.tip().hash));
    assert.equal(hex(c.decodeHeader(c.tip().bytes).stateRoot), hex(a.decodeHeader(a.tip().bytes).stateRoot));
    assert.deepEqual(balances(c), balances(a));
    c.checkIntegrity();
  });
});

test('reorg to a heavier branch and back: exact disconnected/connected lists, state as on a node that only saw the branch', async () => {
  await withChains((open) => {
    const a = open(tmp.file('reorg-a'));
    const chainA = a.mineChain(10, { txsPerBlock: 6, seed: 100 });
    const aHashes = chainA.map((b) => hex(b.header.hash));

    // B saw A's first 5 blocks, then mined its own 8.
    const b = open(tmp.file('reorg-b'));
    syncTo(a, b, 5);
    const chainB = b.mineChain(8, { txsPerBlock: 6, seed: 200 });
    const bHashes = chainB.map((x) => hex(x.header.hash));
    // E saw all of A's 10 and stays on them.
    const e = open(tmp.file('reorg-e'));
    syncTo(a, e, 10);

    // A gets B's branch: side branch until it has more work; a tie keeps A's tip (first seen).
    const branch = headersOf(b, 6, 13);
    syncHeaders(a, branch);
    assert.equal(hex(a.bestHeader().hash), bHashes[7]);
    const blocks = blocksOf(b, a, branch);
    for (const blk of blocks.slice(0, 5)) assert.deepEqual(a.importBlock(blk), { connected: [], disconnected: [] });
    assert.equal(hex(a.tip().hash), aHashes[9], 'equal work (height 10 each): the first seen stays');
    const r = a.importBlock(blocks[5]!);
    assert.deepEqual(r.disconnected.map(hex), aHashes.slice(5).reverse());
    assert.deepEqual(r.connected.map(hex), bHashes.slice(0, 6));
    assert.deepEqual(a.importBlock(blocks[6]!).connected.map(hex), [bHashes[6]]);
    assert.deepEqual(a.importBlock(blocks[7]!).connected.map(hex), [bHashes[7]]);
    assert.equal(hex(a.tip().hash), hex(b.tip().hash));
    assert.deepEqual(balances(a), balances(b));
    a.checkIntegrity();
    // A's old blocks are still stored and still served; headerAt follows either chain.
    assert.ok(a.block(chainA[9]!.header.hash) !== undefined);
    assert.equal(hex(a.headerAt(8)!.hash), bHashes[2]);
    assert.equal(hex(a.headerAt(8, chainA[9]!.header.hash)!.hash), aHashes[7]);

    // E extends the original branch to 15: A goes back to it.
    const chainE = e.mineChain(5, { txsPerBlock: 6, seed: 300 });
    const eHashes = chainE.map((x) => hex(x.header.hash));
    const ext = headersOf(e, 11, 15);
    syncHeaders(a, ext);
    const extBlocks = blocksOf(e, a, ext);
    for (const blk of extBlocks.slice(0, 3)) assert.deepEqual(a.importBlock(blk), { connected: [], disconnected: [] }); // up to 13: a tie
    const back = a.importBlock(extBlocks[3]!);
    assert.deepEqual(back.disconnected.map(hex), bHashes.slice().reverse());
    assert.deepEqual(back.connected.map(hex), [...aHashes.slice(5), ...eHashes.slice(0, 4)]);
    a.importBlock(extBlocks[4]!);
    assert.equal(hex(a.tip().hash), hex(e.tip().hash));
    assert.deepEqual(balances(a), balances(e));
    a.checkIntegrity();

    // mine({ parent }) builds a competing branch on one node, with the state at that block.
    const fork = a.headerAt(12)!;
    let parent = fork.hash;
    for (let i = 0; i < 4; i++) parent = a.mine({ parent, txs: a.makeTxs(4, 400 + i, parent) }).header.hash;
    assert.equal(a.tip().height, 16);
    assert.equal(hex(a.tip().hash), hex(parent));
    assert.equal(a.decodeBlock(a.block(parent)!).txIds.length, 4);
    a.checkIntegrity();
  });
});

test('invalid blocks: overspending, wrong state root, wrong tx root → CHAIN_BAD_BLOCK, marked invalid with descendants, never connected', async () => {
  await withChains((open) => {
    const a = open(tmp.file('inv'));
    a.mineChain(3, { txsPerBlock: 4 });
    const tip = a.tip();
    const [rich, poor] = a.genesisAccountIds;
    const overspend = encodeTx({ from: rich!, to: poor!, amount: Number(a.params.genesisBalance) + 1, fee: 0, nonce: a.account(rich!)!.nonce, memo: new Uint8Array(0) });

    // Wrong transaction root: the body does not match its header.
    const wrongTxRoot = forge(a, tip, { txs: a.makeTxs(2, 9), txRoot: new Uint8Array(32).fill(1) });
    assert.throws(() => a.decodeBlock(wrongTxRoot.bytes), code('CHAIN_BAD_BLOCK', /transaction root/));

    // Overspending X with a stored child Y whose body came first.
    const x = forge(a, tip, { txs: [overspend] });
    syncHeaders(a, [x.header]);
    const xEntry = a.header(x.header.hash)!;
    const y = forge(a, xEntry);
    syncHeaders(a, [y.header]);
    assert.equal(hex(a.bestHeader().hash), hex(y.header.hash));
    assert.deepEqual(a.importBlock(y), { connected: [], disconnected: [] });
    assert.throws(() => a.importBlock(x), code('CHAIN_BAD_BLOCK', /is invalid: transaction 0 .*balance 1000000000 < amount \+ fee 1000000001/));
    assert.ok(a.isInvalid(x.header.hash));
    assert.ok(a.isInvalid(y.header.hash));
    assert.equal(hex(a.tip().hash), hex(tip.hash));
    assert.equal(hex(a.bestHeader().hash), hex(tip.hash), 'the best header left the invalid branch');
    assert.throws(() => a.importBlock(y), code('CHAIN_BAD_BLOCK', /known to be invalid/));
    // A header building on an invalid block is refused by validateHeader and stored as invalid if stored anyway.
    const z = forge(a, a.header(y.header.hash)!);
    assert.throws(() => a.validateHeader(a.decodeHeader(z.header.bytes), a.header(y.header.hash)!, NOW), code('CHAIN_BAD_HEADER', /invalid block/));
    a.storeHeaders([a.decodeHeader(z.header.bytes)]);
    assert.ok(a.isInvalid(z.header.hash));
    assert.equal(hex(a.bestHeader().hash), hex(tip.hash));
    assert.throws(() => a.importBlock(z), code('CHAIN_BAD_BLOCK'));

    // Valid transactions but a wrong state root.
    const wrongRoot = forge(a, tip, { txs: a.makeTxs(3, 11), stateRoot: sha3(new Uint8Array([1])) });
    syncHeaders(a, [wrongRoot.header]);
    assert.throws(() => a.importBlock(wrongRoot), code('CHAIN_BAD_BLOCK', /state root differs/));
    assert.ok(a.isInvalid(wrongRoot.header.hash));
    assert.equal(hex(a.tip().hash), hex(tip.hash));
    a.checkIntegrity();

    // The chain goes on with a valid block at the same height.
    a.mine({ txs: a.makeTxs(3, 12) });
    assert.equal(a.tip().height, 4);
    a.checkIntegrity();
  });
});

test('an invalid block inside a heavier branch: the reorganisation is undone and the tip stays', async () => {
  await withChains((open) => {
    const a = open(tmp.file('inv-reorg'));
    const main = a.mineChain(5, { txsPerBlock: 4, seed: 1 });
    const before = balances(a);
    // Branch from height 2: b3 valid, b4 overspends, b5 and b6 on top (heavier than the tip at 5).
    const b3 = a.mine({ parent: main[1]!.header.hash, txs: a.makeTxs(3, 2, main[1]!.header.hash) });
    assert.equal(hex(a.tip().hash), hex(main[4]!.header.hash));
    const id = a.genesisAccountIds[0]!;
    const b4 = forge(a, a.header(b3.header.hash)!, { txs: [encodeTx({ from: id, to: a.genesisAccountIds[1]!, amount: 2 ** 52, fee: 0, nonce: 0, memo: new Uint8Array(0) })] });
    syncHeaders(a, [b4.header]);
    const b5 = forge(a, a.header(b4.header.hash)!);
    syncHeaders(a, [b5.header]);
    const b6 = forge(a, a.header(b5.header.hash)!);
    syncHeaders(a, [b6.header]);
    a.importBlock(b6);
    a.importBlock(b5);
    assert.throws(() => a.importBlock(b4), code('CHAIN_BAD_BLOCK', /is invalid: transaction 0/));
    assert.equal(hex(a.tip().hash), hex(main[4]!.header.hash));
    assert.deepEqual(balances(a), before);
    for (const blk of [b4, b5, b6]) assert.ok(a.isInvalid(blk.header.hash));
    assert.ok(!a.isInvalid(b3.header.hash));
    assert.equal(hex(a.bestHeader().hash), hex(main[4]!.header.hash));
    a.checkIntegrity();
  });
});

test('checkTx: pre-admission against the tip; decodeTx refusals', async () => {
  await withChains((open) => {
    const a = open(tmp.file('tx'));
    a.mineChain(2, { txsPerBlock: 10 });
    const [from, to] = a.genesisAccountIds;
    const acct = a.account(from!)!;
    const tx = (over: Partial<{ from: Uint8Array; to: Uint8Array; amount: number; fee: number; nonce: number; memo: Uint8Array }> = {}) =>
      a.decodeTx(encodeTx({ from: from!, to: to!, amount: 10, fee: 1, nonce: acct.nonce, memo: new Uint8Array(3), ...over }));
    a.checkTx(tx());
    a.checkTx(tx({ nonce: acct.nonce + MAX_NONCE_AHEAD }));
    a.checkTx(tx({ amount: Number(acct.balance) - 1, fee: 1 }));
    a.checkTx({ id: tx().id, bytes: tx().bytes }); // a ChainTx not decoded by this chain
    const bad = (t: ReturnType<typeof tx>): void => assert.throws(() => a.checkTx(t), code('CHAIN_BAD_TX'));
    bad(tx({ nonce: acct.nonce + MAX_NONCE_AHEAD + 1 }));
    if (acct.nonce > 0) bad(tx({ nonce: acct.nonce - 1 }));
    bad(tx({ amount: 0 }));
    bad(tx({ to: from! }));
    bad(tx({ from: new Uint8Array(32).fill(9) }));
    bad(tx({ amount: Number(acct.balance), fee: 1 }));

    const good = tx();
    assert.equal(hex(good.id), hex(sha3(good.bytes)));
    const badBytes = (bytes: Uint8Array): void => assert.throws(() => a.decodeTx(bytes), code('CHAIN_BAD_TX'));
    badBytes(new Uint8Array([0xff]));
    badBytes(new Uint8Array([...good.bytes, 0]));
    badBytes(encodeCbor([from, to, 1, 1, 1]));
    badBytes(encodeCbor([from!.subarray(1), to, 1, 1, 1, new Uint8Array(0)]));
    badBytes(encodeCbor([from, to, -1, 1, 1, new Uint8Array(0)]));
    badBytes(encodeCbor([from, to, 1.5, 1, 1, new Uint8Array(0)]));
    badBytes(encodeCbor([from, to, 1, 1, 1, 'memo']));
    badBytes(encodeCbor([from, to, 1, 1, 1, new Uint8Array(MAX_MEMO_BYTES + 1)]));
    badBytes(new Uint8Array(MAX_TX_BYTES + 1));
  });
});

test('state snapshot: a fresh node adopts a multi-chunk state; corrupt chunks or a wrong root change nothing', async () => {
  const params: Partial<DevchainParams> = { ...TEST_PARAMS, genesisAccounts: 5_000 };
  await withChains((open) => {
    const a = open(tmp.file('snap-a'), params);
    a.mineChain(3, { txsPerBlock: 50, seed: 5 });
    const m = a.stateManifest()!;
    assert.equal(m.totalBytes, 5_000 * 48);
    assert.equal(m.chunkSize, 16 * 1024);
    assert.equal(m.chunkHashes.length, Math.ceil(240_000 / 16_384));
    assert.equal(hex(m.blockHash), hex(a.tip().hash));
    assert.equal(m.height, 3);
    assert.equal(a.stateManifest(), m, 'cached per tip');
    const chunks = m.chunkHashes.map((_, i) => a.stateChunk(m.stateRoot, i)!);
    chunks.forEach((c, i) => assert.equal(hex(sha3(c)), hex(m.chunkHashes[i]!)));
    assert.equal(a.stateChunk(m.stateRoot, m.chunkHashes.length), undefined);
    assert.equal(a.stateChunk(new Uint8Array(32), 0), undefined);

    const b = open(tmp.file('snap-b'), params);
    syncHeaders(b, headersOf(a, 1, 3));
    const bRoot = hex(b.decodeHeader(b.tip().bytes).stateRoot);
    const unchanged = (): void => {
      assert.deepEqual(b.tip(), b.genesis);
      assert.equal(hex(b.decodeHeader(b.tip().bytes).stateRoot), bRoot);
      b.checkIntegrity();
    };
    const bad = (manifest: typeof m, cs: readonly Uint8Array[], why: RegExp): void => {
      assert.throws(() => b.applyState(manifest, cs), code('CHAIN_BAD_STATE', why));
      unchanged();
    };
    // A flipped byte in a chunk.
    const flipped = chunks.map((c) => c.slice());
    flipped[4]![100]! ^= 1;
    bad(m, flipped, /chunk 4 does not hash/);
    // A chunk missing, or one too many.
    bad(m, chunks.slice(1), /chunks, expected/);
    bad(m, [...chunks, chunks[0]!], /chunks, expected/);
    // A manifest naming another block's state root, or a height that is not the block's.
    const other = b.headerAt(2)!;
    bad({ ...m, stateRoot: b.decodeHeader(other.bytes).stateRoot }, chunks, /manifest state root/);
    bad({ ...m, height: 2 }, chunks, /height/);
    // Chunk hashes that match altered chunks: the state root catches it.
    bad({ ...m, chunkHashes: flipped.map((c) => sha3(c)) }, flipped, /does not hash to the header's state root/);
    // Records out of order (two swapped), hashes matching: refused as unsorted.
    const all = Buffer.concat(chunks);
    const swapped = Buffer.from(all);
    all.copy(swapped, 0, 48, 96);
    all.copy(swapped, 48, 0, 48);
    const swappedChunks = m.chunkHashes.map((_, i) => new Uint8Array(swapped.subarray(i * m.chunkSize, (i + 1) * m.chunkSize)));
    bad({ ...m, chunkHashes: swappedChunks.map((c) => sha3(c)) }, swappedChunks, /not above the one before/);
    // A block whose header is not stored.
    bad({ ...m, blockHash: new Uint8Array(32).fill(3) }, chunks, /header not stored/);
    // Not whole records; absurd chunk sizes.
    bad({ ...m, totalBytes: m.totalBytes - 1 }, chunks, /not whole records/);
    bad({ ...m, chunkSize: 10 }, chunks, /chunk size/);

    b.applyState(m, chunks);
    assert.equal(hex(b.tip().hash), hex(a.tip().hash));
    assert.equal(b.tip().hasBlock, false, 'the snapshot block\'s body is not needed');
    assert.deepEqual(balances(b), balances(a));
    b.checkIntegrity();
    const bm = b.stateManifest()!;
    assert.deepEqual(bm.chunkHashes.map(hex), m.chunkHashes.map(hex));

    // B follows A from there.
    a.mineChain(2, { txsPerBlock: 20, seed: 9 });
    syncTo(a, b, 5);
    assert.equal(hex(b.tip().hash), hex(a.tip().hash));
    assert.deepEqual(balances(b), balances(a));
    b.checkIntegrity();
    // The previous snapshot is still served while a new one is built.
    a.stateManifest();
    assert.ok(a.stateChunk(m.stateRoot, 0) !== undefined);
  });
});

test('decodeBlock refuses repeated transactions, too many transactions and oversize; mine skips what does not apply', async () => {
  await withChains((open) => {
    const a = open(tmp.file('blk'), { ...TEST_PARAMS, maxTxsPerBlock: 3 });
    const tip = a.tip();
    const [t1, t2, t3, t4] = a.makeTxs(4, 1);
    const twice = forge(a, tip, { txs: [t1!, t1!] });
    assert.throws(() => a.decodeBlock(twice.bytes), code('CHAIN_BAD_BLOCK', /repeats/));
    const four = forge(a, tip, { txs: [t1!, t2!, t3!, t4!] });
    assert.throws(() => a.decodeBlock(four.bytes), code('CHAIN_BAD_BLOCK', /4 transactions > 3/));
    assert.throws(() => a.decodeBlock(new Uint8Array(a.limits.maxBlockBytes + 1)), code('CHAIN_BAD_BLOCK', /over its type cap/));
    assert.throws(() => a.decodeBlock(encodeCbor([tip.bytes, ['x']])), code('CHAIN_BAD_BLOCK', /not bytes/));
    assert.throws(() => a.decodeBlock(encodeCbor([new Uint8Array(3), []])), code('CHAIN_BAD_BLOCK'));
    const good = a.decodeBlock(forge(a, tip, { txs: [t1!, t2!] }).bytes);
    assert.deepEqual(good.txIds.map(hex), [hex(sha3(t1!)), hex(sha3(t2!))]);

    // mine takes what applies, in order, up to the cap: not garbage, not a repeat, not an overspend.
    const [rich, poor] = a.genesisAccountIds;
    const overspend = encodeTx({ from: rich!, to: poor!, amount: 2 ** 40, fee: 0, nonce: 0, memo: new Uint8Array(0) });
    const block = a.mine({ txs: [new Uint8Array([1, 2, 3]), t1!, t1!, overspend, t2!, t3!, t4!] });
    assert.deepEqual(block.txIds.map(hex), [t1!, t2!, t3!].map((t) => hex(sha3(t))));
    assert.equal(hex(a.tip().hash), hex(block.header.hash));
  });
});

test('property: the transaction root is the RFC 6962-shaped tree (left part the largest power of two) with prefixed nodes', () => {
  const leaf = (id: Uint8Array): Uint8Array => sha3(new Uint8Array([0]), id);
  const reference = (ids: readonly Uint8Array[]): Uint8Array => {
    if (ids.length === 1) return leaf(ids[0]!);
    let k = 1;
    while (k * 2 < ids.length) k *= 2;
    return sha3(new Uint8Array([1]), reference(ids.slice(0, k)), reference(ids.slice(k)));
  };
  fc.assert(fc.property(fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { minLength: 1, maxLength: 40 }), (ids) => {
    assert.equal(hex(merkleRoot(ids)), hex(reference(ids)));
  }));
  assert.deepEqual(merkleRoot([]), new Uint8Array(32));
});

test('property: transactions and headers round-trip through their encodings', () => {
  const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const uint = fc.maxSafeNat();
  fc.assert(fc.property(hash, hash, uint, uint, uint, fc.uint8Array({ maxLength: MAX_MEMO_BYTES }), (from, to, amount, fee, nonce, memo) => {
    const bytes = encodeTx({ from, to, amount, fee, nonce, memo });
    const t = decodeTx(bytes);
    assert.deepEqual({ from: t.from, to: t.to, amount: t.amount, fee: t.fee, nonce: t.nonce, memo: t.memo }, { from, to, amount, fee, nonce, memo });
    assert.deepEqual(t.bytes, bytes);
  }));
  // With the easiest target every hash meets it, so any field values decode back.
  const params = makeDevchainParams({ target: (1n << 256n) - 1n, chainId: 3 });
  fc.assert(fc.property(hash, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), uint, hash, hash, uint, (parent, height, timestampMs, txRoot, stateRoot, nonce) => {
    const f = { version: HEADER_VERSION, chainId: 3, parent, height, timestampMs, txRoot, stateRoot, target: params.target, nonce };
    const h = decodeHeader(encodeHeader(f), params, new Uint8Array(32));
    assert.deepEqual({ ...f }, { version: h.version, chainId: h.chainId, parent: h.parent, height: h.height, timestampMs: h.timestampMs, txRoot: h.txRoot, stateRoot: h.stateRoot, target: h.target, nonce: h.nonce });
    assert.equal(h.work, 1n);
  }));
});

test('property: a snapshot decodes to its accounts and the same bucket hashes and root as computed directly', () => {
  const account = fc.tuple(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }), fc.maxSafeNat());
  fc.assert(fc.property(fc.uniqueArray(account, { selector: ([id]) => hex(id), maxLength: 120 }), fc.integer({ min: 1024, max: 4096 }), (list, chunkSize) => {
    const accounts = list.map(([id, balance, nonce]) => [id, { balance, nonce }] as const).sort((x, y) => Buffer.compare(x[0], y[0]));
    const buckets = bucketHashesOf(accounts);
    const root = stateRootOf(buckets);
    const snap = buildSnapshot(accounts, accounts.length, chunkSize, { height: 1, blockHash: new Uint8Array(32), stateRoot: root });
    const d = decodeSnapshot(snap.manifest, snap.chunks);
    assert.equal(hex(d.stateRoot), hex(root));
    assert.deepEqual(d.accounts, accounts);
  }), { numRuns: 50 });
});
