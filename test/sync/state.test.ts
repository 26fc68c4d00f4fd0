/**
 * The state sync engine against real devchains: peers are functions that
 * answer from a devchain's snapshot, or misbehave; time is a ManualClock.
 * Also the state messages' schemas and caps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex, type Hash, type StateManifest } from '../../src/chain/adapter.ts';
import type { Devchain } from '../../src/chain/devchain/index.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { isPqnetError, PqnetError, type Reason } from '../../src/core/errors.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { createRegistry } from '../../src/wire/messages.ts';
import { registerRequest } from '../../src/mux/rpc.ts';
import { SYNC_PROTOCOL } from '../../src/sync/messages.ts';
import {
  checkManifest, DEFAULT_STATE_LIMITS, makeStateLimits, manifestFromWire, manifestId, manifestToWire, stateChunkHash, stateMessages,
} from '../../src/sync/state-messages.ts';
import { StateSync, type StateSyncAction, type StateSyncOptionsInput } from '../../src/sync/state.ts';
import { createHash } from 'node:crypto';
import { balances, headersOf, inTempChains, syncHeaders, TEST_OPTIONS, TEST_PARAMS } from '../chain/_devchain.ts';

/** 2,000 accounts of 48 bytes in 4 KiB chunks: 24 chunks. */
const PARAMS = { ...TEST_PARAMS, genesisAccounts: 2_000 };
const OPTIONS = { ...TEST_OPTIONS, stateChunkBytes: 4_096 };
const CHUNKS = Math.ceil((2_000 * 48) / 4_096);

/** What a fake peer does with a request. `stall`: never answers; `fail`: the request fails; undefined: an empty answer. */
type ChunkAnswer = Uint8Array | undefined | 'stall' | 'fail';

interface FakePeer {
  readonly manifest: () => StateManifest | undefined | 'fail';
  readonly chunk: (root: Hash, index: number) => ChunkAnswer;
}

const serving = (chain: Devchain): FakePeer => ({
  manifest: () => chain.stateManifest(),
  chunk: (root, index) => chain.stateChunk(root, index),
});

interface Run {
  readonly actions: StateSyncAction[];
  readonly chunkRequests: { peer: string; index: number }[];
  readonly penalties: { peer: string; reason: Reason }[];
  readonly stored: Map<number, Uint8Array>;
  readonly applied: StateManifest[];
  readonly refused: string[];
  done: boolean;
}

const PER_PEER = 4;
const TOTAL = 16;

/**
 * Poll the engine and answer its requests until it is done or the clock
 * passes `untilMs` (time moves 1 s whenever a poll has nothing to do),
 * checking the in-flight caps after each poll.
 */
function drive(engine: StateSync, chain: Devchain, peers: Record<string, FakePeer>, clock: ManualClock, untilMs = 60_000): Run {
  const run: Run = { actions: [], chunkRequests: [], penalties: [], stored: new Map(), applied: [], refused: [], done: false };
  for (let round = 0; round < 100_000; round++) {
    const actions = engine.poll(clock.now());
    run.actions.push(...actions);
    const perPeer = new Map<string, number>();
    for (const a of actions) if (a.type === 'request-chunk') perPeer.set(a.peer, (perPeer.get(a.peer) ?? 0) + 1);
    for (const [peer, n] of perPeer) assert.ok(n <= PER_PEER, `${n} chunk requests to ${peer} in one poll`);
    assert.ok(engine.stats().inflight <= TOTAL, `${engine.stats().inflight} chunk requests in flight`);
    for (const a of actions) {
      const now = clock.now();
      switch (a.type) {
        case 'request-manifest': {
          const m = peers[a.peer]!.manifest();
          if (m === 'fail') engine.onManifestFailed(a.peer, now);
          else engine.onManifest(a.peer, m, now);
          break;
        }
        case 'request-chunk': {
          run.chunkRequests.push({ peer: a.peer, index: a.index });
          const c = peers[a.peer]!.chunk(a.stateRoot, a.index);
          if (c === 'stall') break;
          if (c === 'fail') engine.onFailed(a.peer, a.index, now);
          else engine.onChunk(a.peer, a.index, c ?? new Uint8Array(0), now);
          break;
        }
        case 'penalize':
          run.penalties.push({ peer: a.peer, reason: a.reason });
          break;
        case 'select':
          run.stored.clear();
          break;
        case 'chunk':
          run.stored.set(a.index, a.bytes);
          break;
        case 'discard':
          run.stored.clear();
          break;
        case 'apply':
          try {
            chain.applyState(a.manifest, a.chunks);
            engine.onApplied(now);
            run.applied.push(a.manifest);
          } catch (e) {
            assert.ok(isPqnetError(e) && e.code === 'CHAIN_BAD_STATE', String(e));
            run.refused.push(a.id);
            engine.onApplyFailed(e.message, now);
          }
          break;
        case 'done':
          run.done = true;
          return run;
        case 'cancel-chunk':
          break;
      }
    }
    if (actions.length === 0) {
      if (clock.now() >= untilMs) return run;
      clock.advance(1_000);
    }
  }
  assert.fail('the engine kept going');
}

