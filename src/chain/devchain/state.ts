/**
 * Devchain state: accounts (id → balance, nonce), the transfer rule, the
 * state root, undo records and state snapshots. Pure functions and an
 * in-memory overlay; the SQLite side is `store.ts`.
 *
 * - **Accounts.** An id is 32 bytes; an account exists once it has received
 *   money (or is a genesis account) and is never deleted, so a (0, 0) record
 *   only occurs for a genesis account with a zero balance.
 * - **Transfer rule** (applied in block order): the sender exists, the nonce is
 *   exactly the sender's, amount > 0, sender ≠ recipient, balance ≥ amount +
 *   fee, the recipient's new balance ≤ 2^63 - 1; the sender pays amount + fee
 *   and its nonce goes up by one, the recipient (created if new) gets amount.
 *   Fees are burnt: a dev chain has no miner reward.
 * - **State root.** 256 buckets by the first byte of the id; a bucket's hash is
 *   SHA3-256 over its accounts sorted by id as 48-byte records (id 32 |
 *   balance u64 BE | nonce u64 BE), an empty bucket hashes the empty string;
 *   the root is SHA3-256 of the 256 bucket hashes in order. A block rehashes
 *   only the buckets it touches, so its cost is its accounts' buckets, not the
 *   whole state (a bucket holds 1/256 of the accounts).
 * - **Undo record** of a connected block: for every account it touched, the
 *   value before (or "absent"), 49 bytes each (id 32 | present u8 | balance
 *   u64 | nonce u64). Disconnecting the block writes them back.
 * - **Snapshot**: every account's record, sorted by id, concatenated and cut
 *   into chunks of `chunkSize` bytes (a record may span two chunks); each
 *   chunk is known by its SHA3-256.
 */
import { PqnetError } from '../../core/errors.ts';
import { hex, type Hash, type StateManifest } from '../adapter.ts';
import { compareBytes, sha3 } from './hash.ts';
import type { TxFields } from './encoding.ts';
import {
  ACCOUNT_RECORD_BYTES, HASH_BYTES, MAX_BALANCE, MAX_STATE_ACCOUNTS, MAX_STATE_CHUNK_BYTES, MAX_STATE_CHUNKS, MIN_STATE_CHUNK_BYTES,
} from './params.ts';

export interface Account {
  readonly balance: bigint;
  readonly nonce: number;
}

export const BUCKETS = 256;
export const EMPTY_BUCKET_HASH: Hash = sha3();
const UNDO_RECORD_BYTES = HASH_BYTES + 1 + 8 + 8;

/** Writes the 48-byte record of an account at `off`. */
export function writeRecord(out: Uint8Array, off: number, id: Hash, a: Account): void {
  out.set(id, off);
  const view = new DataView(out.buffer, out.byteOffset + off + HASH_BYTES, 16);
  view.setBigUint64(0, a.balance);
  view.setBigUint64(8, BigInt(a.nonce));
}

/** SHA3-256 over the records of `accounts`, which must be sorted by id. */
export function bucketHash(accounts: readonly (readonly [Hash, Account])[]): Hash {
  if (accounts.length === 0) return EMPTY_BUCKET_HASH;
  const buf = new Uint8Array(accounts.length * ACCOUNT_RECORD_BYTES);
  accounts.forEach(([id, a], i) => writeRecord(buf, i * ACCOUNT_RECORD_BYTES, id, a));
  return sha3(buf);
}

export function stateRootOf(bucketHashes: readonly Hash[]): Hash {
  if (bucketHashes.length !== BUCKETS) throw new PqnetError('INTERNAL', `${bucketHashes.length} bucket hashes`);
  return sha3(...bucketHashes);
}

/** Bucket hashes of a whole state given as (id, account) pairs in any order. */
export function bucketHashesOf(accounts: readonly (readonly [Hash, Account])[]): Hash[] {
  const sorted = [...accounts].sort((x, y) => compareBytes(x[0], y[0]));
  const byBucket: (readonly [Hash, Account])[][] = Array.from({ length: BUCKETS }, () => []);
  for (const entry of sorted) byBucket[entry[0][0]!]!.push(entry);
  return byBucket.map(bucketHash);
}

export interface Change {
  readonly id: Hash;
  /** Value in the base the overlay reads through to (`undefined` = absent). */
  readonly before: Account | undefined;
  after: Account | undefined;
}

/**
 * Changes on top of a base state that is read through `base`. Keys are the
 * ids' lowercase hex, whose string order is the ids' byte order.
 */
export class Overlay {
  readonly changes = new Map<string, Change>();
  readonly #base: (id: Hash) => Account | undefined;
  readonly #cache = new Map<string, Account | undefined>();

  constructor(base: (id: Hash) => Account | undefined) {
    this.#base = base;
  }

  get(id: Hash): Account | undefined {
    const key = hex(id);
    const c = this.changes.get(key);
    return c !== undefined ? c.after : this.#read(key, id);
  }

