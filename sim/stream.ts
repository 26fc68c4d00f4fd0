/**
 * One simulated connection: two `SimStream`s (the ends) joined by two `Pipe`s
 * (one per direction). A pipe is the ordered queue of what one end wrote and
 * the other has not received yet: data chunks (in the chunks written) and the
 * control segments FIN (orderly end, queued behind the data) and RST (reset,
 * which drops the queue and overtakes it). Each item carries its virtual
 * arrival time, non-decreasing along the queue; the pipe keeps one clock timer
 * for its head. The network (network.ts) computes the arrival times and
 * decides at arrival whether a partition holds the pipe.
 *
 * A stream behaves like `MemoryStream` (src/transport/memory.ts) seen from its
 * user: nothing is delivered inside `write`; bytes arriving before handlers are
 * set, or while paused, are held in order; `write` returns false once the
 * bytes written and not yet handed to the receiver's `data` handler (in flight
 * plus held by the receiver) reach the high-water mark, and every write asks
 * for a `drain` once they are below it again (so the mux's low-water gate is
 * woken too). Closing follows TCP (src/transport/tcp.ts): `end()` sends a FIN
 * after the queued bytes; the remote answers with its own FIN (after what it
 * still had queued) and both ends report an orderly close once they have
 * delivered everything, the `end()` side about one round trip later; if no FIN
 * comes back within `endLingerMs` the stream is destroyed. `destroy(err)`
 * reports `err` locally on the next event, drops everything queued both ways,
 * and the remote sees IO_ERROR 'connection reset by peer' one latency later.
 */
import { PqnetError } from '../src/core/errors.ts';
import type { TimerHandle } from '../src/core/clock.ts';
import type { ByteStream, StreamHandlers } from '../src/transport/types.ts';

export const DATA = 0;
export const FIN = 1;
export const RST = 2;

interface Item {
  readonly kind: number;
  readonly bytes: Uint8Array | undefined;
  at: number;
}

/** What a stream needs from the network. */
export interface StreamContext {
  readonly highWaterMark: number;
  readonly endLingerMs: number;
  now(): number;
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  schedule(atMs: number, fn: () => void): TimerHandle;
  clearTimer(h: TimerHandle): void;
  /** Queue `bytes` (already copied) on `pipe` with its arrival time. */
  transmit(pipe: Pipe, bytes: Uint8Array): void;
  /** Queue a FIN (behind the data) or an RST (dropping the queue) on `pipe`. */
  control(pipe: Pipe, kind: typeof FIN | typeof RST): void;
  /** Whether the pipe's link is cut at its head's arrival (the pipe is then held). */
  holds(pipe: Pipe): boolean;
  closed(stream: SimStream): void;
}

/** One direction of a connection: what `from` wrote and `to` has not received. */
export class Pipe {
  readonly ctx: StreamContext;
  readonly from: SimStream;
  readonly to: SimStream;
  /** Opaque per-direction link state, owned by the network. */
  readonly link: unknown;
  items: Item[] = [];
  head = 0;
  /** Data bytes queued. */
  bytes = 0;
  /** Arrival time of the last item queued: later items never arrive before it. */
  lastAt = 0;
  held = false;
  #timer: TimerHandle | undefined;
  #firing = false;

  constructor(ctx: StreamContext, from: SimStream, to: SimStream, link: unknown) {
    this.ctx = ctx;
    this.from = from;
    this.to = to;
    this.link = link;
  }

  push(kind: number, bytes: Uint8Array | undefined, at: number): void {
    this.items.push({ kind, bytes, at });
    if (bytes !== undefined) this.bytes += bytes.length;
    this.lastAt = at;
    this.arm();
  }