/** A chain with 3 blocks of transfers (so its state differs from genesis), and an empty one holding its headers. */
function pair(open: (file: string, params?: object, options?: object) => Devchain, file: (n: string) => string): { a: Devchain; b: Devchain } {
  const a = open(file('a'), PARAMS, OPTIONS);
  a.mineChain(3, { txsPerBlock: 20 });
  const b = open(file('b'), PARAMS, OPTIONS);
  syncHeaders(b, headersOf(a, 1, 3));
  return { a, b };
}

function engineFor(b: Devchain, options: StateSyncOptionsInput = {}): StateSync {
  return new StateSync(b, { maxInFlightPerPeer: PER_PEER, maxInFlight: TOTAL, chunkTimeoutMs: 5_000, manifestRecheckMs: 3_000, manifestWaitMs: 2_000, ...options });
}

/** A's state ended up in B: same tip, same accounts. */
function assertSynced(a: Devchain, b: Devchain): void {
  assert.deepEqual(b.tip().hash, a.tip().hash);
  assert.equal(b.tip().height, 3);
  assert.deepEqual(balances(b), balances(a));
}

/** A peer whose manifest names A's block and root but whose chunks (and hashes) are its own: chunk 0 altered. */
function forger(a: Devchain): FakePeer {
  const m = a.stateManifest()!;
  const chunks = Array.from({ length: m.chunkHashes.length }, (_, i) => Uint8Array.from(a.stateChunk(m.stateRoot, i)!));
  chunks[0]![40] ^= 0x01; // a balance byte: the records still decode, the root differs
  const forged: StateManifest = { ...m, chunkHashes: chunks.map(stateChunkHash) };
  return { manifest: () => forged, chunk: (_root, index) => chunks[index] };
}

test('three peers: chunks spread over all of them within the in-flight caps, each verified, then applied', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    const clock = new ManualClock();
    const engine = engineFor(b);
    for (const p of ['p1', 'p2', 'p3']) engine.addPeer(p);
    const run = drive(engine, b, { p1: serving(a), p2: serving(a), p3: serving(a) }, clock);
    assert.ok(run.done, 'done');
    assertSynced(a, b);
    assert.equal(run.chunkRequests.length, CHUNKS, 'each chunk fetched once');
    for (const p of ['p1', 'p2', 'p3']) assert.ok(run.chunkRequests.some((r) => r.peer === p), `${p} served some`);
    assert.equal(run.stored.size, CHUNKS, 'every chunk was handed out for storage');
    assert.deepEqual(run.penalties, []);
    const s = engine.stats();
    assert.equal(s.phase, 'done');
    assert.equal(s.chunksDone, CHUNKS);
    assert.equal(s.bytesDone, 2_000 * 48);
    // The first poll asks the three for manifests; chunks come once all answered (no wait).
    assert.deepEqual(run.actions.slice(0, 3).map((x) => x.type), ['request-manifest', 'request-manifest', 'request-manifest']);
    assert.equal(clock.now(), 0, 'no waiting was needed');
  });
});

