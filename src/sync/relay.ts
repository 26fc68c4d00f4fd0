/**
 * Transaction and block relay (docs/spec/relay.md), sans-I/O: the engine
 * keeps what each peer knows, decides what to announce, fetch and serve, and
 * judges what peers send; the caller feeds it messages (`on*`) with the time,
 * carries out the actions `poll` returns (sends, requests, penalties, events)
 * and calls `poll` again by `nextDeadline`.
 *
 * Theory of operation:
 * - **Items** are transactions (kind 1, by id) and blocks (kind 2, by hash),
 *   keyed inside the engine by a salted 53-bit SipHash of kind and hash (a
 *   number: small in sets, and an attacker without the salt cannot make two
 *   items share a key).
 * - **Known inventory** per peer (bounded, oldest forgotten first): what it
 *   announced, sent or asked for, and what we announced or sent to it.
 *   Nothing is announced to a peer that knows it, and compact blocks prefill
 *   exactly the transactions the peer is not known to have.
 * - **Recently seen** (bounded, with a time to live): every transaction
 *   received, submitted or mined. A seen transaction is not fetched again, so
 *   each is requested, validated and relayed at most once.
 * - **Announcements** are batched: transactions accepted into the mempool
 *   wait in each peer's queue and go out as one INV per `trickleMs` per peer.
 * - **Fetching**: an announced item we lack gets one fetch entry listing up
 *   to `maxAnnouncers` peers that announced it; at most one GETDATA for it is
 *   out at a time, at most `maxInflightPerPeer` items per peer. A request
 *   not answered within its timeout (SYNC_STALL for the peer), or answered
 *   with NOTFOUND, moves to the next announcer; an item nobody else announced
 *   is forgotten until announced again. A late answer is still taken.
 * - **Rate caps** per peer: inventory entries (INV, GETDATA, NOTFOUND) and
 *   pushed transactions each draw from a token bucket; a message over the cap
 *   is dropped and the peer penalised with SYNC_RELAY_FLOOD.
 * - **Judging transactions**: a TX nobody asked for is SYNC_UNREQUESTED; one
 *   that does not decode or fails the chain's pre-admission check is
 *   CHAIN_BAD_TX and is not relayed.
 * - **Blocks** go out as compact blocks (compact.ts) to peers not known to
 *   have them, when the chain connects them (`onChainChanged`) and the node
 *   is caught up (its tip is its best header), at most
 *   `maxCompactAnnounce` at a time (more: the tip as a block INV). A compact
 *   block whose parent header is stored is validated, its header stored,
 *   rebuilt from the mempool, the missing transactions asked for with
 *   GETBLOCKTXN, assembled and checked by the chain, imported, and relayed
 *   on. A collision, a failed rebuild or a failed GETBLOCKTXN falls back to
 *   fetching the full block (GETDATA); a rebuild that fails after the peer's
 *   own GETBLOCKTXN answer is SYNC_BAD_COMPACT. A block whose parent header is
 *   unknown is reported (`announced`) for headers-first sync to follow.
 */
import { hex, sameHash, type ChainAdapter, type ChainBlock, type ChainHeader, type ChainTx, type Hash, type HeaderEntry, type ImportResult } from '../chain/adapter.ts';
import { isPqnetError, PqnetError, type Reason } from '../core/errors.ts';
import { systemRandom, type Random } from '../core/random.ts';
import { SeenSet } from '../core/seen.ts';
import { TokenBucket } from '../core/token-bucket.ts';
import { COMPACT_NONCE_BYTES, CompactBuilder, sip53, sipKey, SIPHASH_KEY_BYTES, startRebuild, type CompactBlock, type PartialBlock, type SipKey } from './compact.ts';
import type { Mempool } from './mempool.ts';
import { InvKind, MAX_INV_ENTRIES, maxBlockTxs, type InvItem } from './relay-messages.ts';

export interface RelayEngineOptions {
  /** Interval between two INV batches to one peer. */
  readonly trickleMs: number;
  /** Deadline of a GETDATA for a transaction, and for a block. */
  readonly txTimeoutMs: number;
  readonly blockTimeoutMs: number;
  /** Items requested from one peer and not yet answered. */
  readonly maxInflightPerPeer: number;
  /** Items announced to us and not yet fetched, in all and per announcing peer. */
  readonly maxPendingFetches: number;
  readonly maxPendingPerPeer: number;
  /** Peers remembered per item as sources to fall back on. */
  readonly maxAnnouncers: number;
  /** Items remembered per peer as known to it. */
  readonly knownPerPeer: number;
  /** Recently seen transactions: how many, and for how long. */
  readonly seenMax: number;
  readonly seenTtlMs: number;
  /** Inventory entries (INV, GETDATA, NOTFOUND) one peer may send: rate per second and burst. */
  readonly invEntriesPerSecond: number;
  readonly invEntriesBurst: number;
  /** Transactions one peer may push (TX): rate per second and burst. */
  readonly txsPerSecond: number;
  readonly txsBurst: number;
  /** Transactions waiting in one peer's announcement queue. */
  readonly maxAnnounceQueue: number;
  /** Mempool entries re-checked per poll after a block. */
  readonly recheckPerPoll: number;
  /** Compact blocks being rebuilt at once (waiting for GETBLOCKTXN answers). */
  readonly maxPartialBlocks: number;
  /** Blocks served per GETDATA (the rest: NOTFOUND). */
  readonly maxGetDataBlocks: number;
  /** Blocks connected at once that are announced compactly; beyond it only the tip, by INV. */
  readonly maxCompactAnnounce: number;
}

