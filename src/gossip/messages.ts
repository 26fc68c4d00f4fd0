/**
 * Gossip wire messages (docs/spec/gossip.md), protocol `pqnet/gossip/1`, ids
 * 0x0140–0x014f. An item travels in the message type of its topic's priority
 * class, so a vote never waits behind a block; control travels on the gossip
 * channel.
 *
 *   0x0140 CONTROL      gossip        [sub, unsub, graft, prune, ihave, iwant, idontwant, choke, unchoke]
 *   0x0141 MSG_CONSENSUS consensus    [topic, payload]
 *   0x0142 MSG_GOSSIP   gossip        [topic, payload]
 *   0x0143 MSG_BLOCKS   blocks        [topic, payload]
 *   0x0144 MSG_TXS      transactions  [topic, payload]
 *   0x0145 MSG_BULK     bulk          [topic, payload]
 *
 * CONTROL fields: sub, unsub, graft, choke, unchoke: [topic]; prune: [[topic,
 * backoff seconds]]; ihave: [[topic, [id]]]; iwant, idontwant: [id]. Every field is present
 * (possibly empty) and at least one is not empty.
 */
import { PqnetError } from '../core/errors.ts';
import { Channel, type ChannelId } from '../wire/channels.ts';
import { defineMessage, type MessageType } from '../wire/registry.ts';
import { arrayOf, bytes, tuple, uint, type Schema } from '../wire/schema.ts';
import { CLASS_MAX_BYTES, MAX_MSG_ID_BYTES, PRIORITIES, TOPIC_NAME, type Priority } from './topics.ts';

export const GOSSIP_PROTOCOL = 'pqnet/gossip/1';

/** Topics named in one control field. */
export const MAX_CONTROL_TOPICS = 64;
/** Message ids in one IHAVE entry, IWANT or IDONTWANT. */
export const MAX_CONTROL_IDS = 5_000;
/** Longest prune backoff a peer may ask for, in seconds. */
export const MAX_BACKOFF_S = 3_600;

export type GossipItem = [topic: string, payload: Uint8Array];

export interface Control {
  sub: string[];
  unsub: string[];
  graft: string[];
  prune: [topic: string, backoffS: number][];
  ihave: [topic: string, ids: Uint8Array[]][];
  iwant: Uint8Array[];
  idontwant: Uint8Array[];
  /** Mesh topics in which the receiver should announce (IHAVE) instead of pushing to us, and back. */
  choke: string[];
  unchoke: string[];
}

export function emptyControl(): Control {
  return { sub: [], unsub: [], graft: [], prune: [], ihave: [], iwant: [], idontwant: [], choke: [], unchoke: [] };
}

export function isEmptyControl(c: Control): boolean {
  return c.sub.length + c.unsub.length + c.graft.length + c.prune.length + c.ihave.length + c.iwant.length + c.idontwant.length + c.choke.length + c.unchoke.length === 0;
}

const topicName: Schema<string> = {
  describe: 'topic',
  check(v, path) {
    if (typeof v !== 'string' || !TOPIC_NAME.test(v)) throw new PqnetError('MSG_SCHEMA', `${path}: expected a topic name (1-64 of a-z 0-9 / _ . -)`);
    return v;
  },
};

const msgId = bytes(1, MAX_MSG_ID_BYTES);
const ids = arrayOf(msgId, 0, MAX_CONTROL_IDS);
const topics = arrayOf(topicName, 0, MAX_CONTROL_TOPICS);

const controlTuple = tuple(
  topics,
  topics,
  topics,
  arrayOf(tuple(topicName, uint(MAX_BACKOFF_S)), 0, MAX_CONTROL_TOPICS),
  arrayOf(tuple(topicName, arrayOf(msgId, 1, MAX_CONTROL_IDS)), 0, MAX_CONTROL_TOPICS),
  ids,
  ids,
  topics,
  topics,
);

