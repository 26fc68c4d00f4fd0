/**
 * Relay messages (docs/spec/relay.md), protocol `pqnet/sync/1`, ids
 * 0x0110–0x012f. Size caps follow the chain's `ChainLimits`, so the types are
 * made per chain by `relayMessages(limits)`.
 *
 *   0x0110 INV          transactions [[kind, hash]]{1..MAX_INV_ENTRIES}      kind 1 = tx, 2 = block
 *   0x0111 GETDATA      transactions [[kind, hash]]{1..MAX_INV_ENTRIES}
 *   0x0112 NOTFOUND     transactions [[kind, hash]]{1..MAX_INV_ENTRIES}
 *   0x0113 TX           transactions [tx bytes]
 *   0x0114 BLOCK        blocks       [block bytes]                             the answer to GETDATA for a block
 *   0x0115 CMPCTBLOCK   blocks       [header bytes, nonce (8), short ids (6 each, packed), [[index, tx bytes]]]
 *   0x0116 GETBLOCKTXN  blocks       request  [block hash, [index]{1..}]      indexes strictly increasing
 *   0x0117 BLOCKTXN     blocks       response [tx bytes]{0..}                 one per index, in order
 *
 * A chain's limits say how large a header, a transaction and a block may be,
 * not how many transactions a block holds; `maxBlockTxs` assumes every
 * transaction takes at least MIN_TX_BYTES in its block.
 */
import { PqnetError } from '../core/errors.ts';
import type { ChainLimits } from '../chain/adapter.ts';
import { defineRequest, type RequestType } from '../mux/rpc.ts';
import { Channel } from '../wire/channels.ts';
import { defineMessage, type MessageType } from '../wire/registry.ts';
import { arrayOf, bytes, tuple, uint, type Schema } from '../wire/schema.ts';
import { COMPACT_NONCE_BYTES, SHORT_ID_BYTES, type CompactBlock } from './compact.ts';
import { SYNC_PROTOCOL } from './messages.ts';

/** Inventory kinds. */
export const InvKind = { TX: 1, BLOCK: 2 } as const;
export type InvKind = (typeof InvKind)[keyof typeof InvKind];

/** An inventory entry: what and which. */
export type InvItem = [kind: InvKind, hash: Uint8Array];

/** Entries in one INV, GETDATA or NOTFOUND. */
export const MAX_INV_ENTRIES = 1_000;
/** The smallest a transaction is assumed to be inside a block (a chain with smaller ones relays big blocks in full, see `maxBlockTxs`). */
export const MIN_TX_BYTES = 32;
const HASH_BYTES = 32;
/** CBOR overhead of an array or byte-string head (at most 5 bytes below 4 GiB). */
const HEAD = 5;
/** CBOR bytes of one inventory entry: array head, kind, byte-string head, hash. */
const INV_ENTRY_BYTES = 1 + 1 + 2 + HASH_BYTES;

/** Most transactions one compact block or BLOCKTXN may carry for a chain with these limits. */
export function maxBlockTxs(limits: ChainLimits): number {
  return Math.max(1, Math.floor(limits.maxBlockBytes / MIN_TX_BYTES));
}

const invKind: Schema<InvKind> = {
  describe: '1|2',
  check(v, path) {
    if (v !== InvKind.TX && v !== InvKind.BLOCK) throw new PqnetError('MSG_SCHEMA', `${path}: expected an inventory kind (1 or 2)`);
    return v;
  },
};

/** Packed short ids: a byte string whose length is a multiple of SHORT_ID_BYTES. */
function packedShortIds(maxIds: number): Schema<Uint8Array> {
  const inner = bytes(0, maxIds * SHORT_ID_BYTES);
  return {
    describe: `bytes[${SHORT_ID_BYTES}k, k<=${maxIds}]`,
    check(v, path) {
      const b = inner.check(v, path);
      if (b.length % SHORT_ID_BYTES !== 0) throw new PqnetError('MSG_SCHEMA', `${path}: ${b.length} bytes is not a whole number of short ids`);
      return b;
    },
  };
}

export type GetBlockTxnRequest = [blockHash: Uint8Array, indexes: number[]];
export type BlockTxnResponse = Uint8Array[];

