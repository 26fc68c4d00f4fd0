/**
 * StateSyncService over real nodes on loopback TCP. B starts from genesis and
 * learns the headers through the headers-first `ChainSync`, run beside the
 * state sync with its block download paused (so the manifests arrive before
 * their blocks' headers, and blocks do not overtake the snapshot); it fetches
 * a ~3.8 MB devchain state (80,000 accounts, 235 chunks of 16 KiB) from
 * several peers at once. Once the state is applied, block download resumes
 * from the snapshot's block.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync } from 'node:fs';
import type { Hash, StateManifest } from '../../src/chain/adapter.ts';
import type { Devchain, DevchainParams } from '../../src/chain/devchain/index.ts';
import { SystemClock } from '../../src/core/clock.ts';
import type { Reason } from '../../src/core/errors.ts';
import { ChainSync } from '../../src/node/chain-sync.ts';
import type { Node } from '../../src/node/node.ts';
import { StateSyncService, type StateSyncProgress } from '../../src/node/state-sync.ts';
import { SYNC_PROTOCOL } from '../../src/sync/messages.ts';
import { manifestId } from '../../src/sync/state-messages.ts';
import { StateStore } from '../../src/sync/state-store.ts';
import { tempDir, TEST_OPTIONS, TEST_PARAMS, withChains } from '../chain/_devchain.ts';
import { testNodes, until } from './_nodes.ts';

const PARAMS: Partial<DevchainParams> = { ...TEST_PARAMS, genesisAccounts: 80_000 };
const CHUNKS = Math.ceil((80_000 * 48) / (16 * 1024));
/** Fast ticks and re-asks: the headers arrive within a few ticks. */
const FAST = { tickMs: 20, manifestRecheckMs: 100, manifestWaitMs: 500 } as const;

type Open = (file: string, params?: Partial<DevchainParams>, options?: typeof TEST_OPTIONS) => Devchain;

