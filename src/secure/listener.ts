/**
 * Accepts inbound connections and runs responder handshakes within caps, all
 * checked before any cryptography (over a cap: a plaintext REJECT and close):
 * - at most `maxConcurrentHandshakes` in progress (HS_BUSY) and
 *   `maxHandshakesPerIp` per host group, an IPv4 address or an IPv6 /64
 *   (TOO_MANY_PER_IP);
 * - new handshakes per host group limited by a token bucket
 *   (`handshakesPerHostPerSecond`, `handshakeBurstPerHost`: HS_RATE_LIMITED);
 * - responder work (key exchange and signing, measured) limited to
 *   `handshakeCpuMsPerSecond` with a burst of `handshakeCpuBurstMs` (HS_BUSY), so
 *   a flood of HELLO_Is cannot take the event loop from established sessions;
 * - while more than `cookieThreshold` handshakes are in progress, every HELLO_I
 *   must echo a retry cookie.
 */
import type { Clock } from '../core/clock.ts';
import { PqnetError, Reasons, type Reason } from '../core/errors.ts';
import type { Limits } from '../core/limits.ts';
import type { Random } from '../core/random.ts';
import { encodeCbor } from '../wire/cbor.ts';
import type { MessageRegistry } from '../wire/registry.ts';
import { TokenBucket } from '../core/token-bucket.ts';
import { hostGroupKey } from '../transport/address.ts';
import type { ByteStream, Transport, TransportListener } from '../transport/types.ts';
import { CookieJar } from './cookie.ts';
import { encodeRecord, RecordType } from './handshake-records.ts';
import { Handshake, validateHandshakeConfig, type InitiatorConfig } from './handshake.ts';
import type { Identity, PeerId } from './identity.ts';
import type { CompiledPolicy } from './policy.ts';
import type { CryptoProvider } from './provider.ts';
import { runHandshake, type SecureSession } from './session.ts';

/** What both ends of a secure connection need to know about this node. */
export interface SecureConfig {
  readonly provider: CryptoProvider;
  readonly random: Random;
  readonly clock: Clock;
  readonly identity: Identity;
  readonly chainId: number;
  readonly policy: CompiledPolicy;
  readonly limits: Limits;
  readonly identify?: Uint8Array;
  readonly registry?: MessageRegistry;
}

export interface ListenerStats {
  handshakesInProgress: number;
  /** Milliseconds of responder handshake work spent so far. */
  handshakeWorkMs: number;
  accepted: number;
  refused: number;
  failed: number;
  retriesSent: number;
  failuresByReason: Map<Reason, number>;
}

export interface SecureListenerOptions extends SecureConfig {
  readonly transport: Transport;
  readonly address: string;
  readonly onSession: (session: SecureSession) => void;
  /** Called for every inbound handshake that fails or is refused. */
  readonly onHandshakeError?: (error: PqnetError, remoteAddress: string) => void;
  /**
   * Asked first for every new connection, before any other check or any
   * cryptography: return a reason to refuse it (bans, allow/deny lists, the
   * peer set's quotas). Banned and denied addresses are closed silently; other
   * refusals get a REJECT carrying the reason.
   */
  readonly admit?: (remoteHost: string, remoteAddress: string) => Reason | undefined;
  /**
   * Called when a connection `admit` let through has also passed the
   * listener's own caps and its handshake starts: the place for side effects
   * of admission (recording the connection, evicting a peer to make room),
   * which must not happen for a connection the caps then refuse.
   */
  readonly admitted?: (remoteHost: string, remoteAddress: string) => void;
}

/** Refusals that get no REJECT: a banned or denied host learns nothing. */
const SILENT_REFUSALS: ReadonlySet<Reason> = new Set(['PEER_BANNED', 'PEER_DENIED']);

