/**
 * Adversarial sessions: a peer that completes a genuine handshake and then
 * writes forged, reordered, replayed, inflated or malformed frames. The
 * receiving session must close with the matching reason, and the listener
 * must go on serving everybody else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concatBytes, u32BE, u64BE } from '../../src/core/bytes.ts';
import { PqnetError, Reasons, type Reason } from '../../src/core/errors.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { Goodbye, Ping, Pong } from '../../src/wire/messages.ts';
import type { FrameHeader } from '../../src/wire/frame.ts';
import type { OpenedFrame } from '../../src/secure/frames.ts';
import type { PeerId } from '../../src/secure/identity.ts';
import { dialSecure, SecureListener } from '../../src/secure/listener.ts';
import type { SecureSession } from '../../src/secure/session.ts';
import { MemoryNetwork } from '../../src/transport/memory.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import type { Transport } from '../../src/transport/types.ts';
import { endpoint } from './_endpoints.ts';
import { evilDial, flipByte, until, within, type EvilPeer } from './_evil.ts';

const bob = endpoint('bob');
const alice = endpoint('alice');
const mallory = endpoint('mallory');

interface Server {
  readonly listener: SecureListener;
  readonly sessions: SecureSession[];
  readonly frames: Map<SecureSession, OpenedFrame[]>;
  readonly closes: Map<SecureSession, PqnetError[]>;
  /** The server-side session of `peer` (waits for it). */
  sessionOf(peer: PeerId): Promise<SecureSession>;
}

async function withServer(transport: Transport, address: string, fn: (s: Server) => Promise<void>): Promise<void> {
  const sessions: SecureSession[] = [];
  const frames = new Map<SecureSession, OpenedFrame[]>();
  const closes = new Map<SecureSession, PqnetError[]>();
  const listener = await SecureListener.listen({
    ...bob,
    transport,
    address,
    onSession: (s) => {
      sessions.push(s);
      const got: OpenedFrame[] = [];
      const closed: PqnetError[] = [];
      frames.set(s, got);
      closes.set(s, closed);
      s.on('close', (r) => closed.push(r));
      // Echo application frames so that a healthy session can be observed.
      s.start((f, sess) => {
        got.push(f);
        if (f.msgId >= 0x8000 && !sess.closed) sess.sendFrame({ channel: f.channel, msgId: f.msgId, seq: f.seq, flags: 0 }, f.chunk);
      });
    },
  });
  const server: Server = {
    listener,
    sessions,
    frames,
    closes,
    async sessionOf(peer) {
      await until(() => sessions.some((s) => s.remotePeerId.equals(peer)), 3_000, 'the server session');
      return sessions.find((s) => s.remotePeerId.equals(peer))!;
    },
  };
  try {
    await fn(server);
  } finally {
    for (const s of sessions) s.destroy(new PqnetError('SHUTDOWN'));
    await listener.close();
  }
}

const APP: FrameHeader = { channel: 2, msgId: 0x8001, seq: 0, flags: 0 };
const app = (seq: number): FrameHeader => ({ ...APP, seq });

/** Wait for `s` to close; check the reason both as closeReason and as the single 'close' event. */
async function closedWith(server: Server, s: SecureSession, code: Reason): Promise<PqnetError> {
  await until(() => s.closed, 3_000, `session to close with ${code}`);
  assert.equal(s.closeReason?.code, code, s.closeReason?.message);
  const events = server.closes.get(s)!;
  assert.equal(events.length, 1, 'exactly one close event');
  assert.equal(events[0], s.closeReason);
  return s.closeReason!;
}

/** A healthy session still echoes and answers pings. */
async function stillServes(s: SecureSession): Promise<void> {
  const got: OpenedFrame[] = [];
  s.start((f) => got.push(f));
  s.sendFrame(app(1), Uint8Array.of(1, 2, 3));
  await until(() => got.length === 1, 3_000, 'echo');
  assert.deepEqual([...got[0]!.chunk], [1, 2, 3]);
  assert.ok((await within(s.ping(), 3_000, 'ping')) >= 0);
}

