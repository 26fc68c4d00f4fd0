/**
 * The composition root (DESIGN.md, Node and operations): a `Node` wires a
 * transport, the secure listener and dialer, the mux, the peer lifecycle, the
 * peer set, scores, bans, address filters and the persistent peer book, and
 * gives the layers above (gossip, sync, the operator API) one surface:
 * `start` / `stop`, `connect` / `disconnect` / `ban`, per-type `subscribe`,
 * `send`, `broadcast`, `request` / `handle`, typed events and `health()`.
 *
 * Admission order for an inbound connection, all before any cryptography:
 * allow/deny lists (PEER_DENIED), address bans (PEER_BANNED), the peer set's
 * per-IP, per-subnet and inbound quotas (TOO_MANY_PER_IP, PEER_SUBNET_LIMIT,
 * PEER_LIMIT, or eviction of a weaker inbound peer), then the listener's own
 * handshake caps. After the handshake: peer-id bans, self and duplicate
 * connections. Then HELLO.
 */
import { EventEmitter } from 'node:events';
import { SystemClock, type Clock, type TimerHandle } from '../core/clock.ts';
import { isPqnetError, PqnetError, Reasons, toPqnetError, type Reason } from '../core/errors.ts';
import { makeLimits, type Limits } from '../core/limits.ts';
import { systemRandom, type Random } from '../core/random.ts';
import type { InboundMessage } from '../mux/mux.ts';
import { registerRequest, type RequestType } from '../mux/rpc.ts';
import { BanList, hostCidr, type BanOptions } from '../peer/bans.ts';
import { isLoopbackHost } from '../core/ip.ts';
import { PeerBook, type PeerBookOptions } from '../peer/book.ts';
import { AddressFilter } from '../peer/filter.ts';
import { DEFAULT_RATE_LIMITS, type RateLimits } from '../peer/limiter.ts';
import { encodeIdentify, PEER_MESSAGES } from '../peer/messages.ts';
import { DEFAULT_PEER_TIMERS, Peer, type PeerState, type PeerTimers } from '../peer/peer.ts';
import { PeerSet, type PeerSetOptions } from '../peer/peer-set.ts';
import { ScoreBook, type ScoreOptions, type ScoreStatus } from '../peer/score.ts';
import { PeerStore } from '../peer/store.ts';
import type { BanRecord } from '../peer/types.ts';
import type { AeadAlg, KemAlg, SigAlg } from '../secure/algorithms.ts';
import { PeerId, type Identity } from '../secure/identity.ts';
import { dialSecure, SecureListener, type SecureConfig } from '../secure/listener.ts';
import { compilePolicy, DEFAULT_POLICY, type AlgorithmPolicy, type CompiledPolicy } from '../secure/policy.ts';
import type { CryptoProvider } from '../secure/provider.ts';
import { getProvider } from '../secure/providers.ts';
import type { SecureSession } from '../secure/session.ts';
import { parseHostPort } from '../transport/address.ts';
import { MultiTransport } from '../transport/multi.ts';
import { TcpTransport } from '../transport/tcp.ts';
import type { Transport } from '../transport/types.ts';
import { WebSocketTransport } from '../transport/ws.ts';
import { createRegistry } from '../wire/messages.ts';
import type { MessageRegistry, MessageType } from '../wire/registry.ts';

export interface MustConnectPeer {
  readonly address: string;
  /** If set, the dial is refused unless this peer answers (HS_PEER_ID_MISMATCH). */
  readonly peerId?: string;
}

export interface NodeConfig {
  readonly identity: Identity;
  readonly chainId: number;
  /** SQLite file holding the peer book and the ban list. */
  readonly storePath: string;
  /** Addresses to listen on, e.g. `tcp://0.0.0.0:7420` (none: outbound only). */
  readonly listen?: readonly string[];
  /** Addresses announced to peers in identify (default: the bound listen addresses). */
  readonly announce?: readonly string[];
  readonly mustConnect?: readonly MustConnectPeer[];
  /** Addresses learned from configuration, dialled to fill the outbound quota. */
  readonly bootstrap?: readonly string[];
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
  readonly protocols?: readonly string[];
  readonly agent?: string;
  readonly capabilities?: number;
  /** The chain's height for HELLO (default 0). */
  readonly height?: () => number;
  readonly transport?: Transport;
  readonly provider?: CryptoProvider;
  readonly policy?: AlgorithmPolicy;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly limits?: Partial<Limits>;
  readonly rateLimits?: Partial<RateLimits>;
  readonly timers?: Partial<PeerTimers>;
  readonly peerSet?: Partial<PeerSetOptions>;
  readonly bans?: Partial<BanOptions>;
  readonly scores?: Partial<ScoreOptions>;
  readonly peerBook?: Partial<PeerBookOptions>;
  /** How often the node redials, fills its outbound quota and prunes (default 1 s). */
  readonly maintenanceIntervalMs?: number;
  /**
   * When a peer's score falls to the ban threshold, its address is banned with
   * its id, except a loopback address unless this is true (default false): every
   * node on this machine shares 127.0.0.1, and one bad local peer must not cut off
   * the others (Bitcoin Core likewise does not discourage local peers).
   */
  readonly banLoopbackAddresses?: boolean;
}

export interface PeerInfo {
  readonly key: string;
  readonly peerId: string | undefined;
  readonly direction: 'inbound' | 'outbound';
  readonly state: PeerState;
  readonly address: string;
  readonly host: string;
  readonly mustConnect: boolean;
  readonly agent: string | undefined;
  readonly listenAddresses: readonly string[];
  readonly protocols: readonly string[];
  readonly height: number | undefined;
  readonly capabilities: number | undefined;
  readonly clockSkewMs: number | undefined;
  readonly rttMs: number | undefined;
  readonly score: number | undefined;
  readonly scoreStatus: ScoreStatus | undefined;
  readonly connectedForMs: number;
  /** Bytes on the wire, the handshake included. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly queuedBytes: number;
  readonly requestsInFlight: number;
  /** Negotiated key agreement and cipher, the remote identity's algorithm, and the handshake's duration; undefined before the session. */
  readonly kem: KemAlg | undefined;
  readonly aead: AeadAlg | undefined;
  readonly sig: SigAlg | undefined;
  readonly handshakeMs: number | undefined;
}

