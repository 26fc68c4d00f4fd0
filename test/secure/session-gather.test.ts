/**
 * SecureSession's write gathering: frames sealed in one turn of the event loop
 * reach the transport in one write at the end of it, in order, without losing
 * the back-pressure accounting ('drain', `bufferedBytes`, `sendFrame`'s result)
 * or anything written before a close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PqnetError } from '../../src/core/errors.ts';
import { AEAD_TAG_BYTES, FRAME_HEADER_BYTES, LENGTH_PREFIX_BYTES, type Limits } from '../../src/core/limits.ts';
import type { OpenedFrame } from '../../src/secure/frames.ts';
import { dialSecure, SecureListener } from '../../src/secure/listener.ts';
import type { SecureSession } from '../../src/secure/session.ts';
import { MemoryNetwork } from '../../src/transport/memory.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import type { ByteStream, DialOptions, StreamHandlers, Transport, TransportListener } from '../../src/transport/types.ts';
import type { FrameHeader } from '../../src/wire/frame.ts';
import { endpoint } from './_endpoints.ts';
import { until, within } from './_evil.ts';

/** Bytes on the wire for a frame with a `chunk`-byte payload. */
const wire = (chunk: number): number => LENGTH_PREFIX_BYTES + FRAME_HEADER_BYTES + chunk + AEAD_TAG_BYTES;
const SMALL = 100;

/** A ByteStream that logs what is done to it: 'w<bytes>' per write, 'end', 'destroy'. */
class RecordingStream implements ByteStream {
  readonly log: string[] = [];
  readonly #inner: ByteStream;

  constructor(inner: ByteStream) {
    this.#inner = inner;
  }

  get remoteAddress(): string {
    return this.#inner.remoteAddress;
  }
  get remoteHost(): string {
    return this.#inner.remoteHost;
  }
  get localAddress(): string {
    return this.#inner.localAddress;
  }
  get bufferedBytes(): number {
    return this.#inner.bufferedBytes;
  }
  get closed(): boolean {
    return this.#inner.closed;
  }
  setHandlers(handlers: StreamHandlers): void {
    this.#inner.setHandlers(handlers);
  }
  write(data: Uint8Array): boolean {
    this.log.push(`w${data.length}`);
    return this.#inner.write(data);
  }
  pause(): void {
    this.#inner.pause();
  }
  resume(): void {
    this.#inner.resume();
  }
  end(): void {
    this.log.push('end');
    this.#inner.end();
  }
  destroy(error?: PqnetError): void {
    this.log.push('destroy');
    this.#inner.destroy(error);
  }
}

/** `inner`, with every dialled stream recorded in `streams`. */
function recording(inner: Transport): Transport & { streams: RecordingStream[] } {
  const streams: RecordingStream[] = [];
  return {
    scheme: inner.scheme,
    streams,
    dial: async (address: string, options?: DialOptions): Promise<ByteStream> => {
      const s = new RecordingStream(await inner.dial(address, options));
      streams.push(s);
      return s;
    },
    listen: (address: string, onStream: (s: ByteStream) => void): Promise<TransportListener> => inner.listen(address, onStream),
  };
}

interface Pair {
  /** The dialling session, over `stream`. */
  readonly s: SecureSession;
  readonly stream: RecordingStream;
  /** `stream.log.length` when the session was made (the handshake's writes come before). */
  readonly sessionMark: number;
  /** The listening side's session. */
  readonly peer: SecureSession;
  /** Frames the listening side received. */
  readonly got: OpenedFrame[];
  close(): Promise<void>;
}

let nextName = 0;

async function pair(kind: 'tcp' | 'memory', o: { limits?: Partial<Limits>; onPeer?: (peer: SecureSession) => void; onFrame?: (f: OpenedFrame, s: SecureSession) => void } = {}): Promise<Pair> {
  const inner: Transport = kind === 'tcp' ? new TcpTransport() : new MemoryNetwork();
  const transport = recording(inner);
  const bob = endpoint('bob');
  const got: OpenedFrame[] = [];
  let peer: SecureSession | undefined;
  const listener = await SecureListener.listen({
    ...bob,
    transport: inner,
    address: kind === 'tcp' ? 'tcp://127.0.0.1:0' : `mem://gather-${nextName++}`,
    onSession: (p) => {
      peer = p;
      p.start((f) => got.push(f));
      o.onPeer?.(p);
    },
  });
  const s = await dialSecure(transport, listener.address, endpoint('alice', o.limits === undefined ? {} : { limits: o.limits }), { expectedPeerId: bob.identity.peerId });
  const stream = transport.streams[0]!;
  const sessionMark = stream.log.length;
  s.start(o.onFrame ?? (() => undefined));
  await until(() => peer !== undefined, 5_000, 'the listening session');
  return {
    s,
    stream,
    sessionMark,
    peer: peer!,
    got,
    close: async () => {
      s.destroy(new PqnetError('SHUTDOWN'));
      peer?.destroy(new PqnetError('SHUTDOWN'));
      await listener.close();
    },
  };
}