export interface RelayMessages {
  readonly inv: MessageType<InvItem[]>;
  readonly getData: MessageType<InvItem[]>;
  readonly notFound: MessageType<InvItem[]>;
  readonly tx: MessageType<[Uint8Array]>;
  readonly block: MessageType<[Uint8Array]>;
  readonly compactBlock: MessageType<CompactBlock>;
  readonly getBlockTxn: RequestType<GetBlockTxnRequest, BlockTxnResponse>;
  /** The push types, for registering and for peers that need the registry (tests). */
  readonly types: readonly MessageType<unknown>[];
}

export function relayMessages(limits: ChainLimits): RelayMessages {
  const maxTxs = maxBlockTxs(limits);
  const list = arrayOf(tuple(invKind, bytes(HASH_BYTES)), 1, MAX_INV_ENTRIES);
  const listBytes = HEAD + MAX_INV_ENTRIES * INV_ENTRY_BYTES;
  const common = { protocol: SYNC_PROTOCOL } as const;
  const inv = defineMessage<InvItem[]>({ ...common, id: 0x0110, name: 'relay.inv', channel: Channel.TRANSACTIONS, maxBytes: listBytes, schema: list, ratePerSecond: 50 });
  const getData = defineMessage<InvItem[]>({ ...common, id: 0x0111, name: 'relay.getdata', channel: Channel.TRANSACTIONS, maxBytes: listBytes, schema: list, ratePerSecond: 50 });
  const notFound = defineMessage<InvItem[]>({ ...common, id: 0x0112, name: 'relay.notfound', channel: Channel.TRANSACTIONS, maxBytes: listBytes, schema: list, ratePerSecond: 50 });
  const tx = defineMessage<[Uint8Array]>({
    ...common, id: 0x0113, name: 'relay.tx', channel: Channel.TRANSACTIONS,
    maxBytes: 1 + HEAD + limits.maxTxBytes, schema: tuple(bytes(1, limits.maxTxBytes)), ratePerSecond: 1_000,
  });
  const block = defineMessage<[Uint8Array]>({
    ...common, id: 0x0114, name: 'relay.block', channel: Channel.BLOCKS,
    maxBytes: 1 + HEAD + limits.maxBlockBytes, schema: tuple(bytes(1, limits.maxBlockBytes)), ratePerSecond: 10,
  });
  // Prefilled transactions are part of the block, so together they fit its cap; each adds an entry head and an index.
  const compactBlock = defineMessage<CompactBlock>({
    ...common, id: 0x0115, name: 'relay.cmpctblock', channel: Channel.BLOCKS,
    maxBytes: 1 + (HEAD + limits.maxHeaderBytes) + (1 + COMPACT_NONCE_BYTES) + (HEAD + maxTxs * SHORT_ID_BYTES) + HEAD + limits.maxBlockBytes + maxTxs * (1 + HEAD + HEAD),
    schema: tuple(
      bytes(1, limits.maxHeaderBytes),
      bytes(COMPACT_NONCE_BYTES),
      packedShortIds(maxTxs),
      arrayOf(tuple(uint(maxTxs - 1), bytes(1, limits.maxTxBytes)), 0, maxTxs),
    ),
    ratePerSecond: 10,
  });
  const getBlockTxn = defineRequest<GetBlockTxnRequest, BlockTxnResponse>({
    name: 'relay.getblocktxn',
    requestId: 0x0116,
    responseId: 0x0117,
    protocol: SYNC_PROTOCOL,
    channel: Channel.BLOCKS,
    request: tuple(bytes(HASH_BYTES), arrayOf(uint(maxTxs - 1), 1, maxTxs)),
    response: arrayOf(bytes(1, limits.maxTxBytes), 0, maxTxs),
    maxRequestBytes: 1 + HEAD + HASH_BYTES + HEAD + maxTxs * HEAD,
    maxResponseBytes: HEAD + limits.maxBlockBytes + maxTxs * HEAD,
    timeoutMs: 10_000,
  });
  const types = [inv, getData, notFound, tx, block, compactBlock, getBlockTxn.request, getBlockTxn.response] as MessageType<unknown>[];
  return { inv, getData, notFound, tx, block, compactBlock, getBlockTxn, types };
}
