/**
 * The mempool (docs/spec/relay.md, Mempool): transactions waiting for a
 * block, chain-agnostic (`ChainTx`: an id and bytes), admitted through the
 * chain's pre-admission check and bounded by count and bytes.
 *
 * Policy:
 * - **Admission**: a transaction not already held passes `chain.checkTx`
 *   against the tip (CHAIN_BAD_TX is thrown to the caller, who knows whom to
 *   blame), then takes a place, evicting others if the pool is full.
 * - **Eviction when full**: the entries with the lowest `priority` go first,
 *   the oldest among equals. Without a `priority` function every transaction
 *   is equal and the pool is first-in, first-out: a new transaction evicts
 *   the oldest. With one (e.g. fee per byte), a newcomer must rank above
 *   every entry it would evict, or it is refused (`'full'`) and nothing is
 *   evicted. A transaction larger than the whole byte budget is refused.
 * - **Blocks connected**: their transactions leave the pool
 *   (`blockConnected`), and every remaining entry is due for a re-check
 *   against the new tip (a spent nonce, a drained balance).
 * - **Blocks disconnected** (reorganisation): their transactions come back
 *   (`readmit`) if they still pass `checkTx` against the new tip and are not
 *   in a block of the new chain; they go through admission like any other.
 *
 * **Re-check cost.** A full re-check is one `checkTx` per entry (on the
 * devchain one SQLite point read, a few microseconds), O(pool) per block, so
 * it is not done all at once: `recheck(budget)` checks at most `budget`
 * entries, continuing the pass where the last call stopped, and a new block
 * restarts the pass. The relay engine runs it with `recheckPerPoll` entries
 * per poll, so a block costs the event loop at most that many checks at a
 * time. Until the pass reaches an entry, a transaction a block made invalid
 * may still be announced or served (a peer then counts one CHAIN_BAD_TX
 * against us, as with any race between a block and a transaction).
 */
import { hex, type ChainAdapter, type ChainTx, type Hash } from '../chain/adapter.ts';
import { isPqnetError } from '../core/errors.ts';

export interface MempoolOptions {
  /** Most transactions held. */
  readonly maxTxs: number;
  /** Most transaction bytes held. */
  readonly maxBytes: number;
  /** Rank for eviction (higher stays longer); all equal (first-in, first-out) if absent. */
  readonly priority?: (tx: ChainTx) => number;
}

export const DEFAULT_MEMPOOL_OPTIONS: MempoolOptions = Object.freeze({ maxTxs: 20_000, maxBytes: 32 * 1024 * 1024 });

/** What `add` did: taken in, already held, or refused for lack of room. */
export type AdmitResult = 'added' | 'known' | 'full';

export interface MempoolStats {
  readonly txs: number;
  readonly bytes: number;
  readonly added: number;
  readonly evicted: number;
  /** Removed because a connected block included them. */
  readonly mined: number;
  /** Removed by a re-check against a new tip. */
  readonly invalidated: number;
  /** Taken back from disconnected blocks. */
  readonly readmitted: number;
  /** Entries still waiting for the current re-check pass. */
  readonly recheckPending: number;
}

interface Entry {
  readonly tx: ChainTx;
  readonly key: string;
  readonly seq: number;
  readonly priority: number;
}

/** A binary min-heap of entries by (priority, seq), with lazy deletion: popped entries no longer in the pool are skipped. */
class EvictionHeap {
  readonly #a: Entry[] = [];

  get size(): number {
    return this.#a.length;
  }

  push(e: Entry): void {
    const a = this.#a;
    a.push(e);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!below(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): Entry | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && below(a[l]!, a[m]!)) m = l;
        if (r < a.length && below(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }

  /** Rebuild from the live entries (when stale ones pile up). */
  reset(live: Iterable<Entry>): void {
    this.#a.length = 0;
    for (const e of live) this.push(e);
  }
}

const below = (x: Entry, y: Entry): boolean => x.priority < y.priority || (x.priority === y.priority && x.seq < y.seq);

export class Mempool {
  readonly options: MempoolOptions;
  readonly #chain: ChainAdapter;
  /** Insertion order is age order (FIFO eviction). */
  readonly #entries = new Map<string, Entry>();
  readonly #heap: EvictionHeap | undefined;
  #bytes = 0;
  #seq = 0;
  #recheck: string[] = [];
  #recheckAt = 0;
  #added = 0;
  #evicted = 0;
  #mined = 0;
  #invalidated = 0;
  #readmitted = 0;

