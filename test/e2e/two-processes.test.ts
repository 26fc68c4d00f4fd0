import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SystemClock } from '../../src/core/clock.ts';
import { equalBytes } from '../../src/core/bytes.ts';
import { isPqnetError } from '../../src/core/errors.ts';
import { makeLimits } from '../../src/core/limits.ts';
import { systemRandom } from '../../src/core/random.ts';
import { generateIdentity, PeerId } from '../../src/secure/identity.ts';
import { dialSecure, type SecureConfig } from '../../src/secure/listener.ts';
import { compilePolicy } from '../../src/secure/policy.ts';
import { getProvider } from '../../src/secure/providers.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import { createE2eRegistry, Echo, EchoReply } from './_messages.ts';

const PEER = fileURLToPath(new URL('./_peer.ts', import.meta.url));

async function startPeer(chainId: number): Promise<{ child: ChildProcess; address: string; peerId: string }> {
  const child = spawn(process.execPath, [PEER, String(chainId)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    for await (const line of lines) {
      const info = JSON.parse(line) as { address: string; peerId: string };
      return { child, ...info };
    }
  } finally {
    clearTimeout(timer);
  }
  throw new Error('peer process exited before announcing its address');
}

function localConfig(chainId: number): SecureConfig {
  const provider = getProvider();
  return {
    provider,
    random: systemRandom,
    clock: new SystemClock(),
    identity: generateIdentity('ml-dsa-65', provider),
    chainId,
    policy: compilePolicy(undefined, provider),
    limits: makeLimits(),
    registry: createE2eRegistry(),
  };
}

test('two processes complete the PQ handshake over TCP and exchange messages', async () => {
  const peer = await startPeer(7);
  try {
    const cfg = localConfig(7);
    const registry = cfg.registry!;
    const session = await dialSecure(new TcpTransport(), peer.address, cfg, { expectedPeerId: PeerId.parse(peer.peerId) });
    assert.equal(session.remotePeerId.toString(), peer.peerId);
    assert.equal(session.kem, 'x25519-ml-kem-768');
    assert.equal(session.remote.alg, 'ml-dsa-65');

    const replies: [Uint8Array, string][] = [];
    session.start((frame) => {
      const { type, value } = registry.decode(frame.msgId, frame.channel, frame.chunk);
      if (type.id === EchoReply.id) replies.push(value as [Uint8Array, string]);
    });
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 50; i++) {
      const payload = new Uint8Array(1 + i * 1000).map((_, j) => (i * 7 + j) & 0xff);
      sent.push(payload);
      session.send(Echo, [payload]);
    }
    for (let i = 0; i < 1000 && replies.length < sent.length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(replies.length, sent.length);
    replies.forEach(([payload, from], i) => {
      assert.ok(equalBytes(payload, sent[i]!), `reply ${i} carries the payload sent`);
      assert.equal(from, peer.peerId);
    });

    // SIGTERM: the peer closes the session with GOODBYE{SHUTDOWN} and exits 0.
    const closed = once(session, 'close');
    peer.child.kill('SIGTERM');
    const [reason] = await closed;
    assert.equal(reason.code, 'REMOTE_CLOSED');
    assert.equal(reason.details?.remoteReason, 'SHUTDOWN');
    const [code] = (await once(peer.child, 'exit')) as [number | null];
    assert.equal(code, 0);
  } finally {
    peer.child.kill('SIGKILL');
  }
});

test('a peer on another chain is refused with a REJECT the dialler can read', async () => {
  const peer = await startPeer(8);
  try {
    await assert.rejects(dialSecure(new TcpTransport(), peer.address, localConfig(7)), (e: unknown) => {
      assert.ok(isPqnetError(e));
      assert.equal(e.code, 'HS_REJECTED');
      assert.equal(e.details?.remoteReason, 'HS_CHAIN_MISMATCH');
      return true;
    });
  } finally {
    peer.child.kill('SIGKILL');
    if (peer.child.exitCode === null) await once(peer.child, 'exit');
  }
});