test('a corrupted chunk: SYNC_BAD_CHUNK, the peer is not asked again, the chunk comes from another peer', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    const clock = new ManualClock();
    const engine = engineFor(b);
    const honest = serving(a);
    let badIndex = -1;
    const evil: FakePeer = {
      manifest: honest.manifest,
      chunk: (root, index) => {
        const c = honest.chunk(root, index);
        if (badIndex >= 0 || !(c instanceof Uint8Array)) return c;
        badIndex = index;
        const bad = Uint8Array.from(c);
        bad[7] ^= 0x80;
        return bad;
      },
    };
    engine.addPeer('evil');
    engine.addPeer('good');
    const run = drive(engine, b, { evil, good: honest }, clock);
    assert.ok(run.done);
    assertSynced(a, b);
    assert.deepEqual(run.penalties, [{ peer: 'evil', reason: 'SYNC_BAD_CHUNK' }]);
    const forBad = run.chunkRequests.filter((r) => r.index === badIndex);
    assert.deepEqual(forBad.map((r) => r.peer), ['evil', 'good'], 'refetched from the other peer');
    // Its first round of requests (sent before the bad answer came) and nothing after.
    assert.equal(run.chunkRequests.filter((r) => r.peer === 'evil').length, PER_PEER, 'the evil peer is not asked again');
    assert.equal(engine.stats().badChunks, 1);
    assert.deepEqual(run.stored.get(badIndex), a.stateChunk(a.stateManifest()!.stateRoot, badIndex));
  });
});

test('a chunk of the wrong length is SYNC_BAD_RESPONSE; an empty answer skips the peer without penalty', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    const clock = new ManualClock();
    const engine = engineFor(b);
    const honest = serving(a);
    const short: FakePeer = { manifest: honest.manifest, chunk: (root, index) => (honest.chunk(root, index) as Uint8Array).subarray(1) };
    const forgetful: FakePeer = { manifest: honest.manifest, chunk: () => undefined };
    for (const p of ['short', 'forgetful', 'good']) engine.addPeer(p);
    const run = drive(engine, b, { short, forgetful, good: honest }, clock);
    assert.ok(run.done);
    assertSynced(a, b);
    assert.deepEqual(run.penalties, [{ peer: 'short', reason: 'SYNC_BAD_RESPONSE' }]);
    assert.equal(run.chunkRequests.filter((r) => r.peer === 'short').length, PER_PEER, 'asked only in the first round');
    assert.equal(run.chunkRequests.filter((r) => r.peer === 'forgetful').length, PER_PEER, 'skipped after its empty answers');
  });
});

test('a peer that does not answer: SYNC_STALL after the timeout, the request cancelled and reassigned; a failed request is reassigned without penalty', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    const clock = new ManualClock();
    const engine = engineFor(b, { maxStallsPerPeer: 1 });
    const honest = serving(a);
    let fails = 0;
    const flaky: FakePeer = { manifest: honest.manifest, chunk: (root, index) => (fails++ < 2 ? 'fail' : honest.chunk(root, index)) };
    const mute: FakePeer = { manifest: honest.manifest, chunk: () => 'stall' };
    for (const p of ['mute', 'flaky']) engine.addPeer(p);
    const run = drive(engine, b, { mute, flaky }, clock);
    assert.ok(run.done);
    assertSynced(a, b);
    const stalls = run.penalties.filter((p) => p.reason === 'SYNC_STALL');
    assert.equal(stalls.length, PER_PEER, 'each of its first requests stalled');
    assert.ok(stalls.every((p) => p.peer === 'mute'));
    assert.equal(run.penalties.length, PER_PEER, 'failures are not penalised here');
    const cancels = run.actions.filter((x) => x.type === 'cancel-chunk');
    assert.deepEqual(cancels.map((c) => c.peer), Array(PER_PEER).fill('mute'));
    assert.equal(run.chunkRequests.filter((r) => r.peer === 'mute').length, PER_PEER, 'not asked again after its stalls (maxStallsPerPeer 1)');
    assert.ok(clock.now() >= 5_000, 'the stall needed the timeout to pass');
    assert.equal(engine.stats().stalls, PER_PEER);
  });
});

