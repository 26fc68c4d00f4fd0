/**
 * A simulated IP network on a `VirtualClock` (clock.ts), for running many real
 * pqnet nodes in one process. `host(name, ip)` gives each simulated host a
 * `Transport` with scheme `sim` and addresses `sim://<ip>:<port>`.
 *
 * Link model (see README.md), per unordered pair of hosts, symmetric:
 * - latency: one-way propagation delay, ms;
 * - bandwidth: bytes/s; each direction of a link is a FIFO shared by every
 *   connection between the two hosts: a write starts serialising when the
 *   previous write in that direction has finished (Infinity: no cost);
 * - loss: streams are reliable, so a write hit by loss (probability `loss`,
 *   drawn from the seeded `Random`) arrives late by a retransmission timeout,
 *   max(200, 2 * latency) ms, and every later write on that stream direction
 *   waits behind it (head-of-line blocking).
 * A write of n bytes at time t therefore arrives at
 *   max(previous arrival on the stream, max(t, link busy) + n / bandwidth + latency [+ rto]).
 *
 * Connection setup: the SYN takes one latency (the listener's `onStream` fires
 * then, and the accepting end may write at once); `dial` resolves one latency
 * later (the SYN-ACK). A dial to an address nobody listens on, across a
 * partition, or from a host disconnected meanwhile rejects with DIAL_FAILED
 * after the same round trip; `timeoutMs` and `signal` are honoured in virtual time.
 *
 * Partitions: `partition(groups)` cuts every link between different groups
 * (hosts listed in no group form one group together). Items (bytes, FIN,
 * RST) that would arrive across a cut are held, in order, not lost; `heal()`
 * releases them, arriving one latency after the heal. Dials across a cut fail.
 *
 * Streams (stream.ts) behave like MemoryStream for their user and close like
 * TCP. Closing a listener resets the connections it accepted (as TCP and WS
 * do, test/transport/_conformance.ts) unless `listenerCloseResets` is false.
 *
 * Determinism: every random draw comes from the `Random` passed in (only for
 * lossy links), every time from the clock; host, link and stream iteration is
 * in insertion order. Same seed and same calls give the same delivery times.
 */
import { isIP } from 'node:net';
import type { TimerHandle } from '../src/core/clock.ts';
import { PqnetError } from '../src/core/errors.ts';
import type { Random } from '../src/core/random.ts';
import { formatHostPort, parseHostPort, type HostPort } from '../src/transport/address.ts';
import type { ByteStream, DialOptions, Transport, TransportListener } from '../src/transport/types.ts';
import type { VirtualClock } from './clock.ts';
import { DATA, FIN, Pipe, RST, SimStream, type StreamContext } from './stream.ts';
import { UniformRandom } from './uniform.ts';

export interface LinkSpec {
  /** One-way delay, ms. */
  readonly latencyMs: number;
  /** Bytes per second in each direction; undefined or Infinity: unlimited. */
  readonly bandwidthBytesPerSec?: number;
  /** Probability (0..1) that a write needs a retransmission. */
  readonly loss?: number;
}

export interface SimNetworkOptions {
  readonly clock: VirtualClock;
  readonly random: Random;
  /** Link of every pair not given by `setLink` (default: 10 ms, unlimited, lossless). */
  readonly defaultLink?: LinkSpec;
  /** Latency of a pair, asked once when the pair first talks; bandwidth and loss from `defaultLink`. */
  readonly latencyOf?: (ipA: string, ipB: string) => number;
  /** Per-stream write high-water mark (default 1 MiB). */
  readonly highWaterMark?: number;
  /** How long `end()` waits for the remote's FIN before resetting (default 2000 ms, as TcpStream). */
  readonly endLingerMs?: number;
  /** Closing a listener resets the connections it accepted (default true, as TCP). */
  readonly listenerCloseResets?: boolean;
}

export interface SimNetworkStats {
  /** Data bytes written on every stream since the last `resetStats`. */
  readonly bytesWritten: number;
  readonly writes: number;
  readonly bytesWrittenByHost: ReadonlyMap<string, number>;
  /** Writes delayed by a retransmission. */
  readonly retransmits: number;
  readonly connectionsOpened: number;
  readonly dialsFailed: number;
  /** Stream ends not closed yet (a gauge: `resetStats` leaves it). */
  readonly streamsOpen: number;
}

