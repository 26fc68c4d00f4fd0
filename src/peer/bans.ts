/**
 * Bans by peer-id and by address (one IP or a CIDR range), with expiry and
 * escalation for repeat offenders (DESIGN.md, Peers). Persisted through a
 * `BanStore` on every change; times are wall-clock milliseconds.
 *
 * Also home of the IP/CIDR helpers the address filter shares.
 */
import { isIP } from 'node:net';
import { PqnetError, type Reason } from '../core/errors.ts';
import { PeerId } from '../secure/identity.ts';
import type { BanKind, BanRecord, BanStore } from './types.ts';

// ---- IP addresses and CIDR ranges ----

/**
 * An IP network: `bits` is the address with the host bits cleared; a single
 * address has the full prefix (32 or 128). IPv4-mapped IPv6 (`::ffff:0:0/96`
 * and narrower) is always held as IPv4, so `::ffff:192.0.2.1` and `192.0.2.1`
 * are the same thing everywhere.
 */
export interface Cidr {
  readonly version: 4 | 6;
  readonly bits: bigint;
  readonly prefix: number;
}

const WIDTH = { 4: 32, 6: 128 } as const;
const DECIMAL = /^(0|[1-9]\d{0,2})$/; // no leading zeros: `010` is octal to some parsers

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!DECIMAL.test(p) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parseIpv6(text: string): bigint | undefined {
  // isIP checks the syntax (one `::` at most, group count, embedded IPv4) but accepts a zone.
  if (isIP(text) !== 6 || text.includes('%')) return undefined;
  const groups = (part: string): bigint[] | undefined => {
    const out: bigint[] = [];
    for (const g of part === '' ? [] : part.split(':')) {
      if (!g.includes('.')) {
        out.push(BigInt(`0x${g}`));
        continue;
      }
      const v4 = parseIpv4(g);
      if (v4 === undefined) return undefined;
      out.push(v4 >> 16n, v4 & 0xffffn);
    }
    return out;
  };
  const gap = text.indexOf('::');
  const left = groups(gap < 0 ? text : text.slice(0, gap));
  const right = gap < 0 ? [] : groups(text.slice(gap + 2));
  if (left === undefined || right === undefined) return undefined;
  const zeros = 8 - left.length - right.length; // `::` stands for one or more zero groups
  if (gap < 0 ? zeros !== 0 : zeros < 1) return undefined;
  return [...left, ...Array<bigint>(zeros).fill(0n), ...right].reduce((acc, g) => (acc << 16n) | g, 0n);
}

function maskBits(bits: bigint, version: 4 | 6, prefix: number): bigint {
  return bits & ~((1n << BigInt(WIDTH[version] - prefix)) - 1n);
}

/** IPv4-mapped IPv6 networks (prefix 96 or longer inside ::ffff:0:0/96) become IPv4. */
function unmap(c: Cidr): Cidr {
  if (c.version === 6 && c.prefix >= 96 && c.bits >> 32n === 0xffffn) {
    return { version: 4, bits: c.bits & 0xffff_ffffn, prefix: c.prefix - 96 };
  }
  return c;
}

function invalid(text: string): PqnetError {
  return new PqnetError('INVALID_ARGUMENT', `${JSON.stringify(text.slice(0, 80))} is not an IP address or CIDR range`);
}

/**
 * Parse `192.0.2.7`, `192.0.2.0/24`, `2001:db8::/32`, `::ffff:192.0.2.0/120`.
 * Host bits under the mask are cleared (`192.0.2.7/24` is `192.0.2.0/24`).
 * Throws `INVALID_ARGUMENT`.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const v4 = parseIpv4(addr);
  const version = v4 !== undefined ? 4 : 6;
  const bits = v4 ?? parseIpv6(addr);
  if (bits === undefined) throw invalid(text);
  let prefix: number = WIDTH[version];
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!DECIMAL.test(p) || Number(p) > prefix) throw invalid(text);
    prefix = Number(p);
  }
  return unmap({ version, bits: maskBits(bits, version, prefix), prefix });
}

/**
 * Canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lowercase, longest
 * zero run compressed), and no `/len` for a single address.
 */
export function formatCidr(c: Cidr): string {
  let addr: string;
  if (c.version === 4) {
    addr = [24n, 16n, 8n, 0n].map((s) => String((c.bits >> s) & 0xffn)).join('.');
  } else {
    const g = Array.from({ length: 8 }, (_, i) => Number((c.bits >> BigInt(112 - 16 * i)) & 0xffffn));
    let at = -1;
    let len = 1; // RFC 5952: a single zero group is not compressed
    for (let i = 0; i < 8; ) {
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > len) [at, len] = [i, j - i];
      i = Math.max(j, i + 1);
    }
    const hex = g.map((x) => x.toString(16));
    addr = at < 0 ? hex.join(':') : `${hex.slice(0, at).join(':')}::${hex.slice(at + len).join(':')}`;
  }
  return c.prefix === WIDTH[c.version] ? addr : `${addr}/${c.prefix}`;
}