  /** Drop every queued item (a reset). */
  drop(): void {
    if (this.#timer !== undefined) this.ctx.clearTimer(this.#timer);
    this.#timer = undefined;
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }

  /** Raise every queued arrival to at least `at` (a partition healed). */
  release(at: number): void {
    this.held = false;
    for (let i = this.head; i < this.items.length; i++) {
      const it = this.items[i]!;
      if (it.at < at) it.at = at;
    }
    if (this.lastAt < at) this.lastAt = at;
    this.arm();
  }

  arm(): void {
    if (this.#timer !== undefined || this.#firing || this.held || this.head >= this.items.length) return;
    this.#timer = this.ctx.schedule(this.items[this.head]!.at, this.#fire);
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    if (this.ctx.holds(this)) return;
    this.#firing = true;
    try {
      const to = this.to;
      const now = this.ctx.now();
      // The receiver's handlers may write, pause, end or destroy: re-read the queue every time.
      while (this.head < this.items.length) {
        const it = this.items[this.head]!;
        if (it.at > now) break;
        this.items[this.head++] = undefined as unknown as Item;
        if (it.kind === DATA) {
          this.bytes -= it.bytes!.length;
          to.receive(it.bytes!);
        } else to.receiveEnd(it.kind === RST ? new PqnetError('IO_ERROR', 'connection reset by peer') : null);
      }
      if (this.head >= this.items.length) {
        this.items = [];
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
    } finally {
      this.#firing = false;
    }
    this.from.maybeDrain();
    this.arm();
  };
}

export class SimStream implements ByteStream {
  readonly remoteAddress: string;
  readonly remoteHost: string;
  readonly localAddress: string;
  readonly ctx: StreamContext;
  /** The network's bookkeeping (host, listener, ephemeral port). */
  readonly owner: unknown;
  peer!: SimStream;
  out!: Pipe;
  #handlers: StreamHandlers | undefined;
  #inbox: Uint8Array[] = [];
  #inboxHead = 0;
  #inboxBytes = 0;
  #paused = false;
  #wantDrain = false;
  /** `end()` called (or the FIN sent in answer to the remote's). */
  #ended = false;
  #destroyed = false;
  /** The remote's FIN arrived. */
  #remoteEnded = false;
  #closed = false;
  #closeError: PqnetError | undefined;
  #reported = false;
  #kick: TimerHandle | undefined;
  #linger: TimerHandle | undefined;

  constructor(ctx: StreamContext, owner: unknown, localAddress: string, remoteAddress: string, remoteHost: string) {
    this.ctx = ctx;
    this.owner = owner;
    this.localAddress = localAddress;
    this.remoteAddress = remoteAddress;
    this.remoteHost = remoteHost;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes written here that the remote's `data` handler has not been given yet (in flight or held there). */
  get bufferedBytes(): number {
    return this.out.bytes + this.peer.#inboxBytes;
  }

  /** Destroyed, reset or closed: takes no more bytes. */
  get gone(): boolean {
    return this.#destroyed || this.#closed;
  }

  setHandlers(handlers: StreamHandlers): void {
    this.#handlers = handlers;
    this.#scheduleFlush();
  }

  write(data: Uint8Array): boolean {
    if (this.#ended || this.#destroyed || this.#closed) return false;
    if (data.length > 0) {
      this.ctx.transmit(this.out, data.slice());
      this.#wantDrain = true;
    }
    return this.bufferedBytes < this.ctx.highWaterMark;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    if (this.#inboxBytes > 0 || this.#remoteEnded) this.#scheduleFlush();
  }

  end(): void {
    if (this.#ended || this.#destroyed || this.#closed) return;
    this.#ended = true;
    this.ctx.control(this.out, FIN);
    this.#linger = this.ctx.setTimer(this.ctx.endLingerMs, () => this.destroy());
  }

  destroy(error?: PqnetError): void {
    if (this.#destroyed || this.#closed) return;
    this.#destroyed = true;
    this.#clearInbox();
    this.peer.out.drop();
    if (!this.peer.#closed && !this.peer.#destroyed) this.ctx.control(this.out, RST);
    else this.out.drop();
    this.ctx.setTimer(0, () => this.#finish(error));
  }

  // ---- Called by the pipe ----

  receive(bytes: Uint8Array): void {
    if (this.#destroyed || this.#closed) return;
    if (this.#handlers !== undefined && !this.#paused && this.#inboxHead === this.#inbox.length) this.#handlers.data(bytes);
    else {
      this.#inbox.push(bytes);
      this.#inboxBytes += bytes.length;
    }
  }

  /** FIN (`null`) or RST (the error) from the remote. */
  receiveEnd(error: PqnetError | null): void {
    if (this.#destroyed || this.#closed) return;
    if (error !== null) {
      this.#destroyed = true;
      this.#clearInbox();
      this.out.drop();
      this.#finish(error);
      return;
    }
    this.#remoteEnded = true;
    if (!this.#ended) {
      this.#ended = true;
      this.ctx.control(this.out, FIN);
    }
    this.#maybeEndClose();
  }

  /** A drain for the writer once its bytes are below the mark (after every write, as MemoryStream). */
  maybeDrain(): void {
    if (!this.#wantDrain || this.bufferedBytes >= this.ctx.highWaterMark) return;
    this.#wantDrain = false;
    this.#handlers?.drain();
  }

  // ---- Internals ----

  #clearInbox(): void {
    this.#inbox = [];
    this.#inboxHead = 0;
    this.#inboxBytes = 0;
  }

  #scheduleFlush(): void {
    if (this.#kick !== undefined) return;
    this.#kick = this.ctx.setTimer(0, () => {
      this.#kick = undefined;
      this.#flush();
    });
  }

  /** Hand held bytes to the handler, then report an end or close that waited for them. */
  #flush(): void {
    if (this.#closed) {
      this.#report();
      return;
    }
    while (this.#handlers !== undefined && !this.#paused && this.#inboxHead < this.#inbox.length && !this.#destroyed) {
      const b = this.#inbox[this.#inboxHead]!;
      this.#inbox[this.#inboxHead++] = undefined as unknown as Uint8Array;
      this.#inboxBytes -= b.length;
      this.#handlers.data(b);
    }
    if (this.#inboxHead >= this.#inbox.length) this.#clearInbox();
    this.peer.maybeDrain();
    this.#maybeEndClose();
  }

  /** Orderly close: the remote's FIN is in and every byte before it was handed over. */
  #maybeEndClose(): void {
    if (this.#remoteEnded && this.#inboxBytes === 0 && this.#handlers !== undefined && !this.#closed) this.#finish(undefined);
  }

  #finish(error: PqnetError | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    if (this.#linger !== undefined) this.ctx.clearTimer(this.#linger);
    this.#linger = undefined;
    this.ctx.closed(this);
    this.#report();
  }

  #report(): void {
    if (this.#reported || this.#handlers === undefined) return;
    this.#reported = true;
    const h = this.#handlers;
    this.#handlers = undefined;
    h.close(this.#closeError);
  }
}