export const DEFAULT_SIM_HIGH_WATER = 1024 * 1024;

class Link {
  latencyMs = 0;
  bytesPerMs = Infinity;
  loss = 0;
  rtoMs = 200;
  /** When each direction's serialisation queue is free: [lower ip -> higher ip, reverse]. */
  readonly dirs: [LinkDir, LinkDir] = [
    { link: this, busyUntil: 0 },
    { link: this, busyUntil: 0 },
  ];

  constructor(spec: LinkSpec) {
    this.set(spec);
  }

  set(spec: LinkSpec): void {
    const bw = spec.bandwidthBytesPerSec ?? Infinity;
    const loss = spec.loss ?? 0;
    if (!(spec.latencyMs >= 0 && Number.isFinite(spec.latencyMs))) throw new PqnetError('INVALID_ARGUMENT', `latency ${spec.latencyMs}`);
    if (!(bw > 0)) throw new PqnetError('INVALID_ARGUMENT', `bandwidth ${bw}`);
    if (!(loss >= 0 && loss < 1)) throw new PqnetError('INVALID_ARGUMENT', `loss ${loss}`);
    this.latencyMs = spec.latencyMs;
    this.bytesPerMs = bw / 1000;
    this.loss = loss;
    this.rtoMs = Math.max(200, 2 * spec.latencyMs);
  }

  spec(): LinkSpec {
    return { latencyMs: this.latencyMs, bandwidthBytesPerSec: this.bytesPerMs * 1000, loss: this.loss };
  }
}

interface LinkDir {
  readonly link: Link;
  busyUntil: number;
}

class Host {
  readonly name: string;
  readonly ip: string;
  readonly transport: SimTransport;
  readonly listeners = new Map<number, Listener>();
  readonly streams = new Set<SimStream>();
  /** Ephemeral ports of open dialled streams. */
  readonly ports = new Set<number>();
  nextPort = 49_152;
  bytesWritten = 0;
  /** Bumped by `disconnectHost`: dials begun before fail. */
  epoch = 0;
  /** Partition group; -1: listed in no group. */
  group = -1;

  constructor(name: string, ip: string, transport: SimTransport) {
    this.name = name;
    this.ip = ip;
    this.transport = transport;
  }
}

class Listener {
  readonly host: Host;
  readonly port: number;
  readonly address: string;
  readonly onStream: (s: ByteStream) => void;
  readonly streams = new Set<SimStream>();
  open = true;

  constructor(host: Host, port: number, onStream: (s: ByteStream) => void) {
    this.host = host;
    this.port = port;
    this.address = formatHostPort('sim', host.ip, port);
    this.onStream = onStream;
  }
}

/** Bookkeeping a stream carries for the network. */
interface Owner {
  readonly host: Host;
  readonly listener: Listener | undefined;
  /** The dialler's ephemeral port, freed at close. */
  readonly port: number | undefined;
}

/** The transport of one simulated host. */
export class SimTransport implements Transport {
  readonly scheme = 'sim';
  readonly name: string;
  readonly ip: string;
  readonly #dial: (address: string, options: DialOptions) => Promise<ByteStream>;
  readonly #listen: (address: string, onStream: (s: ByteStream) => void) => Promise<TransportListener>;

  constructor(
    name: string,
    ip: string,
    dial: (address: string, options: DialOptions) => Promise<ByteStream>,
    listen: (address: string, onStream: (s: ByteStream) => void) => Promise<TransportListener>,
  ) {
    this.name = name;
    this.ip = ip;
    this.#dial = dial;
    this.#listen = listen;
  }

  dial(address: string, options: DialOptions = {}): Promise<ByteStream> {
    return this.#dial(address, options);
  }

  listen(address: string, onStream: (stream: ByteStream) => void): Promise<TransportListener> {
    return this.#listen(address, onStream);
  }
}