test('manifests are grouped: the one offered by the most peers wins; a forged one refused by the chain penalises its offerers and the next group is applied', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    const f = forger(a);
    const honest = serving(a);
    {
      // Two honest peers against one forger: the honest manifest is chosen, the forger never asked for chunks.
      const b2 = open(dir.file('b2'), PARAMS, OPTIONS);
      syncHeaders(b2, headersOf(a, 1, 3));
      const engine = engineFor(b2);
      for (const p of ['h1', 'forger', 'h2']) engine.addPeer(p);
      const run = drive(engine, b2, { h1: honest, forger: f, h2: honest }, new ManualClock());
      assert.ok(run.done);
      assertSynced(a, b2);
      assert.ok(!run.chunkRequests.some((r) => r.peer === 'forger'));
      assert.deepEqual(run.penalties, []);
    }
    // Two forgers against one honest peer: the forged manifest is chosen first, its chunks verify, the chain refuses the state.
    const engine = engineFor(b);
    for (const p of ['f1', 'honest', 'f2']) engine.addPeer(p);
    const run = drive(engine, b, { f1: f, honest, f2: f }, new ManualClock());
    assert.ok(run.done);
    assertSynced(a, b);
    assert.equal(run.refused.length, 1);
    assert.deepEqual(run.penalties.map((p) => `${p.peer} ${p.reason}`).sort(), ['f1 CHAIN_BAD_STATE', 'f2 CHAIN_BAD_STATE']);
    const types = run.actions.map((x) => x.type).filter((t) => t === 'select' || t === 'apply' || t === 'discard' || t === 'done');
    assert.deepEqual(types, ['select', 'apply', 'discard', 'select', 'apply', 'done']);
    assert.equal(engine.stats().badManifests, 1);
    // The refused manifest is not chosen again even if offered again.
    assert.equal(run.applied.length, 1);
    assert.equal(manifestId(run.applied[0]!), manifestId(a.stateManifest()!));
  });
});

test('malformed manifests are SYNC_BAD_MANIFEST; a manifest above the caps too', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    const m = a.stateManifest()!;
    const cases: [string, StateManifest, StateSyncOptionsInput][] = [
      ['a chunk hash missing', { ...m, chunkHashes: m.chunkHashes.slice(1) }, {}],
      ['a chunk size of zero', { ...m, chunkSize: 0 }, {}],
      ['a hash of 31 bytes', { ...m, chunkHashes: [m.chunkHashes[0]!.subarray(1), ...m.chunkHashes.slice(1)] }, {}],
      ['a block named at another height', { ...m, height: 2 }, {}],
      ['more bytes than the cap', m, { limits: { maxTotalBytes: m.totalBytes - 1 } }],
      ['more chunks than the cap', m, { limits: { maxChunks: CHUNKS - 1 } }],
      ['chunks larger than the cap', m, { limits: { maxChunkBytes: 4_095 } }],
    ];
    for (const [what, bad, options] of cases) {
      const engine = engineFor(b, options);
      engine.addPeer('evil');
      const run = drive(engine, b, { evil: { manifest: () => bad, chunk: () => 'stall' } }, new ManualClock(), 5_000);
      assert.equal(run.penalties[0]?.reason, 'SYNC_BAD_MANIFEST', what);
      assert.equal(engine.phase, 'discovering', what);
      assert.equal(run.chunkRequests.length, 0, what);
    }
  });
});

test('a manifest whose block is not on our best header chain waits (re-asked) until the headers arrive; one at or below our tip is never chosen', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const a = open(dir.file('a'), PARAMS, OPTIONS);
    a.mineChain(3, { txsPerBlock: 20 });
    const b = open(dir.file('b'), PARAMS, OPTIONS);
    const clock = new ManualClock();
    const engine = engineFor(b);
    engine.addPeer('a');
    let asked = 0;
    const peer: FakePeer = { manifest: () => (asked++, a.stateManifest()), chunk: (r, i) => a.stateChunk(r, i) };
    let run = drive(engine, b, { a: peer }, clock, 10_000);
    assert.equal(engine.phase, 'discovering', 'no headers: nothing chosen');
    assert.ok(asked >= 3, `re-asked while waiting (${asked})`);
    assert.equal(run.penalties.length, 0, 'not the peer\'s fault');
    syncHeaders(b, headersOf(a, 1, 3));
    run = drive(engine, b, { a: peer }, clock);
    assert.ok(run.done);
    assertSynced(a, b);
    // Now B's tip is at the manifest's height: the same offer is not eligible any more.
    const again = engineFor(b);
    again.addPeer('a');
    const idle = drive(again, b, { a: serving(a) }, new ManualClock(), 5_000);
    assert.equal(again.phase, 'discovering');
    assert.equal(idle.chunkRequests.length, 0);
  });
});

