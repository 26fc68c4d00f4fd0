/**
 * State sync benchmark: a node fetches, verifies, stores and applies a
 * multi-megabyte devchain state (genesis accounts plus a few blocks of
 * transfers; 16 KiB chunks) over loopback TCP from 1 and from 3 peers, beside
 * baselines measured in the same run:
 *
 *   pqnet-state-sync   StateSyncService end to end: from `start()` (peers
 *                      connected, headers already stored with storeHeaders)
 *                      to the last chunk stored ("fetch") and to `applied`
 *                      ("total"); manifest requests, the engine, SHA3-256 of
 *                      every chunk, one SQLite commit per chunk, applyState.
 *                      Unpaced (chunkRequestsPerSecond: Infinity), as the
 *                      nodes' per-connection message rate limit is lifted
 *                      here: this is what the layers cost.
 *   pqnet-state-sync-default-pacing
 *                      the same from 3 peers with the shipped pacing (100
 *                      chunk requests/s per peer, below the default limit of
 *                      200 messages/s per connection): what a default node
 *                      gets with 16 KiB chunks.
 *   rpc-raw            the same GETSTATECHUNK requests through `Node.request`
 *                      with the same in-flight caps (4 per peer), nothing else:
 *                      no engine, no hashing, no store, no apply. What the
 *                      transport and the request layer give.
 *   apply-local        `applyState` of the same manifest and chunks on a fresh
 *                      chain, no network: the chain's own cost.
 *   sha3-256           hashing every chunk: the verification cost.
 *
 * All nodes live in this process (so 3 peers also means 3 servers on the
 * same event loop as the client): the figures compare the layers, they are
 * not a network capacity. Figures are the best of several runs (fresh chain,
 * store and node each time). Files live in a temporary directory removed at
 * the end.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StateManifest } from '../src/chain/adapter.ts';
import { Devchain, type DevchainParams } from '../src/chain/devchain/index.ts';
import { SystemClock } from '../src/core/clock.ts';
import { ChainSync } from '../src/node/chain-sync.ts';
import { Node } from '../src/node/node.ts';
import { StateSyncService } from '../src/node/state-sync.ts';
import { generateIdentity } from '../src/secure/identity.ts';
import { SYNC_PROTOCOL } from '../src/sync/messages.ts';
import { stateChunkHash } from '../src/sync/state-messages.ts';
import { DEFAULT_STATE_SYNC_OPTIONS } from '../src/sync/state.ts';
import { BENCH_CHAIN_ID } from './_pqnet.ts';
import { emit, emitEnvironment, log, mbPerSecond, round, withTimeout, type BenchOptions } from './_util.ts';

const T0 = 1_700_000_000_000;
const OPTIONS = { clock: { wallNow: () => T0 + 3_600_000 } };
const PER_PEER = 4;
/** Lifts the per-connection message rate limit (200/s by default) for the unpaced figures. */
const RATE_LIMITS = { messagesPerSecond: 1_000_000 };

interface Sizes {
  readonly accounts: number;
  readonly runs: number;
}

const FULL: Sizes = { accounts: 250_000, runs: 3 };
const QUICK: Sizes = { accounts: 60_000, runs: 1 };

