/**
 * The I/O adapter around the handshake and the frame codec: it drives a
 * `Handshake` over a `ByteStream`, then carries encrypted frames in both
 * directions. It is thin on purpose; all protocol decisions are in
 * handshake.ts and frames.ts.
 */
import { EventEmitter } from 'node:events';
import { toHex, u64BE, wipe } from '../core/bytes.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { isPqnetError, PqnetError, Reasons, reasonFromWire, toPqnetError, type Reason } from '../core/errors.ts';
import type { Limits } from '../core/limits.ts';
import { FrameSplitter, type FrameHeader } from '../wire/frame.ts';
import { createRegistry, Goodbye, Ping, Pong } from '../wire/messages.ts';
import type { MessageRegistry, MessageType } from '../wire/registry.ts';
import type { ByteStream } from '../transport/types.ts';
import type { AeadAlg, KemAlg } from './algorithms.ts';
import { FrameOpener, FrameSealer, type OpenedFrame } from './frames.ts';
import type { Handshake, HandshakeResult, RemoteIdentity, Role } from './handshake.ts';
import type { PeerId } from './identity.ts';
import type { CryptoProvider } from './provider.ts';

export interface SessionContext {
  readonly provider: CryptoProvider;
  readonly clock: Clock;
  readonly limits: Limits;
  /** Control messages are always understood; others pass through as frames. */
  readonly registry?: MessageRegistry;
}

export interface SessionStats {
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  rekeysIn: number;
  rekeysOut: number;
  /** PINGs left unanswered because the write buffer was full. */
  pongsDropped: number;
  /** Clock time of the last frame received (the session's start before any). */
  lastFrameAt: number;
}

export interface SessionEvents {
  /** Emitted once, with the reason (CLOSED, REMOTE_CLOSED, FRAME_*, IO_ERROR, ...). */
  close: [reason: PqnetError];
  /**
   * `bufferedBytes` is below `maxWriteBufferBytes`: always once it is again
   * after `sendFrame` returned false, and also after each end-of-turn write of
   * gathered frames that the transport took without pushing back (so it may
   * come when nobody waits).
   */
  drain: [];
}

/**
 * Write gathering. Frames sealed in the same turn of the event loop (a burst of
 * small messages, PONGs, credit grants) are copied into one buffer and handed to
 * the transport in one write at the end of the turn, so a burst costs one
 * syscall instead of one per frame. A sealed frame at least GATHER_FRAME_MAX_BYTES
 * long is written by itself (after whatever was gathered before it): copying it
 * would cost more than the write it saves. Once GATHER_BATCH_BYTES are gathered
 * they are written at once, so a batch stays small and bytes keep moving during
 * a long synchronous burst.
 */
const GATHER_FRAME_MAX_BYTES = 16 * 1024;
const GATHER_BATCH_BYTES = 64 * 1024;

/** GOODBYE's text is capped at 256 UTF-8 bytes by its schema. */
const GOODBYE_TEXT_BYTES = 256;

/** The longest prefix of `s` that fits `maxBytes` of UTF-8, never splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

export type FrameHandler = (frame: OpenedFrame, session: SecureSession) => void;

export interface StartOptions {
  /**
   * Deliver PING, PONG and GOODBYE to the handler too, instead of handling them
   * in the session; the handler passes them to `handleControl` (the mux does, after
   * its rate limits).
   */
  readonly delegateControl?: boolean;
}

const controlRegistry = createRegistry();
/** Messages the session answers itself (unless delegated); every other frame goes to the handler. */
const SESSION_CONTROL_IDS = new Set([Ping.id, Pong.id, Goodbye.id]);