const header = (seq: number): FrameHeader => ({ channel: 2, msgId: 0x8001, seq, flags: 0 });
const chunk = (len: number, fill: number): Uint8Array => new Uint8Array(len).fill(fill & 0xff);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Writes logged since `from` (sizes), without 'end'/'destroy'. */
function writesSince(stream: RecordingStream, from: number): number[] {
  return stream.log.slice(from).filter((e) => e.startsWith('w')).map((e) => Number(e.slice(1)));
}

function assertInOrder(got: readonly OpenedFrame[], lengths: readonly number[]): void {
  assert.equal(got.length, lengths.length);
  got.forEach((f, i) => {
    assert.equal(f.seq, i, `frame ${i} out of order`);
    assert.equal(f.chunk.length, lengths[i]);
    assert.ok(f.chunk.every((b) => b === (i & 0xff)), `frame ${i} content`);
  });
}

for (const kind of ['tcp', 'memory'] as const) {
  test(`${kind}: frames sent in one turn reach the transport as one write at its end, in order`, async () => {
    const { s, stream, got, close } = await pair(kind);
    try {
      const mark = stream.log.length;
      for (let i = 0; i < 100; i++) assert.equal(s.sendFrame(header(i), chunk(SMALL, i)), true);
      assert.deepEqual(writesSince(stream, mark), [], 'nothing written during the turn');
      assert.ok(s.bufferedBytes >= 100 * wire(SMALL), `bufferedBytes ${s.bufferedBytes} counts the gathered frames`);
      await turn();
      assert.deepEqual(writesSince(stream, mark), [100 * wire(SMALL)]);
      // A loop that awaits already settled promises between sends is still one turn.
      const mark2 = stream.log.length;
      for (let i = 100; i < 150; i++) {
        await Promise.resolve();
        s.sendFrame(header(i), chunk(SMALL, i));
      }
      await turn();
      assert.deepEqual(writesSince(stream, mark2), [50 * wire(SMALL)]);
      await until(() => got.length === 150, 5_000, '150 frames');
      assertInOrder(got, Array.from({ length: 150 }, () => SMALL));
    } finally {
      await close();
    }
  });

  test(`${kind}: a large frame is written by itself, after the frames gathered before it`, async () => {
    const { s, stream, got, close } = await pair(kind);
    try {
      const mark = stream.log.length;
      const lengths = [SMALL, SMALL, SMALL, 20_000, SMALL, SMALL];
      lengths.forEach((len, i) => s.sendFrame(header(i), chunk(len, i)));
      assert.deepEqual(writesSince(stream, mark), [3 * wire(SMALL), wire(20_000)], 'during the turn');
      await turn();
      assert.deepEqual(writesSince(stream, mark), [3 * wire(SMALL), wire(20_000), 2 * wire(SMALL)]);
      await until(() => got.length === lengths.length, 5_000, 'every frame');
      assertInOrder(got, lengths);
    } finally {
      await close();
    }
  });

  test(`${kind}: a long burst is written in bounded batches as it goes`, async () => {
    const { s, stream, got, close } = await pair(kind);
    try {
      const mark = stream.log.length;
      const n = 1_500;
      for (let i = 0; i < n; i++) s.sendFrame(header(i), chunk(SMALL, i));
      const during = writesSince(stream, mark);
      assert.ok(during.length >= 2, `${during.length} writes during the turn`);
      await turn();
      const all = writesSince(stream, mark);
      for (const w of all) assert.ok(w <= 64 * 1024 + wire(SMALL), `a write of ${w} bytes`);
      assert.equal(
        all.reduce((a, b) => a + b, 0),
        n * wire(SMALL),
      );
      await until(() => got.length === n, 5_000, 'every frame');
      assertInOrder(got, Array.from({ length: n }, () => SMALL));
    } finally {
      await close();
    }
  });

  test(`${kind}: close right after a burst: every frame and then the GOODBYE reach the peer`, async () => {
    const { s, stream, peer, got, close } = await pair(kind);
    try {
      const closed = new Promise<PqnetError>((r) => peer.once('close', r));
      const mark = stream.log.length;
      for (let i = 0; i < 200; i++) s.sendFrame(header(i), chunk(SMALL, i));
      s.close('SHUTDOWN', 'bye');
      assert.equal(stream.log.at(-1), 'end');
      assert.deepEqual(writesSince(stream, mark).length, 1, 'one write, then the end');
      const reason = await within(closed, 5_000, 'the peer to close');
      assert.equal(reason.code, 'REMOTE_CLOSED');
      assert.equal(reason.details?.remoteReason, 'SHUTDOWN');
      assertInOrder(got, Array.from({ length: 200 }, () => SMALL));
    } finally {
      await close();
    }
  });

  test(`${kind}: a frame sent in answer to one that arrived with a GOODBYE is written before the end`, async () => {
    const answered: number[] = [];
    const { s, stream, sessionMark, close } = await pair(kind, {
      // The peer sends one frame and closes in the same turn: both arrive together.
      onPeer: (p) =>
        setImmediate(() => {
          p.sendFrame(header(0), chunk(SMALL, 0));
          p.close('SHUTDOWN');
        }),
      onFrame: (f, session) => {
        session.sendFrame(header(f.seq), chunk(SMALL, f.seq));
        answered.push(f.seq);
      },
    });
    try {
      await until(() => s.closed, 5_000, 'the GOODBYE');
      assert.equal(s.closeReason?.code, 'REMOTE_CLOSED');
      assert.deepEqual(answered, [0]);
      assert.deepEqual(stream.log.slice(sessionMark), [`w${wire(SMALL)}`, 'end']);
    } finally {
      await close();
    }
  });

  test(`${kind}: destroy drops frames not yet written`, async () => {
    const { s, stream, peer, got, close } = await pair(kind);
    try {
      const closed = new Promise<PqnetError>((r) => peer.once('close', r));
      const mark = stream.log.length;
      for (let i = 0; i < 10; i++) s.sendFrame(header(i), chunk(SMALL, i));
      s.destroy(new PqnetError('INTERNAL', 'test'));
      await within(closed, 5_000, 'the peer to see the reset');
      await turn();
      assert.deepEqual(stream.log.slice(mark), ['destroy']);
      assert.equal(got.length, 0);
    } finally {
      await close();
    }
  });

  test(`${kind}: sendFrame counts gathered frames against maxWriteBufferBytes; 'drain' follows once the transport took them`, async () => {
    const limit = 4_096;
    const { s, stream, got, close } = await pair(kind, { limits: { maxWriteBufferBytes: limit } });
    try {
      const mark = stream.log.length;
      let n = 0;
      while (s.sendFrame(header(n), chunk(SMALL, n++)));
      assert.equal(n, Math.ceil(limit / wire(SMALL)), 'false as soon as the gathered frames reach the limit');
      assert.deepEqual(writesSince(stream, mark), [], 'before anything was written');
      await within(s.drained(), 5_000, 'drained()');
      assert.ok(s.bufferedBytes < limit);
      await until(() => got.length === n, 5_000, 'every frame');
      assertInOrder(got, Array.from({ length: n }, () => SMALL));
    } finally {
      await close();
    }
  });

  test(`${kind}: a sender gated on bufferedBytes below one batch (like the mux's low-water mark) is woken by 'drain' and finishes`, async () => {
    const { s, got, close } = await pair(kind);
    try {
      const total = 300;
      const low = 1_000;
      let sent = 0;
      const pump = (): void => {
        while (sent < total && s.bufferedBytes < low) s.sendFrame(header(sent), chunk(SMALL, sent++));
      };
      s.on('drain', pump);
      pump();
      assert.ok(sent < total, 'the gathered frames alone close the gate');
      await until(() => got.length === total, 5_000, 'every frame');
      assertInOrder(got, Array.from({ length: total }, () => SMALL));
    } finally {
      await close();
    }
  });
}
