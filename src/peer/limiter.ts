/**
 * Per-connection rate limits (DESIGN.md, Peers): token buckets for messages
 * and bytes per connection, and one per message type that declares
 * `ratePerSecond`. The mux asks `admit` at the first chunk of every message,
 * before buffering or decoding it, and reports every chunk to `charge`, so the
 * byte bucket may go into debt; while it is in debt, new messages are dropped.
 */
import type { Reason } from '../core/errors.ts';
import { TokenBucket } from '../core/token-bucket.ts';
import type { InboundLimiter } from '../mux/mux.ts';
import type { MessageType } from '../wire/registry.ts';

export interface RateLimits {
  /** Messages per second from one connection (burst: twice). */
  readonly messagesPerSecond: number;
  /** Bytes per second from one connection (burst: twice). */
  readonly bytesPerSecond: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = Object.freeze({
  messagesPerSecond: 200,
  bytesPerSecond: 128 * 1024 * 1024,
});

export class ConnectionLimiter implements InboundLimiter {
  readonly #messages: TokenBucket;
  readonly #bytes: TokenBucket;
  readonly #perType = new Map<number, TokenBucket>();
  /** Messages dropped, by the bucket that refused them. */
  readonly dropped = { messages: 0, bytes: 0, type: 0 };

  constructor(limits: RateLimits, now: number) {
    this.#messages = new TokenBucket(limits.messagesPerSecond, limits.messagesPerSecond * 2, now);
    this.#bytes = new TokenBucket(limits.bytesPerSecond, limits.bytesPerSecond * 2, now);
  }

  admit(type: MessageType<unknown>, now: number): Reason | undefined {
    if (this.#bytes.available(now) < 0) {
      this.dropped.bytes++;
      return 'MSG_RATE_LIMITED';
    }
    // The connection bucket is checked first, so a message it refuses spends no per-type token.
    if (this.#messages.available(now) < 1) {
      this.dropped.messages++;
      return 'MSG_RATE_LIMITED';
    }
    if (type.ratePerSecond !== undefined) {
      let bucket = this.#perType.get(type.id);
      if (bucket === undefined) {
        bucket = new TokenBucket(type.ratePerSecond, Math.max(1, type.ratePerSecond * 2), now);
        this.#perType.set(type.id, bucket);
      }
      if (!bucket.take(now)) {
        this.dropped.type++;
        return 'MSG_RATE_LIMITED';
      }
    }
    this.#messages.take(now);
    return undefined;
  }

  charge(bytes: number, now: number): void {
    this.#bytes.charge(now, bytes);
  }
}