export class SecureListener {
  readonly stats: ListenerStats = { handshakesInProgress: 0, handshakeWorkMs: 0, accepted: 0, refused: 0, failed: 0, retriesSent: 0, failuresByReason: new Map() };
  readonly #opts: SecureListenerOptions;
  readonly #cookies: CookieJar;
  readonly #perHost = new Map<string, number>();
  readonly #hostRate = new Map<string, TokenBucket>();
  readonly #work: TokenBucket;
  readonly #pending = new Set<ByteStream>();
  #inner: TransportListener | undefined;
  #identify: Uint8Array | undefined;

  private constructor(opts: SecureListenerOptions) {
    this.#opts = opts;
    this.#identify = opts.identify;
    this.#cookies = new CookieJar(opts.provider, opts.limits.cookieTtlMs, opts.random);
    this.#work = new TokenBucket(opts.limits.handshakeCpuMsPerSecond, opts.limits.handshakeCpuBurstMs, opts.clock.now());
  }

  /** Listen on `opts.address`. A configuration the handshake would refuse fails here, not on the first connection. */
  static async listen(opts: SecureListenerOptions): Promise<SecureListener> {
    validateHandshakeConfig(opts);
    const l = new SecureListener(opts);
    l.#inner = await opts.transport.listen(opts.address, (s) => l.#onStream(s));
    return l;
  }

  /** Identify data for handshakes from now on (e.g. once the bound port is known). */
  setIdentify(identify: Uint8Array): void {
    validateHandshakeConfig({ ...this.#opts, identify });
    this.#identify = identify;
  }

  get address(): string {
    return this.#inner?.address ?? this.#opts.address;
  }

  async close(): Promise<void> {
    for (const s of this.#pending) s.destroy(new PqnetError('SHUTDOWN'));
    await this.#inner?.close();
  }

  #refuse(stream: ByteStream, code: Reason): void {
    this.stats.refused++;
    this.#count(code);
    stream.setHandlers({ data: () => undefined, drain: () => undefined, close: () => undefined });
    stream.write(encodeRecord(RecordType.REJECT, encodeCbor([Reasons[code].wire])));
    stream.end();
    this.#report(new PqnetError(code, stream.remoteAddress), stream.remoteAddress);
  }

  #count(code: Reason): void {
    this.stats.failuresByReason.set(code, (this.stats.failuresByReason.get(code) ?? 0) + 1);
  }

  /** Application callbacks must not take the listener down with them. */
  #report(error: PqnetError, remoteAddress: string): void {
    try {
      this.#opts.onHandshakeError?.(error, remoteAddress);
    } catch (e) {
      console.error('pqnet: onHandshakeError threw', e);
    }
  }

