/**
 * Compact blocks (docs/spec/relay.md, Compact blocks): a block announced as
 * its header, 6-byte short transaction ids and a few prefilled transactions;
 * the receiver rebuilds it from its mempool and asks only for what it lacks.
 *
 * - **SipHash-2-4** (Aumasson and Bernstein, "SipHash: a fast short-input
 *   PRF", 2012): 64-bit words as pairs of 32-bit halves, so no BigInt on the
 *   hot path. Checked against the reference vectors of the paper's appendix
 *   (test/sync/compact.test.ts). `@noble/hashes` has no SipHash.
 * - **Short id** of a transaction = the low 48 bits of SipHash-2-4(k, tx id),
 *   on the wire as 6 little-endian bytes, with k = the first 16 bytes of
 *   SHA3-256(header bytes || nonce). The nonce (8 random bytes per block and
 *   sender) makes the key unpredictable before the block is out, so nobody can
 *   grind transactions whose short ids collide in the block announced.
 * - **Build** (`CompactBuilder`): short ids of every transaction are computed
 *   once per block; each receiving peer gets the transactions chosen by a
 *   predicate (the relay prefills those the peer is not known to have) in
 *   full, the rest as short ids.
 * - **Rebuild** (`startRebuild`, `PartialBlock`): prefilled transactions take
 *   their slots; the other slots are matched against the mempool by short id.
 *   Two equal short ids in the message, or two mempool transactions matching
 *   one slot, are a *collision*: the receiver fetches the full block instead.
 *   Slots left empty are *missing*: asked for with GETBLOCKTXN, and the answer
 *   fills them (`PartialBlock.fill`). The result goes to the chain's
 *   `assembleBlock`, which checks the transactions against the header's root.
 *
 * Everything here is pure: no chain, no clock, no I/O.
 */
import { sha3_256 } from '@noble/hashes/sha3.js';
import type { ChainBlock, ChainHeader, ChainTx, Hash } from '../chain/adapter.ts';

/** Bytes of a short transaction id on the wire (BIP 152's size). */
export const SHORT_ID_BYTES = 6;
/** Bytes of the per-block nonce that keys the short ids. */
export const COMPACT_NONCE_BYTES = 8;
/** Bytes of a SipHash key. */
export const SIPHASH_KEY_BYTES = 16;

// ------------------------------------------------------------------ SipHash-2-4

/** A SipHash key as four 32-bit words: k0 = (k0h, k0l), k1 = (k1h, k1l), little-endian from the 16 key bytes. */
export interface SipKey {
  readonly k0l: number;
  readonly k0h: number;
  readonly k1l: number;
  readonly k1h: number;
}

const le32 = (b: Uint8Array, i: number): number => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;

export function sipKey(key: Uint8Array): SipKey {
  if (!(key instanceof Uint8Array) || key.length !== SIPHASH_KEY_BYTES) throw new RangeError(`a SipHash key is ${SIPHASH_KEY_BYTES} bytes`);
  return Object.freeze({ k0l: le32(key, 0), k0h: le32(key, 4), k1l: le32(key, 8), k1h: le32(key, 12) });
}