export class SimNetwork {
  readonly clock: VirtualClock;
  readonly #uniform: UniformRandom;
  readonly #defaultLink: LinkSpec;
  readonly #latencyOf: ((a: string, b: string) => number) | undefined;
  readonly #listenerCloseResets: boolean;
  readonly #hosts = new Map<string, Host>();
  readonly #links = new Map<string, Link>();
  readonly #ctx: StreamContext;
  #partitioned = false;
  #groups = new Map<string, number>();
  readonly #held = new Set<Pipe>();
  #stats = { bytesWritten: 0, writes: 0, retransmits: 0, connectionsOpened: 0, dialsFailed: 0 };
  #streamsOpen = 0;

  constructor(options: SimNetworkOptions) {
    this.clock = options.clock;
    this.#uniform = new UniformRandom(options.random);
    this.#defaultLink = options.defaultLink ?? { latencyMs: 10 };
    new Link(this.#defaultLink); // validates
    this.#latencyOf = options.latencyOf;
    this.#listenerCloseResets = options.listenerCloseResets ?? true;
    const clock = this.clock;
    this.#ctx = {
      highWaterMark: options.highWaterMark ?? DEFAULT_SIM_HIGH_WATER,
      endLingerMs: options.endLingerMs ?? 2_000,
      now: () => clock.now(),
      setTimer: (ms, fn) => clock.setTimer(ms, fn),
      schedule: (at, fn) => clock.schedule(at, fn),
      clearTimer: (h) => clock.clearTimer(h),
      transmit: (pipe, bytes) => this.#transmit(pipe, bytes),
      control: (pipe, kind) => this.#control(pipe, kind),
      holds: (pipe) => this.#holds(pipe),
      closed: (s) => this.#closed(s),
    };
  }

  /** The transport of host `ip` (created on first call; `name` is a label for reports). */
  host(name: string, ip: string): SimTransport {
    const existing = this.#hosts.get(ip);
    if (existing !== undefined) {
      if (existing.name !== name) throw new PqnetError('INVALID_ARGUMENT', `${ip} is host ${existing.name}, not ${name}`);
      return existing.transport;
    }
    if (isIP(ip) === 0) throw new PqnetError('ADDRESS_INVALID', `${JSON.stringify(ip)}: not an IP address`);
    let host!: Host;
    const transport = new SimTransport(
      name,
      ip,
      (address, options) => this.#dial(host, address, options),
      (address, onStream) => this.#listen(host, address, onStream),
    );
    host = new Host(name, ip, transport);
    host.group = this.#groups.get(ip) ?? -1;
    this.#hosts.set(ip, host);
    return transport;
  }

  // ---- Links ----

  /** The link between two hosts (symmetric); fixed by `setLink`, else `latencyOf` / `defaultLink`. */
  linkFor(ipA: string, ipB: string): LinkSpec {
    return this.#dir(ipA, ipB).link.spec();
  }

  setLink(ipA: string, ipB: string, spec: LinkSpec): void {
    const key = ipA < ipB ? `${ipA}|${ipB}` : `${ipB}|${ipA}`;
    const link = this.#links.get(key);
    if (link === undefined) this.#links.set(key, new Link(spec));
    else link.set(spec);
  }

  /** Direction a -> b of the pair's link, created on first use. */
  #dir(a: string, b: string): LinkDir {
    const lowFirst = a <= b;
    const key = lowFirst ? `${a}|${b}` : `${b}|${a}`;
    let link = this.#links.get(key);
    if (link === undefined) {
      const [lo, hi] = lowFirst ? [a, b] : [b, a];
      link = new Link(this.#latencyOf === undefined ? this.#defaultLink : { ...this.#defaultLink, latencyMs: this.#latencyOf(lo, hi) });
      this.#links.set(key, link);
    }
    return link.dirs[lowFirst ? 0 : 1];
  }

  // ---- Partitions and churn ----

  get partitioned(): boolean {
    return this.#partitioned;
  }

