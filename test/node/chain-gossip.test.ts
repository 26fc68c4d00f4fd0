/**
 * ChainGossip over real nodes on tcp://127.0.0.1:0, each with a devchain in a
 * temporary SQLite file and the real Relay, ChainSync and Gossip, wired as the
 * node service wires them: transactions and blocks cross a line of gossip
 * nodes by the `txs` and `blocks` topics (relay announces nothing between
 * them) while a peer without gossip is still served by relay; invalid items
 * pushed by gossip are rejected and cost their sender; a block whose parent is
 * unknown sends headers-first sync to its sender.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hex, sameHash } from '../../src/chain/adapter.ts';
import { encodeTx, type Devchain } from '../../src/chain/devchain/index.ts';
import { SystemClock } from '../../src/core/clock.ts';
import { GOSSIP_PROTOCOL } from '../../src/gossip/messages.ts';
import { ChainGossip } from '../../src/node/chain-gossip.ts';
import { ChainSync } from '../../src/node/chain-sync.ts';
import { Gossip, type GossipMessage } from '../../src/node/gossip.ts';
import type { Node } from '../../src/node/node.ts';
import { DevProducer } from '../../src/node/producer.ts';
import { Relay, type RelayOptions } from '../../src/node/relay.ts';
import { SYNC_PROTOCOL } from '../../src/sync/messages.ts';
import { forge, tempDir, withChains } from '../chain/_devchain.ts';
import { testNodes, until } from './_nodes.ts';

interface Site {
  readonly name: string;
  readonly node: Node;
  readonly chain: Devchain;
  readonly relay: Relay;
  readonly sync: ChainSync;
  /** Absent for a node that does not speak gossip. */
  readonly gossip: Gossip | undefined;
  /** Absent without gossip, or for a raw gossip node (`bridge: false`). */
  readonly bridge: ChainGossip | undefined;
  readonly producer: DevProducer;
  /** Gossip items delivered to this node. */
  readonly got: GossipMessage[];
}

interface SiteOptions {
  /** Speak gossip (default true). */
  readonly gossip?: boolean;
  /** Run ChainGossip on it (default: when it speaks gossip). */
  readonly bridge?: boolean;
  readonly mempool?: RelayOptions['mempool'];
}

type Make = (name: string, options?: SiteOptions) => Site;

/** Sites wired as src/node/service.ts wires them; everything is stopped, closed and removed afterwards. */
async function withSites(fn: (make: Make) => Promise<void>): Promise<void> {
  const dir = await tempDir('pqnet-chain-gossip-');
  const t = testNodes();
  const sites: Site[] = [];
  const clock = new SystemClock();
  try {
    await withChains(async (open) => {
      const make: Make = (name, o = {}) => {
        const chain = open(dir.file(name));
        const withGossip = o.gossip ?? true;
        const node = t.make(name, { protocols: withGossip ? [SYNC_PROTOCOL, GOSSIP_PROTOCOL] : [SYNC_PROTOCOL], height: () => chain.tip().height });
        const sync = new ChainSync(node, chain, clock, { tickMs: 50 });
        const relay = new Relay(node, chain, clock, {
          engine: { trickleMs: 10 },
          ...(o.mempool === undefined ? {} : { mempool: o.mempool }),
          onBlockAnnounced: (peer, height) => sync.onPeerHeight(peer, height ?? chain.bestHeader().height + 1),
        });
        sync.on('imported', (r, from, hash) => {
          relay.markBlockKnown(from, hash);
          const last = r.connected.at(-1);
          relay.onChainChanged(r, last !== undefined && sync.synced && sameHash(last, chain.tip().hash));
        });
        const gossip = withGossip ? new Gossip(node, clock, { params: { heartbeatMs: 100 } }) : undefined;
        const bridge = gossip !== undefined && (o.bridge ?? true) ? new ChainGossip(gossip, { chain, relay, sync, clock }) : undefined;
        const producer = new DevProducer(chain, {
          pendingTxs: () => [...relay.mempool.txs()].map((tx) => tx.bytes),
          mined: (r) => relay.onChainChanged(r),
          submitTx: (bytes) => void relay.submitTx(bytes),
        });
        const got: GossipMessage[] = [];
        gossip?.on('message', (m) => got.push(m));
        const site = { name, node, chain, relay, sync, gossip, bridge, producer, got };
        sites.push(site);
        return site;
      };
      try {
        await fn(make);
      } finally {
        // Everything that touches a chain stops before the chains close.
        for (const s of sites) {
          s.bridge?.stop();
          s.gossip?.stop();
          s.sync.stop();
          s.relay.stop();
        }
        await t.cleanup();
      }
    });
  } finally {
    await dir.cleanup();
  }
}

