/**
 * The gossip router's types (docs/spec/gossip.md): its inputs and outputs
 * (actions, validation outcomes), its statistics, and the per-peer and
 * per-topic state the router and its helpers (mesh upkeep) share.
 */
import type { Reason } from '../core/errors.ts';
import type { TtlMap } from '../core/seen.ts';
import type { TokenBucket } from '../core/token-bucket.ts';
import type { ChokeTracker } from './choke.ts';
import type { Control } from './messages.ts';
import type { TopicScore } from './scores.ts';
import type { TopicSpec } from './topics.ts';

export type Validation = 'accept' | 'ignore' | 'reject';

export type GossipAction =
  /** Send an item (its topic's priority class picks the message type). */
  | { readonly type: 'item'; readonly peer: string; readonly topic: string; readonly payload: Uint8Array }
  | { readonly type: 'control'; readonly peer: string; readonly control: Control }
  /** Run the topic's validator and answer with `validated(key, outcome)`. */
  | { readonly type: 'validate'; readonly key: string; readonly topic: string; readonly id: Uint8Array; readonly payload: Uint8Array; readonly from: string }
  /** A valid item from a peer, for the application. */
  | { readonly type: 'deliver'; readonly topic: string; readonly id: Uint8Array; readonly payload: Uint8Array; readonly from: string; readonly receivedAt: number }
  /** An item went out to `peers` peers (pushed or announced): the fanout of one hop. */
  | { readonly type: 'forwarded'; readonly topic: string; readonly peers: number }
  | { readonly type: 'penalize'; readonly peer: string; readonly reason: Reason; readonly detail: string; readonly times: number }
  | { readonly type: 'reward'; readonly peer: string; readonly points: number };

export type ItemOutcome = 'accepted' | 'ignored' | 'rejected' | 'duplicate' | 'rate_limited' | 'oversize' | 'greylisted' | 'unsubscribed' | 'unknown_topic' | 'throttled';

export interface TopicStats {
  readonly published: number;
  readonly received: Readonly<Record<ItemOutcome, number>>;
  /** Items sent to peers (pushes and IWANT answers). */
  readonly sent: number;
  /** Items announced with IHAVE instead of pushed. */
  readonly announced: number;
  readonly mesh: number;
  readonly fanout: number;
  /** Peers subscribed to the topic. */
  readonly peers: number;
  /** Mesh members we choked (they announce to us), and that choked us (we announce to them). */
  readonly choking: number;
  readonly chokedBy: number;
}

export interface RouterStats {
  readonly topics: Readonly<Record<string, TopicStats>>;
  readonly control: Readonly<Record<ControlKind, { readonly sent: number; readonly received: number }>>;
  /** Message ids sent in IHAVE (lazy gossip, announcements to choking members and of large items). */
  readonly ihaveIds: number;
  readonly brokenPromises: number;
  readonly pendingValidations: number;
  readonly wanted: number;
  readonly seen: number;
  readonly cached: number;
}

export type ControlKind = 'graft' | 'prune' | 'ihave' | 'iwant' | 'idontwant' | 'choke' | 'unchoke';

export interface GossipPeerStatus {
  readonly peerId: string;
  readonly outbound: boolean;
  readonly topics: readonly string[];
  readonly mesh: readonly string[];
  /** Mesh topics where we choked it, and where it choked us. */
  readonly choking: readonly string[];
  readonly chokedBy: readonly string[];
  readonly scores: readonly TopicScore[];
}

export interface PeerState {
  readonly id: string;
  readonly outbound: boolean;
  readonly topics: Set<string>;
  /** Inbound token buckets by topic (unsolicited items only). */
  readonly buckets: Map<string, TokenBucket>;
  /** Our view of its buckets: what we may push before it would drop. */
  readonly outBuckets: Map<string, TokenBucket>;
  /** Ids it said it does not want (IDONTWANT), by key, until expiry. */
  readonly dontWant: TtlMap<string, true>;
  /** Control to send at the end of the current input. */
  control: Control | undefined;
  ihaveThisBeat: number;
  iwantThisBeat: number;
  /** Ids it announced this heartbeat in topics where we choked it (exempt from the IHAVE message cap, bounded by this). */
  chokedIdsThisBeat: number;
}

export interface TopicState {
  readonly spec: TopicSpec;
  /** Mesh members (only while we are subscribed). */
  readonly mesh: Set<string>;
  /** Fanout peers of a topic we publish to without being subscribed. */
  fanout: Set<string> | undefined;
  fanoutLastPublish: number;
  subscribed: boolean;
  /** Peers subscribed to it. */
  readonly peers: Set<string>;
  /** Peer -> no GRAFT before (ms). */
  readonly backoff: Map<string, number>;
  readonly choke: ChokeTracker;
  published: number;
  sent: number;
  announced: number;
  readonly received: Record<ItemOutcome, number>;
}

export interface SeenRecord {
  readonly firstAt: number;
  status: 'pending' | 'accepted' | 'ignored' | 'rejected';
}

/** An item waiting for its validator. */
export interface Validating {
  readonly topic: string;
  readonly from: string;
  readonly id: Uint8Array;
  readonly payload: Uint8Array;
  readonly firstAt: number;
  /** Peers that offered it by IHAVE before it arrived: they have it, so it is not forwarded to them. */
  readonly haves: readonly string[];
  /** It came as the answer to our IWANT. */
  readonly solicited: boolean;
}

export function zeroOutcomes(): Record<ItemOutcome, number> {
  return { accepted: 0, ignored: 0, rejected: 0, duplicate: 0, rate_limited: 0, oversize: 0, greylisted: 0, unsubscribed: 0, unknown_topic: 0, throttled: 0 };
}

export function idKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.length).toString('hex');
}
