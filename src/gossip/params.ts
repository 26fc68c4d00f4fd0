/**
 * Gossip router parameters (docs/spec/gossip.md, "Parameters"): mesh degree
 * bounds, heartbeat, caches, backoffs, limits and score thresholds. Every
 * default is here; config (`[gossip]`) overrides them. `GOSSIPSUB_PARAMS` are
 * GossipSub v1.1's published defaults, for comparison runs.
 */
import { PqnetError } from '../core/errors.ts';
import { GREYLIST_BELOW } from '../peer/score.ts';

export interface GossipParams {
  /** Target mesh degree, and the bounds the heartbeat keeps it within. */
  readonly D: number;
  readonly Dlo: number;
  readonly Dhi: number;
  /** Mesh members kept by score when pruning an oversized mesh. */
  readonly Dscore: number;
  /** Outbound (dialled by us) members the mesh keeps at least. */
  readonly Dout: number;
  /**
   * Choking: mesh members allowed to push items to us; the others are asked
   * (CHOKE) to announce them by IHAVE instead. 0 turns choking off (every
   * mesh member pushes, as in GossipSub), as does D_high or more.
   */
  readonly Dunchoked: number;
  /** Items observed between two choke decisions. */
  readonly chokeWindow: number;
  /** Every this many choke decisions one random choked member is unchoked to be measured again (0: never). */
  readonly unchokeExploreWindows: number;
  /** Peers outside the mesh sent IHAVE gossip per heartbeat, at least. */
  readonly Dlazy: number;
  /** ... or this share of the eligible peers, if more. */
  readonly gossipFactor: number;
  readonly heartbeatMs: number;
  /** A fanout topic (published to, not joined) is forgotten this long after the last publish. */
  readonly fanoutTtlMs: number;
  /** Heartbeats an item stays in the message cache (IWANT is served), and of those, how many are offered by IHAVE. */
  readonly historyLength: number;
  readonly historyGossip: number;
  /** How long and how many item ids the seen cache keeps. */
  readonly seenTtlMs: number;
  readonly seenMax: number;
  readonly pruneBackoffMs: number;
  readonly unsubscribeBackoffMs: number;
  /** Opportunistic grafting: every this many heartbeats (0: off), when the mesh's median score is below the score, graft this many better peers. */
  readonly opportunisticGraftTicks: number;
  readonly opportunisticGraftScore: number;
  readonly opportunisticGraftPeers: number;
  /** IHAVE messages accepted from one peer per heartbeat, and ids asked for (IWANT) per peer per heartbeat. */
  readonly maxIHaveMessages: number;
  readonly maxIHaveLength: number;
  /** Time an IWANT'ed item has to arrive before the promise is broken and the next offerer is asked. */
  readonly iwantTimeoutMs: number;
  /** IWANT answers per item per peer. */
  readonly gossipRetransmission: number;
  /** IDONTWANT ids kept per peer, and how long. */
  readonly maxIDontWant: number;
  readonly idontwantTtlMs: number;
  /** Send own items to every subscribed peer (not only the mesh), as GossipSub's flood publishing. */
  readonly floodPublish: boolean;
  /** Flood mode: no mesh; every item goes to every subscribed peer but the sender (small networks). */
  readonly flood: boolean;
  /** Items waiting for their validator at most; beyond, new items are dropped (not marked seen). */
  readonly maxPendingValidations: number;
  /** Topics one peer may subscribe to (as we track them). */
  readonly maxTopicsPerPeer: number;
  /** The greylist rule: no items or control to or from peers scoring below this. */
  readonly greylistScore: number;
  /** Peers below this score leave (and do not join) a mesh. */
  readonly meshMinScore: number;
  /** Peers below this score are not sent IHAVE. */
  readonly gossipMinScore: number;
  /**
   * We push to a peer at most this share of its topic rate cap (its bucket as
   * we model it); beyond, items are announced (IHAVE) instead, so an honest
   * forwarder never trips a neighbour's cap.
   */
  readonly outboundRateMargin: number;
}

