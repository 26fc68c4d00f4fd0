/**
 * The I/O side of sync: binds the sans-I/O engines to a `Node` and a
 * `ChainAdapter`. It registers the sync messages, serves GETHEADERS from the
 * chain, follows peers that speak `pqnet/sync/1` as they come and go, and
 * carries out what the engines return (requests, penalties), on the node's
 * clock.
 *
 * The node must be created with `protocols` including `SYNC_PROTOCOL`, and
 * the service before `node.start()` (message types are registered then).
 */
import { EventEmitter } from 'node:events';
import type { ChainAdapter, HeaderEntry } from '../chain/adapter.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Node, PeerInfo } from './node.ts';
import { HeaderSync, type HeaderSyncAction, type HeaderSyncOptions } from '../sync/headers.ts';
import { headersAfter } from '../sync/locator.ts';
import { SYNC_PROTOCOL, syncMessages, type SyncMessages } from '../sync/messages.ts';

export interface ChainSyncOptions {
  readonly headers?: Partial<HeaderSyncOptions>;
  /** How often the engines are polled when nothing else wakes them. */
  readonly tickMs?: number;
}

export interface ChainSyncEvents {
  /** Our best header changed (more work). */
  best: [header: HeaderEntry];
}

export class ChainSync extends EventEmitter<ChainSyncEvents> {
  readonly chain: ChainAdapter;
  readonly messages: SyncMessages;
  readonly headers: HeaderSync;
  readonly #node: Node;
  readonly #clock: Clock;
  readonly #tickMs: number;
  #timer: TimerHandle | undefined;
  #running = false;
  #pumpQueued = false;

  constructor(node: Node, chain: ChainAdapter, clock: Clock, options: ChainSyncOptions = {}) {
    super();
    this.#node = node;
    this.chain = chain;
    this.#clock = clock;
    this.#tickMs = options.tickMs ?? 1_000;
    this.messages = syncMessages(chain.limits);
    this.headers = new HeaderSync(chain, options.headers);
    node.registerRequest(this.messages.getHeaders);
    node.handle(this.messages.getHeaders, ([locator, stop]) => headersAfter(chain, locator, stop.length === 0 ? undefined : stop));
    node.on('peer:active', (p) => this.#onActive(p));
    node.on('peer:closed', (p) => {
      if (p.peerId !== undefined) this.headers.removePeer(p.peerId);
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

  #onActive(p: PeerInfo): void {
    if (p.peerId === undefined || !p.protocols.includes(SYNC_PROTOCOL)) return;
    this.headers.addPeer(p.peerId, p.height ?? 0);
    this.#pumpSoon();
  }

  #tick(): void {
    if (!this.#running) return;
    this.#pump();
    this.#timer = this.#clock.setTimer(this.#tickMs, () => this.#tick());
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
    for (const a of this.headers.poll(this.#clock.now())) this.#act(a);
  }

  #act(a: HeaderSyncAction): void {
    switch (a.type) {
      case 'request':
        this.#node.request(a.peer, this.messages.getHeaders, [a.locator, a.stop ?? new Uint8Array(0)]).then(
          (batch) => {
            this.headers.onHeaders(a.peer, batch, this.#clock.wallNow(), this.#clock.now());
            this.#pumpSoon();
          },
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
        return;
    }
  }
}
