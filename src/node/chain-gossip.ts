/**
 * The bridge between the chain (sync, relay, mempool) and gossip
 * (DESIGN.md, Gossip: "blocks, transactions and votes from the sync layer
 * travel through these topics when it is present"). It joins the `txs` and
 * `blocks` topics, judges what arrives on them with the chain, and publishes
 * what reaches the chain by any other path.
 *
 * Transactions (`txs`, payload: the transaction's bytes):
 * - Validator: `decodeTx` fails (CHAIN_BAD_TX) → reject (the sender loses
 *   GOSSIP_INVALID). Held in the mempool → ignore. Then `relay.admitTx`: the
 *   chain's check fails → ignore, counted `inadmissible` (it is judged
 *   against our tip, which an honest sender's may not be: a block that
 *   included it reached us first, a reorganisation; rejecting would cost
 *   every honest neighbour that forwards a copy 10 points, and the topic's
 *   rate cap bounds what a peer can make us check). No room (`'full'`) →
 *   ignore. Admitted → accept: gossip forwards it, and the `tx` event says
 *   `via: 'gossip'`, so it is not published again.
 * - A transaction that enters the mempool any other way (`submitTx`, relay
 *   INV/GETDATA from a peer) is published to `txs`; GOSSIP_DUPLICATE means
 *   gossip has it already (counted, nothing else). One over the topic's
 *   `maxBytes` is left to relay (`tooBig`).
 *
 * Blocks (`blocks`, payload: the encoded block):
 * - Validator: `decodeBlock` fails → reject. Body stored → ignore. Parent
 *   header unknown → ignore, and `sync.onPeerHeight(from, height)` so
 *   headers-first sync fetches the branch from that peer. Else the header is
 *   validated against its parent (`validateHeader`, the clock's wall time)
 *   and stored, and the block imported (`importBlock`); CHAIN_* failures →
 *   reject. Imported and connected → accept; stored but not connected (a
 *   side branch, or its parent's body missing: its transactions are not
 *   checked yet) → ignore, not forwarded, and sync is told the peer's height.
 *   After an import the relay gets `onChainChanged(result, true)`: the mempool
 *   follows the tip, and the relay announces the blocks (compact blocks, as
 *   for any import) to its peers that gossip does not reach.
 * - Blocks connected by other means — mined locally (reported through
 *   `relay.onChainChanged`, its `chain` event), received by relay, or
 *   imported by block download — are published when the node is caught up
 *   (tip = best header, and for downloads `sync.synced` with the last block
 *   the tip: the rule the node service uses for relay announcements): each of
 *   up to `MAX_PUBLISH_BLOCKS` connected at once, else only the tip (peers
 *   fetch what lies below by headers-first sync, as after a relay INV). A
 *   block over the topic's `maxBytes` is left to relay (`tooBig`).
 *
 * One carrier per item and peer. Items gossip carried (published by us or
 * accepted from a peer) are remembered for a while; through
 * `relay.setAnnounceFilter` the relay then drops its INV entries and compact
 * blocks for them to peers subscribed to the item's topic (gossip reaches
 * them), and still announces them to sync peers without gossip. Items gossip
 * did not carry (too big, a publish that found the id already seen as
 * ignored) are announced by relay to everyone. Nothing loops: an item that
 * came by gossip is never published again, and publishing stops at the
 * router's seen cache.
 *
 * Votes: neither `ChainAdapter` nor the sync layer has votes, so none are
 * invented here; `votes` stays an application topic.
 *
 * Known limits: gossip carries full blocks (announce-and-pull above 64 KiB,
 * so each peer receives one copy), where relay's compact blocks would send
 * ~6 bytes per transaction the peer holds. A rejected block costs the sender
 * GOSSIP_INVALID (10 points at default weights), not relay's
 * CHAIN_BAD_BLOCK (100); raise the topic's `invalidWeight` for more. The
 * relay engine counts dropped announcements in `txsAnnounced`; they are in
 * `stats().relaySkipped` here. A gossip peer that ignored a transaction (its
 * mempool was full) is not offered it again by relay INV while it is
 * remembered as carried. `relay.admitTx` runs the chain's check twice (once
 * to tell "not admissible" from "no room"): one more point read on the
 * devchain.
 *
 * Create it after the node's Relay and ChainSync, with the node's clock.
 */
