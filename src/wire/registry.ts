/**
 * The message registry: msg_id (u16) -> name, channel, size cap and schema.
 * Decoding checks, in order: the id is registered, it arrived on its own
 * channel, the payload is within the type's cap (before any parsing), the
 * CBOR is strict and canonical, and the value matches the schema.
 */
import { PqnetError } from '../core/errors.ts';
import { decodeCbor, encodeCbor } from './cbor.ts';
import type { ChannelId } from './channels.ts';
import type { Schema } from './schema.ts';

export interface MessageType<T> {
  readonly id: number;
  readonly name: string;
  readonly channel: ChannelId;
  /** Largest encoded payload accepted, in bytes. */
  readonly maxBytes: number;
  readonly schema: Schema<T>;
  /**
   * The protocol this type belongs to (for example `pqnet/sync/1`). A type with
   * a protocol may only be sent to and accepted from a peer that announced the
   * protocol too (MSG_NOT_NEGOTIATED); a type without one is always allowed.
   */
  readonly protocol?: string;
  /**
   * Messages of this type one peer may send per second (a token bucket per
   * connection with a burst of twice the rate, checked before decoding);
   * over it they are dropped and the peer is penalised. Unlimited if absent
   * (the connection-wide buckets still apply).
   */
  readonly ratePerSecond?: number;
  /** Set by `defineRequest` (src/mux/rpc.ts): this type is one half of a request/response pair. */
  readonly rpc?: { readonly role: 'request' | 'response'; readonly pair: number };
}

export function defineMessage<T>(t: MessageType<T>): MessageType<T> {
  if (!Number.isInteger(t.id) || t.id < 0 || t.id > 0xffff) throw new RangeError(`message id ${t.id} is not a u16`);
  if (!Number.isInteger(t.maxBytes) || t.maxBytes <= 0) throw new RangeError(`message ${t.name}: maxBytes must be positive`);
  return Object.freeze({ ...t });
}

export interface DecodedMessage {
  readonly type: MessageType<unknown>;
  readonly value: unknown;
}

export class MessageRegistry {
  readonly #byId = new Map<number, MessageType<unknown>>();
  readonly #byName = new Map<string, MessageType<unknown>>();

  constructor(types: readonly MessageType<unknown>[] = []) {
    for (const t of types) this.register(t);
  }

  register<T>(t: MessageType<T>): MessageType<T> {
    const prev = this.#byId.get(t.id);
    if (prev !== undefined) throw new PqnetError('INVALID_ARGUMENT', `message id 0x${t.id.toString(16)} already registered as ${prev.name}`);
    if (this.#byName.has(t.name)) throw new PqnetError('INVALID_ARGUMENT', `message name ${t.name} already registered`);
    this.#byId.set(t.id, t as MessageType<unknown>);
    this.#byName.set(t.name, t as MessageType<unknown>);
    return t;
  }

  get(id: number): MessageType<unknown> | undefined {
    return this.#byId.get(id);
  }

  byName(name: string): MessageType<unknown> | undefined {
    return this.#byName.get(name);
  }

  types(): MessageType<unknown>[] {
    return [...this.#byId.values()].sort((a, b) => a.id - b.id);
  }

  /** Encode `value` as `type`; the value is schema-checked and the cap enforced. */
  encode<T>(type: MessageType<T>, value: T): Uint8Array {
    type.schema.check(value, type.name);
    const bytes = encodeCbor(value);
    if (bytes.length > type.maxBytes) throw new PqnetError('MSG_OVERSIZE', `${type.name}: ${bytes.length} > ${type.maxBytes} bytes`);
    return bytes;
  }

  decode(msgId: number, channel: number, payload: Uint8Array): DecodedMessage {
    const type = this.#byId.get(msgId);
    if (type === undefined) throw new PqnetError('MSG_UNKNOWN_ID', `0x${msgId.toString(16).padStart(4, '0')}`);
    if (type.channel !== channel) throw new PqnetError('MSG_WRONG_CHANNEL', `${type.name} on channel ${channel}`);
    const raw = decodeCbor(payload, type.maxBytes);
    return { type, value: type.schema.check(raw, type.name) };
  }
}
