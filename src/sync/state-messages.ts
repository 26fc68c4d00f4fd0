/**
 * State sync messages (docs/spec/state-sync.md), protocol `pqnet/sync/1`,
 * ids 0x0130–0x013f, and the rules both sides share: the manifest's wire
 * form, its sanity caps, its identity, and the chunk hash.
 *
 *   GETSTATEMANIFEST  request  []
 *                     response [manifest]{0..1}   (empty: no snapshot to serve)
 *       manifest = [height, blockHash, stateRoot, chunkSize, totalBytes, [chunkHash]{0..maxChunks}]
 *   GETSTATECHUNK     request  [stateRoot, index]
 *                     response chunk bytes{0..maxChunkBytes}  (empty: not held)
 *
 * **The chunk hash is fixed by the protocol: SHA3-256 of the chunk's bytes.**
 * That is what lets the engine verify each chunk on arrival without knowing
 * the chain; a `ChainAdapter` whose manifests used another hash could not be
 * synced by pqnet (the devchain uses SHA3-256).
 *
 * The caps are `StateLimits` (defaults below, overridable): the largest chunk,
 * the longest chunk-hash list and the largest snapshot. The message size caps
 * are derived from them, so both ends must use the same limits (or the
 * receiver's must be the larger).
 */
import { createHash } from 'node:crypto';
import { hex, type Hash, type StateManifest } from '../chain/adapter.ts';
import { defineRequest, type RequestType } from '../mux/rpc.ts';
import { encodeCbor } from '../wire/cbor.ts';
import { Channel } from '../wire/channels.ts';
import { arrayOf, bytes, tuple, uint, type Schema } from '../wire/schema.ts';
import { SYNC_PROTOCOL } from './messages.ts';

/** The hash of a state chunk in a manifest (node:crypto name). */
export const STATE_CHUNK_HASH = 'sha3-256';
export const STATE_HASH_BYTES = 32;

export const GETSTATEMANIFEST_REQUEST_ID = 0x0130;
export const GETSTATEMANIFEST_RESPONSE_ID = 0x0131;
export const GETSTATECHUNK_REQUEST_ID = 0x0132;
export const GETSTATECHUNK_RESPONSE_ID = 0x0133;

export interface StateLimits {
  /** Largest chunk a manifest may declare (and a GETSTATECHUNK answer may carry). */
  readonly maxChunkBytes: number;
  /** Most chunks (chunk hashes) in one manifest. */
  readonly maxChunks: number;
  /** Largest snapshot (`totalBytes`): all of it is held in memory when it is applied. */
  readonly maxTotalBytes: number;
}

/** Protocol ceilings for the limits: chunk indexes and sizes stay far inside safe integers. */
export const MAX_STATE_CHUNK_BYTES_LIMIT = 16 * 1024 * 1024;
export const MAX_STATE_CHUNKS_LIMIT = 1 << 20;

export const DEFAULT_STATE_LIMITS: StateLimits = Object.freeze({
  maxChunkBytes: 1024 * 1024,
  maxChunks: 65_536,
  maxTotalBytes: 512 * 1024 * 1024,
});

/** Fills defaults and checks each value; RangeError naming the first bad one. */
export function makeStateLimits(overrides: Partial<StateLimits> = {}): StateLimits {
  const l = { ...DEFAULT_STATE_LIMITS, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) } as StateLimits;
  const check = (name: keyof StateLimits, max: number): void => {
    const v = l[name];
    if (!Number.isSafeInteger(v) || v < 1 || v > max) throw new RangeError(`state limits: ${name} must be an integer in [1, ${max}], got ${String(v)}`);
  };
  check('maxChunkBytes', MAX_STATE_CHUNK_BYTES_LIMIT);
  check('maxChunks', MAX_STATE_CHUNKS_LIMIT);
  check('maxTotalBytes', Number.MAX_SAFE_INTEGER);
  return Object.freeze({ ...l });
}

export type ManifestWire = [height: number, blockHash: Uint8Array, stateRoot: Uint8Array, chunkSize: number, totalBytes: number, chunkHashes: Uint8Array[]];
export type GetStateManifestRequest = [];
export type StateManifestResponse = ManifestWire[];
export type GetStateChunkRequest = [stateRoot: Uint8Array, index: number];

export interface StateMessages {
  readonly limits: StateLimits;
  readonly getManifest: RequestType<GetStateManifestRequest, StateManifestResponse>;
  readonly getChunk: RequestType<GetStateChunkRequest, Uint8Array>;
}

/** CBOR overhead of one item (a head of up to 9 bytes). */
const HEAD = 9;

/** The wire schema of a manifest under `limits` (`totalBytes` and the list length bounded). */
export function manifestSchema(limits: StateLimits): Schema<ManifestWire> {
  return tuple(
    uint(),
    bytes(STATE_HASH_BYTES),
    bytes(STATE_HASH_BYTES),
    uint(limits.maxChunkBytes),
    uint(limits.maxTotalBytes),
    arrayOf(bytes(STATE_HASH_BYTES), 0, limits.maxChunks),
  ) as Schema<ManifestWire>;
}

/** Largest encoded manifest under `limits`. */
export function maxManifestBytes(limits: StateLimits): number {
  return HEAD + HEAD + 2 * (HEAD + STATE_HASH_BYTES) + HEAD + HEAD + HEAD + limits.maxChunks * (2 + STATE_HASH_BYTES);
}