test('the choice waits for every asked peer, or manifestWaitMs after the first eligible offer', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    const clock = new ManualClock();
    const engine = engineFor(b, { manifestWaitMs: 2_000 });
    engine.addPeer('fast');
    engine.addPeer('slow');
    const asks = engine.poll(clock.now());
    assert.deepEqual(asks.map((x) => x.type), ['request-manifest', 'request-manifest']);
    engine.onManifest('fast', a.stateManifest(), clock.now());
    assert.deepEqual(engine.poll(clock.now()), [], 'the slow peer has not answered');
    clock.advance(1_999);
    assert.deepEqual(engine.poll(clock.now()), []);
    clock.advance(1);
    const next = engine.poll(clock.now());
    assert.equal(next[0]?.type, 'select');
    assert.ok(next.slice(1).every((x) => x.type === 'request-chunk' && x.peer === 'fast'));
    // The slow peer's answer (same manifest) makes it a server too.
    engine.onManifest('slow', a.stateManifest(), clock.now());
    for (const x of next.slice(1)) if (x.type === 'request-chunk') engine.onChunk('fast', x.index, a.stateChunk(x.stateRoot, x.index)!, clock.now());
    const more = engine.poll(clock.now()).filter((x) => x.type === 'request-chunk');
    assert.ok(more.some((x) => x.peer === 'slow') && more.some((x) => x.peer === 'fast'));
    assert.equal(engine.stats().servingPeers, 2);
  });
});

test('resume: only missing chunks are fetched, a stored chunk that no longer verifies is fetched again', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    const m = a.stateManifest()!;
    const stored = new Map<number, Uint8Array>();
    for (let i = 0; i < 10; i++) stored.set(i, a.stateChunk(m.stateRoot, i)!);
    const rotten = Uint8Array.from(stored.get(4)!);
    rotten[0] ^= 1;
    stored.set(4, rotten);
    stored.set(CHUNKS + 5, new Uint8Array(10)); // outside the manifest: ignored
    const clock = new ManualClock();
    const engine = engineFor(b);
    assert.equal(engine.resume(m, stored, clock.now()), 9);
    assert.equal(engine.phase, 'fetching');
    engine.addPeer('a');
    const run = drive(engine, b, { a: serving(a) }, clock);
    assert.ok(run.done);
    assertSynced(a, b);
    const fetched = run.chunkRequests.map((r) => r.index).sort((x, y) => x - y);
    assert.deepEqual(fetched, [4, ...Array.from({ length: CHUNKS - 10 }, (_, i) => 10 + i)]);
    assert.ok(!run.actions.some((x) => x.type === 'select'), 'the stored manifest is kept, not selected anew');
    assert.equal(engine.stats().resumedChunks, 9);
  });
});

test('resume of a manifest whose block is not on our best header chain discards the progress', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const a = open(dir.file('a'), PARAMS, OPTIONS);
    a.mineChain(3, { txsPerBlock: 20 });
    const b = open(dir.file('b'), PARAMS, OPTIONS);
    const engine = engineFor(b);
    assert.equal(engine.resume(a.stateManifest()!, new Map(), 0), 0);
    const actions = engine.poll(0);
    assert.equal(actions[0]?.type, 'discard');
    assert.equal(engine.phase, 'discovering');
  });
});

