/**
 * Two pqnet nodes in one process over loopback TCP: post-quantum handshake,
 * an application message each way, a ping, an orderly close.
 *
 *   node examples/two-nodes.ts        (Node.js >= 24.7; `npx node` uses the pinned one)
 */
import {
  Channel,
  compilePolicy,
  createRegistry,
  defineMessage,
  dialSecure,
  generateIdentity,
  getProvider,
  makeLimits,
  schema,
  SecureListener,
  systemRandom,
  SystemClock,
  TcpTransport,
  type SecureConfig,
} from '../src/index.ts';

// An application message: id in the application range, its channel, cap and schema.
const Greeting = defineMessage({ id: 0x8100, name: 'greeting', channel: Channel.REQUESTS, maxBytes: 256, schema: schema.tuple(schema.text(200)) });

function config(): SecureConfig {
  const provider = getProvider(); // native node:crypto on Node 24; @noble/* elsewhere
  const registry = createRegistry();
  registry.register(Greeting);
  return {
    provider,
    random: systemRandom,
    clock: new SystemClock(),
    identity: generateIdentity('ml-dsa-65', provider),
    chainId: 1,
    policy: compilePolicy(), // x25519-ml-kem-768 or ml-kem-768; ML-DSA-65 or SLH-DSA identities
    limits: makeLimits(),
    registry,
  };
}

const bob = config();
const listener = await SecureListener.listen({
  ...bob,
  transport: new TcpTransport(),
  address: 'tcp://127.0.0.1:0',
  onSession: (session) => {
    session.start((frame, s) => {
      const { value } = bob.registry!.decode(frame.msgId, frame.channel, frame.chunk);
      console.log(`bob   <- ${s.remotePeerId.short()}: ${(value as [string])[0]}`);
      s.send(Greeting, ['hello alice']);
    });
  },
});

const alice = config();
const session = await dialSecure(new TcpTransport(), listener.address, alice, { expectedPeerId: bob.identity.peerId });
console.log(`alice connected to ${session.remotePeerId.toString()} with ${session.kem} + ${session.aead} in ${session.handshakeMs.toFixed(1)} ms`);
const reply = new Promise<string>((resolve) => {
  session.start((frame) => resolve((alice.registry!.decode(frame.msgId, frame.channel, frame.chunk).value as [string])[0]));
});
session.send(Greeting, ['hello bob']);
console.log(`alice <- ${session.remotePeerId.short()}: ${await reply}`);
console.log(`rtt ${(await session.ping()).toFixed(2)} ms`);
session.close('SHUTDOWN');
await listener.close();
