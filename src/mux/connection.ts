/**
 * The mux adapter: one `Mux` over one `SecureSession`. It pumps frames from the
 * mux into the session while the socket's write buffer is under
 * `muxWriteLowWaterBytes` (so priorities decide what goes next, not a deep
 * buffer), feeds received frames to the mux, hands finished messages to the
 * application and returns their window when the application is done, and runs
 * request/response on top with the clock's timers.
 *
 * Faults are sorted in two kinds. A protocol violation (a MUX_* or MSG_* error
 * from the mux) closes the connection with GOODBYE and that reason. Lesser
 * faults (a flood dropped by the limiter, a request timeout, an unsolicited
 * response, a handler rejecting a message as invalid) are reported as
 * 'offense' events for the peer layer to score, and the connection stays up.
 */
import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { isPqnetError, PqnetError, Reasons, toPqnetError, type Reason } from '../core/errors.ts';
import type { Limits } from '../core/limits.ts';
import type { OpenedFrame } from '../secure/frames.ts';
import type { SecureSession } from '../secure/session.ts';
import type { ChannelId } from '../wire/channels.ts';
import type { MessageRegistry, MessageType } from '../wire/registry.ts';
import { Mux, type InboundLimiter, type InboundMessage } from './mux.ts';
import { RequestTable, responseError, type PendingRequest, type RequestEnvelope, type RequestType, type ResponseEnvelope } from './rpc.ts';

export interface ConnectionContext {
  readonly registry: MessageRegistry;
  readonly limits: Limits;
  readonly clock: Clock;
  readonly limiter?: InboundLimiter;
}

/** Called for every message that is not a request or response. Credit returns when it returns (or its promise settles). */
export type MessageHandler = (msg: InboundMessage, conn: MuxConnection) => void | Promise<void>;

export type RequestHandler<Req, Res> = (body: Req, conn: MuxConnection) => Res | Promise<Res>;

export interface ConnectionEvents {
  /** A non-fatal fault the peer is to blame for: score it. */
  offense: [reason: Reason, detail: string];
  /** A local message or request handler threw something that is not a peer fault. */
  handlerError: [error: unknown, type: MessageType<unknown>];
  /** Once, with the reason the connection ended. */
  close: [reason: PqnetError];
}

export interface RequestOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface ConnectionStats {
  readonly queuedBytes: number[];
  readonly credit: number[];
  readonly outstanding: number[];
  readonly requestsInFlight: number;
  readonly requestsServing: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly dropped: number;
}

interface Waiter {
  resolve(value: unknown): void;
  reject(e: PqnetError): void;
}

export class MuxConnection extends EventEmitter<ConnectionEvents> {
  readonly session: SecureSession;
  readonly mux: Mux;
  readonly #ctx: ConnectionContext;
  readonly #requests: RequestTable;
  readonly #waiters = new Map<number, Waiter>();
  readonly #handlers = new Map<number, { handler: RequestHandler<unknown, unknown>; timeoutMs: number | undefined }>();
  #onMessage: MessageHandler | undefined;
  #admitRequest: ((msg: InboundMessage) => boolean) | undefined;
  #serving = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #pumping = false;
  #closed: PqnetError | undefined;

