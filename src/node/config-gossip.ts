/**
 * The `[gossip]` configuration section (docs/CONFIG.md): whether the node runs
 * gossip, the topics it joins, mesh parameters, and `[gossip.topic.<name>]`
 * tables that define topics or change built-in ones. Resolved into the
 * router's checked `GossipParams` and `Gossip.define` specs; every bad value
 * is CONFIG_INVALID naming the operator's key and where it was set.
 */
import { z } from 'zod';
import { isPqnetError, Reasons } from '../core/errors.ts';
import { MAX_CONTROL_TOPICS } from '../gossip/messages.ts';
import { checkParams, DEFAULT_GOSSIP_PARAMS, type GossipParams } from '../gossip/params.ts';
import { CLASS_MAX_BYTES, PRIORITIES, TOPIC_NAME, TopicTable, type Priority, type TopicRate } from '../gossip/topics.ts';
import { configInvalid, count, list } from './config-schema.ts';

/** Topics a node joins at start unless `gossip.topics` says otherwise. */
export const DEFAULT_GOSSIP_TOPICS: readonly string[] = Object.freeze(['blocks', 'txs', 'votes']);

const topicName = z.string().regex(TOPIC_NAME, 'expected a topic name: 1 to 64 of a-z 0-9 / _ . -');

/** `[gossip.topic.<name>]`: a new topic, or changes to a built-in one (what is not given keeps its value). */
const gossipTopic = z.strictObject({
  max_bytes: count(1, Math.max(...Object.values(CLASS_MAX_BYTES))).optional(),
  rate_per_second: z.number().positive().max(1e6).optional(),
  burst: z.number().min(1).max(1e9).optional(),
  priority: z.enum(PRIORITIES).optional(),
});

/** The `[gossip]` mesh parameters an operator may set: config key → `GossipParams` field. */
const GOSSIP_PARAM_KEYS = { d: 'D', d_lo: 'Dlo', d_hi: 'Dhi', d_lazy: 'Dlazy', d_unchoked: 'Dunchoked', heartbeat_ms: 'heartbeatMs' } as const satisfies Record<string, keyof GossipParams>;

/** `[gossip]`. */
export const gossipSection = z.strictObject({
  enabled: z.boolean().default(true),
  /** Flood mode: no mesh, every item to every subscribed peer (small networks). */
  flood: z.boolean().default(false),
  /** Whether sync's blocks and transactions travel through the gossip topics. */
  chain: z.boolean().default(true),
  /** Topics joined at start. */
  topics: list(topicName).default([...DEFAULT_GOSSIP_TOPICS]),
  d: count(1, 1_000).optional(),
  d_lo: count(1, 1_000).optional(),
  d_hi: count(1, 1_000).optional(),
  d_lazy: count(0, 1_000).optional(),
  d_unchoked: count(0, 1_000).optional(),
  heartbeat_ms: count(10, 600_000).optional(),
  topic: z.record(topicName, gossipTopic).default({}),
});

/** A `[gossip.topic.<name>]` table in `Gossip.define` form: only what it sets. */
export interface GossipTopicConfig {
  readonly maxBytes?: number;
  readonly rate?: TopicRate;
  readonly priority?: Priority;
}

export interface GossipConfig {
  readonly enabled: boolean;
  /** Whether sync's blocks and transactions travel through the topics (src/node/chain-gossip.ts). */
  readonly chain: boolean;
  /** Topics joined at start. */
  readonly topics: readonly string[];
  /** `topics` was set (file, env or flag), not the default: the service joins them as asked. */
  readonly topicsSet: boolean;
  /** The router's parameters: the defaults with `flood` and the mesh settings applied, checked. */
  readonly params: GossipParams;
  /** Topics defined or changed by `[gossip.topic.<name>]`, as `Gossip.define` takes them. */
  readonly define: Readonly<Record<string, GossipTopicConfig>>;
}

/** Where a key, or any key below it (`gossip.topic.x` for `gossip.topic.x.burst`), came from. */
function sourceOf(sources: ReadonlyMap<string, string>, ...keys: string[]): string {
  const found = new Set<string>();
  for (const key of keys) {
    const below = [...sources].filter(([k]) => k.startsWith(`${key}.`)).map(([, from]) => from);
    const exact = sources.get(key);
    for (const from of below.length > 0 ? below : exact === undefined ? [] : [exact]) found.add(from);
  }
  return found.size === 0 ? 'default' : [...found].join(', ');
}

/** The message of an INVALID_ARGUMENT from the gossip checks, without the reason's description. */
function checkMessage(e: unknown): string {
  if (!isPqnetError(e)) throw e;
  const prefix = `${Reasons[e.code].description}: `;
  return e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
}