import { hex, sameHash, type ChainAdapter, type ChainBlock, type ChainHeader, type ChainTx, type Hash, type ImportResult } from '../chain/adapter.ts';
import { SystemClock, type Clock } from '../core/clock.ts';
import { isPqnetError } from '../core/errors.ts';
import { SeenSet } from '../core/seen.ts';
import type { Validation } from '../gossip/router.ts';
import { InvKind } from '../sync/relay-messages.ts';
import type { AdmitResult } from '../sync/mempool.ts';
import type { ChainSync } from './chain-sync.ts';
import type { Gossip } from './gossip.ts';
import type { Logger } from './log.ts';
import type { Relay } from './relay.ts';

export const TXS_TOPIC = 'txs';
export const BLOCKS_TOPIC = 'blocks';
/** The carrier name in the relay's `tx` event for transactions admitted from gossip. */
export const GOSSIP_VIA = 'gossip';
/** Blocks connected at once that are published one by one; beyond, only the tip (relay's `maxCompactAnnounce`). */
export const MAX_PUBLISH_BLOCKS = 8;
/**
 * Transactions gossip carried, remembered for the relay's announce filter (which runs at the
 * relay's next trickle, ~250 ms later): how many (the default mempool's size), how long; a
 * forgotten one is announced by relay as well. Hex keys: at most ~3 MB.
 */
const CARRIED_TXS = 20_000;
const CARRIED_TXS_TTL_MS = 60_000;
/** Blocks gossip carried, likewise. */
const CARRIED_BLOCKS = 1_024;
const CARRIED_BLOCKS_TTL_MS = 10 * 60_000;

export interface ChainGossipOptions {
  readonly chain: ChainAdapter;
  readonly relay: Relay;
  readonly sync: ChainSync;
  /** The node's clock: wall time for header rules, monotonic time for the carried-item memory (default: system). */
  readonly clock?: Clock;
  readonly log?: Logger;
}

export interface ChainTopicStats {
  /** Items we published (they reached the chain by another path). */
  readonly published: number;
  /** Items from peers, by verdict. */
  readonly accepted: number;
  readonly ignored: number;
  readonly rejected: number;
  /** Not published: over the topic's `maxBytes` (left to relay). */
  readonly tooBig: number;
  /** Not published: gossip had seen them already. */
  readonly duplicates: number;
}

export interface ChainGossipStats {
  /** `inadmissible`: ignored because the chain's check refused them (among `ignored`). */
  readonly txs: ChainTopicStats & { readonly inadmissible: number };
  /** `unknownParent`: ignored and handed to headers-first sync (among `ignored`). */
  readonly blocks: ChainTopicStats & { readonly unknownParent: number };
  /** Relay announcements (per peer and item) left to gossip. */
  readonly relaySkipped: number;
  /** Local failures (a store error while publishing). */
  readonly faults: number;
}

type Counters = { -readonly [K in keyof ChainTopicStats]: number };

const counters = (): Counters => ({ published: 0, accepted: 0, ignored: 0, rejected: 0, tooBig: 0, duplicates: 0 });

/** Add to a carried-item memory, dropping what expired (cheap: it stops at the first live entry). */
function remember(set: SeenSet<string>, key: string, now: number): void {
  set.prune(now);
  set.add(key, now);
}

/** The chain's verdict on peer data (CHAIN_*); anything else is a local failure and propagates. */
function chainVerdict(e: unknown): string {
  if (!isPqnetError(e) || !e.code.startsWith('CHAIN_')) throw e;
  return e.message;
}

export class ChainGossip {
  readonly #gossip: Gossip;
  readonly #chain: ChainAdapter;
  readonly #relay: Relay;
  readonly #sync: ChainSync;
  readonly #clock: Clock;
  readonly #log: Logger | undefined;
  readonly #carriedTxs = new SeenSet<string>(CARRIED_TXS, CARRIED_TXS_TTL_MS);
  readonly #carriedBlocks = new SeenSet<string>(CARRIED_BLOCKS, CARRIED_BLOCKS_TTL_MS);
  readonly #txs = { ...counters(), inadmissible: 0 };
  readonly #blocks = { ...counters(), unknownParent: 0 };
  #relaySkipped = 0;
  #faults = 0;
  #running = true;

