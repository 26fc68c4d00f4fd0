/**
 * The gossip router (docs/spec/gossip.md): a sans-I/O GossipSub-style mesh.
 * Inputs are peer events, received items and control, validation results,
 * local publishes and the time; outputs are actions (items and control to
 * send, items to validate and deliver, penalties and rewards). The I/O side
 * (src/node/gossip.ts, the simulator) carries them out and calls `tick` at
 * `nextDeadline()`.
 *
 * What it does, per topic: a mesh of D (D_low..D_high) peers kept by a
 * heartbeat (graft, prune with backoff, outbound quota, opportunistic
 * grafting), fanout for topics published without joining, eager push of
 * small items to the mesh and announce-then-pull of large ones, IHAVE gossip
 * from a message cache to D_lazy others, IWANT with promise tracking,
 * IDONTWANT for large items, a seen cache so an item is validated and
 * forwarded once, per-peer token buckets, and a flood mode. Peers below the
 * greylist score are neither forwarded to nor listened to.
 */
import { PqnetError, type Reason } from '../core/errors.ts';
import { systemRandom, uniformInt, type Random } from '../core/random.ts';
import { TtlMap } from '../core/seen.ts';
import { TokenBucket } from '../core/token-bucket.ts';
import { NEUTRAL } from '../peer/score.ts';
import { ChokeTracker } from './choke.ts';
import { MessageCache } from './mcache.ts';
import { emitGossip, maintainMesh, type MeshHost } from './mesh.ts';
import { emptyControl, isEmptyControl, MAX_BACKOFF_S, MAX_CONTROL_IDS, MAX_CONTROL_TOPICS, type Control } from './messages.ts';
import { DEFAULT_GOSSIP_PARAMS, checkParams, type GossipParams } from './params.ts';
import { PullTracker, type Ask } from './pull.ts';
import { TopicScores } from './scores.ts';
import { TopicTable, type TopicSpec } from './topics.ts';
import { idKey, zeroOutcomes, type ControlKind, type GossipAction, type GossipPeerStatus, type ItemOutcome, type PeerState, type RouterStats, type SeenRecord, type TopicState, type TopicStats, type Validating, type Validation } from './types.ts';

export type { ControlKind, GossipAction, GossipPeerStatus, ItemOutcome, RouterStats, TopicStats, Validation } from './types.ts';
export { idKey } from './types.ts';

export interface RouterOptions {
  readonly params?: Partial<GossipParams>;
  readonly topics?: TopicTable;
  readonly random?: Random;
  /** The peer's 0–100 score (default: neutral for everyone). */
  readonly score?: (peerId: string) => number;
}

export class GossipRouter {
  readonly params: GossipParams;
  readonly topics: TopicTable;
  readonly #random: Random;
  readonly #score: (peerId: string) => number;
  readonly #peers = new Map<string, PeerState>();
  readonly #topics = new Map<string, TopicState>();
  readonly #seen: TtlMap<string, SeenRecord>;
  readonly #mcache: MessageCache;
  readonly #scores = new TopicScores();
  readonly #pull: PullTracker;
  /** What mesh upkeep (mesh.ts) sees of the router. */
  readonly #mesh: MeshHost;
  #out: GossipAction[] = [];
  /** Peers with control waiting for the end of the current input. */
  readonly #dirty = new Set<PeerState>();
  readonly #validating = new Map<string, Validating>();
  #nextHeartbeat: number | undefined;
  #heartbeats = 0;
  #brokenPromises = 0;
  readonly #control: Record<ControlKind, [sent: number, received: number]> = { graft: [0, 0], prune: [0, 0], ihave: [0, 0], iwant: [0, 0], idontwant: [0, 0], choke: [0, 0], unchoke: [0, 0] };
  #ihaveIds = 0;