  /** Cut every link between different groups of ips (unlisted hosts: one more group). */
  partition(groups: readonly (readonly string[])[]): void {
    const map = new Map<string, number>();
    groups.forEach((g, i) => {
      for (const ip of g) {
        if (map.has(ip)) throw new PqnetError('INVALID_ARGUMENT', `${ip} is in two partition groups`);
        map.set(ip, i);
      }
    });
    this.#groups = map;
    for (const h of this.#hosts.values()) h.group = map.get(h.ip) ?? -1;
    this.#partitioned = true;
    // Pipes held by the previous cut that this one leaves joined.
    for (const p of [...this.#held]) if (!this.#cut(this.#ownerOf(p.from).host, this.#ownerOf(p.to).host)) this.#release(p);
  }

  /** Join every group again; held bytes arrive one latency from now. */
  heal(): void {
    this.#partitioned = false;
    this.#groups = new Map();
    for (const h of this.#hosts.values()) h.group = -1;
    for (const p of [...this.#held]) this.#release(p);
  }

  /** Crash-like: reset every open stream of the host and close its listeners; dials it has under way fail. */
  disconnectHost(ip: string): void {
    const h = this.#hosts.get(ip);
    if (h === undefined) return;
    h.epoch++;
    const err = new PqnetError('IO_ERROR', `host ${h.name} disconnected`);
    for (const s of [...h.streams]) s.destroy(err);
    for (const l of [...h.listeners.values()]) this.#closeListener(l);
  }

  #cut(a: Host, b: Host): boolean {
    return this.#partitioned && a.group !== b.group;
  }

  #holds(pipe: Pipe): boolean {
    if (!this.#partitioned || !this.#cut(this.#ownerOf(pipe.from).host, this.#ownerOf(pipe.to).host)) return false;
    pipe.held = true;
    this.#held.add(pipe);
    return true;
  }

  #release(pipe: Pipe): void {
    this.#held.delete(pipe);
    pipe.release(this.clock.now() + (pipe.link as LinkDir).link.latencyMs);
  }

  // ---- Statistics ----

  stats(): SimNetworkStats {
    const byHost = new Map<string, number>();
    for (const h of this.#hosts.values()) byHost.set(h.ip, h.bytesWritten);
    return { ...this.#stats, bytesWrittenByHost: byHost, streamsOpen: this.#streamsOpen };
  }

  get streamsOpen(): number {
    return this.#streamsOpen;
  }

  resetStats(): void {
    this.#stats = { bytesWritten: 0, writes: 0, retransmits: 0, connectionsOpened: 0, dialsFailed: 0 };
    for (const h of this.#hosts.values()) h.bytesWritten = 0;
  }

  // ---- Streams ----

  #ownerOf(s: SimStream): Owner {
    return s.owner as Owner;
  }

  #transmit(pipe: Pipe, bytes: Uint8Array): void {
    const n = bytes.length;
    this.#stats.bytesWritten += n;
    this.#stats.writes++;
    this.#ownerOf(pipe.from).host.bytesWritten += n;
    if (pipe.to.gone) return;
    const dir = pipe.link as LinkDir;
    const link = dir.link;
    const now = this.clock.now();
    const sent = (dir.busyUntil > now ? dir.busyUntil : now) + n / link.bytesPerMs;
    dir.busyUntil = sent;
    let at = sent + link.latencyMs;
    if (link.loss > 0 && this.#uniform.next() < link.loss) {
      at += link.rtoMs;
      this.#stats.retransmits++;
    }
    pipe.push(DATA, bytes, at > pipe.lastAt ? at : pipe.lastAt);
  }

  #control(pipe: Pipe, kind: typeof FIN | typeof RST): void {
    const dir = pipe.link as LinkDir;
    const now = this.clock.now();
    if (kind === RST) {
      pipe.drop();
      pipe.push(RST, undefined, now + dir.link.latencyMs);
      return;
    }
    const at = (dir.busyUntil > now ? dir.busyUntil : now) + dir.link.latencyMs;
    pipe.push(FIN, undefined, at > pipe.lastAt ? at : pipe.lastAt);
  }

  #closed(s: SimStream): void {
    const o = this.#ownerOf(s);
    o.host.streams.delete(s);
    if (o.port !== undefined) o.host.ports.delete(o.port);
    o.listener?.streams.delete(s);
    this.#streamsOpen--;
  }

  // ---- Transport ----

  #listen(host: Host, address: string, onStream: (s: ByteStream) => void): Promise<TransportListener> {
    let hp: HostPort;
    try {
      hp = parseHostPort(address, 'sim');
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (hp.host !== host.ip && hp.host !== '0.0.0.0') return Promise.reject(new PqnetError('LISTEN_FAILED', `${address}: not an address of host ${host.name} (${host.ip})`));
    let port = hp.port;
    if (port === 0) {
      try {
        port = this.#freePort(host);
      } catch (e) {
        return Promise.reject(e as Error);
      }
    } else if (host.listeners.has(port) || host.ports.has(port)) return Promise.reject(new PqnetError('LISTEN_FAILED', `${address} is in use`));
    const l = new Listener(host, port, onStream);
    host.listeners.set(port, l);
    return Promise.resolve({
      address: l.address,
      close: () => {
        this.#closeListener(l);
        return Promise.resolve();
      },
    });
  }

  #closeListener(l: Listener): void {
    if (!l.open) return;
    l.open = false;
    if (l.host.listeners.get(l.port) === l) l.host.listeners.delete(l.port);
    if (this.#listenerCloseResets) for (const s of [...l.streams]) s.destroy();
  }

  #freePort(host: Host): number {
    for (let i = 0; i < 16_384; i++) {
      const p = host.nextPort;
      host.nextPort = p >= 65_535 ? 49_152 : p + 1;
      if (!host.ports.has(p) && !host.listeners.has(p)) return p;
    }
    throw new PqnetError('DIAL_FAILED', `host ${host.name}: no free port`);
  }

  #dial(from: Host, address: string, options: DialOptions): Promise<ByteStream> {
    let hp: HostPort;
    try {
      hp = parseHostPort(address, 'sim');
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (options.signal?.aborted === true) return Promise.reject(new PqnetError('CLOSED', `dial to ${address} aborted`));
    const clock = this.clock;
    const latency = this.#dir(from.ip, hp.host).link.latencyMs;
    const epoch = from.epoch;
    return new Promise<ByteStream>((resolve, reject) => {
      let done = false;
      let client: SimStream | undefined;
      const timers: TimerHandle[] = [];
      const settle = (err: PqnetError | undefined): void => {
        if (done) return;
        done = true;
        for (const t of timers) clock.clearTimer(t);
        options.signal?.removeEventListener('abort', onAbort);
        if (err === undefined && client !== undefined) return resolve(client);
        this.#stats.dialsFailed++;
        client?.destroy();
        reject(err ?? new PqnetError('DIAL_FAILED', address));
      };
      const onAbort = (): void => settle(new PqnetError('CLOSED', `dial to ${address} aborted`));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const timeout = options.timeoutMs;
      if (timeout !== undefined) timers.push(clock.setTimer(timeout, () => settle(new PqnetError('DIAL_FAILED', `${address}: no answer within ${timeout} ms`))));
      // The SYN arrives one latency from now; the answer takes one more.
      timers.push(
        clock.setTimer(latency, () => {
          const to = this.#hosts.get(hp.host);
          const l = to?.listeners.get(hp.port);
          let why: string | undefined;
          if (from.epoch !== epoch) why = 'host disconnected';
          else if (to === undefined || l === undefined) why = 'connection refused';
          else if (this.#cut(from, to)) why = 'network partitioned';
          else client = this.#connect(from, to, l);
          const failure = why === undefined ? undefined : new PqnetError('DIAL_FAILED', `${address}: ${why}`);
          timers.push(clock.setTimer(latency, () => settle(failure ?? (from.epoch === epoch ? undefined : new PqnetError('DIAL_FAILED', `${address}: host disconnected`)))));
        }),
      );
    });
  }

  /** A connected pair; the listener hears of its end now. */
  #connect(from: Host, to: Host, l: Listener): SimStream {
    const port = this.#freePort(from);
    from.ports.add(port);
    const local = formatHostPort('sim', from.ip, port);
    const client = new SimStream(this.#ctx, { host: from, listener: undefined, port } satisfies Owner, local, l.address, to.ip);
    const server = new SimStream(this.#ctx, { host: to, listener: l, port: undefined } satisfies Owner, l.address, local, from.ip);
    client.peer = server;
    server.peer = client;
    client.out = new Pipe(this.#ctx, client, server, this.#dir(from.ip, to.ip));
    server.out = new Pipe(this.#ctx, server, client, this.#dir(to.ip, from.ip));
    from.streams.add(client);
    to.streams.add(server);
    l.streams.add(server);
    this.#streamsOpen += 2;
    this.#stats.connectionsOpened++;
    l.onStream(server);
    return client;
  }
}
