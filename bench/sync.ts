/**
 * Chain sync benchmark: a node with an empty devchain syncs N blocks over
 * loopback TCP (headers first, then blocks) from 1 and from 3 peers, beside
 * two baselines measured in the same run.
 *
 *   pqnet-sync          ChainSync end to end with the default engine options
 *                       and the default node (policy, rate limits). The serving
 *                       nodes run in child processes (bench/_sync-server.ts,
 *                       each on its own copy of the chain file), so their CPU
 *                       is not the syncing node's; the syncing node runs in
 *                       this process. The peers are connected (handshake,
 *                       HELLO) before the clock starts; time runs from
 *                       `ChainSync.start()`.
 *                         headers phase: until the best header reaches N
 *                         blocks phase:  from the first stored headers batch
 *                                        (when block requests can begin; the
 *                                        phases overlap) until the tip reaches N
 *                         total:         until the tip reaches N
 *                       and, in a separate run with block download paused
 *                       (ChainSync blocksPaused), the headers alone
 *                       ("headers-only": GETHEADERS without block imports
 *                       competing for the event loop),
 *                       with bytes on the wire (node.traffic()), the CPU of the
 *                       syncing process and of the servers, the event loop's
 *                       utilisation and delay (how long it went without
 *                       turning), what the block engine looked like (sampled
 *                       by a 20 ms timer during the blocks phase, so only when
 *                       the event loop turns: requests in flight, blocks
 *                       waiting for import, back-pressure), how long its
 *                       GETBLOCKS requests took, how many blocks each
 *                       answer brought (fewer than asked: the peer's answer
 *                       was cut at MAX_BLOCKS_RESPONSE_BYTES or it lacked
 *                       them), which peers served them, and how many blocks
 *                       were connected late, by the import of a lower block
 *                       that arrived after them (connectedAfterGap; several
 *                       peers answer out of order).
 *   pqnet-native        the raw encrypted channel between two processes, as in
 *                       bench/channel.ts (SecureSession, x25519-ml-kem-768,
 *                       chacha20-poly1305, 64 KiB frames through sendFrame,
 *                       bench/_server.ts as the receiver): what the channel
 *                       carries, to read block MB/s against.
 *   devchain-import-local
 *                       the same headers and blocks into a fresh chain with no
 *                       network: headers decodeHeader + validateHeader +
 *                       storeHeaders in batches of 2,000 (as GETHEADERS
 *                       brings them), then decodeBlock + importBlock of every
 *                       block read from the served chain. The ceiling the sync
 *                       can reach on this machine.
 *
 * The summary line per block size and peer count gives sync over each
 * baseline: vsLocalImport.headers, .headersOnly and .blocks are rates over
 * the local rates, .total the local time over the sync's, .cpu the local CPU
 * seconds over the syncing process's (less sensitive to other load than the
 * times); vsChannel is block MB/s (blocks phase) and wire MB/s (whole sync)
 * over the channel's MB/s. `--only=pqnet-sync`, `--only=pqnet-native` or
 * `--only=devchain-import-local` runs one part (ratios to a skipped baseline
 * are null).
 *
 * Each chain is mined once into a temporary SQLite file, then copied for
 * every serving node. Every file lives in a temporary directory removed at
 * the end.
 *
 * Parameters (environment variables; bench/run.ts takes no other flags):
 *   SYNC_BLOCKS=10000,2000       N per block size (one value: the same N for every size)
 *   SYNC_TXS_PER_BLOCK=1,100     transactions per block (~80 bytes each; a 1-tx block is ~230 bytes)
 *   SYNC_PEERS=1,3               peer counts to sync from
 *   SYNC_RUNS=2                  runs per sync and local-import figure (the fastest is reported)
 *   SYNC_CHANNEL_MIB=256         bytes per channel baseline run (median of 3 runs, 1 with --quick)
 *   SYNC_RANGE_BLOCKS, SYNC_WINDOW_BLOCKS, SYNC_REQUESTS_PER_PEER, SYNC_MAX_QUEUED_BYTES
 *                                BlockSync options of the syncing node (default: the engine's)
 *   SYNC_IMPORT_SLICE_MS         ChainSync importSliceMs of the syncing node (default: the service's)
 *   SYNC_PROFILE=<dir>           write a V8 CPU profile of this process for each sync run, from
 *                                `start()` to the tip (sync-<blocks>x<txs>tx-<peers>p-<run>.cpuprofile)
 * Defaults with --quick: SYNC_BLOCKS=2000,300, SYNC_RUNS=1, SYNC_CHANNEL_MIB=32.
 *
 * e.g. `SYNC_BLOCKS=20000 SYNC_TXS_PER_BLOCK=50 node bench/run.ts sync`.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { hex, type HeaderEntry } from '../src/chain/adapter.ts';
import { Devchain } from '../src/chain/devchain/index.ts';
import { SystemClock } from '../src/core/clock.ts';
import { MAX_CHUNK_BYTES } from '../src/core/limits.ts';
import { ChainSync, type ChainSyncOptions } from '../src/node/chain-sync.ts';
import { Node } from '../src/node/node.ts';
import { generateIdentity, PeerId } from '../src/secure/identity.ts';
import { dialSecure } from '../src/secure/listener.ts';
import type { BlockSyncOptions } from '../src/sync/blocks.ts';
import { MAX_HEADERS_PER_MESSAGE, SYNC_PROTOCOL } from '../src/sync/messages.ts';
import { TcpTransport } from '../src/transport/tcp.ts';
import { BENCH_CHAIN_ID, benchConfig, streamFrames } from './_pqnet.ts';
import { Child, emit, emitEnvironment, log, mbPerSecond, median, MiB, percentile, round, selected, withChild, withTimeout, type BenchOptions, type Json } from './_util.ts';

const SERVER = fileURLToPath(new URL('./_server.ts', import.meta.url));
const SYNC_SERVER = fileURLToPath(new URL('./_sync-server.ts', import.meta.url));
const PARAMS = { chainId: BENCH_CHAIN_ID };
const SAMPLE_MS = 20;

const IMPL_SYNC = 'pqnet-sync';
const IMPL_CHANNEL = 'pqnet-native';
const IMPL_LOCAL = 'devchain-import-local';

// ------------------------------------------------------------------ parameters

function envList(name: string, fallback: readonly number[]): number[] {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return [...fallback];
  const out = v.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((x) => !Number.isSafeInteger(x) || x <= 0)) throw new RangeError(`${name} must be a comma-separated list of positive integers, not "${v}"`);
  return out;
}

function envInt(name: string, fallback?: number): number | undefined {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`${name} must be a positive integer, not "${v}"`);
  return n;
}

interface Size {
  readonly blocks: number;
  readonly txsPerBlock: number;
}

interface Plan {
  readonly sizes: readonly Size[];
  readonly peers: readonly number[];
  readonly runs: number;
  readonly channelBytes: number;
  readonly channelRuns: number;
  readonly localRuns: number;
  readonly sync: ChainSyncOptions;
  readonly profileDir: string | undefined;
}

function makePlan(opts: BenchOptions): Plan {
  const blocks = envList('SYNC_BLOCKS', opts.quick ? [2_000, 300] : [10_000, 2_000]);
  const txs = envList('SYNC_TXS_PER_BLOCK', [1, 100]);
  const n = Math.max(blocks.length, txs.length);
  if ((blocks.length !== 1 && blocks.length !== n) || (txs.length !== 1 && txs.length !== n)) {
    throw new RangeError(`SYNC_BLOCKS and SYNC_TXS_PER_BLOCK must have the same number of values (or one of them a single value): ${blocks.length} and ${txs.length}`);
  }
  const sizes = Array.from({ length: n }, (_, i) => ({ blocks: blocks[blocks.length === 1 ? 0 : i]!, txsPerBlock: txs[txs.length === 1 ? 0 : i]! }));
  const blockOptions: Partial<Record<keyof BlockSyncOptions, number>> = {};
  for (const [env, key] of [['SYNC_RANGE_BLOCKS', 'rangeBlocks'], ['SYNC_WINDOW_BLOCKS', 'windowBlocks'], ['SYNC_REQUESTS_PER_PEER', 'maxRequestsPerPeer'], ['SYNC_MAX_QUEUED_BYTES', 'maxQueuedBytes']] as const) {
    const v = envInt(env);
    if (v !== undefined) blockOptions[key] = v;
  }
  const slice = envInt('SYNC_IMPORT_SLICE_MS');
  const runs = envInt('SYNC_RUNS', opts.quick ? 1 : 2)!;
  return {
    sizes,
    peers: envList('SYNC_PEERS', [1, 3]),
    runs,
    channelBytes: envInt('SYNC_CHANNEL_MIB', opts.quick ? 32 : 256)! * MiB,
    channelRuns: opts.quick ? 1 : 3,
    localRuns: runs,
    sync: { blocks: blockOptions, ...(slice !== undefined ? { importSliceMs: slice } : {}) },
    profileDir: process.env.SYNC_PROFILE === undefined || process.env.SYNC_PROFILE === '' ? undefined : path.resolve(process.env.SYNC_PROFILE),
  };
}

// ------------------------------------------------------------------ helpers

function copyDb(from: string, to: string): void {
  copyFileSync(from, to);
  if (existsSync(`${from}-wal`)) copyFileSync(`${from}-wal`, `${to}-wal`);
}

const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

/** What the served chain holds, read once (not timed). */
interface Source {
  readonly file: string;
  readonly tipHash: string;
  readonly headers: readonly HeaderEntry[];
  readonly blocks: readonly Uint8Array[];
  readonly blockBytes: number;
  readonly headerBytes: number;
}

