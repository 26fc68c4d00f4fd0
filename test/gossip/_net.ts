/**
 * A network of sans-I/O gossip routers for unit tests: actions are carried
 * between routers in FIFO order with no latency, time moves only through
 * `advance`, and every action is recorded so tests can assert on it.
 */
import { SeededRandom } from '../../src/core/random.ts';
import { controlFromWire, controlToWire, emptyControl, type Control } from '../../src/gossip/messages.ts';
import { GossipRouter, type GossipAction, type Validation } from '../../src/gossip/router.ts';
import type { GossipParams } from '../../src/gossip/params.ts';
import { TopicTable } from '../../src/gossip/topics.ts';
import type { Reason } from '../../src/core/errors.ts';

export interface Sent {
  readonly from: string;
  readonly to: string;
  readonly action: GossipAction;
}

export interface Penalty {
  readonly by: string;
  readonly peer: string;
  readonly reason: Reason;
  readonly times: number;
}

export class RouterNet {
  now = 0;
  readonly routers = new Map<string, GossipRouter>();
  readonly scores = new Map<string, Map<string, number>>();
  readonly validators = new Map<string, (topic: string, payload: Uint8Array) => Validation>();
  /** Nodes whose outgoing actions are dropped (they receive but never send). */
  readonly silent = new Set<string>();
  readonly sent: Sent[] = [];
  readonly validations: { node: string; topic: string; from: string }[] = [];
  readonly delivered: { node: string; topic: string; payload: Uint8Array; from: string }[] = [];
  readonly penalties: Penalty[] = [];
  readonly rewards: { by: string; peer: string; points: number }[] = [];
  readonly links = new Set<string>();
  readonly #queue: { from: string; action: GossipAction }[] = [];
  readonly #params: Partial<GossipParams>;
  readonly #topics: () => TopicTable;

  constructor(params: Partial<GossipParams> = {}, topics: () => TopicTable = () => new TopicTable()) {
    this.#params = params;
    this.#topics = topics;
  }

  add(name: string, params: Partial<GossipParams> = {}): GossipRouter {
    const scores = new Map<string, number>();
    this.scores.set(name, scores);
    const r = new GossipRouter({
      params: { ...this.#params, ...params },
      topics: this.#topics(),
      random: new SeededRandom(`router-${name}`),
      score: (peer) => scores.get(peer) ?? 50,
    });
    this.routers.set(name, r);
    return r;
  }

  get(name: string): GossipRouter {
    const r = this.routers.get(name);
    if (r === undefined) throw new Error(`no router ${name}`);
    return r;
  }

  /** `a` dials `b`. */
  connect(a: string, b: string): void {
    this.links.add(`${a}|${b}`).add(`${b}|${a}`);
    this.feed(a, this.get(a).addPeer(b, true, this.now));
    this.feed(b, this.get(b).addPeer(a, false, this.now));
    this.run();
  }

  disconnect(a: string, b: string): void {
    this.links.delete(`${a}|${b}`);
    this.links.delete(`${b}|${a}`);
    this.feed(a, this.get(a).removePeer(b, this.now));
    this.feed(b, this.get(b).removePeer(a, this.now));
    this.run();
  }

  subscribe(topic: string, ...names: string[]): void {
    for (const n of names.length > 0 ? names : [...this.routers.keys()]) this.feed(n, this.get(n).subscribe(topic, this.now));
    this.run();
  }

  publish(name: string, topic: string, payload: Uint8Array): Uint8Array {
    const { id, actions } = this.get(name).publish(topic, payload, this.now);
    this.feed(name, actions);
    this.run();
    return id;
  }

  /** Inject an item as if `from` had pushed it to `to`, bypassing `from`'s router. */
  inject(from: string, to: string, topic: string, payload: Uint8Array): void {
    this.feed(to, this.get(to).onItem(from, topic, payload, this.now));
    this.run();
  }

  injectControl(from: string, to: string, control: Partial<Control>): void {
    const c = controlFromWire(controlToWire({ ...emptyControl(), ...control }));
    this.feed(to, this.get(to).onControl(from, c, this.now));
    this.run();
  }

  /** Move time forward in `stepMs` steps, ticking every router at each step. */
  advance(ms: number, stepMs = 100): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + stepMs);
      for (const [n, r] of this.routers) {
        const d = r.nextDeadline();
        if (d !== undefined && d <= this.now) this.feed(n, r.tick(this.now));
      }
      this.run();
    }
  }

  feed(from: string, actions: GossipAction[]): void {
    for (const action of actions) this.#queue.push({ from, action });
  }

  run(maxSteps = 1_000_000): void {
    for (let i = 0; i < maxSteps && this.#queue.length > 0; i++) {
      const { from, action } = this.#queue.shift()!;
      this.#apply(from, action);
    }
    if (this.#queue.length > 0) throw new Error('router network did not settle');
  }

  #apply(from: string, a: GossipAction): void {
    const r = this.get(from);
    switch (a.type) {
      case 'item':
      case 'control': {
        if (this.silent.has(from) || !this.links.has(`${from}|${a.peer}`)) return;
        this.sent.push({ from, to: a.peer, action: a });
        const to = this.get(a.peer);
        this.feed(a.peer, a.type === 'item' ? to.onItem(from, a.topic, a.payload, this.now) : to.onControl(from, a.control, this.now));
        return;
      }
      case 'validate': {
        this.validations.push({ node: from, topic: a.topic, from: a.from });
        const v = this.validators.get(from)?.(a.topic, a.payload) ?? 'accept';
        this.feed(from, r.validated(a.key, v, this.now));
        return;
      }
      case 'deliver':
        this.delivered.push({ node: from, topic: a.topic, payload: a.payload, from: a.from });
        return;
      case 'penalize':
        this.penalties.push({ by: from, peer: a.peer, reason: a.reason, times: a.times });
        return;
      case 'reward':
        this.rewards.push({ by: from, peer: a.peer, points: a.points });
        return;
      case 'forwarded':
        return;
    }
  }

  items(filter: (s: Sent) => boolean = () => true): Sent[] {
    return this.sent.filter((s) => s.action.type === 'item' && filter(s));
  }

  controls(filter: (s: Sent & { control: Control }) => boolean = () => true): (Sent & { control: Control })[] {
    return this.sent
      .filter((s) => s.action.type === 'control')
      .map((s) => ({ ...s, control: (s.action as { control: Control }).control }))
      .filter(filter);
  }

  receivers(payload: Uint8Array): Set<string> {
    return new Set(this.delivered.filter((d) => Buffer.compare(d.payload, payload) === 0).map((d) => d.node));
  }
}

export function payloadOf(n: number, size = 100): Uint8Array {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** Full mesh of `n` nodes named n0..n{n-1}; node i dials every j > i. */
export function fullNet(n: number, params: Partial<GossipParams> = {}, topics?: () => TopicTable): RouterNet {
  const net = new RouterNet(params, topics);
  for (let i = 0; i < n; i++) net.add(`n${i}`);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) net.connect(`n${i}`, `n${j}`);
  return net;
}
