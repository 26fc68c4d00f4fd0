/**
 * The JSON the node's HTTP API serves and accepts (docs/API.md). The server
 * (server.ts) builds these from a `Node`; the client (client.ts) and the CLI
 * read them. Times are ISO-8601 strings or milliseconds named `...Ms`; counts
 * and bytes are numbers.
 */

import type { GossipPeerStatus } from '../gossip/types.ts';
import type { TopicScore } from '../gossip/scores.ts';
import type { SyncProgress } from '../sync/progress.ts';

/** Every non-2xx response: `{ "error": { "code": ..., "message": ... } }`. */
export interface ApiErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

export interface HandshakeJson {
  /** Key agreement, e.g. `x25519-ml-kem-768`. */
  readonly kem: string;
  /** Frame cipher, e.g. `chacha20-poly1305`. */
  readonly aead: string;
  /** The remote identity's signature algorithm, e.g. `ml-dsa-65`. */
  readonly sig: string;
  /** Milliseconds from the first handshake byte to session keys, as this side measured it. */
  readonly ms: number;
}

/** Per message type name: how many were received (`in`) and sent (`out`). */
export interface MessageCountsJson {
  readonly in: Readonly<Record<string, number>>;
  readonly out: Readonly<Record<string, number>>;
}

export interface PeerJson {
  /** `pq1…`; null until the handshake has authenticated the peer. */
  readonly peerId: string | null;
  readonly direction: 'inbound' | 'outbound';
  readonly state: 'connecting' | 'handshaking' | 'active' | 'disconnecting' | 'closed';
  /** Dialled address (outbound) or the remote socket address (inbound). */
  readonly address: string;
  readonly host: string;
  readonly mustConnect: boolean;
  readonly agent: string | null;
  readonly listenAddresses: readonly string[];
  readonly protocols: readonly string[];
  readonly height: number | null;
  readonly rttMs: number | null;
  /** [0, 100]; 50 is neutral. */
  readonly score: number | null;
  readonly scoreStatus: 'trusted' | 'neutral' | 'greylisted' | 'banned' | null;
  readonly clockSkewMs: number | null;
  readonly connectedForMs: number;
  /** Bytes on the wire, the handshake included. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly queuedBytes: number;
  readonly requestsInFlight: number;
  readonly handshake: HandshakeJson | null;
  readonly messages: MessageCountsJson;
}

export interface PeersResponse {
  readonly peers: readonly PeerJson[];
}

export interface BanJson {
  readonly kind: 'peer' | 'address';
  /** Peer-id, or a canonical IP / CIDR. */
  readonly target: string;
  readonly reason: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly offenses: number;
  readonly note: string;
}

export interface BansResponse {
  readonly bans: readonly BanJson[];
}

export interface InfoResponse {
  readonly peerId: string;
  /** Signature algorithm of this node's identity. */
  readonly identityAlg: string;
  readonly chainId: number;
  readonly agent: string;
  /** pqnet package version. */
  readonly version: string;
  /** Frame/handshake protocol version and the peer (HELLO) protocol version. */
  readonly protocolVersion: number;
  readonly peerProtocolVersion: number;
  readonly listen: readonly string[];
  readonly announce: readonly string[];
  /** Algorithms this node accepts in handshakes, preferred first. */
  readonly algorithms: { readonly kem: readonly string[]; readonly aead: readonly string[]; readonly sig: readonly string[] };
  /** Hex SHA3 root of the algorithm policy; peers must have the same one. */
  readonly policyRoot: string;
  /** Crypto provider in use: `native` (node:crypto) or `portable` (@noble). */
  readonly provider: string;
  readonly startedAt: string;
  readonly uptimeMs: number;
}

