/**
 * The one clock (DESIGN.md, Principle 2). Protocol code never reads wall time or
 * schedules timers itself; it receives a `Clock`. `SystemClock` is the production
 * implementation; `ManualClock` is for tests and the simulator, where time only
 * moves when the test says so.
 */

export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Milliseconds on a monotonic timeline (not necessarily the Unix epoch). */
  now(): number;
  /** Milliseconds since the Unix epoch, for timestamps that cross the wire. */
  wallNow(): number;
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** Real time: `performance.now()` for intervals, `Date.now()` for timestamps. */
export class SystemClock implements Clock {
  #next = 1;
  readonly #timers = new Map<number, ReturnType<typeof setTimeout>>();

  now(): number {
    return performance.now();
  }

  wallNow(): number {
    return Date.now();
  }

  /**
   * Fires at or after `now() + delayMs`, never before: Node's timers are
   * millisecond-granular and can wake up to 1 ms early against
   * `performance.now()`, so an early wake-up re-arms for the remainder.
   */
  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const id = this.#next++;
    const at = this.now() + Math.max(0, delayMs);
    const arm = (ms: number): void => {
      const t = setTimeout(() => {
        const left = at - this.now();
        if (left > 0) return arm(Math.ceil(left));
        this.#timers.delete(id);
        fn();
      }, ms);
      t.unref?.();
      this.#timers.set(id, t);
    };
    arm(Math.max(0, Math.ceil(delayMs)));
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    const t = this.#timers.get(handle.id);
    if (t !== undefined) {
      clearTimeout(t);
      this.#timers.delete(handle.id);
    }
  }
}

interface PendingTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * Time that moves only when told. Timers fire in deadline order (ties in the
 * order they were set) during `advance`/`runUntil`.
 */
export class ManualClock implements Clock {
  #now: number;
  readonly #epoch: number;
  #next = 1;
  #timers: PendingTimer[] = [];

  constructor(startMs = 0, epochMs = 1_700_000_000_000) {
    this.#now = startMs;
    this.#epoch = epochMs;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#epoch + this.#now;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const id = this.#next++;
    this.#timers.push({ id, at: this.#now + Math.max(0, delayMs), fn });
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle.id);
  }

  /** The earliest pending deadline, if any. */
  nextDeadline(): number | undefined {
    let min: number | undefined;
    for (const t of this.#timers) if (min === undefined || t.at < min) min = t.at;
    return min;
  }

  /** Move time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    this.runUntil(this.#now + ms);
  }

  runUntil(target: number): void {
    for (;;) {
      let due: PendingTimer | undefined;
      for (const t of this.#timers) {
        if (t.at <= target && (due === undefined || t.at < due.at || (t.at === due.at && t.id < due.id))) due = t;
      }
      if (due === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = Math.max(this.#now, target);
  }

  pendingTimers(): number {
    return this.#timers.length;
  }
}

/**
 * One timer armed for the earliest of the deadlines it is given: for an I/O
 * adapter polling a sans-I/O engine at the engine's next deadline. `arm`
 * moves the timer earlier, never later (a later deadline waits for the
 * current one to fire, when the engine is asked again); `clear` disarms it.
 */
export class DeadlineTimer {
  readonly #clock: Clock;
  readonly #fire: () => void;
  #timer: TimerHandle | undefined;
  #at = Infinity;

  constructor(clock: Clock, fire: () => void) {
    this.#clock = clock;
    this.#fire = fire;
  }

  arm(at: number | undefined): void {
    const when = at ?? Infinity;
    if (when >= this.#at) return;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#at = when;
    this.#timer = this.#clock.setTimer(Math.max(0, Math.ceil(when - this.#clock.now())), () => {
      this.#timer = undefined;
      this.#at = Infinity;
      this.#fire();
    });
  }

  clear(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }
}
