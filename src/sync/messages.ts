/**
 * Sync messages (docs/spec/sync.md), protocol `pqnet/sync/1`, ids 0x0100–0x01ff.
 * Their size caps follow the chain's (`ChainLimits`), so the types are made
 * per chain by `syncMessages(limits)`.
 *
 *   GETHEADERS   request  [locator: [hash]{1..64}, stop: hash | empty]
 *                response [header bytes]{0..MAX_HEADERS_PER_MESSAGE}
 */
import type { ChainLimits } from '../chain/adapter.ts';
import { defineRequest, type RequestType } from '../mux/rpc.ts';
import { Channel } from '../wire/channels.ts';
import { arrayOf, bytes, bytesOneOf, tuple } from '../wire/schema.ts';

export const SYNC_PROTOCOL = 'pqnet/sync/1';

/** Headers in one HEADERS answer (the 2,000). */
export const MAX_HEADERS_PER_MESSAGE = 2_000;
/** Hashes in a locator: ten single steps, then doubling steps back to genesis cover 2^53 heights in under 64. */
export const MAX_LOCATOR_HASHES = 64;
const HASH_BYTES = 32;
/** CBOR overhead per byte-string item (header up to 5 bytes). */
const ITEM_OVERHEAD = 5;

export type GetHeadersRequest = [locator: Uint8Array[], stop: Uint8Array];
export type HeadersResponse = Uint8Array[];

export interface SyncMessages {
  readonly getHeaders: RequestType<GetHeadersRequest, HeadersResponse>;
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
  return { getHeaders };
}
