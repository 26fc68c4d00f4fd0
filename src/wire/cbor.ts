/**
 * CBOR codec (DESIGN.md, Principle 6). Encoding is cborg's canonical form
 * (RFC 8949 §4.2: preferred serialisation, definite lengths, sorted map keys).
 * Decoding is strict and bounded: the input length is capped by the caller
 * before decoding, non-minimal heads, indefinite lengths, undefined, NaN,
 * Infinity, duplicate map keys, trailing bytes and integers beyond 2^53 are
 * rejected, and the bytes must re-encode to themselves (canonical form).
 */
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { PqnetError } from '../core/errors.ts';

const DECODE_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowNaN: false,
  allowInfinity: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  useMaps: false,
} as const;

export function encodeCbor(value: unknown): Uint8Array {
  return cborEncode(value);
}

/**
 * Decode one canonical CBOR item occupying all of `bytes`.
 * Throws MSG_OVERSIZE, MSG_MALFORMED or MSG_NON_CANONICAL; nothing else.
 */
export function decodeCbor(bytes: Uint8Array, maxBytes: number): unknown {
  if (bytes.length > maxBytes) throw new PqnetError('MSG_OVERSIZE', `${bytes.length} > ${maxBytes} bytes`);
  let value: unknown;
  try {
    value = cborDecode(bytes, DECODE_OPTIONS);
  } catch (e) {
    // Includes RangeError from pathological nesting depth.
    throw new PqnetError('MSG_MALFORMED', e instanceof Error ? e.message : undefined, { cause: e });
  }
  let again: Uint8Array;
  try {
    again = cborEncode(value);
  } catch (e) {
    throw new PqnetError('MSG_NON_CANONICAL', 'value cannot be re-encoded', { cause: e });
  }
  if (!sameBytes(again, bytes)) throw new PqnetError('MSG_NON_CANONICAL');
  return value;
}

/** Public bytes: a JS loop for short inputs, a native memcmp above 256 bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (a.length > 256) return Buffer.compare(a, b) === 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
