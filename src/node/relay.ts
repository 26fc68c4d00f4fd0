/**
 * The I/O side of transaction and block relay (docs/spec/relay.md): binds the
 * sans-I/O `RelayEngine` and its `Mempool` to a `Node` and a `ChainAdapter`.
 * It registers the relay messages, feeds what peers send to the engine,
 * carries out what the engine returns (messages, GETBLOCKTXN requests,
 * penalties, events) and polls it on the node's clock by its next deadline.
 *
 * Peers are those that announce `pqnet/sync/1`; the node must be created with
 * `protocols` including `SYNC_PROTOCOL`, and the service before
 * `node.start()` (message types are registered then).
 *
 * Whoever else changes the chain (block download, mining) calls
 * `onChainChanged` with the import result, so the mempool follows the tip and
 * the new blocks are announced.
 *
 * Another carrier (gossip, src/node/chain-gossip.ts) plugs in through three
 * additive hooks: `admitTx` takes a transaction it received into the mempool
 * (the `tx` event then names the carrier), the `chain` event reports every
 * `onChainChanged` before the relay acts on it, and `setAnnounceFilter` lets it
 * take over the announcement of items it carries to the peers it reaches.
 */
import { EventEmitter } from 'node:events';
import { hex, type ChainAdapter, type ChainHeader, type ChainTx, type Hash, type ImportResult } from '../chain/adapter.ts';
import { DeadlineTimer, type Clock } from '../core/clock.ts';
import { isPqnetError } from '../core/errors.ts';
import type { Random } from '../core/random.ts';
import { Mempool, type AdmitResult, type MempoolOptions, type MempoolStats } from '../sync/mempool.ts';
import { SYNC_PROTOCOL } from '../sync/messages.ts';
import { InvKind, relayMessages, type InvItem, type RelayMessages } from '../sync/relay-messages.ts';
import { RelayEngine, type RelayAction, type RelayEngineOptions, type RelayEngineStats } from '../sync/relay.ts';
import type { MessageType } from '../wire/registry.ts';
import type { Node, PeerInfo } from './node.ts';

export interface RelayOptions {
  /** Engine settings (trickle interval, timeouts, rate caps, bounds); defaults in `DEFAULT_RELAY_OPTIONS`. */
  readonly engine?: Partial<RelayEngineOptions>;
  /** Mempool bounds and eviction priority; defaults in `DEFAULT_MEMPOOL_OPTIONS`. */
  readonly mempool?: Partial<MempoolOptions>;
  /**
   * A peer announced a block we cannot place: a compact block or full block
   * whose parent header is unknown (with its height), or a block INV whose
   * header is unknown (height undefined). Headers-first sync should ask that
   * peer for headers. Nothing else is done with the announcement.
   */
  readonly onBlockAnnounced?: (peerId: string, height: number | undefined, hash: Hash) => void;
  /** Source of the item-key salt and the compact block nonces (default: the OS CSPRNG). */
  readonly random?: Random;
}

export interface RelayStats extends RelayEngineStats {
  readonly mempool: MempoolStats;
}

/**
 * Whether the announcement of an item (a transaction INV entry, a block INV
 * entry or a compact block) to `peer` is left to another carrier: true drops
 * it. The engine still counts the item as known to that peer.
 */
export type AnnounceFilter = (peer: string, kind: InvKind, hash: Hash) => boolean;

export interface RelayEvents {
  /**
   * A transaction entered the mempool; `from` is the peer it came from, undefined for `submitTx`;
   * `via` names the carrier when it did not come by relay (`admitTx`, e.g. `'gossip'`).
   */
  tx: [tx: ChainTx, from: string | undefined, via?: string];
  /** A block received by relay (compact or full) was imported and connected blocks (`result`). */
  block: [header: ChainHeader, peerId: string, result: ImportResult];
  /** `onChainChanged` was called (an import, a mined block), before the relay acts on it. */
  chain: [result: ImportResult, announce: boolean];
  /** A local failure while handling an answer (a store error, a bug): the relay carries on. */
  fault: [error: unknown];
}