  constructor(session: SecureSession, ctx: ConnectionContext) {
    super();
    this.session = session;
    this.#ctx = ctx;
    this.mux = new Mux(ctx.limiter === undefined ? { registry: ctx.registry, limits: ctx.limits } : { registry: ctx.registry, limits: ctx.limits, limiter: ctx.limiter });
    this.#requests = new RequestTable(ctx.limits.maxRequestsInFlight);
    session.on('drain', () => this.#pump());
    session.once('close', (reason) => this.#onClose(reason));
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Start reading; `onMessage` receives every message that is not part of a
   * request. `admitRequest`, if given, sees each request before it is served and
   * returns false to drop it unanswered (the peer layer refuses requests before
   * HELLO and closes the connection itself).
   *
   * Frames that arrived with the handshake are processed inside this call, so
   * the connection may already be closed when it returns: attach 'close'
   * listeners before calling `start`.
   */
  start(onMessage: MessageHandler, options: { admitRequest?: (msg: InboundMessage) => boolean } = {}): void {
    this.#onMessage = onMessage;
    this.#admitRequest = options.admitRequest;
    this.session.start((frame) => this.#onFrame(frame), { delegateControl: true });
    this.#pump();
  }

  /**
   * Serve requests of type `rt` with `handler` (one handler per type). The
   * handler has the type's `timeoutMs` (else `requestTimeoutMs`) to answer.
   */
  handle<Req, Res>(rt: RequestType<Req, Res>, handler: RequestHandler<Req, Res>): void {
    this.#handlers.set(rt.request.id, { handler: handler as RequestHandler<unknown, unknown>, timeoutMs: rt.timeoutMs });
  }

  setNegotiated(protocols: Iterable<string>): void {
    this.mux.setNegotiated(protocols);
  }

  /**
   * Queue a message. Resolves when its last chunk has been handed to the
   * session; while the peer has granted no credit, that wait is the
   * back-pressure. Rejects with MUX_QUEUE_FULL, MSG_NOT_NEGOTIATED,
   * MSG_OVERSIZE or CLOSED.
   */
  send<T>(type: MessageType<T>, value: T): Promise<void> {
    try {
      const msg = this.mux.enqueue(type as MessageType<unknown>, this.#ctx.registry.encode(type, value));
      const done = new Promise<void>((resolve, reject) => {
        msg.onSettled = (e) => (e === undefined ? resolve() : reject(e));
      });
      this.#pump();
      return done;
    } catch (e) {
      return Promise.reject(toPqnetError(e));
    }
  }

  /**
   * Queue a message only if its channel has nothing waiting and credit for it
   * (gossip: drop rather than wait). Returns whether it was queued.
   */
  trySend<T>(type: MessageType<T>, value: T): boolean {
    if (this.closed || this.mux.queuedBytes(type.channel) > 0 || !this.mux.isNegotiated(type as MessageType<unknown>)) return false;
    const payload = this.#ctx.registry.encode(type, value);
    if (type.channel !== 0 && this.mux.credit(type.channel) < payload.length) return false;
    this.mux.enqueue(type as MessageType<unknown>, payload).onSettled = () => undefined;
    this.#pump();
    return true;
  }

  /** Send a request and await its response body. */
  request<Req, Res>(rt: RequestType<Req, Res>, body: Req, options: RequestOptions = {}): Promise<Res> {
    if (this.#closed !== undefined) return Promise.reject(new PqnetError('CLOSED', 'connection is closed', { cause: this.#closed }));
    const timeoutMs = options.timeoutMs ?? rt.timeoutMs ?? this.#ctx.limits.requestTimeoutMs;
    let pending: PendingRequest;
    try {
      pending = this.#requests.open(rt as RequestType<unknown, unknown>, this.#ctx.clock.now(), timeoutMs);
    } catch (e) {
      return Promise.reject(toPqnetError(e));
    }
    const { signal } = options;
    const result = new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.#requests.cancel(pending.id) !== undefined) this.#settleRequest(pending.id, new PqnetError('CLOSED', `${rt.name}: aborted`));
      };
      this.#waiters.set(pending.id, {
        resolve: (v) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(v as Res);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      });
      if (signal?.aborted === true) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    if (this.#waiters.has(pending.id)) {
      this.send(rt.request, [pending.id, body] as RequestEnvelope<Req>).catch((e: unknown) => {
        if (this.#requests.cancel(pending.id) !== undefined) this.#settleRequest(pending.id, toPqnetError(e));
      });
      this.#armTimer();
    }
    return result;
  }

  /** Orderly close with GOODBYE. */
  close(reason: Reason = 'CLOSED', message = ''): void {
    this.session.close(reason, message);
  }

  /** Immediate close without GOODBYE. */
  destroy(reason: PqnetError): void {
    this.session.destroy(reason);
  }

  stats(): ConnectionStats {
    const ids = [0, 1, 2, 3, 4, 5, 6] as ChannelId[];
    return {
      queuedBytes: ids.map((c) => this.mux.queuedBytes(c)),
      credit: ids.map((c) => this.mux.credit(c)),
      outstanding: ids.map((c) => this.mux.outstanding(c)),
      requestsInFlight: this.#requests.size,
      requestsServing: this.#serving,
      messagesIn: this.mux.stats.messagesIn,
      messagesOut: this.mux.stats.messagesOut,
      dropped: this.mux.stats.dropped,
    };
  }

  // ---- Internals ----

  #pump(): void {
    if (this.#pumping || this.#closed !== undefined) return;
    this.#pumping = true;
    try {
      const low = this.#ctx.limits.muxWriteLowWaterBytes;
      while (this.#closed === undefined && this.session.bufferedBytes < low) {
        const f = this.mux.pollFrame();
        if (f === undefined) break;
        this.session.sendFrame(f.header, f.chunk);
        f.completes?.onSettled?.();
      }
    } finally {
      this.#pumping = false;
    }
  }

  #onFrame(frame: OpenedFrame): void {
    if (this.#closed !== undefined) return;
    try {
      const route = this.mux.receive(frame, frame.chunk, this.#ctx.clock.now());
      if (route === 'session') this.session.handleControl(frame);
      else if (route === 'limited') this.emit('offense', 'MSG_RATE_LIMITED', `${frame.msgId.toString(16)} on channel ${frame.channel}`);
    } catch (e) {
      const err = toPqnetError(e);
      this.session.close(err.code, err.message);
      return;
    }
    for (let m = this.mux.pollInbound(); m !== undefined && this.#closed === undefined; m = this.mux.pollInbound()) this.#dispatch(m);
    // Credits released synchronously above go out now.
    this.#pump();
  }

  #dispatch(m: InboundMessage): void {
    const rpc = m.type.rpc;
    if (rpc?.role === 'request') this.#serve(m, rpc.pair);
    else if (rpc?.role === 'response') this.#onResponse(m);
    else this.#run(m, () => this.#onMessage?.(m, this));
  }

  /** Run a handler; the message's window is released when it finishes, however it finishes. */
  #run(m: InboundMessage, fn: () => void | Promise<void>): void {
    const done = (): void => {
      this.mux.release(m.channel, m.bytes);
      this.#pump();
    };
    let r: void | Promise<void>;
    try {
      r = fn();
    } catch (e) {
      this.#handlerFailed(e, m.type);
      done();
      return;
    }
    if (r instanceof Promise) {
      r.then(done, (e: unknown) => {
        this.#handlerFailed(e, m.type);
        done();
      });
    } else {
      done();
    }
  }

  #handlerFailed(e: unknown, type: MessageType<unknown>): void {
    // A handler that rejects a message with a reason that carries a penalty blames the peer.
    if (isPqnetError(e) && Reasons[e.code].penalty > 0) this.emit('offense', e.code, `${type.name}: ${e.message}`);
    else this.emit('handlerError', e, type);
  }

  #serve(m: InboundMessage, responseId: number): void {
    const [id, body] = m.value as RequestEnvelope<unknown>;
    const responseType = this.#ctx.registry.get(responseId)!;
    const entry = this.#handlers.get(m.type.id);
    const answer = (status: number, res: unknown): Promise<void> => this.send(responseType, [id, status, status === 0 ? res : null]);
    const refuse = (reason: Reason): void => {
      this.mux.release(m.channel, m.bytes);
      answer(Reasons[reason].wire, null).catch(() => undefined);
    };
    if (this.#admitRequest !== undefined && !this.#admitRequest(m)) {
      this.mux.release(m.channel, m.bytes);
      return;
    }
    if (entry === undefined) return refuse('REQ_NO_HANDLER');
    // At the cap the request is refused, not scored: a requester that gave up on
    // requests (timeout, abort) cannot know that their handlers still run here.
    // Floods are the rate limiter's business.
    if (this.#serving >= this.#ctx.limits.maxInboundRequests) return refuse('REQ_TOO_MANY');
    this.#serving++;
    const timeoutMs = entry.timeoutMs ?? this.#ctx.limits.requestTimeoutMs;
    this.#run(m, async () => {
      // The handler gets the type's deadline; then the slot is freed and the peer told
      // TIMEOUT (whatever the handler produces later is dropped).
      let timer: TimerHandle | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = this.#ctx.clock.setTimer(timeoutMs, () => reject(new PqnetError('TIMEOUT', `${m.type.name}: handler took longer than ${timeoutMs} ms`)));
      });
      let res: unknown;
      try {
        res = await Promise.race([entry.handler(body, this), deadline]);
      } catch (e) {
        if (this.#closed !== undefined) return;
        if (!(isPqnetError(e) && e.code === 'TIMEOUT')) this.#handlerFailed(e, m.type);
        await answer(toPqnetError(e).wireCode, null).catch(() => undefined);
        return;
      } finally {
        this.#ctx.clock.clearTimer(timer!);
        this.#serving--;
      }
      if (this.#closed !== undefined) return;
      try {
        await answer(0, res);
      } catch (e) {
        // Our handler produced a response its schema refuses (or the connection
        // closed meanwhile): a local fault, never the requester's.
        if (this.#closed !== undefined) return;
        this.emit('handlerError', e, m.type);
        await answer(Reasons.INTERNAL.wire, null).catch(() => undefined);
      }
    });
  }

  #onResponse(m: InboundMessage): void {
    const [id, status, body] = m.value as ResponseEnvelope<unknown>;
    this.mux.release(m.channel, m.bytes);
    const outcome = this.#requests.settle(id, m.type.id);
    if (outcome === 'late') return;
    if (outcome === 'unsolicited') {
      this.emit('offense', 'REQ_UNSOLICITED', `${m.type.name} id ${id}`);
      return;
    }
    this.#settleRequest(id, status === 0 ? undefined : responseError(outcome.type, status), body);
    this.#armTimer();
  }

  #settleRequest(id: number, error: PqnetError | undefined, value?: unknown): void {
    const w = this.#waiters.get(id);
    if (w === undefined) return;
    this.#waiters.delete(id);
    if (error === undefined) w.resolve(value);
    else w.reject(error);
  }

  #armTimer(): void {
    const at = this.#requests.pollTimeout();
    if (at === this.#timerAt) return;
    if (this.#timer !== undefined) this.#ctx.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at ?? Infinity;
    if (at === undefined || this.#closed !== undefined) return;
    this.#timer = this.#ctx.clock.setTimer(Math.max(1, Math.ceil(at - this.#ctx.clock.now())), () => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      for (const p of this.#requests.expire(this.#ctx.clock.now())) {
        this.emit('offense', 'REQ_TIMEOUT', `${p.type.name} id ${p.id}`);
        this.#settleRequest(p.id, new PqnetError('REQ_TIMEOUT', `${p.type.name}: no answer within ${p.deadline - p.sentAt} ms`));
      }
      this.#armTimer();
    });
  }

  #onClose(reason: PqnetError): void {
    this.#closed = reason;
    if (this.#timer !== undefined) this.#ctx.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.mux.fail(reason);
    for (const p of this.#requests.drain()) this.#settleRequest(p.id, new PqnetError('CLOSED', `${p.type.name}: connection closed`, { cause: reason }));
    this.emit('close', reason);
  }
}