/** Canonical form of an IP or CIDR (`192.0.2.7/24` → `192.0.2.0/24`); throws `INVALID_ARGUMENT`. */
export function normalizeCidr(text: string): string {
  return formatCidr(parseCidr(text));
}

/**
 * A remote host as a full-length network, or `undefined` if it is not an IP
 * (memory-transport names). A zone (`fe80::1%eth0`) is ignored.
 */
export function hostCidr(host: string): Cidr | undefined {
  const bare = host.includes('%') ? host.slice(0, host.indexOf('%')) : host;
  if (bare.includes('/')) return undefined;
  try {
    return parseCidr(bare);
  } catch {
    return undefined;
  }
}

/**
 * Values keyed by IP network. `match` looks a host up by walking only the
 * prefix lengths in use, longest first, so its cost does not grow with the
 * number of entries.
 */
export class CidrSet<T> {
  readonly #tables: Record<4 | 6, Map<number, Map<bigint, T>>> = { 4: new Map(), 6: new Map() };

  get(c: Cidr): T | undefined {
    return this.#tables[c.version].get(c.prefix)?.get(c.bits);
  }

  set(c: Cidr, value: T): void {
    const byPrefix = this.#tables[c.version];
    let table = byPrefix.get(c.prefix);
    if (table === undefined) byPrefix.set(c.prefix, (table = new Map()));
    table.set(c.bits, value);
  }

  delete(c: Cidr): boolean {
    const table = this.#tables[c.version].get(c.prefix);
    if (table?.delete(c.bits) !== true) return false;
    if (table.size === 0) this.#tables[c.version].delete(c.prefix);
    return true;
  }

  /** Values whose network contains `host`, most specific first; nothing for a non-IP host. */
  *match(host: string): Generator<T> {
    const ip = hostCidr(host);
    if (ip === undefined) return;
    const byPrefix = this.#tables[ip.version];
    for (const prefix of [...byPrefix.keys()].sort((a, b) => b - a)) {
      const v = byPrefix.get(prefix)!.get(maskBits(ip.bits, ip.version, prefix));
      if (v !== undefined) yield v;
    }
  }

  /** The most specific value whose network contains `host`. */
  lookup(host: string): T | undefined {
    return this.match(host).next().value;
  }

  *values(): Generator<T> {
    for (const byPrefix of [this.#tables[4], this.#tables[6]]) {
      for (const table of byPrefix.values()) yield* table.values();
    }
  }
}

// ---- Ban list ----

export interface BanOptions {
  /** Length of a first ban. */
  readonly baseBanMs: number;
  /** Each repeat ban lasts this many times longer than the one before. */
  readonly escalation: number;
  /** No computed ban lasts longer than this. */
  readonly maxBanMs: number;
  /** A ban is remembered this long after it expires: a new ban within it escalates; after it, the count restarts. */
  readonly offenseMemoryMs: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export const DEFAULT_BAN_OPTIONS: BanOptions = Object.freeze({
  baseBanMs: HOUR,
  escalation: 4,
  maxBanMs: 30 * DAY,
  offenseMemoryMs: 30 * DAY,
});

export interface BanInput {
  /** Overrides the escalated duration. */
  readonly durationMs?: number;
  readonly note?: string;
}

/** Canonical ban target; throws `INVALID_ARGUMENT`. */
export function canonicalBanTarget(kind: BanKind, target: string): string {
  if (kind === 'address') return normalizeCidr(target);
  if (kind !== 'peer') throw new PqnetError('INVALID_ARGUMENT', `ban kind ${JSON.stringify(kind)}`);
  try {
    return PeerId.parse(target).toString();
  } catch (e) {
    throw new PqnetError('INVALID_ARGUMENT', `${JSON.stringify(target.slice(0, 80))} is not a peer id`, { cause: e });
  }
}

export class BanList {
  readonly options: BanOptions;
  readonly #store: BanStore | undefined;
  readonly #peers = new Map<string, BanRecord>();
  readonly #addresses = new CidrSet<BanRecord>();