export class Relay extends EventEmitter<RelayEvents> {
  readonly chain: ChainAdapter;
  readonly messages: RelayMessages;
  readonly mempool: Mempool;
  readonly engine: RelayEngine;
  readonly #node: Node;
  readonly #clock: Clock;
  readonly #onBlockAnnounced: RelayOptions['onBlockAnnounced'];
  readonly #timer: DeadlineTimer;
  #running = true;
  #pumpQueued = false;
  #announceFilter: AnnounceFilter | undefined;
  /** The transaction `admitTx` is admitting (hex id), so its `tx` event names its sender and carrier. */
  #origin: { readonly id: string; readonly from: string; readonly via: string } | undefined;

  constructor(node: Node, chain: ChainAdapter, clock: Clock, options: RelayOptions = {}) {
    super();
    this.#node = node;
    this.chain = chain;
    this.#clock = clock;
    this.#onBlockAnnounced = options.onBlockAnnounced;
    this.#timer = new DeadlineTimer(clock, () => this.#pump());
    this.messages = relayMessages(chain.limits);
    this.mempool = new Mempool(chain, options.mempool);
    this.engine = new RelayEngine(chain, this.mempool, options.engine, options.random);
    const m = this.messages;
    for (const t of [m.inv, m.getData, m.notFound, m.tx, m.block, m.compactBlock] as MessageType<unknown>[]) node.register(t);
    node.registerRequest(m.getBlockTxn);
    const e = this.engine;
    this.#on(m.inv, (peer, items) => e.onInv(peer, items, this.#clock.now()));
    this.#on(m.getData, (peer, items) => e.onGetData(peer, items, this.#clock.now()));
    this.#on(m.notFound, (peer, items) => e.onNotFound(peer, items, this.#clock.now()));
    this.#on(m.tx, (peer, [bytes]) => e.onTx(peer, bytes, this.#clock.now()));
    this.#on(m.block, (peer, [bytes]) => e.onBlock(peer, bytes, this.#clock.now(), this.#clock.wallNow()));
    this.#on(m.compactBlock, (peer, msg) => e.onCompactBlock(peer, msg, this.#clock.now(), this.#clock.wallNow()));
    node.handle(m.getBlockTxn, ([hash, indexes], peer) => e.serveBlockTxn(peer.peerId ?? '', hash, indexes));
    node.on('peer:active', (p) => this.#onActive(p));
    node.on('peer:closed', (p) => {
      if (p.peerId === undefined) return;
      e.removePeer(p.peerId);
      this.#pumpSoon();
    });
    for (const p of node.peers()) if (p.state === 'active') this.#onActive(p);
  }

  /**
   * A local transaction: pre-admission, mempool, announcement to every peer
   * at its next trickle. Returns its id; throws CHAIN_BAD_TX if it does not
   * decode, fails the chain's check, or finds no room.
   */
  submitTx(bytes: Uint8Array): Hash {
    const id = this.engine.submitTx(bytes, this.#clock.now());
    this.#pump();
    return id;
  }

  /**
   * A transaction another carrier (`via`, e.g. gossip) received from `from`,
   * decoded by the chain: `'known'` if the mempool holds it; else the
   * chain's check (throws CHAIN_BAD_TX: not admissible now), then the mempool
   * (`'full'`: refused for lack of room, nothing evicted) and, when `'added'`,
   * a `tx` event with `from` and `via` and announcement by INV as for
   * `submitTx` (the announce filter decides which peers the carrier covers).
   */
  admitTx(tx: ChainTx, from: string, via = 'gossip'): AdmitResult {
    if (this.mempool.has(tx.id)) return 'known';
    this.chain.checkTx(tx);
    try {
      this.engine.submitTx(tx.bytes, this.#clock.now());
    } catch (e) {
      // It passed the check just now, so the engine's only refusal left is the mempool's lack of room.
      if (isPqnetError(e) && e.code === 'CHAIN_BAD_TX') return 'full';
      throw e;
    }
    this.#origin = { id: hex(tx.id), from, via };
    try {
      this.#pump();
    } finally {
      this.#origin = undefined;
    }
    return 'added';
  }

  /** Leave some announcements to another carrier (see `AnnounceFilter`); undefined: every announcement goes out. */
  setAnnounceFilter(filter: AnnounceFilter | undefined): void {
    this.#announceFilter = filter;
  }

  /** Send the stored block `hash` as a compact block to every sync peer not known to have it; returns how many. */
  announceBlock(hash: Hash): number {
    const n = this.engine.announceBlock(hash);
    this.#pump();
    return n;
  }

  /** The peer has block `hash` (it served it to block download): it is never announced to it. */
  markBlockKnown(peer: string, hash: Hash): void {
    this.engine.markBlockKnown(peer, hash);
  }

  /**
   * After blocks connected or disconnected (an import, a mined block): mempool upkeep, and the new
   * blocks announced unless `announce` is false (the caller knows the node is still catching up).
   * The `chain` event goes first.
   */
  onChainChanged(result: ImportResult, announce = true): void {
    this.emit('chain', result, announce);
    this.engine.onChainChanged(result, this.#clock.now(), announce);
    this.#pump();
  }

  stats(): RelayStats {
    return { ...this.engine.stats(), mempool: this.mempool.stats() };
  }

  /** Stop relaying: messages are ignored and no timer is left. Idempotent. */
  stop(): void {
    this.#running = false;
    this.#timer.clear();
  }

  #on<T>(type: MessageType<T>, fn: (peer: string, value: T) => void): void {
    this.#node.subscribe(type, (value, peer) => {
      // Synchronous on purpose: the message's channel credit returns at once, so a compact
      // block waiting for its GETBLOCKTXN answer (on the same channel) cannot block it.
      if (!this.#running || peer.peerId === undefined) return;
      fn(peer.peerId, value);
      this.#pumpSoon();
    });
  }

  #onActive(p: PeerInfo): void {
    if (!this.#running || p.peerId === undefined || !p.protocols.includes(SYNC_PROTOCOL)) return;
    this.engine.addPeer(p.peerId, this.#clock.now());
    this.#pumpSoon();
  }

  /** Poll once at the end of this turn (after a burst of messages). */
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
    const now = this.#clock.now();
    for (const a of this.engine.poll(now)) this.#act(a);
    if (this.#running) this.#timer.arm(this.engine.nextDeadline(this.#clock.now()));
  }

  #act(a: RelayAction): void {
    const m = this.messages;
    const ignore = (): undefined => undefined; // closed peer, full queue: the engine's timeouts cover it
    switch (a.type) {
      case 'inv': {
        const items = this.#unfiltered(a.peer, a.items);
        if (items.length > 0) this.#node.send(a.peer, m.inv, items).catch(ignore);
        return;
      }
      case 'getdata':
        this.#node.send(a.peer, m.getData, a.items).catch(ignore);
        return;
      case 'notfound':
        this.#node.send(a.peer, m.notFound, a.items).catch(ignore);
        return;
      case 'tx':
        this.#node.send(a.peer, m.tx, [a.bytes]).catch(ignore);
        return;
      case 'block':
        this.#node.send(a.peer, m.block, [a.bytes]).catch(ignore);
        return;
      case 'compact':
        if (this.#announceFilter?.(a.peer, InvKind.BLOCK, this.chain.decodeHeader(a.message[0]).hash) === true) return;
        this.#node.send(a.peer, m.compactBlock, a.message).catch(ignore);
        return;
      case 'getblocktxn':
        this.#node.request(a.peer, m.getBlockTxn, [a.hash, a.indexes]).then(
          (txs) => this.#settle(() => this.engine.onBlockTxn(a.peer, a.hash, txs, this.#clock.now())),
          // A timeout or refusal is already scored by the connection; the engine falls back to the full block.
          () => this.#settle(() => this.engine.onBlockTxnFailed(a.peer, a.hash)),
        );
        return;
      case 'penalize':
        this.#node.penalize(a.peer, a.reason, a.detail);
        return;
      case 'accepted': {
        const o = this.#origin;
        if (a.from === undefined && o !== undefined && o.id === hex(a.tx.id)) this.emit('tx', a.tx, o.from, o.via);
        else this.emit('tx', a.tx, a.from);
        return;
      }
      case 'imported':
        this.emit('block', a.header, a.peer, a.result);
        return;
      case 'announced':
        this.#onBlockAnnounced?.(a.peer, a.height, a.hash);
        return;
    }
  }

  /** The INV entries the announce filter does not leave to another carrier. */
  #unfiltered(peer: string, items: InvItem[]): InvItem[] {
    const f = this.#announceFilter;
    return f === undefined ? items : items.filter(([kind, hash]) => !f(peer, kind, hash));
  }

  #settle(fn: () => void): void {
    if (!this.#running) return;
    try {
      fn();
    } catch (e) {
      this.emit('fault', e);
    }
    this.#pumpSoon();
  }
}