export const DEFAULT_RELAY_OPTIONS: RelayEngineOptions = Object.freeze({
  trickleMs: 250,
  txTimeoutMs: 10_000,
  blockTimeoutMs: 20_000,
  maxInflightPerPeer: 500,
  maxPendingFetches: 20_000,
  maxPendingPerPeer: 5_000,
  maxAnnouncers: 8,
  knownPerPeer: 10_000,
  seenMax: 100_000,
  seenTtlMs: 10 * 60_000,
  invEntriesPerSecond: 2_000,
  invEntriesBurst: 10_000,
  txsPerSecond: 1_000,
  txsBurst: 1_000,
  maxAnnounceQueue: 10_000,
  recheckPerPoll: 2_000,
  maxPartialBlocks: 4,
  maxGetDataBlocks: 8,
  maxCompactAnnounce: 8,
});

/** Remembered late answers per peer (requests that timed out). */
const LATE_PER_PEER = 1_000;
/** Decoded blocks kept for serving GETBLOCKTXN and announcing. */
const BLOCK_CACHE = 4;
/** While a mempool re-check pass is under way, polls come this often. */
const RECHECK_SPACING_MS = 5;

export type RelayAction =
  | { readonly type: 'inv' | 'getdata' | 'notfound'; readonly peer: string; readonly items: InvItem[] }
  | { readonly type: 'tx' | 'block'; readonly peer: string; readonly bytes: Uint8Array }
  | { readonly type: 'compact'; readonly peer: string; readonly message: CompactBlock }
  | { readonly type: 'getblocktxn'; readonly peer: string; readonly hash: Hash; readonly indexes: number[] }
  | { readonly type: 'penalize'; readonly peer: string; readonly reason: Reason; readonly detail: string }
  /** A transaction entered the mempool (`from`: the peer it came from, undefined if submitted locally). */
  | { readonly type: 'accepted'; readonly tx: ChainTx; readonly from: string | undefined }
  /** A block received by relay was imported and connected blocks. */
  | { readonly type: 'imported'; readonly peer: string; readonly header: ChainHeader; readonly result: ImportResult }
  /** A peer announced a block whose parent header (or, for an INV, whose header) we do not have: for headers-first sync. */
  | { readonly type: 'announced'; readonly peer: string; readonly height: number | undefined; readonly hash: Hash };

export interface RelayEngineStats {
  readonly peers: number;
  readonly txsReceived: number;
  readonly txsAccepted: number;
  readonly txsRejected: number;
  readonly txsAnnounced: number;
  readonly txsServed: number;
  readonly txsRequested: number;
  readonly pendingFetches: number;
  readonly inflight: number;
  readonly compactSent: number;
  readonly compactReceived: number;
  readonly compactRebuilt: number;
  /** Compact blocks that needed a GETBLOCKTXN round trip. */
  readonly compactWithMissing: number;
  /** Times a compact block was given up for the full block. */
  readonly compactFallbacks: number;
  readonly blockTxnRequested: number;
  /** Transaction bytes received in GETBLOCKTXN answers. */
  readonly blockTxnBytes: number;
  readonly blocksRequested: number;
  readonly fullBlocksReceived: number;
  readonly blocksServed: number;
}

/** A set of item keys that forgets its oldest member beyond `cap`. */
class BoundedSet {
  readonly #s = new Set<number>();
  readonly #cap: number;

  constructor(cap: number) {
    this.#cap = cap;
  }

  has(k: number): boolean {
    return this.#s.has(k);
  }

