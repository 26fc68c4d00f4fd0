/**
 * Accepts inbound connections and runs responder handshakes within caps:
 * at most `maxConcurrentHandshakes` at once and `maxHandshakesPerIp` per remote
 * host (over the cap: a plaintext REJECT{HS_BUSY | TOO_MANY_PER_IP} and close,
 * before any cryptography), and from `cookieThreshold` handshakes in progress
 * every HELLO_I must echo a retry cookie.
 */
import type { Clock } from '../core/clock.ts';
import { PqnetError, Reasons, type Reason } from '../core/errors.ts';
import type { Limits } from '../core/limits.ts';
import type { Random } from '../core/random.ts';
import { encodeCbor } from '../wire/cbor.ts';
import type { MessageRegistry } from '../wire/registry.ts';
import type { ByteStream, Transport, TransportListener } from '../transport/types.ts';
import { CookieJar } from './cookie.ts';
import { encodeRecord, RecordType } from './handshake-records.ts';
import { Handshake, type InitiatorConfig } from './handshake.ts';
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
}

export class SecureListener {
  readonly stats: ListenerStats = { handshakesInProgress: 0, accepted: 0, refused: 0, failed: 0, retriesSent: 0, failuresByReason: new Map() };
  readonly #opts: SecureListenerOptions;
  readonly #cookies: CookieJar;
  readonly #perHost = new Map<string, number>();
  readonly #pending = new Set<ByteStream>();
  #inner: TransportListener | undefined;

  private constructor(opts: SecureListenerOptions) {
    this.#opts = opts;
    this.#cookies = new CookieJar(opts.provider, opts.limits.cookieTtlMs, opts.random);
  }

  static async listen(opts: SecureListenerOptions): Promise<SecureListener> {
    const l = new SecureListener(opts);
    l.#inner = await opts.transport.listen(opts.address, (s) => l.#onStream(s));
    return l;
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
    this.#opts.onHandshakeError?.(new PqnetError(code, stream.remoteAddress), stream.remoteAddress);
  }

  #count(code: Reason): void {
    this.stats.failuresByReason.set(code, (this.stats.failuresByReason.get(code) ?? 0) + 1);
  }

  #onStream(stream: ByteStream): void {
    const o = this.#opts;
    if (this.stats.handshakesInProgress >= o.limits.maxConcurrentHandshakes) return this.#refuse(stream, 'HS_BUSY');
    const host = stream.remoteHost;
    const fromHost = this.#perHost.get(host) ?? 0;
    if (fromHost >= o.limits.maxHandshakesPerIp) return this.#refuse(stream, 'TOO_MANY_PER_IP');
    this.#perHost.set(host, fromHost + 1);
    this.stats.handshakesInProgress++;
    this.#pending.add(stream);
    const hs = Handshake.respond(
      {
        provider: o.provider,
        random: o.random,
        identity: o.identity,
        chainId: o.chainId,
        policy: o.policy,
        limits: o.limits,
        identify: o.identify,
        remoteAddress: stream.remoteAddress,
        cookies: this.#cookies,
        requireCookie: () => this.stats.handshakesInProgress > o.limits.cookieThreshold,
      },
      o.clock.now(),
    );
    const done = (): void => {
      this.stats.retriesSent += hs.retriesIssued;
      this.#pending.delete(stream);
      this.stats.handshakesInProgress--;
      const n = (this.#perHost.get(host) ?? 1) - 1;
      if (n <= 0) this.#perHost.delete(host);
      else this.#perHost.set(host, n);
    };
    runHandshake(stream, hs, o).then(
      (session) => {
        done();
        this.stats.accepted++;
        o.onSession(session);
      },
      (e: PqnetError) => {
        done();
        this.stats.failed++;
        this.#count(e.code);
        o.onHandshakeError?.(e, stream.remoteAddress);
      },
    );
  }
}

export interface DialSecureOptions {
  readonly expectedPeerId?: PeerId;
  readonly kemOffers?: InitiatorConfig['kemOffers'];
  readonly aeadOffers?: InitiatorConfig['aeadOffers'];
  readonly signal?: AbortSignal;
  readonly dialTimeoutMs?: number;
}

/** Connect to `address` and complete the handshake as initiator. */
export async function dialSecure(transport: Transport, address: string, cfg: SecureConfig, options: DialSecureOptions = {}): Promise<SecureSession> {
  const stream = await transport.dial(address, { signal: options.signal, timeoutMs: options.dialTimeoutMs });
  let hs: Handshake;
  try {
    hs = Handshake.initiate({ ...cfg, expectedPeerId: options.expectedPeerId, kemOffers: options.kemOffers, aeadOffers: options.aeadOffers }, cfg.clock.now());
  } catch (e) {
    stream.destroy();
    throw e;
  }
  return runHandshake(stream, hs, cfg);
}
