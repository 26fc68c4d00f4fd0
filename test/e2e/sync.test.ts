/**
 * Chain sync end to end with real `pqnet listen` processes and devchains in
 * SQLite files (issue 5's scenarios):
 * - A has 10,000 blocks; B, empty, syncs headers and blocks from it; B is
 *   killed with SIGKILL mid-way, restarts, fetches only what it did not store,
 *   ends with A's tip, and its database is intact.
 * - B syncs from A, C and D at once: the blocks come from all three; D is
 *   frozen (SIGSTOP) mid-way and the sync completes anyway, D penalised for
 *   stalling.
 * - A peer serving invalid headers is banned; a peer serving a heavier branch
 *   makes B reorganise to it.
 * - In state mode, B fetches a multi-megabyte state snapshot from A, C and D
 *   at once; D serves a corrupted chunk, is penalised, and the chunk comes
 *   from another peer.
 * - A transaction published at A reaches C through B, and A's next block is
 *   rebuilt compactly at B and C from their mempools.
 *
 * The chains are mined once here and copied into each node's data directory
 * (`chain.sqlite`), so A, C and D serve the same chain.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { hex } from '../../src/chain/adapter.ts';
import { Devchain } from '../../src/chain/devchain/index.ts';
import type { BansResponse, GossipStatusResponse, HealthResponse, PeersResponse, StatsResponse } from '../../src/rpc/types.ts';
import { eventually, NodeProcess, ok } from './_cli.ts';

const N = 10_000;
/** The branch a heavier peer serves: it leaves the main chain FORK blocks below its tip and is BRANCH blocks long. */
const FORK = 100;
const BRANCH = 200;
const PARAMS = { chainId: 1 };

let root = '';
let mainFile = '';
let branchFile = '';
let mainTip = '';
let branchTip = '';

before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'pqnet-e2e-sync-'));
  mainFile = path.join(root, 'main.sqlite');
  branchFile = path.join(root, 'branch.sqlite');
  const main = Devchain.open(mainFile, PARAMS);
  try {
    main.mineChain(N, { txsPerBlock: 1 });
    mainTip = hex(main.tip().hash);
  } finally {
    main.close();
  }
  copyFileSync(mainFile, branchFile);
  const branch = Devchain.open(branchFile, PARAMS);
  try {
    let parent = branch.headerAt(N - FORK)!.hash;
    for (let i = 0; i < BRANCH; i++) parent = branch.mine({ parent, txs: branch.makeTxs(1, 1_000_000 + i, parent) }).header.hash;
    branchTip = hex(branch.tip().hash);
    assert.equal(branch.tip().height, N - FORK + BRANCH);
  } finally {
    branch.close();
  }
});

after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A node directory, with a copy of `chain` as its chain if given. */
function nodeDir(name: string, chain?: string): NodeProcess {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  if (chain !== undefined) copyFileSync(chain, path.join(dir, 'chain.sqlite'));
  return new NodeProcess(dir);
}

async function health(api: string): Promise<HealthResponse> {
  return (await (await fetch(`${api}/health`)).json()) as HealthResponse;
}

async function json<T>(api: string, p: string): Promise<T> {
  return (await (await fetch(`${api}${p}`)).json()) as T;
}

/** What a crashed or stopped node left: the chain file checked, its tip, and how many blocks it stored. */
function inspect(dir: string): { tip: number; tipHash: string; stored: number } {
  const c = Devchain.open(path.join(dir, 'chain.sqlite'), PARAMS);
  try {
    c.checkIntegrity();
    let stored = 0;
    const best = c.bestHeader();
    for (let h = 1; h <= best.height; h++) if (c.headerAt(h)?.hasBlock === true) stored++;
    return { tip: c.tip().height, tipHash: hex(c.tip().hash), stored };
  } finally {
    c.close();
  }
}