/** SipHash-2-4 of `msg`; the 64-bit result as [low 32 bits, high 32 bits] in `out`. */
function sip(k: SipKey, msg: Uint8Array, out: Uint32Array): void {
  // "somepseudorandomlygeneratedbytes"
  let v0l = (k.k0l ^ 0x70736575) >>> 0, v0h = (k.k0h ^ 0x736f6d65) >>> 0;
  let v1l = (k.k1l ^ 0x6e646f6d) >>> 0, v1h = (k.k1h ^ 0x646f7261) >>> 0;
  let v2l = (k.k0l ^ 0x6e657261) >>> 0, v2h = (k.k0h ^ 0x6c796765) >>> 0;
  let v3l = (k.k1l ^ 0x79746573) >>> 0, v3h = (k.k1h ^ 0x74656462) >>> 0;
  const rounds = (n: number): void => {
    for (let r = 0; r < n; r++) {
      let s: number, t: number;
      // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
      s = v0l + v1l; v0h = (v0h + v1h + (s > 0xffffffff ? 1 : 0)) >>> 0; v0l = s >>> 0;
      t = v1h; v1h = ((v1h << 13) | (v1l >>> 19)) >>> 0; v1l = ((v1l << 13) | (t >>> 19)) >>> 0;
      v1l = (v1l ^ v0l) >>> 0; v1h = (v1h ^ v0h) >>> 0;
      t = v0l; v0l = v0h; v0h = t;
      // v2 += v3; v3 <<<= 16; v3 ^= v2
      s = v2l + v3l; v2h = (v2h + v3h + (s > 0xffffffff ? 1 : 0)) >>> 0; v2l = s >>> 0;
      t = v3h; v3h = ((v3h << 16) | (v3l >>> 16)) >>> 0; v3l = ((v3l << 16) | (t >>> 16)) >>> 0;
      v3l = (v3l ^ v2l) >>> 0; v3h = (v3h ^ v2h) >>> 0;
      // v0 += v3; v3 <<<= 21; v3 ^= v0
      s = v0l + v3l; v0h = (v0h + v3h + (s > 0xffffffff ? 1 : 0)) >>> 0; v0l = s >>> 0;
      t = v3h; v3h = ((v3h << 21) | (v3l >>> 11)) >>> 0; v3l = ((v3l << 21) | (t >>> 11)) >>> 0;
      v3l = (v3l ^ v0l) >>> 0; v3h = (v3h ^ v0h) >>> 0;
      // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
      s = v2l + v1l; v2h = (v2h + v1h + (s > 0xffffffff ? 1 : 0)) >>> 0; v2l = s >>> 0;
      t = v1h; v1h = ((v1h << 17) | (v1l >>> 15)) >>> 0; v1l = ((v1l << 17) | (t >>> 15)) >>> 0;
      v1l = (v1l ^ v2l) >>> 0; v1h = (v1h ^ v2h) >>> 0;
      t = v2l; v2l = v2h; v2h = t;
    }
  };
  const compress = (ml: number, mh: number): void => {
    v3l = (v3l ^ ml) >>> 0; v3h = (v3h ^ mh) >>> 0;
    rounds(2);
    v0l = (v0l ^ ml) >>> 0; v0h = (v0h ^ mh) >>> 0;
  };
  const len = msg.length;
  const whole = len - (len % 8);
  for (let i = 0; i < whole; i += 8) compress(le32(msg, i), le32(msg, i + 4));
  // Last word: the remaining bytes, little-endian, with the length (mod 256) in the top byte.
  let ml = 0, mh = (len & 0xff) << 24;
  for (let i = whole; i < len; i++) {
    const j = i - whole;
    if (j < 4) ml |= msg[i]! << (8 * j);
    else mh |= msg[i]! << (8 * (j - 4));
  }
  compress(ml >>> 0, mh >>> 0);
  v2l = (v2l ^ 0xff) >>> 0;
  rounds(4);
  out[0] = (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
  out[1] = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
}

const OUT = new Uint32Array(2);

/** SipHash-2-4 of `msg` under a 16-byte key, as the 8 little-endian bytes of the reference implementation. */
export function siphash24(key: Uint8Array | SipKey, msg: Uint8Array): Uint8Array {
  sip(key instanceof Uint8Array ? sipKey(key) : key, msg, OUT);
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, OUT[0]!, true);
  dv.setUint32(4, OUT[1]!, true);
  return b;
}

/** The low 48 bits of SipHash-2-4(k, msg), as a number (exact: below 2^53). */
export function sipShortId(k: SipKey, msg: Uint8Array): number {
  sip(k, msg, OUT);
  return (OUT[1]! & 0xffff) * 0x1_0000_0000 + OUT[0]!;
}

/** The low 53 bits of SipHash-2-4(k, msg), as a number: a keyed digest that fits a Map key without allocation. */
export function sip53(k: SipKey, msg: Uint8Array): number {
  sip(k, msg, OUT);
  return (OUT[1]! & 0x1f_ffff) * 0x1_0000_0000 + OUT[0]!;
}

