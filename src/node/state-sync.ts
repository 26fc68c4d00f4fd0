/**
 * The I/O side of state sync (docs/spec/state-sync.md): binds the sans-I/O
 * `StateSync` engine to a `Node`, a `ChainAdapter` and a `StateStore`.
 *
 * - **Serving** (from construction, for every peer that speaks
 *   `pqnet/sync/1`): GETSTATEMANIFEST answers the chain's `stateManifest()`
 *   (none if it has none, or one beyond our limits), GETSTATECHUNK the
 *   chain's `stateChunk(root, index)` (empty if not held).
 * - **Fetching** (after `start()`): follows the node's sync peers, runs the
 *   engine on the node's clock, sends its requests, applies its penalties,
 *   persists the chosen manifest and each verified chunk, and calls
 *   `chain.applyState` when every chunk is held. A stored download is resumed
 *   at `start()`. The progress is deleted once the state is applied.
 * - Headers may arrive after `start()` (headers-first sync runs beside it):
 *   the engine keeps the peers' offers and chooses one as soon as its block is
 *   on our best header chain; peers without a useful offer are asked again
 *   every `manifestRecheckMs`.
 *
 * The node must be created with `protocols` including `SYNC_PROTOCOL`, and
 * the service before `node.start()` (message types are registered then). A
 * stopped service has closed its store: a restart is a new service.
 *
 * After `applied`, the chain's validated tip is the manifest's block; block
 * download continues from there along the best header chain.
 */
import { EventEmitter } from 'node:events';
import type { ChainAdapter, StateManifest } from '../chain/adapter.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { isPqnetError, PqnetError, toPqnetError } from '../core/errors.ts';
import { SYNC_PROTOCOL } from '../sync/messages.ts';
import { checkManifest, manifestFromWire, manifestToWire, stateMessages, type StateMessages } from '../sync/state-messages.ts';
import { StateStore } from '../sync/state-store.ts';
import { StateSync, type StateSyncAction, type StateSyncOptionsInput, type StateSyncStats } from '../sync/state.ts';
import type { Node, PeerInfo } from './node.ts';

export interface StateSyncServiceOptions extends StateSyncOptionsInput {
  /** SQLite file holding the progress (created if missing). */
  readonly storePath: string;
  /** How often the engine is polled when nothing else wakes it (stall checks, re-asking manifests). */
  readonly tickMs?: number;
}

export interface StateSyncProgress {
  readonly peer: string;
  readonly index: number;
  readonly chunksDone: number;
  readonly chunksTotal: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

export interface StateSyncServiceEvents {
  /** A download began (`resumed` chunks were taken from the store). */
  selected: [manifest: StateManifest, resumed: number];
  /** A verified chunk was stored. */
  progress: [progress: StateSyncProgress];
  /** A download was abandoned and its progress dropped. */
  discarded: [manifest: StateManifest, why: string];
  /** `chain.applyState` succeeded: the chain's tip is the manifest's block. */
  applied: [manifest: StateManifest];
  /**
   * A local failure (store, chain I/O) stopped the service; the stored progress is kept
   * for a restart. Also after `applied` if the progress could not be deleted (harmless:
   * the next start discards it).
   */
  failed: [error: PqnetError];
}

const EMPTY = new Uint8Array(0);

export class StateSyncService extends EventEmitter<StateSyncServiceEvents> {
  readonly chain: ChainAdapter;
  readonly messages: StateMessages;
  readonly engine: StateSync;
  readonly #node: Node;
  readonly #clock: Clock;
  readonly #store: StateStore;
  readonly #tickMs: number;
  /** Chunk requests out, by `${peer} ${index}`, to abort on cancel or stop. */
  readonly #requests = new Map<string, AbortController>();
  #timer: TimerHandle | undefined;
  /** A wake-up before the next tick, for the engine's `wakeAt` (paced requests, deadlines). */
  #wake: { readonly handle: TimerHandle; readonly at: number } | undefined;
  #running = false;
  #stopped = false;
  #pumpQueued = false;
  /** Deleting the progress after the state was applied failed (reported after `applied`). */
  #clearFailed: PqnetError | undefined;

