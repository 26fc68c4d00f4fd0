/**
 * A token bucket driven by the caller's clock (sans-I/O): `rate` tokens per
 * second accrue up to `burst`. `take` spends only when enough is there;
 * `charge` spends after the fact (measured work) and may go negative, which
 * then blocks `take` until the debt is repaid.
 */
export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #at: number;

  constructor(ratePerSecond: number, burst: number, now: number) {
    if (!(ratePerSecond >= 0) || !(burst > 0)) throw new RangeError('token bucket needs rate >= 0 and burst > 0');
    this.rate = ratePerSecond;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
      this.#at = now;
    }
  }

  available(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }

  take(now: number, cost = 1): boolean {
    this.#refill(now);
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }

  charge(now: number, cost: number): void {
    this.#refill(now);
    this.#tokens -= cost;
  }

  /** Full again, so the bucket carries no state worth keeping. */
  isFull(now: number): boolean {
    return this.available(now) >= this.burst;
  }
}
