/**
 * Prometheus metrics of chain sync (docs/API.md, Metrics), added to a node's
 * registry. Heights, rates and totals are read from `ChainSync` when
 * Prometheus scrapes; the only event-driven series is the GETBLOCKS latency
 * histogram. No label holds a peer-id.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ChainSync } from './chain-sync.ts';
import type { Relay } from './relay.ts';
import type { RequestDone } from '../sync/blocks.ts';
import type { SyncState } from '../sync/progress.ts';

/** GETBLOCKS answers: 1 ms (loopback, a few blocks) to 60 s (the request deadline). */
const BLOCK_REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const STATES: readonly SyncState[] = ['waiting', 'headers', 'blocks', 'synced', 'state'];

export function addSyncMetrics(sync: ChainSync, registry: Registry): { close(): void } {
  const registers = [registry];
  new Gauge({
    name: 'p2p_sync_height',
    help: 'Heights: the validated tip (tip), the best header (best_header), and the height being synced to (target)',
    labelNames: ['kind'],
    registers,
    collect() {
      const p = sync.progress();
      this.set({ kind: 'tip' }, p.tipHeight);
      this.set({ kind: 'best_header' }, p.bestHeaderHeight);
      this.set({ kind: 'target' }, p.targetHeight);
    },
  });
  new Gauge({
    name: 'p2p_sync_state',
    help: 'Sync state: 1 for the current one (waiting, headers, blocks, synced, state)',
    labelNames: ['state'],
    registers,
    collect() {
      const s = sync.progress().state;
      for (const state of STATES) this.set({ state }, state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: 'p2p_sync_rate',
    help: 'Sync speed over the last 10 s: headers and blocks stored per second, block bytes received per second',
    labelNames: ['kind'],
    registers,
    collect() {
      const p = sync.progress();
      this.set({ kind: 'headers_per_second' }, p.headersPerSecond);
      this.set({ kind: 'blocks_per_second' }, p.blocksPerSecond);
      this.set({ kind: 'block_bytes_per_second' }, p.blockBytesPerSecond);
    },
  });
  new Counter({
    name: 'p2p_sync_items_total',
    help: 'Headers stored, blocks received, blocks imported, duplicate blocks, and stalled block requests',
    labelNames: ['kind'],
    registers,
    collect() {
      const h = sync.headers.stats();
      const b = sync.blocks.stats();
      this.reset();
      this.inc({ kind: 'headers_stored' }, h.headersStored);
      this.inc({ kind: 'header_batches_refused' }, h.batchesRefused);
      this.inc({ kind: 'blocks_received' }, b.blocksReceived);
      this.inc({ kind: 'blocks_imported' }, b.blocksImported);
      this.inc({ kind: 'blocks_duplicate' }, b.duplicates);
      this.inc({ kind: 'block_requests_stalled' }, b.stalls);
    },
  });
  new Counter({
    name: 'p2p_sync_block_bytes_total',
    help: 'Block bytes received by block download',
    registers,
    collect() {
      this.reset();
      this.inc(sync.blocks.stats().bytesReceived);
    },
  });
  new Gauge({
    name: 'p2p_sync_blocks_pending',
    help: 'Blocks being fetched (in_flight) and received but not yet imported (queued)',
    labelNames: ['kind'],
    registers,
    collect() {
      const b = sync.blocks.stats();
      this.set({ kind: 'in_flight' }, b.blocksInFlight);
      this.set({ kind: 'queued' }, b.queuedBlocks);
    },
  });
  const latency = new Histogram({
    name: 'p2p_sync_block_request_seconds',
    help: 'Block download latency: time from sending a GETBLOCKS to its answer',
    buckets: BLOCK_REQUEST_BUCKETS,
    registers,
  });
  const onDone = (d: RequestDone): void => latency.observe(d.ms / 1000);
  sync.on('blocks:received', onDone);
  return {
    close() {
      sync.off('blocks:received', onDone);
    },
  };
}

/** Relay counters that only grow, as `p2p_relay_items_total{kind}` (snake_case of the `RelayEngineStats` names). */
const RELAY_COUNTERS = [
  'txsReceived', 'txsAccepted', 'txsRejected', 'txsAnnounced', 'txsServed', 'txsRequested', 'compactSent', 'compactReceived', 'compactRebuilt',
  'compactWithMissing', 'compactFallbacks', 'blockTxnRequested', 'blockTxnBytes', 'blocksRequested', 'fullBlocksReceived', 'blocksServed',
] as const;
const MEMPOOL_COUNTERS = ['added', 'evicted', 'mined', 'invalidated', 'readmitted'] as const;

const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Mempool size and relay totals, read from the relay when Prometheus scrapes. */
export function addRelayMetrics(relay: Relay, registry: Registry): void {
  const registers = [registry];
  new Gauge({
    name: 'p2p_mempool',
    help: 'Transactions in the mempool (txs) and their bytes (bytes)',
    labelNames: ['kind'],
    registers,
    collect() {
      const m = relay.mempool.stats();
      this.set({ kind: 'txs' }, m.txs);
      this.set({ kind: 'bytes' }, m.bytes);
    },
  });
  new Counter({
    name: 'p2p_mempool_changes_total',
    help: 'Mempool admissions and removals: added, evicted, mined, invalidated, readmitted',
    labelNames: ['kind'],
    registers,
    collect() {
      const m = relay.mempool.stats();
      this.reset();
      for (const k of MEMPOOL_COUNTERS) this.inc({ kind: k }, m[k]);
    },
  });
  new Counter({
    name: 'p2p_relay_items_total',
    help: 'Transaction and block relay: txs received, accepted, rejected, announced, served, requested; compact blocks sent, received, rebuilt, with missing txs, given up; GETBLOCKTXN txs and bytes; full blocks requested, received, served',
    labelNames: ['kind'],
    registers,
    collect() {
      const r = relay.engine.stats();
      this.reset();
      for (const k of RELAY_COUNTERS) this.inc({ kind: snake(k) }, r[k]);
    },
  });
}
