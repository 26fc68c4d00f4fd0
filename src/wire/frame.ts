/**
 * Frame layout (docs/spec/wire.md):
 *
 *   frame     = len:u32be || sealed
 *   sealed    = AEAD(key, nonce = 0x00000000 || counter:u64be, aad = len, plaintext) (ciphertext || tag)
 *   plaintext = channel:u8 || msg_id:u16be || seq:u32be || flags:u8 || chunk
 *
 * This module owns the plaintext header and the length-prefixed stream
 * splitting; sealing and opening live in secure/frames.ts.
 */
import { ByteQueue } from '../core/byte-queue.ts';
import { PqnetError } from '../core/errors.ts';
import { FRAME_HEADER_BYTES, LENGTH_PREFIX_BYTES, MAX_FRAME_CIPHERTEXT_BYTES, MIN_FRAME_CIPHERTEXT_BYTES } from '../core/limits.ts';

/** More chunks of the same message follow on this channel. */
export const FLAG_MORE = 0x01;
/** The sender switches to its next key after this frame. */
export const FLAG_REKEY = 0x02;
export const FLAGS_KNOWN = FLAG_MORE | FLAG_REKEY;

export interface FrameHeader {
  readonly channel: number;
  readonly msgId: number;
  readonly seq: number;
  readonly flags: number;
}

/** Throws INVALID_ARGUMENT for a field out of range or a reserved flag bit (local misuse). */
export function encodeFrameHeader(h: FrameHeader): Uint8Array {
  if (!isUint(h.channel, 0xff) || !isUint(h.msgId, 0xffff) || !isUint(h.seq, 0xffffffff) || !isUint(h.flags, 0xff) || (h.flags & ~FLAGS_KNOWN) !== 0) {
    throw new PqnetError('INVALID_ARGUMENT', `bad frame header ${JSON.stringify(h)}`);
  }
  const b = new Uint8Array(FRAME_HEADER_BYTES);
  b[0] = h.channel;
  b[1] = h.msgId >>> 8;
  b[2] = h.msgId & 0xff;
  b[3] = h.seq >>> 24;
  b[4] = (h.seq >>> 16) & 0xff;
  b[5] = (h.seq >>> 8) & 0xff;
  b[6] = h.seq & 0xff;
  b[7] = h.flags;
  return b;
}

function isUint(v: number, max: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= max;
}

/** Throws FRAME_BAD_HEADER for a short plaintext or reserved flag bits. */
export function decodeFrameHeader(pt: Uint8Array): FrameHeader {
  if (pt.length < FRAME_HEADER_BYTES) throw new PqnetError('FRAME_BAD_HEADER', 'plaintext shorter than the header');
  const flags = pt[7]!;
  if ((flags & ~FLAGS_KNOWN) !== 0) throw new PqnetError('FRAME_BAD_HEADER', `reserved flag bits 0x${flags.toString(16)}`);
  return {
    channel: pt[0]!,
    msgId: (pt[1]! << 8) | pt[2]!,
    seq: ((pt[3]! << 24) >>> 0) + (pt[4]! << 16) + (pt[5]! << 8) + pt[6]!,
    flags,
  };
}

export interface RawFrame {
  /** The 4-byte length prefix, which is also the AEAD associated data. */
  readonly aad: Uint8Array;
  readonly sealed: Uint8Array;
}

/**
 * Splits a byte stream into length-prefixed frames, whatever the segmentation.
 * The length is checked against [MIN, MAX] as soon as its 4 bytes are in, before
 * any buffer for the body exists.
 */
export class FrameSplitter {
  readonly #queue = new ByteQueue();
  readonly #max: number;

  constructor(maxSealed: number = MAX_FRAME_CIPHERTEXT_BYTES) {
    this.#max = maxSealed;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.#queue.length;
  }

  push(bytes: Uint8Array): void {
    this.#queue.push(bytes);
  }

  /** The next whole frame, or `undefined` until more bytes arrive. */
  next(): RawFrame | undefined {
    if (this.#queue.length < LENGTH_PREFIX_BYTES) return undefined;
    const len = this.#queue.peekU32BE(0);
    if (len > this.#max) throw new PqnetError('FRAME_OVERSIZE', `length prefix ${len} > ${this.#max}`);
    if (len < MIN_FRAME_CIPHERTEXT_BYTES) throw new PqnetError('FRAME_UNDERSIZE', `length prefix ${len} < ${MIN_FRAME_CIPHERTEXT_BYTES}`);
    if (this.#queue.length < LENGTH_PREFIX_BYTES + len) return undefined;
    const aad = this.#queue.take(LENGTH_PREFIX_BYTES).slice();
    return { aad, sealed: this.#queue.take(len) };
  }
}