function buildSource(file: string, size: Size): Source {
  const t = performance.now();
  const c = Devchain.open(file, PARAMS);
  try {
    c.mineChain(size.blocks, { txsPerBlock: size.txsPerBlock });
    const headers: HeaderEntry[] = [];
    for (let h = 1; h <= size.blocks; h++) headers.push(c.headerAt(h)!);
    const blocks = headers.map((e) => c.block(e.hash)!);
    const blockBytes = blocks.reduce((s, b) => s + b.length, 0);
    const headerBytes = headers.reduce((s, e) => s + e.bytes.length, 0);
    log(`sync: mined ${size.blocks} blocks of ${size.txsPerBlock} tx (${round(blockBytes / 1e6, 2)} MB of blocks) in ${round((performance.now() - t) / 1000, 1)} s`);
    return { file, tipHash: hex(c.tip().hash), headers, blocks, blockBytes, headerBytes };
  } finally {
    c.close();
  }
}

// ------------------------------------------------------------------ baseline: the channel

/** Payload MB/s of one pqnet-native connection to a bench/_server.ts receiver in another process (median of `runs`, after a warm-up). */
async function channelBaseline(plan: Plan, opts: BenchOptions): Promise<number> {
  return withChild('sync-channel-receiver', SERVER, ['--mode', 'pqnet', '--provider', 'native', '--suite', 'pq', '--transport', 'tcp', '--report'], async (server) => {
    const cfg = benchConfig('native', 'pq');
    const transport = new TcpTransport();
    const expectedPeerId = PeerId.parse(String(server.info.peerId));
    const chunk = new Uint8Array(MAX_CHUNK_BYTES).fill(0x5a);
    const run = async (total: number): Promise<{ seconds: number; cpu: number; received: Json }> => {
      const s = await dialSecure(transport, String(server.info.address), cfg, { expectedPeerId, aeadOffers: ['chacha20-poly1305'] });
      s.start(() => undefined);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await streamFrames(s, total, chunk);
      const received = await server.nextEvent('received', 120_000);
      const seconds = (performance.now() - t0) / 1000;
      if (received.bytes !== total) throw new Error(`channel: sent ${total} bytes, the receiver counted ${String(received.bytes)}`);
      return { seconds, cpu: cpuSeconds(process.cpuUsage(cpu0)), received };
    };
    log(`sync: channel baseline (${IMPL_CHANNEL}), warm-up`);
    await run(Math.min(plan.channelBytes, 16 * MiB));
    const runs: { rate: number; seconds: number; cpu: number; received: Json }[] = [];
    for (let r = 0; r < plan.channelRuns; r++) {
      log(`sync: channel baseline run ${r + 1}/${plan.channelRuns}, ${plan.channelBytes / MiB} MiB`);
      const x = await run(plan.channelBytes);
      runs.push({ ...x, rate: mbPerSecond(plan.channelBytes, x.seconds) });
    }
    const value = median(runs.map((x) => x.rate));
    const mid = runs.find((x) => x.rate === value)!;
    emit({
      bench: 'sync', impl: IMPL_CHANNEL, op: 'channel', provider: 'native', aead: 'chacha20-poly1305', kem: 'x25519-ml-kem-768', sig: 'ml-dsa-65', chunkBytes: MAX_CHUNK_BYTES,
      transport: 'tcp-loopback-2proc', metric: 'throughput', value: round(value, 1), unit: 'MB/s', bytes: plan.channelBytes, seconds: round(mid.seconds),
      runs: runs.map((x) => round(x.rate, 1)), senderCpu: round(mid.cpu / mid.seconds, 2),
      receiverCpu: round(Number(mid.received.receiverCpuSeconds) / Number(mid.received.receiverSeconds), 2), mode: opts.quick ? 'quick' : 'full',
    });
    return value;
  });
}

