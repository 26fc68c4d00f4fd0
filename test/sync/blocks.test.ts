/**
 * The block download engine against real devchains: peers answer GETBLOCKS
 * from their chain through `blocksInRange`, or misbehave (hold requests,
 * corrupt or invalid blocks, short answers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex, type Hash } from '../../src/chain/adapter.ts';
import type { Devchain } from '../../src/chain/devchain/index.ts';
import type { Reason } from '../../src/core/errors.ts';
import { BlockSync, blocksInRange, type BlockSyncOptions } from '../../src/sync/blocks.ts';
import { MAX_BLOCKS_PER_MESSAGE, MAX_BLOCKS_RESPONSE_BYTES } from '../../src/sync/messages.ts';
import { blocksOf, forge, headersOf, inTempChains, syncHeaders } from '../chain/_devchain.ts';

/** A peer answers a request, holds it (never answers), or fails it. */
type Answer = Uint8Array[] | 'hold' | 'fail';
type Peer = (start: number, count: number, anchor: Hash) => Answer;

const serving =
  (chain: Devchain): Peer =>
  (start, count, anchor) =>
    blocksInRange(chain, start, count, anchor);

interface Sent {
  readonly peer: string;
  readonly id: number;
  readonly start: number;
  readonly count: number;
}

interface Run {
  readonly requests: Sent[];
  readonly held: Sent[];
  readonly penalties: { peer: string; reason: Reason }[];
  now: number;
}

/**
 * Poll, answer and import until the engine has nothing to ask and nothing
 * pending but held requests (bounded). `stepMs` is how far the clock moves per
 * round; `importEach` false leaves the queue alone (back-pressure tests).
 */
function drive(engine: BlockSync, peers: Record<string, Peer>, o: { rounds?: number; stepMs?: number; importEach?: boolean; run?: Run } = {}): Run {
  const run: Run = o.run ?? { requests: [], held: [], penalties: [], now: 0 };
  for (let i = 0; i < (o.rounds ?? 1_000); i++) {
    const actions = engine.poll(run.now);
    for (const a of actions) if (a.type === 'penalize') run.penalties.push({ peer: a.peer, reason: a.reason });
    const requests = actions.filter((a) => a.type === 'request');
    for (const r of requests) {
      const sent = { peer: r.peer, id: r.id, start: r.start, count: r.count };
      run.requests.push(sent);
      const answer = peers[r.peer]!(r.start, r.count, r.anchor);
      if (answer === 'hold') run.held.push(sent);
      else if (answer === 'fail') engine.onFailed(r.id);
      else engine.onBlocks(r.id, answer, run.now);
    }
    if (o.importEach !== false) engine.importQueued(Number.MAX_SAFE_INTEGER);
    const s = engine.stats();
    if (requests.length === 0 && s.requestsInFlight === held(run, engine) && s.queuedBlocks === 0 && (s.tipHeight === s.targetHeight || (o.stepMs ?? 1) === 0)) return run;
    run.now += o.stepMs ?? 1;
  }
  return run;
}

/** How many of the held requests the engine still counts as in flight (not stalled). */
function held(run: Run, engine: BlockSync): number {
  return Math.min(run.held.length, engine.stats().requestsInFlight);
}

const OPTIONS: Partial<BlockSyncOptions> = { rangeBlocks: 50, windowBlocks: 400, stallMs: 100 };

/** Chains `a` (n blocks, `txsPerBlock` each) and `b` with a's headers only. */
function setup(open: (f: string) => Devchain, file: (n: string) => string, n: number, txsPerBlock = 0): { a: Devchain; b: Devchain } {
  const a = open(file('a'));
  const b = open(file('b'));
  a.mineChain(n, { txsPerBlock });
  for (let lo = 1; lo <= n; lo += 2_000) syncHeaders(b, headersOf(a, lo, Math.min(n, lo + 1_999)));
  return { a, b };
}

