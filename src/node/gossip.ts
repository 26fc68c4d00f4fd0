/**
 * The I/O side of gossip (docs/spec/gossip.md): binds the sans-I/O
 * `GossipRouter` to a `Node`. It registers the gossip messages, feeds items
 * and control from peers that announce `pqnet/gossip/1` to the router, runs
 * the topic validators (synchronous or asynchronous), carries out what the
 * router returns (sends, penalties, rewards, deliveries) and ticks it on the
 * node's clock at its next deadline.
 *
 * Create it before `node.start()` (message types are registered then), with
 * `protocols` including `GOSSIP_PROTOCOL`. Peer scores come from the node,
 * so the greylist rule and mesh choices follow the node's one score.
 */
import { EventEmitter } from 'node:events';
import { DeadlineTimer, type Clock } from '../core/clock.ts';
import { PqnetError } from '../core/errors.ts';
import type { Random } from '../core/random.ts';
import { GOSSIP_PROTOCOL, gossipMessages, controlFromWire, controlToWire, type GossipItem } from '../gossip/messages.ts';
import type { GossipParams } from '../gossip/params.ts';
import { GossipRouter, type GossipAction, type GossipPeerStatus, type RouterStats, type Validation } from '../gossip/router.ts';
import { TopicTable, type TopicScoreParams, type TopicSpec } from '../gossip/topics.ts';
import type { MessageType } from '../wire/registry.ts';
import type { Node, PeerInfo } from './node.ts';

/** Judges an item from a peer: accept (deliver and forward), ignore (drop), reject (drop and penalise the sender). */
export type Validator = (payload: Uint8Array, from: string, topic: string) => Validation | Promise<Validation>;

export interface GossipMessage {
  readonly topic: string;
  readonly id: Uint8Array;
  readonly payload: Uint8Array;
  /** The peer that delivered it first. */
  readonly from: string;
  /** Milliseconds from its arrival to its acceptance (the validator's time). */
  readonly validationMs: number;
}

export interface GossipEvents {
  /** A valid item from a peer on a subscribed topic. */
  message: [msg: GossipMessage];
  /** An item went out to `peers` peers (the fanout of one hop). */
  forwarded: [topic: string, peers: number];
  /** A validator threw (the item was ignored) or another local failure; gossip carries on. */
  fault: [error: unknown];
}

export interface GossipOptions {
  readonly params?: Partial<GossipParams>;
  /** The topic table (default: the built-in topics). */
  readonly topics?: TopicTable;
  /** Mesh and gossip choices (default: the OS CSPRNG; the simulator passes a seeded one). */
  readonly random?: Random;
}

export class Gossip extends EventEmitter<GossipEvents> {
  readonly router: GossipRouter;
  readonly #node: Node;
  readonly #clock: Clock;
  readonly #validators = new Map<string, Validator>();
  readonly #timer: DeadlineTimer;
  #running = true;