/** Evil peer: send one genuine frame (checks the setup), then `attack`; the server must close with `code`. */
async function attackCase(transport: Transport, address: string, attack: (e: EvilPeer) => void, code: Reason): Promise<void> {
  await withServer(transport, address, async (server) => {
    const good = await dialSecure(transport, server.listener.address, alice, { expectedPeerId: bob.identity.peerId });
    try {
      const evil = await evilDial(transport, server.listener.address, mallory);
      evil.write(evil.seal(app(0), Uint8Array.of(42)));
      const victim = await server.sessionOf(mallory.identity.peerId);
      await until(() => server.frames.get(victim)!.length === 1, 3_000, 'the genuine frame');
      attack(evil);
      const reason = await closedWith(server, victim, code);
      assert.equal(reason.wireCode, Reasons[code].wire);
      // The evil peer's transport is closed too.
      await within(evil.closed, 3_000, 'evil stream close');
      assert.equal(evil.errors.length, 0);
      // Everybody else is still served: the established session and a new one.
      await stillServes(good);
      const late = await dialSecure(transport, server.listener.address, alice);
      try {
        await stillServes(late);
      } finally {
        late.close();
      }
      assert.equal(server.listener.stats.accepted, 3);
    } finally {
      good.close();
    }
  });
}

const cases: [string, (e: EvilPeer) => void, Reason][] = [
  [
    'a forged (bit-flipped) frame',
    (e) => {
      const f = e.seal(app(1), new Uint8Array(64).fill(9));
      e.write(flipByte(f, f.length - 20));
    },
    'FRAME_AEAD_FAILED',
  ],
  [
    'a frame with a flipped tag',
    (e) => {
      const f = e.seal(app(1), new Uint8Array(64));
      e.write(flipByte(f, f.length - 1));
    },
    'FRAME_AEAD_FAILED',
  ],
  [
    'two frames reordered',
    (e) => {
      const f1 = e.seal(app(1), Uint8Array.of(1));
      const f2 = e.seal(app(2), Uint8Array.of(2));
      e.write(f2);
      e.write(f1);
    },
    'FRAME_AEAD_FAILED',
  ],
  [
    'a replayed frame',
    (e) => {
      const f1 = e.seal(app(1), Uint8Array.of(1));
      e.write(f1);
      e.write(f1);
    },
    'FRAME_AEAD_FAILED',
  ],
  [
    'a dropped frame',
    (e) => {
      e.seal(app(1), Uint8Array.of(1));
      e.write(e.seal(app(2), Uint8Array.of(2)));
    },
    'FRAME_AEAD_FAILED',
  ],
  ['a 4 GiB length prefix', (e) => e.write(u32BE(0xffffffff)), 'FRAME_OVERSIZE'],
  ['a length prefix one over the maximum', (e) => e.write(u32BE(65_536 + 16 + 1)), 'FRAME_OVERSIZE'],
  ['an undersize length prefix', (e) => e.write(u32BE(3)), 'FRAME_UNDERSIZE'],
  // Our sealer refuses reserved bits, so these are sealed by hand under the real key.
  ['reserved flag bits', (e) => e.write(e.sealPlaintext(Uint8Array.of(2, 0x80, 0x01, 0, 0, 0, 1, 0x80))), 'FRAME_BAD_HEADER'],
  // Genuinely sealed, but its length is under header + tag: the splitter refuses it first.
  ['a sealed plaintext shorter than the frame header', (e) => e.write(e.sealPlaintext(Uint8Array.of(2, 0x80, 0x01))), 'FRAME_UNDERSIZE'],
  ['a GOODBYE that is not CBOR', (e) => e.write(e.seal({ channel: 0, msgId: Goodbye.id, seq: 0, flags: 0 }, Uint8Array.of(0xff, 0x00))), 'MSG_MALFORMED'],
  ['a GOODBYE of the wrong shape', (e) => e.write(e.seal({ channel: 0, msgId: Goodbye.id, seq: 0, flags: 0 }, encodeCbor([1]))), 'MSG_SCHEMA'],
  ['a GOODBYE with a code beyond u16', (e) => e.write(e.seal({ channel: 0, msgId: Goodbye.id, seq: 0, flags: 0 }, encodeCbor([70_000, 'x']))), 'MSG_SCHEMA'],
  ['a GOODBYE over its size cap', (e) => e.write(e.seal({ channel: 0, msgId: Goodbye.id, seq: 0, flags: 0 }, encodeCbor([2, 'x'.repeat(400)]))), 'MSG_OVERSIZE'],
  // Non-minimal integers are already refused by the strict decoder (MSG_MALFORMED);
  // a float64 that has a shorter form decodes, but does not re-encode to itself.
  ['a GOODBYE with a non-minimal integer', (e) => e.write(e.seal({ channel: 0, msgId: Goodbye.id, seq: 0, flags: 0 }, Uint8Array.of(0x82, 0x18, 0x02, 0x60))), 'MSG_MALFORMED'],
  [
    'a non-canonical GOODBYE (float64 with a shorter form)',
    (e) => e.write(e.seal({ channel: 0, msgId: Goodbye.id, seq: 0, flags: 0 }, Uint8Array.of(0x82, 0xfb, 0x40, 0x04, 0, 0, 0, 0, 0, 0, 0x60))),
    'MSG_NON_CANONICAL',
  ],
  ['a GOODBYE on the wrong channel', (e) => e.write(e.seal({ channel: 3, msgId: Goodbye.id, seq: 0, flags: 0 }, encodeCbor([2, '']))), 'MSG_WRONG_CHANNEL'],
  ['a PING with a short nonce', (e) => e.write(e.seal({ channel: 0, msgId: Ping.id, seq: 0, flags: 0 }, encodeCbor([new Uint8Array(7)]))), 'MSG_SCHEMA'],
];