  constructor(chain: ChainAdapter, options: Partial<MempoolOptions> = {}) {
    const o = { ...DEFAULT_MEMPOOL_OPTIONS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as MempoolOptions;
    if (!Number.isSafeInteger(o.maxTxs) || o.maxTxs < 1) throw new RangeError('mempool maxTxs must be a positive integer');
    if (!Number.isSafeInteger(o.maxBytes) || o.maxBytes < 1) throw new RangeError('mempool maxBytes must be a positive integer');
    this.options = Object.freeze(o);
    this.#chain = chain;
    this.#heap = o.priority === undefined ? undefined : new EvictionHeap();
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  has(id: Hash): boolean {
    return this.#entries.has(hex(id));
  }

  get(id: Hash): ChainTx | undefined {
    return this.#entries.get(hex(id))?.tx;
  }

  /** Every transaction, oldest first. */
  *txs(): IterableIterator<ChainTx> {
    for (const e of this.#entries.values()) yield e.tx;
  }

  /**
   * Admit `tx` (decoded by the chain): `'known'` if held, else `chain.checkTx`
   * (throws CHAIN_BAD_TX), then room is made by the eviction policy or the
   * transaction is refused with `'full'`.
   */
  add(tx: ChainTx): AdmitResult {
    const key = hex(tx.id);
    if (this.#entries.has(key)) return 'known';
    const size = tx.bytes.length;
    if (size > this.options.maxBytes) return 'full';
    this.#chain.checkTx(tx);
    const priority = this.options.priority?.(tx) ?? 0;
    if (!this.#makeRoom(size, priority)) return 'full';
    const e: Entry = { tx, key, seq: this.#seq++, priority };
    this.#entries.set(key, e);
    this.#bytes += size;
    this.#heap?.push(e);
    this.#added++;
    return 'added';
  }

  /** Remove these transactions (those held); returns how many were. */
  remove(ids: Iterable<Hash>): number {
    let n = 0;
    for (const id of ids) if (this.#delete(hex(id))) n++;
    this.#compactHeap();
    return n;
  }

  /** A block with these transactions connected: they leave the pool, and a re-check pass over the rest begins. */
  blockConnected(txIds: readonly Hash[]): number {
    const n = this.remove(txIds);
    this.#mined += n;
    this.#startRecheck();
    return n;
  }

  /**
   * Transactions of disconnected blocks, oldest block first and in block
   * order, come back if they pass admission now; `exclude` holds the ids in
   * blocks of the new chain (hex), which never come back. Returns how many
   * were taken back. Bounded by the pool: each one goes through `add`.
   */
  readmit(txs: readonly Uint8Array[], exclude: ReadonlySet<string>): number {
    let n = 0;
    for (const bytes of txs) {
      let tx: ChainTx;
      try {
        tx = this.#chain.decodeTx(bytes);
        if (exclude.has(hex(tx.id))) continue;
        if (this.add(tx) === 'added') n++;
      } catch (e) {
        if (!isPqnetError(e) || e.code !== 'CHAIN_BAD_TX') throw e;
      }
    }
    this.#readmitted += n;
    this.#startRecheck();
    return n;
  }

  /** Re-check up to `budget` entries of the current pass against the tip; returns how many were removed. */
  recheck(budget: number): number {
    let removed = 0;
    const end = Math.min(this.#recheck.length, this.#recheckAt + Math.max(0, budget));
    for (; this.#recheckAt < end; this.#recheckAt++) {
      const e = this.#entries.get(this.#recheck[this.#recheckAt]!);
      if (e === undefined) continue;
      try {
        this.#chain.checkTx(e.tx);
      } catch (err) {
        if (!isPqnetError(err) || err.code !== 'CHAIN_BAD_TX') throw err;
        this.#delete(e.key);
        this.#invalidated++;
        removed++;
      }
    }
    if (this.#recheckAt >= this.#recheck.length) {
      this.#recheck = [];
      this.#recheckAt = 0;
    }
    if (removed > 0) this.#compactHeap();
    return removed;
  }

  get recheckPending(): number {
    return this.#recheck.length - this.#recheckAt;
  }

  stats(): MempoolStats {
    return {
      txs: this.#entries.size,
      bytes: this.#bytes,
      added: this.#added,
      evicted: this.#evicted,
      mined: this.#mined,
      invalidated: this.#invalidated,
      readmitted: this.#readmitted,
      recheckPending: this.recheckPending,
    };
  }

  #startRecheck(): void {
    this.#recheck = [...this.#entries.keys()];
    this.#recheckAt = 0;
  }

  #delete(key: string): boolean {
    const e = this.#entries.get(key);
    if (e === undefined) return false;
    this.#entries.delete(key);
    this.#bytes -= e.tx.bytes.length;
    return true;
  }

  /**
   * Evict until `size` more bytes and one more entry fit. With priorities,
   * the victims are chosen first and evicted only if every one ranks below
   * the newcomer.
   */
  #makeRoom(size: number, priority: number): boolean {
    const fits = (count: number, bytes: number): boolean => this.#entries.size - count + 1 <= this.options.maxTxs && this.#bytes - bytes + size <= this.options.maxBytes;
    if (fits(0, 0)) return true;
    const heap = this.#heap;
    if (heap === undefined) {
      // First in, first out: the oldest go.
      for (const key of this.#entries.keys()) {
        this.#delete(key);
        this.#evicted++;
        if (fits(0, 0)) break;
      }
      return true;
    }
    const victims: Entry[] = [];
    let count = 0;
    let bytes = 0;
    while (!fits(count, bytes)) {
      const e = heap.pop();
      if (e === undefined) break;
      if (this.#entries.get(e.key) !== e) continue; // stale
      victims.push(e);
      count++;
      bytes += e.tx.bytes.length;
      if (e.priority >= priority) {
        for (const v of victims) heap.push(v);
        return false;
      }
    }
    for (const v of victims) {
      this.#delete(v.key);
      this.#evicted++;
    }
    return fits(0, 0);
  }

  /** Drop stale heap entries once they outnumber the live ones. */
  #compactHeap(): void {
    const heap = this.#heap;
    if (heap !== undefined && heap.size > 2 * this.#entries.size + 64) heap.reset(this.#entries.values());
  }
}
