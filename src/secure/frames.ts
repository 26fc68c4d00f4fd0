/**
 * Sealing and opening of encrypted frames, one direction each (docs/spec/wire.md).
 * The nonce is an implicit 64-bit counter, so a reordered, replayed, dropped
 * or forged frame fails authentication and the connection closes.
 *
 * Rekey: a sender that has used a key for `rekeyAfterFrames` frames,
 * `rekeyAfterBytes` plaintext bytes or `rekeyAfterMs` sets FLAG_REKEY on its
 * next frame and afterwards seals with
 *   next_key = HKDF-SHA3-256(ikm = key, salt = "", info = "pqnet/1 rekey", 32)
 * starting again at counter 0. The receiver does the same after opening a frame
 * carrying the flag. Old keys are wiped.
 */
import { utf8, wipe, writeU32BE } from '../core/bytes.ts';
import { PqnetError } from '../core/errors.ts';
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, FRAME_HEADER_BYTES, KEY_BYTES, LENGTH_PREFIX_BYTES, MAX_CHUNK_BYTES, MAX_FRAMES_PER_KEY, type Limits } from '../core/limits.ts';
import { decodeFrameHeader, encodeFrameHeader, FLAG_REKEY, type FrameHeader, type RawFrame } from '../wire/frame.ts';
import type { AeadAlg } from './algorithms.ts';
import type { Aead, CryptoProvider } from './provider.ts';

export const REKEY_LABEL = utf8('pqnet/1 rekey');
const EMPTY = new Uint8Array(0);
/**
 * A chunk up to this long is copied behind its header so the AEAD encrypts one
 * part, not two: the copy costs less than a second cipher call (about 0.5 us,
 * an eighth of the seal of a 100-byte frame with node:crypto). Longer chunks
 * are passed as a second part rather than copied (for 64 KiB chunks neither way
 * wins on both ciphers). The bound keeps header + chunk under 4 KiB, where
 * Buffer.allocUnsafe takes from Node's shared pool.
 */
const JOIN_CHUNK_MAX_BYTES = 4_096 - FRAME_HEADER_BYTES - 1;

export function nextKey(provider: CryptoProvider, key: Uint8Array): Uint8Array {
  return provider.hkdfSha3_256(key, EMPTY, REKEY_LABEL, KEY_BYTES);
}

export function frameNonce(counter: number): Uint8Array {
  const n = new Uint8Array(AEAD_NONCE_BYTES);
  // counter < 2^32 by MAX_FRAMES_PER_KEY; the high half of the u64 stays zero.
  writeU32BE(n, 8, counter);
  return n;
}

/**
 * One direction's key, AEAD and counter. The nonce buffer is rewritten for each
 * frame rather than allocated: `Aead.seal` and `open` use their arguments only
 * during the call (node:crypto copies the IV and AAD into OpenSSL; @noble uses
 * them synchronously), and a session seals and opens one frame at a time.
 */
class Direction {
  protected readonly provider: CryptoProvider;
  protected readonly alg: AeadAlg;
  protected key: Uint8Array;
  protected aead: Aead;
  protected counter = 0;
  readonly #nonce = new Uint8Array(AEAD_NONCE_BYTES);
  /** Frames sealed or opened under all keys, and key generations used. */
  frames = 0;
  generation = 0;

  constructor(provider: CryptoProvider, alg: AeadAlg, key: Uint8Array) {
    this.provider = provider;
    this.alg = alg;
    this.key = key.slice();
    this.aead = provider.aead(alg, this.key);
  }

