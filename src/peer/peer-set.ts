/**
 * The peer set (DESIGN.md, Peers): bookkeeping of a node's connections and its
 * admission and eviction policy. Pure state, sans-I/O: it never closes
 * anything; it answers whether a connection may start and which one to evict,
 * and the caller acts (disconnects with `PEER_EVICTED`, `PEER_DUPLICATE`, ...).
 *
 * Caps apply to the connections that are not must-connect:
 *  - outbound dials: at most `maxOutbound`;
 *  - inbound connections: at most `maxPeers − maxOutbound` (the inbound room);
 *    when it is full, an active inbound peer may be evicted for the newcomer;
 *  - all connections, handshaking ones included: at most `maxPeers`;
 *  - per exact host address (`maxPeersPerIp`) and per subnet, /24 for IPv4 and
 *    /64 for IPv6 (`maxPeersPerSubnet`), whatever the direction.
 * Must-connect peers come on top: they are never refused, never evicted, and
 * do not use up any of these caps.
 *
 * Admission does not reserve anything: call `add` right after a successful
 * `admitInbound`/`admitOutbound`, before yielding to the event loop.
 */
import { PqnetError } from '../core/errors.ts';
import { formatCidr, hostCidr, networkOf } from '../core/ip.ts';

export type Direction = 'inbound' | 'outbound';

export interface EvictionProtection {
  /** Peers protected one per subnet, from the subnets with the fewest candidates. */
  readonly subnets: number;
  /** Peers with the lowest measured RTT. */
  readonly lowLatency: number;
  /** Peers that most recently delivered something the application accepted. */
  readonly useful: number;
  /** Longest-connected peers. */
  readonly longLived: number;
}

export interface PeerSetOptions {
  /** All connections that are not must-connect, including ones still handshaking. */
  readonly maxPeers: number;
  /** Outbound quota; inbound connections get the rest of `maxPeers`. */
  readonly maxOutbound: number;
  /** Connections from one host address (IPv4-mapped IPv6 counts as IPv4). */
  readonly maxPeersPerIp: number;
  /** Connections from one /24 (IPv4) or /64 (IPv6); a non-IP host is its own subnet. */
  readonly maxPeersPerSubnet: number;
  /** How many inbound peers each eviction rule protects. */
  readonly protect: EvictionProtection;
}

/** `protect` may be given in part; the rest comes from the defaults. */
export type PeerSetInit = Partial<Omit<PeerSetOptions, 'protect'>> & { readonly protect?: Partial<EvictionProtection> };

export const DEFAULT_PEER_SET_OPTIONS: PeerSetOptions = Object.freeze({
  maxPeers: 50,
  maxOutbound: 8,
  maxPeersPerIp: 4,
  maxPeersPerSubnet: 8,
  protect: Object.freeze({ subnets: 4, lowLatency: 8, useful: 4, longLived: 8 }),
});

/** Subnet widths the per-subnet cap and the eviction group by. */
export const SUBNET_PREFIX = Object.freeze({ 4: 24, 6: 64 } as const);

/** One connection. */
export interface Slot {
  /** Unique connection key chosen by the caller (e.g. remote address + counter). */
  readonly key: string;
  readonly direction: Direction;
  /** Remote IP, or the host name on the memory transport. */
  readonly host: string;
  readonly mustConnect: boolean;
  readonly openedAt: number;
  /** Set once authenticated, through `claimPeerId` only (the set indexes it). */
  readonly peerId: string | undefined;
  /** HELLO done: only active inbound peers can be evicted. */
  active: boolean;
  /** Latest smoothed RTT; `undefined` until measured. */
  rttMs: number | undefined;
  /** Last time the peer delivered something the application accepted (block, tx, ...). */
  lastUsefulAt: number | undefined;
}

type Mutable = 'peerId' | 'active' | 'rttMs' | 'lastUsefulAt';
export type SlotInit = Omit<Slot, Mutable> & Partial<Pick<Slot, Mutable>>;

export type Admission = { ok: true } | { ok: false; reason: 'PEER_LIMIT' | 'PEER_SUBNET_LIMIT' | 'TOO_MANY_PER_IP' };

export interface PeerCounts {
  readonly total: number;
  readonly inbound: number;
  readonly outbound: number;
  readonly mustConnect: number;
  readonly active: number;
}

const NON_IP = 'name:';

/**
 * The key the per-IP cap counts `host` under: the canonical address
 * (`::ffff:192.0.2.1` → `192.0.2.1`, zone dropped), or `name:<host>` for a
 * non-IP host (which can then never collide with an address).
 */
