/**
 * Devchain encodings: headers, transactions and blocks as canonical CBOR
 * (`wire/cbor.ts`: strict, bounded, re-encodes to itself), their hashes, the
 * transaction Merkle root and proof of work.
 *
 * - **Header** `[version = 1, chainId, parent (32), height, timestampMs,
 *   txRoot (32), stateRoot (32), target (32, big-endian), nonce]`; its hash is
 *   SHA3-256 of those bytes and must, read as a big-endian integer, be ≤
 *   target. Genesis (height 0) is the one header exempt from proof of work: it
 *   is accepted only as the exact genesis of the parameters.
 * - **Transaction** `[from (32), to (32), amount, fee, nonce, memo (≤ 1024
 *   bytes)]`; id = SHA3-256(bytes). Integers are unsigned and below 2^53 (the
 *   codec refuses larger ones). **No signatures**: this is a development chain,
 *   anyone can spend from any account. A real chain adds a public key and a
 *   signature here and checks them in `decodeTx`.
 * - **Block** `[headerBytes, [txBytes, ...]]`: the header and transactions are
 *   embedded as byte strings, so each keeps the exact bytes its hash is over.
 * - **Transaction root**: a binary Merkle tree over the ids; leaf =
 *   SHA3-256(0x00 || id), inner node = SHA3-256(0x01 || left || right), an odd
 *   node is promoted to the next level unchanged (no duplication, so no
 *   CVE-2012-2459-style twin lists); no transactions = 32 zero bytes. The
 *   prefixes keep a leaf from passing for an inner node.
 *
 * Decoders throw only `PqnetError`s with the chain's codes: CHAIN_BAD_HEADER,
 * CHAIN_BAD_TX, CHAIN_BAD_BLOCK (a bad header or transaction inside a block
 * makes the block bad). Decoded objects are frozen.
 */
import { isPqnetError, PqnetError, type Reason } from '../../core/errors.ts';
import { decodeCbor, encodeCbor } from '../../wire/cbor.ts';
import { hex, type ChainBlock, type ChainHeader, type ChainTx, type Hash } from '../adapter.ts';
import { bigintToBytes, bytesToBigint, compareBytes, sha3, ZERO_HASH } from './hash.ts';
import { HASH_BYTES, HEADER_VERSION, MAX_HEADER_BYTES, MAX_MEMO_BYTES, MAX_TX_BYTES, workOf, type DevchainParams } from './params.ts';

export interface HeaderFields {
  readonly version: number;
  readonly chainId: number;
  readonly parent: Hash;
  readonly height: number;
  readonly timestampMs: number;
  readonly txRoot: Hash;
  readonly stateRoot: Hash;
  readonly target: bigint;
  readonly nonce: number;
}

/** A decoded header: the adapter's view plus every field. */
export interface DevHeader extends ChainHeader, HeaderFields {}

export interface TxFields {
  readonly from: Hash;
  readonly to: Hash;
  readonly amount: number;
  readonly fee: number;
  readonly nonce: number;
  readonly memo: Uint8Array;
}

export interface DevTx extends ChainTx, TxFields {}

export interface DevBlock extends ChainBlock {
  readonly header: DevHeader;
  /** The transactions decoded, in block order (`txs` holds their bytes). */
  readonly decodedTxs: readonly DevTx[];
}

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

// ---------------------------------------------------------------- helpers

const isUint = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isHash = (v: unknown): v is Uint8Array => v instanceof Uint8Array && v.length === HASH_BYTES;

function fail(code: Reason, message: string, cause?: unknown): never {
  throw new PqnetError(code, message, cause === undefined ? {} : { cause });
}

/** The codec's MSG_* errors become `code`; anything else is a bug and passes through. */
function decodeAs(code: Reason, what: string, bytes: Uint8Array, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) fail(code, `${what} is not bytes`);
  try {
    return decodeCbor(bytes, maxBytes);
  } catch (e) {
    if (isPqnetError(e)) fail(code, `${what}: ${e.message}`, e);
    throw e;
  }
}

