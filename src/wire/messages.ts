/**
 * Messages the secure session itself uses. Ids 0x0000-0x00ff are control
 * messages owned by pqnet; 0x8000-0xffff are free for applications.
 */
import { MAX_CHUNK_BYTES, MAX_CREDIT_WINDOW_BYTES } from '../core/limits.ts';
import { Channel } from './channels.ts';
import { defineMessage, MessageRegistry } from './registry.ts';
import { arrayOf, bytes, text, tuple, uint } from './schema.ts';

export const APP_MESSAGE_ID_MIN = 0x8000;

/** PING [nonce u64 as 8 bytes]: the peer answers PONG with the same nonce. */
export const Ping = defineMessage({ id: 0x0001, name: 'ping', channel: Channel.CONTROL, maxBytes: 16, schema: tuple(bytes(8)), ratePerSecond: 10 });
export const Pong = defineMessage({ id: 0x0002, name: 'pong', channel: Channel.CONTROL, maxBytes: 16, schema: tuple(bytes(8)) });
/** GOODBYE [reason wire code, text]: sent before an orderly close. */
export const Goodbye = defineMessage({
  id: 0x0003,
  name: 'goodbye',
  channel: Channel.CONTROL,
  maxBytes: 300,
  schema: tuple(uint(0xffff), text(256)),
});

/**
 * CREDIT [[channel, increment]...]: the sender of CREDIT may now be sent
 * `increment` more chunk bytes on each listed data channel (docs/spec/mux.md).
 */
export const Credit = defineMessage({
  id: 0x0004,
  name: 'credit',
  channel: Channel.CONTROL,
  maxBytes: 64,
  schema: arrayOf(tuple(uint(0xff), uint(MAX_CREDIT_WINDOW_BYTES)), 1, 6),
});

export const CONTROL_MESSAGES = [Ping, Pong, Goodbye, Credit] as const;

/** A registry holding the control messages; applications register theirs on it. */
export function createRegistry(): MessageRegistry {
  return new MessageRegistry([...CONTROL_MESSAGES]);
}

/** Largest payload that fits one frame (mux chunking arrives with the mux layer). */
export const MAX_SINGLE_FRAME_PAYLOAD = MAX_CHUNK_BYTES;