  readonly #onTx = (tx: ChainTx, _from: string | undefined, via?: string): void => this.#guard(() => this.#publishTx(tx, via));
  readonly #onRelayBlock = (_header: ChainHeader, _from: string, result: ImportResult): void => this.#guard(() => this.#publishConnected(result.connected));
  readonly #onChain = (result: ImportResult, announce: boolean): void => this.#guard(() => {
    if (announce) this.#publishConnected(result.connected);
  });
  readonly #onImported = (result: ImportResult): void => this.#guard(() => {
    const last = result.connected.at(-1);
    if (last !== undefined && this.#sync.synced && sameHash(last, this.#chain.tip().hash)) this.#publishConnected(result.connected);
  });

  /**
   * Joins `txs` and `blocks` on `gossip` with the chain's validators and
   * follows the relay and the sync. Throws GOSSIP_UNKNOWN_TOPIC if the
   * gossip's topic table lacks either topic.
   */
  constructor(gossip: Gossip, options: ChainGossipOptions) {
    this.#gossip = gossip;
    this.#chain = options.chain;
    this.#relay = options.relay;
    this.#sync = options.sync;
    this.#clock = options.clock ?? new SystemClock();
    this.#log = options.log;
    gossip.setValidator(TXS_TOPIC, (payload, from) => this.#validateTx(payload, from));
    gossip.setValidator(BLOCKS_TOPIC, (payload, from) => this.#validateBlock(payload, from));
    gossip.subscribe(TXS_TOPIC);
    gossip.subscribe(BLOCKS_TOPIC);
    this.#relay.on('tx', this.#onTx);
    this.#relay.on('block', this.#onRelayBlock);
    this.#relay.on('chain', this.#onChain);
    this.#sync.on('imported', this.#onImported);
    this.#relay.setAnnounceFilter((peer, kind, hash) => this.#leftToGossip(peer, kind, hash));
  }

  stats(): ChainGossipStats {
    return { txs: { ...this.#txs }, blocks: { ...this.#blocks }, relaySkipped: this.#relaySkipped, faults: this.#faults };
  }

  /**
   * Stop bridging: the listeners and the relay's announce filter are removed,
   * both topics are left, and items still arriving are ignored (the chain
   * may be closing). Idempotent.
   */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#relay.off('tx', this.#onTx);
    this.#relay.off('block', this.#onRelayBlock);
    this.#relay.off('chain', this.#onChain);
    this.#sync.off('imported', this.#onImported);
    this.#relay.setAnnounceFilter(undefined);
    for (const topic of [TXS_TOPIC, BLOCKS_TOPIC]) {
      this.#gossip.setValidator(topic, () => 'ignore');
      this.#gossip.unsubscribe(topic);
    }
  }

  // ================================================================ validators

  #validateTx(payload: Uint8Array, from: string): Validation {
    const s = this.#txs;
    let tx: ChainTx;
    try {
      tx = this.#chain.decodeTx(payload);
    } catch (e) {
      const reason = chainVerdict(e);
      this.#log?.debug({ peerId: from, reason }, 'gossip: invalid transaction');
      s.rejected++;
      return 'reject';
    }
    if (this.#relay.mempool.has(tx.id)) {
      s.ignored++;
      return 'ignore';
    }
    // Carried by gossip from here on, so the relay's INVs for it (during admission) skip gossip peers.
    const key = hex(tx.id);
    const now = this.#clock.now();
    const carried = this.#carriedTxs.has(key, now);
    remember(this.#carriedTxs, key, now);
    let r: AdmitResult | 'inadmissible';
    try {
      r = this.#relay.admitTx(tx, from, GOSSIP_VIA);
    } catch (e) {
      const reason = chainVerdict(e);
      this.#log?.debug({ peerId: from, reason }, 'gossip: transaction not admissible now');
      r = 'inadmissible';
    }
    if (r === 'added') {
      s.accepted++;
      return 'accept';
    }
    if (!carried) this.#carriedTxs.delete(key);
    if (r === 'inadmissible') s.inadmissible++;
    s.ignored++;
    return 'ignore';
  }

  #validateBlock(payload: Uint8Array, from: string): Validation {
    const s = this.#blocks;
    const reject = (e: unknown): Validation => {
      const reason = chainVerdict(e);
      this.#log?.debug({ peerId: from, reason }, 'gossip: invalid block');
      s.rejected++;
      return 'reject';
    };
    let block: ChainBlock;
    try {
      block = this.#chain.decodeBlock(payload);
    } catch (e) {
      return reject(e);
    }
    const h = block.header;
    const stored = this.#chain.header(h.hash);
    if (stored?.hasBlock === true) {
      this.#relay.markBlockKnown(from, h.hash);
      s.ignored++;
      return 'ignore';
    }
    if (stored === undefined) {
      const parent = this.#chain.header(h.parent);
      if (parent === undefined) {
        // Headers-first sync fetches the branch from the peer that has it.
        this.#sync.onPeerHeight(from, h.height);
        s.unknownParent++;
        s.ignored++;
        return 'ignore';
      }
      try {
        this.#chain.validateHeader(h, parent, this.#clock.wallNow());
        this.#chain.storeHeaders([h]);
      } catch (e) {
        return reject(e);
      }
    }
    let result: ImportResult;
    try {
      result = this.#chain.importBlock(block);
    } catch (e) {
      return reject(e);
    }
    return this.#imported(block, result, from);
  }

  /** After a gossip block was imported: the relay follows, and the verdict says whether gossip forwards it. */
  #imported(block: ChainBlock, result: ImportResult, from: string): Validation {
    const hash = block.header.hash;
    const connected = result.connected.some((c) => sameHash(c, hash));
    this.#relay.markBlockKnown(from, hash);
    // Gossip forwards it on accept: the relay must leave it to gossip for gossip peers (set before it announces).
    if (connected) remember(this.#carriedBlocks, hex(hash), this.#clock.now());
    if (result.connected.length > 0 || result.disconnected.length > 0) this.#relay.onChainChanged(result, true);
    if (connected) {
      this.#blocks.accepted++;
      return 'accept';
    }
    // Stored without its transactions checked (a side branch, or its parent's body missing): not forwarded.
    this.#sync.onPeerHeight(from, block.header.height);
    this.#blocks.ignored++;
    return 'ignore';
  }

  // ================================================================ publishing

  #publishTx(tx: ChainTx, via: string | undefined): void {
    if (via === GOSSIP_VIA) return; // it travels on by gossip already
    if (this.#publish(TXS_TOPIC, tx.bytes, this.#txs)) remember(this.#carriedTxs, hex(tx.id), this.#clock.now());
  }

  /** Blocks that connected by another path, when the node is caught up: each (or, beyond the cap, the tip). */
  #publishConnected(connected: readonly Hash[]): void {
    if (connected.length === 0) return;
    // Catching up (headers ahead of blocks): the blocks are old news to the network (the relay's rule).
    if (!sameHash(this.#chain.bestHeader().hash, this.#chain.tip().hash)) return;
    const list = connected.length <= MAX_PUBLISH_BLOCKS ? connected : connected.slice(-1);
    const now = this.#clock.now();
    for (const hash of list) {
      const key = hex(hash);
      if (this.#carriedBlocks.has(key, now)) continue;
      const bytes = this.#chain.block(hash);
      if (bytes === undefined) continue;
      if (this.#publish(BLOCKS_TOPIC, bytes, this.#blocks)) remember(this.#carriedBlocks, key, now);
    }
  }

  /** Publish, or count why not; true if gossip took it. */
  #publish(topic: string, payload: Uint8Array, s: Counters): boolean {
    const max = this.#gossip.router.topics.get(topic)?.maxBytes ?? 0;
    if (payload.length > max) {
      s.tooBig++;
      return false;
    }
    try {
      this.#gossip.publish(topic, payload);
      s.published++;
      return true;
    } catch (e) {
      if (!isPqnetError(e) || e.code !== 'GOSSIP_DUPLICATE') throw e;
      s.duplicates++;
      return false;
    }
  }

  /** The relay's announce filter: items gossip carried, to peers subscribed to their topic. */
  #leftToGossip(peer: string, kind: InvKind, hash: Hash): boolean {
    if (!this.#running) return false;
    const [carried, topic] = kind === InvKind.TX ? [this.#carriedTxs, TXS_TOPIC] : [this.#carriedBlocks, BLOCKS_TOPIC];
    if (!carried.has(hex(hash), this.#clock.now()) || !this.#gossip.router.isSubscriber(topic, peer)) return false;
    this.#relaySkipped++;
    return true;
  }

  /** Event handlers: a local failure (the chain's store) is logged and counted, never thrown into the emitter. */
  #guard(fn: () => void): void {
    if (!this.#running) return;
    try {
      fn();
    } catch (e) {
      this.#faults++;
      this.#log?.error({ err: e }, 'chain gossip: local failure');
    }
  }
}