// ------------------------------------------------------------------ baseline: local import

interface Local {
  readonly headersMs: number;
  readonly blocksMs: number;
  /** CPU time of this process (user + system) over headers and blocks. */
  readonly cpuSeconds: number;
}

function localImport(src: Source, file: () => string, runs: number): Local {
  let best: Local = { headersMs: Infinity, blocksMs: Infinity, cpuSeconds: Infinity };
  for (let r = 0; r < runs; r++) {
    const c = Devchain.open(file(), PARAMS);
    try {
      const nowMs = Date.now();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let parent: HeaderEntry = c.genesis;
      for (let i = 0; i < src.headers.length; i += MAX_HEADERS_PER_MESSAGE) {
        const batch = src.headers.slice(i, i + MAX_HEADERS_PER_MESSAGE).map((e) => {
          const d = c.decodeHeader(e.bytes);
          c.validateHeader(d, parent, nowMs);
          parent = { ...d, totalWork: parent.totalWork + d.work, hasBlock: false };
          return d;
        });
        c.storeHeaders(batch);
      }
      const t1 = performance.now();
      for (const b of src.blocks) c.importBlock(c.decodeBlock(b));
      const t2 = performance.now();
      const cpu = cpuSeconds(process.cpuUsage(cpu0));
      if (hex(c.tip().hash) !== src.tipHash) throw new Error('local import did not reach the served tip');
      if (t2 - t1 + (t1 - t0) < best.headersMs + best.blocksMs) best = { headersMs: t1 - t0, blocksMs: t2 - t1, cpuSeconds: cpu };
    } finally {
      c.close();
    }
  }
  return best;
}