  /** Opens the progress store (STORE_* if the file is bad) and registers the messages and their handlers. */
  constructor(node: Node, chain: ChainAdapter, clock: Clock, options: StateSyncServiceOptions) {
    super();
    const { storePath, tickMs = 1_000, ...engineOptions } = options;
    this.#node = node;
    this.chain = chain;
    this.#clock = clock;
    this.#tickMs = tickMs;
    this.engine = new StateSync(chain, engineOptions);
    this.messages = stateMessages(this.engine.options.limits);
    this.#store = StateStore.open(storePath);
    const limits = this.messages.limits;
    try {
      node.registerRequest(this.messages.getManifest);
      node.registerRequest(this.messages.getChunk);
    } catch (e) {
      this.#store.close(); // e.g. a second service on one node: its ids are taken
      throw e;
    }
    node.handle(this.messages.getManifest, () => {
      const m = chain.stateManifest();
      return m === undefined || checkManifest(m, limits) !== undefined ? [] : [manifestToWire(m)];
    });
    node.handle(this.messages.getChunk, ([root, index]) => {
      const c = chain.stateChunk(root, index);
      return c === undefined || c.length > limits.maxChunkBytes ? EMPTY : c;
    });
    node.on('peer:active', (p) => this.#onActive(p));
    node.on('peer:closed', (p) => {
      if (p.peerId === undefined || !this.#running) return;
      this.engine.removePeer(p.peerId);
      this.#pumpSoon();
    });
  }

  get running(): boolean {
    return this.#running;
  }

  /** Begin (or resume) fetching with the node's current and future peers. Throws STORE_* if the stored progress cannot be read. */
  start(): void {
    if (this.#running) return;
    if (this.#stopped) throw new PqnetError('CLOSED', 'state sync service was stopped');
    const stored = this.#store.load();
    this.#running = true;
    if (stored !== undefined) {
      const kept = this.engine.resume(stored.manifest, stored.chunks, this.#clock.now());
      if (this.engine.phase === 'fetching') this.emit('selected', stored.manifest, kept);
    }
    for (const p of this.#node.peers()) if (p.state === 'active') this.#onActive(p);
    this.#tick();
  }

  /** Stop fetching (requests out are aborted) and close the store; serving goes on. Idempotent. */
  stop(): void {
    this.#running = false;
    this.#stopped = true;
    this.#clearTimers();
    for (const c of this.#requests.values()) c.abort();
    this.#requests.clear();
    this.#store.close();
  }

  stats(): StateSyncStats {
    return this.engine.stats();
  }

  #onActive(p: PeerInfo): void {
    if (!this.#running || p.peerId === undefined || !p.protocols.includes(SYNC_PROTOCOL)) return;
    this.engine.addPeer(p.peerId);
    this.#pumpSoon();
  }

  #tick(): void {
    if (!this.#running) return;
    this.#pump();
    if (this.#running) this.#timer = this.#clock.setTimer(this.#tickMs, () => this.#tick());
  }

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
    try {
      for (const a of this.engine.poll(this.#clock.now())) {
        if (!this.#running) return;
        this.#act(a);
      }
    } catch (e) {
      this.#fail(e);
      return;
    }
    this.#armWake();
  }

  /** Wake the engine at its `wakeAt` if that comes before anything else would. */
  #armWake(): void {
    const at = this.engine.wakeAt();
    if (at === undefined || !this.#running || (this.#wake !== undefined && this.#wake.at <= at)) return;
    if (this.#wake !== undefined) this.#clock.clearTimer(this.#wake.handle);
    const handle = this.#clock.setTimer(Math.max(1, Math.ceil(at - this.#clock.now())), () => {
      this.#wake = undefined;
      this.#pump();
    });
    this.#wake = { handle, at };
  }

  #clearTimers(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    if (this.#wake !== undefined) this.#clock.clearTimer(this.#wake.handle);
    this.#wake = undefined;
  }

  /** A local failure: stop, keep the progress, tell the application. */
  #fail(e: unknown): void {
    if (!this.#running) return;
    this.stop();
    this.emit('failed', toPqnetError(e));
  }

  #act(a: StateSyncAction): void {
    switch (a.type) {
      case 'request-manifest':
        this.#node.request(a.peer, this.messages.getManifest, []).then(
          (res) => {
            if (!this.#running) return;
            this.engine.onManifest(a.peer, res.length === 0 ? undefined : manifestFromWire(res[0]!), this.#clock.now());
            this.#pumpSoon();
          },
          () => {
            // The connection already scored a timeout or a refusal.
            if (!this.#running) return;
            this.engine.onManifestFailed(a.peer, this.#clock.now());
            this.#pumpSoon();
          },
        );
        return;
      case 'request-chunk': {
        const key = `${a.peer} ${a.index}`;
        const abort = new AbortController();
        this.#requests.set(key, abort);
        // The engine's stall deadline comes first; the connection's is a backstop.
        const timeoutMs = this.engine.options.chunkTimeoutMs + 2 * this.#tickMs;
        this.#node.request(a.peer, this.messages.getChunk, [a.stateRoot, a.index], { signal: abort.signal, timeoutMs }).then(
          (bytes) => {
            if (this.#requests.get(key) === abort) this.#requests.delete(key);
            if (!this.#running) return;
            this.engine.onChunk(a.peer, a.index, bytes, this.#clock.now());
            this.#pumpSoon();
          },
          () => {
            if (this.#requests.get(key) === abort) this.#requests.delete(key);
            if (!this.#running || abort.signal.aborted) return;
            this.engine.onFailed(a.peer, a.index, this.#clock.now());
            this.#pumpSoon();
          },
        );
        return;
      }
      case 'cancel-chunk': {
        const key = `${a.peer} ${a.index}`;
        this.#requests.get(key)?.abort();
        this.#requests.delete(key);
        return;
      }
      case 'penalize':
        this.#node.penalize(a.peer, a.reason, a.detail);
        return;
      case 'select':
        this.#store.begin(a.manifest);
        this.emit('selected', a.manifest, 0);
        return;
      case 'chunk': {
        this.#store.putChunk(a.id, a.index, a.bytes);
        const s = this.engine.stats();
        this.emit('progress', { peer: a.peer, index: a.index, chunksDone: s.chunksDone, chunksTotal: s.chunksTotal, bytesDone: s.bytesDone, bytesTotal: s.bytesTotal });
        return;
      }
      case 'discard':
        this.#store.clear();
        this.emit('discarded', a.manifest, a.why);
        return;
      case 'apply':
        this.#apply(a.manifest, a.chunks);
        return;
      case 'done': {
        this.#running = false;
        this.#clearTimers();
        this.emit('applied', a.manifest);
        const e = this.#clearFailed;
        if (e !== undefined) this.emit('failed', e);
        return;
      }
    }
  }

  #apply(manifest: StateManifest, chunks: readonly Uint8Array[]): void {
    try {
      this.chain.applyState(manifest, chunks);
    } catch (e) {
      if (isPqnetError(e) && e.code === 'CHAIN_BAD_STATE') {
        this.engine.onApplyFailed(e.message, this.#clock.now());
        this.#pumpSoon();
        return;
      }
      throw e;
    }
    this.engine.onApplied(this.#clock.now());
    this.#pumpSoon();
    // The progress is no longer needed. If deleting it fails (or the process dies first),
    // the next start finds the manifest's block at our tip and discards it then.
    try {
      this.#store.clear();
    } catch (e) {
      this.#clearFailed = toPqnetError(e);
    }
  }
}
