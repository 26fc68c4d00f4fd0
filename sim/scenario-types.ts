/**
 * The gossip scenario's inputs and figures: `GossipScenario` with its fault
 * specs (`ChurnSpec`, `PartitionSpec`), and `GossipScenarioResult` with its
 * parts (`LatencySummary`, `ChurnResult`, `PartitionResult`). The run itself
 * is `runGossipScenario` (scenario.ts, which re-exports these); what each
 * figure means is in sim/README.md, "Gossip scenarios".
 */
import type { GossipParams } from '../src/gossip/params.ts';
import type { SigAlg } from '../src/secure/algorithms.ts';

/**
 * Churn: `share` of the honest nodes (drawn from the seed; they never
 * publish) cycle during the publish phase. Each leaves at a seeded offset in
 * [0, everyMs) after publishing starts and every `everyMs` after that while
 * publishing lasts, and `downMs` later a fresh process takes its place.
 */
export interface ChurnSpec {
  readonly share: number;
  readonly everyMs: number;
  /** 0 < downMs < everyMs. */
  readonly downMs: number;
  /**
   * Leave by `gossip.stop()` then `node.stop()` (GOODBYE to every peer).
   * Default false: a crash, the host's streams are reset and its listener
   * closed at once (peers learn it one latency later), then the process is
   * stopped without a word on the wire.
   */
  readonly graceful?: boolean;
  /** A fresh process is settled this long after its first gossip connection became active (default 0: at once). */
  readonly settleMs?: number;
  /** An item counts for a process only if published at least this long before it leaves (default: one heartbeat). */
  readonly graceMs?: number;
}

/** Partition: `share` of all the nodes (drawn from the seed) lose every link to the others from `atMs` after publishing starts, for `healMs`. */
export interface PartitionSpec {
  readonly atMs: number;
  readonly healMs: number;
  /** 0 < share < 1. */
  readonly share: number;
  /** Time an item is given to spread (default: two heartbeats); see `PartitionResult`. */
  readonly graceMs?: number;
}

export interface GossipScenario {
  readonly seed: string;
  readonly nodes: number;
  readonly outbound: number;
  /** Link latency of each pair, uniform in [min, max) ms, drawn from the seed. */
  readonly latencyMs: readonly [number, number];
  readonly bandwidthBytesPerSec?: number;
  readonly loss?: number;
  readonly messageBytes: number;
  readonly messages: number;
  readonly ratePerSecond: number;
  readonly warmupMs: number;
  readonly drainMs: number;
  /** Shares of the nodes (0..1). */
  readonly droppers?: number;
  readonly spammers?: number;
  readonly spamFactor?: number;
  /** When spammers start, ms of virtual time (default: when publishing starts). */
  readonly spamAtMs?: number;
  readonly params?: Partial<GossipParams>;
  /** The scenario topic's rate cap per peer, items per second (default max(10, 2 × ratePerSecond)). */
  readonly topicRate?: number;
  readonly identity?: SigAlg;
  readonly churn?: ChurnSpec;
  readonly partition?: PartitionSpec;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/**
 * Churn figures. A process (the first one of a cycling node, or a fresh one)
 * is up from its start to its leave (or the run's end). It is settled from
 * `settleMs` after its first active gossip connection (the first process:
 * from the start; a fresh one that never connects is never settled). An item
 * is expected at a process iff it was published at or after the process was
 * settled and at least `graceMs` before it left (or the run ended).
 */
export interface ChurnResult {
  /** Cycling nodes. */
  readonly nodes: number;
  readonly graceful: boolean;
  /** Leaves, and fresh processes started. */
  readonly left: number;
  readonly joined: number;
  /** Fresh processes that got an active gossip connection, and the time from their start to it (ms). */
  readonly connected: number;
  readonly connectMs: { readonly p50: number; readonly max: number };
  readonly settleMs: number;
  readonly graceMs: number;
  /** (process, item) pairs expected, and of those received. */
  readonly expected: number;
  readonly received: number;
  readonly deliveryWhileUp: number;
  /** Receipts of items that were not expected (published before it settled, e.g. pulled by IWANT after a restart, or too close to its leave). */
  readonly receivedOutsideWindow: number;
  /** Publish to receipt of the expected receipts. */
  readonly latencyMs: LatencySummary;
}

/**
 * Partition figures, over the honest nodes up for the whole run. Split items
 * are published in [split, heal); held items are published in
 * [split − graceMs, heal) (earlier ones had time to spread before the cut)
 * and their receipts are left out of the run's `latencyMs`.
 */
export interface PartitionResult {
  /** Nodes on each side (the seeded share first). */
  readonly sides: readonly [number, number];
  /** Connected components of each side's graph of active connections between forwarding (non-dropper) nodes, at the split. */
  readonly components: readonly [number, number];
  readonly items: number;
  /**
   * Split items published at least `graceMs` before the heal: receipts by
   * the heal at the nodes of the publisher's side and component there, over
   * how many such nodes there are.
   */
  readonly withinSide: { readonly items: number; readonly expected: number; readonly received: number; readonly delivery: number };
  /** Receipts of split items on the publisher's far side before the heal (0 while the cut holds), and after it. */
  readonly crossedBeforeHeal: number;
  readonly crossedAfterHeal: number;
  /** Receipts of split items by the end of the run ÷ (items × (nodes − 1)). */
  readonly deliveryAfterHeal: number;
  /** From the heal to the last receipt of a held item (0: none arrived after the heal). */
  readonly healToLastReceiptMs: number;
  readonly graceMs: number;
  /** Publish to receipt of the held items. */
  readonly latencyMs: LatencySummary;
}

export interface GossipScenarioResult {
  readonly nodes: number;
  readonly honest: number;
  readonly droppers: number;
  readonly spammers: number;
  readonly messages: number;
  /** Receipts at honest nodes up for the whole run (not cycling), over messages × (those nodes − 1). */
  readonly receipts: number;
  readonly expected: number;
  readonly delivery: number;
  /** Publish to receipt at the nodes `delivery` counts, items held by a partition left out. */
  readonly latencyMs: LatencySummary;
  readonly diameterMs: number;
  readonly targetP99Ms: number;
  /** Bytes written ÷ (item bytes × receipts at every honest process, cycling ones included). */
  readonly amplification: number;
  readonly bytesWritten: number;
  /**
   * Where the bytes went, per receipt: items sent (pushes and IWANT answers),
   * duplicates received, ids announced by IHAVE, and control messages.
   */
  readonly perReceipt: { readonly itemsSent: number; readonly duplicates: number; readonly ihaveIds: number; readonly controlMessages: number };
  readonly mesh: { readonly min: number; readonly median: number; readonly max: number };
  readonly connections: number;
  /** Spammer links to honest nodes, and how many of them honest nodes closed, and when (ms after the spam began). */
  readonly spam: { readonly links: number; readonly closed: number; readonly lastCloseMs: number };
  /** Present when the scenario has `churn`. */
  readonly churn?: ChurnResult;
  /** Present when the scenario has `partition`. */
  readonly partition?: PartitionResult;
  readonly virtualMs: number;
  readonly wallMs: number;
  readonly events: number;
  readonly heapMb: number;
  readonly traceHash: string;
}