for (const [name, attack, code] of cases) {
  test(`memory: ${name} closes the victim session with ${code}; others are still served`, async () => {
    await attackCase(new MemoryNetwork(), 'mem://bob', attack, code);
  });
}

test('tcp: a forged frame closes the victim session with FRAME_AEAD_FAILED; others are still served', async () => {
  await attackCase(new TcpTransport(), 'tcp://127.0.0.1:0', cases[0]![1], 'FRAME_AEAD_FAILED');
});

test('tcp: a 4 GiB length prefix closes the victim session with FRAME_OVERSIZE', async () => {
  await attackCase(new TcpTransport(), 'tcp://127.0.0.1:0', (e) => e.write(u32BE(0xffffffff)), 'FRAME_OVERSIZE');
});

test('memory: a forged frame hidden behind valid frames in one write: the valid ones are delivered first', async () => {
  const transport = new MemoryNetwork();
  await withServer(transport, 'mem://bob', async (server) => {
    const evil = await evilDial(transport, server.listener.address, mallory);
    const f = [0, 1, 2].map((i) => evil.seal(app(i), Uint8Array.of(i)));
    const forged = flipByte(evil.seal(app(3), Uint8Array.of(3)), 10);
    const after = evil.seal(app(4), Uint8Array.of(4));
    evil.write(concatBytes(...f, forged, after));
    const victim = await server.sessionOf(mallory.identity.peerId);
    await closedWith(server, victim, 'FRAME_AEAD_FAILED');
    assert.deepEqual(
      server.frames.get(victim)!.map((x) => x.seq),
      [0, 1, 2],
      'frames before the forgery are delivered; nothing after it',
    );
  });
});