function copyDb(from: string, to: string): void {
  copyFileSync(from, to);
  if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${to}-wal`);
}

interface Server {
  readonly node: Node;
  readonly chain: Devchain;
  stop(): void;
}

export async function main(opts: BenchOptions): Promise<void> {
  emitEnvironment('state-sync', opts);
  const sizes = opts.quick ? QUICK : FULL;
  const params: Partial<DevchainParams> = { chainId: BENCH_CHAIN_ID, genesisTimestampMs: T0, genesisAccounts: sizes.accounts };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-bench-state-sync-'));
  let n = 0;
  const file = (name: string): string => path.join(dir, `${name}-${n++}.db`);
  const clock = new SystemClock();
  const servers: Server[] = [];
  const open: Devchain[] = [];
  const openChain = (f: string): Devchain => {
    const c = Devchain.open(f, params, OPTIONS);
    open.push(c);
    return c;
  };
  try {
    // ---- the served chain, copied for each server, and a genesis-only file for the clients
    log(`state-sync: building a chain with ${sizes.accounts} genesis accounts`);
    const genesisFile = file('genesis');
    Devchain.open(genesisFile, params, OPTIONS).close();
    const servedFile = file('served');
    copyDb(genesisFile, servedFile);
    const first = Devchain.open(servedFile, params, OPTIONS);
    first.mineChain(3, { txsPerBlock: 100 });
    first.close();
    for (let i = 0; i < 3; i++) {
      const f = i === 0 ? servedFile : file(`served-${i}`);
      if (i > 0) copyDb(servedFile, f);
      const chain = openChain(f);
      chain.stateManifest(); // build the snapshot now, outside every timing
      const node = new Node({ identity: generateIdentity('ml-dsa-65'), chainId: BENCH_CHAIN_ID, storePath: file(`peer-${i}`), listen: ['tcp://127.0.0.1:0'], protocols: [SYNC_PROTOCOL], height: () => chain.tip().height, agent: `pqnet-bench/state-${i}`, rateLimits: RATE_LIMITS });
      const headers = new ChainSync(node, chain, clock);
      const state = new StateSyncService(node, chain, clock, { storePath: file(`state-${i}`) });
      await node.start();
      servers.push({ node, chain, stop: () => { headers.stop(); state.stop(); } });
    }
    const src = servers[0]!.chain;
    const manifest = src.stateManifest()!;
    const chunks = manifest.chunkHashes.map((_, i) => src.stateChunk(manifest.stateRoot, i)!);
    const headers = [1, 2, 3].map((h) => src.headerAt(h)!);
    const common = { bytes: manifest.totalBytes, chunks: chunks.length, chunkBytes: manifest.chunkSize, accounts: sizes.accounts };
    log(`state-sync: ${(manifest.totalBytes / 1e6).toFixed(1)} MB in ${chunks.length} chunks of ${manifest.chunkSize} bytes; best of ${sizes.runs}`);

    /** A fresh client chain holding the headers (not the blocks). */
    const freshClient = (): Devchain => {
      const f = file('client');
      copyDb(genesisFile, f);
      const c = openChain(f);
      c.storeHeaders(headers.map((h) => c.decodeHeader(h.bytes)));
      return c;
    };

    // ---- baselines without the network
    let hashMs = Infinity;
    for (let r = 0; r < Math.max(3, sizes.runs); r++) {
      const t = performance.now();
      for (const c of chunks) stateChunkHash(c);
      hashMs = Math.min(hashMs, performance.now() - t);
    }
    emit({ bench: 'state-sync', impl: 'sha3-256', metric: 'throughput', value: round(mbPerSecond(manifest.totalBytes, hashMs / 1000), 1), unit: 'MB/s', ms: round(hashMs, 1), ...common });
    let applyMs = Infinity;
    for (let r = 0; r < sizes.runs; r++) {
      const c = freshClient();
      const t = performance.now();
      c.applyState(manifest, chunks);
      applyMs = Math.min(applyMs, performance.now() - t);
      c.close();
    }
    emit({ bench: 'state-sync', impl: 'apply-local', metric: 'throughput', value: round(mbPerSecond(manifest.totalBytes, applyMs / 1000), 1), unit: 'MB/s', ms: round(applyMs, 1), ...common });

    /** A client node connected to `peers` servers; `fn` runs with it; it is stopped afterwards. */
    async function withClient<T>(peers: number, fn: (node: Node, chain: Devchain, service: StateSyncService) => Promise<T>, chunkRequestsPerSecond = Infinity): Promise<T> {
      const chain = freshClient();
      const node = new Node({ identity: generateIdentity('ml-dsa-65'), chainId: BENCH_CHAIN_ID, storePath: file('client-peers'), protocols: [SYNC_PROTOCOL], agent: 'pqnet-bench/state-client', rateLimits: RATE_LIMITS });
      const service = new StateSyncService(node, chain, clock, { storePath: file('client-state'), tickMs: 20, manifestWaitMs: 1_000, maxInFlightPerPeer: PER_PEER, maxInFlight: 16, chunkRequestsPerSecond });
      try {
        await node.start();
        for (const s of servers.slice(0, peers)) await node.connect(s.node.listenAddresses[0]!);
        return await fn(node, chain, service);
      } finally {
        service.stop();
        await node.stop();
        chain.close();
      }
    }

    /** Every chunk through Node.request, PER_PEER at a time per peer, chunks dealt out in order. */
    function rawRun(peers: number): Promise<number> {
      return withClient(peers, async (node, _chain, service) => {
        const ids = servers.slice(0, peers).map((s) => s.node.peerId);
        let next = 0;
        let bytes = 0;
        const t = performance.now();
        const worker = async (peer: string): Promise<void> => {
          while (next < chunks.length) {
            const index = next++;
            const got = await node.request(peer, service.messages.getChunk, [manifest.stateRoot, index]);
            bytes += got.length;
          }
        };
        await withTimeout(Promise.all(ids.flatMap((id) => Array.from({ length: PER_PEER }, () => worker(id)))), 120_000, 'raw chunk requests');
        const ms = performance.now() - t;
        if (bytes !== manifest.totalBytes) throw new Error(`raw run fetched ${bytes} bytes, expected ${manifest.totalBytes}`);
        return ms;
      });
    }

    function syncRun(peers: number, chunkRequestsPerSecond = Infinity): Promise<{ fetchMs: number; totalMs: number }> {
      return withClient(peers, async (_node, chain, service) => {
        let fetchedAt = 0;
        let t = 0;
        const done = new Promise<StateManifest>((resolve, reject) => {
          service.on('progress', (p) => {
            if (p.chunksDone === p.chunksTotal) fetchedAt = performance.now();
          });
          service.on('applied', resolve);
          service.on('failed', reject);
        });
        t = performance.now();
        service.start();
        const applied = await withTimeout(done, 120_000, 'state sync');
        const end = performance.now();
        if (applied.height !== manifest.height || chain.tip().height !== manifest.height) throw new Error('state sync applied the wrong manifest');
        const s = service.stats();
        if (s.badChunks !== 0 || s.stalls !== 0) throw new Error(`state sync saw ${s.badChunks} bad chunks and ${s.stalls} stalls`);
        return { fetchMs: fetchedAt - t, totalMs: end - t };
      }, chunkRequestsPerSecond);
    }

    // ---- over the network, from 1 and 3 peers (after one unmeasured run of each kind)
    await rawRun(3);
    await syncRun(3);
    for (const peers of [1, 3]) {
      let rawMs = Infinity;
      let best: { fetchMs: number; totalMs: number } | undefined;
      for (let r = 0; r < sizes.runs; r++) {
        rawMs = Math.min(rawMs, await rawRun(peers));
        const run = await syncRun(peers);
        if (best === undefined || run.totalMs < best.totalMs) best = run;
      }
      const seconds = (ms: number): number => ms / 1000;
      emit({ bench: 'state-sync', impl: 'rpc-raw', peers, metric: 'throughput', value: round(mbPerSecond(manifest.totalBytes, seconds(rawMs)), 1), unit: 'MB/s', chunksPerSecond: Math.round(chunks.length / seconds(rawMs)), ms: round(rawMs, 1), inFlightPerPeer: PER_PEER, ...common });
      emit({
        bench: 'state-sync', impl: 'pqnet-state-sync', peers, metric: 'fetch', value: round(mbPerSecond(manifest.totalBytes, seconds(best!.fetchMs)), 1), unit: 'MB/s',
        chunksPerSecond: Math.round(chunks.length / seconds(best!.fetchMs)), ms: round(best!.fetchMs, 1), vsRpcRaw: round(rawMs / best!.fetchMs, 2), inFlightPerPeer: PER_PEER, ...common,
      });
      emit({
        bench: 'state-sync', impl: 'pqnet-state-sync', peers, metric: 'total', value: round(mbPerSecond(manifest.totalBytes, seconds(best!.totalMs)), 1), unit: 'MB/s',
        ms: round(best!.totalMs, 1), applyMs: round(best!.totalMs - best!.fetchMs, 1), ...common,
      });
    }
    const paced = await syncRun(3, DEFAULT_STATE_SYNC_OPTIONS.chunkRequestsPerSecond);
    emit({
      bench: 'state-sync', impl: 'pqnet-state-sync-default-pacing', peers: 3, metric: 'fetch', value: round(mbPerSecond(manifest.totalBytes, paced.fetchMs / 1000), 1), unit: 'MB/s',
      chunksPerSecond: Math.round(chunks.length / (paced.fetchMs / 1000)), ms: round(paced.fetchMs, 1), chunkRequestsPerSecondPerPeer: DEFAULT_STATE_SYNC_OPTIONS.chunkRequestsPerSecond, ...common,
    });
  } finally {
    for (const s of servers) s.stop();
    await Promise.all(servers.map((s) => s.node.stop()));
    for (const c of open) c.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
