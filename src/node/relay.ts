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
 */
import { EventEmitter } from 'node:events';
import type { ChainAdapter, ChainHeader, ChainTx, Hash, ImportResult } from '../chain/adapter.ts';
import { DeadlineTimer, type Clock } from '../core/clock.ts';
import type { Random } from '../core/random.ts';
import { Mempool, type MempoolOptions, type MempoolStats } from '../sync/mempool.ts';
import { SYNC_PROTOCOL } from '../sync/messages.ts';
import { relayMessages, type RelayMessages } from '../sync/relay-messages.ts';
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

export interface RelayEvents {
  /** A transaction entered the mempool; `from` is the peer it came from, undefined for `submitTx`. */
  tx: [tx: ChainTx, from: string | undefined];
  /** A block received by relay (compact or full) was imported and connected blocks (`result`). */
  block: [header: ChainHeader, peerId: string, result: ImportResult];
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

  /** Send the stored block `hash` as a compact block to every sync peer not known to have it; returns how many. */
  announceBlock(hash: Hash): number {
    const n = this.engine.announceBlock(hash);
    this.#pump();
    return n;
  }

  /**
   * After blocks connected or disconnected (an import, a mined block): mempool upkeep, and the new
   * blocks announced unless `announce` is false (the caller knows the node is still catching up).
   */
  /** The peer has block `hash` (it served it to block download): it is never announced to it. */
  markBlockKnown(peer: string, hash: Hash): void {
    this.engine.markBlockKnown(peer, hash);
  }

  onChainChanged(result: ImportResult, announce = true): void {
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
      case 'inv':
        this.#node.send(a.peer, m.inv, a.items).catch(ignore);
        return;
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
      case 'accepted':
        this.emit('tx', a.tx, a.from);
        return;
      case 'imported':
        this.emit('block', a.header, a.peer, a.result);
        return;
      case 'announced':
        this.#onBlockAnnounced?.(a.peer, a.height, a.hash);
        return;
    }
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