  /** The nonce for the current counter (frameNonce(counter), in the reused buffer). */
  protected nonce(): Uint8Array {
    // counter < 2^32 by MAX_FRAMES_PER_KEY; bytes 0-7 stay zero.
    writeU32BE(this.#nonce, 8, this.counter);
    return this.#nonce;
  }

  protected ratchet(): void {
    const next = nextKey(this.provider, this.key);
    wipe(this.key);
    this.aead.destroy();
    this.key = next;
    this.aead = this.provider.aead(this.alg, next);
    this.counter = 0;
    this.generation++;
  }

  destroy(): void {
    wipe(this.key);
    this.aead.destroy();
  }
}

export class FrameSealer extends Direction {
  readonly #limits: Limits;
  /** The length prefix, which is also the AAD; copied into each frame, so reused. */
  readonly #aad = new Uint8Array(LENGTH_PREFIX_BYTES);
  #bytesUnderKey = 0;
  #keySince: number;

  constructor(provider: CryptoProvider, alg: AeadAlg, key: Uint8Array, limits: Limits, now: number) {
    super(provider, alg, key);
    this.#limits = limits;
    this.#keySince = now;
  }

  /** Whether the next frame should carry FLAG_REKEY. */
  rekeyDue(now: number): boolean {
    return (
      this.counter + 1 >= this.#limits.rekeyAfterFrames ||
      this.#bytesUnderKey >= this.#limits.rekeyAfterBytes ||
      now - this.#keySince >= this.#limits.rekeyAfterMs
    );
  }

  /**
   * Seal one frame. Returns `len || sealed` in one buffer. Sets FLAG_REKEY by
   * itself when a budget is spent.
   */
  seal(header: FrameHeader, chunk: Uint8Array, now: number): Uint8Array {
    if (chunk.length > MAX_CHUNK_BYTES) throw new PqnetError('INVALID_ARGUMENT', `chunk of ${chunk.length} bytes exceeds ${MAX_CHUNK_BYTES}`);
    if (this.counter >= MAX_FRAMES_PER_KEY) throw new PqnetError('FRAME_COUNTER_EXHAUSTED');
    const rekey = this.rekeyDue(now);
    const flags = rekey ? header.flags | FLAG_REKEY : header.flags & ~FLAG_REKEY;
    const sealedLen = FRAME_HEADER_BYTES + chunk.length + AEAD_TAG_BYTES;
    const aad = this.#aad;
    writeU32BE(aad, 0, sealedLen);
    const hdr = encodeFrameHeader(flags === header.flags ? header : { ...header, flags });
    let plaintext: Uint8Array | Uint8Array[];
    if (chunk.length <= JOIN_CHUNK_MAX_BYTES) {
      // One part; the pooled allocation is cheap and every byte is written here.
      plaintext = Buffer.allocUnsafe(FRAME_HEADER_BYTES + chunk.length);
      plaintext.set(hdr, 0);
      plaintext.set(chunk, FRAME_HEADER_BYTES);
    } else {
      plaintext = [hdr, chunk];
    }
    const out = this.aead.seal(this.nonce(), aad, plaintext, LENGTH_PREFIX_BYTES);
    out.set(aad, 0);
    this.counter++;
    this.frames++;
    this.#bytesUnderKey += chunk.length;
    if (rekey) {
      this.ratchet();
      this.#bytesUnderKey = 0;
      this.#keySince = now;
    }
    return out;
  }
}

export interface OpenedFrame extends FrameHeader {
  readonly chunk: Uint8Array;
}

export class FrameOpener extends Direction {
  /** Open one frame from the splitter. Throws FRAME_AEAD_FAILED, FRAME_BAD_HEADER or FRAME_COUNTER_EXHAUSTED. */
  open(raw: RawFrame): OpenedFrame {
    if (this.counter >= MAX_FRAMES_PER_KEY) throw new PqnetError('FRAME_COUNTER_EXHAUSTED');
    const pt = this.aead.open(this.nonce(), raw.aad, raw.sealed);
    if (pt === null) throw new PqnetError('FRAME_AEAD_FAILED', `frame ${this.frames} (key generation ${this.generation}, counter ${this.counter})`);
    const header = decodeFrameHeader(pt);
    this.counter++;
    this.frames++;
    if ((header.flags & FLAG_REKEY) !== 0) this.ratchet();
    return { ...header, chunk: pt.subarray(FRAME_HEADER_BYTES) };
  }
}
