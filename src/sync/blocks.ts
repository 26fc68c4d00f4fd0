/**
 * Block download (docs/spec/sync.md, Blocks), sans-I/O: the engine decides
 * which peer fetches which range of blocks and judges the answers; the caller
 * sends the GETBLOCKS requests `poll` returns, feeds back answers
 * (`onBlocks`) and failures (`onFailed`), applies penalties, and calls
 * `importQueued` to hand received blocks to the chain.
 *
 * - **Window.** Blocks are fetched for heights above the validated tip (above
 *   the fork point when the best header chain is another branch), on the best
 *   header chain, at most `windowBlocks` ahead. A block that
 *   holds the window back (its peer is slow) therefore stops the download
 *   from running away, and stall detection moves it on.
 * - **Ranges.** A request is a run of consecutive heights (up to
 *   `rangeBlocks`, at most 500) named by the hash of its last block, so the
 *   server answers along our chain. Each peer has at most `maxRequestsPerPeer`
 *   requests out; free peers take the lowest heights nobody is fetching, so
 *   the download spreads over every peer that has the blocks.
 * - **Stalls.** A request not answered within `stallMs` is a stall: the peer
 *   is penalised (SYNC_STALL) once for it, its heights are released for
 *   others at once, and its late answer is still used if it arrives.
 * - **Answers** are judged block by block against the headers we hold: a
 *   block that does not decode or does not match its header is CHAIN_BAD_BLOCK,
 *   more blocks than asked or a block at the wrong height is SYNC_BAD_RESPONSE;
 *   the good prefix is kept. An empty or short answer means the peer lacks
 *   the rest (no penalty): it is not asked for those heights again until it
 *   shows a new height or `lackRetryMs` passes — unless the answer stopped at
 *   the server's byte budget (MAX_BLOCKS_RESPONSE_BYTES). Ranges are sized from
 *   the blocks' recent average size so that an answer fits the budget.
 * - **Import and back-pressure.** Accepted blocks wait in a queue that
 *   `importQueued` drains lowest height first through `importBlock`, which
 *   stores a block at once and connects it when its parent is connected. The
 *   adapter's writes are atomic, so after a crash the blocks stored are kept
 *   and not fetched again. While the queue holds more than `maxQueuedBytes`
 *   (import is behind the network), no new requests go out.
 * - A block whose transactions fail is CHAIN_BAD_BLOCK for the peer that sent
 *   it; the adapter marks its branch invalid and the best header moves away.
 */
import { hex, type ChainAdapter, type ChainBlock, type Hash, type HeaderEntry, type ImportResult } from '../chain/adapter.ts';
import { isPqnetError, type Reason } from '../core/errors.ts';
import { MAX_BLOCKS_PER_MESSAGE, MAX_BLOCKS_RESPONSE_BYTES } from './messages.ts';

export interface BlockSyncOptions {
  /** How far ahead of the validated tip blocks are fetched. */
  readonly windowBlocks: number;
  /** Blocks asked for in one request (1–500). */
  readonly rangeBlocks: number;
  /** Requests one peer may have out at once. */
  readonly maxRequestsPerPeer: number;
  /** A request unanswered for this long is a stall: penalised and reassigned. */
  readonly stallMs: number;
  /** Received blocks waiting for import above which no new requests go out. */
  readonly maxQueuedBytes: number;
  /** A peer that lacked a height is asked for it again after this long (or when it shows a new height). */
  readonly lackRetryMs: number;
}

export const DEFAULT_BLOCK_SYNC_OPTIONS: BlockSyncOptions = Object.freeze({
  windowBlocks: 1_024,
  rangeBlocks: 128,
  maxRequestsPerPeer: 2,
  stallMs: 10_000,
  maxQueuedBytes: 32 * 1024 * 1024,
  lackRetryMs: 30_000,
});

export type BlockSyncAction =
  | { readonly type: 'request'; readonly peer: string; readonly id: number; readonly start: number; readonly count: number; readonly anchor: Hash }
  | { readonly type: 'penalize'; readonly peer: string; readonly reason: Reason; readonly detail: string };

interface Request {
  readonly id: number;
  readonly peer: string;
  readonly start: number;
  /** Expected hash (hex) of each height, start first. */
  readonly hashes: readonly string[];
  readonly sentAt: number;
  stalled: boolean;
}

interface PeerState {
  height: number;
  /** Ids of its requests out (stalled ones included, until they resolve). */
  readonly requests: Set<number>;
  /** It answered without the block at this height (and above); when. */
  lacksFrom: number | undefined;
  lackedAt: number;
}

interface Queued {
  readonly block: ChainBlock;
  readonly peer: string;
  readonly size: number;
}

