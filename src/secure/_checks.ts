/** Checks shared by both crypto providers. */
import { PqnetError } from '../core/errors.ts';

/** RFC 7748 §6.1: an all-zero X25519 output means the peer sent a low-order point. */
export function checkSharedSecret(ss: Uint8Array): Uint8Array {
  let acc = 0;
  for (const b of ss) acc |= b;
  if (acc === 0) throw new PqnetError('HS_BAD_KEY', 'x25519 shared secret is zero (low-order point)');
  return ss;
}
