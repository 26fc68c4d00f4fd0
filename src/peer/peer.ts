/**
 * One peer connection through its lifecycle (docs/spec/peer.md):
 *
 *   connecting -> handshaking -> active -> disconnecting -> closed
 *
 * `connecting` is an outbound dial before the transport connects;
 * `handshaking` covers the secure handshake and then HELLO / HelloAck; the peer
 * is `active` once it has sent a valid HELLO and acknowledged ours with OK.
 * Every exit carries a reason code. While active, the peer is pinged every
 * `pingIntervalMs` (RTT, smoothed); no frame at all for `silenceTimeoutMs`
 * closes it with PEER_SILENT, and a PING unanswered that long (the peer sends
 * but does not read) with SLOW_READER.
 *
 * Faults the remote is to blame for and that do not end the connection (a
 * flood, a skewed clock, a request timeout) are emitted as 'offense' events for
 * the node to score; faults that end it are the close reason.
 */
import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { isPqnetError, PqnetError, type Reason } from '../core/errors.ts';
import type { Limits } from '../core/limits.ts';
import { MuxConnection, type MessageHandler } from '../mux/connection.ts';
import type { InboundMessage } from '../mux/mux.ts';
import type { PeerId } from '../secure/identity.ts';
import type { SecureSession } from '../secure/session.ts';
import type { MessageRegistry } from '../wire/registry.ts';
import { ConnectionLimiter, type RateLimits } from './limiter.ts';
import { decodeIdentify, Hello, HelloAck, HelloStatus, PEER_PROTOCOL_VERSION, type IdentifyInfo } from './messages.ts';

export type PeerState = 'connecting' | 'handshaking' | 'active' | 'disconnecting' | 'closed';
export type Direction = 'inbound' | 'outbound';

export interface PeerTimers {
  /** HELLO and HelloAck must both be in within this time after the secure session starts. */
  readonly helloTimeoutMs: number;
  readonly pingIntervalMs: number;
  /** No frame for this long: PEER_SILENT. A PING unanswered this long: SLOW_READER. */
  readonly silenceTimeoutMs: number;
  /** |remote clock − ours| above this in HELLO is penalised (HELLO_CLOCK_SKEW). */
  readonly maxClockSkewMs: number;
}

export const DEFAULT_PEER_TIMERS: PeerTimers = Object.freeze({
  helloTimeoutMs: 5_000,
  pingIntervalMs: 10_000,
  silenceTimeoutMs: 30_000,
  maxClockSkewMs: 10_000,
});

/** What this node says about itself in HELLO. */
export interface LocalStatus {
  readonly chainId: number;
  readonly capabilities: number;
  height(): number;
}

export interface PeerContext {
  readonly clock: Clock;
  readonly limits: Limits;
  readonly registry: MessageRegistry;
  readonly rateLimits: RateLimits;
  readonly timers: PeerTimers;
  readonly local: LocalStatus;
  /** Protocols this node speaks; the intersection with the remote's is negotiated. */
  readonly protocols: readonly string[];
  /** Where application messages of an active peer go; credit returns when it finishes. */
  readonly dispatch: (peer: Peer, msg: InboundMessage) => void | Promise<void>;
}

export interface RemoteHello {
  readonly version: number;
  readonly chainId: number;
  readonly height: number;
  readonly capabilities: number;
  readonly timestamp: number;
  /** Remote wall clock minus ours when HELLO arrived (positive: remote is ahead). */
  readonly clockSkewMs: number;
}

export interface PeerEvents {
  state: [state: PeerState];
  /** A fault of the remote that did not close the connection. */
  offense: [reason: Reason, detail: string];
  /** A PING was answered after `ms` (the raw sample; `rttMs` is smoothed). */
  rtt: [ms: number];
  /** Once, when the connection is gone. */
  closed: [reason: PqnetError];
}

const RTT_SMOOTHING = 0.25;

export class Peer extends EventEmitter<PeerEvents> {
  readonly key: string;
  readonly direction: Direction;
  /** Dialled address (outbound) or the remote's socket address (inbound). */
  readonly address: string;
  /** Set at construction for a must-connect dial; the node also sets it when an inbound connection authenticates as a must-connect peer-id. */
  mustConnect: boolean;
  readonly openedAt: number;
  state: PeerState;
  host: string;
  connection: MuxConnection | undefined;
  identify: IdentifyInfo | undefined;
  remoteHello: RemoteHello | undefined;
  activeAt: number | undefined;
  rttMs: number | undefined;
  /** Last time the application accepted something from this peer (eviction protects useful peers). */
  lastUsefulAt: number | undefined;
  closeReason: PqnetError | undefined;
  readonly #ctx: PeerContext;
  #ackReceived = false;
  /** We refused the remote's HELLO: it never becomes active, whatever its HelloAck says. */
  #refused = false;
  #timer: TimerHandle | undefined;
  #startedAt = 0;
  #lastPingAt = 0;
  #pinging = false;