export interface BlockSyncStats {
  readonly tipHeight: number;
  readonly targetHeight: number;
  readonly peers: number;
  readonly requestsInFlight: number;
  readonly blocksInFlight: number;
  readonly queuedBlocks: number;
  readonly queuedBytes: number;
  /** Blocks received and accepted, and their bytes. */
  readonly blocksReceived: number;
  readonly bytesReceived: number;
  /** Blocks received that were already held (late answers after a reassignment). */
  readonly duplicates: number;
  readonly blocksImported: number;
  readonly stalls: number;
  /** Whether requests are held back because import is behind. */
  readonly backPressure: boolean;
}

/** One imported block: who sent it, and what its import did to the validated chain. */
export interface ImportedBlock {
  readonly hash: Hash;
  readonly peer: string;
  readonly result: ImportResult;
}

/** A finished request: how long it took and how many blocks it brought, for latency metrics. */
export interface RequestDone {
  readonly peer: string;
  readonly blocks: number;
  readonly ms: number;
}

export class BlockSync {
  readonly options: BlockSyncOptions;
  readonly #chain: ChainAdapter;
  readonly #peers = new Map<string, PeerState>();
  readonly #requests = new Map<number, Request>();
  /** Heights being fetched → request id (a stalled request's heights are released). */
  readonly #fetching = new Map<number, number>();
  readonly #queue = new Map<number, Queued>();
  /** Heights known stored (hash hex), above the tip; rebuilt when the best chain changes. */
  readonly #have = new Map<number, string>();
  #actions: BlockSyncAction[] = [];
  #bestHash = '';
  /** Average bytes of the blocks received lately: ranges are sized so an answer fits the server's byte budget. */
  #blockBytes = 0;
  #fork: { readonly key: string; readonly height: number } | undefined;
  #nextId = 1;
  #queuedBytes = 0;
  #received = 0;
  #bytes = 0;
  #duplicates = 0;
  #imported = 0;
  #stalls = 0;
  #backPressure = false;

