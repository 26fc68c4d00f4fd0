/**
 * Plaintext handshake records (docs/spec/handshake.md):
 *
 *   record = len:u32be || type:u8 || body        (len counts type and body)
 *
 * Bodies are canonical CBOR arrays, except AUTH_R/AUTH_I whose body is an AEAD
 * ciphertext of a canonical CBOR array. Each type has a size cap, checked as
 * soon as the five header bytes are in, before the body is buffered.
 */
import { ByteQueue } from '../core/byte-queue.ts';
import { concatBytes, u32BE } from '../core/bytes.ts';
import { isPqnetError, PqnetError } from '../core/errors.ts';
import {
  COOKIE_BYTES,
  HANDSHAKE_NONCE_BYTES,
  LENGTH_PREFIX_BYTES,
  MAX_AUTH_BYTES,
  MAX_HELLO_I_BYTES,
  MAX_HELLO_R_BYTES,
  MAX_IDENTIFY_BYTES,
  MAX_OFFERS,
  MAX_REJECT_BYTES,
  MAX_RETRY_BYTES,
} from '../core/limits.ts';
import { decodeCbor } from '../wire/cbor.ts';
import { arrayOf, bytes, bytesOneOf, tuple, uint, type Infer, type Schema } from '../wire/schema.ts';
import { ML_KEM_768_CIPHERTEXT_BYTES, ML_KEM_768_PUBLIC_BYTES, X25519_KEY_BYTES } from './algorithms.ts';

export const RecordType = {
  HELLO_I: 1,
  HELLO_R: 2,
  AUTH_R: 3,
  AUTH_I: 4,
  REJECT: 5,
  RETRY: 6,
} as const;
export type RecordTypeId = (typeof RecordType)[keyof typeof RecordType];

export const RECORD_NAMES: Readonly<Record<RecordTypeId, string>> = {
  1: 'HELLO_I',
  2: 'HELLO_R',
  3: 'AUTH_R',
  4: 'AUTH_I',
  5: 'REJECT',
  6: 'RETRY',
};

/** Cap on each record type's body. */
export const RECORD_CAPS: Readonly<Record<RecordTypeId, number>> = {
  1: MAX_HELLO_I_BYTES,
  2: MAX_HELLO_R_BYTES,
  3: MAX_AUTH_BYTES,
  4: MAX_AUTH_BYTES,
  5: MAX_REJECT_BYTES,
  6: MAX_RETRY_BYTES,
};

export const RECORD_HEADER_BYTES = LENGTH_PREFIX_BYTES + 1;

/** Any CBOR array: HELLO_I is read this loosely first, for its version. */
export const AnyArraySchema: Schema<unknown[]> = {
  describe: 'array',
  check(v, path) {
    if (!Array.isArray(v)) throw new PqnetError('MSG_SCHEMA', `${path}: expected an array`);
    return v;
  },
};

/** HELLO_I = [version, chain_id, policy_root, kem_offers, aead_offers, nonce_I, x25519_pk, mlkem_ek, cookie] */
export const HelloISchema = tuple(
  uint(0xffff),
  uint(),
  bytes(32),
  arrayOf(uint(0xff), 1, MAX_OFFERS),
  arrayOf(uint(0xff), 1, MAX_OFFERS),
  bytes(HANDSHAKE_NONCE_BYTES),
  bytesOneOf(0, X25519_KEY_BYTES),
  bytesOneOf(0, ML_KEM_768_PUBLIC_BYTES),
  bytesOneOf(0, COOKIE_BYTES),
);
export type HelloI = Infer<typeof HelloISchema>;

/** HELLO_R = [version, kem, aead, nonce_R, x25519_pk, mlkem_ct] */
export const HelloRSchema = tuple(
  uint(0xffff),
  uint(0xff),
  uint(0xff),
  bytes(HANDSHAKE_NONCE_BYTES),
  bytesOneOf(0, X25519_KEY_BYTES),
  bytesOneOf(0, ML_KEM_768_CIPHERTEXT_BYTES),
);
export type HelloR = Infer<typeof HelloRSchema>;

/** AUTH plaintext = [sig_alg, identity_pubkey, identify, signature] */
export const AuthSchema = tuple(uint(0xff), bytes(1, 4_096), bytes(0, MAX_IDENTIFY_BYTES), bytes(1, 8_192));
export type Auth = Infer<typeof AuthSchema>;

/** REJECT = [reason wire code] */
export const RejectSchema = tuple(uint(0xffff));
/** RETRY = [cookie] */
export const RetrySchema = tuple(bytes(COOKIE_BYTES));

export function encodeRecord(type: RecordTypeId, body: Uint8Array): Uint8Array {
  return concatBytes(u32BE(body.length + 1), Uint8Array.of(type), body);
}

export function recordHeader(type: RecordTypeId, bodyLength: number): Uint8Array {
  return concatBytes(u32BE(bodyLength + 1), Uint8Array.of(type));
}

/** Decode a CBOR record body against its schema; every failure is HS_BAD_MESSAGE. */
export function decodeBody<T>(schema: Schema<T>, body: Uint8Array, cap: number, what: string): T {
  try {
    return schema.check(decodeCbor(body, cap), what);
  } catch (e) {
    const detail = isPqnetError(e) ? `${what}: ${e.message}` : what;
    throw new PqnetError('HS_BAD_MESSAGE', detail, { cause: e });
  }
}

export interface HandshakeRecord {
  readonly type: RecordTypeId;
  /** The whole record as it was on the wire (hashed into the transcript). */
  readonly raw: Uint8Array;
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

/** Splits received bytes into handshake records, enforcing caps before buffering. */
export class RecordReader {
  readonly queue = new ByteQueue();

  push(bytes: Uint8Array): void {
    this.queue.push(bytes);
  }

  next(): HandshakeRecord | undefined {
    if (this.queue.length < RECORD_HEADER_BYTES) return undefined;
    const len = this.queue.peekU32BE(0);
    const type = this.queue.peekByte(LENGTH_PREFIX_BYTES);
    if (!(type in RECORD_CAPS)) throw new PqnetError('HS_BAD_MESSAGE', `unknown record type ${type}`);
    const cap = RECORD_CAPS[type as RecordTypeId];
    if (len < 1) throw new PqnetError('HS_BAD_MESSAGE', 'empty record');
    if (len - 1 > cap) throw new PqnetError('HS_OVERSIZE', `${RECORD_NAMES[type as RecordTypeId]} of ${len - 1} bytes > ${cap}`);
    if (this.queue.length < LENGTH_PREFIX_BYTES + len) return undefined;
    const raw = this.queue.take(LENGTH_PREFIX_BYTES + len).slice();
    return { type: type as RecordTypeId, raw, header: raw.subarray(0, RECORD_HEADER_BYTES), body: raw.subarray(RECORD_HEADER_BYTES) };
  }
}
