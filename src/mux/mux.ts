/**
 * The multiplexer core (docs/spec/mux.md), sans-I/O: it turns queued messages
 * into frames and frames into messages, and keeps the books that make that
 * safe. It never touches a socket or a timer; the adapter in connection.ts
 * feeds it frames and pulls frames out of it.
 *
 * Sending: each data channel has a FIFO of messages. `pollFrame` picks the
 * channel to serve next by priority (lower first; round-robin among equals)
 * among those whose head message can move, cuts one chunk and spends the
 * channel's credit. So a vote queued after a 4 MiB block leaves with the next
 * frame, not after the block.
 *
 * Receiving: the first chunk of a message is checked (channel, seq, type,
 * negotiation, admission by the rate limiter) before anything is buffered; the
 * size cap is checked before each chunk is appended. A finished message is
 * decoded strictly and queued for the application; its bytes stay charged to
 * the channel's window until the application `release`s them, and only then
 * are they granted back to the sender with CREDIT. A peer that sends more than
 * it was granted is closed (MUX_CREDIT_EXCEEDED); a consumer that stops
 * consuming stops the sender.
 */
import { concatBytes } from '../core/bytes.ts';
import { PqnetError, type Reason } from '../core/errors.ts';
import { CHANNEL_COUNT, MAX_CHUNK_BYTES, MAX_CREDIT_WINDOW_BYTES, MIN_MORE_CHUNK_BYTES, type Limits } from '../core/limits.ts';
import { Channel, CHANNEL_PRIORITY, isChannelId, type ChannelId } from '../wire/channels.ts';
import { FLAG_MORE, type FrameHeader } from '../wire/frame.ts';
import { Credit, Goodbye, Ping, Pong } from '../wire/messages.ts';
import type { MessageRegistry, MessageType } from '../wire/registry.ts';

/** Control messages the secure session answers itself; the mux only admits them. */
export const SESSION_CONTROL_IDS: ReadonlySet<number> = new Set([Ping.id, Pong.id, Goodbye.id]);

/** A message the application queued. `done` turns true once its last chunk was handed out. */
export interface OutboundMessage {
  readonly type: MessageType<unknown>;
  readonly payload: Uint8Array;
  /** Set by the adapter to learn when the message left (or failed). */
  onSettled: ((error?: PqnetError) => void) | undefined;
}

export interface MuxFrame {
  readonly header: FrameHeader;
  readonly chunk: Uint8Array;
  /** Present on the last chunk of an application message. */
  readonly completes?: OutboundMessage;
}

export interface InboundMessage {
  readonly type: MessageType<unknown>;
  readonly value: unknown;
  readonly channel: ChannelId;
  /** Window bytes this message holds until `release(channel, bytes)`; 0 on the control channel. */
  readonly bytes: number;
}

/**
 * Rate limiting hook (the peer layer's token buckets). `admit` is asked at the
 * first chunk of every message, before anything is buffered or decoded, and
 * returns the reason to drop it; `charge` is told the size of every chunk.
 */
export interface InboundLimiter {
  admit(type: MessageType<unknown>, now: number): Reason | undefined;
  charge(bytes: number, now: number): void;
}

export interface MuxStats {
  messagesIn: number;
  messagesOut: number;
  /** Messages dropped by the limiter. */
  dropped: number;
  creditsSent: number;
  creditsReceived: number;
  /** Messages received / sent by message type id (control messages the session answers itself, PING, PONG and GOODBYE, are not here). */
  readonly inByType: Map<number, number>;
  readonly outByType: Map<number, number>;
}

interface SendChannel {
  readonly id: ChannelId;
  readonly queue: OutboundMessage[];
  queuedBytes: number;
  /** Offset into the head message's payload. */
  offset: number;
  seq: number;
  /** Bytes we may still send. */
  credit: number;
  /** The peer's window: its first grant. 0 until CREDIT arrives. */
  window: number;
}

interface Partial {
  readonly type: MessageType<unknown>;
  readonly seq: number;
  readonly parts: Uint8Array[];
  size: number;
  /** Admission refused: chunks are counted and their credit returned, nothing is kept. */
  readonly dropped: boolean;
}

