/**
 * The headers-first engine against real devchains: peers are devchains whose
 * GETHEADERS answers come from `headersAfter`, or functions that misbehave.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex, type Hash } from '../../src/chain/adapter.ts';
import type { Devchain } from '../../src/chain/devchain/index.ts';
import type { Reason } from '../../src/core/errors.ts';
import { HeaderSync, type HeaderSyncAction } from '../../src/sync/headers.ts';
import { headersAfter } from '../../src/sync/locator.ts';
import { MAX_HEADERS_PER_MESSAGE } from '../../src/sync/messages.ts';
import { T0, inTempChains } from '../chain/_devchain.ts';

const NOW_MS = T0 + 3_600_000;

/** A peer answers a locator with a batch, or fails the request (undefined). */
type Peer = (locator: Hash[]) => Uint8Array[] | undefined;

const serving =
  (chain: Devchain): Peer =>
  (locator) =>
    headersAfter(chain, locator, undefined);

interface Run {
  readonly requests: { peer: string; start: string }[];
  readonly penalties: { peer: string; reason: Reason }[];
  readonly bests: number;
}

/** Poll the engine and answer its requests until it has nothing more to ask (bounded). */
function drive(engine: HeaderSync, peers: Record<string, Peer>, rounds = 100): Run {
  const run = { requests: [] as { peer: string; start: string }[], penalties: [] as { peer: string; reason: Reason }[], bests: 0 };
  let now = 0;
  for (let i = 0; i < rounds; i++) {
    const actions: HeaderSyncAction[] = engine.poll(now);
    const requests = actions.filter((a) => a.type === 'request');
    for (const a of actions) {
      if (a.type === 'penalize') run.penalties.push({ peer: a.peer, reason: a.reason });
      if (a.type === 'best') run.bests++;
    }
    if (requests.length === 0) return run;
    for (const r of requests) {
      run.requests.push({ peer: r.peer, start: hex(r.locator[0]!) });
      const batch = peers[r.peer]!(r.locator);
      if (batch === undefined) engine.onFailed(r.peer, now);
      else engine.onHeaders(r.peer, batch, NOW_MS, now);
    }
    now += 1;
  }
  assert.fail('the engine kept asking');
}

test('one peer: 4,500 headers in three requests (2,000 + 2,000 + 500), best header equal to the peer\'s', async () => {
  await inTempChains('pqnet-hs-', (open, dir) => {
    const a = open(dir.file('a'));
    const b = open(dir.file('b'));
    a.mineChain(4_500);
    const engine = new HeaderSync(b);
    engine.addPeer('a', 4_500);
    const run = drive(engine, { a: serving(a) });
    assert.deepEqual(b.bestHeader().hash, a.bestHeader().hash);
    assert.equal(b.bestHeader().height, 4_500);
    assert.equal(run.requests.length, 3);
    assert.equal(engine.stats().headersStored, 4_500);
    assert.equal(run.penalties.length, 0);
    assert.equal(b.tip().height, 0, 'headers only: no block yet');
  });
});

test('three peers on one chain: the download goes across them and no header is fetched twice', async () => {
  await inTempChains('pqnet-hs-', (open, dir) => {
    const a = open(dir.file('a'));
    const b = open(dir.file('b'));
    a.mineChain(2 * MAX_HEADERS_PER_MESSAGE + 10);
    const engine = new HeaderSync(b);
    for (const p of ['p1', 'p2', 'p3']) engine.addPeer(p, a.tip().height);
    const run = drive(engine, { p1: serving(a), p2: serving(a), p3: serving(a) });
    assert.deepEqual(b.bestHeader().hash, a.bestHeader().hash);
    assert.equal(engine.stats().headersStored, a.tip().height, 'each header stored once');
    // Genesis, 2000 and 4000, one peer each in turn; nobody is asked again once the best header reaches their height.
    assert.deepEqual(
      run.requests.map((r) => r.peer),
      ['p1', 'p2', 'p3'],
    );
    assert.equal(new Set(run.requests.map((r) => r.start)).size, 3);
  });
});

