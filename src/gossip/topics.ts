/**
 * Gossip topics (docs/spec/gossip.md): what each topic carries, how large an
 * item may be, how many items one peer may send per unit of time, which
 * priority class (and so which mux channel) its items travel in, how its
 * message ids are made and how much its scores weigh.
 *
 * The seven built-in topics have defaults here; applications register more
 * (or override these) through `TopicTable`. Validators are not part of a
 * topic's specification: they are functions of the application and are
 * bound where the router meets I/O (src/node/gossip.ts).
 */
import { createHash } from 'node:crypto';
import { PqnetError } from '../core/errors.ts';

/** Priority classes, highest first: each maps to a mux channel (src/gossip/messages.ts). */
export const PRIORITIES = ['consensus', 'gossip', 'blocks', 'transactions', 'bulk'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** The largest item a topic of each class may carry (the cap of the class's message type). */
export const CLASS_MAX_BYTES: Readonly<Record<Priority, number>> = Object.freeze({
  consensus: 256 * 1024,
  gossip: 1024 * 1024,
  blocks: 8 * 1024 * 1024,
  transactions: 1024 * 1024,
  bulk: 8 * 1024 * 1024,
});

/** Bytes of a default message id: SHA3-256(topic || 0x00 || payload), truncated. */
export const MSG_ID_BYTES = 20;
/** A topic-defined id may be 1..MAX_MSG_ID_BYTES bytes. */
export const MAX_MSG_ID_BYTES = 32;
/** Topic names: 1–64 bytes of lower-case letters, digits, `/ _ . -`. */
export const TOPIC_NAME = /^[a-z0-9/_.-]{1,64}$/;

/** A token bucket per peer and topic: `count` items per `perMs`, bursts of `burst` items. */
export interface TopicRate {
  readonly count: number;
  readonly perMs: number;
  readonly burst: number;
}

/**
 * Per-topic score weights (GossipSub v1.1's P1, P2, P3 and P4, on pqnet's
 * 0–100 peer score). The router feeds them into the peer score as rewards and
 * penalties and ranks mesh members by them.
 */
export interface TopicScoreParams {
  /** Weight of this topic's score in the peer's gossip score. */
  readonly weight: number;
  /** P1: points per `meshTimeQuantumMs` in the mesh, up to `meshTimeCap` points. */
  readonly meshTimeQuantumMs: number;
  readonly meshTimeCap: number;
  /** P2: points per first delivery of a valid item; the counter decays by `firstDeliveryDecay` each heartbeat and stops at `firstDeliveryCap`. */
  readonly firstDeliveryPoints: number;
  readonly firstDeliveryCap: number;
  readonly firstDeliveryDecay: number;
  /**
   * P3: a mesh member that delivered fewer than `meshDeliveryThreshold` items
   * (decaying counter; first deliveries and those within
   * `meshDeliveryWindowMs` of the first count) after `meshDeliveryActivationMs`
   * in the mesh is pruned. 0 turns P3 off: topics whose rate is low or bursty
   * cannot tell a quiet peer from a dropper.
   */
  readonly meshDeliveryThreshold: number;
  readonly meshDeliveryWindowMs: number;
  readonly meshDeliveryActivationMs: number;
  readonly meshDeliveryDecay: number;
  /** P4: the penalty multiplier of an invalid item (times the GOSSIP_INVALID penalty); the counter decays by `invalidDecay` per heartbeat. */
  readonly invalidWeight: number;
  readonly invalidDecay: number;
}

export interface TopicSpec {
  readonly name: string;
  readonly priority: Priority;
  /** Largest payload accepted, in bytes (at most `CLASS_MAX_BYTES[priority]`). */
  readonly maxBytes: number;
  readonly rate: TopicRate;
  /**
   * Items at least this large are announced to mesh peers (IHAVE at once) and
   * pulled by IWANT, instead of pushed; Infinity pushes everything.
   */
  readonly announceMinBytes: number;
  /** Items at least this large make the receiver send IDONTWANT to its other mesh peers. */
  readonly idontwantMinBytes: number;
  /** The message id; the default is `defaultMsgId(name, payload)`. Must be 1..MAX_MSG_ID_BYTES bytes. */
  readonly msgId?: (payload: Uint8Array) => Uint8Array;
  readonly score: TopicScoreParams;
}

export const DEFAULT_TOPIC_SCORE: TopicScoreParams = Object.freeze({
  weight: 1,
  meshTimeQuantumMs: 60_000,
  meshTimeCap: 5,
  firstDeliveryPoints: 0.2,
  firstDeliveryCap: 25,
  firstDeliveryDecay: 0.9,
  meshDeliveryThreshold: 0,
  meshDeliveryWindowMs: 2_000,
  meshDeliveryActivationMs: 10_000,
  meshDeliveryDecay: 0.97,
  invalidWeight: 1,
  invalidDecay: 0.99,
});

const KiB = 1024;
const MiB = 1024 * KiB;

function rate(count: number, perMs: number, burst: number): TopicRate {
  return Object.freeze({ count, perMs, burst });
}

function builtIn(name: string, priority: Priority, maxBytes: number, r: TopicRate, extra: Partial<TopicSpec> = {}): TopicSpec {
  return Object.freeze({
    name, priority, maxBytes, rate: r,
    announceMinBytes: 64 * KiB,
    idontwantMinBytes: 8 * KiB,
    score: DEFAULT_TOPIC_SCORE,
    ...extra,
  });
}

/**
 * The built-in topics. Rates are per sending peer: a whole network's traffic
 * on a topic has to fit, since every peer forwards every item.
 */
export const DEFAULT_TOPICS: readonly TopicSpec[] = Object.freeze([
  builtIn('blocks', 'blocks', 4 * MiB, rate(60, 60_000, 10)),
  builtIn('headers', 'gossip', 64 * KiB, rate(120, 60_000, 20)),
  builtIn('txs', 'transactions', 128 * KiB, rate(200, 1_000, 400)),
  builtIn('votes', 'consensus', 16 * KiB, rate(1_000, 1_000, 2_000)),
  builtIn('shares', 'gossip', 64 * KiB, rate(50, 1_000, 100)),
  builtIn('blobs', 'bulk', 1 * MiB, rate(10, 1_000, 20)),
  builtIn('peers', 'gossip', 8 * KiB, rate(10, 1_000, 20)),
]);

/** SHA3-256(topic || 0x00 || payload), first MSG_ID_BYTES bytes. */
export function defaultMsgId(topic: string, payload: Uint8Array): Uint8Array {
  const h = createHash('sha3-256').update(topic).update(ZERO).update(payload).digest();
  return new Uint8Array(h.buffer, h.byteOffset, MSG_ID_BYTES);
}
const ZERO = new Uint8Array(1);

/** Check a topic specification; throws INVALID_ARGUMENT naming the field. */
export function checkTopic(t: TopicSpec): TopicSpec {
  const bad = (what: string): never => {
    throw new PqnetError('INVALID_ARGUMENT', `topic ${JSON.stringify(t.name)}: ${what}`);
  };
  if (!TOPIC_NAME.test(t.name)) bad('name must be 1-64 characters of a-z 0-9 / _ . -');
  if (!PRIORITIES.includes(t.priority)) bad(`priority must be one of ${PRIORITIES.join(', ')}`);
  if (!Number.isInteger(t.maxBytes) || t.maxBytes < 1 || t.maxBytes > CLASS_MAX_BYTES[t.priority]) bad(`maxBytes must be 1..${CLASS_MAX_BYTES[t.priority]} for priority ${t.priority}`);
  const r = t.rate;
  if (!(r.count > 0) || !(r.perMs > 0) || !(r.burst >= 1)) bad('rate needs count > 0, perMs > 0 and burst >= 1');
  if (!(t.announceMinBytes >= 1)) bad('announceMinBytes must be at least 1 (Infinity: never announce)');
  if (!(t.idontwantMinBytes >= 1)) bad('idontwantMinBytes must be at least 1 (Infinity: never)');
  const s = t.score;
  for (const [k, v] of Object.entries(s)) if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) bad(`score.${k} must be a finite number >= 0`);
  for (const k of ['firstDeliveryDecay', 'meshDeliveryDecay', 'invalidDecay'] as const) if (s[k] > 1) bad(`score.${k} must be at most 1`);
  if (s.meshTimeQuantumMs <= 0) bad('score.meshTimeQuantumMs must be positive');
  return t;
}

/** Topic specifications by name: the built-ins, then what the application adds or overrides. */
export class TopicTable {
  readonly #topics = new Map<string, TopicSpec>();

  constructor(topics: readonly TopicSpec[] = DEFAULT_TOPICS) {
    for (const t of topics) this.set(t);
  }

  /** Add or replace a topic; `spec` fields not given take the built-in defaults. */
  define(name: string, spec: Partial<Omit<TopicSpec, 'name' | 'score'>> & { score?: Partial<TopicScoreParams> } = {}): TopicSpec {
    const base = this.#topics.get(name) ?? builtIn(name, 'gossip', 64 * KiB, rate(100, 1_000, 200));
    return this.set({ ...base, ...spec, name, score: { ...base.score, ...spec.score } });
  }

  set(spec: TopicSpec): TopicSpec {
    const t = Object.freeze(checkTopic({ ...spec, score: Object.freeze({ ...spec.score }) }));
    this.#topics.set(t.name, t);
    return t;
  }

  get(name: string): TopicSpec | undefined {
    return this.#topics.get(name);
  }

  names(): string[] {
    return [...this.#topics.keys()];
  }

  /** The message id of `payload` on topic `t`, checked to be 1..MAX_MSG_ID_BYTES bytes. */
  msgId(t: TopicSpec, payload: Uint8Array): Uint8Array {
    if (t.msgId === undefined) return defaultMsgId(t.name, payload);
    const id = t.msgId(payload);
    if (!(id instanceof Uint8Array) || id.length < 1 || id.length > MAX_MSG_ID_BYTES) {
      throw new PqnetError('INTERNAL', `topic ${t.name}: msgId returned ${id instanceof Uint8Array ? `${id.length} bytes` : typeof id}, expected 1..${MAX_MSG_ID_BYTES} bytes`);
    }
    return id;
  }
}