/** Messages by type name, received and sent. */
export interface MessageCounts {
  readonly in: Record<string, number>;
  readonly out: Record<string, number>;
}

/** Totals since `start()`, over live and closed connections. */
export interface TrafficTotals {
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly messages: MessageCounts;
}

/** A completed handshake, as the 'handshake' event reports it. */
export interface HandshakeInfo {
  readonly direction: 'inbound' | 'outbound';
  readonly kem: KemAlg;
  readonly aead: AeadAlg;
  readonly sig: SigAlg;
  readonly ms: number;
}

export interface HealthSnapshot {
  readonly peerId: string;
  readonly running: boolean;
  readonly listening: readonly string[];
  readonly peers: Readonly<Record<PeerState, number>>;
  readonly inbound: number;
  readonly outbound: number;
  readonly handshakesInProgress: number;
  readonly queuedBytes: number;
  readonly scores: { readonly greylisted: number; readonly trusted: number; readonly lowest: number | undefined };
  readonly bans: number;
  readonly peerBook: number;
  readonly rejects: Readonly<Record<string, number>>;
  readonly disconnects: Readonly<Record<string, number>>;
  /** Peer faults scored (or reported to the application), by reason. */
  readonly offenses: Readonly<Record<string, number>>;
  readonly handshakes: { readonly completed: number; readonly failed: Readonly<Record<string, number>> };
}

export interface NodeEvents {
  'peer:state': [peer: PeerInfo];
  'peer:active': [peer: PeerInfo];
  'peer:closed': [peer: PeerInfo, reason: PqnetError];
  'peer:offense': [peer: PeerInfo, reason: Reason, detail: string];
  banned: [ban: BanRecord];
  /** A secure handshake completed (before the peer-id checks and HELLO). */
  handshake: [info: HandshakeInfo];
  /** A handshake failed (inbound or outbound; not a refusal before it began, nor a failed TCP connect). */
  'handshake:failed': [reason: Reason];
  /** A PING to an active peer was answered after `ms`. */
  rtt: [ms: number];
}

export type Subscriber<T> = (value: T, peer: PeerInfo) => void | Promise<void>;

const DEFAULT_AGENT = 'pqnet/0.1';

/** Must-connect redial backoff: 1 s doubling to 60 s, reset once the peer is active. */
const REDIAL_BASE_MS = 1_000;
const REDIAL_MAX_MS = 60_000;
/** How often the peer book and ban list are pruned. */
const PRUNE_EVERY_MS = 10 * 60_000;
/** `stop()` waits this long for GOODBYEs to flush before destroying what is left. */
const STOP_GRACE_MS = 2_000;

export class Node extends EventEmitter<NodeEvents> {
  readonly identity: Identity;
  readonly registry: MessageRegistry;
  readonly limits: Limits;
  readonly #config: NodeConfig;
  readonly #clock: Clock;
  readonly #transport: Transport;
  readonly #secure: SecureConfig;
  readonly #timers: PeerTimers;
  readonly #rateLimits: RateLimits;
  readonly #filter: AddressFilter;
  readonly #peerSet: PeerSet;
  readonly #scores: ScoreBook;
  readonly #peers = new Map<string, Peer>();
  readonly #subscribers = new Map<number, Subscriber<unknown>[]>();
  readonly #handlers = new Map<number, { rt: RequestType<unknown, unknown>; handler: (body: unknown, peer: PeerInfo) => unknown }>();
  readonly #redial = new Map<string, { failures: number; nextAt: number }>();
  readonly #rejects = new Map<string, number>();
  readonly #disconnects = new Map<string, number>();
  readonly #offenses = new Map<string, number>();
  readonly #handshakeFailures = new Map<string, number>();
  #handshakes = 0;
  /** Bytes and messages of connections that have closed (live ones are summed at read time). */
  readonly #closedTraffic = { bytesIn: 0, bytesOut: 0, in: new Map<number, number>(), out: new Map<number, number>() };
  #store: PeerStore | undefined;
  #book: PeerBook | undefined;
  #bans: BanList | undefined;
  #listeners: SecureListener[] = [];
  #timer: TimerHandle | undefined;
  #lastPrune = 0;
  #running = false;
  #nextKey = 0;
  /** Between the listener's `admit` and `admitted` calls for one connection. */
  #admission: { remoteAddress: string; evict: string | undefined } | undefined;