// ------------------------------------------------------------------ short ids

/** The short-id key of a compact block: the first 16 bytes of SHA3-256(header bytes || nonce). */
export function compactKey(headerBytes: Uint8Array, nonce: Uint8Array): SipKey {
  const buf = new Uint8Array(headerBytes.length + nonce.length);
  buf.set(headerBytes);
  buf.set(nonce, headerBytes.length);
  return sipKey(sha3_256(buf).subarray(0, SIPHASH_KEY_BYTES));
}

export function shortIdOf(k: SipKey, txId: Hash): number {
  return sipShortId(k, txId);
}

function writeShortId(out: Uint8Array, at: number, id: number): void {
  const lo = id % 0x1_0000_0000;
  const hi = Math.floor(id / 0x1_0000_0000);
  out[at] = lo & 0xff;
  out[at + 1] = (lo >>> 8) & 0xff;
  out[at + 2] = (lo >>> 16) & 0xff;
  out[at + 3] = (lo >>> 24) & 0xff;
  out[at + 4] = hi & 0xff;
  out[at + 5] = (hi >>> 8) & 0xff;
}

/** The `i`-th short id of a packed list (6 little-endian bytes each). */
export function readShortId(packed: Uint8Array, i: number): number {
  const at = i * SHORT_ID_BYTES;
  return le32(packed, at) + (packed[at + 4]! | (packed[at + 5]! << 8)) * 0x1_0000_0000;
}

// ------------------------------------------------------------------ the message

/** CMPCTBLOCK's body: header bytes, nonce, packed short ids, prefilled [index, tx bytes] in increasing index order. */
export type CompactBlock = [header: Uint8Array, nonce: Uint8Array, shortIds: Uint8Array, prefilled: [number, Uint8Array][]];

/** Builds the compact forms of one block: short ids computed once, prefilled transactions chosen per receiver. */
export class CompactBuilder {
  readonly block: ChainBlock;
  readonly nonce: Uint8Array;
  readonly #ids: Uint8Array;

