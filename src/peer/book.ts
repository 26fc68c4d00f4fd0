/**
 * `PeerBook`: the addresses this node knows, with the policy for dialing them
 * again and for forgetting them. Sans-I/O in time (every method takes `now`,
 * wall-clock ms) but write-through to a `PeerStore`.
 *
 * Design choices:
 * - **Write-through.** Every change goes to the store first and to memory only
 *   once it committed, so a method that returned survives `kill -9`, and one
 *   that threw (`STORE_*`) left both unchanged. All entries are loaded at
 *   construction and read from memory afterwards.
 * - **Source trust.** Sources rank `must-connect` > `static` > `operator` > `dns`
 *   > `mdns` > `inbound` > `kademlia` > `peer-exchange` (configuration, then the
 *   operator, then curated seeds, then what is observed, then hearsay). `add` of a
 *   known address from a source at least as trusted refreshes `lastSeen`, raises
 *   the source and takes the announced peer-id; from a less trusted source it
 *   changes nothing, so gossip cannot keep a dead address alive. A peer-id is
 *   never cleared; `recordSuccess` (authenticated) always sets it.
 * - **Backoff** runs from `lastAttempt`: `minRetryMs` while the address is not
 *   failing, then `baseBackoffMs · 2^(consecutiveFailures−1)` capped at
 *   `maxBackoffMs`. `recordFailure` moves `lastAttempt` up to the failure time,
 *   so backoff counts from when the failure was known, and a failure reported
 *   without `recordAttempt` still backs off. `minRetryMs` spaces this book's
 *   own attempts only: an address that is not failing and has not been tried
 *   since the book was opened is due at once, so a restarted node redials the
 *   peers it had without waiting out the previous process's last attempt.
 * - `record*` on an address the book does not hold (pruned or removed while a
 *   dial was in flight) is a no-op returning `undefined`.
 * - **Forgetting.** `prune` forgets an address after `forgetAfterFailures`
 *   consecutive failures unless it succeeded within `forgetAfterMs`; then, above
 *   `maxEntries`, evicts the worst: never successful first, then most consecutive
 *   failures, then oldest `lastSeen`. `must-connect` and `static` addresses are
 *   never removed by `prune` (so the book may stay above `maxEntries` if they
 *   alone exceed it). `add` does not evict: the caller prunes periodically.
 * - Orders are total (address breaks ties), so results do not depend on the
 *   order entries were loaded or added.
 */
import type { Reason } from '../core/errors.ts';
import type { PeerStore } from './store.ts';
import type { AddressSource, PeerBookEntry } from './types.ts';

export interface PeerBookOptions {
  /** Wait after the first consecutive failure; doubles with each further one. */
  readonly baseBackoffMs: number;
  /** Longest wait between attempts to a failing address. */
  readonly maxBackoffMs: number;
  /** Wait between attempts to an address that is not failing. */
  readonly minRetryMs: number;
  /** Consecutive failures after which an address without a recent success is forgotten. */
  readonly forgetAfterFailures: number;
  /** A success more recent than this keeps a failing address. */
  readonly forgetAfterMs: number;
  /** `prune` evicts down to this many entries. */
  readonly maxEntries: number;
}

export const DEFAULT_PEER_BOOK_OPTIONS: PeerBookOptions = Object.freeze({
  baseBackoffMs: 30_000,
  maxBackoffMs: 6 * 3_600_000,
  minRetryMs: 60_000,
  forgetAfterFailures: 10,
  forgetAfterMs: 7 * 86_400_000,
  maxEntries: 10_000,
});

const SOURCE_RANK: Readonly<Record<AddressSource, number>> = {
  'must-connect': 7, static: 6, operator: 5, dns: 4, mdns: 3, inbound: 2, kademlia: 1, 'peer-exchange': 0,
};

const isProtected = (e: PeerBookEntry): boolean => e.source === 'must-connect' || e.source === 'static';

const byAddress = (a: PeerBookEntry, b: PeerBookEntry): number => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);

/** More successes, fewer consecutive failures, more recent success. */
const bestFirst = (a: PeerBookEntry, b: PeerBookEntry): number =>
  b.successes - a.successes || a.consecutiveFailures - b.consecutiveFailures || b.lastSuccess - a.lastSuccess || byAddress(a, b);

/** Never successful, more consecutive failures, older `lastSeen`. */
const worstFirst = (a: PeerBookEntry, b: PeerBookEntry): number =>
  Number(a.successes > 0) - Number(b.successes > 0) || b.consecutiveFailures - a.consecutiveFailures || a.lastSeen - b.lastSeen || byAddress(a, b);

const INTEGER_OPTIONS: ReadonlySet<keyof PeerBookOptions> = new Set(['forgetAfterFailures', 'maxEntries']);

function resolveOptions(options: Partial<PeerBookOptions>): PeerBookOptions {
  const out: Record<string, number> = {};
  for (const [key, fallback] of Object.entries(DEFAULT_PEER_BOOK_OPTIONS) as [keyof PeerBookOptions, number][]) {
    const v = options[key] ?? fallback;
    const ok = INTEGER_OPTIONS.has(key) ? Number.isSafeInteger(v) && v >= 1 : Number.isFinite(v) && v >= 0;
    if (!ok) throw new RangeError(`PeerBook option ${key} must be ${INTEGER_OPTIONS.has(key) ? 'an integer >= 1' : 'a finite number >= 0'}, got ${String(v)}`);
    out[key] = v;
  }
  return Object.freeze(out as unknown as PeerBookOptions);
}