async function start(...sites: Site[]): Promise<void> {
  for (const s of sites) {
    await s.node.start();
    s.sync.start();
  }
}

async function link(from: Site, to: Site): Promise<void> {
  await from.node.connect(to.node.listenAddresses[0]!);
}

/** `s` has every one of `peers` in its mesh of `topic`. */
function meshed(s: Site, topic: string, peers: readonly Site[]): boolean {
  const mesh = s.gossip!.router.meshPeers(topic);
  return peers.every((p) => mesh.includes(p.node.peerId));
}

/** Names of the relay messages `s` received from `peer`. */
function relayIn(s: Site, peer: Site): string[] {
  return Object.keys(s.node.messageCounts(peer.node.peerId)?.in ?? {}).filter((k) => k.startsWith('relay.')).sort();
}

/** A gossip line a–b–c, plus d (relay and sync only) attached to b; meshes formed on both topics. */
async function lineWithPlainPeer(make: Make): Promise<[Site, Site, Site, Site]> {
  const [a, b, c] = ['a', 'b', 'c'].map((n) => make(n)) as [Site, Site, Site];
  const d = make('d', { gossip: false });
  await start(a, b, c, d);
  await link(b, a);
  await link(c, b);
  await link(d, b);
  await until(
    () => ['txs', 'blocks'].every((t) => meshed(a, t, [b]) && meshed(b, t, [a, c]) && meshed(c, t, [b])) && b.relay.engine.peers().length === 3,
    'gossip meshes and relay peers',
  );
  return [a, b, c, d];
}

test('a transaction crosses a gossip line by the txs topic (no relay messages between gossip peers); a peer without gossip is served by relay and its transaction is published to gossip', async () => {
  await withSites(async (make) => {
    const [a, b, c, d] = await lineWithPlainPeer(make);
    const sites = [a, b, c, d];
    const nameOf = (peer: string | undefined): string => sites.find((s) => s.node.peerId === peer)?.name ?? 'local';
    const arrivals: string[] = [];
    for (const s of sites) s.relay.on('tx', (tx, from, via) => arrivals.push(`${s.name}<-${nameOf(from)} by ${via ?? 'relay'}: ${hex(tx.id).slice(0, 8)}`));

    const id1 = a.relay.submitTx(a.chain.makeTxs(1, 1)[0]!);
    await until(() => c.relay.mempool.has(id1) && d.relay.mempool.has(id1), 'the first transaction at C (gossip) and D (relay)');
    // D's own transaction reaches B by relay; B publishes it, and gossip takes it to A and C.
    const id2 = d.relay.submitTx(d.chain.makeTxs(1, 2)[0]!);
    await until(() => a.relay.mempool.has(id2) && c.relay.mempool.has(id2), 'the second transaction at A and C');

    const t1 = hex(id1).slice(0, 8);
    const t2 = hex(id2).slice(0, 8);
    assert.deepEqual(arrivals.sort(), [
      `a<-b by gossip: ${t2}`, `a<-local by relay: ${t1}`,
      `b<-a by gossip: ${t1}`, `b<-d by relay: ${t2}`,
      `c<-b by gossip: ${t1}`, `c<-b by gossip: ${t2}`,
      `d<-b by relay: ${t1}`, `d<-local by relay: ${t2}`,
    ].sort());
    // Between gossip peers relay announced nothing; with D it did the whole INV/GETDATA/TX exchange.
    for (const [x, y] of [[a, b], [b, a], [b, c], [c, b]] as const) assert.deepEqual(relayIn(x, y), [], `${x.name} from ${y.name}`);
    assert.deepEqual(relayIn(b, d), ['relay.getdata', 'relay.inv', 'relay.tx']);
    assert.deepEqual(relayIn(d, b), ['relay.getdata', 'relay.inv', 'relay.tx']);
    assert.deepEqual(c.got.map((m) => `${m.topic} from ${nameOf(m.from)}`), ['txs from b', 'txs from b']);

    const [sa, sb, sc] = [a, b, c].map((s) => s.bridge!.stats());
    assert.deepEqual([sa!.txs.published, sa!.txs.accepted], [1, 1]);
    assert.deepEqual([sb!.txs.published, sb!.txs.accepted], [1, 1], 'B published only what came by relay');
    assert.deepEqual([sc!.txs.published, sc!.txs.accepted], [0, 2]);
    for (const s of [sa!, sb!, sc!]) {
      assert.equal(s.txs.rejected, 0);
      assert.ok(s.relaySkipped > 0, 'relay left announcements to gossip');
    }
    for (const s of sites) assert.deepEqual(s.node.health().offenses, {});
  });
});

