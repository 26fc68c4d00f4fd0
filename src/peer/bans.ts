/**
 * Bans by peer-id and by address (one IP or a CIDR range), with expiry and
 * escalation for repeat offenders (DESIGN.md, Peers). Persisted through a
 * `BanStore` on every change; times are wall-clock milliseconds.
 */
import { PqnetError, type Reason } from '../core/errors.ts';
import { PeerId } from '../secure/identity.ts';
import type { BanKind, BanRecord, BanStore } from './types.ts';

// IP/CIDR parsing lives in core/ip.ts (the listener shares it); re-exported here for the filter and tests.
import { hostCidr, networkOf, normalizeCidr, parseCidr, type Cidr } from '../core/ip.ts';
export { formatCidr, hostCidr, normalizeCidr, parseCidr, type Cidr } from '../core/ip.ts';

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
      const v = byPrefix.get(prefix)!.get(networkOf(ip, prefix).bits);
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