  add(k: number): void {
    if (this.#s.has(k)) return;
    this.#s.add(k);
    if (this.#s.size > this.#cap) this.#s.delete(this.#s.values().next().value!);
  }

  delete(k: number): boolean {
    return this.#s.delete(k);
  }
}

interface PeerState {
  readonly id: string;
  readonly known: BoundedSet;
  /** Our requests it timed out on: a late answer is taken without penalty. */
  readonly late: BoundedSet;
  readonly invBucket: TokenBucket;
  readonly txBucket: TokenBucket;
  /** Transactions to announce at its next trickle: key → id. */
  readonly queue: Map<number, Hash>;
  nextFlushAt: number;
  /** Items requested from it and not answered. */
  inflight: number;
  /** Fetch entries that list it as an announcer. */
  announced: number;
}

interface Fetch {
  readonly kind: InvKind;
  readonly hash: Hash;
  readonly key: number;
  readonly announcers: string[];
  requestedFrom: string | undefined;
  /** A compact rebuild of this block is under way: do not request it. */
  held: boolean;
}

interface Rebuild {
  readonly partial: PartialBlock;
  readonly peer: string;
}

export class RelayEngine {
  readonly options: RelayEngineOptions;
  readonly mempool: Mempool;
  readonly #chain: ChainAdapter;
  readonly #random: Random;
  readonly #salt: SipKey;
  readonly #scratch = new Uint8Array(33);
  readonly #maxTxs: number;
  readonly #peers = new Map<string, PeerState>();
  readonly #seen: SeenSet<number>;
  readonly #fetches = new Map<number, Fetch>();
  /** Fetch entries waiting for a request. */
  readonly #unassigned = new Set<number>();
  /** Requests out, in the order sent (so in deadline order per kind): key → deadline. */
  readonly #inflightTx = new Map<number, number>();
  readonly #inflightBlock = new Map<number, number>();
  readonly #partials = new Map<number, Rebuild>();
  readonly #blocks = new Map<string, ChainBlock>();
  #actions: RelayAction[] = [];
  #s = {
    txsReceived: 0, txsAccepted: 0, txsRejected: 0, txsAnnounced: 0, txsServed: 0, txsRequested: 0,
    compactSent: 0, compactReceived: 0, compactRebuilt: 0, compactWithMissing: 0, compactFallbacks: 0,
    blockTxnRequested: 0, blockTxnBytes: 0, blocksRequested: 0, fullBlocksReceived: 0, blocksServed: 0,
  };

  constructor(chain: ChainAdapter, mempool: Mempool, options: Partial<RelayEngineOptions> = {}, random: Random = systemRandom) {
    this.#chain = chain;
    this.mempool = mempool;
    this.options = Object.freeze({ ...DEFAULT_RELAY_OPTIONS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as RelayEngineOptions);
    this.#random = random;
    this.#salt = sipKey(random.bytes(SIPHASH_KEY_BYTES));
    this.#seen = new SeenSet<number>(this.options.seenMax, this.options.seenTtlMs);
    this.#maxTxs = maxBlockTxs(chain.limits);
  }

  // ================================================================ peers

  addPeer(peer: string, now: number): void {
    if (this.#peers.has(peer)) return;
    const o = this.options;
    this.#peers.set(peer, {
      id: peer,
      known: new BoundedSet(o.knownPerPeer),
      late: new BoundedSet(LATE_PER_PEER),
      invBucket: new TokenBucket(o.invEntriesPerSecond, o.invEntriesBurst, now),
      txBucket: new TokenBucket(o.txsPerSecond, o.txsBurst, now),
      queue: new Map(),
      nextFlushAt: now,
      inflight: 0,
      announced: 0,
    });
  }

  /** The peer is gone: its requests move to other announcers, its rebuilds fall back to full blocks. */
  removePeer(peer: string): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    for (const f of [...this.#fetches.values()]) {
      if (f.requestedFrom === peer) this.#unrequest(f);
      this.#dropAnnouncer(f, p);
    }
    for (const [key, e] of [...this.#partials]) {
      if (e.peer !== peer) continue;
      this.#partials.delete(key);
      const f = this.#fetches.get(key);
      if (f === undefined) continue;
      this.#s.compactFallbacks++;
      this.#release(f);
    }
    this.#peers.delete(peer);
  }

  peers(): string[] {
    return [...this.#peers.keys()];
  }

  /** Whether `peer` is known to have the item (tests, diagnostics). */
  knows(peer: string, kind: InvKind, hash: Hash): boolean {
    return this.#peers.get(peer)?.known.has(this.#key(kind, hash)) === true;
  }

  // ================================================================ inventory messages

  onInv(peer: string, items: readonly InvItem[], now: number): void {
    const p = this.#peerFor(peer, 'inv', items.length, now);
    if (p === undefined) return;
    let unknownBlock: Hash | undefined;
    for (const [kind, hash] of items) {
      const key = this.#key(kind, hash);
      p.known.add(key);
      if (kind === InvKind.TX) {
        if (!this.#seen.has(key, now) && !this.mempool.has(hash)) this.#want(p, kind, hash, key);
        continue;
      }
      const h = this.#chain.header(hash);
      if (h?.hasBlock === true) continue;
      if (h === undefined) unknownBlock ??= hash;
      else this.#want(p, kind, hash, key);
    }
    // Headers-first sync asks the peer for what follows; once per message is enough for that.
    if (unknownBlock !== undefined) this.#push({ type: 'announced', peer, height: undefined, hash: unknownBlock });
  }

  onGetData(peer: string, items: readonly InvItem[], now: number): void {
    const p = this.#peerFor(peer, 'inv', items.length, now);
    if (p === undefined) return;
    const missing: InvItem[] = [];
    let blocks = 0;
    for (const [kind, hash] of items) {
      const key = this.#key(kind, hash);
      if (kind === InvKind.TX) {
        const tx = this.mempool.get(hash);
        if (tx === undefined) {
          missing.push([kind, hash]);
          continue;
        }
        p.known.add(key);
        this.#s.txsServed++;
        this.#push({ type: 'tx', peer, bytes: tx.bytes });
        continue;
      }
      const bytes = blocks < this.options.maxGetDataBlocks ? this.#chain.block(hash) : undefined;
      if (bytes === undefined) {
        missing.push([kind, hash]);
        continue;
      }
      blocks++;
      p.known.add(key);
      this.#s.blocksServed++;
      this.#push({ type: 'block', peer, bytes });
    }
    if (missing.length > 0) this.#push({ type: 'notfound', peer, items: missing });
  }

  onNotFound(peer: string, items: readonly InvItem[], now: number): void {
    const p = this.#peerFor(peer, 'inv', items.length, now);
    if (p === undefined) return;
    for (const [kind, hash] of items) {
      const f = this.#fetches.get(this.#key(kind, hash));
      if (f === undefined || f.requestedFrom !== peer) continue;
      this.#unrequest(f);
      this.#dropAnnouncer(f, p);
    }
  }

  // ================================================================ transactions

  onTx(peer: string, bytes: Uint8Array, now: number): void {
    const p = this.#peerFor(peer, 'tx', 1, now);
    if (p === undefined) return;
    this.#s.txsReceived++;
    let tx: ChainTx;
    try {
      tx = this.#chain.decodeTx(bytes);
    } catch (e) {
      this.#s.txsRejected++;
      return this.#blame(peer, e, 'transaction');
    }
    const key = this.#key(InvKind.TX, tx.id);
    if (!this.#answered(p, key)) {
      this.#penalize(peer, 'SYNC_UNREQUESTED', `transaction ${hex(tx.id)} was not requested`);
      return;
    }
    p.known.add(key);
    if (this.#seen.has(key, now) || this.mempool.has(tx.id)) return; // mined or taken meanwhile
    this.#seen.add(key, now);
    let result;
    try {
      result = this.mempool.add(tx);
    } catch (e) {
      this.#s.txsRejected++;
      return this.#blame(peer, e, `transaction ${hex(tx.id)}`);
    }
    if (result === 'added') this.#accepted(tx, key, peer);
  }

  /**
   * A local transaction: pre-admission, mempool, announcement to every peer.
   * Returns its id; throws CHAIN_BAD_TX if it does not decode, fails the
   * check, or the mempool has no room for it.
   */
  submitTx(bytes: Uint8Array, now: number): Hash {
    const tx = this.#chain.decodeTx(bytes);
    const key = this.#key(InvKind.TX, tx.id);
    const result = this.mempool.add(tx);
    if (result === 'full') throw new PqnetError('CHAIN_BAD_TX', `transaction ${hex(tx.id)}: the mempool is full and ranks it below every entry`);
    this.#seen.add(key, now);
    if (result === 'added') this.#accepted(tx, key, undefined);
    return tx.id;
  }

  // ================================================================ blocks

  onBlock(peer: string, bytes: Uint8Array, now: number, wallNow: number): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    let block: ChainBlock;
    try {
      block = this.#chain.decodeBlock(bytes);
    } catch (e) {
      return this.#blame(peer, e, 'block');
    }
    const key = this.#key(InvKind.BLOCK, block.header.hash);
    if (!this.#answered(p, key)) {
      this.#penalize(peer, 'SYNC_UNREQUESTED', `block ${hex(block.header.hash)} was not requested`);
      return;
    }
    p.known.add(key);
    this.#s.fullBlocksReceived++;
    const stored = this.#chain.header(block.header.hash);
    if (stored?.hasBlock === true) return;
    if (stored === undefined) {
      const parent = this.#chain.header(block.header.parent);
      if (parent === undefined) {
        this.#push({ type: 'announced', peer, height: block.header.height, hash: block.header.hash });
        return;
      }
      if (!this.#storeHeader(peer, block.header, parent, wallNow)) return;
    }
    this.#import(peer, block, now);
  }

  onCompactBlock(peer: string, msg: CompactBlock, now: number, wallNow: number): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    this.#s.compactReceived++;
    let header: ChainHeader;
    try {
      header = this.#chain.decodeHeader(msg[0]);
    } catch (e) {
      return this.#blame(peer, e, 'compact block header');
    }
    const key = this.#key(InvKind.BLOCK, header.hash);
    p.known.add(key);
    const stored = this.#chain.header(header.hash);
    if (stored?.hasBlock === true) return;
    const parent = this.#chain.header(header.parent);
    if (stored === undefined && parent === undefined) {
      this.#push({ type: 'announced', peer, height: header.height, hash: header.hash });
      return;
    }
    const f = this.#fetches.get(key);
    if (f !== undefined) {
      // Being rebuilt or fetched already: one more source to fall back on.
      this.#addAnnouncer(f, p);
      return;
    }
    if (stored === undefined && !this.#storeHeader(peer, header, parent!, wallNow)) return;
    const r = startRebuild(header, msg, this.mempool.txs(), this.#maxTxs);
    switch (r.kind) {
      case 'malformed':
        this.#penalize(peer, 'SYNC_BAD_COMPACT', r.detail);
        return;
      case 'collision':
        this.#fetchFull(p, header.hash, key);
        return;
      case 'complete':
        this.#finish(p, header, r.txs, false, now);
        return;
      case 'missing':
        if (this.#partials.size >= this.options.maxPartialBlocks) {
          this.#fetchFull(p, header.hash, key);
          return;
        }
        this.#partials.set(key, { partial: r.partial, peer });
        this.#fetch(InvKind.BLOCK, header.hash, key, p).held = true;
        this.#s.compactWithMissing++;
        this.#s.blockTxnRequested += r.partial.missing.length;
        this.#push({ type: 'getblocktxn', peer, hash: header.hash, indexes: [...r.partial.missing] });
        return;
    }
  }

  /** The answer to our GETBLOCKTXN for `hash`. */
  onBlockTxn(peer: string, hash: Hash, txs: readonly Uint8Array[], now: number): void {
    const key = this.#key(InvKind.BLOCK, hash);
    const e = this.#partials.get(key);
    const p = this.#peers.get(peer);
    if (e === undefined || e.peer !== peer || p === undefined) return;
    this.#partials.delete(key);
    for (const t of txs) this.#s.blockTxnBytes += t.length;
    const filled = e.partial.fill(txs);
    if (filled === undefined) {
      this.#penalize(peer, 'SYNC_BAD_RESPONSE', `${txs.length} transactions for ${e.partial.missing.length} indexes`);
      this.#fetchFull(p, hash, key);
      return;
    }
    this.#finish(p, e.partial.header, filled, true, now);
  }

  /** Our GETBLOCKTXN for `hash` failed (timeout, error answer, closed): fetch the full block from another announcer. */
  onBlockTxnFailed(peer: string, hash: Hash): void {
    const key = this.#key(InvKind.BLOCK, hash);
    const e = this.#partials.get(key);
    if (e === undefined || e.peer !== peer) return;
    this.#partials.delete(key);
    const f = this.#fetches.get(key);
    const p = this.#peers.get(peer);
    if (f === undefined) return;
    this.#s.compactFallbacks++;
    if (p !== undefined) this.#dropAnnouncer(f, p);
    this.#release(f);
  }

  /** The peer has block `hash` (it sent it to us by other means, e.g. block download): it is not announced to it. */
  markBlockKnown(peer: string, hash: Hash): void {
    this.#peers.get(peer)?.known.add(this.#key(InvKind.BLOCK, hash));
  }

  /** Serve a GETBLOCKTXN: the block's transactions at `indexes`. Throws INVALID_DATA for a block we do not hold or indexes that do not fit it. */
  serveBlockTxn(peer: string, hash: Hash, indexes: readonly number[]): Uint8Array[] {
    const block = this.#blockByHash(hash);
    if (block === undefined) throw new PqnetError('INVALID_DATA', `GETBLOCKTXN for block ${hex(hash)}, which we do not hold`);
    let last = -1;
    for (const i of indexes) {
      if (i <= last || i >= block.txs.length) throw new PqnetError('INVALID_DATA', `GETBLOCKTXN index ${i} after ${last} in a block of ${block.txs.length}`);
      last = i;
    }
    this.markBlockKnown(peer, hash);
    return indexes.map((i) => block.txs[i]!);
  }

  /** Announce a stored block compactly to every peer not known to have it. Throws INVALID_ARGUMENT if the block is not stored. */
  announceBlock(hash: Hash): number {
    const block = this.#blockByHash(hash);
    if (block === undefined) throw new PqnetError('INVALID_ARGUMENT', `block ${hex(hash)} is not stored`);
    const key = this.#key(InvKind.BLOCK, hash);
    const txKeys = block.txIds.map((id) => this.#key(InvKind.TX, id));
    let builder: CompactBuilder | undefined;
    let n = 0;
    for (const p of this.#peers.values()) {
      if (p.known.has(key)) continue;
      p.known.add(key);
      n++;
      if (block.txs.length > this.#maxTxs) {
        this.#push({ type: 'inv', peer: p.id, items: [[InvKind.BLOCK, hash]] });
        continue;
      }
      builder ??= new CompactBuilder(block, this.#random.bytes(COMPACT_NONCE_BYTES));
      this.#s.compactSent++;
      this.#push({ type: 'compact', peer: p.id, message: builder.build((i) => !p.known.has(txKeys[i]!)) });
    }
    return n;
  }

  /**
   * The validated chain changed (`importBlock`'s result, or a mined block):
   * transactions of connected blocks leave the mempool and are remembered as
   * seen, those of disconnected blocks come back if still admissible, a
   * re-check pass starts, and the connected blocks are announced — unless the
   * node is catching up (its best header is not its tip: the blocks are old
   * news, and announcing each would flood peers during a download).
   */
  /** `announce` false: the node knows it is behind its peers (catching up), so the blocks are not announced. */
  onChainChanged(result: ImportResult, now: number, announce = true): void {
    const exclude = new Set<string>();
    for (const hash of result.connected) {
      const blockKey = this.#key(InvKind.BLOCK, hash);
      const bf = this.#fetches.get(blockKey);
      if (bf !== undefined) this.#deleteFetch(bf);
      this.#partials.delete(blockKey);
      const block = this.#blockByHash(hash);
      if (block === undefined) continue;
      this.mempool.blockConnected(block.txIds);
      for (const id of block.txIds) {
        exclude.add(hex(id));
        const key = this.#key(InvKind.TX, id);
        this.#seen.add(key, now);
        const f = this.#fetches.get(key);
        if (f !== undefined && f.requestedFrom === undefined) this.#deleteFetch(f);
      }
    }
    const back: Uint8Array[] = [];
    for (const hash of [...result.disconnected].reverse()) back.push(...(this.#blockByHash(hash)?.txs ?? []));
    if (back.length > 0) this.mempool.readmit(back, exclude);
    this.mempool.recheck(this.options.recheckPerPoll);
    const connected = result.connected;
    if (connected.length === 0 || !announce) return;
    // Catching up (headers ahead of blocks): the blocks are old news to the network; only a caught-up tip is announced.
    if (!sameHash(this.#chain.bestHeader().hash, this.#chain.tip().hash)) return;
    if (connected.length <= this.options.maxCompactAnnounce) {
      for (const hash of connected) this.announceBlock(hash);
      return;
    }
    const tip = connected[connected.length - 1]!;
    const key = this.#key(InvKind.BLOCK, tip);
    for (const p of this.#peers.values()) {
      if (p.known.has(key)) continue;
      p.known.add(key);
      this.#push({ type: 'inv', peer: p.id, items: [[InvKind.BLOCK, tip]] });
    }
  }

  // ================================================================ time

  /** Requests, announcements, penalties and events to carry out now, in order. */
  poll(now: number): RelayAction[] {
    this.#seen.prune(now);
    this.#expire(now);
    this.#assign(now);
    this.#trickle(now);
    if (this.mempool.recheckPending > 0) this.mempool.recheck(this.options.recheckPerPoll);
    const out = this.#actions;
    this.#actions = [];
    return out;
  }

  /** When `poll` next has something to do (undefined: only when a message comes). */
  nextDeadline(now: number): number | undefined {
    let at: number | undefined;
    const consider = (t: number | undefined): void => {
      if (t !== undefined && (at === undefined || t < at)) at = t;
    };
    if (this.#actions.length > 0) consider(now);
    for (const p of this.#peers.values()) if (p.queue.size > 0) consider(Math.max(now, p.nextFlushAt));
    consider(this.#inflightTx.values().next().value);
    consider(this.#inflightBlock.values().next().value);
    if (this.mempool.recheckPending > 0) consider(now + RECHECK_SPACING_MS);
    return at;
  }

  stats(): RelayEngineStats {
    return { ...this.#s, peers: this.#peers.size, pendingFetches: this.#fetches.size, inflight: this.#inflightTx.size + this.#inflightBlock.size };
  }

  // ================================================================ internals

  /** The item's key: SipHash(salt, kind || hash), 53 bits (hashes are 32 bytes: the schemas and the adapter say so). */
  #key(kind: number, hash: Hash): number {
    const s = this.#scratch;
    s[0] = kind;
    s.set(hash.subarray(0, 32), 1);
    return sip53(this.#salt, s);
  }

  #push(a: RelayAction): void {
    this.#actions.push(a);
  }

  #penalize(peer: string, reason: Reason, detail: string): void {
    this.#push({ type: 'penalize', peer, reason, detail });
  }

  /**
   * Whether what `p` sent answers our request: the one out to it, or one that
   * timed out (a late answer). The fetch entry is settled, unless another
   * peer's request for it is out (that answer will find the item seen).
   */
  #answered(p: PeerState, key: number): boolean {
    const f = this.#fetches.get(key);
    const requested = f?.requestedFrom === p.id;
    if (!requested && !p.late.delete(key)) return false;
    if (f !== undefined && (requested || f.requestedFrom === undefined)) this.#deleteFetch(f);
    return true;
  }

  /** The adapter's CHAIN_* verdict becomes the peer's penalty; anything else is a local failure and propagates. */
  #blame(peer: string, e: unknown, what: string): void {
    if (!isPqnetError(e) || !e.code.startsWith('CHAIN_')) throw e;
    this.#penalize(peer, e.code, `${what}: ${e.message}`);
  }

  /** The peer, if it is ours and its bucket covers `cost`; over the cap the message is dropped and the peer penalised. */
  #peerFor(peer: string, bucket: 'inv' | 'tx', cost: number, now: number): PeerState | undefined {
    const p = this.#peers.get(peer);
    if (p === undefined) return undefined;
    if ((bucket === 'inv' ? p.invBucket : p.txBucket).take(now, cost)) return p;
    this.#penalize(peer, 'SYNC_RELAY_FLOOD', bucket === 'inv' ? `${cost} inventory entries over ${this.options.invEntriesPerSecond}/s` : `pushed transactions over ${this.options.txsPerSecond}/s`);
    return undefined;
  }

  #accepted(tx: ChainTx, key: number, from: string | undefined): void {
    this.#s.txsAccepted++;
    this.#push({ type: 'accepted', tx, from });
    for (const p of this.#peers.values()) {
      if (p.id === from || p.known.has(key) || p.queue.size >= this.options.maxAnnounceQueue) continue;
      p.queue.set(key, tx.id);
    }
  }

  /** Note that `p` announced an item we lack: a new fetch entry, or one more announcer for an existing one. */
  #want(p: PeerState, kind: InvKind, hash: Hash, key: number): void {
    const f = this.#fetches.get(key);
    if (f !== undefined) {
      this.#addAnnouncer(f, p);
      return;
    }
    if (this.#fetches.size >= this.options.maxPendingFetches || p.announced >= this.options.maxPendingPerPeer) return;
    this.#fetch(kind, hash, key, p);
  }

  #fetch(kind: InvKind, hash: Hash, key: number, p: PeerState): Fetch {
    let f = this.#fetches.get(key);
    if (f === undefined) {
      f = { kind, hash: hash.slice(), key, announcers: [], requestedFrom: undefined, held: false };
      this.#fetches.set(key, f);
      this.#unassigned.add(key);
    }
    this.#addAnnouncer(f, p);
    return f;
  }

  #addAnnouncer(f: Fetch, p: PeerState): void {
    if (f.announcers.includes(p.id) || f.announcers.length >= this.options.maxAnnouncers) return;
    f.announcers.push(p.id);
    p.announced++;
  }

  /** Take `p` off the item's sources; an item left without any (and not being rebuilt) is forgotten. */
  #dropAnnouncer(f: Fetch, p: PeerState): void {
    const i = f.announcers.indexOf(p.id);
    if (i >= 0) {
      f.announcers.splice(i, 1);
      p.announced--;
    }
    if (f.announcers.length === 0 && !f.held && f.requestedFrom === undefined) this.#deleteFetch(f);
  }

  /** A request is over (answered or not): the peer's slot is free and the item may be requested again. */
  #unrequest(f: Fetch): void {
    const from = f.requestedFrom;
    if (from === undefined) return;
    f.requestedFrom = undefined;
    (f.kind === InvKind.TX ? this.#inflightTx : this.#inflightBlock).delete(f.key);
    const p = this.#peers.get(from);
    if (p !== undefined) p.inflight--;
    this.#unassigned.add(f.key);
  }

  #deleteFetch(f: Fetch): void {
    this.#unrequest(f);
    for (const id of f.announcers) {
      const p = this.#peers.get(id);
      if (p !== undefined) p.announced--;
    }
    f.announcers.length = 0;
    this.#fetches.delete(f.key);
    this.#unassigned.delete(f.key);
  }

  /** A held block fetch is released for a full download (or forgotten if nobody can serve it). */
  #release(f: Fetch): void {
    f.held = false;
    if (f.announcers.length === 0 && f.requestedFrom === undefined) this.#deleteFetch(f);
    else this.#unassigned.add(f.key);
  }

  /** Give up the compact form: fetch the full block, from `p` among the others. */
  #fetchFull(p: PeerState, hash: Hash, key: number): void {
    this.#s.compactFallbacks++;
    this.#partials.delete(key);
    this.#release(this.#fetch(InvKind.BLOCK, hash, key, p));
  }

  #storeHeader(peer: string, header: ChainHeader, parent: HeaderEntry, wallNow: number): boolean {
    try {
      this.#chain.validateHeader(header, parent, wallNow);
      this.#chain.storeHeaders([header]);
      return true;
    } catch (e) {
      this.#blame(peer, e, 'header');
      return false;
    }
  }

  /** A rebuilt block: assemble and check it, then import it; a failure falls back to the full block. */
  #finish(p: PeerState, header: ChainHeader, txs: Uint8Array[], viaBlockTxn: boolean, now: number): void {
    const key = this.#key(InvKind.BLOCK, header.hash);
    let block: ChainBlock;
    try {
      block = this.#chain.assembleBlock(header, txs);
    } catch (e) {
      if (!isPqnetError(e) || !e.code.startsWith('CHAIN_')) throw e;
      // Without the peer's own transactions it may be an undetected short-id collision in our mempool: no blame.
      if (viaBlockTxn) this.#penalize(p.id, 'SYNC_BAD_COMPACT', `rebuilt block ${hex(header.hash)} does not match its header: ${e.message}`);
      this.#fetchFull(p, header.hash, key);
      return;
    }
    const f = this.#fetches.get(key);
    if (f !== undefined) this.#deleteFetch(f);
    this.#s.compactRebuilt++;
    this.#import(p.id, block, now);
  }

  #import(peer: string, block: ChainBlock, now: number): void {
    let result: ImportResult;
    try {
      result = this.#chain.importBlock(block);
    } catch (e) {
      this.#blame(peer, e, 'block');
      return;
    }
    this.#cacheBlock(block);
    if (result.connected.length > 0) this.#push({ type: 'imported', peer, header: block.header, result });
    this.onChainChanged(result, now);
  }

  #cacheBlock(block: ChainBlock): void {
    const k = hex(block.header.hash);
    this.#blocks.delete(k);
    this.#blocks.set(k, block);
    if (this.#blocks.size > BLOCK_CACHE) this.#blocks.delete(this.#blocks.keys().next().value!);
  }

  /** A stored block, decoded (from the cache when recent). */
  #blockByHash(hash: Hash): ChainBlock | undefined {
    const cached = this.#blocks.get(hex(hash));
    if (cached !== undefined) return cached;
    const bytes = this.#chain.block(hash);
    if (bytes === undefined) return undefined;
    const block = this.#chain.decodeBlock(bytes);
    this.#cacheBlock(block);
    return block;
  }

  /** Requests past their deadline: the peer is blamed once per poll, and the items move on. */
  #expire(now: number): void {
    const stalled = new Set<string>();
    for (const queue of [this.#inflightTx, this.#inflightBlock]) {
      for (const [key, deadline] of queue) {
        if (deadline > now) break;
        const f = this.#fetches.get(key);
        if (f === undefined || f.requestedFrom === undefined) {
          queue.delete(key);
          continue;
        }
        const p = this.#peers.get(f.requestedFrom);
        this.#unrequest(f);
        if (p === undefined) continue;
        p.late.add(key);
        stalled.add(p.id);
        this.#dropAnnouncer(f, p);
      }
    }
    for (const peer of stalled) this.#penalize(peer, 'SYNC_STALL', 'requested transactions or blocks not delivered in time');
  }

  /** Each waiting item goes to the first of its announcers with room; one GETDATA per peer (in chunks). */
  #assign(now: number): void {
    if (this.#unassigned.size === 0) return;
    const cap = this.options.maxInflightPerPeer;
    let free = 0;
    for (const p of this.#peers.values()) if (p.inflight < cap) free++;
    const batches = new Map<string, InvItem[]>();
    for (const key of this.#unassigned) {
      if (free === 0) break;
      const f = this.#fetches.get(key);
      if (f === undefined || f.requestedFrom !== undefined || f.held) {
        this.#unassigned.delete(key);
        continue;
      }
      let p: PeerState | undefined;
      for (const id of f.announcers) {
        const c = this.#peers.get(id);
        if (c !== undefined && c.inflight < cap) {
          p = c;
          break;
        }
      }
      if (p === undefined) continue;
      this.#unassigned.delete(key);
      f.requestedFrom = p.id;
      p.inflight++;
      if (p.inflight === cap) free--;
      if (f.kind === InvKind.TX) {
        this.#inflightTx.set(key, now + this.options.txTimeoutMs);
        this.#s.txsRequested++;
      } else {
        this.#inflightBlock.set(key, now + this.options.blockTimeoutMs);
        this.#s.blocksRequested++;
      }
      let list = batches.get(p.id);
      if (list === undefined) batches.set(p.id, (list = []));
      list.push([f.kind, f.hash]);
    }
    for (const [peer, items] of batches) {
      for (let i = 0; i < items.length; i += MAX_INV_ENTRIES) this.#push({ type: 'getdata', peer, items: items.slice(i, i + MAX_INV_ENTRIES) });
    }
  }

  /** Each peer whose trickle is due gets one INV batch of what it does not know. */
  #trickle(now: number): void {
    for (const p of this.#peers.values()) {
      if (p.queue.size === 0 || now < p.nextFlushAt) continue;
      const items: InvItem[] = [];
      for (const [key, id] of p.queue) {
        if (p.known.has(key) || !this.mempool.has(id)) continue;
        p.known.add(key);
        items.push([InvKind.TX, id]);
      }
      p.queue.clear();
      p.nextFlushAt = now + this.options.trickleMs;
      this.#s.txsAnnounced += items.length;
      for (let i = 0; i < items.length; i += MAX_INV_ENTRIES) this.#push({ type: 'inv', peer: p.id, items: items.slice(i, i + MAX_INV_ENTRIES) });
    }
  }
}