export function stateMessages(overrides: Partial<StateLimits> = {}): StateMessages {
  const limits = makeStateLimits(overrides);
  const getManifest = defineRequest<GetStateManifestRequest, StateManifestResponse>({
    name: 'sync.getstatemanifest',
    requestId: GETSTATEMANIFEST_REQUEST_ID,
    responseId: GETSTATEMANIFEST_RESPONSE_ID,
    protocol: SYNC_PROTOCOL,
    channel: Channel.BULK,
    request: tuple() as Schema<GetStateManifestRequest>,
    response: arrayOf(manifestSchema(limits), 0, 1),
    maxRequestBytes: 1,
    maxResponseBytes: 1 + maxManifestBytes(limits),
    timeoutMs: 20_000,
  });
  const getChunk = defineRequest<GetStateChunkRequest, Uint8Array>({
    name: 'sync.getstatechunk',
    requestId: GETSTATECHUNK_REQUEST_ID,
    responseId: GETSTATECHUNK_RESPONSE_ID,
    protocol: SYNC_PROTOCOL,
    channel: Channel.BULK,
    request: tuple(bytes(STATE_HASH_BYTES), uint(limits.maxChunks - 1)),
    response: bytes(0, limits.maxChunkBytes),
    maxRequestBytes: 1 + HEAD + STATE_HASH_BYTES + HEAD,
    maxResponseBytes: HEAD + limits.maxChunkBytes,
    timeoutMs: 30_000,
  });
  return Object.freeze({ limits, getManifest, getChunk });
}

export function manifestToWire(m: StateManifest): ManifestWire {
  return [m.height, m.blockHash, m.stateRoot, m.chunkSize, m.totalBytes, [...m.chunkHashes]];
}

/** A manifest from its (schema-checked) wire form; `checkManifest` judges it. */
export function manifestFromWire(w: ManifestWire): StateManifest {
  const [height, blockHash, stateRoot, chunkSize, totalBytes, chunkHashes] = w;
  return Object.freeze({ height, blockHash, stateRoot, chunkSize, totalBytes, chunkHashes: Object.freeze([...chunkHashes]) });
}

/** Chunks a manifest of `totalBytes` in chunks of `chunkSize` has. */
export function chunkCountOf(chunkSize: number, totalBytes: number): number {
  return Math.ceil(totalBytes / chunkSize);
}

/** Bytes chunk `index` of `m` must have: `chunkSize`, the last one the remainder. */
export function chunkLength(m: StateManifest, index: number): number {
  const n = m.chunkHashes.length;
  return index < n - 1 ? m.chunkSize : m.totalBytes - m.chunkSize * (n - 1);
}

/**
 * What is wrong with a manifest under `limits`, or undefined: heights and
 * sizes are safe integers, the chunk size in [1, maxChunkBytes], the total
 * at most maxTotalBytes, hashes 32 bytes, and exactly ceil(total / chunkSize)
 * chunk hashes (at most maxChunks).
 */
export function checkManifest(m: StateManifest, limits: StateLimits): string | undefined {
  if (!Number.isSafeInteger(m.height) || m.height < 0) return `height ${String(m.height)}`;
  if (!isHash(m.blockHash) || !isHash(m.stateRoot)) return 'block hash or state root is not 32 bytes';
  if (!Number.isSafeInteger(m.chunkSize) || m.chunkSize < 1 || m.chunkSize > limits.maxChunkBytes) return `chunk size ${String(m.chunkSize)} outside [1, ${limits.maxChunkBytes}]`;
  if (!Number.isSafeInteger(m.totalBytes) || m.totalBytes < 0 || m.totalBytes > limits.maxTotalBytes) return `total of ${String(m.totalBytes)} bytes outside [0, ${limits.maxTotalBytes}]`;
  if (!Array.isArray(m.chunkHashes)) return 'chunk hashes are not a list';
  const n = chunkCountOf(m.chunkSize, m.totalBytes);
  if (n > limits.maxChunks) return `${n} chunks > ${limits.maxChunks}`;
  if (m.chunkHashes.length !== n) return `${m.chunkHashes.length} chunk hashes for ${m.totalBytes} bytes in chunks of ${m.chunkSize} (expected ${n})`;
  for (let i = 0; i < n; i++) if (!isHash(m.chunkHashes[i])) return `chunk hash ${i} is not 32 bytes`;
  return undefined;
}

function isHash(h: unknown): h is Hash {
  return h instanceof Uint8Array && h.length === STATE_HASH_BYTES;
}

/** SHA3-256 of `bytes`: the hash a chunk must have (see the file header). */
export function stateChunkHash(bytes: Uint8Array): Hash {
  return new Uint8Array(createHash(STATE_CHUNK_HASH).update(bytes).digest());
}

/**
 * A manifest's identity: lowercase hex of SHA3-256 over its canonical CBOR
 * wire form, so two manifests have one id exactly when every field agrees
 * (block, state root, sizes and every chunk hash). Offers are grouped by it
 * and stored progress is bound to it.
 */
export function manifestId(m: StateManifest): string {
  return hex(stateChunkHash(encodeCbor(manifestToWire(m))));
}