for (const [name, transport, address] of [
  ['memory', new MemoryNetwork(), 'mem://bob'],
  ['tcp', new TcpTransport(), 'tcp://127.0.0.1:0'],
] as [string, Transport, string][]) {
  test(`${name}: frames in the same write as AUTH_I are delivered in order; a forged one among them closes the session`, async () => {
    await withServer(transport, address, async (server) => {
      const early = await evilDial(transport, server.listener.address, mallory, {
        piggyback: (p) => concatBytes(p.seal(app(0), Uint8Array.of(0)), p.seal(app(1), Uint8Array.of(1))),
      });
      const victim = await server.sessionOf(mallory.identity.peerId);
      await until(() => server.frames.get(victim)!.length === 2, 3_000, 'the early frames');
      assert.deepEqual(
        server.frames.get(victim)!.map((f) => f.seq),
        [0, 1],
      );
      await until(() => early.frames.length === 2, 3_000, 'the echoes');
      assert.equal(victim.closed, false);
      const carol = endpoint('carol');
      await evilDial(transport, server.listener.address, carol, {
        piggyback: (p) => concatBytes(p.seal(app(0), Uint8Array.of(0)), flipByte(p.seal(app(1), Uint8Array.of(1)), 12), p.seal(app(2), Uint8Array.of(2))),
      });
      const victim2 = await server.sessionOf(carol.identity.peerId);
      await closedWith(server, victim2, 'FRAME_AEAD_FAILED');
      assert.deepEqual(
        server.frames.get(victim2)!.map((f) => f.seq),
        [0],
      );
    });
  });
}

test('memory: unknown control ids on channel 0 reach the frame handler; only ping/pong/goodbye are consumed', async () => {
  const transport = new MemoryNetwork();
  await withServer(transport, 'mem://bob', async (server) => {
    const evil = await evilDial(transport, server.listener.address, mallory);
    const victim = await server.sessionOf(mallory.identity.peerId);
    evil.write(evil.seal({ channel: 0, msgId: 0x0004, seq: 0, flags: 0 }, Uint8Array.of(1)));
    evil.write(evil.seal({ channel: 0, msgId: 0x00ff, seq: 1, flags: 0 }, new Uint8Array(0)));
    evil.write(evil.seal({ channel: 0, msgId: 0x0000, seq: 2, flags: 0 }, Uint8Array.of(0xff)));
    // An unsolicited PONG is consumed and ignored.
    evil.write(evil.seal({ channel: 0, msgId: Pong.id, seq: 3, flags: 0 }, encodeCbor([u64BE(99)])));
    // A PING is answered with a PONG carrying the same nonce.
    evil.write(evil.seal({ channel: 0, msgId: Ping.id, seq: 4, flags: 0 }, encodeCbor([u64BE(0x1234)])));
    await until(() => evil.frames.some((f) => f.msgId === Pong.id), 3_000, 'pong');
    assert.deepEqual(
      server.frames.get(victim)!.map((f) => [f.channel, f.msgId]),
      [
        [0, 0x0004],
        [0, 0x00ff],
        [0, 0x0000],
      ],
    );
    const pong = evil.frames.find((f) => f.msgId === Pong.id)!;
    assert.equal(pong.channel, 0);
    assert.deepEqual(pong.chunk, encodeCbor([u64BE(0x1234)]));
    assert.equal(victim.closed, false);
    assert.equal(evil.errors.length, 0);
  });
});

