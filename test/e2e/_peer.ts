/**
 * A pqnet peer in its own process for e2e tests. Listens on tcp://127.0.0.1:0,
 * prints one JSON line {address, peerId} on stdout, answers every `echo`
 * message with an `echo-reply` carrying the same payload and its own peer id,
 * and exits 0 on SIGTERM after closing its sessions.
 *
 * Usage: node test/e2e/_peer.ts <chainId>
 */
import { SystemClock } from '../../src/core/clock.ts';
import { makeLimits } from '../../src/core/limits.ts';
import { systemRandom } from '../../src/core/random.ts';
import { generateIdentity } from '../../src/secure/identity.ts';
import { SecureListener } from '../../src/secure/listener.ts';
import { compilePolicy } from '../../src/secure/policy.ts';
import { getProvider } from '../../src/secure/providers.ts';
import type { SecureSession } from '../../src/secure/session.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import { createE2eRegistry, Echo, EchoReply } from './_messages.ts';

const chainId = Number(process.argv[2] ?? '7');
const provider = getProvider();
const identity = generateIdentity('ml-dsa-65', provider);
const registry = createE2eRegistry();
const sessions = new Set<SecureSession>();

const listener = await SecureListener.listen({
  provider,
  random: systemRandom,
  clock: new SystemClock(),
  identity,
  chainId,
  policy: compilePolicy(undefined, provider),
  limits: makeLimits(),
  registry,
  transport: new TcpTransport(),
  address: 'tcp://127.0.0.1:0',
  onSession: (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.start((frame, sess) => {
      const { type, value } = registry.decode(frame.msgId, frame.channel, frame.chunk);
      if (type.id === Echo.id) {
        const [payload] = value as [Uint8Array];
        sess.send(EchoReply, [payload, identity.peerId.toString()]);
      }
    });
  },
  onHandshakeError: (e, remote) => process.stderr.write(`handshake from ${remote} failed: ${e.code}\n`),
});

process.stdout.write(JSON.stringify({ address: listener.address, peerId: identity.peerId.toString() }) + '\n');

process.once('SIGTERM', () => {
  for (const s of sessions) s.close('SHUTDOWN');
  listener.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
