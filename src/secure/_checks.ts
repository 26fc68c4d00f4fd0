/** Checks shared by both crypto providers. */
import { PqnetError } from '../core/errors.ts';

/** RFC 7748 §6.1: an all-zero X25519 output means the peer sent a low-order point. */
export function checkSharedSecret(ss: Uint8Array): Uint8Array {
  let acc = 0;
  for (const b of ss) acc |= b;
  if (acc === 0) throw new PqnetError('HS_BAD_KEY', 'x25519 shared secret is zero (low-order point)');
  return ss;
}

/** HKDF-SHA3-256 can produce 1 to 255 * 32 bytes (RFC 5869 §2.3). */
export function checkHkdfLength(length: number): number {
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) throw new PqnetError('INVALID_ARGUMENT', `HKDF length ${length} outside 1..8160`);
  return length;
}