test('one peer: 1,000 blocks in ranges of 50, the tip equals the peer\'s, each block fetched once', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 1_000, 2);
    const engine = new BlockSync(b, OPTIONS);
    engine.addPeer('a', 1_000);
    const run = drive(engine, { a: serving(a) });
    assert.deepEqual(b.tip().hash, a.tip().hash);
    assert.equal(run.requests.length, 20);
    assert.ok(run.requests.every((r) => r.count === 50));
    const s = engine.stats();
    assert.equal(s.blocksReceived, 1_000);
    assert.equal(s.blocksImported, 1_000);
    assert.equal(s.duplicates, 0);
    assert.equal(run.penalties.length, 0);
    b.checkIntegrity();
  });
});

test('three peers: the download is spread over them, no block is fetched twice, and the window is never passed', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 1_200);
    const engine = new BlockSync(b, { ...OPTIONS, maxRequestsPerPeer: 2 });
    for (const p of ['a', 'c', 'd']) engine.addPeer(p, 1_200);
    // Answers are delayed one round, so requests overlap and each peer holds two.
    const pending: { id: number; blocks: Uint8Array[] }[] = [];
    let now = 0;
    let maxAhead = 0;
    const byPeer: Record<string, number> = { a: 0, c: 0, d: 0 };
    for (let round = 0; round < 500 && b.tip().height < 1_200; round++) {
      for (const p of pending.splice(0)) engine.onBlocks(p.id, p.blocks, now);
      engine.importQueued(Number.MAX_SAFE_INTEGER);
      for (const act of engine.poll(now)) {
        assert.equal(act.type, 'request');
        if (act.type !== 'request') continue;
        byPeer[act.peer]! += act.count;
        maxAhead = Math.max(maxAhead, act.start + act.count - 1 - b.tip().height);
        pending.push({ id: act.id, blocks: blocksInRange(a, act.start, act.count, act.anchor) });
      }
      now++;
    }
    assert.deepEqual(b.tip().hash, a.tip().hash);
    for (const p of ['a', 'c', 'd']) assert.ok(byPeer[p]! >= 200, `peer ${p} fetched ${byPeer[p]} blocks`);
    assert.equal(byPeer.a! + byPeer.c! + byPeer.d!, 1_200, 'each block asked for once');
    assert.ok(maxAhead <= 400, `requests ran ${maxAhead} blocks ahead of the tip (window 400)`);
    assert.equal(engine.stats().duplicates, 0);
  });
});

test('a stalling peer is penalised once per request, its heights go to the others, and its late answer is a harmless duplicate', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 600);
    const engine = new BlockSync(b, OPTIONS);
    engine.addPeer('a', 600);
    engine.addPeer('d', 600);
    const run = drive(engine, { a: serving(a), d: () => 'hold' }, { stepMs: 10 });
    assert.deepEqual(b.tip().hash, a.tip().hash);
    const held = run.held;
    assert.equal(held.length, 2, 'd took its two requests and was given no more while they were out');
    assert.deepEqual(run.penalties, held.map(() => ({ peer: 'd', reason: 'SYNC_STALL' })));
    assert.equal(engine.stats().stalls, 2);
    // Every height d held was fetched from a.
    for (const h of held) assert.ok(run.requests.some((r) => r.peer === 'a' && r.start <= h.start && r.start + r.count >= h.start + h.count));
    // d finally answers: nothing is penalised, and the blocks are counted as duplicates.
    for (const h of held) engine.onBlocks(h.id, blocksInRange(a, h.start, h.count, a.headerAt(h.start + h.count - 1)!.hash), run.now);
    assert.equal(engine.stats().duplicates, 100);
    assert.deepEqual(engine.poll(run.now), []);
  });
});

