/**
 * Sync messages (docs/spec/sync.md), protocol `pqnet/sync/1`, ids 0x0100–0x01ff.
 * Their size caps follow the chain's (`ChainLimits`), so the types are made
 * per chain by `syncMessages(limits)`.
 *
 *   GETHEADERS   request  [locator: [hash]{1..64}, stop: hash | empty]
 *                response [header bytes]{0..MAX_HEADERS_PER_MESSAGE}
 *   GETBLOCKS    request  [start: height, count: 1..MAX_BLOCKS_PER_MESSAGE, anchor: hash]
 *                response [block bytes]{0..count}: the blocks at start.. on the
 *                chain ending at `anchor` (the block at start + count - 1), a
 *                prefix of them when the server lacks one or the answer would
 *                pass MAX_BLOCKS_RESPONSE_BYTES (always at least one block if it has it)
 */
import type { ChainLimits } from '../chain/adapter.ts';
import { defineRequest, type RequestType } from '../mux/rpc.ts';
import { Channel } from '../wire/channels.ts';
import { arrayOf, bytes, bytesOneOf, tuple, uint } from '../wire/schema.ts';

export const SYNC_PROTOCOL = 'pqnet/sync/1';

/** Headers in one HEADERS answer (the 2,000). */
export const MAX_HEADERS_PER_MESSAGE = 2_000;
/** Hashes in a locator: ten single steps, then doubling steps back to genesis cover 2^53 heights in under 64. */
export const MAX_LOCATOR_HASHES = 64;
const HASH_BYTES = 32;
/** CBOR overhead per byte-string item (header up to 5 bytes). */
const ITEM_OVERHEAD = 5;

/** Blocks one GETBLOCKS may ask for (the 500). */
export const MAX_BLOCKS_PER_MESSAGE = 500;
/**
 * Soft byte budget of a GETBLOCKS answer: the server stops adding blocks once the
 * next would pass it. It bounds the receive window of the bulk channel (the mux
 * credits at least the largest message), so one peer's answers never hold more
 * than this in our memory. A single block larger than it is still sent alone.
 */
export const MAX_BLOCKS_RESPONSE_BYTES = 4 * 1024 * 1024;

export type GetHeadersRequest = [locator: Uint8Array[], stop: Uint8Array];
export type HeadersResponse = Uint8Array[];
export type GetBlocksRequest = [start: number, count: number, anchor: Uint8Array];
export type BlocksResponse = Uint8Array[];

export interface SyncMessages {
  readonly getHeaders: RequestType<GetHeadersRequest, HeadersResponse>;
  readonly getBlocks: RequestType<GetBlocksRequest, BlocksResponse>;
}

/** The most bytes a GETBLOCKS answer can take on the wire under `limits`. */
export function blocksResponseCap(limits: ChainLimits): number {
  return 8 + Math.max(MAX_BLOCKS_RESPONSE_BYTES, limits.maxBlockBytes + ITEM_OVERHEAD);
}

export function syncMessages(limits: ChainLimits): SyncMessages {
  const getHeaders = defineRequest<GetHeadersRequest, HeadersResponse>({
    name: 'sync.getheaders',
    requestId: 0x0100,
    responseId: 0x0101,
    protocol: SYNC_PROTOCOL,
    channel: Channel.BLOCKS,
    request: tuple(arrayOf(bytes(HASH_BYTES), 1, MAX_LOCATOR_HASHES), bytesOneOf(0, HASH_BYTES)),
    response: arrayOf(bytes(1, limits.maxHeaderBytes), 0, MAX_HEADERS_PER_MESSAGE),
    maxRequestBytes: 8 + MAX_LOCATOR_HASHES * (HASH_BYTES + ITEM_OVERHEAD) + HASH_BYTES + ITEM_OVERHEAD,
    maxResponseBytes: 8 + MAX_HEADERS_PER_MESSAGE * (limits.maxHeaderBytes + ITEM_OVERHEAD),
    timeoutMs: 20_000,
  });
  const getBlocks = defineRequest<GetBlocksRequest, BlocksResponse>({
    name: 'sync.getblocks',
    requestId: 0x0102,
    responseId: 0x0103,
    protocol: SYNC_PROTOCOL,
    // Bulk: ranges of blocks are the largest sync traffic and must not delay announcements on `blocks`.
    channel: Channel.BULK,
    request: tuple(uint(), uint(MAX_BLOCKS_PER_MESSAGE), bytes(HASH_BYTES)),
    response: arrayOf(bytes(1, limits.maxBlockBytes), 0, MAX_BLOCKS_PER_MESSAGE),
    maxRequestBytes: 8 + 9 + 3 + HASH_BYTES + ITEM_OVERHEAD,
    maxResponseBytes: blocksResponseCap(limits),
    timeoutMs: 60_000,
  });
  return { getHeaders, getBlocks };
}