test('memory: a well-formed GOODBYE closes with REMOTE_CLOSED carrying the remote reason', async () => {
  const transport = new MemoryNetwork();
  await withServer(transport, 'mem://bob', async (server) => {
    const evil = await evilDial(transport, server.listener.address, mallory);
    const victim = await server.sessionOf(mallory.identity.peerId);
    evil.write(evil.seal({ channel: 0, msgId: Goodbye.id, seq: 0, flags: 0 }, encodeCbor([Reasons.SHUTDOWN.wire, 'maintenance'])));
    const reason = await closedWith(server, victim, 'REMOTE_CLOSED');
    assert.equal(reason.details?.remoteReason, 'SHUTDOWN');
    assert.match(reason.message, /maintenance/);
    // A GOODBYE with an unknown code is still an orderly close.
    const evil2 = await evilDial(transport, server.listener.address, endpoint('mallory2'));
    const victim2 = await server.sessionOf(endpoint('mallory2').identity.peerId);
    evil2.write(evil2.seal({ channel: 0, msgId: Goodbye.id, seq: 0, flags: 0 }, encodeCbor([65_535, ''])));
    const r2 = await closedWith(server, victim2, 'REMOTE_CLOSED');
    assert.equal(r2.details?.remoteCode, 65_535);
    assert.equal(r2.details?.remoteReason, undefined);
  });
});

test('memory: a PING flood from a peer that never reads does not grow the write buffer past maxWriteBufferBytes', async () => {
  // docs/LIMITS.md: a session costs "up to maxWriteBufferBytes sending". The
  // session answers PINGs itself, so it must stop reading (or close) when its
  // PONGs cannot be written, rather than queue them without bound.
  const transport = new MemoryNetwork();
  const limit = 64 * 1024;
  const sessions: SecureSession[] = [];
  const listener = await SecureListener.listen({
    ...endpoint('bob', { limits: { maxWriteBufferBytes: limit } }),
    transport,
    address: 'mem://bob',
    onSession: (s) => {
      sessions.push(s);
      s.start(() => undefined);
    },
  });
  try {
    const evil = await evilDial(transport, listener.address, mallory);
    evil.stream.pause();
    await until(() => sessions.length === 1, 3_000, 'the server session');
    const victim = sessions[0]!;
    const pings = 8_000;
    const batch: Uint8Array[] = [];
    for (let i = 0; i < pings; i++) batch.push(evil.seal({ channel: 0, msgId: Ping.id, seq: i, flags: 0 }, encodeCbor([u64BE(i)])));
    const flood = concatBytes(...batch);
    for (let off = 0; off < flood.length; off += 16 * 1024) evil.write(flood.subarray(off, off + 16 * 1024));
    // Let the server take in whatever it is willing to read.
    await until(() => victim.closed || victim.stats.framesIn === pings || victim.bufferedBytes > limit + 65_556, 5_000, 'the server to read the flood');
    await new Promise((r) => setTimeout(r, 20));
    const pongBytes = victim.bufferedBytes;
    assert.ok(
      victim.closed || pongBytes <= limit + 65_556,
      `server queued ${pongBytes} bytes of PONGs (${victim.stats.framesOut} frames) for a peer that reads nothing; limit ${limit}`,
    );
  } finally {
    for (const s of sessions) s.destroy(new PqnetError('SHUTDOWN'));
    await listener.close();
  }
});

test('memory: a session keeps working across many peer rekeys (rekeyAfterFrames 3)', async () => {
  const transport = new MemoryNetwork();
  await withServer(transport, 'mem://bob', async (server) => {
    const evil = await evilDial(transport, server.listener.address, mallory, { limits: { ...mallory.limits, rekeyAfterFrames: 3 } });
    const victim = await server.sessionOf(mallory.identity.peerId);
    for (let i = 0; i < 30; i++) evil.write(evil.seal(app(i), Uint8Array.of(i)));
    await until(() => server.frames.get(victim)!.length === 30, 3_000, '30 frames');
    assert.equal(victim.stats.rekeysIn, 10);
    assert.equal(evil.sealer.generation, 10);
    assert.equal(victim.closed, false);
    await until(() => evil.frames.length === 30, 3_000, '30 echoes');
    assert.deepEqual(
      evil.frames.map((f) => f.seq),
      Array.from({ length: 30 }, (_, i) => i),
    );
  });
});
