/**
 * Hashing and fixed-width integers for the devchain: SHA3-256 (`node:crypto`)
 * and big-endian conversions between bigints and bytes.
 */
import { createHash } from 'node:crypto';

/** `n` as `width` big-endian bytes; RangeError if it does not fit. */
export function bigintToBytes(n: bigint, width: number): Uint8Array {
  if (n < 0n || n >= 1n << BigInt(width * 8)) throw new RangeError(`${n} does not fit ${width} bytes`);
  const out = new Uint8Array(width);
  let v = n;
  for (let i = width - 1; i >= 0 && v > 0n; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function bytesToBigint(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`);
}

/** SHA3-256 of the concatenation of `parts` (a copy, never a pooled Buffer). */
export function sha3(...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha3-256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}


/** Byte order of two byte strings (memcmp, then length), as SQLite orders BLOBs. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export const ZERO_HASH: Uint8Array = new Uint8Array(32);