  constructor(chain: ChainAdapter, options: Partial<BlockSyncOptions> = {}) {
    const o = { ...DEFAULT_BLOCK_SYNC_OPTIONS, ...options };
    for (const [k, v] of Object.entries(o)) if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`block sync option ${k} must be a positive integer`);
    if (o.rangeBlocks > MAX_BLOCKS_PER_MESSAGE) throw new RangeError(`rangeBlocks must be at most ${MAX_BLOCKS_PER_MESSAGE}`);
    this.options = Object.freeze(o);
    this.#chain = chain;
  }

  addPeer(peer: string, height: number): void {
    if (!this.#peers.has(peer)) this.#peers.set(peer, { height, requests: new Set(), lacksFrom: undefined, lackedAt: 0 });
  }

  /** The peer is gone: its heights are released at once (its answers can no longer come). */
  removePeer(peer: string): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    for (const id of p.requests) this.#release(id);
    this.#peers.delete(peer);
  }

  /** The peer has (or announced) a block at `height`. */
  onPeerHeight(peer: string, height: number): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    if (height > p.height) {
      p.height = height;
      p.lacksFrom = undefined;
    }
  }

  /** The answer to request `id`. Returns what the request took, or undefined if it was unknown (already resolved). */
  onBlocks(id: number, batch: readonly Uint8Array[], now: number): RequestDone | undefined {
    const r = this.#requests.get(id);
    if (r === undefined) return undefined;
    this.#release(id);
    const p = this.#peers.get(r.peer);
    if (batch.length > r.hashes.length) {
      this.#penalize(r.peer, 'SYNC_BAD_RESPONSE', `${batch.length} blocks for a request of ${r.hashes.length}`);
      return { peer: r.peer, blocks: 0, ms: now - r.sentAt };
    }
    let accepted = 0;
    for (const [i, bytes] of batch.entries()) {
      const height = r.start + i;
      let block: ChainBlock;
      try {
        block = this.#chain.decodeBlock(bytes);
      } catch (e) {
        this.#penalize(r.peer, codeOf(e, 'CHAIN_BAD_BLOCK'), `block at height ${height}: ${(e as Error).message}`);
        break;
      }
      if (hex(block.header.hash) !== r.hashes[i]) {
        this.#penalize(r.peer, 'SYNC_BAD_RESPONSE', `block ${i} of the answer is not the block at height ${height}`);
        break;
      }
      accepted++;
      if (this.#queue.has(height) || this.#have.get(height) === r.hashes[i] || this.#chain.header(block.header.hash)?.hasBlock === true) {
        this.#duplicates++;
        continue;
      }
      this.#queue.set(height, { block, peer: r.peer, size: bytes.length });
      this.#queuedBytes += bytes.length;
      this.#received++;
      this.#bytes += bytes.length;
    }
    const bytes = batch.reduce((n, b) => n + b.length, 0);
    if (accepted > 0) this.#blockBytes = this.#blockBytes === 0 ? bytes / accepted : 0.8 * this.#blockBytes + (0.2 * bytes) / accepted;
    // A short answer means the peer lacks the next block, unless the server stopped at its byte budget.
    const cut = bytes + this.#chain.limits.maxBlockBytes > MAX_BLOCKS_RESPONSE_BYTES;
    if (p !== undefined && accepted < r.hashes.length && accepted === batch.length && !cut) {
      p.lacksFrom = r.start + accepted;
      p.lackedAt = now;
    }
    return { peer: r.peer, blocks: accepted, ms: now - r.sentAt };
  }

  /** Request `id` failed (timeout, closed, refused): its heights go to others. */
  onFailed(id: number): void {
    this.#release(id);
  }

  /**
   * Import queued blocks, lowest height first, at most `max` of them and while
   * `more()` says so (checked before each). Returns each block's sender and
   * what its import did to the validated chain (for relay and metrics).
   */
  importQueued(max: number, more: () => boolean = () => true): ImportedBlock[] {
    const out: ImportedBlock[] = [];
    const heights = [...this.#queue.keys()].sort((a, b) => a - b).slice(0, max);
    for (const height of heights) {
      if (!more()) break;
      const q = this.#queue.get(height)!;
      this.#queue.delete(height);
      this.#queuedBytes -= q.size;
      try {
        out.push({ hash: q.block.header.hash, peer: q.peer, result: this.#chain.importBlock(q.block) });
        this.#imported++;
        this.#have.set(height, hex(q.block.header.hash));
      } catch (e) {
        if (!isPqnetError(e) || !e.code.startsWith('CHAIN_')) throw e;
        // Its transactions do not apply (or it was already known invalid): the sender served an invalid chain.
        this.#penalize(q.peer, e.code, `block at height ${height}: ${e.message}`);
        const d = e.details as { connected?: string[]; disconnected?: string[] } | undefined;
        if (Array.isArray(d?.connected) && d.connected.length > 0) {
          out.push({ hash: q.block.header.hash, peer: q.peer, result: { connected: d.connected.map(unhex), disconnected: (d.disconnected ?? []).map(unhex) } });
        }
      }
    }
    return out;
  }

  /** Blocks waiting for `importQueued`. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Requests to send and penalties to apply, in order. */
  poll(now: number): BlockSyncAction[] {
    this.#checkStalls(now);
    this.#plan(now);
    const out = this.#actions;
    this.#actions = [];
    return out;
  }

  stats(): BlockSyncStats {
    let requests = 0;
    for (const r of this.#requests.values()) if (!r.stalled) requests++;
    return {
      tipHeight: this.#chain.tip().height,
      targetHeight: this.#chain.bestHeader().height,
      peers: this.#peers.size,
      requestsInFlight: requests,
      blocksInFlight: this.#fetching.size,
      queuedBlocks: this.#queue.size,
      queuedBytes: this.#queuedBytes,
      blocksReceived: this.#received,
      bytesReceived: this.#bytes,
      duplicates: this.#duplicates,
      blocksImported: this.#imported,
      stalls: this.#stalls,
      backPressure: this.#backPressure,
    };
  }

  #checkStalls(now: number): void {
    for (const r of this.#requests.values()) {
      if (r.stalled || now - r.sentAt < this.options.stallMs) continue;
      r.stalled = true;
      this.#stalls++;
      for (let i = 0; i < r.hashes.length; i++) if (this.#fetching.get(r.start + i) === r.id) this.#fetching.delete(r.start + i);
      this.#penalize(r.peer, 'SYNC_STALL', `${r.hashes.length} blocks from height ${r.start} not delivered in ${this.options.stallMs} ms`);
    }
  }

  #plan(now: number): void {
    const tip = this.#chain.tip();
    const best = this.#chain.bestHeader();
    if (hex(best.hash) !== this.#bestHash) {
      this.#bestHash = hex(best.hash);
      // Another best chain: what we knew about heights may be another branch's.
      this.#have.clear();
    }
    // Where the best chain leaves the validated one: the tip itself, unless the best chain is another branch.
    const base = this.#forkHeight(tip, best);
    for (const h of this.#have.keys()) if (h <= base) this.#have.delete(h);
    this.#backPressure = this.#queuedBytes > this.options.maxQueuedBytes;
    if (this.#backPressure || best.height <= base || hex(best.hash) === hex(tip.hash)) return;
    const end = Math.min(best.height, base + this.options.windowBlocks);
    // Free peers, the least loaded first, then the highest.
    const free = [...this.#peers.entries()]
      .filter(([, p]) => p.requests.size < this.options.maxRequestsPerPeer)
      .sort(([, a], [, b]) => a.requests.size - b.requests.size || b.height - a.height);
    let from = base + 1;
    for (const [peer, p] of free) {
      while (p.requests.size < this.options.maxRequestsPerPeer) {
        const range = this.#nextRange(from, end, best, p, now);
        if (range === undefined) break;
        from = range.start + range.hashes.length;
        this.#send(peer, p, range.start, range.hashes, now);
      }
    }
  }

  /**
   * The height of the last block the validated chain (ending at `tip`) and the
   * best header chain share. Cached per (tip, best): a reorganisation walks down
   * once, as deep as the branches differ.
   */
  #forkHeight(tip: HeaderEntry, best: HeaderEntry): number {
    const key = `${hex(tip.hash)}/${hex(best.hash)}`;
    if (this.#fork?.key === key) return this.#fork.height;
    let h = Math.min(tip.height, best.height);
    while (h > 0) {
      const onBest = this.#chain.headerAt(h, best.hash);
      const onTip = h === tip.height ? tip : this.#chain.headerAt(h, tip.hash);
      if (onBest !== undefined && onTip !== undefined && hex(onBest.hash) === hex(onTip.hash)) break;
      h--;
    }
    this.#fork = { key, height: h };
    return h;
  }

  /** The first run of heights in [from, end] nobody is fetching and we lack, that the peer can serve. */
  #nextRange(from: number, end: number, best: HeaderEntry, p: PeerState, now: number): { start: number; hashes: string[] } | undefined {
    const limit = p.lacksFrom !== undefined && now - p.lackedAt < this.options.lackRetryMs ? Math.min(end, p.lacksFrom - 1) : end;
    const top = Math.min(limit, p.height);
    let start = from;
    const hashes: string[] = [];
    const fits = this.#blockBytes > 0 ? Math.max(1, Math.floor(MAX_BLOCKS_RESPONSE_BYTES / this.#blockBytes)) : this.options.rangeBlocks;
    const most = Math.min(this.options.rangeBlocks, fits);
    for (let h = from; h <= top && hashes.length < most; h++) {
      if (this.#fetching.has(h) || this.#queue.has(h) || this.#have.has(h)) {
        if (hashes.length > 0) break;
        start = h + 1;
        continue;
      }
      const e = this.#chain.headerAt(h, best.hash);
      if (e === undefined) break;
      if (e.hasBlock) {
        this.#have.set(h, hex(e.hash));
        if (hashes.length > 0) break;
        start = h + 1;
        continue;
      }
      hashes.push(hex(e.hash));
    }
    return hashes.length === 0 ? undefined : { start, hashes };
  }

  #send(peer: string, p: PeerState, start: number, hashes: string[], now: number): void {
    const id = this.#nextId++;
    this.#requests.set(id, { id, peer, start, hashes, sentAt: now, stalled: false });
    p.requests.add(id);
    for (let i = 0; i < hashes.length; i++) this.#fetching.set(start + i, id);
    this.#actions.push({ type: 'request', peer, id, start, count: hashes.length, anchor: unhex(hashes.at(-1)!) });
  }

  #release(id: number): void {
    const r = this.#requests.get(id);
    if (r === undefined) return;
    this.#requests.delete(id);
    this.#peers.get(r.peer)?.requests.delete(id);
    for (let i = 0; i < r.hashes.length; i++) if (this.#fetching.get(r.start + i) === id) this.#fetching.delete(r.start + i);
  }

  #penalize(peer: string, reason: Reason, detail: string): void {
    this.#actions.push({ type: 'penalize', peer, reason, detail });
  }
}

/**
 * The answer to GETBLOCKS: the stored blocks at `start`.. on the chain ending at
 * `anchor`, stopping at the first one not held or when the next would pass
 * `maxBytes` (at least one block if the first is held). Empty if `anchor` is
 * unknown or not at `start + count - 1`.
 */
export function blocksInRange(chain: ChainAdapter, start: number, count: number, anchor: Hash, maxBytes = MAX_BLOCKS_RESPONSE_BYTES): Uint8Array[] {
  const a = chain.header(anchor);
  if (a === undefined || count < 1 || a.height !== start + count - 1) return [];
  const out: Uint8Array[] = [];
  let bytes = 0;
  for (let h = start; h <= a.height; h++) {
    const e = h === a.height ? a : chain.headerAt(h, a.hash);
    if (e === undefined || !e.hasBlock) break;
    const b = chain.block(e.hash);
    if (b === undefined) break;
    if (out.length > 0 && bytes + b.length > maxBytes) break;
    out.push(b);
    bytes += b.length;
  }
  return out;
}

function codeOf(e: unknown, fallback: Reason): Reason {
  if (isPqnetError(e) && e.code.startsWith('CHAIN_')) return e.code;
  if (isPqnetError(e)) throw e;
  return fallback;
}

function unhex(s: string): Hash {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