  constructor(options: RouterOptions = {}) {
    this.params = checkParams({ ...DEFAULT_GOSSIP_PARAMS, ...options.params });
    this.topics = options.topics ?? new TopicTable();
    this.#random = options.random ?? systemRandom;
    this.#score = options.score ?? (() => NEUTRAL);
    this.#seen = new TtlMap(this.params.seenMax, this.params.seenTtlMs);
    this.#mcache = new MessageCache(this.params.historyLength, this.params.historyGossip);
    this.#pull = new PullTracker(this.params.iwantTimeoutMs);
    const self = this;
    this.#mesh = {
      params: this.params,
      random: this.#random,
      get heartbeats() {
        return self.#heartbeats;
      },
      score: (peer) => this.#score(peer),
      outbound: (peer) => this.#peers.get(peer)?.outbound === true,
      meshable: (t, peer, now) => this.#meshable(t, peer, now),
      counters: (peer, topic) => this.#scores.peek(peer, topic),
      graft: (t, peer, now) => this.#graft(t, peer, now),
      prune: (t, peer, now, backoffMs) => this.#prune(t, peer, now, backoffMs),
      unchoke: (t, peer, now) => this.#unchoke(t, peer, now),
      penalize: (peer, reason, detail) => this.#penalize(peer, reason, detail),
      ihave: (peer, topic, id) => this.#addIHave(this.#peers.get(peer)!, topic, id),
      shuffle: (a) => this.#shuffle(a),
    };
  }

  // ================================================================ inputs: peers

  addPeer(peerId: string, outbound: boolean, now: number): GossipAction[] {
    if (this.#peers.has(peerId)) return [];
    const p: PeerState = {
      id: peerId, outbound, topics: new Set(), buckets: new Map(), outBuckets: new Map(),
      dontWant: new TtlMap(this.params.maxIDontWant, this.params.idontwantTtlMs),
      control: undefined, ihaveThisBeat: 0, iwantThisBeat: 0, chokedIdsThisBeat: 0,
    };
    this.#peers.set(peerId, p);
    this.#nextHeartbeat ??= now + this.params.heartbeatMs;
    const subs = [...this.#topics.values()].filter((t) => t.subscribed).map((t) => t.spec.name);
    if (subs.length > 0) this.#ctl(p).sub.push(...subs);
    return this.#take();
  }

  removePeer(peerId: string, now: number): GossipAction[] {
    const p = this.#peers.get(peerId);
    if (p === undefined) return [];
    this.#peers.delete(peerId);
    for (const t of this.#topics.values()) {
      t.peers.delete(peerId);
      this.#leaveMesh(t, peerId);
      t.fanout?.delete(peerId);
    }
    this.#scores.forget(peerId);
    this.#ask(this.#pull.peerLeft(peerId, now));
    return this.#take();
  }

  // ================================================================ inputs: local application

  /** Join a topic: GRAFT up to D peers and tell every peer. */
  subscribe(topic: string, now: number): GossipAction[] {
    const t = this.#topic(topic);
    if (t.subscribed) return [];
    if ([...this.#topics.values()].filter((x) => x.subscribed).length >= MAX_CONTROL_TOPICS) throw new PqnetError('INVALID_ARGUMENT', `at most ${MAX_CONTROL_TOPICS} topics can be subscribed at once`);
    t.subscribed = true;
    for (const p of this.#peers.values()) this.#ctl(p).sub.push(topic);
    // Fanout peers first (they already get our items), then random others.
    const candidates = [...(t.fanout ?? [])].filter((id) => this.#meshable(t, id, now));
    const others = this.#shuffle([...t.peers].filter((id) => !candidates.includes(id) && this.#meshable(t, id, now)));
    if (!this.params.flood) for (const id of [...candidates, ...others].slice(0, this.params.D)) this.#graft(t, id, now);
    t.fanout = undefined;
    return this.#take();
  }

  /** Leave a topic: PRUNE the mesh and tell every peer. */
  unsubscribe(topic: string, now: number): GossipAction[] {
    const t = this.#topics.get(topic);
    if (t === undefined || !t.subscribed) return [];
    t.subscribed = false;
    for (const id of [...t.mesh]) this.#prune(t, id, now, this.params.unsubscribeBackoffMs);
    for (const p of this.#peers.values()) this.#ctl(p).unsub.push(topic);
    return this.#take();
  }

  subscribed(topic: string): boolean {
    return this.#topics.get(topic)?.subscribed === true;
  }

  /**
   * Send a local item. The caller has validated it. Throws GOSSIP_UNKNOWN_TOPIC,
   * GOSSIP_OVERSIZE (INVALID_ARGUMENT-like: the caller's mistake) or
   * GOSSIP_DUPLICATE (the item was already seen).
   */
  publish(topic: string, payload: Uint8Array, now: number): { id: Uint8Array; actions: GossipAction[] } {
    const spec = this.topics.get(topic);
    if (spec === undefined) throw new PqnetError('GOSSIP_UNKNOWN_TOPIC', `topic ${JSON.stringify(topic)} is not registered`);
    if (payload.length > spec.maxBytes) throw new PqnetError('GOSSIP_OVERSIZE', `${topic}: ${payload.length} bytes > ${spec.maxBytes}`);
    const t = this.#topic(topic);
    const id = this.topics.msgId(spec, payload);
    const key = idKey(id);
    if (this.#seen.has(key, now)) throw new PqnetError('GOSSIP_DUPLICATE', `${topic}: item ${key} already seen`);
    this.#seen.set(key, { firstAt: now, status: 'accepted' }, now);
    this.#mcache.put(key, id, topic, payload);
    t.published++;
    let targets: string[];
    if (this.params.flood || this.params.floodPublish) targets = [...t.peers].filter((p) => this.#listening(p));
    else if (t.subscribed) targets = [...t.mesh];
    else targets = [...this.#fanout(t, now)];
    if (!t.subscribed) t.fanoutLastPublish = now;
    this.#send(t, key, id, payload, targets, now, true);
    return { id, actions: this.#take() };
  }

  // ================================================================ inputs: from peers

  /** An item pushed by (or fetched from) `from`. */
  onItem(from: string, topic: string, payload: Uint8Array, now: number): GossipAction[] {
    const p = this.#peers.get(from);
    if (p === undefined) return [];
    const spec = this.topics.get(topic);
    const t = spec === undefined ? undefined : this.#topic(topic);
    if (t === undefined) return this.#count(undefined, 'unknown_topic');
    if (!this.#listening(from)) return this.#count(t, 'greylisted');
    if (!t.subscribed) return this.#count(t, 'unsubscribed');
    if (payload.length > t.spec.maxBytes) {
      this.#penalize(from, 'GOSSIP_OVERSIZE', `${topic}: ${payload.length} bytes > ${t.spec.maxBytes}`);
      return this.#count(t, 'oversize');
    }
    let id: Uint8Array;
    try {
      id = this.topics.msgId(t.spec, payload);
    } catch (e) {
      this.#penalize(from, 'GOSSIP_INVALID', `${topic}: no message id: ${(e as Error).message}`);
      return this.#count(t, 'rejected');
    }
    const key = idKey(id);
    const solicited = this.#pull.get(key);
    if (solicited === undefined && !this.#bucket(p.buckets, t.spec, now).take(now)) {
      this.#penalize(from, 'GOSSIP_RATE_LIMITED', `${topic}: over ${t.spec.rate.count} per ${t.spec.rate.perMs} ms`);
      return this.#count(t, 'rate_limited');
    }
    const rec = this.#seen.get(key, now);
    if (rec !== undefined) return this.#duplicate(t, rec, from, key, now);
    if (this.#validating.size >= this.params.maxPendingValidations) return this.#count(t, 'throttled');
    this.#pull.settle(key);
    const haves = solicited === undefined ? [] : [solicited.peer, ...solicited.alternates];
    this.#seen.set(key, { firstAt: now, status: 'pending' }, now);
    this.#validating.set(key, { topic, from, id, payload, firstAt: now, haves, solicited: solicited !== undefined });
    if (payload.length >= t.spec.idontwantMinBytes) {
      for (const m of t.mesh) if (m !== from) this.#ctl(this.#peers.get(m)!).idontwant.push(id);
    }
    this.#out.push({ type: 'validate', key, topic, id, payload, from });
    return this.#take();
  }

  /** The validator's verdict on an item `onItem` asked about. */
  validated(key: string, outcome: Validation, now: number): GossipAction[] {
    const v = this.#validating.get(key);
    if (v === undefined) return [];
    this.#validating.delete(key);
    const t = this.#topic(v.topic);
    const rec = this.#seen.get(key, now);
    const status = outcome === 'accept' ? 'accepted' : outcome === 'ignore' ? 'ignored' : 'rejected';
    // The seen entry may have expired while the validator ran: it comes back, so a late copy is still a duplicate.
    if (rec !== undefined) rec.status = status;
    else this.#seen.set(key, { firstAt: v.firstAt, status }, now);
    if (outcome === 'reject') {
      this.#invalid(t, v.from);
      return this.#count(t, 'rejected');
    }
    if (outcome === 'ignore') return this.#count(t, 'ignored');
    t.received.accepted++;
    this.#scores.firstDelivery(v.from, t.spec.name, t.spec.score);
    if (t.mesh.has(v.from)) this.#scores.counters(v.from, t.spec.name).meshDeliveries++;
    if (t.subscribed && t.choke.enabled && !this.params.flood) this.#chokeOnFirst(t, v, now);
    this.#mcache.put(key, v.id, t.spec.name, v.payload);
    const held = this.#mcache.get(key)?.holders;
    held?.add(v.from);
    for (const h of v.haves) held?.add(h);
    this.#out.push({ type: 'deliver', topic: t.spec.name, id: v.id, payload: v.payload, from: v.from, receivedAt: v.firstAt });
    if (!t.subscribed) return this.#take();
    const targets = this.params.flood ? [...t.peers] : [...t.mesh];
    this.#send(t, key, v.id, v.payload, targets.filter((id) => id !== v.from && !v.haves.includes(id)), now);
    return this.#take();
  }

  onControl(from: string, c: Control, now: number): GossipAction[] {
    const p = this.#peers.get(from);
    if (p === undefined) return [];
    for (const topic of c.sub) this.#peerJoined(p, topic);
    for (const topic of c.unsub) this.#peerLeft(p, topic);
    if (!this.#listening(from)) return this.#take();
    for (const topic of c.graft) this.#onGraft(p, topic, now);
    for (const [topic, backoffS] of c.prune) this.#onPrune(p, topic, backoffS, now);
    for (const [topic, ids] of c.ihave) this.#onIHave(p, topic, ids, now);
    if (c.iwant.length > 0) this.#onIWant(p, c.iwant);
    for (const id of c.idontwant.slice(0, this.params.maxIDontWant)) p.dontWant.set(idKey(id), true, now);
    this.#control.idontwant[1] += c.idontwant.length;
    for (const topic of c.choke) this.#onChoke(p, topic, true);
    for (const topic of c.unchoke) this.#onChoke(p, topic, false);
    return this.#take();
  }

  // ================================================================ time

  /** When `tick` must next run (heartbeat or an IWANT deadline); undefined while idle. */
  nextDeadline(): number | undefined {
    const at = this.#nextHeartbeat;
    const w = this.#pull.nextDeadline();
    return at === undefined || (w !== undefined && w < at) ? w : at;
  }

  tick(now: number): GossipAction[] {
    const { broken, asks } = this.#pull.expire(now);
    for (const n of broken.values()) this.#brokenPromises += n;
    this.#ask(asks);
    // One penalty per peer and tick, however many items it failed to deliver (a full queue loses many at once).
    for (const [peer, n] of broken) this.#penalize(peer, 'GOSSIP_BROKEN_PROMISE', `${n} item(s) offered by IHAVE not delivered after IWANT`);
    if (this.#nextHeartbeat !== undefined && now >= this.#nextHeartbeat) {
      this.#heartbeat(now);
      this.#nextHeartbeat = this.#peers.size > 0 || [...this.#topics.values()].some((t) => t.subscribed) ? now + this.params.heartbeatMs : undefined;
    }
    return this.#take();
  }

  // ================================================================ queries

  meshPeers(topic: string): string[] {
    return [...(this.#topics.get(topic)?.mesh ?? [])];
  }

  fanoutPeers(topic: string): string[] {
    return [...(this.#topics.get(topic)?.fanout ?? [])];
  }

  /** Is `peerId` subscribed to `topic` (O(1))? */
  isSubscriber(topic: string, peerId: string): boolean {
    return this.#topics.get(topic)?.peers.has(peerId) === true;
  }

  /** Has the item `payload` of `topic` been seen (published, received or being validated)? Throws GOSSIP_UNKNOWN_TOPIC. */
  seen(topic: string, payload: Uint8Array, now: number): boolean {
    const spec = this.topics.get(topic);
    if (spec === undefined) throw new PqnetError('GOSSIP_UNKNOWN_TOPIC', `topic ${JSON.stringify(topic)} is not registered`);
    return this.#seen.has(idKey(this.topics.msgId(spec, payload)), now);
  }

  topicPeers(topic: string): string[] {
    return [...(this.#topics.get(topic)?.peers ?? [])];
  }

  peerStatus(peerId: string, now: number): GossipPeerStatus | undefined {
    const p = this.#peers.get(peerId);
    if (p === undefined) return undefined;
    const ts = [...this.#topics.values()];
    const names = (f: (t: TopicState) => boolean): string[] => ts.filter(f).map((t) => t.spec.name);
    const mesh = names((t) => t.mesh.has(peerId));
    const choking = names((t) => t.choke.choking.has(peerId));
    const chokedBy = names((t) => t.choke.chokedBy.has(peerId));
    return { peerId, outbound: p.outbound, topics: [...p.topics], mesh, choking, chokedBy, scores: this.#scores.snapshot(peerId, now, (n) => this.topics.get(n)?.score) };
  }

  stats(): RouterStats {
    const topics: Record<string, TopicStats> = {};
    for (const [name, t] of this.#topics) {
      topics[name] = {
        published: t.published, received: { ...t.received }, sent: t.sent, announced: t.announced, mesh: t.mesh.size, fanout: t.fanout?.size ?? 0, peers: t.peers.size,
        choking: t.choke.choking.size, chokedBy: t.choke.chokedBy.size,
      };
    }
    const c = this.#control;
    const pair = (x: number[]): { sent: number; received: number } => ({ sent: x[0]!, received: x[1]! });
    return {
      topics,
      control: Object.fromEntries(Object.entries(c).map(([k, v]) => [k, pair(v)])) as RouterStats['control'],
      ihaveIds: this.#ihaveIds,
      brokenPromises: this.#brokenPromises,
      pendingValidations: this.#validating.size,
      wanted: this.#pull.size,
      seen: this.#seen.size,
      cached: this.#mcache.size,
    };
  }

  // ================================================================ internals: items

  #duplicate(t: TopicState, rec: SeenRecord, from: string, key: string, now: number): GossipAction[] {
    this.#mcache.get(key)?.holders.add(from);
    if (rec.status === 'rejected') this.#invalid(t, from);
    else if (t.mesh.has(from) && rec.status !== 'ignored') {
      if (now - rec.firstAt <= t.spec.score.meshDeliveryWindowMs) this.#scores.counters(from, t.spec.name).meshDeliveries++;
      if (rec.status === 'accepted') t.choke.duplicate(from);
    }
    return this.#count(t, 'duplicate');
  }

  #invalid(t: TopicState, from: string): void {
    this.#scores.counters(from, t.spec.name).invalid++;
    const times = t.spec.score.invalidWeight * t.spec.score.weight;
    if (times > 0) this.#out.push({ type: 'penalize', peer: from, reason: 'GOSSIP_INVALID', detail: `${t.spec.name}: invalid item`, times });
  }

  /**
   * Push (or announce, for large items, members that choked us unless we are
   * the origin, or a full outbound bucket) to `targets`.
   */
  #send(t: TopicState, key: string, id: Uint8Array, payload: Uint8Array, targets: string[], now: number, origin = false): void {
    const announce = payload.length >= t.spec.announceMinBytes;
    const held = this.#mcache.get(key)?.holders;
    let n = 0;
    for (const peerId of targets) {
      const p = this.#peers.get(peerId);
      if (p === undefined || !this.#listening(peerId) || p.dontWant.has(key, now)) continue;
      n++;
      held?.add(peerId);
      if (!announce && (origin || !t.choke.chokedBy.has(peerId)) && this.#bucket(p.outBuckets, t.spec, now, this.params.outboundRateMargin).take(now)) {
        t.sent++;
        this.#out.push({ type: 'item', peer: peerId, topic: t.spec.name, payload });
      } else {
        t.announced++;
        this.#addIHave(p, t.spec.name, id);
      }
    }
    this.#out.push({ type: 'forwarded', topic: t.spec.name, peers: n });
  }

  #onIHave(p: PeerState, topic: string, ids: Uint8Array[], now: number): void {
    this.#control.ihave[1]++;
    const t = this.#topics.get(topic);
    if (t === undefined || !t.subscribed) return;
    if (t.choke.choking.has(p.id)) {
      // We asked it to announce instead of pushing: its IHAVEs come per item, bounded by ids per heartbeat.
      p.chokedIdsThisBeat += ids.length;
      if (p.chokedIdsThisBeat > this.params.maxIHaveLength) {
        if (p.chokedIdsThisBeat - ids.length <= this.params.maxIHaveLength) this.#penalize(p.id, 'GOSSIP_CONTROL_FLOOD', `more than ${this.params.maxIHaveLength} announced ids in one heartbeat`);
        return;
      }
    } else if (++p.ihaveThisBeat > this.params.maxIHaveMessages) {
      if (p.ihaveThisBeat === this.params.maxIHaveMessages + 1) this.#penalize(p.id, 'GOSSIP_CONTROL_FLOOD', `more than ${this.params.maxIHaveMessages} IHAVE in one heartbeat`);
      return;
    }
    for (const id of ids) {
      const key = idKey(id);
      if (this.#seen.has(key, now)) {
        this.#mcache.get(key)?.holders.add(p.id);
        continue;
      }
      if (this.#pull.offer(key, topic, p.id, now, p.iwantThisBeat < this.params.maxIHaveLength) !== 'asked') continue;
      p.iwantThisBeat++;
      this.#ctl(p).iwant.push(id);
    }
  }

  /** A first delivery in a choking topic: unchoke a choked member that beat our pushers; close the window when due. */
  #chokeOnFirst(t: TopicState, v: Validating, now: number): void {
    if (v.solicited && t.choke.choking.has(v.from)) this.#unchoke(t, v.from, now);
    if (!t.choke.first(t.mesh.has(v.from) ? v.from : undefined)) return;
    const { choke, unchoke } = t.choke.decide(t.mesh, now, this.#random);
    for (const id of choke) {
      const p = this.#peers.get(id);
      if (p !== undefined) this.#ctl(p).choke.push(t.spec.name);
    }
    const p = unchoke === undefined ? undefined : this.#peers.get(unchoke);
    if (p !== undefined) this.#ctl(p).unchoke.push(t.spec.name);
  }

  #unchoke(t: TopicState, peerId: string, now: number): void {
    const p = this.#peers.get(peerId);
    if (p !== undefined && t.choke.unchoke(peerId, now)) this.#ctl(p).unchoke.push(t.spec.name);
  }

  /** CHOKE / UNCHOKE from a mesh member: announce instead of pushing to it, or push again. */
  #onChoke(p: PeerState, topic: string, choke: boolean): void {
    this.#control[choke ? 'choke' : 'unchoke'][1]++;
    const t = this.#topics.get(topic);
    if (t === undefined || !t.mesh.has(p.id)) return;
    if (choke) t.choke.chokedBy.add(p.id);
    else t.choke.chokedBy.delete(p.id);
  }

  #onIWant(p: PeerState, ids: Uint8Array[]): void {
    this.#control.iwant[1]++;
    for (const id of ids) {
      const it = this.#mcache.get(idKey(id));
      if (it === undefined) continue;
      const n = it.served.get(p.id) ?? 0;
      if (n >= this.params.gossipRetransmission) continue;
      it.served.set(p.id, n + 1);
      it.holders.add(p.id);
      const t = this.#topics.get(it.topic);
      if (t !== undefined) t.sent++;
      this.#out.push({ type: 'item', peer: p.id, topic: it.topic, payload: it.payload });
    }
  }

  /** IWANT to the next offerers of items whose asked peer failed or left. */
  #ask(asks: readonly Ask[]): void {
    for (const [key, peer] of asks) {
      const p = this.#peers.get(peer);
      if (p === undefined) this.#pull.settle(key);
      else this.#ctl(p).iwant.push(Buffer.from(key, 'hex'));
    }
  }

  // ================================================================ internals: mesh

  #peerJoined(p: PeerState, topic: string): void {
    if (this.topics.get(topic) === undefined || p.topics.has(topic)) return;
    if (p.topics.size >= this.params.maxTopicsPerPeer) return;
    p.topics.add(topic);
    this.#topic(topic).peers.add(p.id);
  }

  #peerLeft(p: PeerState, topic: string): void {
    p.topics.delete(topic);
    const t = this.#topics.get(topic);
    if (t === undefined) return;
    t.peers.delete(p.id);
    this.#leaveMesh(t, p.id);
    t.fanout?.delete(p.id);
  }

  #onGraft(p: PeerState, topic: string, now: number): void {
    this.#control.graft[1]++;
    const t = this.#topics.get(topic);
    if (t === undefined || !t.subscribed || this.params.flood) {
      if (t !== undefined) this.#prune(t, p.id, now, this.params.pruneBackoffMs);
      return;
    }
    if (t.mesh.has(p.id)) return;
    const until = t.backoff.get(p.id);
    if (until !== undefined && until > now) {
      this.#penalize(p.id, 'GOSSIP_GRAFT_BACKOFF', `${topic}: GRAFT ${Math.ceil(until - now)} ms before the backoff ends`);
      this.#prune(t, p.id, now, this.params.pruneBackoffMs);
      return;
    }
    if (!this.#meshable(t, p.id, now, true) || (t.mesh.size >= this.params.Dhi && !p.outbound)) {
      this.#prune(t, p.id, now, this.params.pruneBackoffMs);
      return;
    }
    p.topics.add(topic);
    t.peers.add(p.id);
    this.#joinMesh(t, p.id, now);
  }

  #onPrune(p: PeerState, topic: string, backoffS: number, now: number): void {
    this.#control.prune[1]++;
    const t = this.#topics.get(topic);
    if (t === undefined) return;
    this.#leaveMesh(t, p.id);
    t.backoff.set(p.id, now + (backoffS > 0 ? Math.min(backoffS, MAX_BACKOFF_S) * 1000 : this.params.pruneBackoffMs));
  }

  #graft(t: TopicState, peerId: string, now: number): void {
    this.#joinMesh(t, peerId, now);
    this.#ctl(this.#peers.get(peerId)!).graft.push(t.spec.name);
    this.#control.graft[0]++;
  }

  #prune(t: TopicState, peerId: string, now: number, backoffMs: number): void {
    this.#leaveMesh(t, peerId);
    t.backoff.set(peerId, now + backoffMs);
    const p = this.#peers.get(peerId);
    if (p === undefined) return;
    this.#ctl(p).prune.push([t.spec.name, Math.ceil(backoffMs / 1000)]);
    this.#control.prune[0]++;
  }

  #joinMesh(t: TopicState, peerId: string, now: number): void {
    t.mesh.add(peerId);
    const c = this.#scores.counters(peerId, t.spec.name);
    c.meshSince = now;
    c.meshTimePoints = 0;
    c.meshDeliveries = 0;
    const p = this.#peers.get(peerId);
    if (p === undefined) return;
    if (t.choke.joined(peerId, t.mesh, now)) this.#ctl(p).choke.push(t.spec.name);
    // Items that went out before it joined reached neither it (not a member) nor its IHAVE (members get none): offer them now.
    for (const it of this.#mcache.gossipItems(t.spec.name, this.params.maxIHaveLength)) {
      if (it.holders.has(peerId)) continue;
      it.holders.add(peerId);
      this.#addIHave(p, t.spec.name, it.id);
    }
  }

  #leaveMesh(t: TopicState, peerId: string): void {
    if (!t.mesh.delete(peerId)) return;
    t.choke.left(peerId);
    const c = this.#scores.peek(peerId, t.spec.name);
    if (c !== undefined) c.meshSince = undefined;
  }

  /** May `peerId` be (or stay) in `t`'s mesh? `asked`: it asked to (GRAFT), so its subscription is implied. */
  #meshable(t: TopicState, peerId: string, now: number, asked = false): boolean {
    if (!this.#peers.has(peerId) || (!asked && !t.peers.has(peerId))) return false;
    const until = t.backoff.get(peerId);
    if (until !== undefined && until > now) return false;
    return this.#score(peerId) >= this.params.meshMinScore;
  }

  #fanout(t: TopicState, now: number): Set<string> {
    if (t.fanout === undefined) {
      t.fanout = new Set(this.#shuffle([...t.peers].filter((id) => this.#meshable(t, id, now))).slice(0, this.params.D));
    }
    return t.fanout;
  }

  #heartbeat(now: number): void {
    this.#heartbeats++;
    const P = this.params;
    for (const p of this.#peers.values()) {
      p.ihaveThisBeat = 0;
      p.iwantThisBeat = 0;
      p.chokedIdsThisBeat = 0;
      p.dontWant.prune(now);
    }
    for (const t of this.#topics.values()) {
      for (const [id, until] of t.backoff) if (until <= now) t.backoff.delete(id);
      if (t.subscribed && !P.flood) maintainMesh(this.#mesh, t, now);
      if (!t.subscribed && t.fanout !== undefined) {
        if (now - t.fanoutLastPublish > P.fanoutTtlMs) t.fanout = undefined;
        else {
          for (const id of t.fanout) if (!t.peers.has(id) || !this.#listening(id)) t.fanout.delete(id);
          if (t.fanout.size < P.D) {
            for (const id of this.#shuffle([...t.peers].filter((x) => !t.fanout!.has(x) && this.#meshable(t, x, now))).slice(0, P.D - t.fanout.size)) t.fanout.add(id);
          }
        }
      }
      if (!P.flood && (t.subscribed || t.fanout !== undefined)) emitGossip(this.#mesh, t, this.#mcache.gossipItems(t.spec.name, MAX_CONTROL_IDS));
    }
    const rewards = this.#scores.heartbeat(now, (n) => this.topics.get(n)?.score);
    for (const [peer, points] of rewards) if (this.#peers.has(peer)) this.#out.push({ type: 'reward', peer, points });
    this.#mcache.shift();
    this.#seen.prune(now);
  }

  // ================================================================ internals: helpers

  #topic(name: string): TopicState {
    let t = this.#topics.get(name);
    if (t === undefined) {
      const spec = this.topics.get(name);
      if (spec === undefined) throw new PqnetError('GOSSIP_UNKNOWN_TOPIC', `topic ${JSON.stringify(name)} is not registered`);
      t = {
        spec, mesh: new Set(), fanout: undefined, fanoutLastPublish: 0, subscribed: false, peers: new Set(), backoff: new Map(),
        choke: new ChokeTracker(this.params.flood ? 0 : this.params.Dunchoked, this.params.chokeWindow, this.params.unchokeExploreWindows),
        published: 0, sent: 0, announced: 0, received: zeroOutcomes(),
      };
      this.#topics.set(name, t);
    }
    return t;
  }

  /** The greylist rule: no items or control to or from a peer below the greylist score. */
  #listening(peerId: string): boolean {
    return this.#peers.has(peerId) && this.#score(peerId) >= this.params.greylistScore;
  }

  #bucket(m: Map<string, TokenBucket>, spec: TopicSpec, now: number, margin = 1): TokenBucket {
    let b = m.get(spec.name);
    if (b === undefined) m.set(spec.name, (b = new TokenBucket(((spec.rate.count * 1000) / spec.rate.perMs) * margin, Math.max(1, spec.rate.burst * margin), now)));
    return b;
  }

  #addIHave(p: PeerState, topic: string, id: Uint8Array): void {
    const c = this.#ctl(p);
    let entry = c.ihave.find(([name]) => name === topic);
    if (entry === undefined) c.ihave.push((entry = [topic, []]));
    if (entry[1].length < MAX_CONTROL_IDS) entry[1].push(id);
  }

  #ctl(p: PeerState): Control {
    this.#dirty.add(p);
    return (p.control ??= emptyControl());
  }

  #penalize(peer: string, reason: Reason, detail: string): void {
    this.#out.push({ type: 'penalize', peer, reason, detail, times: 1 });
  }

  #count(t: TopicState | undefined, outcome: ItemOutcome): GossipAction[] {
    if (t !== undefined) t.received[outcome]++;
    return this.#take();
  }

  #shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = uniformInt(this.#random, i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  /** The actions so far, with each peer's pending control as one message. */
  #take(): GossipAction[] {
    for (const p of this.#dirty) {
      const c = p.control;
      p.control = undefined;
      if (c === undefined || isEmptyControl(c) || !this.#peers.has(p.id)) continue;
      if (c.ihave.length > 0) this.#control.ihave[0]++;
      this.#control.choke[0] += c.choke.length;
      this.#control.unchoke[0] += c.unchoke.length;
      if (c.iwant.length > 0) this.#control.iwant[0]++;
      this.#control.idontwant[0] += c.idontwant.length;
      for (const [, ids] of c.ihave) {
        if (ids.length > MAX_CONTROL_IDS) ids.length = MAX_CONTROL_IDS;
        this.#ihaveIds += ids.length;
      }
      if (c.iwant.length > MAX_CONTROL_IDS) c.iwant.length = MAX_CONTROL_IDS;
      if (c.idontwant.length > MAX_CONTROL_IDS) c.idontwant.length = MAX_CONTROL_IDS;
      this.#out.push({ type: 'control', peer: p.id, control: c });
    }
    this.#dirty.clear();
    const out = this.#out;
    this.#out = [];
    return out;
  }
}