export interface HealthResponse {
  /**
   * `ok` while the node runs, `degraded` while it runs with a warning (see
   * `gossip.warnings`; still 200), `stopped` (503) once it has stopped.
   */
  readonly status: 'ok' | 'degraded' | 'stopped';
  readonly peerId: string;
  readonly uptimeMs: number;
  readonly listening: readonly string[];
  readonly peers: Readonly<Record<string, number>>;
  readonly inbound: number;
  readonly outbound: number;
  readonly handshakesInProgress: number;
  readonly queuedBytes: number;
  readonly scores: { readonly greylisted: number; readonly trusted: number; readonly lowest: number | null };
  readonly bans: number;
  readonly peerBook: number;
  readonly rejects: Readonly<Record<string, number>>;
  readonly disconnects: Readonly<Record<string, number>>;
  /** Chain sync, when the node runs it (null otherwise). */
  readonly sync: SyncProgressJson | null;
  /** Gossip, when the node runs it (null otherwise). */
  readonly gossip: GossipHealthJson | null;
}

/**
 * Where chain sync stands (`GET /health` `.sync`, `GET /sync/status` `.progress`):
 * `SyncProgress` (src/sync/progress.ts), with the start time as ISO text.
 */
export type SyncProgressJson = Omit<SyncProgress, 'startedAtMs'> & {
  /** When this sync began (kept across restarts); its height is `startHeight`. */
  readonly startedAt: string | null;
};

/** `GET /sync/status`: progress plus the engines' counters. */
export interface SyncStatusResponse {
  readonly chain: string;
  readonly progress: SyncProgressJson;
  readonly headers: Readonly<Record<string, number>>;
  readonly blocks: Readonly<Record<string, number | boolean>>;
  /** Other parts of sync (relay, state) by name, each its counters. */
  readonly [part: string]: unknown;
}

/** `POST /chain/publish`: the node produces blocks or transactions and announces them. */
export interface PublishRequest {
  readonly kind: 'blocks' | 'txs';
  readonly count: number;
  /** Transactions in each new block (blocks only; default: what the mempool has, up to the block limit). */
  readonly txsPerBlock?: number;
}

export interface PublishResponse {
  readonly kind: 'blocks' | 'txs';
  /** How many were made (fewer transactions than asked if the accounts run dry). */
  readonly count: number;
  readonly tipHeight: number;
  readonly tipHash: string;
}

export interface StatsResponse {
  readonly peers: { readonly byState: Readonly<Record<string, number>>; readonly inbound: number; readonly outbound: number };
  /** Totals since start, over live and closed connections. */
  readonly bytes: { readonly in: number; readonly out: number };
  readonly messages: MessageCountsJson;
  /** Peers whose score is not neutral, lowest first. */
  readonly scores: readonly { readonly peerId: string; readonly score: number; readonly status: string }[];
  readonly handshakes: { readonly completed: number; readonly failed: Readonly<Record<string, number>> };
  /** Connections refused before or at admission, by reason code. */
  readonly rejects: Readonly<Record<string, number>>;
  /** Connections ended, by reason code. */
  readonly disconnects: Readonly<Record<string, number>>;
  /** Peer faults that were scored, by reason code. */
  readonly offenses: Readonly<Record<string, number>>;
  readonly bans: number;
  readonly peerBook: number;
}

// ---- Operator actions (POST, bearer token) ----

export interface ConnectRequest {
  /** `tcp://HOST:PORT`. */
  readonly addr: string;
  /** When given, the handshake must authenticate this peer-id. */
  readonly peerId?: string;
}

export interface ConnectResponse {
  readonly peer: PeerJson;
}

export interface DisconnectRequest {
  readonly peerId: string;
}

export interface DisconnectResponse {
  readonly disconnected: true;
}

/** Exactly one of `peerId` and `address` (an IP or CIDR). */
export interface BanRequest {
  readonly peerId?: string;
  readonly address?: string;
  /** Omitted: the ban list's escalating default (1 h for a first ban). */
  readonly durationMs?: number;
  readonly note?: string;
}

export interface BanResponse {
  readonly ban: BanJson;
}

