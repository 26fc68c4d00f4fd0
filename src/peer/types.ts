/**
 * Records shared by the peer layer's parts: the peer book, the ban list and
 * their SQLite store. Times are wall-clock milliseconds (`Clock.wallNow()`),
 * because they outlive the process.
 */
import type { Reason } from '../core/errors.ts';

/** Where an address came from. */
export type AddressSource = 'static' | 'must-connect' | 'inbound' | 'peer-exchange' | 'dns' | 'mdns' | 'kademlia' | 'operator';

export interface PeerBookEntry {
  /** Dialable address, e.g. `tcp://203.0.113.7:7420` (the primary key). */
  readonly address: string;
  /** Peer-id text (`pq1…`) last authenticated at this address, or null if never. */
  readonly peerId: string | null;
  readonly source: AddressSource;
  /** When the address was first learned. */
  readonly firstSeen: number;
  /** Last time it was seen alive: a successful connection or a fresh announcement. */
  readonly lastSeen: number;
  /** Last dial attempt, successful or not (0 if never). */
  readonly lastAttempt: number;
  /** Last successful authenticated connection (0 if never). */
  readonly lastSuccess: number;
  readonly successes: number;
  readonly failures: number;
  /** Failures since the last success; drives backoff and forgetting. */
  readonly consecutiveFailures: number;
  readonly lastFailureReason: Reason | null;
}

/** What a ban applies to: one peer-id, or an address or CIDR range. */
export type BanKind = 'peer' | 'address';

export interface BanRecord {
  readonly kind: BanKind;
  /** Peer-id text for `peer`; a canonical IP or CIDR (`192.0.2.0/24`, `2001:db8::/64`) for `address`. */
  readonly target: string;
  readonly reason: Reason;
  readonly createdAt: number;
  /** The ban is lifted at this time. */
  readonly expiresAt: number;
  /** How many times this target has been banned (1 for the first); durations escalate with it. */
  readonly offenses: number;
  /** Free text from the operator or the rule that banned. */
  readonly note: string;
}

/** Persistence the ban list needs; `PeerStore` implements it. */
export interface BanStore {
  loadBans(): BanRecord[];
  saveBan(ban: BanRecord): void;
  deleteBan(kind: BanKind, target: string): void;
}
