/**
 * The peer protocol's messages (docs/spec/peer.md): HELLO and HelloAck on the
 * control channel, and the identify record carried inside the handshake's
 * AUTH (so it arrives authenticated, in the same flight as the identity).
 */
import { PqnetError } from '../core/errors.ts';
import { decodeCbor, encodeCbor } from '../wire/cbor.ts';
import { Channel } from '../wire/channels.ts';
import { defineMessage } from '../wire/registry.ts';
import { arrayOf, text, tuple, uint, type Infer } from '../wire/schema.ts';
import { MAX_IDENTIFY_BYTES } from '../core/limits.ts';

/** Version of the peer protocol (HELLO and what follows); unrelated to the handshake version. */
export const PEER_PROTOCOL_VERSION = 1;

/** HelloAck status codes. */
export const HelloStatus = {
  OK: 0,
  VERSION_MISMATCH: 1,
  CHAIN_ID_MISMATCH: 2,
} as const;
export type HelloStatusCode = (typeof HelloStatus)[keyof typeof HelloStatus];

/** Capability bits a node announces in HELLO (the chain and sync layers define more from bit 8 up). */
export const Capability = {
  /** Serves full blocks. */
  FULL_NODE: 1 << 0,
  /** Relays transactions. */
  RELAY_TX: 1 << 1,
  /** Serves state snapshot chunks. */
  STATE_SYNC: 1 << 2,
} as const;

/** HELLO [version, chain_id, height, capabilities, timestamp_ms]. */
export const Hello = defineMessage({
  id: 0x0010,
  name: 'hello',
  channel: Channel.CONTROL,
  maxBytes: 64,
  schema: tuple(uint(0xffff), uint(), uint(), uint(), uint()),
  ratePerSecond: 1,
});
export type HelloValue = Infer<typeof Hello.schema>;

/** HelloAck [status, timestamp_ms]. */
export const HelloAck = defineMessage({
  id: 0x0011,
  name: 'hello-ack',
  channel: Channel.CONTROL,
  maxBytes: 32,
  schema: tuple(uint(0xff), uint()),
  ratePerSecond: 1,
});

export const PEER_MESSAGES = [Hello, HelloAck] as const;

/** Identify: [listen addresses, agent, protocols], inside AUTH. */
const IdentifySchema = tuple(arrayOf(text(256), 0, 8), text(128), arrayOf(text(64), 0, 32));

export interface IdentifyInfo {
  readonly listenAddresses: readonly string[];
  readonly agent: string;
  readonly protocols: readonly string[];
}

export function encodeIdentify(info: IdentifyInfo): Uint8Array {
  const value = [[...info.listenAddresses], info.agent, [...info.protocols]];
  IdentifySchema.check(value, 'identify');
  const bytes = encodeCbor(value);
  if (bytes.length > MAX_IDENTIFY_BYTES) throw new PqnetError('INVALID_ARGUMENT', `identify is ${bytes.length} bytes > ${MAX_IDENTIFY_BYTES}`);
  return bytes;
}

/** Throws MSG_* for a malformed record; an empty blob (a peer that sent none) is an empty identify. */
export function decodeIdentify(bytes: Uint8Array): IdentifyInfo {
  if (bytes.length === 0) return { listenAddresses: [], agent: '', protocols: [] };
  const [listenAddresses, agent, protocols] = IdentifySchema.check(decodeCbor(bytes, MAX_IDENTIFY_BYTES), 'identify');
  return { listenAddresses, agent, protocols };
}
