/**
 * The I/O side of sync: binds the sans-I/O engines to a `Node` and a
 * `ChainAdapter`. It registers the sync messages, serves GETHEADERS and
 * GETBLOCKS from the chain, follows peers that speak `pqnet/sync/1` as they
 * come and go, carries out what the engines return (requests, penalties) on
 * the node's clock, imports downloaded blocks in slices that keep the event
 * loop responsive, and reports progress (persisted, so a restarted node
 * reports the sync it is resuming).
 *
 * The node must be created with `protocols` including `SYNC_PROTOCOL`, and
 * the service before `node.start()` (message types are registered then).
 */
import { EventEmitter } from 'node:events';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hex, type ChainAdapter, type Hash, type HeaderEntry, type ImportResult } from '../chain/adapter.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Node, PeerInfo } from './node.ts';
import { BlockSync, blocksInRange, type BlockSyncAction, type BlockSyncOptions, type RequestDone } from '../sync/blocks.ts';
import { HeaderSync, type HeaderSyncAction, type HeaderSyncOptions } from '../sync/headers.ts';
import { headersAfter } from '../sync/locator.ts';
import { SYNC_PROTOCOL, syncMessages, type SyncMessages } from '../sync/messages.ts';
import { makeProgress, RateMeter, syncState, type SyncProgress } from '../sync/progress.ts';

export interface ChainSyncOptions {
  readonly headers?: Partial<HeaderSyncOptions>;
  readonly blocks?: Partial<BlockSyncOptions>;
  /** How often the engines are polled when nothing else wakes them (and rates sampled). */
  readonly tickMs?: number;
  /** Longest stretch of block imports before yielding to the event loop. */
  readonly importSliceMs?: number;
  /**
   * A JSON file recording when the current sync began and from which height, so
   * progress survives a restart (written when a sync begins, removed when synced).
   */
  readonly progressPath?: string;
  /** Start with block download paused (e.g. until a state snapshot is applied). */
  readonly blocksPaused?: boolean;
}

export interface ChainSyncEvents {
  /** Our best header changed (more work). */
  best: [header: HeaderEntry];
  /** An imported block (sent by `from`) changed the validated chain. */
  imported: [result: ImportResult, from: string, hash: Hash];
  /** The validated tip moved. */
  tip: [tip: HeaderEntry];
  /** A GETBLOCKS request finished (for latency metrics). */
  'blocks:received': [done: RequestDone];
  /** The sync state changed (waiting, headers, blocks, synced). */
  state: [progress: SyncProgress];
  /** The chain failed locally (e.g. STORE_IO): sync stopped; the node keeps running. */
  fault: [error: Error];
}

interface ProgressRecord {
  readonly startedAtMs: number;
  readonly startHeight: number;
}

const DEFAULT_TICK_MS = 1_000;
const DEFAULT_IMPORT_SLICE_MS = 25;

export class ChainSync extends EventEmitter<ChainSyncEvents> {
  readonly chain: ChainAdapter;
  readonly messages: SyncMessages;
  readonly headers: HeaderSync;
  readonly blocks: BlockSync;
  readonly #node: Node;
  readonly #clock: Clock;
  readonly #tickMs: number;
  readonly #sliceMs: number;
  readonly #progressPath: string | undefined;
  readonly #meter = new RateMeter();
  readonly #peers = new Set<string>();
  #record: ProgressRecord | undefined;
  #state: SyncProgress['state'] | undefined;
  #timer: TimerHandle | undefined;
  #running = false;
  #pumpQueued = false;
  #importing = false;
  #blocksPaused: boolean;
  #tipHash: string;