  constructor(block: ChainBlock, nonce: Uint8Array) {
    if (nonce.length !== COMPACT_NONCE_BYTES) throw new RangeError(`a compact block nonce is ${COMPACT_NONCE_BYTES} bytes`);
    if (block.txs.length !== block.txIds.length) throw new RangeError('block transactions and ids differ in number');
    this.block = block;
    this.nonce = nonce;
    const k = compactKey(block.header.bytes, nonce);
    this.#ids = new Uint8Array(block.txIds.length * SHORT_ID_BYTES);
    block.txIds.forEach((id, i) => writeShortId(this.#ids, i * SHORT_ID_BYTES, shortIdOf(k, id)));
  }

  /** The compact block with the transactions for which `prefill(index, txId)` holds sent in full. */
  build(prefill: (index: number, txId: Hash) => boolean = () => false): CompactBlock {
    const { txIds, txs } = this.block;
    const prefilled: [number, Uint8Array][] = [];
    for (let i = 0; i < txIds.length; i++) if (prefill(i, txIds[i]!)) prefilled.push([i, txs[i]!]);
    if (prefilled.length === 0) return [this.block.header.bytes, this.nonce, this.#ids, []];
    const ids = new Uint8Array((txIds.length - prefilled.length) * SHORT_ID_BYTES);
    let at = 0;
    let p = 0;
    for (let i = 0; i < txIds.length; i++) {
      if (p < prefilled.length && prefilled[p]![0] === i) {
        p++;
        continue;
      }
      ids.set(this.#ids.subarray(i * SHORT_ID_BYTES, (i + 1) * SHORT_ID_BYTES), at);
      at += SHORT_ID_BYTES;
    }
    return [this.block.header.bytes, this.nonce, ids, prefilled];
  }
}

// ------------------------------------------------------------------ rebuild

export type RebuildStart =
  /** The message breaks the format (indexes out of order or range, too many transactions): the sender's fault. */
  | { readonly kind: 'malformed'; readonly detail: string }
  /** Two slots share a short id, or one slot matches two mempool transactions: fetch the full block. */
  | { readonly kind: 'collision'; readonly detail: string }
  /** Every slot is filled: the transactions in block order. */
  | { readonly kind: 'complete'; readonly txs: Uint8Array[]; readonly fromMempool: number }
  /** Some slots are empty: ask for `partial.missing` with GETBLOCKTXN. */
  | { readonly kind: 'missing'; readonly partial: PartialBlock; readonly fromMempool: number };

/** A block being rebuilt: its slots and the indexes still missing. */
export class PartialBlock {
  readonly header: ChainHeader;
  /** Indexes of the empty slots, increasing. */
  readonly missing: readonly number[];
  readonly #slots: (Uint8Array | undefined)[];

  constructor(header: ChainHeader, slots: (Uint8Array | undefined)[]) {
    this.header = header;
    this.#slots = slots;
    const missing: number[] = [];
    for (let i = 0; i < slots.length; i++) if (slots[i] === undefined) missing.push(i);
    this.missing = Object.freeze(missing);
  }

  get txCount(): number {
    return this.#slots.length;
  }

  /**
   * Fills the missing slots with a GETBLOCKTXN answer (one transaction per
   * missing index, in order) and returns the block's transactions, or
   * `undefined` if the answer has the wrong number of transactions.
   */
  fill(txs: readonly Uint8Array[]): Uint8Array[] | undefined {
    if (txs.length !== this.missing.length) return undefined;
    const out = this.#slots.slice();
    this.missing.forEach((index, j) => {
      out[index] = txs[j]!;
    });
    return out as Uint8Array[];
  }
}

/**
 * Starts rebuilding the block of `header` from CMPCTBLOCK's `shortIds` and
 * `prefilled` and the transactions `mempool` yields. `maxTxs` bounds the
 * transaction count (the message caps already bound it; this refuses what a
 * block could never hold).
 */
export function startRebuild(header: ChainHeader, msg: CompactBlock, mempool: Iterable<ChainTx>, maxTxs: number): RebuildStart {
  const [, nonce, shortIds, prefilled] = msg;
  if (shortIds.length % SHORT_ID_BYTES !== 0) return { kind: 'malformed', detail: `short ids take ${shortIds.length} bytes, not a multiple of ${SHORT_ID_BYTES}` };
  const idCount = shortIds.length / SHORT_ID_BYTES;
  const total = idCount + prefilled.length;
  if (total > maxTxs) return { kind: 'malformed', detail: `${total} transactions > ${maxTxs}` };
  const slots: (Uint8Array | undefined)[] = Array.from({ length: total }, () => undefined);
  let last = -1;
  for (const [index, tx] of prefilled) {
    if (index <= last || index >= total) return { kind: 'malformed', detail: `prefilled index ${index} after ${last} in a block of ${total}` };
    slots[index] = tx;
    last = index;
  }
  // Slot of each short id: the empty slots in order.
  const slotOf = new Map<number, number>();
  let next = 0;
  for (let i = 0; i < idCount; i++) {
    while (slots[next] !== undefined) next++;
    const sid = readShortId(shortIds, i);
    if (slotOf.has(sid)) return { kind: 'collision', detail: `short id ${sid.toString(16)} appears twice in the block` };
    slotOf.set(sid, next++);
  }
  let fromMempool = 0;
  if (idCount > 0) {
    const k = compactKey(header.bytes, nonce);
    for (const tx of mempool) {
      const slot = slotOf.get(shortIdOf(k, tx.id));
      if (slot === undefined) continue;
      if (slots[slot] !== undefined) return { kind: 'collision', detail: `two mempool transactions share the short id of slot ${slot}` };
      slots[slot] = tx.bytes;
      fromMempool++;
    }
  }
  const partial = new PartialBlock(header, slots);
  if (partial.missing.length === 0) return { kind: 'complete', txs: slots as Uint8Array[], fromMempool };
  return { kind: 'missing', partial, fromMempool };
}
