/**
 * Recently seen keys with a time-to-live and a size bound. `TtlMap` keeps a
 * value per key: `get` finds it for `ttlMs` after `set`, and the oldest entry
 * goes once the bound is reached. Entries are kept in insertion order
 * (setting again moves a key to the end), so `prune` stops at the first live
 * one. `SeenSet` is the same without values. Sans-I/O: every call takes `now`.
 */
export class TtlMap<K, V> {
  readonly #m = new Map<K, { until: number; value: V }>();
  readonly #cap: number;
  readonly #ttl: number;

  constructor(cap: number, ttlMs: number) {
    if (!(cap > 0) || !(ttlMs > 0)) throw new RangeError('TtlMap needs a positive bound and TTL');
    this.#cap = cap;
    this.#ttl = ttlMs;
  }

  get size(): number {
    return this.#m.size;
  }

  get(k: K, now: number): V | undefined {
    const e = this.#m.get(k);
    return e !== undefined && e.until > now ? e.value : undefined;
  }

  has(k: K, now: number): boolean {
    return this.get(k, now) !== undefined;
  }

  set(k: K, value: V, now: number): void {
    this.#m.delete(k);
    this.#m.set(k, { until: now + this.#ttl, value });
    if (this.#m.size > this.#cap) this.#m.delete(this.#m.keys().next().value!);
  }

  delete(k: K): void {
    this.#m.delete(k);
  }

  /** Drop every expired entry (call now and then; `get` is right without it). */
  prune(now: number): void {
    for (const [k, e] of this.#m) {
      if (e.until > now) break;
      this.#m.delete(k);
    }
  }
}

export class SeenSet<K> {
  readonly #m: TtlMap<K, true>;

  constructor(cap: number, ttlMs: number) {
    this.#m = new TtlMap(cap, ttlMs);
  }

  get size(): number {
    return this.#m.size;
  }

  has(k: K, now: number): boolean {
    return this.#m.has(k, now);
  }

  add(k: K, now: number): void {
    this.#m.set(k, true, now);
  }

  delete(k: K): void {
    this.#m.delete(k);
  }

  prune(now: number): void {
    this.#m.prune(now);
  }
}