interface RecvChannel {
  readonly id: ChannelId;
  readonly window: number;
  /** Totals since the session began; `granted - received` is the peer's credit. */
  granted: number;
  received: number;
  consumed: number;
  expectedSeq: number;
  partial: Partial | undefined;
}

const DATA_CHANNELS: readonly ChannelId[] = [1, 2, 3, 4, 5, 6];

export interface MuxOptions {
  readonly registry: MessageRegistry;
  readonly limits: Limits;
  readonly limiter?: InboundLimiter;
}

export class Mux {
  readonly stats: MuxStats = { messagesIn: 0, messagesOut: 0, dropped: 0, creditsSent: 0, creditsReceived: 0, inByType: new Map(), outByType: new Map() };
  readonly #registry: MessageRegistry;
  readonly #limits: Limits;
  readonly #limiter: InboundLimiter | undefined;
  readonly #send: SendChannel[] = [];
  readonly #recv: RecvChannel[] = [];
  readonly #inbound: InboundMessage[] = [];
  /** Control frames (CREDIT) waiting to go out; they bypass credit and go first. */
  readonly #control: { header: FrameHeader; chunk: Uint8Array }[] = [];
  /** Protocols both sides announced; until set, only protocol-less types pass. */
  #negotiated: ReadonlySet<string> = new Set();
  /** Round-robin cursor among channels of equal priority. */
  #lastServed = -1;
  #failed: PqnetError | undefined;

  constructor(options: MuxOptions) {
    this.#registry = options.registry;
    this.#limits = options.limits;
    this.#limiter = options.limiter;
    const largest = new Map<number, number>();
    for (const t of options.registry.types()) largest.set(t.channel, Math.max(largest.get(t.channel) ?? 0, t.maxBytes));
    for (let id = 0; id < CHANNEL_COUNT; id++) {
      const ch = id as ChannelId;
      this.#send.push({ id: ch, queue: [], queuedBytes: 0, offset: 0, seq: 0, credit: 0, window: 0 });
      const window = Math.min(MAX_CREDIT_WINDOW_BYTES, Math.max(options.limits.muxWindowBytes, largest.get(id) ?? 0));
      this.#recv.push({ id: ch, window, granted: 0, received: 0, consumed: 0, expectedSeq: 0, partial: undefined });
    }
    // The opening grant: the whole window of every data channel.
    this.#grant(DATA_CHANNELS.map((c) => [c, this.#recv[c]!.window]));
    for (const c of DATA_CHANNELS) this.#recv[c]!.granted = this.#recv[c]!.window;
  }

  /** Our receive window per channel (index = channel id). */
  get windows(): readonly number[] {
    return this.#recv.map((r) => (r.id === Channel.CONTROL ? 0 : r.window));
  }

  setNegotiated(protocols: Iterable<string>): void {
    this.#negotiated = new Set(protocols);
  }

  isNegotiated(type: MessageType<unknown>): boolean {
    return type.protocol === undefined || this.#negotiated.has(type.protocol);
  }

  // ---- Sending ----

  /**
   * Queue an encoded message. Throws MUX_QUEUE_FULL when the channel already
   * holds `muxQueueBytes` (an empty queue always takes one message),
   * MSG_NOT_NEGOTIATED for a protocol the peer did not announce, and
   * MSG_OVERSIZE when the peer's window cannot ever hold it.
   */
  enqueue(type: MessageType<unknown>, payload: Uint8Array): OutboundMessage {
    this.#checkUsable();
    if (!this.isNegotiated(type)) throw new PqnetError('MSG_NOT_NEGOTIATED', `${type.name} (protocol ${type.protocol})`);
    if (payload.length === 0) throw new PqnetError('INVALID_ARGUMENT', `${type.name}: empty payload`);
    const ch = this.#send[type.channel]!;
    if (type.channel === Channel.CONTROL && payload.length > MAX_CHUNK_BYTES) {
      throw new PqnetError('MSG_OVERSIZE', `${type.name}: control messages must fit one frame`);
    }
    if (ch.window > 0 && payload.length > ch.window) {
      throw new PqnetError('MSG_OVERSIZE', `${type.name}: ${payload.length} bytes > the peer's window of ${ch.window} on channel ${type.channel}`);
    }
    if (ch.queue.length > 0 && ch.queuedBytes + payload.length > this.#limits.muxQueueBytes) {
      throw new PqnetError('MUX_QUEUE_FULL', `channel ${type.channel} holds ${ch.queuedBytes} bytes`);
    }
    const msg: OutboundMessage = { type, payload, onSettled: undefined };
    ch.queue.push(msg);
    ch.queuedBytes += payload.length;
    return msg;
  }