test('a corrupt block is CHAIN_BAD_BLOCK and a block at the wrong height SYNC_BAD_RESPONSE; the good prefix is kept and the rest comes from another peer', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 200);
    const engine = new BlockSync(b, { ...OPTIONS, maxRequestsPerPeer: 1 });
    // Each misbehaves in its first answer (a node would then ban or penalise it), then serves honestly.
    let xBad = true;
    let yBad = true;
    const corrupt: Peer = (start, count, anchor) => {
      const blocks = blocksInRange(a, start, count, anchor);
      if (xBad) {
        const bad = Uint8Array.from(blocks[10]!);
        bad[bad.length - 1]! ^= 0xff;
        blocks[10] = bad;
        xBad = false;
      }
      return blocks;
    };
    const shifted: Peer = (start, count, anchor) => {
      const blocks = blocksInRange(a, start, count, anchor);
      if (yBad) {
        blocks[5] = blocks[6]!;
        yBad = false;
      }
      return blocks;
    };
    engine.addPeer('x', 200);
    engine.addPeer('y', 200);
    engine.addPeer('a', 200);
    const run = drive(engine, { x: corrupt, y: shifted, a: serving(a) });
    assert.deepEqual(b.tip().hash, a.tip().hash);
    assert.deepEqual(run.penalties.map((p) => `${p.peer}:${p.reason}`).sort(), ['x:CHAIN_BAD_BLOCK', 'y:SYNC_BAD_RESPONSE']);
    // The prefixes before the bad blocks were used (10 from x and 5 from y), and the rest of their ranges refetched.
    assert.equal(engine.stats().blocksReceived, 200);
    assert.equal(engine.stats().duplicates, 0);
    const first = (peer: string): { start: number } => run.requests.find((r) => r.peer === peer)!;
    assert.ok(run.requests.some((r) => r.start === first('x').start + 10), 'x\'s range refetched from its bad block on');
    assert.ok(run.requests.some((r) => r.start === first('y').start + 5), 'y\'s range refetched from its bad block on');
  });
});

test('more blocks than asked is SYNC_BAD_RESPONSE and none of them is used', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 20);
    const engine = new BlockSync(b, { ...OPTIONS, rangeBlocks: 10 });
    engine.addPeer('x', 20);
    const [r] = engine.poll(0);
    assert.ok(r?.type === 'request');
    engine.onBlocks(r.id, blocksInRange(a, 1, 11, a.headerAt(11)!.hash), 0);
    assert.deepEqual(engine.poll(0).filter((x) => x.type === 'penalize').map((x) => x.type === 'penalize' && x.reason), ['SYNC_BAD_RESPONSE']);
    assert.equal(engine.stats().blocksReceived, 0);
  });
});

test('a block whose transactions do not apply: the sender gets CHAIN_BAD_BLOCK and the branch is marked invalid', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const a = open(dir.file('a'));
    const b = open(dir.file('b'));
    a.mineChain(5);
    // Height 6 on a: a valid header whose body spends from an unknown account (the tx root matches).
    const tx = a.makeTxs(1, 1)[0]!;
    const badTx = Uint8Array.from(tx);
    badTx[10]! ^= 0x55;
    const bad = forge(a, a.tip(), { txs: [badTx] });
    a.storeHeaders([a.decodeHeader(bad.header.bytes)]);
    syncHeaders(b, [...headersOf(a, 1, 5), bad.header]);
    const engine = new BlockSync(b, OPTIONS);
    engine.addPeer('x', 6);
    const serve: Peer = (start, count) => {
      const blocks = blocksInRange(a, start, Math.min(count, 5 - start + 1), a.headerAt(Math.min(5, start + count - 1))!.hash);
      if (start + count - 1 === 6) blocks.push(bad.bytes);
      return blocks;
    };
    const run = drive(engine, { x: serve }, { stepMs: 0, rounds: 5 });
    assert.deepEqual(run.penalties, [{ peer: 'x', reason: 'CHAIN_BAD_BLOCK' }]);
    assert.equal(b.tip().height, 5);
    assert.ok(b.isInvalid(bad.header.hash));
    assert.equal(b.bestHeader().height, 5, 'the best header moved off the invalid branch');
  });
});