function copyDb(from: string, to: string): void {
  copyFileSync(from, to);
  if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${to}-wal`);
}

/** A served chain (3 blocks of transfers on the big genesis) in `servers` files, and an empty one for B. */
function chains(open: Open, file: (n: string) => string, servers: readonly string[]): { served: Devchain[]; b: Devchain; bFile: string } {
  const first = file(servers[0]!);
  const a = open(first, PARAMS);
  a.mineChain(3, { txsPerBlock: 50 });
  a.close();
  const files = servers.map((s, i) => {
    if (i === 0) return first;
    const f = file(s);
    copyDb(first, f);
    return f;
  });
  const bFile = file('b');
  return { served: files.map((f) => open(f, PARAMS)), b: open(bFile, PARAMS), bFile };
}

/** A sync node serving `chain`: headers (ChainSync) and state (StateSyncService, not started). */
function server(t: ReturnType<typeof testNodes>, name: string, chain: Devchain, stateChain: Devchain, storePath: string, clock: SystemClock): { node: Node; stop: () => void } {
  const node = t.make(name, { protocols: [SYNC_PROTOCOL], height: () => chain.tip().height });
  const headers = new ChainSync(node, chain, clock);
  const state = new StateSyncService(node, stateChain, clock, { storePath });
  return { node, stop: () => { headers.stop(); state.stop(); } };
}

test('StateSyncService: B fetches a multi-megabyte state from three peers at once; the one serving a corrupted chunk is penalised and the chunk refetched', async () => {
  const dir = await tempDir('pqnet-state-sync-');
  const t = testNodes();
  const stops: (() => void)[] = [];
  try {
    await withChains(async (open) => {
      try {
        const { served: [chainA, chainC, chainD], b: chainB } = chains(open, dir.file, ['a', 'c', 'd']);
        // D flips a byte in the third chunk it serves.
        let dServed = 0;
        let corrupted: number | undefined;
        const evilD = new Proxy(chainD!, {
          get(target, key) {
            if (key === 'stateChunk') {
              return (root: Hash, index: number): Uint8Array | undefined => {
                const c = target.stateChunk(root, index);
                if (c === undefined || ++dServed !== 3) return c;
                corrupted = index;
                const bad = Uint8Array.from(c);
                bad[100]! ^= 0xff;
                return bad;
              };
            }
            const v: unknown = Reflect.get(target, key, target);
            return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
          },
        });
        const clock = new SystemClock();
        const a = server(t, 'a', chainA!, chainA!, dir.file('a-state'), clock);
        const c = server(t, 'c', chainC!, chainC!, dir.file('c-state'), clock);
        const d = server(t, 'd', chainD!, evilD, dir.file('d-state'), clock);
        stops.push(a.stop, c.stop, d.stop);
        const b = t.make('b', { protocols: [SYNC_PROTOCOL], height: () => chainB.tip().height });
        const headersB = new ChainSync(b, chainB, clock, { tickMs: 20, headers: { recheckMs: 100 }, blocksPaused: true });
        const storePath = dir.file('b-state');
        const stateB = new StateSyncService(b, chainB, clock, { storePath, ...FAST });
        stops.push(() => headersB.stop(), () => stateB.stop());
        const progress: StateSyncProgress[] = [];
        const offenses: { peer: string | undefined; reason: Reason }[] = [];
        let applied: StateManifest | undefined;
        stateB.on('progress', (p) => progress.push(p));
        stateB.on('applied', (m) => (applied = m));
        b.on('peer:offense', (p, reason) => offenses.push({ peer: p.peerId, reason }));
        for (const n of [a.node, c.node, d.node, b]) await n.start();
        for (const s of [a, c, d]) await b.connect(s.node.listenAddresses[0]!);
        assert.equal(chainB.bestHeader().height, 0, 'B has no headers yet');
        headersB.start();
        stateB.start();
        await until(() => applied !== undefined, 'B to apply the state', 3_000);

        // The state is A's: same block, same root, same records.
        const want = chainA!.stateManifest()!;
        assert.deepEqual(applied!.blockHash, want.blockHash);
        assert.deepEqual(chainB.tip().hash, want.blockHash);
        assert.equal(chainB.tip().height, 3);
        const mine = chainB.stateManifest()!;
        assert.deepEqual(mine.stateRoot, want.stateRoot);
        assert.equal(manifestId(mine), manifestId(want), 'B\'s own snapshot, read back from its accounts, is A\'s: same root and chunks');
        assert.equal(want.chunkHashes.length, CHUNKS);

        // Spread over the three; D's bad chunk refused, penalised once, fetched from another peer.
        const byPeer = (n: Node): number => progress.filter((p) => p.peer === n.peerId).length;
        assert.ok(byPeer(a.node) > 0 && byPeer(c.node) > 0, `A ${byPeer(a.node)}, C ${byPeer(c.node)}`);
        assert.ok(byPeer(d.node) >= 2, `D served ${byPeer(d.node)} good chunks before its bad one`);
        assert.equal(progress.length, CHUNKS, 'each chunk stored once');
        assert.notEqual(corrupted, undefined);
        const refetched = progress.filter((p) => p.index === corrupted);
        assert.equal(refetched.length, 1);
        assert.ok([a.node.peerId, c.node.peerId].includes(refetched[0]!.peer), 'the corrupted chunk came from A or C');
        assert.deepEqual(offenses.filter((o) => o.reason === 'SYNC_BAD_CHUNK'), [{ peer: d.node.peerId, reason: 'SYNC_BAD_CHUNK' }]);
        assert.deepEqual(offenses.filter((o) => o.peer !== d.node.peerId), [], 'A and C were not penalised');
        const s = stateB.stats();
        assert.equal(s.phase, 'done');
        assert.equal(s.badChunks, 1);
        assert.equal(s.chunksDone, CHUNKS);
        assert.ok(progress.at(-1)!.bytesDone === want.totalBytes);

        // Served to everyone: A answered B's chunk requests over the wire.
        assert.ok(a.node.messageCounts(b.peerId)!.in['sync.getstatechunk.request']! > 0);
        assert.equal(b.messageCounts(a.node.peerId)!.out['sync.getblocks.request'], undefined, 'no block was fetched during the state sync');

        // Block download continues from the snapshot's block: A mines two more, B follows.
        headersB.setBlocksPaused(false);
        chainA!.mineChain(2, { txsPerBlock: 10 });
        await until(() => chainB.tip().height === 5, 'B to import the blocks above the snapshot', 2_000);
        assert.deepEqual(chainB.tip().hash, chainA!.tip().hash);
        // The progress is gone once applied.
        stateB.stop();
        const store = StateStore.open(storePath);
        try {
          assert.equal(store.load(), undefined);
        } finally {
          store.close();
        }
      } finally {
        for (const s of stops) s();
        await t.cleanup();
      }
    });
  } finally {
    await dir.cleanup();
  }
});

test('StateSyncService: stopped mid-way and restarted on the same store and chain files, B fetches only the missing chunks', async () => {
  const dir = await tempDir('pqnet-state-sync-');
  const t = testNodes();
  const stops: (() => void)[] = [];
  try {
    await withChains(async (open) => {
      try {
        const { served: [chainA, chainC], b: firstB, bFile } = chains(open, dir.file, ['a', 'c']);
        const clock = new SystemClock();
        const a = server(t, 'a', chainA!, chainA!, dir.file('a-state'), clock);
        const c = server(t, 'c', chainC!, chainC!, dir.file('c-state'), clock);
        stops.push(a.stop, c.stop);
        for (const n of [a.node, c.node]) await n.start();
        const storePath = dir.file('b-state');

        // First run: stop as soon as 60 chunks are stored.
        const b1 = t.make('b', { protocols: [SYNC_PROTOCOL], height: () => firstB.tip().height });
        const headers1 = new ChainSync(b1, firstB, clock, { tickMs: 20, headers: { recheckMs: 100 }, blocksPaused: true });
        const state1 = new StateSyncService(b1, firstB, clock, { storePath, ...FAST });
        stops.push(() => headers1.stop(), () => state1.stop());
        let stoppedAt = 0;
        state1.on('progress', (p) => {
          if (p.chunksDone < 60) return;
          stoppedAt = p.chunksDone;
          state1.stop();
        });
        await b1.start();
        await b1.connect(a.node.listenAddresses[0]!);
        await b1.connect(c.node.listenAddresses[0]!);
        headers1.start();
        state1.start();
        await until(() => stoppedAt > 0, 'B to store 60 chunks', 3_000);
        headers1.stop();
        await b1.stop();
        assert.equal(firstB.tip().height, 0, 'not applied');
        firstB.close();
        const check = StateStore.open(storePath);
        const stored = check.chunkCount();
        check.close();
        assert.equal(stored, stoppedAt, 'every chunk reported was stored, nothing after the stop');
        assert.ok(stored > 0 && stored < CHUNKS);
        await until(() => a.node.peers().length === 0 && c.node.peers().length === 0, 'A and C to see B leave', 2_000);

        // Restart: same identity, store file and chain file.
        const chainB = open(bFile, PARAMS);
        assert.equal(chainB.bestHeader().height, 3, 'the headers were kept');
        const b2 = t.make('b', { protocols: [SYNC_PROTOCOL], height: () => chainB.tip().height });
        const headers2 = new ChainSync(b2, chainB, clock, { tickMs: 20, headers: { recheckMs: 100 }, blocksPaused: true });
        const state2 = new StateSyncService(b2, chainB, clock, { storePath, ...FAST });
        stops.push(() => headers2.stop(), () => state2.stop());
        let resumed: number | undefined;
        let applied: StateManifest | undefined;
        let fetched = 0;
        state2.on('selected', (_m, n) => (resumed = n));
        state2.on('progress', () => fetched++);
        state2.on('applied', (m) => (applied = m));
        await b2.start();
        await b2.connect(a.node.listenAddresses[0]!);
        await b2.connect(c.node.listenAddresses[0]!);
        headers2.start();
        state2.start();
        assert.equal(resumed, stored, 'resumed at start() with the stored chunks');
        await until(() => applied !== undefined, 'B to apply the state after the restart', 3_000);
        const requests = [a.node, c.node].reduce((sum, s) => sum + (b2.messageCounts(s.peerId)!.out['sync.getstatechunk.request'] ?? 0), 0);
        assert.equal(requests, CHUNKS - stored, 'only the missing chunks were asked for');
        assert.equal(fetched, CHUNKS - stored);
        assert.equal(state2.stats().resumedChunks, stored);
        assert.deepEqual(chainB.tip().hash, chainA!.tip().hash);
        assert.equal(manifestId(chainB.stateManifest()!), manifestId(chainA!.stateManifest()!));
      } finally {
        for (const s of stops) s();
        await t.cleanup();
      }
    });
  } finally {
    await dir.cleanup();
  }
});