  /** Bytes waiting on a channel (for `trySend` and the health view). */
  queuedBytes(channel: ChannelId): number {
    return this.#send[channel]!.queuedBytes;
  }

  /** Credit we hold on a data channel. */
  credit(channel: ChannelId): number {
    return this.#send[channel]!.credit;
  }

  /** Whether `pollFrame` would return a frame now. */
  get hasFrame(): boolean {
    return this.#control.length > 0 || this.#pick() !== undefined;
  }

  /** The next frame to seal, or undefined when nothing can move (empty queues or no credit). */
  pollFrame(): MuxFrame | undefined {
    if (this.#failed !== undefined) return undefined;
    const control = this.#control.shift();
    if (control !== undefined) return control;
    const ch = this.#pick();
    if (ch === undefined) return undefined;
    this.#lastServed = ch.id;
    const msg = ch.queue[0]!;
    const remaining = msg.payload.length - ch.offset;
    const room = ch.id === Channel.CONTROL ? remaining : Math.min(this.#limits.muxChunkBytes, ch.credit);
    const size = Math.min(remaining, room);
    const last = size === remaining;
    const chunk = msg.payload.subarray(ch.offset, ch.offset + size);
    const header: FrameHeader = { channel: ch.id, msgId: msg.type.id, seq: ch.seq, flags: last ? 0 : FLAG_MORE };
    if (ch.id !== Channel.CONTROL) ch.credit -= size;
    if (!last) {
      ch.offset += size;
      return { header, chunk };
    }
    ch.queue.shift();
    ch.queuedBytes -= msg.payload.length;
    ch.offset = 0;
    ch.seq = (ch.seq + 1) >>> 0;
    this.stats.messagesOut++;
    countType(this.stats.outByType, msg.type.id);
    return { header, chunk, completes: msg };
  }

  /** The channel to serve: highest priority whose head can move; ties round-robin after the last served. */
  #pick(): SendChannel | undefined {
    let best: SendChannel | undefined;
    let bestKey = Infinity;
    for (let i = 1; i <= CHANNEL_COUNT; i++) {
      const ch = this.#send[(this.#lastServed + i + CHANNEL_COUNT) % CHANNEL_COUNT]!;
      if (ch.queue.length === 0 || !this.#canMove(ch)) continue;
      const key = CHANNEL_PRIORITY[ch.id];
      if (key < bestKey) {
        best = ch;
        bestKey = key;
      }
    }
    return best;
  }

  #canMove(ch: SendChannel): boolean {
    if (ch.id === Channel.CONTROL) return true;
    const remaining = ch.queue[0]!.payload.length - ch.offset;
    // A final chunk may be any size; a continued one must be at least MIN_MORE_CHUNK_BYTES.
    return ch.credit >= remaining || ch.credit >= MIN_MORE_CHUNK_BYTES;
  }

  // ---- Receiving ----

  /**
   * Take one opened frame. Returns 'session' when the frame is a PING, PONG or
   * GOODBYE that the secure session must handle, 'limited' when the limiter
   * refused it (the message is dropped, except CREDIT), undefined otherwise (finished messages are queued for
   * `pollInbound`). Throws a PqnetError for any protocol violation; the
   * connection must then close with that reason.
   */
  receive(header: FrameHeader, chunk: Uint8Array, now: number): 'session' | 'limited' | undefined {
    this.#checkUsable();
    try {
      return this.#receive(header, chunk, now);
    } catch (e) {
      this.#failed = e as PqnetError;
      throw e;
    }
  }

  #receive(h: FrameHeader, chunk: Uint8Array, now: number): 'session' | 'limited' | undefined {
    if (!isChannelId(h.channel)) throw new PqnetError('MUX_BAD_CHANNEL', `channel ${h.channel}`);
    this.#limiter?.charge(chunk.length, now);
    if (h.channel === Channel.CONTROL) return this.#receiveControl(h, chunk, now);
    if (chunk.length === 0) throw new PqnetError('MUX_BAD_CHUNK', `empty chunk on channel ${h.channel}`);
    const more = (h.flags & FLAG_MORE) !== 0;
    if (more && chunk.length < MIN_MORE_CHUNK_BYTES) throw new PqnetError('MUX_BAD_CHUNK', `continued chunk of ${chunk.length} bytes < ${MIN_MORE_CHUNK_BYTES}`);
    const rc = this.#recv[h.channel]!;
    if (rc.received + chunk.length > rc.granted) {
      throw new PqnetError('MUX_CREDIT_EXCEEDED', `channel ${h.channel}: ${rc.received + chunk.length - rc.granted} bytes over the grant`);
    }
    rc.received += chunk.length;

    let p = rc.partial;
    const first = p === undefined;
    if (p === undefined) {
      if (h.seq !== rc.expectedSeq) throw new PqnetError('MUX_BAD_SEQ', `channel ${h.channel}: seq ${h.seq}, expected ${rc.expectedSeq}`);
      const type = this.#typeFor(h);
      const refused = this.#limiter?.admit(type, now);
      p = { type, seq: h.seq, parts: [], size: 0, dropped: refused !== undefined };
      if (p.dropped) this.stats.dropped++;
    } else if (h.seq !== p.seq || h.msgId !== p.type.id) {
      throw new PqnetError('MUX_BAD_SEQ', `channel ${h.channel}: chunk of seq ${h.seq} msg 0x${h.msgId.toString(16)} inside seq ${p.seq} ${p.type.name}`);
    }
    if (p.size + chunk.length > p.type.maxBytes) throw new PqnetError('MSG_OVERSIZE', `${p.type.name}: more than ${p.type.maxBytes} bytes`);
    p.size += chunk.length;
    if (!p.dropped) p.parts.push(chunk);
    // A dropped message is reported once, at its first chunk.
    const verdict = p.dropped && first ? 'limited' : undefined;
    if (more) {
      rc.partial = p;
      this.#maybeGrant(rc);
      return verdict;
    }
    rc.partial = undefined;
    rc.expectedSeq = (rc.expectedSeq + 1) >>> 0;
    if (p.dropped) {
      this.release(rc.id, p.size);
      return verdict;
    }
    const payload = p.parts.length === 1 ? p.parts[0]! : concatBytes(...p.parts);
    const { value } = this.#registry.decode(p.type.id, h.channel, payload);
    this.stats.messagesIn++;
    countType(this.stats.inByType, p.type.id);
    this.#inbound.push({ type: p.type, value, channel: h.channel, bytes: p.size });
    return undefined;
  }