test('the chosen block leaving our best header chain abandons the download; a manifest nobody serves is replaced after switchAfterMs', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    // A heavier branch from genesis, by another chain.
    const x = open(dir.file('x'), PARAMS, OPTIONS);
    x.mineChain(5, { txsPerBlock: 5, seed: 99 });
    const clock = new ManualClock();
    const engine = engineFor(b);
    engine.addPeer('a');
    assert.deepEqual(engine.poll(clock.now()).map((y) => y.type), ['request-manifest']);
    engine.onManifest('a', a.stateManifest(), clock.now());
    engine.poll(clock.now()); // selects, requests chunks (left unanswered)
    assert.equal(engine.phase, 'fetching');
    syncHeaders(b, headersOf(x, 1, 5));
    const after = engine.poll(clock.now());
    assert.ok(after.some((y) => y.type === 'cancel-chunk'));
    assert.ok(after.some((y) => y.type === 'discard' && /not on our best header chain/.test(y.why)));
    assert.equal(engine.phase, 'discovering');

    // B follows X now. Peer "a" is gone, peer "x1" serves X's snapshot, peer "x2" later an X manifest of its own.
    const b2 = open(dir.file('b2'), PARAMS, OPTIONS);
    syncHeaders(b2, headersOf(x, 1, 5));
    const e2 = engineFor(b2, { switchAfterMs: 10_000 });
    e2.addPeer('x1');
    e2.poll(clock.now());
    e2.onManifest('x1', x.stateManifest(), clock.now());
    const first = e2.poll(clock.now());
    assert.equal(first[0]?.type, 'select');
    e2.removePeer('x1'); // its chunk requests go back to the queue
    assert.equal(e2.stats().inflight, 0);
    // Another peer offers a different (forged) manifest for the same block: eligible, but the chosen one is kept for now.
    const f = forger(x);
    e2.addPeer('x2');
    assert.deepEqual(e2.poll(clock.now()).map((y) => y.type), ['request-manifest']);
    e2.onManifest('x2', f.manifest() as StateManifest, clock.now());
    clock.advance(9_999);
    assert.ok(!e2.poll(clock.now()).some((y) => y.type === 'select'));
    clock.advance(1);
    const switched = e2.poll(clock.now());
    assert.deepEqual(switched.filter((y) => y.type === 'discard' || y.type === 'select').map((y) => y.type), ['discard', 'select']);
    assert.ok(switched.some((y) => y.type === 'request-chunk' && y.peer === 'x2'));
  });
});

test('chunk requests are paced per peer (chunkRequestsPerSecond); wakeAt names the next paced request or deadline', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const { a, b } = pair(open, dir.file);
    const clock = new ManualClock();
    const engine = engineFor(b, { chunkRequestsPerSecond: 2, minPeers: 1 });
    engine.addPeer('a');
    engine.poll(clock.now());
    engine.onManifest('a', a.stateManifest(), clock.now());
    const answer = (actions: StateSyncAction[]): number => {
      let n = 0;
      for (const x of actions) {
        if (x.type !== 'request-chunk') continue;
        n++;
        engine.onChunk('a', x.index, a.stateChunk(x.stateRoot, x.index)!, clock.now());
      }
      return n;
    };
    assert.equal(answer(engine.poll(clock.now())), 2, 'a burst of one second\'s worth');
    assert.equal(answer(engine.poll(clock.now())), 0, 'then nothing until a token is earned');
    assert.equal(engine.wakeAt(), 500);
    clock.advance(499);
    assert.equal(answer(engine.poll(clock.now())), 0);
    clock.advance(1);
    assert.equal(answer(engine.poll(clock.now())), 1);
    assert.equal(engine.wakeAt(), 1_000);
    // Unanswered, the request's deadline is the wake-up.
    clock.advance(500);
    const sent = engine.poll(clock.now()).filter((x) => x.type === 'request-chunk');
    assert.equal(sent.length, 1);
    assert.equal(engine.wakeAt(), 1_000 + 500, 'the next token comes before the deadline');
    const unpaced = engineFor(b, { chunkRequestsPerSecond: Infinity });
    unpaced.addPeer('a');
    unpaced.poll(0);
    unpaced.onManifest('a', a.stateManifest(), 0);
    assert.equal(unpaced.poll(0).filter((x) => x.type === 'request-chunk').length, PER_PEER);
    assert.throws(() => engineFor(b, { chunkRequestsPerSecond: 0 }), RangeError);
  });
});

test('an empty state (no chunks) is applied at once', async () => {
  await inTempChains('pqnet-state-', (open, dir) => {
    const params = { ...PARAMS, genesisAccounts: 0 };
    const a = open(dir.file('a'), params, OPTIONS);
    a.mineChain(2);
    const b = open(dir.file('b'), params, OPTIONS);
    syncHeaders(b, headersOf(a, 1, 2));
    const engine = engineFor(b);
    engine.addPeer('a');
    const run = drive(engine, b, { a: serving(a) }, new ManualClock());
    assert.ok(run.done);
    assert.equal(run.chunkRequests.length, 0);
    assert.deepEqual(b.tip().hash, a.tip().hash);
  });
});