/** `GossipParams` names in checkParams' messages → the keys an operator writes. */
const GOSSIP_PARAM_NAMES: Readonly<Record<string, string>> = { D: 'gossip.d', Dlo: 'gossip.d_lo', D_low: 'gossip.d_lo', Dhi: 'gossip.d_hi', D_high: 'gossip.d_hi', Dlazy: 'gossip.d_lazy', Dunchoked: 'gossip.d_unchoked', heartbeatMs: 'gossip.heartbeat_ms' };

export function resolveGossip(g: z.output<typeof gossipSection>, sources: ReadonlyMap<string, string>): GossipConfig {
  // Topic tables: each checked as the router will check it (sizes against the priority class's cap).
  const table = new TopicTable();
  const define: Record<string, GossipTopicConfig> = {};
  for (const [name, t] of Object.entries(g.topic)) {
    const key = `gossip.topic.${name}`;
    const base = table.get(name);
    const priority = t.priority ?? base?.priority;
    const cap = CLASS_MAX_BYTES[priority ?? 'gossip'];
    if (t.max_bytes !== undefined && t.max_bytes > cap) {
      throw configInvalid(`${key}.max_bytes (${sourceOf(sources, `${key}.max_bytes`)}): ${t.max_bytes} is more than ${cap}, the largest item of priority ${priority ?? 'gossip'}`);
    }
    // A rate or a burst alone keeps the other half of the topic's rate (a new topic's is define's default).
    const current = base?.rate ?? new TopicTable([]).define(name).rate;
    const rate: TopicRate | undefined =
      t.rate_per_second === undefined && t.burst === undefined
        ? undefined
        : { count: t.rate_per_second ?? (current.count * 1_000) / current.perMs, perMs: 1_000, burst: t.burst ?? current.burst };
    const spec: GossipTopicConfig = {
      ...(t.max_bytes === undefined ? {} : { maxBytes: t.max_bytes }),
      ...(t.priority === undefined ? {} : { priority: t.priority }),
      ...(rate === undefined ? {} : { rate }),
    };
    try {
      table.define(name, spec);
    } catch (e) {
      throw configInvalid(`${key} (${sourceOf(sources, key)}): ${checkMessage(e).replace(/^topic "[^"]*": /, '').replace(/\bmaxBytes\b/g, 'max_bytes')}`);
    }
    define[name] = spec;
  }
  const topics = [...new Set(g.topics)];
  for (const name of topics) {
    if (table.get(name) === undefined) {
      throw configInvalid(`gossip.topics (${sourceOf(sources, 'gossip.topics')}): unknown topic ${JSON.stringify(name)}; the built-in topics are ${table.names().filter((n) => !Object.hasOwn(define, n)).join(', ')}, others need a [gossip.topic.${name}] table`);
    }
  }
  if (topics.length > MAX_CONTROL_TOPICS) throw configInvalid(`gossip.topics (${sourceOf(sources, 'gossip.topics')}): ${topics.length} topics, at most ${MAX_CONTROL_TOPICS} can be joined`);
  // Mesh parameters: what is set, over the defaults; D_score and D_out (not settable) follow D and D_low down.
  const p: Record<string, number | boolean> = { ...DEFAULT_GOSSIP_PARAMS, flood: g.flood };
  for (const [k, field] of Object.entries(GOSSIP_PARAM_KEYS)) {
    const v = g[k as keyof typeof GOSSIP_PARAM_KEYS];
    if (v !== undefined) p[field] = v;
  }
  const D = p['D'] as number;
  p['Dscore'] = Math.min(DEFAULT_GOSSIP_PARAMS.Dscore, D);
  p['Dout'] = Math.min(DEFAULT_GOSSIP_PARAMS.Dout, (p['Dlo'] as number) - 1, Math.floor(D / 2));
  let params: GossipParams;
  try {
    params = checkParams(p as unknown as GossipParams);
  } catch (e) {
    const message = checkMessage(e)
      .replace(/^gossip: /, '')
      .replace(/\b(D_low|D_high|Dlo|Dhi|Dlazy|Dunchoked|heartbeatMs|D)\b/g, (k) => GOSSIP_PARAM_NAMES[k] ?? k);
    throw configInvalid(`gossip (${sourceOf(sources, ...Object.keys(GOSSIP_PARAM_KEYS).map((k) => `gossip.${k}`))}): ${message}`);
  }
  return { enabled: g.enabled, chain: g.chain, topics, topicsSet: sources.has('gossip.topics'), params, define };
}