test('a block mined at A is imported by B and C from the blocks topic, and the mempools follow; the peer without gossip gets it as a compact block', async () => {
  await withSites(async (make) => {
    const [a, b, c, d] = await lineWithPlainPeer(make);
    await a.producer.txs(3);
    await until(() => [b, c, d].every((s) => s.relay.mempool.size === 3), 'the transactions everywhere');
    const outcome = await a.producer.blocks(1);
    assert.equal(outcome.tipHeight, 1);
    const tip = a.chain.tip().hash;
    await until(() => [b, c, d].every((s) => sameHash(s.chain.tip().hash, tip)), 'the block everywhere');
    await until(() => [a, b, c, d].every((s) => s.relay.mempool.size === 0), 'mempools emptied by the block');

    assert.equal(a.bridge!.stats().blocks.published, 1);
    for (const s of [b, c]) {
      const st = s.bridge!.stats().blocks;
      assert.deepEqual([st.accepted, st.published, st.rejected, st.ignored], [1, 0, 0, 0], s.name);
      assert.equal(s.relay.stats().compactReceived, 0, `${s.name} got no compact block`);
      assert.equal(s.relay.stats().fullBlocksReceived, 0);
    }
    assert.deepEqual(c.got.filter((m) => m.topic === 'blocks').map((m) => m.from), [b.node.peerId]);
    assert.equal(d.relay.stats().compactReceived, 1, 'D got it by relay from B');
    for (const [x, y] of [[b, a], [c, b], [a, b], [b, c]] as const) assert.ok(!relayIn(x, y).includes('relay.cmpctblock'), `${x.name} from ${y.name}`);
    for (const s of [a, b, c, d]) assert.deepEqual(s.node.health().offenses, {});
  });
});