test('a peer that fails or stalls: the next free peer continues from the same place', async () => {
  await inTempChains('pqnet-hs-', (open, dir) => {
    const a = open(dir.file('a'));
    const b = open(dir.file('b'));
    a.mineChain(300);
    const engine = new HeaderSync(b);
    engine.addPeer('dead', 1_000);
    engine.addPeer('good', 300);
    const run = drive(engine, { dead: () => undefined, good: serving(a) });
    assert.deepEqual(b.bestHeader().hash, a.bestHeader().hash);
    assert.equal(run.requests[0]!.peer, 'dead', 'the higher claimed height is asked first');
    assert.ok(run.requests.some((r) => r.peer === 'good'));
  });
});

test('a heavier branch from another peer wins; the lighter one is followed too, and a later heavier extension wins back', async () => {
  await inTempChains('pqnet-hs-', (open, dir) => {
    const main = open(dir.file('main'));
    const fork = open(dir.file('fork'));
    const b = open(dir.file('b'));
    main.mineChain(50);
    // `fork` shares the first 20 blocks, then goes its own way for 40 more (more work).
    for (let h = 1; h <= 20; h++) fork.storeHeaders([main.headerAt(h)!]);
    for (let h = 1; h <= 20; h++) fork.importBlock(fork.decodeBlock(main.block(main.headerAt(h)!.hash)!));
    fork.mineChain(40, { txsPerBlock: 1 });
    assert.notDeepEqual(fork.headerAt(21)!.hash, main.headerAt(21)!.hash);
    const engine = new HeaderSync(b);
    engine.addPeer('main', 50);
    engine.addPeer('fork', 60);
    drive(engine, { main: serving(main), fork: serving(fork) });
    assert.deepEqual(b.bestHeader().hash, fork.bestHeader().hash, 'the most work wins');
    assert.ok(b.header(main.bestHeader().hash) !== undefined, 'the other branch is stored too');
    // main grows past the fork's work: announced, asked again, and the best header moves back.
    main.mineChain(20);
    engine.onPeerHeight('main', 70);
    drive(engine, { main: serving(main), fork: serving(fork) });
    assert.deepEqual(b.bestHeader().hash, main.bestHeader().hash);
  });
});

test('bad answers are refused whole and penalised: invalid header, broken chain, unknown parent, too many', async () => {
  await inTempChains('pqnet-hs-', (open, dir) => {
    const a = open(dir.file('a'));
    a.mineChain(30);
    const good = (l: Hash[]): Uint8Array[] => headersAfter(a, l, undefined);
    const cases: [string, Peer, Reason][] = [
      [
        'a header whose proof of work is broken',
        (l) => {
          const batch = good(l);
          const bad = Uint8Array.from(batch[10]!);
          bad[bad.length - 1]! ^= 0xff;
          batch[10] = bad;
          return batch;
        },
        'CHAIN_BAD_HEADER',
      ],
      ['a gap in the batch', (l) => good(l).filter((_, i) => i !== 5), 'CHAIN_UNKNOWN_PARENT'],
      ['a batch that starts nowhere we know', (l) => good(l).slice(3), 'CHAIN_UNKNOWN_PARENT'],
      ['not headers at all', () => [new Uint8Array([1, 2, 3])], 'CHAIN_BAD_HEADER'],
      ['more than the cap', (l) => Array.from({ length: MAX_HEADERS_PER_MESSAGE + 1 }, () => good(l)[0]!), 'SYNC_BAD_RESPONSE'],
    ];
    for (const [what, peer, reason] of cases) {
      const b = open(dir.file('b'));
      const engine = new HeaderSync(b);
      engine.addPeer('evil', 30);
      const run = drive(engine, { evil: peer });
      assert.deepEqual(
        run.penalties.map((p) => p.reason),
        [reason],
        what,
      );
      assert.equal(b.bestHeader().height, 0, `${what}: nothing stored`);
      assert.equal(engine.stats().batchesRefused, 1);
      // An honest peer then syncs it fully.
      engine.addPeer('honest', 30);
      drive(engine, { evil: peer, honest: good });
      assert.deepEqual(b.bestHeader().hash, a.bestHeader().hash, `${what}: synced from the honest peer`);
    }
  });
});