  constructor(config: NodeConfig) {
    super();
    this.#config = config;
    this.identity = config.identity;
    this.#clock = config.clock ?? new SystemClock();
    this.#transport = config.transport ?? new MultiTransport([new TcpTransport(), new WebSocketTransport()]);
    this.limits = makeLimits(config.limits);
    this.#timers = { ...DEFAULT_PEER_TIMERS, ...config.timers };
    this.#rateLimits = { ...DEFAULT_RATE_LIMITS, ...config.rateLimits };
    this.#filter = new AddressFilter({ allow: [...(config.allow ?? [])], deny: [...(config.deny ?? [])] });
    this.#peerSet = new PeerSet(config.peerSet);
    this.#scores = new ScoreBook(config.scores);
    this.registry = createRegistry();
    for (const t of PEER_MESSAGES) this.registry.register(t as MessageType<unknown>);
    const provider = config.provider ?? getProvider();
    this.#secure = {
      provider,
      random: config.random ?? systemRandom,
      clock: this.#clock,
      identity: config.identity,
      chainId: config.chainId,
      policy: compilePolicy(config.policy ?? DEFAULT_POLICY, provider),
      limits: this.limits,
      registry: this.registry,
    };
  }

  get peerId(): string {
    return this.identity.peerId.toString();
  }

  get running(): boolean {
    return this.#running;
  }

  /** The algorithm policy in force (what handshakes accept) and its root. */
  get policy(): CompiledPolicy {
    return this.#secure.policy;
  }

  /** `native` (node:crypto) or `portable` (@noble). */
  get providerName(): string {
    return this.#secure.provider.name;
  }

  /** Addresses announced to peers in identify (the configured ones, else the bound ones). */
  get announceAddresses(): string[] {
    return [...(this.#config.announce ?? this.listenAddresses)];
  }

  get chainId(): number {
    return this.#config.chainId;
  }

  get agent(): string {
    return this.#config.agent ?? DEFAULT_AGENT;
  }

  /** Bound listen addresses (with real ports). */
  get listenAddresses(): string[] {
    return this.#listeners.map((l) => l.address);
  }

  // ---- Lifecycle ----

  /** Open the store, listen, and begin dialling must-connect and bootstrap peers. */
  async start(): Promise<void> {
    if (this.#running) throw new PqnetError('INVALID_ARGUMENT', 'node already started');
    const wall = this.#clock.wallNow();
    this.#store = PeerStore.open(this.#config.storePath);
    try {
      this.#book = new PeerBook(this.#store, this.#config.peerBook);
      this.#bans = new BanList(this.#store, this.#config.bans ?? {}, wall);
      for (const m of this.#config.mustConnect ?? []) this.#book.add(m.address, 'must-connect', wall, m.peerId);
      for (const a of this.#config.bootstrap ?? []) this.#book.add(a, 'static', wall);
      for (const address of this.#config.listen ?? []) this.#listeners.push(await this.#listen(address));
      // Identify announces the bound addresses, known only now.
      const identify = this.#identify();
      for (const l of this.#listeners) l.setIdentify(identify);
    } catch (e) {
      await this.#closeListeners();
      this.#store.close();
      this.#store = undefined;
      throw e;
    }
    this.#running = true;
    this.#maintain();
  }

  /** Disconnect every peer with SHUTDOWN (GOODBYE), stop listening and close the store. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    await this.#closeListeners();
    const open = [...this.#peers.values()].filter((p) => p.state !== 'closed');
    const gone = Promise.all(open.map((p) => new Promise<void>((r) => (p.state === 'closed' ? r() : p.once('closed', () => r())))));
    for (const p of open) p.close('SHUTDOWN');
    let grace: TimerHandle | undefined;
    await Promise.race([gone, new Promise<void>((r) => (grace = this.#clock.setTimer(STOP_GRACE_MS, r)))]);
    if (grace !== undefined) this.#clock.clearTimer(grace);
    for (const p of open) if (p.state !== 'closed') p.connection?.destroy(new PqnetError('SHUTDOWN'));
    this.#store?.close();
    this.#store = undefined;
  }

  // ---- Peers ----

  /**
   * Dial `address` and resolve once the peer is active. Rejects with the
   * reason (DIAL_FAILED, HS_*, PEER_BANNED, PEER_DUPLICATE, HELLO_*, ...).
   * Resolves with the existing connection, without dialling, if the peer
   * book knows who answers at `address` (or `peerId` is given) and that peer
   * is connected. If the new connection is refused as a duplicate of another
   * connection to the same peer (both sides dialled each other at once), it
   * resolves with the connection that stays once it is active.
   */
  connect(address: string, options: { peerId?: string; mustConnect?: boolean } = {}): Promise<PeerInfo> {
    // Already connected to whoever answers there (as far as the peer book knows): no new dial.
    const known = options.peerId ?? this.#book?.get(address)?.peerId ?? undefined;
    const existing = known === undefined ? undefined : this.#byPeerId(known);
    if (existing !== undefined) return existing.state === 'active' ? Promise.resolve(this.#info(existing)) : this.#whenActive(existing);
    // A dial to this address already under way (a must-connect redial, another connect): wait for it.
    const dialling = this.#outboundTo(address);
    if (dialling !== undefined && (options.peerId === undefined || dialling.peerId?.toString() === options.peerId)) return this.#whenActive(dialling);
    let peer: Peer;
    try {
      peer = this.#dial(address, options.mustConnect === true, options.peerId);
    } catch (e) {
      return Promise.reject(toPqnetError(e));
    }
    return this.#whenActive(peer);
  }

  #whenActive(peer: Peer): Promise<PeerInfo> {
    return new Promise((resolve, reject) => {
      const onState = (s: PeerState): void => {
        if (s !== 'active') return;
        peer.off('closed', onClosed);
        peer.off('state', onState);
        resolve(this.#info(peer));
      };
      const onClosed = (reason: PqnetError): void => {
        peer.off('state', onState);
        const pid = peer.peerId?.toString() ?? reason.details?.['peerId'];
        if (typeof pid !== 'string' || !isDuplicate(reason)) reject(reason);
        else this.#whenPeerActive(pid, reason).then(resolve, reject);
      };
      peer.on('state', onState);
      peer.once('closed', onClosed);
    });
  }

  /**
   * The connection that won over a duplicate: it may still be in its handshake
   * here (the remote finished first), so wait for it, at most a handshake and
   * a HELLO long; rejects with `lost` if no connection to `pid` becomes active.
   */
  #whenPeerActive(pid: string, lost: PqnetError): Promise<PeerInfo> {
    const winner = this.#byPeerId(pid);
    if (winner !== undefined) return winner.state === 'active' ? Promise.resolve(this.#info(winner)) : this.#whenActive(winner);
    return new Promise((resolve, reject) => {
      const onActive = (info: PeerInfo): void => {
        if (info.peerId !== pid) return;
        this.off('peer:active', onActive);
        this.#clock.clearTimer(timer);
        resolve(info);
      };
      const timer = this.#clock.setTimer(this.limits.handshakeTimeoutMs + this.#timers.helloTimeoutMs, () => {
        this.off('peer:active', onActive);
        reject(lost);
      });
      this.on('peer:active', onActive);
    });
  }

  disconnect(peerId: string, reason: Reason = 'OPERATOR_DISCONNECT'): boolean {
    const peer = this.#byPeerId(peerId);
    if (peer === undefined) return false;
    peer.close(reason);
    return true;
  }

  /** Ban a peer-id or an address/CIDR; connected matches are disconnected. */
  ban(target: { peerId: string } | { address: string }, options: { durationMs?: number; reason?: Reason; note?: string } = {}): BanRecord {
    const bans = this.#requireStarted().bans;
    const kind = 'peerId' in target ? 'peer' : 'address';
    const input = { ...(options.durationMs === undefined ? {} : { durationMs: options.durationMs }), ...(options.note === undefined ? {} : { note: options.note }) };
    const rec = bans.ban(kind, 'peerId' in target ? target.peerId : target.address, options.reason ?? 'OPERATOR_BAN', this.#clock.wallNow(), input);
    this.emit('banned', rec);
    const now = this.#clock.wallNow();
    for (const p of this.#peers.values()) {
      const pid = p.peerId?.toString();
      if (bans.isBanned({ ...(pid === undefined ? {} : { peerId: pid }), host: p.host }, now) !== undefined) p.close('PEER_BANNED', rec.reason);
    }
    return rec;
  }

  unban(target: { peerId: string } | { address: string }): boolean {
    const bans = this.#requireStarted().bans;
    return 'peerId' in target ? bans.unban('peer', target.peerId) : bans.unban('address', target.address);
  }

  bans(): BanRecord[] {
    return this.#bans?.active(this.#clock.wallNow()) ?? [];
  }

  peers(): PeerInfo[] {
    return [...this.#peers.values()].map((p) => this.#info(p));
  }

  peer(peerId: string): PeerInfo | undefined {
    const p = this.#byPeerId(peerId);
    return p === undefined ? undefined : this.#info(p);
  }

  /** Score a peer for something the layers above judged (invalid block, useful answer...); `times` scales the reason's penalty. */
  penalize(peerId: string, reason: Reason, detail = '', times = 1): void {
    const p = this.#byPeerId(peerId);
    if (p !== undefined) this.#offense(p, reason, detail, times);
  }

  /** The peer's score now (neutral for a peer never scored). */
  score(peerId: string): number {
    return this.#scores.score(peerId, this.#clock.now());
  }

  reward(peerId: string, points: number): void {
    this.#scores.adjust(peerId, points, this.#clock.now());
  }

  // ---- Messages ----

  /** Register an application message type (before `start`). */
  register<T>(type: MessageType<T>): MessageType<T> {
    return this.registry.register(type);
  }

  registerRequest<Req, Res>(rt: RequestType<Req, Res>): RequestType<Req, Res> {
    registerRequest(this.registry, rt);
    return rt;
  }

  /** Receive every message of `type` from active peers. Credit returns when the handler finishes. */
  subscribe<T>(type: MessageType<T>, handler: Subscriber<T>): () => void {
    const list = this.#subscribers.get(type.id) ?? [];
    list.push(handler as Subscriber<unknown>);
    this.#subscribers.set(type.id, list);
    return () => {
      const l = this.#subscribers.get(type.id);
      if (l !== undefined) l.splice(l.indexOf(handler as Subscriber<unknown>), 1);
    };
  }

  /** Send to one active peer; resolves when written (waiting for credit is the back-pressure). */
  send<T>(peerId: string, type: MessageType<T>, value: T): Promise<void> {
    const p = this.#byPeerId(peerId);
    if (p?.state !== 'active' || p.connection === undefined) return Promise.reject(new PqnetError('CLOSED', `no active peer ${peerId}`));
    return p.connection.send(type, value);
  }

  /** Queue for every active peer whose channel has room; returns how many took it. */
  broadcast<T>(type: MessageType<T>, value: T, filter: (peer: PeerInfo) => boolean = () => true): number {
    let n = 0;
    for (const p of this.#peers.values()) {
      if (p.state === 'active' && p.connection !== undefined && filter(this.#info(p)) && p.connection.trySend(type, value)) n++;
    }
    return n;
  }

  request<Req, Res>(peerId: string, rt: RequestType<Req, Res>, body: Req, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Res> {
    const p = this.#byPeerId(peerId);
    if (p?.state !== 'active' || p.connection === undefined) return Promise.reject(new PqnetError('CLOSED', `no active peer ${peerId}`));
    return p.connection.request(rt, body, options);
  }

  /** Serve requests of `rt` from every peer. */
  handle<Req, Res>(rt: RequestType<Req, Res>, handler: (body: Req, peer: PeerInfo) => Res | Promise<Res>): void {
    this.#handlers.set(rt.request.id, { rt: rt as RequestType<unknown, unknown>, handler: handler as (body: unknown, peer: PeerInfo) => unknown });
    for (const p of this.#peers.values()) if (p.state === 'active') this.#installHandler(p, rt.request.id);
  }

  // ---- Health ----

  health(): HealthSnapshot {
    const now = this.#clock.now();
    const byState: Record<PeerState, number> = { connecting: 0, handshaking: 0, active: 0, disconnecting: 0, closed: 0 };
    let queued = 0;
    for (const p of this.#peers.values()) {
      byState[p.state]++;
      if (p.connection !== undefined) queued += p.connection.stats().queuedBytes.reduce((a, b) => a + b, 0);
    }
    const scores = this.#scores.snapshot(now);
    const counts = this.#peerSet.counts();
    return {
      peerId: this.peerId,
      running: this.#running,
      listening: this.listenAddresses,
      peers: byState,
      inbound: counts.inbound,
      outbound: counts.outbound,
      handshakesInProgress: this.#listeners.reduce((n, l) => n + l.stats.handshakesInProgress, 0),
      queuedBytes: queued,
      scores: {
        greylisted: scores.filter((s) => s.status === 'greylisted' || s.status === 'banned').length,
        trusted: scores.filter((s) => s.status === 'trusted').length,
        lowest: scores[0]?.score,
      },
      bans: this.bans().length,
      peerBook: this.#book?.size ?? 0,
      rejects: Object.fromEntries(this.#rejects),
      disconnects: Object.fromEntries(this.#disconnects),
      offenses: Object.fromEntries(this.#offenses),
      handshakes: { completed: this.#handshakes, failed: Object.fromEntries(this.#handshakeFailures) },
    };
  }

  /** Peers whose score is not neutral, lowest first. */
  scores(): { peerId: string; score: number; status: ScoreStatus }[] {
    return this.#scores.snapshot(this.#clock.now());
  }

  /** Messages by type exchanged with a connected peer; undefined if it is not connected. */
  messageCounts(peerId: string): MessageCounts | undefined {
    const p = this.#byPeerId(peerId);
    if (p === undefined) return undefined;
    const stats = p.connection?.mux.stats;
    return { in: this.#named(stats?.inByType), out: this.#named(stats?.outByType) };
  }

  /** Bytes and messages since start, over live and closed connections. */
  traffic(): TrafficTotals {
    const t = { bytesIn: this.#closedTraffic.bytesIn, bytesOut: this.#closedTraffic.bytesOut, in: new Map(this.#closedTraffic.in), out: new Map(this.#closedTraffic.out) };
    for (const p of this.#peers.values()) this.#addTraffic(t, p);
    return { bytesIn: t.bytesIn, bytesOut: t.bytesOut, messages: { in: this.#named(t.in), out: this.#named(t.out) } };
  }

  #addTraffic(t: { bytesIn: number; bytesOut: number; in: Map<number, number>; out: Map<number, number> }, p: Peer): void {
    const s = p.session;
    if (s === undefined) return;
    t.bytesIn += s.handshakeBytes.in + s.stats.bytesIn;
    t.bytesOut += s.handshakeBytes.out + s.stats.bytesOut;
    const m = p.connection?.mux.stats;
    if (m === undefined) return;
    for (const [id, n] of m.inByType) t.in.set(id, (t.in.get(id) ?? 0) + n);
    for (const [id, n] of m.outByType) t.out.set(id, (t.out.get(id) ?? 0) + n);
  }

  /** Type ids to names (an id the registry does not know, which the mux never counts, shows as hex). */
  #named(m: ReadonlyMap<number, number> | undefined): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, n] of m ?? []) out[this.registry.get(id)?.name ?? `0x${id.toString(16)}`] = n;
    return out;
  }

  #handshakeFailed(code: Reason): void {
    this.#count(this.#handshakeFailures, code);
    this.emit('handshake:failed', code);
  }

  // ---- Internals: admission ----

  #requireStarted(): { bans: BanList; book: PeerBook } {
    if (this.#store === undefined || this.#bans === undefined || this.#book === undefined) {
      throw this.#bans === undefined ? new PqnetError('INVALID_ARGUMENT', 'node not started') : new PqnetError('SHUTDOWN', 'node stopped');
    }
    return { bans: this.#bans, book: this.#book };
  }

  async #listen(address: string): Promise<SecureListener> {
    return SecureListener.listen({
      ...this.#secure,
      identify: this.#identify(),
      transport: this.#transport,
      address,
      admit: (host, remoteAddress) => this.#admitInbound(host, remoteAddress),
      admitted: (host, remoteAddress) => this.#admitted(host, remoteAddress),
      onSession: (s) => this.#onInboundSession(s),
      onHandshakeError: (e, remoteAddress) => {
        const p = this.#peers.get(`in:${remoteAddress}`);
        // A peer slot exists once admission let the handshake start; without one this was a refusal.
        if (p !== undefined) {
          this.#handshakeFailed(e.code);
          p.failed(e);
        } else this.#count(this.#rejects, e.code);
      },
    });
  }

  #identify(): Uint8Array {
    return encodeIdentify({
      listenAddresses: this.announceAddresses,
      agent: this.agent,
      protocols: [...(this.#config.protocols ?? [])],
    });
  }

  #admitInbound(host: string, remoteAddress: string): Reason | undefined {
    if (!this.#running) return 'SHUTDOWN';
    const refused = this.#screen(host);
    if (refused !== undefined) return refused;
    // The same address:port still closing from a previous connection.
    if (this.#peers.has(`in:${remoteAddress}`)) return 'PEER_DUPLICATE';
    // Eviction protects low-latency peers: give the set the latest RTTs.
    for (const p of this.#peers.values()) {
      const slot = this.#peerSet.get(p.key);
      if (slot !== undefined) slot.rttMs = p.rttMs;
    }
    const a = this.#peerSet.admitInbound(host, this.#clock.now());
    if (!a.ok) return a.reason;
    // Acted on in #admitted, once the listener's own caps have let the connection through too.
    this.#admission = { remoteAddress, evict: a.evict === undefined ? undefined : (this.#evictionVictim() ?? a.evict) };
    return undefined;
  }

  /** The listener starts the handshake of a connection #admitInbound let through (synchronously after it). */
  #admitted(host: string, remoteAddress: string): void {
    const a = this.#admission;
    this.#admission = undefined;
    if (a?.remoteAddress !== remoteAddress) throw new PqnetError('INTERNAL', `admitted ${remoteAddress} without an admission`);
    if (a.evict !== undefined) this.#peers.get(a.evict)?.close('PEER_EVICTED');
    this.#open(`in:${remoteAddress}`, 'inbound', remoteAddress, host, false);
  }

  /** A greylisted inbound peer goes before the peer set's own choice. */
  #evictionVictim(): string | undefined {
    const now = this.#clock.now();
    for (const p of this.#peers.values()) {
      const pid = p.peerId?.toString();
      if (p.direction === 'inbound' && !p.mustConnect && p.state === 'active' && pid !== undefined && this.#scores.status(pid, now) === 'greylisted') return p.key;
    }
    return undefined;
  }

  /** Filters and address bans; undefined if the host may connect. */
  #screen(host: string): Reason | undefined {
    if (!this.#filter.check(host).ok) return 'PEER_DENIED';
    if (this.#bans?.isBanned({ host }, this.#clock.wallNow()) !== undefined) return 'PEER_BANNED';
    return undefined;
  }

  #onInboundSession(session: SecureSession): void {
    const peer = this.#peers.get(`in:${session.remoteAddress}`);
    if (peer === undefined) {
      session.destroy(new PqnetError('INTERNAL', 'session without a peer slot'));
      return;
    }
    this.#authenticated(peer, session);
  }

  #dial(address: string, mustConnect: boolean, expected?: string): Peer {
    const { book } = this.#requireStarted();
    if (!this.#running) throw new PqnetError('SHUTDOWN');
    const { host } = parseHostPort(address);
    const refused = this.#screen(host);
    if (refused !== undefined) throw new PqnetError(refused, address);
    // Parsed before anything is recorded: a bad peer-id leaves no dial behind.
    const expectedPeerId = expected === undefined ? undefined : PeerId.parse(expected);
    if (expected !== undefined && this.#byPeerId(expected) !== undefined) throw new PqnetError('PEER_DUPLICATE', expected);
    if (this.#outboundTo(address) !== undefined) throw new PqnetError('PEER_DUPLICATE', `already dialling ${address}`);
    const a = this.#peerSet.admitOutbound(host, mustConnect);
    if (!a.ok) throw new PqnetError(a.reason, address);
    const wall = this.#clock.wallNow();
    if (book.get(address) === undefined) book.add(address, 'operator', wall);
    book.recordAttempt(address, wall);
    const peer = this.#open(`out:${++this.#nextKey}`, 'outbound', address, host, mustConnect);
    const opts = {
      onConnected: (stream: { remoteHost: string }) => peer.handshaking(stream.remoteHost),
      ...(expectedPeerId === undefined ? {} : { expectedPeerId }),
    };
    dialSecure(this.#transport, address, { ...this.#secure, identify: this.#identify() }, opts).then(
      (session) => this.#authenticated(peer, session),
      (e: unknown) => {
        const err = toPqnetError(e, 'DIAL_FAILED');
        // A refused or failed TCP connect never reached the handshake.
        if (err.code !== 'DIAL_FAILED' && peer.state === 'handshaking') this.#handshakeFailed(err.code);
        peer.failed(err);
      },
    );
    return peer;
  }

  #open(key: string, direction: 'inbound' | 'outbound', address: string, host: string, mustConnect: boolean): Peer {
    this.#peerSet.add({ key, direction, host, mustConnect, openedAt: this.#clock.now() });
    const peer = new Peer(
      {
        clock: this.#clock,
        limits: this.limits,
        registry: this.registry,
        rateLimits: this.#rateLimits,
        timers: this.#timers,
        local: { chainId: this.#config.chainId, capabilities: this.#config.capabilities ?? 0, height: this.#config.height ?? (() => 0) },
        protocols: this.#config.protocols ?? [],
        dispatch: (p, msg) => this.#dispatch(p, msg),
      },
      key,
      direction,
      address,
      host,
      mustConnect,
    );
    this.#peers.set(key, peer);
    peer.on('state', (s) => this.#onState(peer, s));
    peer.on('offense', (reason, detail) => this.#offense(peer, reason, detail));
    peer.on('rtt', (ms) => this.emit('rtt', ms));
    peer.once('closed', (reason) => this.#onClosed(peer, reason));
    return peer;
  }

  /** Peer-id checks after the handshake, then HELLO. */
  #authenticated(peer: Peer, session: SecureSession): void {
    if (peer.state === 'closed') {
      session.destroy(peer.closeReason ?? new PqnetError('CLOSED'));
      return;
    }
    this.#handshakes++;
    this.emit('handshake', { direction: peer.direction, kem: session.kem, aead: session.aead, sig: session.remote.alg, ms: session.handshakeMs });
    const pid = session.remotePeerId.toString();
    const banned = this.#bans?.isBanned({ peerId: pid, host: session.remoteHost }, this.#clock.wallNow());
    if (peer.direction === 'outbound') this.#learnPeerId(peer.address, pid);
    let claim: Reason | undefined = banned !== undefined ? 'PEER_BANNED' : this.#peerSet.claimPeerId(peer.key, pid, this.peerId);
    if (claim === 'PEER_DUPLICATE') claim = this.#tieBreak(peer, pid);
    // Refused peers get GOODBYE before HELLO: they learn nothing about this node.
    // The peer-id travels in the error: the refused connection never attaches, and connect() needs it.
    let refusal = claim === undefined ? undefined : new PqnetError(claim, pid, { details: { peerId: pid } });
    // A must-connect peer's connection gets must-connect standing, whichever side dialled it.
    const kept = refusal === undefined ? peer : this.#byPeerId(pid);
    if (kept !== undefined && !kept.mustConnect && this.#mustConnectIds().has(pid)) {
      this.#peerSet.markMustConnect(kept.key);
      kept.mustConnect = true;
    }
    if (refusal === undefined) {
      try {
        peer.attach(session);
        return;
      } catch (e) {
        refusal = toPqnetError(e);
        // A malformed identify record: the authenticated peer is to blame.
        this.#score(peer, pid, refusal.code);
      }
    }
    session.close(refusal.code, refusal.message);
    peer.failed(refusal);
  }

  /**
   * A second connection to a peer is refused, except when the two run in
   * opposite directions: then both dialled each other at about the same time,
   * and each side refusing the other's would lose both. Both sides keep the
   * connection that the lower peer-id dialled (closing the other with
   * PEER_DUPLICATE), whichever authenticated first.
   */
  #tieBreak(peer: Peer, pid: string): 'PEER_DUPLICATE' | undefined {
    const holder = this.#byPeerId(pid);
    if (holder === undefined || holder.direction === peer.direction) return 'PEER_DUPLICATE';
    const dialledByLower = this.peerId < pid ? 'outbound' : 'inbound';
    if (peer.direction !== dialledByLower) return 'PEER_DUPLICATE';
    this.#peerSet.claimPeerId(peer.key, pid, this.peerId, { supersede: true });
    holder.close('PEER_DUPLICATE', 'simultaneous connections: keeping the one the lower peer-id dialled');
    return undefined;
  }

  /** The handshake proved who answers at `address`: the book keeps it even if this connection loses a duplicate race. */
  #learnPeerId(address: string, pid: string): void {
    const e = this.#book?.get(address);
    if (e !== undefined && e.peerId !== pid) this.#book?.add(address, e.source, this.#clock.wallNow(), pid);
  }

  /** Peer-ids of must-connect peers: configured, or learned by the peer book from a dial. */
  #mustConnectIds(): Set<string> {
    const ids = new Set<string>();
    for (const m of this.#config.mustConnect ?? []) {
      const pid = this.#mustConnectPeerId(m);
      if (pid !== undefined) ids.add(pid);
    }
    return ids;
  }

  /** The configured peer-id, else the one the peer book learned at that address. */
  #mustConnectPeerId(m: MustConnectPeer): string | undefined {
    return m.peerId ?? this.#book?.get(m.address)?.peerId ?? undefined;
  }

  #installHandler(peer: Peer, requestId: number): void {
    const { rt, handler } = this.#handlers.get(requestId)!;
    peer.connection?.handle(rt, (body) => handler(body, this.#info(peer)));
  }

  #dispatch(peer: Peer, msg: InboundMessage): void | Promise<void> {
    const subs = this.#subscribers.get(msg.type.id);
    if (subs === undefined || subs.length === 0) return;
    const info = this.#info(peer);
    const results = subs.map((s) => s(msg.value, info));
    const pending = results.filter((r): r is Promise<void> => r instanceof Promise);
    const useful = (): void => {
      peer.lastUsefulAt = this.#clock.now();
      const slot = this.#peerSet.get(peer.key);
      if (slot !== undefined) slot.lastUsefulAt = peer.lastUsefulAt;
    };
    if (pending.length === 0) return useful();
    return Promise.all(pending).then(useful);
  }

  // ---- Internals: scores, lifecycle ----

  #offense(peer: Peer, reason: Reason, detail: string, times = 1): void {
    const pid = peer.peerId?.toString();
    this.#count(this.#offenses, reason);
    this.emit('peer:offense', this.#info(peer), reason, detail);
    if (pid !== undefined) this.#score(peer, pid, reason, times);
  }

  /** Apply `reason`'s penalty (`times` over) to `pid`; a score that falls below the ban line bans it. */
  #score(peer: Peer, pid: string, reason: Reason, times = 1): void {
    if (Reasons[reason].penalty === 0 || times <= 0) return;
    const change = this.#scores.penalize(pid, reason, this.#clock.now(), times);
    if (change.crossed && change.status === 'banned') this.#banForScore(peer, pid, reason);
  }

  #banForScore(peer: Peer, pid: string, reason: Reason): void {
    const bans = this.#bans;
    if (bans === undefined) return;
    const wall = this.#clock.wallNow();
    const note = `score fell below ${this.#scores.options.banBelow} after ${reason}`;
    const rec = bans.ban('peer', pid, reason, wall, { note });
    this.emit('banned', rec);
    // The address too, so a reconnect is refused before the handshake. Not for must-connect peers,
    // nor for hosts that are not IP addresses (the memory transport's), nor for loopback unless
    // configured (`banLoopbackAddresses`): the peer-id ban still holds.
    const local = isLoopbackHost(peer.host) && this.#config.banLoopbackAddresses !== true;
    if (!peer.mustConnect && hostCidr(peer.host) !== undefined && !local) this.emit('banned', bans.ban('address', peer.host, reason, wall, { durationMs: rec.expiresAt - wall, note }));
    peer.close('PEER_LOW_SCORE', note);
  }

  #onState(peer: Peer, s: PeerState): void {
    const slot = this.#peerSet.get(peer.key);
    // A peer leaving `active` (disconnecting) is no longer an eviction candidate.
    if (slot !== undefined) slot.active = s === 'active';
    const info = this.#info(peer);
    this.emit('peer:state', info);
    if (s !== 'active') return;
    for (const id of this.#handlers.keys()) this.#installHandler(peer, id);
    if (peer.direction === 'outbound') {
      this.#book?.recordSuccess(peer.address, peer.peerId!.toString(), this.#clock.wallNow());
      this.#redial.delete(peer.address);
    }
    this.emit('peer:active', info);
  }

  #onClosed(peer: Peer, reason: PqnetError): void {
    this.#peers.delete(peer.key);
    this.#peerSet.remove(peer.key);
    this.#count(this.#disconnects, reason.code);
    this.#addTraffic(this.#closedTraffic, peer);
    const pid = peer.peerId?.toString();
    // A fault we detected that ends the connection costs the remote its penalty (violations, timeouts).
    if (pid !== undefined && reason.code !== 'REMOTE_CLOSED') this.#score(peer, pid, reason.code);
    // Losing a duplicate race says nothing about the address.
    if (peer.direction === 'outbound' && peer.activeAt === undefined && !isDuplicate(reason)) this.#book?.recordFailure(peer.address, reason.code, this.#clock.wallNow());
    if (peer.mustConnect && peer.direction === 'outbound') this.#scheduleRedial(peer.address, peer.activeAt === undefined && !isDuplicate(reason));
    this.emit('peer:closed', this.#info(peer), reason);
  }

  /** Redial must-connect peers, fill the outbound quota from the peer book, prune. */
  #maintain(): void {
    if (!this.#running) return;
    try {
      this.#fillOutbound();
      const wall = this.#clock.wallNow();
      if (wall - this.#lastPrune >= PRUNE_EVERY_MS) {
        this.#lastPrune = wall;
        this.#book?.prune(wall);
        this.#bans?.prune(wall);
      }
    } catch (e) {
      console.error('pqnet: maintenance failed', e);
    }
    this.#timer = this.#clock.setTimer(this.#config.maintenanceIntervalMs ?? 1_000, () => this.#maintain());
  }

  #fillOutbound(): void {
    const book = this.#book;
    if (book === undefined) return;
    const now = this.#clock.now();
    const connected = new Set([...this.#peers.values()].filter((p) => p.direction === 'outbound').map((p) => p.address));
    for (const m of this.#config.mustConnect ?? []) {
      if (connected.has(m.address)) continue;
      // Connected already, whichever side dialled.
      const pid = this.#mustConnectPeerId(m);
      if (pid !== undefined && this.#byPeerId(pid) !== undefined) continue;
      const r = this.#redial.get(m.address);
      if (r !== undefined && now < r.nextAt) continue;
      this.#tryDial(m.address, true, m.peerId);
      connected.add(m.address);
    }
    const room = this.#peerSet.options.maxOutbound - this.#peerSet.counts().outbound;
    if (room <= 0) return;
    const wall = this.#clock.wallNow();
    const configured = new Set((this.#config.mustConnect ?? []).map((m) => m.address));
    const greylisted = new Set(this.#scores.snapshot(now).filter((s) => s.status !== 'neutral' && s.status !== 'trusted').map((s) => s.peerId));
    for (const e of book.dialCandidates(wall, room, connected)) {
      // Must-connect addresses are the loop above's, with their own backoff.
      if (e.source === 'inbound' || configured.has(e.address) || (e.peerId !== null && (greylisted.has(e.peerId) || this.#byPeerId(e.peerId) !== undefined || e.peerId === this.peerId))) continue;
      this.#tryDial(e.address, false, e.peerId ?? undefined);
    }
  }

  #tryDial(address: string, mustConnect: boolean, peerId: string | undefined): void {
    try {
      this.#dial(address, mustConnect, peerId);
    } catch (e) {
      const err = toPqnetError(e);
      if (mustConnect) this.#scheduleRedial(address, true);
      if (!isPqnetError(e) || err.code !== 'PEER_DUPLICATE') this.#count(this.#rejects, err.code);
    }
  }

  /** Next must-connect attempt: backoff doubles per failure since the peer was last active. */
  #scheduleRedial(address: string, failed: boolean): void {
    const failures = failed ? (this.#redial.get(address)?.failures ?? 0) + 1 : 0;
    this.#redial.set(address, { failures, nextAt: this.#clock.now() + Math.min(REDIAL_BASE_MS * 2 ** failures, REDIAL_MAX_MS) });
  }

  async #closeListeners(): Promise<void> {
    const ls = this.#listeners;
    this.#listeners = [];
    await Promise.all(ls.map((l) => l.close()));
  }

  #outboundTo(address: string): Peer | undefined {
    for (const p of this.#peers.values()) if (p.address === address && p.direction === 'outbound' && p.state !== 'closed') return p;
    return undefined;
  }

  #byPeerId(peerId: string): Peer | undefined {
    const slot = this.#peerSet.byPeerId(peerId);
    return slot === undefined ? undefined : this.#peers.get(slot.key);
  }

  #count(m: Map<string, number>, code: string): void {
    m.set(code, (m.get(code) ?? 0) + 1);
  }

  #info(p: Peer): PeerInfo {
    const now = this.#clock.now();
    const pid = p.peerId?.toString();
    const stats = p.connection?.stats();
    return {
      key: p.key,
      peerId: pid,
      direction: p.direction,
      state: p.state,
      address: p.address,
      host: p.host,
      mustConnect: p.mustConnect,
      agent: p.identify?.agent,
      listenAddresses: p.identify?.listenAddresses ?? [],
      protocols: p.identify?.protocols ?? [],
      height: p.remoteHello?.height,
      capabilities: p.remoteHello?.capabilities,
      clockSkewMs: p.remoteHello?.clockSkewMs,
      rttMs: p.rttMs,
      score: pid === undefined ? undefined : this.#scores.score(pid, now),
      scoreStatus: pid === undefined ? undefined : this.#scores.status(pid, now),
      connectedForMs: now - p.openedAt,
      bytesIn: p.session === undefined ? 0 : p.session.handshakeBytes.in + p.session.stats.bytesIn,
      bytesOut: p.session === undefined ? 0 : p.session.handshakeBytes.out + p.session.stats.bytesOut,
      queuedBytes: stats?.queuedBytes.reduce((a, b) => a + b, 0) ?? 0,
      requestsInFlight: stats?.requestsInFlight ?? 0,
      kem: p.session?.kem,
      aead: p.session?.aead,
      sig: p.session?.remote.alg,
      handshakeMs: p.session?.handshakeMs,
    };
  }
}

/** Closed because another connection to the same peer won: refused here or by the remote. */
function isDuplicate(reason: PqnetError): boolean {
  return reason.code === 'PEER_DUPLICATE' || (reason.code === 'REMOTE_CLOSED' && reason.details?.['remoteReason'] === 'PEER_DUPLICATE');
}