/** Exactly one of `peerId` and `address`. */
export interface UnbanRequest {
  readonly peerId?: string;
  readonly address?: string;
}

export interface UnbanResponse {
  readonly unbanned: true;
}

// ---- Gossip (GET /gossip/status, POST /gossip/publish, /health's gossip) ----

/** `/health` `.gossip`: the subscribed topics' meshes, and what looks wrong. */
export interface GossipHealthJson {
  /** `degraded` when a warning applies (the node's `status` is then `degraded` too). */
  readonly status: 'ok' | 'degraded';
  /** Active peers that speak gossip (announce `pqnet/gossip/1`). */
  readonly peers: number;
  /** Flood mode: no meshes, so an empty mesh is not a warning. */
  readonly flood: boolean;
  /** Per subscribed topic: mesh members and subscribed peers. */
  readonly topics: readonly { readonly topic: string; readonly mesh: number; readonly peers: number }[];
  /** e.g. `topic blocks: empty mesh with 3 gossip peers connected (0 of them subscribed)`. */
  readonly warnings: readonly string[];
}

/** One topic in `GET /gossip/status`: its settings, peers and counters since start. */
export interface GossipTopicJson {
  readonly topic: string;
  /** This node has joined it. */
  readonly subscribed: boolean;
  readonly priority: string;
  readonly maxBytes: number;
  /** The per-peer inbound cap: `ratePerSecond` items per second, bursts of `burst`. */
  readonly ratePerSecond: number;
  readonly burst: number;
  /** Peers in our mesh, our fanout (published to without joining), and subscribed to the topic. */
  readonly mesh: number;
  readonly fanout: number;
  readonly peers: number;
  /** Mesh members we choked (they announce to us), and that choked us. */
  readonly choking: number;
  readonly chokedBy: number;
  /** Items from peers by outcome (`accepted`, `duplicate`, `rejected`, `rate_limited`, ...). */
  readonly received: Readonly<Record<string, number>>;
  /** Items pushed to peers, and announced by IHAVE instead. */
  readonly sent: number;
  readonly announced: number;
  /** Items published by this node. */
  readonly published: number;
}

/** A peer's counters in one topic (the router's `TopicScore`; counts and score to 3 decimals, times in whole ms). */
export type GossipTopicScoreJson = TopicScore;

/** One peer that speaks gossip, as the router sees it (`GossipPeerStatus`): topics, mesh topics, where we choked it and where it choked us. */
export type GossipPeerJson = GossipPeerStatus;

/** `GET /gossip/status`. */
export interface GossipStatusResponse {
  /** The router's parameters in use (`D`, `Dlo`, `Dhi`, `Dlazy`, `Dunchoked`, `heartbeatMs`, `flood`, ...). */
  readonly params: Readonly<Record<string, number | boolean>>;
  /** Every registered topic, the subscribed ones first. */
  readonly topics: readonly GossipTopicJson[];
  /** Control by type (graft, prune, ihave, iwant, idontwant, choke, unchoke). */
  readonly control: Readonly<Record<string, { readonly sent: number; readonly received: number }>>;
  /** Message ids sent in IHAVE, and IHAVE offers not delivered after IWANT. */
  readonly ihaveIds: number;
  readonly brokenPromises: number;
  /** Seen item ids, cached items (served to IWANT), ids asked for, items waiting for their validator. */
  readonly cache: { readonly seen: number; readonly mcache: number; readonly wanted: number; readonly validating: number };
  readonly peers: readonly GossipPeerJson[];
}

/** `POST /gossip/publish`. */
export interface GossipPublishRequest {
  readonly topic: string;
  /** The payload, base64 (standard alphabet, padded). */
  readonly data: string;
}

export interface GossipPublishResponse {
  readonly topic: string;
  /** The item's message id, hex. */
  readonly id: string;
  readonly bytes: number;
  /** Peers it was pushed or announced to. */
  readonly peers: number;
}