  constructor(node: Node, chain: ChainAdapter, clock: Clock, options: ChainSyncOptions = {}) {
    super();
    this.#node = node;
    this.chain = chain;
    this.#clock = clock;
    this.#tickMs = options.tickMs ?? DEFAULT_TICK_MS;
    this.#sliceMs = options.importSliceMs ?? DEFAULT_IMPORT_SLICE_MS;
    this.#progressPath = options.progressPath;
    this.#blocksPaused = options.blocksPaused ?? false;
    this.#tipHash = hex(chain.tip().hash);
    this.messages = syncMessages(chain.limits);
    this.headers = new HeaderSync(chain, options.headers);
    this.blocks = new BlockSync(chain, options.blocks);
    this.#record = this.#loadRecord();
    node.registerRequest(this.messages.getHeaders);
    node.registerRequest(this.messages.getBlocks);
    node.handle(this.messages.getHeaders, ([locator, stop]) => headersAfter(chain, locator, stop.length === 0 ? undefined : stop));
    node.handle(this.messages.getBlocks, ([start, count, anchor]) => blocksInRange(chain, start, count, anchor));
    node.on('peer:active', (p) => this.#onActive(p));
    node.on('peer:closed', (p) => {
      if (p.peerId === undefined || !this.#peers.delete(p.peerId)) return;
      this.headers.removePeer(p.peerId);
      this.blocks.removePeer(p.peerId);
      this.#pumpSoon();
    });
  }

  /** Begin syncing with the node's current and future peers. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const p of this.#node.peers()) if (p.state === 'active') this.#onActive(p);
    this.#tick();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** Stop or resume fetching blocks (headers continue); e.g. while a state snapshot is fetched. */
  setBlocksPaused(paused: boolean): void {
    this.#blocksPaused = paused;
    if (!paused) this.#pumpSoon();
  }

  /** A peer showed a block at `height` (an announcement): both engines may ask it for more. */
  onPeerHeight(peer: string, height: number): void {
    this.headers.onPeerHeight(peer, height);
    this.blocks.onPeerHeight(peer, height);
    this.#pumpSoon();
  }

  /** Whether the tip is the best header and no peer claims more (what `progress().state === 'synced'` says, cheaply). */
  get synced(): boolean {
    return this.#peers.size > 0 && syncState({
      peers: this.#peers.size,
      tipHeight: this.chain.tip().height,
      bestHeaderHeight: this.chain.bestHeader().height,
      claimedHeight: this.headers.targetHeight(),
    }) === 'synced';
  }

  /** Where the sync stands now (`state` while blocks wait for a snapshot). */
  progress(): SyncProgress {
    const p = this.#progress();
    return p.state === 'blocks' && this.#blocksPaused ? { ...p, state: 'state' } : p;
  }