export function addressKey(host: string): string {
  return hostKeys(host).ip;
}

/** The key the per-subnet cap counts `host` under: `192.0.2.0/24`, `2001:db8::/64`, or `name:<host>`. */
export function subnetKey(host: string): string {
  return hostKeys(host).subnet;
}

function hostKeys(host: string): { readonly ip: string; readonly subnet: string } {
  const ip = hostCidr(host);
  if (ip === undefined) return { ip: NON_IP + host, subnet: NON_IP + host };
  return { ip: formatCidr(ip), subnet: formatCidr(networkOf(ip, SUBNET_PREFIX[ip.version])) };
}

interface Entry {
  readonly slot: Slot;
  readonly ip: string;
  readonly subnet: string;
}

/** Oldest first: `openedAt`, then key. Its reverse is "youngest first". */
const byAge = (a: Entry, b: Entry): number => a.slot.openedAt - b.slot.openedAt || cmp(a.slot.key, b.slot.key);

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class PeerSet {
  readonly options: PeerSetOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #byPeerId = new Map<string, Slot>();
  /** Capped (non-must-connect) connections per address key and per subnet key. */
  readonly #perIp = new Map<string, number>();
  readonly #perSubnet = new Map<string, number>();
  /** Capped (non-must-connect) connections by direction. */
  #inbound = 0;
  #outbound = 0;
  /** Must-connect connections by direction. */
  #mustIn = 0;
  #mustOut = 0;

  constructor(options: PeerSetInit = {}) {
    this.options = peerSetOptions(options);
  }

  /**
   * An inbound connection is arriving, before its handshake. Checks the
   * per-IP and per-subnet caps, then the inbound room; when that is full it
   * proposes the victim of `selectEviction(now)` as `evict` (the caller
   * disconnects it with `PEER_EVICTED`, removes it, and adds the newcomer).
   */
  admitInbound(host: string, now: number): Admission & { evict?: string } {
    const caps = this.#checkHostCaps(host);
    if (!caps.ok) return caps;
    const { maxPeers, maxOutbound } = this.options;
    if (this.#inbound < maxPeers - maxOutbound && this.#inbound + this.#outbound < maxPeers) return { ok: true };
    const evict = this.selectEviction(now);
    return evict === undefined ? { ok: false, reason: 'PEER_LIMIT' } : { ok: true, evict };
  }

  /** An outbound dial is about to start. A must-connect dial is always admitted. */
  admitOutbound(host: string, mustConnect: boolean): Admission {
    if (mustConnect) return { ok: true };
    if (this.#outbound >= this.options.maxOutbound) return { ok: false, reason: 'PEER_LIMIT' };
    if (this.#inbound + this.#outbound >= this.options.maxPeers) return { ok: false, reason: 'PEER_LIMIT' };
    return this.#checkHostCaps(host);
  }

  /**
   * Record a connection (after a successful admission, or for a must-connect
   * peer). Throws `INVALID_ARGUMENT` on a duplicate key, a bad direction or
   * `openedAt`, or a peer-id another connection already holds.
   */
  add(init: SlotInit): Slot {
    if (this.#entries.has(init.key)) throw new PqnetError('INVALID_ARGUMENT', `duplicate connection key ${JSON.stringify(init.key)}`);
    if (init.direction !== 'inbound' && init.direction !== 'outbound') {
      throw new PqnetError('INVALID_ARGUMENT', `direction ${JSON.stringify(init.direction)}`);
    }
    if (!Number.isFinite(init.openedAt)) throw new PqnetError('INVALID_ARGUMENT', 'openedAt must be a finite number');
    if (init.peerId !== undefined && this.#byPeerId.has(init.peerId)) {
      throw new PqnetError('INVALID_ARGUMENT', `peer ${init.peerId} already has a connection`);
    }
    const slot: Slot = {
      key: init.key,
      direction: init.direction,
      host: init.host,
      mustConnect: init.mustConnect,
      openedAt: init.openedAt,
      peerId: init.peerId,
      active: init.active ?? false,
      rttMs: init.rttMs,
      lastUsefulAt: init.lastUsefulAt,
    };
    const entry: Entry = { slot, ...hostKeys(slot.host) };
    this.#entries.set(slot.key, entry);
    if (slot.peerId !== undefined) this.#byPeerId.set(slot.peerId, slot);
    if (slot.mustConnect) {
      if (slot.direction === 'inbound') this.#mustIn++;
      else this.#mustOut++;
    } else {
      if (slot.direction === 'inbound') this.#inbound++;
      else this.#outbound++;
      bump(this.#perIp, entry.ip, 1);
      bump(this.#perSubnet, entry.subnet, 1);
    }
    return slot;
  }

  /** Forget a connection; returns it, or `undefined` if the key is unknown. */
  remove(key: string): Slot | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const { slot } = entry;
    this.#entries.delete(key);
    if (slot.peerId !== undefined && this.#byPeerId.get(slot.peerId) === slot) this.#byPeerId.delete(slot.peerId);
    if (slot.mustConnect) {
      if (slot.direction === 'inbound') this.#mustIn--;
      else this.#mustOut--;
    } else {
      if (slot.direction === 'inbound') this.#inbound--;
      else this.#outbound--;
      bump(this.#perIp, entry.ip, -1);
      bump(this.#perSubnet, entry.subnet, -1);
    }
    return slot;
  }

  get(key: string): Slot | undefined {
    return this.#entries.get(key)?.slot;
  }

  /**
   * The connection `key` authenticated as `peerId`. Returns `PEER_SELF` for
   * our own id and `PEER_DUPLICATE` if another connection already holds it
   * (the existing one wins: the caller closes this one); in both cases the
   * slot is left unchanged. Otherwise records the id and returns `undefined`.
   * With `supersede`, a duplicate takes the id over instead (the caller closes
   * the previous holder, which keeps its `peerId` but is no longer indexed).
   * Throws `INVALID_ARGUMENT` for an unknown key or a slot that already
   * holds a different id.
   */
  claimPeerId(key: string, peerId: string, selfPeerId: string, options: { supersede?: boolean } = {}): 'PEER_SELF' | 'PEER_DUPLICATE' | undefined {
    const slot = this.get(key);
    if (slot === undefined) throw new PqnetError('INVALID_ARGUMENT', `unknown connection key ${JSON.stringify(key)}`);
    if (slot.peerId !== undefined && slot.peerId !== peerId) {
      throw new PqnetError('INVALID_ARGUMENT', `connection ${JSON.stringify(key)} is already peer ${slot.peerId}`);
    }
    if (peerId === selfPeerId) return 'PEER_SELF';
    const holder = this.#byPeerId.get(peerId);
    if (holder !== undefined && holder !== slot && options.supersede !== true) return 'PEER_DUPLICATE';
    (slot as { peerId: string | undefined }).peerId = peerId;
    this.#byPeerId.set(peerId, slot);
    return undefined;
  }

  /**
   * Count connection `key` as a must-connect peer from now on (an inbound
   * connection that authenticated as a configured must-connect peer-id): it
   * leaves the quotas and per-IP/per-subnet counts, and cannot be evicted.
   */
  markMustConnect(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.slot.mustConnect) return;
    const { slot } = entry;
    if (slot.direction === 'inbound') {
      this.#inbound--;
      this.#mustIn++;
    } else {
      this.#outbound--;
      this.#mustOut++;
    }
    bump(this.#perIp, entry.ip, -1);
    bump(this.#perSubnet, entry.subnet, -1);
    (slot as { mustConnect: boolean }).mustConnect = true;
  }

  byPeerId(peerId: string): Slot | undefined {
    return this.#byPeerId.get(peerId);
  }

  counts(): PeerCounts {
    let active = 0;
    for (const { slot } of this.#entries.values()) if (slot.active) active++;
    return {
      total: this.#entries.size,
      inbound: this.#inbound + this.#mustIn,
      outbound: this.#outbound + this.#mustOut,
      mustConnect: this.#mustIn + this.#mustOut,
      active,
    };
  }

  /** Every connection, in the order they were added. */
  slots(): Slot[] {
    return [...this.#entries.values()].map((e) => e.slot);
  }

  /**
   * The inbound peer to evict for a newcomer, or `undefined` if every
   * candidate is protected. Candidates are active, inbound, not must-connect.
   * Protected, in this order (each rule applied to what the previous left):
   *  1. `protect.subnets` peers, one per subnet, from the subnets with the
   *     fewest candidates (tie: the one whose representative is older), each
   *     subnet represented by its longest-connected candidate;
   *  2. `protect.lowLatency` peers with the lowest measured RTT (unmeasured ones do not qualify);
   *  3. `protect.useful` peers most recently useful (never-useful ones do not qualify);
   *  4. `protect.longLived` longest-connected peers.
   * Ties break by key. The victim is the youngest candidate of the subnet
   * with the most remaining candidates (tie: the subnet whose youngest
   * candidate is youngest).
   */
  selectEviction(now: number): string | undefined {
    const { protect } = this.options;
    let left: Entry[] = [];
    for (const e of this.#entries.values()) {
      if (e.slot.active && e.slot.direction === 'inbound' && !e.slot.mustConnect) left.push(e);
    }

    // 1. Diversity: one representative per subnet, rarest subnets first.
    if (protect.subnets > 0 && left.length > 0) {
      const groups = groupBySubnet(left);
      const reps = [...groups.values()].map((g) => ({ size: g.length, rep: g.reduce((a, b) => (byAge(a, b) <= 0 ? a : b)) }));
      reps.sort((a, b) => a.size - b.size || byAge(a.rep, b.rep));
      left = without(left, reps.slice(0, protect.subnets).map((r) => r.rep));
    }
    // 2. Lowest latency, among peers with a measured RTT.
    left = protectBest(left, protect.lowLatency, (c) => Number.isFinite(c.slot.rttMs), (a, b) => a.slot.rttMs! - b.slot.rttMs!);
    // 3. Most recently useful, among peers that ever were.
    left = protectBest(left, protect.useful, (c) => Number.isFinite(c.slot.lastUsefulAt), (a, b) => b.slot.lastUsefulAt! - a.slot.lastUsefulAt!);
    // 4. Longest connected: the longest uptime at `now`.
    left = protectBest(left, protect.longLived, () => true, (a, b) => now - b.slot.openedAt - (now - a.slot.openedAt));
    if (left.length === 0) return undefined;

    // The most crowded subnet loses its youngest candidate.
    let victim: Entry | undefined;
    let victimSize = 0;
    for (const group of groupBySubnet(left).values()) {
      const youngest = group.reduce((a, b) => (byAge(a, b) >= 0 ? a : b));
      if (victim === undefined || group.length > victimSize || (group.length === victimSize && byAge(youngest, victim) > 0)) {
        victim = youngest;
        victimSize = group.length;
      }
    }
    return victim!.slot.key;
  }

  #checkHostCaps(host: string): Admission {
    const keys = hostKeys(host);
    if ((this.#perIp.get(keys.ip) ?? 0) >= this.options.maxPeersPerIp) return { ok: false, reason: 'TOO_MANY_PER_IP' };
    if ((this.#perSubnet.get(keys.subnet) ?? 0) >= this.options.maxPeersPerSubnet) return { ok: false, reason: 'PEER_SUBNET_LIMIT' };
    return { ok: true };
  }
}

function bump(counts: Map<string, number>, key: string, delta: number): void {
  const n = (counts.get(key) ?? 0) + delta;
  if (n === 0) counts.delete(key);
  else counts.set(key, n);
}

function groupBySubnet(cands: readonly Entry[]): Map<string, Entry[]> {
  const groups = new Map<string, Entry[]>();
  for (const c of cands) {
    const g = groups.get(c.subnet);
    if (g === undefined) groups.set(c.subnet, [c]);
    else g.push(c);
  }
  return groups;
}

function without(cands: readonly Entry[], drop: readonly Entry[]): Entry[] {
  const set = new Set(drop);
  return cands.filter((c) => !set.has(c));
}

/** Remove the `n` best qualifying candidates by `better` (ties by key). */
function protectBest(cands: Entry[], n: number, qualifies: (c: Entry) => boolean, better: (a: Entry, b: Entry) => number): Entry[] {
  if (n <= 0 || cands.length === 0) return cands;
  const ranked = cands.filter(qualifies).sort((a, b) => better(a, b) || cmp(a.slot.key, b.slot.key));
  return without(cands, ranked.slice(0, n));
}

function peerSetOptions(init: PeerSetInit): PeerSetOptions {
  const protect = { ...DEFAULT_PEER_SET_OPTIONS.protect, ...init.protect };
  const o = { ...DEFAULT_PEER_SET_OPTIONS, ...init, protect };
  const check = (name: string, v: unknown): void => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RangeError(`peer set option ${name} must be a non-negative integer`);
  };
  for (const k of ['maxPeers', 'maxOutbound', 'maxPeersPerIp', 'maxPeersPerSubnet'] as const) check(k, o[k]);
  for (const k of ['subnets', 'lowLatency', 'useful', 'longLived'] as const) check(`protect.${k}`, protect[k]);
  if (o.maxOutbound > o.maxPeers) throw new RangeError('peer set option maxOutbound must not exceed maxPeers');
  return Object.freeze({ ...o, protect: Object.freeze(protect) });
}