  /**
   * Loads the stored bans. Expired ones still within `offenseMemoryMs` are kept
   * (they make the next ban escalate); older ones are deleted from the store.
   */
  constructor(store: BanStore | undefined, options: Partial<BanOptions>, now: number) {
    this.options = banOptions(options);
    this.#store = store;
    for (const rec of store?.loadBans() ?? []) {
      if (this.#forgotten(rec, now)) {
        store!.deleteBan(rec.kind, rec.target);
        continue;
      }
      let target: string;
      try {
        target = canonicalBanTarget(rec.kind, rec.target);
      } catch (e) {
        throw new PqnetError('STORE_CORRUPT', `ban ${JSON.stringify(rec.kind)} ${JSON.stringify(rec.target)}`, { cause: e });
      }
      this.#put(target === rec.target ? rec : { ...rec, target });
    }
  }

  /**
   * Ban `target` from `now`. Unless `durationMs` is given, the duration is
   * `baseBanMs × escalation^(offenses − 1)`, capped at `maxBanMs`, where
   * `offenses` counts this ban and the previous ones still remembered. An
   * explicit duration replaces the current one even if shorter. The ban takes
   * effect in memory before it is saved, so a store failure (thrown) still
   * leaves the peer banned for this run.
   */
  ban(kind: BanKind, target: string, reason: Reason, now: number, input: BanInput = {}): BanRecord {
    const key = canonicalBanTarget(kind, target);
    const prev = this.#get(kind, key);
    const offenses = prev !== undefined && !this.#forgotten(prev, now) ? prev.offenses + 1 : 1;
    const { baseBanMs, escalation, maxBanMs } = this.options;
    const durationMs = input.durationMs ?? Math.min(maxBanMs, baseBanMs * escalation ** (offenses - 1));
    if (!Number.isFinite(durationMs) || durationMs <= 0) throw new RangeError('ban duration must be a positive finite number');
    const rec: BanRecord = Object.freeze({ kind, target: key, reason, createdAt: now, expiresAt: now + durationMs, offenses, note: input.note ?? '' });
    this.#put(rec);
    this.#store?.saveBan(rec);
    return rec;
  }

  /** Lift a ban and forget its history (the next ban starts from the base duration). Returns whether there was one. */
  unban(kind: BanKind, target: string): boolean {
    const key = canonicalBanTarget(kind, target);
    const existed = kind === 'peer' ? this.#peers.delete(key) : this.#addresses.delete(parseCidr(key));
    if (existed) this.#store?.deleteBan(kind, key);
    return existed;
  }

  /**
   * The unexpired ban that applies to this peer-id or host, if any: the peer
   * ban first, then the most specific address ban containing the host.
   */
  isBanned(who: { readonly peerId?: string; readonly host?: string }, now: number): BanRecord | undefined {
    if (who.peerId !== undefined) {
      const rec = this.#peers.get(who.peerId);
      if (rec !== undefined && now < rec.expiresAt) return rec;
    }
    if (who.host !== undefined) {
      for (const rec of this.#addresses.match(who.host)) if (now < rec.expiresAt) return rec;
    }
    return undefined;
  }

  /** Unexpired bans. */
  active(now: number): BanRecord[] {
    return this.#all().filter((r) => now < r.expiresAt);
  }

  /** Drop records past their offense memory, here and in the store. Returns how many. */
  prune(now: number): number {
    let n = 0;
    for (const rec of this.#all()) {
      if (!this.#forgotten(rec, now)) continue;
      if (rec.kind === 'peer') this.#peers.delete(rec.target);
      else this.#addresses.delete(parseCidr(rec.target));
      this.#store?.deleteBan(rec.kind, rec.target);
      n++;
    }
    return n;
  }

  #forgotten(rec: BanRecord, now: number): boolean {
    return now >= rec.expiresAt + this.options.offenseMemoryMs;
  }

  #all(): BanRecord[] {
    return [...this.#peers.values(), ...this.#addresses.values()];
  }

  #get(kind: BanKind, key: string): BanRecord | undefined {
    return kind === 'peer' ? this.#peers.get(key) : this.#addresses.get(parseCidr(key));
  }

  #put(rec: BanRecord): void {
    if (rec.kind === 'peer') this.#peers.set(rec.target, rec);
    else this.#addresses.set(parseCidr(rec.target), rec);
  }
}

function banOptions(overrides: Partial<BanOptions>): BanOptions {
  const o = { ...DEFAULT_BAN_OPTIONS, ...overrides };
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`ban option ${k} must be a positive number`);
  }
  if (o.escalation < 1) throw new RangeError('ban option escalation must be at least 1');
  if (o.maxBanMs < o.baseBanMs) throw new RangeError('ban option maxBanMs must be at least baseBanMs');
  return Object.freeze(o);
}