/** The wire form of `Control`: its fields in order. */
export type ControlWire = [
  sub: string[], unsub: string[], graft: string[], prune: [string, number][],
  ihave: [string, Uint8Array[]][], iwant: Uint8Array[], idontwant: Uint8Array[],
  choke: string[], unchoke: string[],
];

const controlSchema: Schema<ControlWire> = {
  describe: `control ${controlTuple.describe}`,
  check(v, path) {
    const w = controlTuple.check(v, path) as ControlWire;
    if (w.every((f) => f.length === 0)) throw new PqnetError('MSG_SCHEMA', `${path}: empty control message`);
    return w;
  },
};

export function controlToWire(c: Control): ControlWire {
  return [c.sub, c.unsub, c.graft, c.prune, c.ihave, c.iwant, c.idontwant, c.choke, c.unchoke];
}

export function controlFromWire(w: ControlWire): Control {
  const [sub, unsub, graft, prune, ihave, iwant, idontwant, choke, unchoke] = w;
  return { sub, unsub, graft, prune, ihave, iwant, idontwant, choke, unchoke };
}

/** CBOR overhead of the item tuple: array head, topic text head + 64 bytes, payload head. */
const ITEM_OVERHEAD = 1 + 2 + 64 + 5;
const ID_BYTES = 2 + MAX_MSG_ID_BYTES;
const CONTROL_MAX_BYTES = 1 + 5 * (3 + MAX_CONTROL_TOPICS * 66) + 3 + MAX_CONTROL_TOPICS * 72 + 3 + MAX_CONTROL_TOPICS * (70 + MAX_CONTROL_IDS * ID_BYTES) + 2 * (3 + MAX_CONTROL_IDS * ID_BYTES);

const CLASS_CHANNEL: Readonly<Record<Priority, ChannelId>> = {
  consensus: Channel.CONSENSUS,
  gossip: Channel.GOSSIP,
  blocks: Channel.BLOCKS,
  transactions: Channel.TRANSACTIONS,
  bulk: Channel.BULK,
};
const CLASS_ID: Readonly<Record<Priority, number>> = { consensus: 0x0141, gossip: 0x0142, blocks: 0x0143, transactions: 0x0144, bulk: 0x0145 };
/** Items per second one peer may send in each class before the topic buckets look at them (a backstop; topics set the real caps). */
const CLASS_RATE: Readonly<Record<Priority, number>> = { consensus: 5_000, gossip: 2_000, blocks: 100, transactions: 2_000, bulk: 200 };

export interface GossipMessages {
  readonly control: MessageType<ControlWire>;
  /** The item type of each priority class. */
  readonly item: Readonly<Record<Priority, MessageType<GossipItem>>>;
  readonly types: readonly MessageType<unknown>[];
}

function itemType(p: Priority): MessageType<GossipItem> {
  return defineMessage<GossipItem>({
    id: CLASS_ID[p],
    name: `gossip.msg.${p}`,
    channel: CLASS_CHANNEL[p],
    protocol: GOSSIP_PROTOCOL,
    maxBytes: ITEM_OVERHEAD + CLASS_MAX_BYTES[p],
    schema: tuple(topicName, bytes(0, CLASS_MAX_BYTES[p])),
    ratePerSecond: CLASS_RATE[p],
  });
}

export const gossipMessages: GossipMessages = (() => {
  const control = defineMessage<ControlWire>({
    id: 0x0140,
    name: 'gossip.control',
    channel: Channel.GOSSIP,
    protocol: GOSSIP_PROTOCOL,
    maxBytes: CONTROL_MAX_BYTES,
    schema: controlSchema,
    ratePerSecond: 200,
  });
  const item = Object.fromEntries(PRIORITIES.map((p) => [p, itemType(p)])) as Record<Priority, MessageType<GossipItem>>;
  return Object.freeze({ control, item: Object.freeze(item), types: Object.freeze([control, ...Object.values(item)] as MessageType<unknown>[]) });
})();