// ---------------------------------------------------------------- messages

test('state messages: ids in 0x0130–0x013f on pqnet/sync/1, chunks on the bulk channel, caps from the limits', () => {
  const msgs = stateMessages({ maxChunkBytes: 64 * 1024, maxChunks: 100 });
  const registry = createRegistry();
  registerRequest(registry, msgs.getManifest);
  registerRequest(registry, msgs.getChunk);
  for (const t of [msgs.getManifest.request, msgs.getManifest.response, msgs.getChunk.request, msgs.getChunk.response]) {
    assert.ok(t.id >= 0x0130 && t.id <= 0x013f, t.name);
    assert.equal(t.protocol, SYNC_PROTOCOL);
  }
  assert.equal(msgs.getChunk.response.channel, 6);
  assert.ok(msgs.getChunk.response.maxBytes >= 64 * 1024 && msgs.getChunk.response.maxBytes < 64 * 1024 + 64);
  assert.ok(msgs.getManifest.response.maxBytes < 100 * 40 + 200);
  // Round trip of a manifest through the schema.
  const m: StateManifest = { height: 9, blockHash: new Uint8Array(32).fill(1), stateRoot: new Uint8Array(32).fill(2), chunkSize: 1_000, totalBytes: 2_500, chunkHashes: [0, 1, 2].map((i) => new Uint8Array(32).fill(i)) };
  const schema = msgs.getManifest.response.schema;
  const checked = schema.check([0, 0, [manifestToWire(m)]], 'r') as [number, number, ReturnType<typeof manifestToWire>[]];
  const back = manifestFromWire(checked[2][0]!);
  assert.equal(manifestId(back), manifestId(m));
  assert.equal(checkManifest(back, msgs.limits), undefined);
  // Too many hashes, a chunk larger than the cap, a second manifest: refused by the schema.
  const tooMany = { ...m, chunkHashes: Array.from({ length: 101 }, () => new Uint8Array(32)) };
  for (const bad of [[manifestToWire(tooMany)], [manifestToWire({ ...m, chunkSize: 64 * 1024 + 1 })], [manifestToWire(m), manifestToWire(m)]]) {
    assert.throws(() => schema.check([0, 0, bad], 'r'), (e: unknown) => e instanceof PqnetError && e.code === 'MSG_SCHEMA');
  }
  assert.throws(() => msgs.getChunk.response.schema.check([0, 0, new Uint8Array(64 * 1024 + 1)], 'r'), (e: unknown) => e instanceof PqnetError && e.code === 'MSG_SCHEMA');
  assert.throws(() => msgs.getChunk.request.schema.check([0, [new Uint8Array(32), 100]], 'r'), (e: unknown) => e instanceof PqnetError && e.code === 'MSG_SCHEMA');
  assert.throws(() => makeStateLimits({ maxChunks: 0 }), RangeError);
  assert.equal(DEFAULT_STATE_LIMITS.maxChunkBytes, 1024 * 1024);
});

test('the chunk hash is SHA3-256; the manifest id covers every field', () => {
  const bytes = new TextEncoder().encode('chunk');
  assert.equal(hex(stateChunkHash(bytes)), createHash('sha3-256').update(bytes).digest('hex'));
  const m: StateManifest = { height: 1, blockHash: new Uint8Array(32), stateRoot: new Uint8Array(32), chunkSize: 10, totalBytes: 10, chunkHashes: [new Uint8Array(32)] };
  const ids = new Set([
    manifestId(m),
    manifestId({ ...m, height: 2 }),
    manifestId({ ...m, stateRoot: new Uint8Array(32).fill(1) }),
    manifestId({ ...m, chunkSize: 11 }),
    manifestId({ ...m, chunkHashes: [new Uint8Array(32).fill(3)] }),
  ]);
  assert.equal(ids.size, 5);
  assert.equal(manifestId(m), hex(createHash('sha3-256').update(encodeCbor(manifestToWire(m))).digest()));
});