  constructor(ctx: PeerContext, key: string, direction: Direction, address: string, host: string, mustConnect: boolean) {
    super();
    this.#ctx = ctx;
    this.key = key;
    this.direction = direction;
    this.address = address;
    this.host = host;
    this.mustConnect = mustConnect;
    this.openedAt = ctx.clock.now();
    this.state = direction === 'outbound' ? 'connecting' : 'handshaking';
  }

  get peerId(): PeerId | undefined {
    return this.connection?.session.remotePeerId;
  }

  get session(): SecureSession | undefined {
    return this.connection?.session;
  }

  /** The transport connected; the secure handshake runs (outbound). */
  handshaking(host: string): void {
    this.host = host;
    if (this.state === 'connecting') this.#setState('handshaking');
  }

  /**
   * The secure session is up: wrap it in the mux, negotiate protocols from the
   * remote's identify, send HELLO and wait for the remote's. Throws MSG_* if the
   * identify record is malformed (the caller closes the session with it).
   */
  attach(session: SecureSession): void {
    const identify = decodeIdentify(session.remote.identify);
    const now = this.#ctx.clock.now();
    const conn = new MuxConnection(session, {
      registry: this.#ctx.registry,
      limits: this.#ctx.limits,
      clock: this.#ctx.clock,
      limiter: new ConnectionLimiter(this.#ctx.rateLimits, now),
    });
    this.connection = conn;
    this.identify = identify;
    this.host = session.remoteHost;
    if (this.state === 'connecting') this.#setState('handshaking');
    const remote = new Set(identify.protocols);
    conn.setNegotiated(this.#ctx.protocols.filter((p) => remote.has(p)));
    conn.on('offense', (reason, detail) => this.emit('offense', reason, detail));
    conn.on('handlerError', (e, type) => console.error(`pqnet: handler for ${type.name} failed`, e));
    conn.once('close', (reason) => this.#onClosed(reason));
    const handler: MessageHandler = (msg) => this.#onMessage(msg);
    conn.start(handler, {
      // A request before HELLO completed is the same fault as any other message then.
      admitRequest: (msg) => {
        if (this.state === 'active') return true;
        this.close('HELLO_UNEXPECTED', `${msg.type.name} before HELLO completed`);
        return false;
      },
    });
    this.#startedAt = now;
    const l = this.#ctx.local;
    // Timestamps are whole milliseconds on the wire; a clock may give fractions (the simulator's does).
    conn.send(Hello, [PEER_PROTOCOL_VERSION, l.chainId, l.height(), l.capabilities, Math.floor(this.#ctx.clock.wallNow())]).catch((e: unknown) => {
      // Not silently: a HELLO that cannot go out would otherwise leave the peer waiting for its timeout.
      this.close(isPqnetError(e) ? e.code : 'INTERNAL', `HELLO not sent: ${(e as Error).message}`);
    });
    this.#arm();
  }

  /** Orderly close with GOODBYE carrying `reason`. */
  close(reason: Reason, message = ''): void {
    if (this.state === 'closed' || this.state === 'disconnecting') return;
    this.closeReason ??= new PqnetError(reason, message || undefined);
    this.#setState('disconnecting');
    if (this.connection === undefined) this.#onClosed(this.closeReason);
    else this.connection.close(reason, message);
  }

  /** The dial or handshake failed before a session existed. */
  failed(reason: PqnetError): void {
    if (this.state === 'closed') return;
    this.#onClosed(reason);
  }

  #onMessage(msg: InboundMessage): void | Promise<void> {
    if (msg.type.id === Hello.id) return this.#onHello(msg.value as [number, number, number, number, number]);
    if (msg.type.id === HelloAck.id) return this.#onAck(msg.value as [number, number]);
    if (this.state !== 'active') {
      this.close('HELLO_UNEXPECTED', `${msg.type.name} before HELLO completed`);
      return;
    }
    return this.#ctx.dispatch(this, msg);
  }

  #onHello([version, chainId, height, capabilities, timestamp]: [number, number, number, number, number]): void {
    if (this.remoteHello !== undefined) return this.close('HELLO_UNEXPECTED', 'second HELLO');
    const clockSkewMs = timestamp - this.#ctx.clock.wallNow();
    this.remoteHello = { version, chainId, height, capabilities, timestamp, clockSkewMs };
    const status =
      version !== PEER_PROTOCOL_VERSION ? HelloStatus.VERSION_MISMATCH : chainId !== this.#ctx.local.chainId ? HelloStatus.CHAIN_ID_MISMATCH : HelloStatus.OK;
    const conn = this.connection!;
    const ack = conn.send(HelloAck, [status, Math.floor(this.#ctx.clock.wallNow())]);
    if (status !== HelloStatus.OK) {
      this.#refused = true;
      const reason: Reason = status === HelloStatus.VERSION_MISMATCH ? 'HELLO_VERSION_MISMATCH' : 'HELLO_CHAIN_MISMATCH';
      const detail = status === HelloStatus.VERSION_MISMATCH ? `peer speaks version ${version}` : `peer is on chain ${chainId}, we are on ${this.#ctx.local.chainId}`;
      // Let the HelloAck go out before GOODBYE.
      ack.then(
        () => this.close(reason, detail),
        () => this.close(reason, detail),
      );
      return;
    }
    ack.catch(() => undefined);
    if (Math.abs(clockSkewMs) > this.#ctx.timers.maxClockSkewMs) this.emit('offense', 'HELLO_CLOCK_SKEW', `${Math.round(clockSkewMs / 1000)} s`);
    this.#maybeActive();
  }

  #onAck([status]: [number, number]): void {
    if (this.#ackReceived) return this.close('HELLO_UNEXPECTED', 'second HelloAck');
    this.#ackReceived = true;
    if (status !== HelloStatus.OK) {
      const what = status === HelloStatus.VERSION_MISMATCH ? 'VERSION_MISMATCH' : status === HelloStatus.CHAIN_ID_MISMATCH ? 'CHAIN_ID_MISMATCH' : `status ${status}`;
      return this.close(status === HelloStatus.VERSION_MISMATCH ? 'HELLO_VERSION_MISMATCH' : 'CLOSED', `peer refused our HELLO: ${what}`);
    }
    this.#maybeActive();
  }

  #maybeActive(): void {
    if (this.state !== 'handshaking' || this.#refused || this.remoteHello === undefined || !this.#ackReceived) return;
    this.activeAt = this.#ctx.clock.now();
    this.#lastPingAt = this.activeAt;
    // The HELLO deadline timer is armed for helloTimeoutMs: switch to the active cadence now.
    if (this.#timer !== undefined) this.#ctx.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#setState('active');
    if (this.#timer === undefined) this.#arm();
  }

  /** One timer per peer, re-armed at the next thing to check. */
  #arm(): void {
    if (this.state === 'closed' || this.state === 'disconnecting') return;
    const t = this.#ctx.timers;
    const delay = this.state === 'active' ? Math.min(t.pingIntervalMs, t.silenceTimeoutMs) / 2 : t.helloTimeoutMs;
    this.#timer = this.#ctx.clock.setTimer(Math.max(1, delay), () => {
      this.#timer = undefined;
      this.#tick();
      this.#arm();
    });
  }

  #tick(): void {
    const now = this.#ctx.clock.now();
    const t = this.#ctx.timers;
    const session = this.connection?.session;
    if (session === undefined) return;
    if (this.state === 'handshaking') {
      if (now - this.#startedAt >= t.helloTimeoutMs) this.close('HELLO_TIMEOUT', this.remoteHello === undefined ? 'no HELLO' : 'no HelloAck');
      return;
    }
    if (this.state !== 'active') return;
    if (now - session.stats.lastFrameAt >= t.silenceTimeoutMs) return this.close('PEER_SILENT', `nothing for ${Math.round(now - session.stats.lastFrameAt)} ms`);
    if (!this.#pinging && now - this.#lastPingAt >= t.pingIntervalMs) this.#ping(session);
  }

  #ping(session: SecureSession): void {
    this.#pinging = true;
    this.#lastPingAt = this.#ctx.clock.now();
    session.ping(this.#ctx.timers.silenceTimeoutMs).then(
      (rtt) => {
        this.#pinging = false;
        this.rttMs = this.rttMs === undefined ? rtt : this.rttMs + RTT_SMOOTHING * (rtt - this.rttMs);
        this.emit('rtt', rtt);
      },
      (e: unknown) => {
        this.#pinging = false;
        if (isPqnetError(e) && e.code === 'TIMEOUT') this.close('SLOW_READER', 'PING unanswered');
      },
    );
  }

  #onClosed(reason: PqnetError): void {
    if (this.state === 'closed') return;
    if (this.#timer !== undefined) this.#ctx.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    // A close we started keeps our reason; otherwise the session's (remote GOODBYE, I/O error, violation).
    this.closeReason ??= reason;
    this.#setState('closed');
    this.emit('closed', this.closeReason);
  }

  #setState(s: PeerState): void {
    this.state = s;
    this.emit('state', s);
  }
}