  #progress(): SyncProgress {
    const tip = this.chain.tip();
    const best = this.chain.bestHeader();
    return makeProgress({
      peers: this.#peers.size,
      tipHeight: tip.height,
      tipHash: hex(tip.hash),
      bestHeaderHeight: best.height,
      claimedHeight: this.headers.targetHeight(),
      rates: this.#meter.rates(),
      startedAtMs: this.#record?.startedAtMs ?? null,
      startHeight: this.#record?.startHeight ?? null,
    });
  }

  #onActive(p: PeerInfo): void {
    if (p.peerId === undefined || !p.protocols.includes(SYNC_PROTOCOL)) return;
    this.#peers.add(p.peerId);
    this.headers.addPeer(p.peerId, p.height ?? 0);
    this.blocks.addPeer(p.peerId, p.height ?? 0);
    this.#pumpSoon();
  }

  #tick(): void {
    if (!this.#running) return;
    this.#guard(() => {
      this.#sample();
      this.#poll();
    });
    if (!this.#running) return;
    this.#timer = this.#clock.setTimer(this.#tickMs, () => this.#tick());
  }

  #sample(): void {
    const h = this.headers.stats();
    const b = this.blocks.stats();
    this.#meter.sample(this.#clock.now(), h.headersStored, b.blocksImported, b.bytesReceived);
    this.#trackState();
  }

  /** Record when a sync begins and forget it once synced; report state changes. */
  #trackState(): void {
    const tip = this.chain.tip();
    const state = syncState({
      peers: this.#peers.size,
      tipHeight: tip.height,
      bestHeaderHeight: this.chain.bestHeader().height,
      claimedHeight: this.headers.targetHeight(),
    });
    if ((state === 'headers' || state === 'blocks') && this.#record === undefined) {
      this.#saveRecord({ startedAtMs: this.#clock.wallNow(), startHeight: tip.height });
    } else if (state === 'synced' && this.#record !== undefined) {
      this.#saveRecord(undefined);
    }
    if (state !== this.#state) {
      this.#state = state;
      this.emit('state', this.progress());
    }
  }

  /** Run the engines once at the end of this turn (after a burst of events). */
  #pumpSoon(): void {
    if (this.#pumpQueued || !this.#running) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (!this.#running) return;
    this.#guard(() => this.#poll());
  }

  #poll(): void {
    const now = this.#clock.now();
    for (const a of this.headers.poll(now)) this.#actHeaders(a);
    if (!this.#blocksPaused) for (const a of this.blocks.poll(now)) this.#actBlocks(a);
  }

  #actHeaders(a: HeaderSyncAction): void {
    switch (a.type) {
      case 'request':
        this.#node.request(a.peer, this.messages.getHeaders, [a.locator, a.stop ?? new Uint8Array(0)]).then(
          (batch) => this.#guard(() => {
            this.headers.onHeaders(a.peer, batch, this.#clock.wallNow(), this.#clock.now());
            this.blocks.onPeerHeight(a.peer, this.headers.peerHeight(a.peer) ?? 0);
            this.#pumpSoon();
          }),
          () => {
            // The connection already scored a timeout or a refusal; the engine moves on.
            this.headers.onFailed(a.peer, this.#clock.now());
            this.#pumpSoon();
          },
        );
        return;
      case 'penalize':
        this.#node.penalize(a.peer, a.reason, a.detail);
        return;
      case 'best':
        this.emit('best', a.header);
        this.#trackState();
        return;
    }
  }

  #actBlocks(a: BlockSyncAction): void {
    switch (a.type) {
      case 'request':
        this.#node.request(a.peer, this.messages.getBlocks, [a.start, a.count, a.anchor]).then(
          (batch) => this.#guard(() => {
            const done = this.blocks.onBlocks(a.id, batch, this.#clock.now());
            if (done !== undefined) this.emit('blocks:received', done);
            this.#importSoon();
            this.#pumpSoon();
          }),
          () => {
            this.blocks.onFailed(a.id);
            this.#pumpSoon();
          },
        );
        return;
      case 'penalize':
        this.#node.penalize(a.peer, a.reason, a.detail);
        return;
    }
  }

  /** Import queued blocks in slices of at most `importSliceMs`, yielding between them. */
  #importSoon(): void {
    if (this.#importing || !this.#running) return;
    this.#importing = true;
    setImmediate(() => {
      this.#importing = false;
      this.#guard(() => this.#importSlice());
    });
  }

  #importSlice(): void {
    const until = this.#clock.now() + this.#sliceMs;
    // At least one block a slice, so a slow import still moves.
    let first = true;
    const more = (): boolean => {
      const go = first || this.#clock.now() < until;
      first = false;
      return go;
    };
    for (const b of this.blocks.importQueued(Number.MAX_SAFE_INTEGER, more)) {
      if (b.result.connected.length > 0 || b.result.disconnected.length > 0) this.emit('imported', b.result, b.peer, b.hash);
    }
    const tip = this.chain.tip();
    if (hex(tip.hash) !== this.#tipHash) {
      this.#tipHash = hex(tip.hash);
      this.emit('tip', tip);
    }
    // Penalties found while importing, and room in the window for more requests.
    this.#poll();
    if (this.blocks.queued > 0) this.#importSoon();
    else this.#trackState();
  }

  /** Run `fn`; a local failure (the chain's store) stops the sync instead of crashing the process. */
  #guard(fn: () => void): void {
    if (!this.#running) return;
    try {
      fn();
    } catch (e) {
      this.stop();
      this.emit('fault', e instanceof Error ? e : new Error(String(e)));
    }
  }

  #loadRecord(): ProgressRecord | undefined {
    if (this.#progressPath === undefined) return undefined;
    try {
      const v = JSON.parse(readFileSync(this.#progressPath, 'utf8')) as Partial<ProgressRecord>;
      if (Number.isSafeInteger(v.startedAtMs) && Number.isSafeInteger(v.startHeight)) return { startedAtMs: v.startedAtMs!, startHeight: v.startHeight! };
    } catch {
      // Missing or unreadable: a record only improves the report, so the sync starts a new one.
    }
    return undefined;
  }

  #saveRecord(r: ProgressRecord | undefined): void {
    this.#record = r;
    const file = this.#progressPath;
    if (file === undefined) return;
    try {
      if (r === undefined) {
        rmSync(file, { force: true });
      } else {
        writeFileSync(`${file}.tmp`, `${JSON.stringify(r)}\n`);
        renameSync(`${file}.tmp`, file);
      }
    } catch {
      // The record is a convenience for the report; a full or read-only disk must not stop the sync.
    }
  }
}