test('A has 10,000 blocks; B syncs them, is killed with SIGKILL mid-way, resumes without refetching what it stored, and ends on A\'s tip', { timeout: 180_000 }, async () => {
  const a = nodeDir('a1', mainFile);
  const b = nodeDir('b1');
  try {
    const A = await a.start('tcp://127.0.0.1:0', [], 'info');
    const B = await b.start('tcp://127.0.0.1:0', [], 'info');
    assert.equal((await health(A.api)).sync?.tipHash, mainTip);
    await ok(['peer', 'connect', '--addr', A.listen, '--data-dir', b.dir]);
    await eventually(async () => ((await health(B.api)).sync?.tipHeight ?? 0) >= 2_000, 'B to pass height 2,000', 600);
    b.kill();
    await b.exited();
    const left = inspect(b.dir);
    assert.ok(left.tip >= 2_000 && left.tip < N, `killed at tip ${left.tip}`);
    assert.ok(left.stored >= left.tip);

    // Restarted, B redials A from its peer book and carries on.
    const B2 = await b.start('tcp://127.0.0.1:0', [], 'info');
    await eventually(async () => (await health(B2.api)).sync?.tipHeight === N, 'B to reach A\'s tip after the restart', 1_200);
    const h = await health(B2.api);
    assert.equal(h.sync?.tipHash, mainTip);
    assert.equal(h.sync?.state, 'synced');
    const m = await b.metrics(B2.api);
    assert.equal(m.get('p2p_sync_items_total{kind="blocks_received"}'), N - left.stored, 'only the blocks not stored before the kill were fetched');
    assert.equal(m.get('p2p_sync_items_total{kind="blocks_duplicate"}'), 0);
    assert.ok((m.get('p2p_sync_block_request_seconds_count') ?? 0) > 0);
    // While catching up B announced none of the old blocks to A (A would rate-limit and drop it).
    const statsA = await json<StatsResponse>(A.api, '/p2p/stats');
    assert.equal(statsA.messages.in['relay.cmpctblock'] ?? 0, 0);
    assert.deepEqual(statsA.offenses, {});
    // `pqnet status` says so.
    const status = await ok(['status', '--data-dir', b.dir]);
    assert.match(status, /state:\s+synced/);
    assert.match(status, /10,000 \/ 10,000\s+\[#+\] 100\.0%/);
    assert.equal(await b.stop(), 0);
    const end = inspect(b.dir);
    assert.equal(end.tipHash, mainTip);
  } finally {
    a.kill();
    b.kill();
  }
});

test('B syncs from A, C and D at once; D freezes mid-way, is penalised for stalling, and the sync completes from A and C', { timeout: 180_000 }, async () => {
  const a = nodeDir('a2', mainFile);
  const c = nodeDir('c2', mainFile);
  const d = nodeDir('d2', mainFile);
  const b = nodeDir('b2');
  try {
    const servers = [await a.start('tcp://127.0.0.1:0', [], 'info'), await c.start('tcp://127.0.0.1:0', [], 'info'), await d.start('tcp://127.0.0.1:0', [], 'info')];
    const D = servers[2]!;
    // B dials all three at start; a stalled request is given up after 1 s; smaller ranges spread the work.
    const B = await b.start('tcp://127.0.0.1:0', servers.flatMap((s) => ['--seed', s.listen]), 'info', { PQNET_SYNC_STALL_MS: '1000', PQNET_SYNC_RANGE_BLOCKS: '50' });
    await eventually(async () => ((await health(B.api)).sync?.tipHeight ?? 0) >= 1_500, 'B to pass height 1,500', 600);
    const served = async (): Promise<Map<string, number>> => {
      const peers = await json<PeersResponse>(B.api, '/p2p/peers');
      return new Map(peers.peers.map((p) => [p.peerId ?? '', p.messages.in['sync.getblocks.response'] ?? 0]));
    };
    process.kill(d.child!.pid!, 'SIGSTOP');
    try {
      const before = await served();
      assert.ok((before.get(D.peerId) ?? 0) > 0, 'D served blocks before it froze');
      await eventually(async () => (await health(B.api)).sync?.tipHeight === N, 'B to finish without D', 1_200);
      assert.equal((await health(B.api)).sync?.tipHash, mainTip);
      const after = await served();
      for (const s of servers.slice(0, 2)) assert.ok((after.get(s.peerId) ?? 0) > 0, `${s.listen} served blocks`);
      const stats = await json<StatsResponse>(B.api, '/p2p/stats');
      assert.ok((stats.offenses['SYNC_STALL'] ?? 0) >= 1, `offenses: ${JSON.stringify(stats.offenses)}`);
    } finally {
      process.kill(d.child!.pid!, 'SIGCONT');
    }
    assert.equal(await b.stop(), 0);
    assert.equal(inspect(b.dir).tipHash, mainTip);
  } finally {
    for (const n of [a, c, d, b]) n.kill();
  }
});

/** The misbehaving node of test/e2e/_sync-node.ts, on a copy of `chain`. */
async function evilNode(chain: string, mode: string, accounts?: number): Promise<{ peerId: string; address: string; stop: () => void }> {
  const dir = path.join(root, `evil-${mode}`);
  mkdirSync(dir, { recursive: true });
  copyFileSync(chain, path.join(dir, 'chain.sqlite'));
  const script = fileURLToPath(new URL('./_sync-node.ts', import.meta.url));
  const args = [script, path.join(dir, 'chain.sqlite'), path.join(dir, 'node.sqlite'), mode, ...(accounts === undefined ? [] : [String(accounts)])];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const ev = JSON.parse(line) as { event: string; peerId: string; address: string };
    if (ev.event === 'ready') return { peerId: ev.peerId, address: ev.address, stop: () => void child.kill('SIGKILL') };
  }
  throw new Error('the evil node exited before it was ready');
}

test('a peer serving invalid headers is banned; a peer serving a heavier branch makes B reorganise to it', { timeout: 120_000 }, async () => {
  const b = nodeDir('b3', mainFile);
  const e = nodeDir('e3', branchFile);
  const evil = await evilNode(branchFile, 'bad-headers');
  try {
    const B = await b.start('tcp://127.0.0.1:0', [], 'info');
    assert.equal((await health(B.api)).sync?.tipHash, mainTip);
    await ok(['peer', 'connect', '--addr', evil.address, '--data-dir', b.dir]);
    await eventually(async () => (await json<BansResponse>(B.api, '/p2p/bans')).bans.some((x) => x.target === evil.peerId), 'B to ban the peer with invalid headers', 200);
    const stats = await json<StatsResponse>(B.api, '/p2p/stats');
    assert.ok((stats.offenses['CHAIN_BAD_HEADER'] ?? 0) >= 1);
    assert.equal((await health(B.api)).sync?.tipHash, mainTip, 'nothing of the invalid headers was taken');

    const E = await e.start('tcp://127.0.0.1:0', [], 'info');
    await ok(['peer', 'connect', '--addr', E.listen, '--data-dir', b.dir]);
    await eventually(async () => (await health(B.api)).sync?.tipHash === branchTip, 'B to reorganise to the heavier branch', 600);
    assert.equal((await health(B.api)).sync?.tipHeight, N - FORK + BRANCH);
    assert.equal(await b.stop(), 0);
    assert.equal(inspect(b.dir).tipHash, branchTip);
  } finally {
    evil.stop();
    b.kill();
    e.kill();
  }
});

interface RelayCounts {
  readonly compactReceived: number;
  readonly compactRebuilt: number;
  readonly blockTxnRequested: number;
  readonly fullBlocksReceived: number;
  readonly txsRequested: number;
  readonly mempool: { readonly txs: number };
}

test('relay: transactions published at A reach C through B; A\'s next block reaches both compactly and is rebuilt from their mempools', { timeout: 120_000 }, async () => {
  const a = nodeDir('a4');
  const b = nodeDir('b4');
  const c = nodeDir('c4');
  try {
    // Relay alone (gossip would carry the transactions and the block: the next test).
    const A = await a.start('tcp://127.0.0.1:0', ['--no-gossip'], 'info');
    const B = await b.start('tcp://127.0.0.1:0', ['--seed', A.listen, '--no-gossip'], 'info');
    const C = await c.start('tcp://127.0.0.1:0', ['--no-gossip'], 'info');
    await ok(['peer', 'connect', '--addr', B.listen, '--data-dir', c.dir]);
    const relay = async (api: string): Promise<RelayCounts> => (await json<{ relay: RelayCounts }>(api, '/sync/status')).relay;
    // A and C are not connected: what C gets comes through B.
    const cPeers = await json<PeersResponse>(C.api, '/p2p/peers');
    assert.deepEqual(cPeers.peers.map((p) => p.peerId), [B.peerId]);

    assert.match(await ok(['publish', 'txs', '--count', '40', '--data-dir', a.dir]), /published 40 transactions/);
    await eventually(async () => (await relay(C.api)).mempool.txs === 40, 'the 40 transactions to reach C', 300);
    assert.equal((await relay(B.api)).txsRequested, 40, 'B fetched each transaction once');
    assert.equal((await relay(C.api)).txsRequested, 40, 'C fetched each transaction once');

    // A mines a block of its 40 pending transactions and announces it.
    const published = await ok(['publish', 'blocks', '--count', '1', '--data-dir', a.dir, '--json']);
    const tip = (JSON.parse(published) as { tipHash: string }).tipHash;
    for (const api of [B.api, C.api]) await eventually(async () => (await health(api)).sync?.tipHash === tip, 'the block to reach B and C', 300);
    for (const api of [B.api, C.api]) {
      const r = await relay(api);
      assert.ok(r.compactRebuilt >= 1, `rebuilt: ${JSON.stringify(r)}`);
      assert.equal(r.blockTxnRequested, 0, 'no transaction of the block was fetched');
      assert.equal(r.fullBlocksReceived, 0, 'no full block was fetched');
      assert.equal(r.mempool.txs, 0, 'the mined transactions left the mempool');
    }
  } finally {
    for (const n of [a, b, c]) n.kill();
  }
});

test('gossip: with gossip on (the default), transactions published at A reach C through B on the txs topic, and A\'s next block on the blocks topic; relay announces neither', { timeout: 120_000 }, async () => {
  const a = nodeDir('a6');
  const b = nodeDir('b6');
  const c = nodeDir('c6');
  try {
    const A = await a.start('tcp://127.0.0.1:0', [], 'info');
    const B = await b.start('tcp://127.0.0.1:0', ['--seed', A.listen], 'info');
    const C = await c.start('tcp://127.0.0.1:0', [], 'info');
    await ok(['peer', 'connect', '--addr', B.listen, '--data-dir', c.dir]);
    const relay = async (api: string): Promise<RelayCounts> => (await json<{ relay: RelayCounts }>(api, '/sync/status')).relay;
    const topic = async (api: string, name: string): Promise<{ published: number; received: Record<string, number> }> =>
      (await json<GossipStatusResponse>(api, '/gossip/status')).topics.find((t) => t.topic === name)!;
    // Meshes form on the heartbeat; publish once B has both in its txs mesh.
    await eventually(async () => (await json<GossipStatusResponse>(B.api, '/gossip/status')).topics.find((t) => t.topic === 'txs')!.mesh === 2, 'B to mesh with A and C', 300);

    assert.match(await ok(['publish', 'txs', '--count', '20', '--data-dir', a.dir]), /published 20 transactions/);
    await eventually(async () => (await relay(C.api)).mempool.txs === 20, 'the 20 transactions to reach C', 300);
    assert.equal((await topic(A.api, 'txs')).published, 20);
    assert.equal((await topic(C.api, 'txs')).received['accepted'], 20, 'C accepted each from the txs topic');
    assert.equal((await relay(C.api)).txsRequested, 0, 'C fetched none by relay');

    const published = await ok(['publish', 'blocks', '--count', '1', '--data-dir', a.dir, '--json']);
    const tip = (JSON.parse(published) as { tipHash: string }).tipHash;
    for (const api of [B.api, C.api]) await eventually(async () => (await health(api)).sync?.tipHash === tip, 'the block to reach B and C', 300);
    for (const api of [B.api, C.api]) {
      assert.equal((await topic(api, 'blocks')).received['accepted'], 1, 'the block came on the blocks topic');
      const r = await relay(api);
      assert.equal(r.compactRebuilt + r.fullBlocksReceived, 0, `no block by relay: ${JSON.stringify(r)}`);
      assert.equal(r.mempool.txs, 0, 'the mined transactions left the mempool');
    }
  } finally {
    for (const n of [a, b, c]) n.kill();
  }
});

test('state sync: B fetches a multi-megabyte state from A, C and D at once; D serves a corrupted chunk and is banned, the chunk comes from another, and B ends on the snapshot\'s block with its state', { timeout: 120_000 }, async () => {
  const ACCOUNTS = 60_000;
  const file = path.join(root, 'state.sqlite');
  const src = Devchain.open(file, { ...PARAMS, genesisAccounts: ACCOUNTS });
  let tip: string;
  try {
    src.mineChain(5, { txsPerBlock: 3 });
    tip = hex(src.tip().hash);
  } finally {
    src.close();
  }
  const env = { PQNET_DEVCHAIN_GENESIS_ACCOUNTS: String(ACCOUNTS) };
  const a = nodeDir('a5', file);
  const c = nodeDir('c5', file);
  const b = nodeDir('b5');
  const d = await evilNode(file, 'bad-chunk', ACCOUNTS);
  try {
    const A = await a.start('tcp://127.0.0.1:0', [], 'info', env);
    const C = await c.start('tcp://127.0.0.1:0', [], 'info', env);
    const B = await b.start('tcp://127.0.0.1:0', ['--sync-mode', 'state', '--seed', A.listen, '--seed', C.listen, '--seed', d.address], 'info', env);
    await eventually(async () => (await health(B.api)).sync?.tipHash === tip, 'B to apply the snapshot', 600);
    const status = await json<{ state: { chunksDone: number; chunksTotal: number; bytesTotal: number; badChunks: number; phase: string } }>(B.api, '/sync/status');
    assert.ok(status.state.bytesTotal > 2_000_000, `a multi-megabyte state: ${status.state.bytesTotal} bytes`);
    assert.equal(status.state.chunksDone, status.state.chunksTotal);
    assert.equal(status.state.badChunks, 1);
    const stats = await json<StatsResponse>(B.api, '/p2p/stats');
    assert.equal(stats.offenses['SYNC_BAD_CHUNK'], 1);
    // D's chunk was the bad one (penalty 50 from a neutral 50: banned); A and C served the rest.
    assert.ok((await json<BansResponse>(B.api, '/p2p/bans')).bans.some((x) => x.target === d.peerId));
    const peers = await json<PeersResponse>(B.api, '/p2p/peers');
    for (const id of [A.peerId, C.peerId]) {
      const p = peers.peers.find((x) => x.peerId === id);
      assert.ok((p?.messages.in['sync.getstatechunk.response'] ?? 0) > 0, `chunks from ${id}: ${JSON.stringify(p?.messages.in)}`);
    }
    // No block below the snapshot was downloaded.
    const m = await b.metrics(B.api);
    assert.equal(m.get('p2p_sync_items_total{kind="blocks_received"}'), 0);
    assert.equal(await b.stop(), 0);
    const chain = Devchain.open(path.join(b.dir, 'chain.sqlite'), { ...PARAMS, genesisAccounts: ACCOUNTS });
    try {
      chain.checkIntegrity();
      assert.equal(hex(chain.tip().hash), tip);
    } finally {
      chain.close();
    }
  } finally {
    d.stop();
    for (const n of [a, c, b]) n.kill();
  }
});
