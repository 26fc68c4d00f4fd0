/** Application messages used by the e2e tests (ids in the application range). */
import { Channel } from '../../src/wire/channels.ts';
import { createRegistry } from '../../src/wire/messages.ts';
import { defineMessage, type MessageRegistry } from '../../src/wire/registry.ts';
import { bytes, text, tuple } from '../../src/wire/schema.ts';

export const Echo = defineMessage({ id: 0x8001, name: 'e2e.echo', channel: Channel.REQUESTS, maxBytes: 70_000, schema: tuple(bytes(0, 65_000)) });
export const EchoReply = defineMessage({
  id: 0x8002,
  name: 'e2e.echo-reply',
  channel: Channel.REQUESTS,
  maxBytes: 70_000,
  schema: tuple(bytes(0, 65_000), text(64)),
});

export function createE2eRegistry(): MessageRegistry {
  const r = createRegistry();
  r.register(Echo);
  r.register(EchoReply);
  return r;
}