test('invalid items pushed by gossip: a malformed transaction and a block that fails import are rejected (GOSSIP_INVALID) and not forwarded; an inadmissible transaction, or one a full mempool refuses, is ignored without penalty', async () => {
  await withSites(async (make) => {
    const b = make('b');
    // C's mempool holds one transaction and refuses newcomers that do not rank above it.
    const c = make('c', { mempool: { maxTxs: 1, priority: () => 0 } });
    const evil = make('evil', { bridge: false });
    await start(b, c, evil);
    await link(evil, b);
    await link(c, b);
    for (const t of ['txs', 'blocks']) evil.gossip!.subscribe(t);
    await until(() => ['txs', 'blocks'].every((t) => meshed(b, t, [evil, c]) && meshed(evil, t, [b])), 'gossip meshes');
    const offenses = (): number => b.node.health().offenses['GOSSIP_INVALID'] ?? 0;
    const stats = () => b.bridge!.stats();

    // Well formed, but its sender does not exist: not admissible against our tip, ignored, no penalty.
    const stranger = encodeTx({ from: new Uint8Array(32).fill(5), to: b.chain.genesisAccountIds[0]!, amount: 1, fee: 0, nonce: 0, memo: new Uint8Array(0) });
    evil.gossip!.publish('txs', stranger);
    await until(() => stats().txs.inadmissible === 1, 'the inadmissible transaction judged');
    assert.equal(offenses(), 0);

    evil.gossip!.publish('txs', new Uint8Array([0xff, 0x00, 0x01]));
    await until(() => offenses() === 1, 'GOSSIP_INVALID for the malformed transaction');
    assert.equal(stats().txs.rejected, 1);

    // Valid proof of work on genesis, but a state root its (empty) transactions do not make.
    const bad = forge(b.chain, b.chain.genesis, { stateRoot: new Uint8Array(32).fill(9) });
    evil.gossip!.publish('blocks', bad.bytes);
    await until(() => offenses() === 2, 'GOSSIP_INVALID for the bad block');
    assert.equal(stats().blocks.rejected, 1);
    assert.equal(b.chain.tip().height, 0);
    assert.ok(b.chain.isInvalid(bad.header.hash));

    const score = b.node.scores().find((s) => s.peerId === evil.node.peerId)?.score ?? 50;
    assert.ok(score < 40, `the sender's score fell to ${score}`);
    assert.equal(stats().txs.accepted + stats().blocks.accepted, 0);
    assert.deepEqual(c.got, [], 'nothing was forwarded to C');

    // Two valid transactions: B takes both and forwards them; C's full mempool refuses the second.
    const [t1, t2] = b.chain.makeTxs(2, 7);
    evil.gossip!.publish('txs', t1!);
    evil.gossip!.publish('txs', t2!);
    await until(() => c.bridge!.stats().txs.ignored === 1, 'C to refuse the second');
    assert.equal(b.relay.mempool.size, 2);
    assert.equal(c.relay.mempool.size, 1);
    assert.deepEqual(c.bridge!.stats().txs, { published: 0, accepted: 1, ignored: 1, rejected: 0, tooBig: 0, duplicates: 0, inadmissible: 0 });
    assert.deepEqual(c.node.health().offenses, {});
    assert.equal(offenses(), 2);
  });
});

test('a gossip block whose parent is unknown is ignored (no penalty) and sends headers-first sync to its sender', async () => {
  await withSites(async (make) => {
    const a = make('a');
    const b = make('b');
    await start(a, b);
    await link(b, a);
    await until(() => meshed(a, 'blocks', [b]) && meshed(b, 'blocks', [a]) && b.sync.headers.stats().peers === 1, 'gossip mesh and sync peer');
    // Two blocks B never hears of, then one published: its parent is unknown at B.
    a.chain.mineChain(2);
    await a.producer.blocks(1);
    assert.equal(a.bridge!.stats().blocks.published, 1);
    await until(() => sameHash(b.chain.tip().hash, a.chain.tip().hash), 'B to sync up to A\'s tip');

    const st = b.bridge!.stats().blocks;
    assert.equal(st.unknownParent, 1);
    assert.equal(st.rejected, 0);
    assert.equal(st.accepted, 0);
    assert.equal(b.gossip!.stats().topics.blocks!.received.ignored, 1);
    const out = b.node.messageCounts(a.node.peerId)!.out;
    assert.ok((out['sync.getheaders.request'] ?? 0) >= 1, 'B asked A for headers');
    assert.ok((out['sync.getblocks.request'] ?? 0) >= 1, 'and for the blocks');
    assert.equal(b.relay.stats().compactReceived, 0, 'relay did not carry the announcement');
    assert.equal(b.node.health().offenses['GOSSIP_INVALID'], undefined);
    assert.equal(a.node.health().offenses['GOSSIP_INVALID'], undefined);

    // Stopped: the bridge follows nothing and leaves its topics.
    b.bridge!.stop();
    for (const e of ['tx', 'block', 'chain'] as const) assert.equal(b.relay.listenerCount(e), 0, e);
    assert.ok(!b.gossip!.router.subscribed('blocks') && !b.gossip!.router.subscribed('txs'));
  });
});