export class SecureSession extends EventEmitter<SessionEvents> {
  readonly role: Role;
  readonly remote: RemoteIdentity;
  readonly kem: KemAlg;
  readonly aead: AeadAlg;
  readonly sessionId: Uint8Array;
  readonly remoteAddress: string;
  readonly remoteHost: string;
  readonly localAddress: string;
  /** Milliseconds from first handshake byte to session keys. */
  readonly handshakeMs: number;
  /** Handshake bytes received and sent (records, including any RETRY round); `stats` counts what follows. */
  readonly handshakeBytes: { readonly in: number; readonly out: number };
  readonly retries: number;
  readonly stats: SessionStats;

  readonly #stream: ByteStream;
  readonly #ctx: SessionContext;
  readonly #sealer: FrameSealer;
  readonly #opener: FrameOpener;
  readonly #splitter = new FrameSplitter();
  readonly #registry: MessageRegistry;
  readonly #seq = new Map<number, number>();
  readonly #pings = new Map<string, { at: number; resolve: (rtt: number) => void; reject: (e: PqnetError) => void }>();
  #handler: FrameHandler | undefined;
  #held: Uint8Array[] = [];
  /** Sealed frames not yet written to the stream (see GATHER_BATCH_BYTES), in order. */
  #gathered: Uint8Array[] = [];
  #gatheredBytes = 0;
  #flushScheduled = false;
  readonly #flushAtEndOfTurn = (): void => {
    this.#flushScheduled = false;
    this.#flushGathered(true);
  };
  #closeReason: PqnetError | undefined;
  #delegateControl = false;
  #pingCounter = 0;

  constructor(stream: ByteStream, result: HandshakeResult, ctx: SessionContext, handshakeMs: number, handshakeBytes: { in: number; out: number } = { in: 0, out: 0 }) {
    super();
    this.#stream = stream;
    this.#ctx = ctx;
    this.#registry = ctx.registry ?? controlRegistry;
    this.role = result.role;
    this.remote = result.remote;
    this.kem = result.kem;
    this.aead = result.aead;
    this.sessionId = result.sessionId;
    this.remoteAddress = stream.remoteAddress;
    this.remoteHost = stream.remoteHost;
    this.localAddress = stream.localAddress;
    this.handshakeMs = handshakeMs;
    this.handshakeBytes = { in: handshakeBytes.in - result.leftover.length, out: handshakeBytes.out };
    this.retries = result.retries;
    const now = ctx.clock.now();
    this.stats = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, rekeysIn: 0, rekeysOut: 0, pongsDropped: 0, lastFrameAt: now };
    this.#sealer = new FrameSealer(ctx.provider, result.aead, result.txKey, ctx.limits, now);
    this.#opener = new FrameOpener(ctx.provider, result.aead, result.rxKey);
    // The sealer and opener hold their own copies; the handshake's are no longer needed.
    wipe(result.txKey, result.rxKey);
    if (result.leftover.length > 0) this.#held.push(result.leftover);
    stream.setHandlers({
      data: (b) => this.#onData(b),
      drain: () => this.#onDrain(),
      close: (e) => this.#onClosed(e ?? new PqnetError('REMOTE_CLOSED')),
    });
    // Nothing is read until `start` gives frames somewhere to go.
    stream.pause();
  }

  get remotePeerId(): PeerId {
    return this.remote.peerId;
  }

  get closed(): boolean {
    return this.#closeReason !== undefined;
  }

  get closeReason(): PqnetError | undefined {
    return this.#closeReason;
  }

  /**
   * Bytes sent but not yet taken by the operating system: frames gathered for
   * the end of this turn plus the transport's write buffer.
   */
  get bufferedBytes(): number {
    return this.#gatheredBytes + this.#stream.bufferedBytes;
  }

  /**
   * Begin delivering frames to `handler`. Frames that arrived before (even in
   * the same packet as the last handshake record) are delivered first.
   */
  start(handler: FrameHandler, options: StartOptions = {}): void {
    if (this.#handler !== undefined) throw new PqnetError('INVALID_ARGUMENT', 'session already started');
    this.#handler = handler;
    this.#delegateControl = options.delegateControl === true;
    const held = this.#held;
    this.#held = [];
    for (const b of held) this.#onData(b);
    if (!this.closed) this.#stream.resume();
  }

  /** Stop reading from the transport (the remote then sees TCP back-pressure). */
  pauseReading(): void {
    this.#stream.pause();
  }

  resumeReading(): void {
    if (this.#handler !== undefined && !this.closed) this.#stream.resume();
  }

  /**
   * Seal and send one frame. Frames reach the transport in the order they were
   * sent; small ones are gathered and written together at the end of the turn
   * (see GATHER_BATCH_BYTES). Returns false when `bufferedBytes` is over
   * `maxWriteBufferBytes`: the caller should wait for 'drain' (or `drained()`).
   */
  sendFrame(header: FrameHeader, chunk: Uint8Array): boolean {
    if (this.#closeReason !== undefined) throw new PqnetError('CLOSED', 'session is closed', { cause: this.#closeReason });
    const before = this.#sealer.generation;
    const frame = this.#sealer.seal(header, chunk, this.#ctx.clock.now());
    if (this.#sealer.generation !== before) this.stats.rekeysOut++;
    this.stats.framesOut++;
    this.stats.bytesOut += frame.length;
    if (frame.length >= GATHER_FRAME_MAX_BYTES) {
      this.#flushGathered(false);
      this.#stream.write(frame);
    } else {
      this.#gathered.push(frame);
      this.#gatheredBytes += frame.length;
      if (this.#gatheredBytes >= GATHER_BATCH_BYTES) {
        this.#flushGathered(false);
      } else if (!this.#flushScheduled) {
        // process.nextTick runs once the current callback and every promise
        // continuation it set off have finished (ticks queued from a promise job
        // wait for the whole job queue), so a loop of `await`s on sends that are
        // already settled still gathers into one write.
        this.#flushScheduled = true;
        process.nextTick(this.#flushAtEndOfTurn);
      }
    }
    return this.bufferedBytes < this.#ctx.limits.maxWriteBufferBytes;
  }

  /** Encode `value` as message `type` in one frame on the type's channel. */
  send<T>(type: MessageType<T>, value: T): boolean {
    const payload = this.#registry.encode(type, value);
    const seq = this.#seq.get(type.channel) ?? 0;
    this.#seq.set(type.channel, (seq + 1) >>> 0);
    return this.sendFrame({ channel: type.channel, msgId: type.id, seq, flags: 0 }, payload);
  }

  /** Resolves when the write buffer is below the limit (at once if it is). */
  drained(): Promise<void> {
    if (this.bufferedBytes < this.#ctx.limits.maxWriteBufferBytes || this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        this.off('close', onClose);
        resolve();
      };
      const onClose = (e: PqnetError): void => {
        this.off('drain', onDrain);
        reject(e);
      };
      this.once('drain', onDrain);
      this.once('close', onClose);
    });
  }

  /** Round-trip time of a PING/PONG exchange, in milliseconds. */
  ping(timeoutMs = 10_000): Promise<number> {
    const nonce = u64BE(this.#pingCounter++);
    const key = toHex(nonce);
    return new Promise((resolve, reject) => {
      const timer: TimerHandle = this.#ctx.clock.setTimer(timeoutMs, () => {
        this.#pings.delete(key);
        reject(new PqnetError('TIMEOUT', `no pong within ${timeoutMs} ms`));
      });
      this.#pings.set(key, {
        at: this.#ctx.clock.now(),
        resolve: (rtt) => {
          this.#ctx.clock.clearTimer(timer);
          resolve(rtt);
        },
        reject: (e) => {
          this.#ctx.clock.clearTimer(timer);
          reject(e);
        },
      });
      try {
        this.send(Ping, [nonce]);
      } catch (e) {
        this.#pings.get(key)?.reject(toPqnetError(e));
        this.#pings.delete(key);
      }
    });
  }

  /** Orderly close: GOODBYE with the reason, flush, then close the transport. */
  close(reason: Reason = 'CLOSED', message = ''): void {
    if (this.#closeReason !== undefined) return;
    try {
      this.send(Goodbye, [Reasons[reason].wire, truncateUtf8(message, GOODBYE_TEXT_BYTES)]);
    } catch {
      // Closing anyway.
    }
    // The GOODBYE and every frame before it go to the transport before it is ended.
    this.#flushGathered(false);
    this.#finish(new PqnetError(reason, message || undefined));
    this.#stream.end();
  }

  /** Close at once without a GOODBYE (protocol violation, local failure). */
  destroy(reason: PqnetError): void {
    if (this.#closeReason !== undefined) return;
    this.#finish(reason);
    this.#stream.destroy(reason);
  }

  /**
   * Write whatever was gathered. `endOfTurn`: called at the end of the turn
   * rather than from inside `sendFrame`; then, if the transport took the batch
   * without asking to wait, 'drain' is emitted here, because the transport will
   * not emit one: a sender held back by the gathered bytes (a `sendFrame` that
   * returned false, the mux's low-water gate) learns that they are gone.
   */
  #flushGathered(endOfTurn: boolean): void {
    if (this.#gatheredBytes === 0) return;
    const gathered = this.#gathered;
    const batch = gathered.length === 1 ? gathered[0]! : Buffer.concat(gathered, this.#gatheredBytes);
    this.#gathered = [];
    this.#gatheredBytes = 0;
    const accepted = this.#stream.write(batch);
    if (endOfTurn && accepted && this.#closeReason === undefined) this.#onDrain();
  }

  #finish(reason: PqnetError): void {
    this.#closeReason = reason;
    // Orderly closes flushed before calling this; after `destroy` or a transport
    // failure, frames not yet written are dropped with everything else unsent.
    this.#gathered = [];
    this.#gatheredBytes = 0;
    this.#sealer.destroy();
    this.#opener.destroy();
    for (const p of this.#pings.values()) p.reject(reason);
    this.#pings.clear();
    this.emit('close', reason);
  }

  #onData(bytes: Uint8Array): void {
    if (this.#closeReason !== undefined) return;
    if (this.#handler === undefined) {
      this.#held.push(bytes);
      return;
    }
    this.stats.bytesIn += bytes.length;
    this.#splitter.push(bytes);
    try {
      for (;;) {
        if (this.#closeReason !== undefined) return;
        const raw = this.#splitter.next();
        if (raw === undefined) break;
        const before = this.#opener.generation;
        const frame = this.#opener.open(raw);
        if (this.#opener.generation !== before) this.stats.rekeysIn++;
        this.stats.framesIn++;
        this.stats.lastFrameAt = this.#ctx.clock.now();
        if (!this.#delegateControl && SESSION_CONTROL_IDS.has(frame.msgId)) {
          this.handleControl(frame);
        } else {
          this.#handler(frame, this);
        }
      }
    } catch (e) {
      this.destroy(isPqnetError(e) ? e : new PqnetError('INTERNAL', 'frame handler threw', { cause: e }));
    }
  }

  /**
   * Answer a PING, resolve a PONG or close on GOODBYE. The session does this
   * itself unless `start` was told to delegate; then the owner calls it (after
   * its own admission checks) for frames with those ids. Throws on a decoding
   * failure.
   */
  handleControl(frame: OpenedFrame): void {
    const { type, value } = this.#registry.decode(frame.msgId, frame.channel, frame.chunk);
    if (type.id === Ping.id) {
      // A peer that pings but does not read must not grow our write buffer:
      // while it is over the limit, pings go unanswered.
      if (this.bufferedBytes < this.#ctx.limits.maxWriteBufferBytes) this.send(Pong, value as [Uint8Array]);
      else this.stats.pongsDropped++;
    } else if (type.id === Pong.id) {
      const key = toHex((value as [Uint8Array])[0]);
      const p = this.#pings.get(key);
      if (p !== undefined) {
        this.#pings.delete(key);
        p.resolve(this.#ctx.clock.now() - p.at);
      }
    } else if (type.id === Goodbye.id) {
      const [code, text] = value as [number, string];
      const remoteReason = reasonFromWire(code);
      // Frames sent before the GOODBYE arrived still go out before the end.
      this.#flushGathered(false);
      this.#finish(new PqnetError('REMOTE_CLOSED', `${remoteReason ?? `code ${code}`}${text ? `: ${text}` : ''}`, { details: { remoteCode: code, remoteReason } }));
      this.#stream.end();
    }
  }

  #onDrain(): void {
    if (this.bufferedBytes < this.#ctx.limits.maxWriteBufferBytes) this.emit('drain');
  }

  #onClosed(e: PqnetError): void {
    if (this.#closeReason === undefined) this.#finish(e);
  }
}

/**
 * Run `hs` over `stream` until it completes (resolves with the session) or
 * fails (rejects with the reason; the stream is closed, after flushing a
 * REJECT if the handshake produced one).
 */
export interface RunHandshakeOptions {
  /** Told how many milliseconds each step of handshake work took (the listener's CPU budget). */
  readonly onWork?: (ms: number) => void;
  /** Aborting closes the stream and fails the handshake with CLOSED. */
  readonly signal?: AbortSignal;
}

export function runHandshake(stream: ByteStream, hs: Handshake, ctx: SessionContext, options: RunHandshakeOptions = {}): Promise<SecureSession> {
  const started = ctx.clock.now();
  const { onWork, signal } = options;
  return new Promise<SecureSession>((resolve, reject) => {
    let timer: TimerHandle | undefined;
    let settled = false;

    let wroteReject = false;
    const bytes = { in: 0, out: 0 };
    const settle = (): void => {
      if (settled) return;
      for (let b = hs.pollTransmit(); b !== undefined; b = hs.pollTransmit()) {
        bytes.out += b.length;
        stream.write(b);
        if (hs.status === 'failed') wroteReject = true;
      }
      if (hs.status === 'in-progress') return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (timer !== undefined) ctx.clock.clearTimer(timer);
      if (hs.status === 'complete') {
        resolve(new SecureSession(stream, hs.result(), ctx, ctx.clock.now() - started, bytes));
      } else {
        stream.setHandlers({ data: () => undefined, drain: () => undefined, close: () => undefined });
        // A REJECT was written above and is flushed before the close; every other
        // failure closes at once and silently.
        if (wroteReject) stream.end();
        else stream.destroy(hs.error);
        reject(hs.error ?? new PqnetError('INTERNAL', 'handshake failed without a reason'));
      }
    };

    // Re-armed until the clock really reached the deadline: a Clock may wake early.
    const armDeadline = (): void => {
      const deadline = hs.pollTimeout();
      if (deadline === undefined) return;
      timer = ctx.clock.setTimer(Math.max(1, Math.ceil(deadline - ctx.clock.now())), () => {
        timer = undefined;
        hs.handleTimeout(ctx.clock.now());
        if (hs.status === 'failed') stream.destroy(hs.error);
        else if (hs.status === 'in-progress') armDeadline();
        settle();
      });
    };
    armDeadline();
    const onAbort = (): void => {
      hs.abort(new PqnetError('CLOSED', 'handshake aborted'));
      settle();
    };
    if (signal?.aborted === true) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.setHandlers({
      data: (b) => {
        const t0 = ctx.clock.now();
        bytes.in += b.length;
        hs.receive(b, t0);
        onWork?.(ctx.clock.now() - t0);
        settle();
      },
      drain: () => undefined,
      close: (e) => {
        hs.abort(e ?? new PqnetError('REMOTE_CLOSED', 'connection closed during the handshake'));
        settle();
      },
    });
    settle();
  });
}
