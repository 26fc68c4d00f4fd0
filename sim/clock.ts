/**
 * Virtual time for the deterministic simulator.
 *
 * `VirtualClock` implements the protocol's `Clock` (src/core/clock.ts) on a
 * virtual millisecond timeline that starts at 0 and moves only inside `run`.
 * Timers live in a binary min-heap ordered by (deadline, sequence id), so
 * timers due at the same instant fire in the order they were set; `clearTimer`
 * is O(1) (the entry is marked dead and skipped when it reaches the top; the
 * heap is compacted when dead entries outnumber live ones).
 *
 * The driver, `run(untilMs)`, is async because the code it drives is: a timer
 * callback (a packet arriving, say) sets off promise continuations and
 * `process.nextTick` callbacks, and those must finish at the same virtual
 * instant, before time moves on. `run` therefore fires every timer due at the
 * current instant, then settles the JS job queues once by awaiting one
 * `setImmediate` (the event loop drains the nextTick and microtask queues
 * completely before the check phase), and repeats: timers set at the same
 * instant by the settled continuations fire next, still at the same instant.
 * One settle per distinct instant, not per timer. Work that waits for real
 * I/O (the thread pool, sockets, files) is not settled: the simulated code
 * must not depend on it.
 *
 * Nothing here reads wall time or `Math.random`.
 */
import type { Clock, TimerHandle } from '../src/core/clock.ts';

/** One scheduled callback; doubles as the caller's `TimerHandle`. */
class Timer implements TimerHandle {
  readonly id: number;
  readonly at: number;
  /** Undefined once fired or cleared. */
  fn: (() => void) | undefined;

  constructor(id: number, at: number, fn: () => void) {
    this.id = id;
    this.at = at;
    this.fn = fn;
  }
}

const before = (a: Timer, b: Timer): boolean => a.at < b.at || (a.at === b.at && a.id < b.id);

/** Drains the JS job queues (nextTick + promise jobs) left behind by the callbacks of one instant. */
export type Settle = () => Promise<void>;

const settleImmediate: Settle = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface VirtualClockOptions {
  /** `wallNow()` is this plus `now()` (default 1_700_000_000_000, as ManualClock). */
  readonly epochMs?: number;
  /** How `run` lets the job queues settle after each instant (default: await one setImmediate). */
  readonly settle?: Settle;
}

export interface RunOptions {
  /** Stop after this many timers have fired (time then stays at the last one's instant). */
  readonly maxEvents?: number;
}

export class VirtualClock implements Clock {
  readonly #epoch: number;
  readonly #settle: Settle;
  #now = 0;
  #nextId = 1;
  #heap: Timer[] = [];
  /** Cleared timers still in the heap. */
  #dead = 0;
  #running = false;
  /** Timers fired since construction (or `resetCounters`). */
  eventsFired = 0;
  /** Distinct instants settled by `run` (one job-queue settle each). */
  instantsSettled = 0;

  constructor(options: VirtualClockOptions = {}) {
    this.#epoch = options.epochMs ?? 1_700_000_000_000;
    this.#settle = options.settle ?? settleImmediate;
  }

  now(): number {
    return this.#now;
  }

  /** Whole milliseconds, like `Date.now()` (timestamps on the wire are integers; `now()` may be fractional). */
  wallNow(): number {
    return Math.floor(this.#epoch + this.#now);
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    return this.schedule(this.#now + (delayMs > 0 ? delayMs : 0), fn);
  }

  /** Run `fn` at virtual time `atMs` (now, if that is in the past). */
  schedule(atMs: number, fn: () => void): TimerHandle {
    const t = new Timer(this.#nextId++, atMs > this.#now ? atMs : this.#now, fn);
    this.#push(t);
    return t;
  }

  clearTimer(handle: TimerHandle): void {
    if (!(handle instanceof Timer) || handle.fn === undefined) return;
    handle.fn = undefined;
    this.#dead++;
    if (this.#dead > 1024 && this.#dead * 2 > this.#heap.length) this.#compact();
  }

  /** Live timers waiting to fire. */
  get pendingTimers(): number {
    return this.#heap.length - this.#dead;
  }

  /** The earliest pending deadline, if any. */
  nextDeadline(): number | undefined {
    return this.#peek()?.at;
  }

  get running(): boolean {
    return this.#running;
  }

  resetCounters(): void {
    this.eventsFired = 0;
    this.instantsSettled = 0;
  }

  /** `run(now() + ms)`. */
  advance(ms: number, options?: RunOptions): Promise<void> {
    return this.run(this.#now + ms, options);
  }

  /**
   * Fire every timer due at or before `untilMs`, in (deadline, id) order, with
   * the job queues settled after each instant; then set the time to `untilMs`.
   * With `maxEvents`, stops early once that many timers have fired. A callback
   * that throws rejects the run (the timer is gone; the clock stays usable).
   */
  async run(untilMs: number, options: RunOptions = {}): Promise<void> {
    if (this.#running) throw new Error('VirtualClock.run is already running');
    this.#running = true;
    let budget = options.maxEvents ?? Infinity;
    try {
      for (;;) {
        const first = this.#peek();
        if (first === undefined || first.at > untilMs || budget <= 0) break;
        const instant = first.at;
        this.#now = instant;
        // Every timer of this instant, including those its callbacks set for now.
        for (let t = this.#peek(); t !== undefined && t.at === instant && budget > 0; t = this.#peek()) {
          this.#pop();
          const fn = t.fn!;
          t.fn = undefined;
          this.eventsFired++;
          budget--;
          fn();
        }
        this.instantsSettled++;
        await this.#settle();
      }
      if (budget > 0 && untilMs > this.#now) this.#now = untilMs;
    } finally {
      this.#running = false;
    }
  }

  // ---- Heap ----

  /** The earliest live timer, dropping dead ones from the top. */
  #peek(): Timer | undefined {
    const h = this.#heap;
    while (h.length > 0 && h[0]!.fn === undefined) {
      this.#pop();
      this.#dead--;
    }
    return h[0];
  }

  #push(t: Timer): void {
    const h = this.#heap;
    let i = h.length;
    h.push(t);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (!before(t, parent)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = t;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length > 0) this.#siftDown(last, 0);
  }

  #siftDown(t: Timer, from: number): void {
    const h = this.#heap;
    const n = h.length;
    let i = from;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r]!, h[l]!) ? r : l;
      const child = h[c]!;
      if (!before(child, t)) break;
      h[i] = child;
      i = c;
    }
    h[i] = t;
  }

  /** Drop every dead entry and rebuild the heap (O(n), amortised by the dead it removes). */
  #compact(): void {
    const live = this.#heap.filter((t) => t.fn !== undefined);
    this.#heap = live;
    this.#dead = 0;
    for (let i = (live.length >> 1) - 1; i >= 0; i--) this.#siftDown(live[i]!, i);
  }
}
