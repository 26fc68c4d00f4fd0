import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { dialSecure, SecureListener } from '../../src/secure/listener.ts';
import type { SecureSession } from '../../src/secure/session.ts';
import type { OpenedFrame } from '../../src/secure/frames.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import { MemoryNetwork } from '../../src/transport/memory.ts';
import type { Transport } from '../../src/transport/types.ts';
import { endpoint } from './_endpoints.ts';

for (const [name, transport, address] of [
  ['tcp', new TcpTransport(), 'tcp://127.0.0.1:0'],
  ['memory', new MemoryNetwork(), 'mem://bob'],
] as [string, Transport, string][]) {
  test(`${name}: dial yields an authenticated session; frames flow both ways; ping measures RTT`, async () => {
    const bob = endpoint('bob');
    const alice = endpoint('alice');
    const inbound: SecureSession[] = [];
    const listener = await SecureListener.listen({
      ...bob,
      transport,
      address,
      onSession: (s) => {
        inbound.push(s);
        s.start((f, sess) => sess.sendFrame({ channel: f.channel, msgId: f.msgId, seq: f.seq, flags: 0 }, f.chunk));
      },
    });
    try {
      const s = await dialSecure(transport, listener.address, alice, { expectedPeerId: bob.identity.peerId });
      assert.ok(s.remotePeerId.equals(bob.identity.peerId));
      assert.equal(s.kem, 'x25519-ml-kem-768');
      const got: OpenedFrame[] = [];
      s.start((f) => got.push(f));
      for (let i = 0; i < 20; i++) s.sendFrame({ channel: 2, msgId: 0x8001, seq: i, flags: 0 }, new Uint8Array(1000 * i).fill(i));
      for (let i = 0; i < 200 && got.length < 20; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(got.length, 20);
      got.forEach((f, i) => {
        assert.equal(f.seq, i);
        assert.equal(f.chunk.length, 1000 * i);
      });
      assert.equal(inbound.length, 1);
      assert.ok(inbound[0]!.remotePeerId.equals(alice.identity.peerId));
      const rtt = await s.ping();
      assert.ok(rtt >= 0);
      const closed = once(inbound[0]!, 'close');
      s.close('SHUTDOWN', 'bye');
      const [reason] = await closed;
      assert.equal(reason.code, 'REMOTE_CLOSED');
      assert.equal(reason.details?.remoteReason, 'SHUTDOWN');
    } finally {
      await listener.close();
    }
  });
}