// ------------------------------------------------------------------ the sync

interface SyncRun {
  readonly headersMs: number;
  readonly blocksMs: number;
  readonly totalMs: number;
  readonly firstBestMs: number;
  readonly cpuSeconds: number;
  readonly serverCpuSeconds: number;
  readonly eventLoopUtilization: number;
  /** Event-loop delay of this process during the sync (how long it went without turning), ms. */
  readonly eventLoopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly blockRequests: number;
  readonly headerRequests: number;
  readonly requestMs: { readonly p50: number; readonly p90: number; readonly max: number };
  readonly blocksPerRequest: number;
  readonly servedBy: readonly number[];
  readonly samples: {
    readonly count: number;
    /** Share of samples during the blocks phase with no GETBLOCKS request out (the network idle for blocks). */
    readonly noRequestOut: number;
    readonly meanRequestsInFlight: number;
    readonly meanQueuedBlocks: number;
    readonly maxQueuedBytes: number;
    /** Share of samples with requests held back because import is behind. */
    readonly backPressure: number;
  };
  /** Blocks connected by an import that filled a gap below them (they arrived before a lower block), and the longest such run. */
  readonly connectedAfterGap: number;
  readonly longestConnectRun: number;
  readonly duplicates: number;
  readonly stalls: number;
  readonly headerBatchesRefused: number;
  readonly offenses: Readonly<Record<string, number>>;
}