  #receiveControl(h: FrameHeader, chunk: Uint8Array, now: number): 'session' | 'limited' | undefined {
    if ((h.flags & FLAG_MORE) !== 0) throw new PqnetError('MUX_BAD_CHUNK', 'control messages are never chunked');
    const type = this.#typeFor(h);
    const limited = this.#limiter?.admit(type, now) !== undefined;
    // CREDIT is counted against the limits but never dropped: losing one would stall the channel for good.
    if (limited && type.id !== Credit.id) {
      this.stats.dropped++;
      return 'limited';
    }
    if (SESSION_CONTROL_IDS.has(type.id)) return 'session';
    const { value } = this.#registry.decode(type.id, h.channel, chunk);
    this.stats.messagesIn++;
    countType(this.stats.inByType, type.id);
    if (type.id === Credit.id) {
      this.#applyCredit(value as [number, number][]);
      return limited ? 'limited' : undefined;
    }
    this.#inbound.push({ type, value, channel: Channel.CONTROL, bytes: 0 });
    return undefined;
  }

  #typeFor(h: FrameHeader): MessageType<unknown> {
    const type = this.#registry.get(h.msgId);
    if (type === undefined) throw new PqnetError('MSG_UNKNOWN_ID', `0x${h.msgId.toString(16).padStart(4, '0')} on channel ${h.channel}`);
    if (type.channel !== h.channel) throw new PqnetError('MSG_WRONG_CHANNEL', `${type.name} on channel ${h.channel}`);
    if (!this.isNegotiated(type)) throw new PqnetError('MSG_NOT_NEGOTIATED', `${type.name} (protocol ${type.protocol})`);
    return type;
  }

  #applyCredit(entries: [number, number][]): void {
    this.stats.creditsReceived++;
    for (const [channel, increment] of entries) {
      if (channel === Channel.CONTROL || !isChannelId(channel)) throw new PqnetError('MUX_BAD_CHANNEL', `credit for channel ${channel}`);
      const ch = this.#send[channel]!;
      if (ch.credit + increment > MAX_CREDIT_WINDOW_BYTES) throw new PqnetError('MUX_CREDIT_OVERFLOW', `channel ${channel}: ${ch.credit} + ${increment}`);
      ch.credit += increment;
      if (ch.window === 0) {
        ch.window = increment;
        this.#failOversized(ch);
      }
    }
  }

  /** Messages queued before the peer's window was known that it can never take. */
  #failOversized(ch: SendChannel): void {
    for (let i = ch.offset > 0 ? 1 : 0; i < ch.queue.length; i++) {
      const msg = ch.queue[i]!;
      if (msg.payload.length <= ch.window) continue;
      ch.queue.splice(i--, 1);
      ch.queuedBytes -= msg.payload.length;
      msg.onSettled?.(new PqnetError('MSG_OVERSIZE', `${msg.type.name}: ${msg.payload.length} bytes > the peer's window of ${ch.window}`));
    }
  }

  /** The next finished message for the application. */
  pollInbound(): InboundMessage | undefined {
    return this.#inbound.shift();
  }

  /**
   * The application is done with `bytes` of a channel's messages. Once at
   * least a quarter of the window is free again, it is granted back with CREDIT.
   */
  release(channel: ChannelId, bytes: number): void {
    if (channel === Channel.CONTROL || bytes === 0 || this.#failed !== undefined) return;
    const rc = this.#recv[channel]!;
    rc.consumed += bytes;
    this.#maybeGrant(rc);
  }

  /**
   * Grant back what the application has finished with, once it is a quarter of
   * the window, or at once when the peer's remaining credit is too small for a
   * continued chunk: a half-received message holds window that only its own
   * remaining chunks can free, so waiting for a quarter could stall it for good.
   */
  #maybeGrant(rc: RecvChannel): void {
    const grantable = rc.consumed + rc.window - rc.granted;
    if (grantable <= 0) return;
    if (grantable >= rc.window / 4 || rc.granted - rc.received < MIN_MORE_CHUNK_BYTES) {
      rc.granted += grantable;
      this.#grant([[rc.id, grantable]]);
    }
  }

  /** Window bytes held by received, unreleased data (per channel). */
  outstanding(channel: ChannelId): number {
    const rc = this.#recv[channel]!;
    return rc.received - rc.consumed;
  }

  #grant(entries: [number, number][]): void {
    const payload = this.#registry.encode(Credit, entries);
    const control = this.#send[Channel.CONTROL]!;
    this.#control.push({ header: { channel: Channel.CONTROL, msgId: Credit.id, seq: control.seq, flags: 0 }, chunk: payload });
    control.seq = (control.seq + 1) >>> 0;
    this.stats.creditsSent++;
    countType(this.stats.outByType, Credit.id);
  }

  // ---- Teardown ----

  /** Fail every queued message (the connection is closing). */
  fail(reason: PqnetError): void {
    if (this.#failed === undefined) this.#failed = reason;
    for (const ch of this.#send) {
      const queue = ch.queue.splice(0);
      ch.queuedBytes = 0;
      ch.offset = 0;
      for (const msg of queue) msg.onSettled?.(reason);
    }
    this.#control.length = 0;
  }

  #checkUsable(): void {
    if (this.#failed !== undefined) throw new PqnetError('CLOSED', 'connection is closed', { cause: this.#failed });
  }
}

function countType(m: Map<number, number>, id: number): void {
  m.set(id, (m.get(id) ?? 0) + 1);
}