  #admit(stream: ByteStream): Reason | undefined {
    try {
      return this.#opts.admit?.(stream.remoteHost, stream.remoteAddress);
    } catch (e) {
      console.error('pqnet: admit threw', e);
      return 'INTERNAL';
    }
  }

  /** Token bucket of new handshakes for a host group; the map forgets full buckets. */
  #rateAllows(group: string, now: number): boolean {
    const l = this.#opts.limits;
    let bucket = this.#hostRate.get(group);
    if (bucket === undefined) {
      if (this.#hostRate.size >= MAX_TRACKED_HOSTS) {
        for (const [k, b] of this.#hostRate) if (b.isFull(now)) this.#hostRate.delete(k);
        // Still full of active hosts: forget the oldest half rather than grow.
        if (this.#hostRate.size >= MAX_TRACKED_HOSTS) {
          let drop = this.#hostRate.size / 2;
          for (const k of this.#hostRate.keys()) if (drop-- > 0) this.#hostRate.delete(k);
        }
      }
      bucket = new TokenBucket(l.handshakesPerHostPerSecond, l.handshakeBurstPerHost, now);
      this.#hostRate.set(group, bucket);
    }
    return bucket.take(now);
  }

  #onStream(stream: ByteStream): void {
    const o = this.#opts;
    const refusal = this.#admit(stream);
    if (refusal !== undefined) {
      if (!SILENT_REFUSALS.has(refusal)) return this.#refuse(stream, refusal);
      this.stats.refused++;
      this.#count(refusal);
      stream.destroy(new PqnetError(refusal));
      return this.#report(new PqnetError(refusal, stream.remoteAddress), stream.remoteAddress);
    }
    const now = o.clock.now();
    if (this.stats.handshakesInProgress >= o.limits.maxConcurrentHandshakes) return this.#refuse(stream, 'HS_BUSY');
    const group = hostGroupKey(stream.remoteHost);
    const fromHost = this.#perHost.get(group) ?? 0;
    if (fromHost >= o.limits.maxHandshakesPerIp) return this.#refuse(stream, 'TOO_MANY_PER_IP');
    if (!this.#rateAllows(group, now)) return this.#refuse(stream, 'HS_RATE_LIMITED');
    if (this.#work.available(now) <= 0) return this.#refuse(stream, 'HS_BUSY');
    this.#perHost.set(group, fromHost + 1);
    this.stats.handshakesInProgress++;
    try {
      o.admitted?.(stream.remoteHost, stream.remoteAddress);
    } catch (e) {
      console.error('pqnet: admitted threw', e);
    }
    this.#pending.add(stream);
    const hs = Handshake.respond(
      {
        provider: o.provider,
        random: o.random,
        identity: o.identity,
        chainId: o.chainId,
        policy: o.policy,
        limits: o.limits,
        identify: this.#identify,
        remoteAddress: stream.remoteAddress,
        cookies: this.#cookies,
        requireCookie: () => this.stats.handshakesInProgress > o.limits.cookieThreshold,
      },
      now,
    );
    const done = (): void => {
      this.stats.retriesSent += hs.retriesIssued;
      this.#pending.delete(stream);
      this.stats.handshakesInProgress--;
      const n = (this.#perHost.get(group) ?? 1) - 1;
      if (n <= 0) this.#perHost.delete(group);
      else this.#perHost.set(group, n);
    };
    const onWork = (ms: number): void => {
      this.stats.handshakeWorkMs += ms;
      this.#work.charge(o.clock.now(), ms);
    };
    runHandshake(stream, hs, o, { onWork }).then(
      (session) => {
        done();
        this.stats.accepted++;
        try {
          o.onSession(session);
        } catch (e) {
          session.destroy(new PqnetError('INTERNAL', 'onSession threw', { cause: e }));
          console.error('pqnet: onSession threw', e);
        }
      },
      (e: PqnetError) => {
        done();
        this.stats.failed++;
        this.#count(e.code);
        this.#report(e, stream.remoteAddress);
      },
    );
  }
}

/** Host groups whose rate buckets the listener remembers at most. */
export const MAX_TRACKED_HOSTS = 4_096;

export interface DialSecureOptions {
  readonly expectedPeerId?: PeerId;
  readonly kemOffers?: InitiatorConfig['kemOffers'];
  readonly aeadOffers?: InitiatorConfig['aeadOffers'];
  readonly signal?: AbortSignal;
  readonly dialTimeoutMs?: number;
  /** Told when the transport connected and the handshake begins. */
  readonly onConnected?: (stream: ByteStream) => void;
}

/** Connect to `address` and complete the handshake as initiator; `signal` aborts either step. */
export async function dialSecure(transport: Transport, address: string, cfg: SecureConfig, options: DialSecureOptions = {}): Promise<SecureSession> {
  const initiator = { ...cfg, expectedPeerId: options.expectedPeerId, kemOffers: options.kemOffers, aeadOffers: options.aeadOffers };
  validateHandshakeConfig(initiator); // local misconfiguration fails before any connection exists
  const dialing = transport.dial(address, { signal: options.signal, timeoutMs: options.dialTimeoutMs });
  // Ephemeral key generation runs while the transport connects.
  let hs: Handshake;
  try {
    hs = Handshake.initiate(initiator, cfg.clock.now());
  } catch (e) {
    dialing.then((s) => s.destroy(), () => undefined);
    throw e;
  }
  const stream = await dialing;
  options.onConnected?.(stream);
  return runHandshake(stream, hs, cfg, { signal: options.signal });
}
