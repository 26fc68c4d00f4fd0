/** Message types for the mux tests: one per data channel, payload = one byte string. */
import { makeLimits, type Limits } from '../../src/core/limits.ts';
import { defineRequest, registerRequest } from '../../src/mux/rpc.ts';
import { Channel, type ChannelId } from '../../src/wire/channels.ts';
import { createRegistry } from '../../src/wire/messages.ts';
import { defineMessage, type MessageRegistry, type MessageType } from '../../src/wire/registry.ts';
import { bytes, text, tuple, uint } from '../../src/wire/schema.ts';

const MiB = 1024 * 1024;

function blob(id: number, name: string, channel: ChannelId, maxBytes: number, protocol?: string): MessageType<[Uint8Array]> {
  const t = { id, name, channel, maxBytes, schema: tuple(bytes(0, maxBytes - 8)) };
  return defineMessage(protocol === undefined ? t : { ...t, protocol });
}

export const Vote = blob(0x8001, 'vote', Channel.CONSENSUS, 512);
export const Block = blob(0x8002, 'block', Channel.BLOCKS, 8 * MiB);
export const Tx = blob(0x8003, 'tx', Channel.TRANSACTIONS, 64 * 1024);
export const Bulk = blob(0x8004, 'bulk', Channel.BULK, 4 * MiB);
export const Note = blob(0x8005, 'note', Channel.REQUESTS, 64 * 1024);
export const Header = blob(0x8006, 'header', Channel.BLOCKS, 1024);
/** Only allowed between peers that both announced `test/extra/1`. */
export const Extra = blob(0x8007, 'extra', Channel.GOSSIP, 1024, 'test/extra/1');
export const Hello = defineMessage({ id: 0x0080, name: 'test-hello', channel: Channel.CONTROL, maxBytes: 64, schema: tuple(text(32)) });

export const Echo = defineRequest({
  name: 'echo',
  requestId: 0x8100,
  responseId: 0x8101,
  request: tuple(text(1000), uint(100_000)),
  response: bytes(0, 200_000),
  maxRequestBytes: 1100,
  maxResponseBytes: 200_100,
});

/** A request type with its own 150 ms deadline and a response of at most 8 bytes. */
export const Quick = defineRequest({
  name: 'quick',
  requestId: 0x8102,
  responseId: 0x8103,
  request: text(100),
  response: bytes(0, 8),
  maxRequestBytes: 200,
  maxResponseBytes: 64,
  timeoutMs: 150,
});

export function registry(): MessageRegistry {
  const r = createRegistry();
  for (const t of [Vote, Block, Tx, Bulk, Note, Header, Extra, Hello]) r.register(t as MessageType<unknown>);
  registerRequest(r, Echo);
  registerRequest(r, Quick);
  return r;
}

export function limits(overrides: Partial<Limits> = {}): Limits {
  return makeLimits(overrides);
}

export function payload(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}