test('a short answer means the peer lacks the rest: no penalty, another peer serves it, and the peer is asked again once it shows a new height', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 100);
    const c = open(dir.file('c'));
    // c has only the first 40 blocks.
    for (const blk of blocksOf(a, c, headersOf(a, 1, 40))) {
      c.storeHeaders([blk.header]);
      c.importBlock(blk);
    }
    const engine = new BlockSync(b, { ...OPTIONS, rangeBlocks: 30, maxRequestsPerPeer: 1 });
    // c says it has 40: it is asked up to there.
    engine.addPeer('c', 40);
    let run = drive(engine, { c: serving(c) }, { stepMs: 0, rounds: 10 });
    assert.equal(b.tip().height, 40);
    assert.deepEqual(run.requests.map((r) => [r.start, r.count]), [[1, 30], [31, 10]]);
    // Then claims 100 but has nothing above 40: an empty answer, no penalty.
    engine.onPeerHeight('c', 100);
    run = drive(engine, { c: serving(c) }, { stepMs: 0, rounds: 10, run });
    assert.equal(b.tip().height, 40);
    assert.equal(run.penalties.length, 0);
    const asked = run.requests.length;
    assert.equal(asked, 3);
    run = drive(engine, { c: serving(c) }, { stepMs: 0, rounds: 3, run });
    assert.equal(run.requests.length, asked, 'c is not asked again for what it lacks');
    engine.addPeer('a', 100);
    run = drive(engine, { c: serving(c), a: serving(a) }, { stepMs: 0, run });
    assert.deepEqual(b.tip().hash, a.tip().hash);
    assert.ok(run.requests.slice(asked).every((r) => r.peer === 'a'));
    engine.onPeerHeight('c', 120);
    a.mineChain(1);
    syncHeaders(b, headersOf(a, 101, 101));
    const before = run.requests.length;
    engine.removePeer('a');
    run = drive(engine, { c: serving(c) }, { stepMs: 0, rounds: 2, run });
    assert.equal(run.requests.slice(before).at(-1)?.peer, 'c', 'c showed a new height: asked again');
  });
});

test('back-pressure: while imports lag behind by more than maxQueuedBytes, no request goes out', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 300, 5);
    const engine = new BlockSync(b, { ...OPTIONS, maxQueuedBytes: 20_000, maxRequestsPerPeer: 1 });
    engine.addPeer('a', 300);
    const run = drive(engine, { a: serving(a) }, { importEach: false, stepMs: 0, rounds: 20 });
    const s = engine.stats();
    assert.ok(s.backPressure);
    assert.ok(s.queuedBytes > 20_000);
    assert.ok(run.requests.length < 6, `${run.requests.length} requests with the queue full`);
    assert.deepEqual(engine.poll(0), []);
    engine.importQueued(Number.MAX_SAFE_INTEGER);
    assert.equal(engine.poll(0).filter((x) => x.type === 'request').length, 1, 'requests resume once imported');
  });
});

test('blocks already stored are never requested: above a resumed tip, and stored out of order above a gap', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 400);
    const blocks = blocksOf(a, b, headersOf(a, 1, 400));
    // What a crashed sync left: blocks 1..150 connected, 201..260 stored above a gap.
    for (const blk of blocks.slice(0, 150)) b.importBlock(blk);
    for (const blk of blocks.slice(200, 260)) assert.deepEqual(b.importBlock(blk).connected, []);
    const engine = new BlockSync(b, OPTIONS);
    engine.addPeer('a', 400);
    const run = drive(engine, { a: serving(a) });
    assert.deepEqual(b.tip().hash, a.tip().hash);
    const fetched = new Set<number>();
    for (const r of run.requests) for (let h = r.start; h < r.start + r.count; h++) fetched.add(h);
    assert.equal(fetched.size, 400 - 150 - 60);
    for (let h = 1; h <= 150; h++) assert.ok(!fetched.has(h));
    for (let h = 201; h <= 260; h++) assert.ok(!fetched.has(h));
  });
});