  set(id: Hash, account: Account | undefined): void {
    const key = hex(id);
    const c = this.changes.get(key);
    if (c !== undefined) c.after = account;
    else this.changes.set(key, { id, before: this.#read(key, id), after: account });
  }

  /** The base's value, read once per id. */
  #read(key: string, id: Hash): Account | undefined {
    if (this.#cache.has(key)) return this.#cache.get(key);
    const a = this.#base(id);
    this.#cache.set(key, a);
    return a;
  }
}

/** Why `tx` cannot be applied to `state` right now, or undefined if it can (see the file header). */
export function txProblem(state: Overlay, tx: TxFields): string | undefined {
  if (tx.amount <= 0) return 'amount is zero';
  if (compareBytes(tx.from, tx.to) === 0) return 'sender is the recipient';
  const from = state.get(tx.from);
  if (from === undefined) return 'unknown sender';
  if (tx.nonce !== from.nonce) return `nonce ${tx.nonce}, account is at ${from.nonce}`;
  if (from.nonce >= Number.MAX_SAFE_INTEGER) return 'sender nonce exhausted';
  const cost = BigInt(tx.amount) + BigInt(tx.fee);
  if (from.balance < cost) return `balance ${from.balance} < amount + fee ${cost}`;
  const to = state.get(tx.to);
  if ((to?.balance ?? 0n) + BigInt(tx.amount) > MAX_BALANCE) return 'recipient balance overflows';
  return undefined;
}

/** Applies `tx` if it can be (nothing changes otherwise); returns the problem, if any. */
export function applyTx(state: Overlay, tx: TxFields): string | undefined {
  const problem = txProblem(state, tx);
  if (problem !== undefined) return problem;
  const from = state.get(tx.from)!;
  state.set(tx.from, { balance: from.balance - BigInt(tx.amount) - BigInt(tx.fee), nonce: from.nonce + 1 });
  const to = state.get(tx.to);
  state.set(tx.to, { balance: (to?.balance ?? 0n) + BigInt(tx.amount), nonce: to?.nonce ?? 0 });
  return undefined;
}

// ---------------------------------------------------------------- undo records

export interface UndoEntry {
  readonly id: Hash;
  readonly before: Account | undefined;
}

export function encodeUndo(entries: readonly UndoEntry[]): Uint8Array {
  const out = new Uint8Array(entries.length * UNDO_RECORD_BYTES);
  const view = new DataView(out.buffer);
  entries.forEach(({ id, before }, i) => {
    const off = i * UNDO_RECORD_BYTES;
    out.set(id, off);
    if (before !== undefined) {
      out[off + HASH_BYTES] = 1;
      view.setBigUint64(off + HASH_BYTES + 1, before.balance);
      view.setBigUint64(off + HASH_BYTES + 9, BigInt(before.nonce));
    }
  });
  return out;
}

/** Throws STORE_CORRUPT if `bytes` is not an undo record this code wrote. */
export function decodeUndo(bytes: Uint8Array): UndoEntry[] {
  if (bytes.length % UNDO_RECORD_BYTES !== 0) throw new PqnetError('STORE_CORRUPT', `undo record of ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: UndoEntry[] = [];
  for (let off = 0; off < bytes.length; off += UNDO_RECORD_BYTES) {
    const id = bytes.slice(off, off + HASH_BYTES);
    const flag = bytes[off + HASH_BYTES];
    if (flag === 0) {
      out.push({ id, before: undefined });
      continue;
    }
    const balance = view.getBigUint64(off + HASH_BYTES + 1);
    const nonce = view.getBigUint64(off + HASH_BYTES + 9);
    if (flag !== 1 || balance > MAX_BALANCE || nonce > BigInt(Number.MAX_SAFE_INTEGER)) throw new PqnetError('STORE_CORRUPT', 'undo record out of range');
    out.push({ id, before: { balance, nonce: Number(nonce) } });
  }
  return out;
}

// ---------------------------------------------------------------- snapshots

export interface Snapshot {
  readonly manifest: StateManifest;
  readonly chunks: readonly Uint8Array[];
}

/** Cuts the records of `accounts` (sorted by id) into chunks of `chunkSize` bytes. */
export function buildSnapshot(
  accounts: Iterable<readonly [Hash, Account]>,
  count: number,
  chunkSize: number,
  at: { readonly height: number; readonly blockHash: Hash; readonly stateRoot: Hash },
): Snapshot {
  const totalBytes = count * ACCOUNT_RECORD_BYTES;
  const all = new Uint8Array(totalBytes);
  let n = 0;
  for (const [id, a] of accounts) {
    if (n === count) throw new PqnetError('INTERNAL', 'more accounts than counted');
    writeRecord(all, n++ * ACCOUNT_RECORD_BYTES, id, a);
  }
  if (n !== count) throw new PqnetError('INTERNAL', `${n} accounts, ${count} counted`);
  const chunks: Uint8Array[] = [];
  for (let off = 0; off < totalBytes; off += chunkSize) chunks.push(all.subarray(off, Math.min(totalBytes, off + chunkSize)));
  const manifest: StateManifest = Object.freeze({
    height: at.height,
    blockHash: at.blockHash,
    stateRoot: at.stateRoot,
    chunkSize,
    totalBytes,
    chunkHashes: Object.freeze(chunks.map((c) => sha3(c))),
  });
  return { manifest, chunks };
}

export interface DecodedState {
  /** Ids in ascending order, with their accounts. */
  readonly accounts: readonly (readonly [Hash, Account])[];
  readonly bucketHashes: readonly Hash[];
  readonly stateRoot: Hash;
}

function badState(message: string): never {
  throw new PqnetError('CHAIN_BAD_STATE', message);
}

/**
 * Checks a manifest's shape and the chunks against it (count, sizes, hashes),
 * then decodes the records: ids strictly ascending, nonces below 2^53,
 * balances ≤ 2^63 - 1, at most MAX_STATE_ACCOUNTS. Computes the bucket hashes
 * and root on the way. Throws CHAIN_BAD_STATE; never allocates more than the
 * checked total.
 */
export function decodeSnapshot(manifest: StateManifest, chunks: readonly Uint8Array[]): DecodedState {
  const { chunkSize, totalBytes, chunkHashes } = manifest;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < MIN_STATE_CHUNK_BYTES || chunkSize > MAX_STATE_CHUNK_BYTES) badState(`chunk size ${chunkSize}`);
  if (!Number.isSafeInteger(totalBytes) || totalBytes < 0 || totalBytes % ACCOUNT_RECORD_BYTES !== 0) badState(`total of ${totalBytes} bytes is not whole records`);
  const count = totalBytes / ACCOUNT_RECORD_BYTES;
  if (count > MAX_STATE_ACCOUNTS) badState(`${count} accounts > ${MAX_STATE_ACCOUNTS}`);
  const chunkCount = Math.ceil(totalBytes / chunkSize);
  if (!Array.isArray(chunkHashes) || chunkHashes.length !== chunkCount || chunkCount > MAX_STATE_CHUNKS) badState(`${String(chunkHashes.length)} chunk hashes, expected ${chunkCount}`);
  if (chunks.length !== chunkCount) badState(`${chunks.length} chunks, expected ${chunkCount}`);
  for (let i = 0; i < chunkCount; i++) {
    const c = chunks[i]!;
    const expected = i < chunkCount - 1 ? chunkSize : totalBytes - chunkSize * (chunkCount - 1);
    if (!(c instanceof Uint8Array) || c.length !== expected) badState(`chunk ${i} has ${String(c.length)} bytes, expected ${expected}`);
    const h = chunkHashes[i];
    if (!(h instanceof Uint8Array) || compareBytes(sha3(c), h) !== 0) badState(`chunk ${i} does not hash to its manifest entry`);
  }
  // Records may span chunks: gather each one through a 48-byte window.
  const accounts: (readonly [Hash, Account])[] = [];
  const bucketHashes: Hash[] = [];
  let bucket = 0;
  let bucketStart = 0;
  const record = new Uint8Array(ACCOUNT_RECORD_BYTES);
  const view = new DataView(record.buffer);
  let filled = 0;
  let prev: Hash | undefined;
  const closeBucketsBelow = (b: number): void => {
    while (bucket < b) {
      bucketHashes.push(bucketHash(accounts.slice(bucketStart)));
      bucketStart = accounts.length;
      bucket++;
    }
  };
  for (const c of chunks) {
    for (let off = 0; off < c.length;) {
      const take = Math.min(ACCOUNT_RECORD_BYTES - filled, c.length - off);
      record.set(c.subarray(off, off + take), filled);
      filled += take;
      off += take;
      if (filled < ACCOUNT_RECORD_BYTES) continue;
      filled = 0;
      const id = record.slice(0, HASH_BYTES);
      if (prev !== undefined && compareBytes(prev, id) >= 0) badState(`account ${accounts.length} is not above the one before it`);
      const balance = view.getBigUint64(HASH_BYTES);
      const nonce = view.getBigUint64(HASH_BYTES + 8);
      if (balance > MAX_BALANCE) badState(`account ${accounts.length}: balance above 2^63 - 1`);
      if (nonce > BigInt(Number.MAX_SAFE_INTEGER)) badState(`account ${accounts.length}: nonce above 2^53 - 1`);
      closeBucketsBelow(id[0]!);
      accounts.push([id, { balance, nonce: Number(nonce) }]);
      prev = id;
    }
  }
  closeBucketsBelow(BUCKETS);
  return { accounts, bucketHashes, stateRoot: stateRootOf(bucketHashes) };
}
