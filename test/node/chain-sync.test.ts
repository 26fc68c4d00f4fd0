/** ChainSync over real nodes: B syncs A's headers over TCP through GETHEADERS; a peer without the protocol is not asked. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SystemClock } from '../../src/core/clock.ts';
import { SYNC_PROTOCOL } from '../../src/sync/messages.ts';
import { ChainSync } from '../../src/node/chain-sync.ts';
import { testNodes, until } from '../node/_nodes.ts';
import { tempDir, withChains } from '../chain/_devchain.ts';

test('ChainSync: a node syncs 4,100 headers from a peer over TCP and follows its new ones', async () => {
  const dir = await tempDir('pqnet-sync-');
  const t = testNodes();
  const syncs: ChainSync[] = [];
  try {
    await withChains(async (open) => {
      try {
        const chainA = open(dir.file('a'));
        const chainB = open(dir.file('b'));
        chainA.mineChain(4_100);
        const clock = new SystemClock();
        const a = t.make('a', { protocols: [SYNC_PROTOCOL], height: () => chainA.tip().height });
        const b = t.make('b', { protocols: [SYNC_PROTOCOL] });
        const plain = t.make('plain');
        const syncA = new ChainSync(a, chainA, clock);
        const syncB = new ChainSync(b, chainB, clock, { tickMs: 50, headers: { recheckMs: 100 } });
        syncs.push(syncA, syncB);
        const bests: number[] = [];
        syncB.on('best', (h) => bests.push(h.height));
        for (const n of [a, b, plain]) await n.start();
        syncA.start();
        syncB.start();
        await b.connect(a.listenAddresses[0]!);
        await b.connect(plain.listenAddresses[0]!);
        await until(() => chainB.bestHeader().height === 4_100, 'B to have A\'s headers', 4_000);
        assert.deepEqual(chainB.bestHeader().hash, chainA.bestHeader().hash);
        await until(() => chainB.tip().height === 4_100, 'B to have A\'s blocks', 4_000);
        assert.deepEqual(chainB.tip().hash, chainA.tip().hash);
        assert.deepEqual(bests.slice(0, 3), [2_000, 4_000, 4_100]);
        // A mines on; B asks again (recheck) and follows.
        chainA.mineChain(5);
        await until(() => chainB.tip().height === 4_105, 'B to follow A\'s new blocks', 4_000);
        chainB.checkIntegrity();
        // The peer without pqnet/sync/1 was never asked, and nobody was penalised.
        assert.equal(syncB.headers.stats().peers, 1);
        assert.equal(b.health().offenses['CHAIN_BAD_HEADER'], undefined);
        assert.equal(b.messageCounts(a.peerId)!.out['sync.getheaders.request']! >= 3, true);
        assert.equal(b.messageCounts(plain.peerId)!.out['sync.getheaders.request'], undefined);
      } finally {
        // Nodes stop before their chains close.
        for (const s of syncs) s.stop();
        await t.cleanup();
      }
    });
  } finally {
    await dir.cleanup();
  }
});