test('a failed request and a departed peer release their heights to the others at once', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 200);
    const engine = new BlockSync(b, OPTIONS);
    engine.addPeer('f', 200);
    engine.addPeer('gone', 200);
    engine.addPeer('a', 200);
    let goneRequests = 0;
    const run = drive(engine, {
      f: () => 'fail',
      gone: () => {
        goneRequests++;
        return 'hold';
      },
      a: serving(a),
    }, { rounds: 1, stepMs: 0 });
    assert.ok(goneRequests > 0);
    engine.removePeer('gone');
    engine.removePeer('f');
    drive(engine, { a: serving(a) }, { run, stepMs: 0 });
    assert.deepEqual(b.tip().hash, a.tip().hash);
    assert.equal(run.penalties.length, 0, 'failures are scored by the connection, not again here');
  });
});

test('blocksInRange: answers along the anchor\'s chain, stops at a missing block or the byte budget, and refuses a mismatched anchor', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 50, 3);
    assert.equal(blocksInRange(a, 1, 50, a.headerAt(50)!.hash).length, 50);
    assert.deepEqual(blocksInRange(a, 1, 49, a.headerAt(50)!.hash), [], 'anchor is not at start + count - 1');
    assert.deepEqual(blocksInRange(a, 1, 10, new Uint8Array(32)), [], 'unknown anchor');
    assert.deepEqual(blocksInRange(b, 1, 10, a.headerAt(10)!.hash), [], 'headers but no blocks');
    const one = a.block(a.headerAt(1)!.hash)!.length;
    assert.equal(blocksInRange(a, 1, 50, a.headerAt(50)!.hash, one * 3 + 1).length, 3);
    assert.equal(blocksInRange(a, 1, 50, a.headerAt(50)!.hash, 1).length, 1, 'always one block');
    assert.equal(hex(a.decodeBlock(blocksInRange(a, 7, 1, a.headerAt(7)!.hash)[0]!).header.hash), hex(a.headerAt(7)!.hash));
    assert.throws(() => new BlockSync(b, { rangeBlocks: MAX_BLOCKS_PER_MESSAGE + 1 }), RangeError);
    assert.throws(() => new BlockSync(b, { stallMs: 0 }), RangeError);
  });
});

test('a heavier branch that leaves the validated chain below its tip: the blocks from the fork point up are fetched and the chain reorganises', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 100);
    const engine = new BlockSync(b, OPTIONS);
    engine.addPeer('a', 100);
    drive(engine, { a: serving(a) });
    assert.equal(b.tip().height, 100);
    // a builds a longer branch from height 80 and b learns its headers.
    let parent = a.headerAt(80)!.hash;
    for (let i = 0; i < 30; i++) parent = a.mine({ parent, txs: a.makeTxs(1, 500 + i, parent) }).header.hash;
    assert.equal(a.tip().height, 110);
    syncHeaders(b, headersOf(a, 81, 110));
    engine.onPeerHeight('a', 110);
    const run = drive(engine, { a: serving(a) });
    assert.deepEqual(b.tip().hash, a.tip().hash);
    assert.deepEqual(run.requests.map((r) => [r.start, r.count]), [[81, 30]]);
    b.checkIntegrity();
  });
});

test('an answer cut at the server\'s byte budget is not a lack: the peer is asked for the rest at once', async () => {
  await inTempChains('pqnet-bs-', (open, dir) => {
    const { a, b } = setup(open, dir.file, 200);
    // Blocks as large as the budget allows (as far as the engine can tell): any short answer may be a cut one.
    const big = new Proxy(b, {
      get(target, prop) {
        if (prop === 'limits') return { ...target.limits, maxBlockBytes: MAX_BLOCKS_RESPONSE_BYTES };
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
      },
    });
    const engine = new BlockSync(big, { ...OPTIONS, maxRequestsPerPeer: 1 });
    engine.addPeer('a', 200);
    // The server stops after 10 blocks each time, as at its byte budget.
    const run = drive(engine, { a: (start, count, anchor) => blocksInRange(a, start, count, anchor).slice(0, 10) }, { stepMs: 0, rounds: 100 });
    assert.deepEqual(b.tip().hash, a.tip().hash);
    assert.equal(run.requests.length, 20);
  });
});