  constructor(node: Node, clock: Clock, options: GossipOptions = {}) {
    super();
    this.#node = node;
    this.#clock = clock;
    this.#timer = new DeadlineTimer(clock, () => {
      if (this.#running) this.#run(this.router.tick(this.#clock.now()));
    });
    this.router = new GossipRouter({
      params: options.params,
      topics: options.topics,
      random: options.random,
      score: (peerId) => node.score(peerId),
    });
    for (const t of gossipMessages.types) node.register(t);
    const now = (): number => this.#clock.now();
    for (const type of Object.values(gossipMessages.item)) {
      this.#on(type, (peer, [topic, payload]: GossipItem) => this.router.onItem(peer, topic, payload, now()));
    }
    this.#on(gossipMessages.control, (peer, wire) => this.router.onControl(peer, controlFromWire(wire), now()));
    node.on('peer:active', (p) => this.#onActive(p));
    node.on('peer:closed', (p) => {
      if (this.#running && p.peerId !== undefined) this.#run(this.router.removePeer(p.peerId, now()));
    });
    for (const p of node.peers()) if (p.state === 'active') this.#onActive(p);
  }

  /** Add or change a topic (fields not given keep their current or built-in values). */
  define(name: string, spec: Partial<Omit<TopicSpec, 'name' | 'score'>> & { score?: Partial<TopicScoreParams> } = {}): TopicSpec {
    return this.router.topics.define(name, spec);
  }

  /** Set the validator of a topic; without one, every item within the topic's caps is accepted. */
  setValidator(topic: string, validator: Validator): void {
    if (this.router.topics.get(topic) === undefined) throw new PqnetError('GOSSIP_UNKNOWN_TOPIC', `topic ${JSON.stringify(topic)} is not registered`);
    this.#validators.set(topic, validator);
  }

  /** Has this item of `topic` been seen (published, received, or waiting for its validator)? Throws GOSSIP_UNKNOWN_TOPIC. */
  seen(topic: string, payload: Uint8Array): boolean {
    return this.router.seen(topic, payload, this.#clock.now());
  }

  /** The topic's validator, if one is set (the API runs it on local publishes). */
  validator(topic: string): Validator | undefined {
    return this.#validators.get(topic);
  }

  subscribe(topic: string): void {
    this.#run(this.router.subscribe(topic, this.#clock.now()));
  }

  unsubscribe(topic: string): void {
    this.#run(this.router.unsubscribe(topic, this.#clock.now()));
  }

  /**
   * Publish a local item (the caller vouches for it; it is not validated
   * here). Returns its message id. Throws GOSSIP_UNKNOWN_TOPIC,
   * GOSSIP_OVERSIZE or GOSSIP_DUPLICATE.
   */
  publish(topic: string, payload: Uint8Array): Uint8Array {
    const { id, actions } = this.router.publish(topic, payload, this.#clock.now());
    this.#run(actions);
    return id;
  }

  stats(): RouterStats {
    return this.router.stats();
  }

  peerStatus(peerId: string): GossipPeerStatus | undefined {
    return this.router.peerStatus(peerId, this.#clock.now());
  }

  /** Stop: messages are ignored and no timer is left. Idempotent. */
  stop(): void {
    this.#running = false;
    this.#timer.clear();
  }

  #on<T>(type: MessageType<T>, fn: (peer: string, value: T) => GossipAction[]): void {
    this.#node.subscribe(type, (value, peer) => {
      if (!this.#running || peer.peerId === undefined) return;
      this.#run(fn(peer.peerId, value));
    });
  }

  #onActive(p: PeerInfo): void {
    if (!this.#running || p.peerId === undefined || !p.protocols.includes(GOSSIP_PROTOCOL)) return;
    this.#run(this.router.addPeer(p.peerId, p.direction === 'outbound', this.#clock.now()));
  }

  #run(actions: GossipAction[]): void {
    for (const a of actions) this.#act(a);
    if (this.#running) this.#timer.arm(this.router.nextDeadline());
  }

  #act(a: GossipAction): void {
    const ignore = (): undefined => undefined; // a closed peer or a full queue: IHAVE/IWANT recovers the item
    switch (a.type) {
      case 'item': {
        const spec = this.router.topics.get(a.topic);
        if (spec !== undefined) this.#node.send(a.peer, gossipMessages.item[spec.priority], [a.topic, a.payload]).catch(ignore);
        return;
      }
      case 'control':
        this.#node.send(a.peer, gossipMessages.control, controlToWire(a.control)).catch(ignore);
        return;
      case 'validate':
        this.#validate(a.key, a.topic, a.payload, a.from);
        return;
      case 'deliver':
        this.emit('message', { topic: a.topic, id: a.id, payload: a.payload, from: a.from, validationMs: this.#clock.now() - a.receivedAt });
        return;
      case 'forwarded':
        this.emit('forwarded', a.topic, a.peers);
        return;
      case 'penalize':
        this.#node.penalize(a.peer, a.reason, a.detail, a.times);
        return;
      case 'reward':
        this.#node.reward(a.peer, a.points);
        return;
    }
  }

  #validate(key: string, topic: string, payload: Uint8Array, from: string): void {
    const v = this.#validators.get(topic);
    if (v === undefined) return this.#run(this.router.validated(key, 'accept', this.#clock.now()));
    const done = (outcome: Validation): void => {
      if (this.#running) this.#run(this.router.validated(key, outcome, this.#clock.now()));
    };
    const failed = (e: unknown): void => {
      this.emit('fault', e);
      done('ignore');
    };
    let r: Validation | Promise<Validation>;
    try {
      r = v(payload, from, topic);
    } catch (e) {
      return failed(e);
    }
    if (typeof r === 'string') done(r);
    else r.then(done, failed);
  }
}
