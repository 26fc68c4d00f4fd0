/**
 * Stateless retry cookies (docs/spec/handshake.md, RETRY). Under load the
 * responder answers HELLO_I with RETRY{cookie} and keeps nothing; it does the
 * expensive work only for a HELLO_I that echoes a fresh cookie. Checking a
 * cookie costs one HMAC.
 *
 *   cookie = issued_at:u64be || HMAC-SHA3-256(secret, "pqnet/1 cookie" || issued_at
 *            || u16be(len(remote)) || remote || SHA3-256(HELLO_I body with empty cookie))
 *
 * The cookie's format is local to the responder (the initiator only echoes it),
 * so it is not a compatibility requirement; its size is (COOKIE_BYTES).
 */
import { concatBytes, equalBytes, u64BE, utf8 } from '../core/bytes.ts';
import { COOKIE_BYTES } from '../core/limits.ts';
import { systemRandom, type Random } from '../core/random.ts';
import type { CryptoProvider } from './provider.ts';

const LABEL = utf8('pqnet/1 cookie');

export class CookieJar {
  readonly #secret: Uint8Array;
  readonly #provider: CryptoProvider;
  readonly #ttlMs: number;

  constructor(provider: CryptoProvider, ttlMs: number, random: Random = systemRandom) {
    this.#provider = provider;
    this.#ttlMs = ttlMs;
    this.#secret = random.bytes(32);
  }

  #mac(issuedAt: Uint8Array, remote: string, helloDigest: Uint8Array): Uint8Array {
    const r = utf8(remote);
    const len = Uint8Array.of(r.length >>> 8, r.length & 0xff);
    return this.#provider.hmacSha3_256(this.#secret, concatBytes(LABEL, issuedAt, len, r, helloDigest));
  }

  issue(remote: string, helloDigest: Uint8Array, now: number): Uint8Array {
    const issuedAt = u64BE(Math.floor(now));
    return concatBytes(issuedAt, this.#mac(issuedAt, remote, helloDigest));
  }

  verify(cookie: Uint8Array, remote: string, helloDigest: Uint8Array, now: number): boolean {
    if (cookie.length !== COOKIE_BYTES) return false;
    const issuedAtBytes = cookie.subarray(0, 8);
    const issuedAt = Number(new DataView(issuedAtBytes.buffer, issuedAtBytes.byteOffset, 8).getBigUint64(0));
    const age = Math.floor(now) - issuedAt;
    if (age < 0 || age > this.#ttlMs) return false;
    return equalBytes(cookie.subarray(8), this.#mac(issuedAtBytes, remote, helloDigest));
  }
}