export const DEFAULT_GOSSIP_PARAMS: GossipParams = Object.freeze({
  D: 6,
  Dlo: 4,
  Dhi: 12,
  Dscore: 4,
  Dout: 2,
  Dunchoked: 3,
  chokeWindow: 8,
  unchokeExploreWindows: 10,
  Dlazy: 6,
  gossipFactor: 0.25,
  heartbeatMs: 1_000,
  fanoutTtlMs: 60_000,
  historyLength: 5,
  historyGossip: 3,
  seenTtlMs: 120_000,
  seenMax: 200_000,
  pruneBackoffMs: 60_000,
  unsubscribeBackoffMs: 10_000,
  opportunisticGraftTicks: 60,
  opportunisticGraftScore: 55,
  opportunisticGraftPeers: 2,
  maxIHaveMessages: 10,
  maxIHaveLength: 5_000,
  iwantTimeoutMs: 3_000,
  gossipRetransmission: 3,
  maxIDontWant: 10_000,
  idontwantTtlMs: 3_000,
  floodPublish: true,
  flood: false,
  maxPendingValidations: 1_024,
  maxTopicsPerPeer: 64,
  greylistScore: GREYLIST_BELOW,
  meshMinScore: GREYLIST_BELOW,
  gossipMinScore: GREYLIST_BELOW,
  outboundRateMargin: 0.9,
});

/**
 * GossipSub v1.1's published defaults (libp2p specs, pubsub/gossipsub):
 * D=6, D_lo=4, D_hi=12, D_score=4, D_out=2, D_lazy=6, gossip factor 0.25,
 * heartbeat 1 s, fanout TTL 60 s, mcache 5 windows of which 3 are gossiped,
 * seen TTL 120 s, prune backoff 60 s, unsubscribe backoff 10 s, opportunistic
 * grafting every 60 heartbeats, IHAVE limits 10 messages / 5000 ids, IWANT
 * follow-up 3 s, 3 retransmissions, flood publishing on; and no choking
 * (GossipSub has none), the one place pqnet's defaults differ.
 */
export const GOSSIPSUB_PARAMS: GossipParams = Object.freeze({ ...DEFAULT_GOSSIP_PARAMS, Dunchoked: 0 });

export function checkParams(p: GossipParams): GossipParams {
  const bad = (what: string): never => {
    throw new PqnetError('INVALID_ARGUMENT', `gossip: ${what}`);
  };
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === 'number' && (!Number.isFinite(v) || v < 0)) bad(`${k} must be a finite number >= 0`);
  }
  const ints = ['D', 'Dlo', 'Dhi', 'Dscore', 'Dout', 'Dunchoked', 'chokeWindow', 'unchokeExploreWindows', 'Dlazy', 'historyLength', 'historyGossip', 'seenMax', 'maxIHaveMessages', 'maxIHaveLength', 'gossipRetransmission', 'maxIDontWant', 'maxPendingValidations', 'maxTopicsPerPeer', 'opportunisticGraftTicks', 'opportunisticGraftPeers'] as const;
  for (const k of ints) if (!Number.isInteger(p[k])) bad(`${k} must be an integer`);
  if (!(p.Dlo <= p.D && p.D <= p.Dhi)) bad(`need D_low <= D <= D_high (got ${p.Dlo}, ${p.D}, ${p.Dhi})`);
  if (p.D < 1) bad('D must be at least 1');
  if (p.Dscore > p.D) bad('D_score must be at most D');
  if (p.chokeWindow < 1) bad('chokeWindow must be at least 1');
  if (p.Dout >= p.Dlo || p.Dout > p.D / 2) bad('D_out must be below D_low and at most D/2');
  if (p.historyGossip > p.historyLength || p.historyLength < 1) bad('need 1 <= historyLength and historyGossip <= historyLength');
  if (p.heartbeatMs < 10) bad('heartbeatMs must be at least 10');
  if (p.iwantTimeoutMs <= 0) bad('iwantTimeoutMs must be above 0');
  if (p.seenTtlMs <= 0 || p.seenMax <= 0 || p.idontwantTtlMs <= 0 || p.maxIDontWant <= 0) bad('seen and IDONTWANT caches need a positive size and TTL');
  if (p.gossipFactor > 1 || p.outboundRateMargin > 1 || p.outboundRateMargin <= 0) bad('gossipFactor must be in [0, 1] and outboundRateMargin in (0, 1]');
  return Object.freeze({ ...p });
}