/** Encodes a non-negative safe integer as a CBOR unsigned integer (major type 0, minimal head). */
export function cborUint(n: number): Uint8Array {
  if (n < 24) return new Uint8Array([n]);
  if (n < 0x100) return new Uint8Array([0x18, n]);
  if (n < 0x10000) return new Uint8Array([0x19, n >> 8, n & 0xff]);
  if (n < 0x1_0000_0000) return new Uint8Array([0x1a, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
  const out = new Uint8Array(9);
  out[0] = 0x1b;
  new DataView(out.buffer).setBigUint64(1, BigInt(n));
  return out;
}

// ---------------------------------------------------------------- headers

function checkHeaderFields(f: Omit<HeaderFields, 'nonce'> & { readonly nonce?: number }): void {
  const bad = (field: string): never => fail('INVALID_ARGUMENT', `header field ${field}`);
  if (!isUint(f.version)) bad('version');
  if (!isUint(f.chainId) || f.chainId > 0xffff_ffff) bad('chainId');
  if (!isHash(f.parent)) bad('parent');
  if (!isUint(f.height)) bad('height');
  if (!isUint(f.timestampMs)) bad('timestampMs');
  if (!isHash(f.txRoot)) bad('txRoot');
  if (!isHash(f.stateRoot)) bad('stateRoot');
  if (typeof f.target !== 'bigint' || f.target < 1n || f.target >= 1n << 256n) bad('target');
  if (f.nonce !== undefined && !isUint(f.nonce)) bad('nonce');
}

function headerArray(f: Omit<HeaderFields, 'nonce'>, nonce: number): unknown[] {
  return [f.version, f.chainId, f.parent, f.height, f.timestampMs, f.txRoot, f.stateRoot, bigintToBytes(f.target, 32), nonce];
}

export function encodeHeader(f: HeaderFields): Uint8Array {
  checkHeaderFields(f);
  return encodeCbor(headerArray(f, f.nonce));
}

function makeHeader(f: HeaderFields, bytes: Uint8Array, hash: Hash): DevHeader {
  return Object.freeze({ ...f, hash, bytes, work: workOf(f.target) });
}

/** Whether `hash`, read as a big-endian integer, is ≤ `targetBytes` (both 32 bytes). */
export function meetsTarget(hash: Hash, targetBytes: Uint8Array): boolean {
  return compareBytes(hash, targetBytes) <= 0;
}

/**
 * Parses a header and checks what needs no other header: canonical encoding,
 * size, field types, version, chain id, target and proof of work; a height-0
 * header must be `genesisHash` itself. Throws CHAIN_BAD_HEADER.
 */
export function decodeHeader(bytes: Uint8Array, params: DevchainParams, genesisHash: Hash): DevHeader {
  const v = decodeAs('CHAIN_BAD_HEADER', 'header', bytes, MAX_HEADER_BYTES);
  if (!Array.isArray(v) || v.length !== 9) fail('CHAIN_BAD_HEADER', 'not an array of 9 fields');
  const [version, chainId, parent, height, timestampMs, txRoot, stateRoot, target, nonce] = v as unknown[];
  if (version !== HEADER_VERSION) fail('CHAIN_BAD_HEADER', `version ${String(version)}, expected ${HEADER_VERSION}`);
  if (chainId !== params.chainId) fail('CHAIN_BAD_HEADER', `chain id ${String(chainId)}, expected ${params.chainId}`);
  if (!isHash(parent)) fail('CHAIN_BAD_HEADER', 'parent is not 32 bytes');
  if (!isUint(height)) fail('CHAIN_BAD_HEADER', 'height is not an unsigned integer');
  if (!isUint(timestampMs)) fail('CHAIN_BAD_HEADER', 'timestamp is not an unsigned integer');
  if (!isHash(txRoot)) fail('CHAIN_BAD_HEADER', 'txRoot is not 32 bytes');
  if (!isHash(stateRoot)) fail('CHAIN_BAD_HEADER', 'stateRoot is not 32 bytes');
  if (!isHash(target)) fail('CHAIN_BAD_HEADER', 'target is not 32 bytes');
  if (!isUint(nonce)) fail('CHAIN_BAD_HEADER', 'nonce is not an unsigned integer');
  const targetValue = bytesToBigint(target);
  if (targetValue !== params.target) fail('CHAIN_BAD_HEADER', 'target differs from the chain\'s');
  const hash = sha3(bytes);
  if (height === 0) {
    if (compareBytes(hash, genesisHash) !== 0) fail('CHAIN_BAD_HEADER', `height 0 but not this chain's genesis (${hex(hash)})`);
  } else if (!meetsTarget(hash, target)) {
    fail('CHAIN_BAD_HEADER', 'proof of work: hash above target');
  }
  return makeHeader({ version, chainId, parent, height, timestampMs, txRoot, stateRoot, target: targetValue, nonce }, bytes, hash);
}

/**
 * Finds a nonce (from `startNonce` up) whose header hash meets the target and
 * returns the header. The encoding up to the nonce is made once; each attempt
 * appends the nonce's CBOR head and hashes.
 */
export function mineHeader(f: Omit<HeaderFields, 'nonce'>, startNonce = 0): DevHeader {
  checkHeaderFields(f);
  const withZero = encodeCbor(headerArray(f, 0));
  const prefix = withZero.subarray(0, withZero.length - 1); // nonce 0 is the single byte 0x00, last
  const targetBytes = bigintToBytes(f.target, 32);
  for (let nonce = startNonce; nonce <= Number.MAX_SAFE_INTEGER; nonce++) {
    const n = cborUint(nonce);
    const hash = sha3(prefix, n);
    if (meetsTarget(hash, targetBytes)) {
      const bytes = new Uint8Array(prefix.length + n.length);
      bytes.set(prefix);
      bytes.set(n, prefix.length);
      return makeHeader({ ...f, nonce }, bytes, hash);
    }
  }
  throw new PqnetError('INTERNAL', 'nonce space exhausted');
}

/** A header with `nonce` as given, without proof of work (genesis; tests forging headers). */
export function buildHeader(f: HeaderFields): DevHeader {
  const bytes = encodeHeader(f);
  return makeHeader(f, bytes, sha3(bytes));
}

// ---------------------------------------------------------------- transactions

function checkTxFields(f: TxFields): void {
  const bad = (field: string): never => fail('INVALID_ARGUMENT', `transaction field ${field}`);
  if (!isHash(f.from)) bad('from');
  if (!isHash(f.to)) bad('to');
  if (!isUint(f.amount)) bad('amount');
  if (!isUint(f.fee)) bad('fee');
  if (!isUint(f.nonce)) bad('nonce');
  if (!(f.memo instanceof Uint8Array) || f.memo.length > MAX_MEMO_BYTES) bad('memo');
}

export function encodeTx(f: TxFields): Uint8Array {
  checkTxFields(f);
  return encodeCbor([f.from, f.to, f.amount, f.fee, f.nonce, f.memo]);
}

/** Parses a transaction: canonical encoding, size, field types, memo length. Throws CHAIN_BAD_TX. */
export function decodeTx(bytes: Uint8Array): DevTx {
  const v = decodeAs('CHAIN_BAD_TX', 'transaction', bytes, MAX_TX_BYTES);
  if (!Array.isArray(v) || v.length !== 6) fail('CHAIN_BAD_TX', 'not an array of 6 fields');
  const [from, to, amount, fee, nonce, memo] = v as unknown[];
  if (!isHash(from)) fail('CHAIN_BAD_TX', 'from is not 32 bytes');
  if (!isHash(to)) fail('CHAIN_BAD_TX', 'to is not 32 bytes');
  if (!isUint(amount)) fail('CHAIN_BAD_TX', 'amount is not an unsigned integer');
  if (!isUint(fee)) fail('CHAIN_BAD_TX', 'fee is not an unsigned integer');
  if (!isUint(nonce)) fail('CHAIN_BAD_TX', 'nonce is not an unsigned integer');
  if (!(memo instanceof Uint8Array)) fail('CHAIN_BAD_TX', 'memo is not bytes');
  if (memo.length > MAX_MEMO_BYTES) fail('CHAIN_BAD_TX', `memo of ${memo.length} bytes > ${MAX_MEMO_BYTES}`);
  return Object.freeze({ id: sha3(bytes), bytes, from, to, amount, fee, nonce, memo });
}

// ---------------------------------------------------------------- blocks

/** Merkle root of transaction ids (see the file header). */
export function merkleRoot(ids: readonly Hash[]): Hash {
  if (ids.length === 0) return ZERO_HASH.slice();
  let level = ids.map((id) => sha3(LEAF_PREFIX, id));
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(sha3(NODE_PREFIX, level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

export function encodeBlock(headerBytes: Uint8Array, txBytes: readonly Uint8Array[]): Uint8Array {
  return encodeCbor([headerBytes, [...txBytes]]);
}

export interface BlockLimits {
  readonly maxBlockBytes: number;
  readonly maxTxsPerBlock: number;
}

/**
 * Parses a block and checks it against its own header: canonical encoding,
 * size, the header (as `decodeHeader`), every transaction (as `decodeTx`), at
 * most `maxTxsPerBlock` of them, no two with the same id, and the transaction
 * root. Throws CHAIN_BAD_BLOCK.
 */
export function decodeBlock(bytes: Uint8Array, params: DevchainParams, genesisHash: Hash, limits: BlockLimits): DevBlock {
  const v = decodeAs('CHAIN_BAD_BLOCK', 'block', bytes, limits.maxBlockBytes);
  if (!Array.isArray(v) || v.length !== 2) fail('CHAIN_BAD_BLOCK', 'not an array of 2 fields');
  const [headerBytes, txList] = v as unknown[];
  if (!(headerBytes instanceof Uint8Array)) fail('CHAIN_BAD_BLOCK', 'header is not bytes');
  if (!Array.isArray(txList)) fail('CHAIN_BAD_BLOCK', 'transactions are not an array');
  if (txList.length > limits.maxTxsPerBlock) fail('CHAIN_BAD_BLOCK', `${txList.length} transactions > ${limits.maxTxsPerBlock}`);
  let header: DevHeader;
  try {
    header = decodeHeader(headerBytes, params, genesisHash);
  } catch (e) {
    if (isPqnetError(e)) fail('CHAIN_BAD_BLOCK', e.message, e);
    throw e;
  }
  const txs: DevTx[] = [];
  const seen = new Set<string>();
  for (const [i, t] of (txList as unknown[]).entries()) {
    if (!(t instanceof Uint8Array)) fail('CHAIN_BAD_BLOCK', `transaction ${i} is not bytes`);
    let tx: DevTx;
    try {
      tx = decodeTx(t);
    } catch (e) {
      if (isPqnetError(e)) fail('CHAIN_BAD_BLOCK', `transaction ${i}: ${e.message}`, e);
      throw e;
    }
    const key = hex(tx.id);
    if (seen.has(key)) fail('CHAIN_BAD_BLOCK', `transaction ${i} repeats ${key}`);
    seen.add(key);
    txs.push(tx);
  }
  const txIds = Object.freeze(txs.map((t) => t.id));
  if (compareBytes(merkleRoot(txIds), header.txRoot) !== 0) fail('CHAIN_BAD_BLOCK', 'transaction root differs from the header\'s');
  return Object.freeze({ header, txIds, txs: Object.freeze(txs.map((t) => t.bytes)), decodedTxs: Object.freeze(txs), bytes });
}