/** A V8 CPU profile of this process between `start` and `stop` (SYNC_PROFILE). */
async function startProfile(): Promise<() => Promise<unknown>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    return profile;
  };
}

/**
 * One sync from `peers` fresh server processes into a fresh chain. With
 * `headersOnly`, block download stays paused (ChainSync blocksPaused) and the
 * run ends when the best header reaches N.
 */
async function syncOnce(src: Source, peers: number, plan: Plan, file: (name: string) => string, profileTo?: string, headersOnly = false): Promise<SyncRun> {
  const n = src.headers.length;
  const servers: Child[] = [];
  const clock = new SystemClock();
  const chain = Devchain.open(file('client-chain'), PARAMS);
  const node = new Node({
    identity: generateIdentity('ml-dsa-65'),
    chainId: BENCH_CHAIN_ID,
    storePath: file('client-peers'),
    protocols: [SYNC_PROTOCOL],
    height: () => chain.tip().height,
    clock,
    agent: 'pqnet-bench/sync-client',
  });
  const sync = new ChainSync(node, chain, clock, { ...plan.sync, ...(headersOnly ? { blocksPaused: true } : {}) });
  let sampler: ReturnType<typeof setInterval> | undefined;
  let stopProfile: (() => Promise<unknown>) | undefined;
  const delay = monitorEventLoopDelay({ resolution: 5 });
  try {
    const spawned = await Promise.all(
      Array.from({ length: peers }, (_, i) => {
        const copy = file(`served-${i}`);
        copyDb(src.file, copy);
        return Child.spawn(`sync-server-${i}`, SYNC_SERVER, ['--chain', copy, '--store', file(`server-peers-${i}`), '--chain-id', String(BENCH_CHAIN_ID)]);
      }),
    );
    servers.push(...spawned);
    await node.start();
    for (const s of servers) await node.connect(String(s.info.address), { peerId: String(s.info.peerId) });
    for (const s of servers) if (Number(s.info.height) !== n) throw new Error(`server ${s.name} holds ${String(s.info.height)} blocks, expected ${n}`);

    const serverStats = (): Promise<Json[]> => Promise.all(servers.map((s) => s.request({ cmd: 'stats' }, 'stats')));
    const before = await serverStats();
    const traffic0 = node.traffic();
    const latencies: number[] = [];
    let blocksAnswered = 0;
    let connectedAfterGap = 0;
    let longestConnectRun = 0;
    let firstBest: number | undefined;
    let headersDone: number | undefined;
    const samples = { count: 0, noRequestOut: 0, requests: 0, queued: 0, maxQueuedBytes: 0, backPressure: 0 };
    let fault: Error | undefined;
    const done = new Promise<number>((resolve, reject) => {
      sync.on('best', (h) => {
        const now = performance.now();
        firstBest ??= now;
        if (h.height >= n) {
          headersDone ??= now;
          if (headersOnly) resolve(now);
        }
      });
      sync.on('blocks:received', (d) => {
        latencies.push(d.ms);
        blocksAnswered += d.blocks;
      });
      sync.on('imported', (r) => {
        if (r.connected.length > 1) connectedAfterGap += r.connected.length - 1;
        longestConnectRun = Math.max(longestConnectRun, r.connected.length);
      });
      sync.on('tip', (tip) => {
        if (tip.height >= n) resolve(performance.now());
      });
      sync.on('fault', (e) => {
        fault = e;
        reject(e);
      });
    });
    sampler = setInterval(() => {
      if (firstBest === undefined) return;
      const b = sync.blocks.stats();
      samples.count++;
      if (b.requestsInFlight === 0) samples.noRequestOut++;
      samples.requests += b.requestsInFlight;
      samples.queued += b.queuedBlocks;
      samples.maxQueuedBytes = Math.max(samples.maxQueuedBytes, b.queuedBytes);
      if (b.backPressure) samples.backPressure++;
    }, SAMPLE_MS);

    if (profileTo !== undefined) stopProfile = await startProfile();
    const elu0 = performance.eventLoopUtilization();
    const cpu0 = process.cpuUsage();
    delay.enable();
    const t0 = performance.now();
    sync.start();
    const end = await withTimeout(done, 120_000 + n * 20, `sync of ${n} blocks from ${peers} peer(s)`);
    const cpu = cpuSeconds(process.cpuUsage(cpu0));
    const elu = performance.eventLoopUtilization(elu0);
    delay.disable();
    if (stopProfile !== undefined) {
      const profile = await stopProfile();
      stopProfile = undefined;
      writeFileSync(profileTo!, JSON.stringify(profile));
      log(`sync: CPU profile written to ${profileTo!}`);
    }
    clearInterval(sampler);
    sampler = undefined;
    if (fault !== undefined) throw fault;
    const after = await serverStats();
    const traffic = node.traffic();
    if (hex((headersOnly ? chain.bestHeader() : chain.tip()).hash) !== src.tipHash) throw new Error(`the synced ${headersOnly ? 'best header' : 'tip'} is not the served tip`);
    const h = sync.headers.stats();
    const b = sync.blocks.stats();
    if (!headersOnly && b.bytesReceived !== src.blockBytes) log(`sync: ${b.bytesReceived} block bytes received, the chain holds ${src.blockBytes}`);
    const lat = [...latencies].sort((x, y) => x - y);
    const out = traffic.messages.out;
    const health = node.health();
    return {
      headersMs: (headersDone ?? end) - t0,
      blocksMs: end - (firstBest ?? t0),
      totalMs: end - t0,
      firstBestMs: (firstBest ?? t0) - t0,
      cpuSeconds: cpu,
      serverCpuSeconds: after.reduce((s, x, i) => s + Number(x.cpuSeconds) - Number(before[i]!.cpuSeconds), 0),
      eventLoopUtilization: elu.utilization,
      eventLoopDelayMs: { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
      bytesIn: traffic.bytesIn - traffic0.bytesIn,
      bytesOut: traffic.bytesOut - traffic0.bytesOut,
      blockRequests: (out['sync.getblocks.request'] ?? 0) - (traffic0.messages.out['sync.getblocks.request'] ?? 0),
      headerRequests: (out['sync.getheaders.request'] ?? 0) - (traffic0.messages.out['sync.getheaders.request'] ?? 0),
      requestMs: { p50: percentile(lat, 50), p90: percentile(lat, 90), max: lat.at(-1) ?? Number.NaN },
      blocksPerRequest: latencies.length === 0 ? 0 : blocksAnswered / latencies.length,
      servedBy: after.map((x, i) => Number((x.responses as Json).blocks) - Number((before[i]!.responses as Json).blocks)),
      samples: {
        count: samples.count,
        noRequestOut: samples.count === 0 ? 0 : samples.noRequestOut / samples.count,
        meanRequestsInFlight: samples.count === 0 ? 0 : samples.requests / samples.count,
        meanQueuedBlocks: samples.count === 0 ? 0 : samples.queued / samples.count,
        maxQueuedBytes: samples.maxQueuedBytes,
        backPressure: samples.count === 0 ? 0 : samples.backPressure / samples.count,
      },
      connectedAfterGap,
      longestConnectRun,
      duplicates: b.duplicates,
      stalls: b.stalls,
      headerBatchesRefused: h.batchesRefused,
      offenses: health.offenses,
    };
  } finally {
    if (sampler !== undefined) clearInterval(sampler);
    delay.disable();
    await stopProfile?.();
    sync.stop();
    await node.stop();
    chain.close();
    await Promise.all(servers.map((s) => s.close()));
  }
}

// ------------------------------------------------------------------ main

export async function main(opts: BenchOptions): Promise<void> {
  emitEnvironment('sync', opts);
  const plan = makePlan(opts);
  log(`sync benchmark (${opts.quick ? 'quick' : 'full'}): ${plan.sizes.map((s) => `${s.blocks} blocks x ${s.txsPerBlock} tx`).join(', ')}; peers ${plan.peers.join(', ')}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-bench-sync-'));
  let k = 0;
  const file = (name: string): string => path.join(dir, `${name}-${k++}.db`);
  try {
    const channel = selected(opts, IMPL_CHANNEL) ? await channelBaseline(plan, opts) : undefined;
    for (const size of plan.sizes) {
      const label = `${size.blocks}x${size.txsPerBlock}tx`;
      const src = buildSource(file(`source-${label}`), size);
      const common = { blocks: size.blocks, txsPerBlock: size.txsPerBlock, blockBytes: src.blockBytes, avgBlockBytes: Math.round(src.blockBytes / size.blocks) };

      let local: Local | undefined;
      if (selected(opts, IMPL_LOCAL)) {
        log(`sync: local import of ${label}, best of ${plan.localRuns}`);
        local = localImport(src, () => file('local'), plan.localRuns);
        const s = (ms: number): number => ms / 1000;
        emit({ bench: 'sync', impl: IMPL_LOCAL, op: 'headers', ...common, metric: 'rate', value: Math.round(size.blocks / s(local.headersMs)), unit: 'headers/s', ms: round(local.headersMs, 1) });
        emit({
          bench: 'sync', impl: IMPL_LOCAL, op: 'blocks', ...common, metric: 'rate', value: round(size.blocks / s(local.blocksMs), 1), unit: 'blocks/s',
          mbPerSecond: round(mbPerSecond(src.blockBytes, s(local.blocksMs)), 2), ms: round(local.blocksMs, 1),
        });
        emit({ bench: 'sync', impl: IMPL_LOCAL, op: 'total', ...common, metric: 'time', value: round(local.headersMs + local.blocksMs, 1), unit: 'ms', cpuSeconds: round(local.cpuSeconds, 2), runs: plan.localRuns });
      }

      if (!selected(opts, IMPL_SYNC)) continue;
      for (const peers of plan.peers) {
        let best: SyncRun | undefined;
        for (let r = 0; r < plan.runs; r++) {
          log(`sync: ${label} from ${peers} peer(s), run ${r + 1}/${plan.runs}`);
          const profileTo = plan.profileDir === undefined ? undefined : path.join(plan.profileDir, `sync-${label}-${peers}p-${r + 1}.cpuprofile`);
          if (plan.profileDir !== undefined) mkdirSync(plan.profileDir, { recursive: true });
          const run = await syncOnce(src, peers, plan, file, profileTo);
          if (best === undefined || run.totalMs < best.totalMs) best = run;
        }
        const x = best!;
        const s = (ms: number): number => ms / 1000;
        let headersOnly: SyncRun | undefined;
        for (let r = 0; r < plan.runs; r++) {
          log(`sync: ${label} headers only from ${peers} peer(s), run ${r + 1}/${plan.runs}`);
          const run = await syncOnce(src, peers, plan, file, undefined, true);
          if (headersOnly === undefined || run.headersMs < headersOnly.headersMs) headersOnly = run;
        }
        const headersPerSecond = size.blocks / s(x.headersMs);
        const blocksPerSecond = size.blocks / s(x.blocksMs);
        const blockMbPerSecond = mbPerSecond(src.blockBytes, s(x.blocksMs));
        const base = { bench: 'sync', impl: IMPL_SYNC, peers, ...common };
        emit({ ...base, op: 'headers', metric: 'rate', value: Math.round(headersPerSecond), unit: 'headers/s', ms: round(x.headersMs, 1), requests: x.headerRequests, headerBytes: src.headerBytes });
        emit({
          ...base, op: 'headers-only', metric: 'rate', value: Math.round(size.blocks / s(headersOnly!.headersMs)), unit: 'headers/s', ms: round(headersOnly!.headersMs, 1),
          requests: headersOnly!.headerRequests, cpu: { client: round(headersOnly!.cpuSeconds / s(headersOnly!.headersMs), 2), servers: round(headersOnly!.serverCpuSeconds / s(headersOnly!.headersMs), 2) },
        });
        emit({
          ...base, op: 'blocks', metric: 'rate', value: round(blocksPerSecond, 1), unit: 'blocks/s', mbPerSecond: round(blockMbPerSecond, 2), ms: round(x.blocksMs, 1),
          startsAtMs: round(x.firstBestMs, 1), requests: x.blockRequests, blocksPerRequest: round(x.blocksPerRequest, 1),
          requestMs: { p50: round(x.requestMs.p50, 1), p90: round(x.requestMs.p90, 1), max: round(x.requestMs.max, 1) },
          servedBy: x.servedBy, connectedAfterGap: x.connectedAfterGap, longestConnectRun: x.longestConnectRun, duplicates: x.duplicates, stalls: x.stalls, headerBatchesRefused: x.headerBatchesRefused,
          engine: {
            samples: x.samples.count, noRequestOut: round(x.samples.noRequestOut, 3), meanRequestsInFlight: round(x.samples.meanRequestsInFlight, 2),
            meanQueuedBlocks: round(x.samples.meanQueuedBlocks, 1), maxQueuedBytes: x.samples.maxQueuedBytes, backPressure: round(x.samples.backPressure, 3),
          },
        });
        emit({
          ...base, op: 'total', metric: 'time', value: round(x.totalMs, 1), unit: 'ms', blocksPerSecond: round(size.blocks / s(x.totalMs), 1),
          mbPerSecond: round(mbPerSecond(src.blockBytes, s(x.totalMs)), 2),
          wire: { bytesIn: x.bytesIn, bytesOut: x.bytesOut, inOverChainBytes: round(x.bytesIn / (src.blockBytes + src.headerBytes), 3) },
          // Share of one core over the whole sync (user + system), this process and all servers together.
          cpu: { client: round(x.cpuSeconds / s(x.totalMs), 2), clientSeconds: round(x.cpuSeconds, 2), servers: round(x.serverCpuSeconds / s(x.totalMs), 2), serversSeconds: round(x.serverCpuSeconds, 2) },
          eventLoopUtilization: round(x.eventLoopUtilization, 3),
          eventLoopDelayMs: { p50: round(x.eventLoopDelayMs.p50, 1), p99: round(x.eventLoopDelayMs.p99, 1), max: round(x.eventLoopDelayMs.max, 1) },
          ...(Object.keys(x.offenses).length > 0 ? { offenses: x.offenses } : {}),
          runs: plan.runs,
        });
        emit({
          bench: 'sync', metric: 'summary', peers, ...common, unit: 'ratios (sync / baseline)',
          headersPerSecond: Math.round(headersPerSecond), blocksPerSecond: round(blocksPerSecond, 1), blockMbPerSecond: round(blockMbPerSecond, 2), totalMs: round(x.totalMs, 1),
          headersOnlyPerSecond: Math.round(size.blocks / s(headersOnly!.headersMs)),
          vsLocalImport: local === undefined ? null : {
            headers: round(headersPerSecond / (size.blocks / s(local.headersMs)), 3),
            headersOnly: round(local.headersMs / headersOnly!.headersMs, 3),
            blocks: round(blocksPerSecond / (size.blocks / s(local.blocksMs)), 3),
            total: round((local.headersMs + local.blocksMs) / x.totalMs, 3),
            // Local CPU seconds over the syncing process's CPU seconds: < 1 is what the sync costs beyond the import (less sensitive to other load than the times).
            cpu: round(local.cpuSeconds / x.cpuSeconds, 3),
          },
          vsChannel: channel === undefined ? null : { blockMbPerSecond: round(blockMbPerSecond / channel, 4), wireMbPerSecond: round(mbPerSecond(x.bytesIn, s(x.totalMs)) / channel, 4) },
        });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