function checkTime(now: number): void {
  if (!Number.isFinite(now) || now < 0) throw new RangeError(`time must be a finite number of ms >= 0, got ${String(now)}`);
}

export class PeerBook {
  readonly options: PeerBookOptions;
  readonly #store: PeerStore;
  readonly #entries = new Map<string, PeerBookEntry>();
  /** Addresses `recordAttempt` saw since this book was opened. */
  readonly #triedHere = new Set<string>();

  /** Loads every valid entry of `store` (invalid rows are counted in `store.stats()`). */
  constructor(store: PeerStore, options: Partial<PeerBookOptions> = {}) {
    this.options = resolveOptions(options);
    this.#store = store;
    for (const e of store.listPeers()) this.#entries.set(e.address, Object.freeze(e));
  }

  get size(): number {
    return this.#entries.size;
  }

  get(address: string): PeerBookEntry | undefined {
    return this.#entries.get(address);
  }

  /** A snapshot of every entry. */
  entries(): PeerBookEntry[] {
    return [...this.#entries.values()];
  }

  /** Learns `address` from `source` (see the module header for a known address). Returns the entry as stored. */
  add(address: string, source: AddressSource, now: number, peerId?: string): PeerBookEntry {
    checkTime(now);
    const e = this.#entries.get(address);
    if (e === undefined) {
      return this.#put({
        address, peerId: peerId ?? null, source, firstSeen: now, lastSeen: now, lastAttempt: 0, lastSuccess: 0,
        successes: 0, failures: 0, consecutiveFailures: 0, lastFailureReason: null,
      });
    }
    if (SOURCE_RANK[source] < SOURCE_RANK[e.source]) return e;
    const next = { ...e, source, lastSeen: Math.max(e.lastSeen, now), peerId: peerId ?? e.peerId };
    if (next.source === e.source && next.lastSeen === e.lastSeen && next.peerId === e.peerId) return e;
    return this.#put(next);
  }

  /** A dial to `address` starts now. */
  recordAttempt(address: string, now: number): PeerBookEntry | undefined {
    checkTime(now);
    this.#triedHere.add(address);
    return this.#update(address, (e) => ({ ...e, lastAttempt: now }));
  }

  /** An authenticated connection with `peerId` at `address` (either direction). */
  recordSuccess(address: string, peerId: string, now: number): PeerBookEntry | undefined {
    checkTime(now);
    return this.#update(address, (e) => ({
      ...e, peerId, lastSuccess: now, lastSeen: Math.max(e.lastSeen, now), successes: e.successes + 1, consecutiveFailures: 0,
    }));
  }

  /** A dial to `address` failed with `reason`. */
  recordFailure(address: string, reason: Reason, now: number): PeerBookEntry | undefined {
    checkTime(now);
    return this.#update(address, (e) => ({
      ...e, lastAttempt: Math.max(e.lastAttempt, now), failures: e.failures + 1,
      consecutiveFailures: e.consecutiveFailures + 1, lastFailureReason: reason,
    }));
  }

  /** Forgets `address`; returns whether the book held it. */
  remove(address: string): boolean {
    if (!this.#entries.has(address)) return false;
    this.#store.deletePeer(address);
    return this.#entries.delete(address);
  }

  /** The earliest time `entry` may be dialed again. */
  nextAttemptAt(entry: PeerBookEntry): number {
    const { baseBackoffMs, maxBackoffMs, minRetryMs } = this.options;
    const n = entry.consecutiveFailures;
    if (n === 0 && !this.#triedHere.has(entry.address)) return 0;
    return entry.lastAttempt + (n > 0 ? Math.min(baseBackoffMs * 2 ** (n - 1), maxBackoffMs) : minRetryMs);
  }

  /** Up to `limit` entries due for a dial at `now` and not in `exclude`, best first. */
  dialCandidates(now: number, limit: number, exclude: ReadonlySet<string> = new Set()): PeerBookEntry[] {
    checkTime(now);
    if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be an integer >= 0, got ${String(limit)}`);
    const due = [...this.#entries.values()].filter((e) => !exclude.has(e.address) && this.nextAttemptAt(e) <= now);
    return due.sort(bestFirst).slice(0, limit);
  }

  /** Forgets failing addresses and evicts down to `maxEntries`, in one store transaction. Returns the removed addresses. */
  prune(now: number): string[] {
    checkTime(now);
    const { forgetAfterFailures, forgetAfterMs, maxEntries } = this.options;
    const removed: string[] = [];
    const evictable: PeerBookEntry[] = [];
    let kept = 0;
    for (const e of this.#entries.values()) {
      const stale = e.successes === 0 || now - e.lastSuccess > forgetAfterMs;
      if (isProtected(e)) kept++;
      else if (e.consecutiveFailures >= forgetAfterFailures && stale) removed.push(e.address);
      else evictable.push(e);
    }
    const excess = kept + evictable.length - maxEntries;
    if (excess > 0) for (const e of evictable.sort(worstFirst).slice(0, excess)) removed.push(e.address);
    this.#store.deletePeers(removed);
    for (const a of removed) this.#entries.delete(a);
    return removed;
  }

  #update(address: string, change: (e: PeerBookEntry) => PeerBookEntry): PeerBookEntry | undefined {
    const e = this.#entries.get(address);
    return e === undefined ? undefined : this.#put(change(e));
  }

  #put(entry: PeerBookEntry): PeerBookEntry {
    this.#store.upsertPeer(entry);
    const frozen = Object.freeze(entry);
    this.#entries.set(entry.address, frozen);
    return frozen;
  }
}
