import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PqnetError, type Reason } from '../../src/core/errors.ts';
import { MIN_MORE_CHUNK_BYTES, MAX_CHUNK_BYTES } from '../../src/core/limits.ts';
import { Mux, type InboundLimiter, type InboundMessage, type MuxFrame } from '../../src/mux/mux.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { Channel } from '../../src/wire/channels.ts';
import { FLAG_MORE, type FrameHeader } from '../../src/wire/frame.ts';
import { createRegistry, Credit, Ping } from '../../src/wire/messages.ts';
import { defineMessage, type MessageType } from '../../src/wire/registry.ts';
import { bytes } from '../../src/wire/schema.ts';
import { Block, Bulk, Extra, Header, Hello, limits, Note, payload, registry, Tx, Vote } from './_types.ts';

const MiB = 1024 * 1024;

function pair(o: { window?: number; limiter?: InboundLimiter } = {}): { a: Mux; b: Mux } {
  const l = limits(o.window === undefined ? {} : { muxWindowBytes: o.window });
  const reg = registry();
  const a = new Mux({ registry: reg, limits: l });
  const b = new Mux(o.limiter === undefined ? { registry: reg, limits: l } : { registry: reg, limits: l, limiter: o.limiter });
  return { a, b };
}

/** Move every frame `from` can send into `to`; returns them. */
function flow(from: Mux, to: Mux, max = 100_000): MuxFrame[] {
  const out: MuxFrame[] = [];
  while (out.length < max) {
    const f = from.pollFrame();
    if (f === undefined) break;
    out.push(f);
    f.completes?.onSettled?.();
    to.receive(f.header, f.chunk, 0);
  }
  return out;
}

function inbound(m: Mux): InboundMessage[] {
  const out: InboundMessage[] = [];
  for (let x = m.pollInbound(); x !== undefined; x = m.pollInbound()) out.push(x);
  return out;
}

/** Exchange opening credits both ways. */
function open(a: Mux, b: Mux): void {
  flow(a, b);
  flow(b, a);
}

function send<T>(m: Mux, type: MessageType<T>, value: T): void {
  m.enqueue(type as MessageType<unknown>, encodeCbor(value));
}

function rejects(fn: () => unknown, code: Reason): void {
  assert.throws(fn, (e: unknown) => e instanceof PqnetError && e.code === code);
}

test('each side opens with a CREDIT granting its window on every data channel', () => {
  const { a, b } = pair();
  const frames = flow(a, b);
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.header.msgId, Credit.id);
  for (const c of [1, 2, 3, 4, 5, 6] as const) assert.equal(b.credit(c), a.windows[c]);
  // The blocks channel window is raised to its largest type (8 MiB blocks).
  assert.equal(a.windows[Channel.BLOCKS], 8 * MiB + 0);
  assert.equal(a.windows[Channel.CONSENSUS], MiB);
  assert.equal(b.credit(Channel.CONTROL), 0);
});

test('a message larger than a frame is chunked, flagged MORE, and reassembled intact', () => {
  const { a, b } = pair();
  open(a, b);
  const body = payload(3 * MiB + 12345);
  send(a, Block, [body]);
  const frames = flow(a, b);
  assert.ok(frames.length >= Math.ceil(body.length / MAX_CHUNK_BYTES));
  frames.forEach((f, i) => {
    assert.ok(f.chunk.length <= MAX_CHUNK_BYTES);
    assert.equal(f.header.flags & FLAG_MORE, i === frames.length - 1 ? 0 : FLAG_MORE);
    assert.equal(f.header.seq, 0);
  });
  const [m] = inbound(b);
  assert.deepEqual(m!.value, [body]);
  assert.equal(m!.channel, Channel.BLOCKS);
});

test('a vote queued behind a multi-megabyte block leaves with the next frame', () => {
  const { a, b } = pair();
  open(a, b);
  send(a, Block, [payload(4 * MiB)]);
  const first = a.pollFrame()!;
  b.receive(first.header, first.chunk, 0);
  send(a, Vote, [payload(100)]);
  const next = a.pollFrame()!;
  assert.equal(next.header.channel, Channel.CONSENSUS);
  assert.equal(next.completes?.type, Vote);
  b.receive(next.header, next.chunk, 0);
  assert.equal(inbound(b)[0]!.type, Vote);
  flow(a, b);
  assert.equal(inbound(b)[0]!.type, Block);
});

test('channels of equal priority share the link chunk by chunk', () => {
  const { a, b } = pair();
  open(a, b);
  send(a, Block, [payload(MiB)]);
  send(a, Note, [payload(60_000)]);
  send(a, Note, [payload(60_000)]);
  const order = flow(a, b)
    .slice(0, 4)
    .map((f) => f.header.channel);
  assert.deepEqual(order, [Channel.BLOCKS, Channel.REQUESTS, Channel.BLOCKS, Channel.REQUESTS]);
});

test('a sender without credit stops; releasing grants more and it resumes', () => {
  const { a, b } = pair({ window: 256 * 1024 });
  open(a, b);
  for (let i = 0; i < 20; i++) send(a, Tx, [payload(60_000, i)]);
  flow(a, b);
  const got = inbound(b);
  assert.equal(got.length, 4, 'four 60 kB messages fit the 256 KiB window');
  assert.equal(a.pollFrame(), undefined);
  assert.ok(b.outstanding(Channel.TRANSACTIONS) <= b.windows[Channel.TRANSACTIONS]!);
  // The sender has spent its last credit on the first chunk of the fifth message, which
  // cannot finish without more: releasing even one message grants credit at once.
  b.release(Channel.TRANSACTIONS, got[0]!.bytes);
  const credits = flow(b, a);
  assert.equal(credits.length, 1);
  assert.equal(credits[0]!.header.msgId, Credit.id);
  flow(a, b);
  assert.equal(inbound(b).length, 1);
  assert.equal(a.queuedBytes(Channel.TRANSACTIONS), 15 * 60_004);
  // With credit to spare, small releases wait until a quarter of the window is free.
  assert.equal(b.outstanding(Channel.TRANSACTIONS) <= b.windows[Channel.TRANSACTIONS]!, true);
});

test('property: any mix of messages arrives intact and in order per channel, and the receiver never holds more than its window', () => {
  const types = [Vote, Tx, Note, Header, Block] as const;
  fc.assert(
    fc.property(
      fc.array(fc.record({ t: fc.integer({ min: 0, max: 4 }), n: fc.integer({ min: 0, max: 200_000 }) }), { minLength: 1, maxLength: 20 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: MIN_MORE_CHUNK_BYTES, max: MAX_CHUNK_BYTES }),
      (msgs, releaseEvery, chunk) => {
        const reg = registry();
        const l = limits({ muxWindowBytes: 128 * 1024, muxChunkBytes: chunk });
        const a = new Mux({ registry: reg, limits: l });
        const b = new Mux({ registry: reg, limits: l });
        open(a, b);
        const sent = new Map<number, Uint8Array[]>();
        for (const [i, { t, n }] of msgs.entries()) {
          const type = types[t]!;
          const body = payload(Math.min(n, type.maxBytes - 8), i);
          send(a, type, [body]);
          sent.set(type.channel, [...(sent.get(type.channel) ?? []), body]);
        }
        const got = new Map<number, Uint8Array[]>();
        const held: InboundMessage[] = [];
        for (let round = 0; round < 10_000; round++) {
          const moved = flow(a, b, 3).length;
          for (const m of inbound(b)) {
            held.push(m);
            got.set(m.channel, [...(got.get(m.channel) ?? []), (m.value as [Uint8Array])[0]]);
          }
          for (const c of [1, 2, 3, 4, 5, 6] as const) assert.ok(b.outstanding(c) <= b.windows[c]!);
          if (round % (releaseEvery + 1) === 0 || moved === 0) for (const m of held.splice(0)) b.release(m.channel, m.bytes);
          flow(b, a);
          if (moved === 0 && held.length === 0 && !a.hasFrame) break;
        }
        assert.deepEqual(got, sent);
      },
    ),
    { numRuns: 25 },
  );
});

test('queue cap: an empty channel takes one message of any size, a busy one refuses past muxQueueBytes', () => {
  const reg = registry();
  const a = new Mux({ registry: reg, limits: limits({ muxQueueBytes: 100_000 }) });
  send(a, Block, [payload(3 * MiB)]);
  rejects(() => send(a, Block, [payload(10)]), 'MUX_QUEUE_FULL');
  send(a, Tx, [payload(50_000)]);
  send(a, Tx, [payload(49_000)]);
  rejects(() => send(a, Tx, [payload(2_000)]), 'MUX_QUEUE_FULL');
});

test('a message bigger than the peer window fails with MSG_OVERSIZE once the window is known', () => {
  // The receiver runs an older registry in which bulk messages are capped at 64 KiB.
  const older = createRegistry();
  older.register(defineMessage({ ...Bulk, maxBytes: 64 * 1024 }));
  const small = new Mux({ registry: older, limits: limits({ muxWindowBytes: 64 * 1024 }) });
  const a = new Mux({ registry: registry(), limits: limits() });
  // Queued before the window is known, failed when the peer's opening credit arrives.
  const early = a.enqueue(Bulk as MessageType<unknown>, encodeCbor([payload(2 * MiB)]));
  let failed: PqnetError | undefined;
  early.onSettled = (e) => (failed = e);
  flow(small, a);
  assert.equal(failed?.code, 'MSG_OVERSIZE');
  rejects(() => send(a, Bulk, [payload(2 * MiB)]), 'MSG_OVERSIZE');
});

test('negotiation: a protocol-bound type is refused both ways until both peers announced it', () => {
  const { a, b } = pair();
  open(a, b);
  rejects(() => send(a, Extra, [payload(10)]), 'MSG_NOT_NEGOTIATED');
  a.setNegotiated(['test/extra/1']);
  send(a, Extra, [payload(10)]);
  rejects(() => flow(a, b), 'MSG_NOT_NEGOTIATED');
  const c = pair();
  open(c.a, c.b);
  c.a.setNegotiated(['test/extra/1']);
  c.b.setNegotiated(['test/extra/1']);
  send(c.a, Extra, [payload(10)]);
  flow(c.a, c.b);
  assert.equal(inbound(c.b)[0]!.type, Extra);
});

test('control messages are delivered uncredited; PING is routed to the session', () => {
  const { a, b } = pair();
  send(a, Hello, ['hi']);
  const frames = flow(a, b);
  assert.equal(frames.length, 2);
  const [m] = inbound(b);
  assert.equal(m!.type, Hello);
  assert.equal(m!.bytes, 0);
  assert.equal(b.receive({ channel: 0, msgId: Ping.id, seq: 9, flags: 0 }, encodeCbor([payload(8)]), 0), 'session');
});

test('the limiter drops a message before buffering it, and its credit still returns', () => {
  let refuse = true;
  const charged: number[] = [];
  const limiter: InboundLimiter = {
    admit: () => (refuse ? 'MSG_RATE_LIMITED' : undefined),
    charge: (n) => charged.push(n),
  };
  const { a, b } = pair({ limiter, window: 128 * 1024 });
  open(a, b);
  send(a, Tx, [payload(60_000)]);
  send(a, Tx, [payload(60_000)]);
  flow(a, b);
  assert.equal(inbound(b).length, 0);
  assert.equal(b.stats.dropped, 2);
  assert.equal(b.outstanding(Channel.TRANSACTIONS), 0);
  refuse = false;
  flow(b, a);
  send(a, Tx, [payload(60_000)]);
  flow(a, b);
  assert.equal(inbound(b).length, 1);
  assert.ok(charged.reduce((x, y) => x + y, 0) >= 3 * 60_000);
});

// ---- Violations: each is fatal and typed. ----

function violation(h: Partial<FrameHeader>, chunk: Uint8Array, code: Reason, setup?: (a: Mux, b: Mux) => void): void {
  const { a, b } = pair();
  open(a, b);
  setup?.(a, b);
  rejects(() => b.receive({ channel: Channel.TRANSACTIONS, msgId: Tx.id, seq: 0, flags: 0, ...h }, chunk, 0), code);
  rejects(() => b.receive({ channel: Channel.TRANSACTIONS, msgId: Tx.id, seq: 0, flags: 0 }, encodeCbor([payload(1)]), 0), 'CLOSED');
}

const txBody = encodeCbor([payload(100)]);

test('violation: a channel that does not exist', () => violation({ channel: 9 }, txBody, 'MUX_BAD_CHANNEL'));
test('violation: unknown message id', () => violation({ msgId: 0x9999 }, txBody, 'MSG_UNKNOWN_ID'));
test('violation: a message on another channel than its own', () => violation({ channel: Channel.BULK }, txBody, 'MSG_WRONG_CHANNEL'));
test('violation: an empty chunk', () => violation({}, new Uint8Array(0), 'MUX_BAD_CHUNK'));
test('violation: a continued chunk shorter than the minimum', () => violation({ flags: FLAG_MORE }, payload(100), 'MUX_BAD_CHUNK'));
test('violation: a chunked control message', () => violation({ channel: 0, msgId: Hello.id, flags: FLAG_MORE }, payload(10), 'MUX_BAD_CHUNK'));
test('violation: a message that skips a sequence number', () => violation({ seq: 1 }, txBody, 'MUX_BAD_SEQ'));
test('violation: a chunk of another message inside a chunked one', () =>
  violation({ seq: 1 }, txBody, 'MUX_BAD_SEQ', (_a, b) => b.receive({ channel: 3, msgId: Tx.id, seq: 0, flags: FLAG_MORE }, payload(MIN_MORE_CHUNK_BYTES), 0)));
test('violation: a message over its type cap, caught before the last chunk', () =>
  violation({ flags: FLAG_MORE }, payload(MIN_MORE_CHUNK_BYTES), 'MSG_OVERSIZE', (_a, b) => {
    for (let i = 0; i < 16; i++) b.receive({ channel: 3, msgId: Tx.id, seq: 0, flags: FLAG_MORE }, payload(MIN_MORE_CHUNK_BYTES), 0);
  }));
test('violation: more bytes than the credit granted', () => {
  const { a, b } = pair({ window: 64 * 1024 });
  open(a, b);
  b.receive({ channel: 3, msgId: Tx.id, seq: 0, flags: FLAG_MORE }, payload(60_000), 0);
  rejects(() => b.receive({ channel: 3, msgId: Tx.id, seq: 0, flags: 0 }, payload(6_000), 0), 'MUX_CREDIT_EXCEEDED');
});
test('violation: a credit grant past the maximum window', () =>
  violation({ channel: 0, msgId: Credit.id }, encodeCbor([[3, 2 ** 30]]), 'MUX_CREDIT_OVERFLOW'));
test('violation: a credit for the control channel', () => violation({ channel: 0, msgId: Credit.id }, encodeCbor([[0, 10]]), 'MUX_BAD_CHANNEL'));
test('violation: a malformed payload', () => violation({}, new Uint8Array([0xff, 0x00]), 'MSG_MALFORMED'));

test('fail() settles every queued message with the reason', () => {
  const { a } = pair();
  const errors: (PqnetError | undefined)[] = [];
  for (const t of [Block, Vote, Tx]) a.enqueue(t as MessageType<unknown>, encodeCbor([payload(10)])).onSettled = (e) => errors.push(e);
  a.fail(new PqnetError('SHUTDOWN'));
  assert.deepEqual(
    errors.map((e) => e?.code),
    ['SHUTDOWN', 'SHUTDOWN', 'SHUTDOWN'],
  );
  assert.equal(a.pollFrame(), undefined);
  rejects(() => send(a, Vote, [payload(1)]), 'CLOSED');
});

test('a message nearly as large as the window finishes even when the credit left is under a continued chunk', () => {
  // 1 MiB window on bulk; a small message first leaves the sender 25 bytes short of a whole-window message.
  const reg = createRegistry();
  const Big = defineMessage({ id: 0x8010, name: 'big', channel: Channel.BULK, maxBytes: MiB, schema: bytes(0, MiB) });
  reg.register(Big as MessageType<unknown>);
  const a = new Mux({ registry: reg, limits: limits({ muxWindowBytes: MiB }) });
  const b = new Mux({ registry: reg, limits: limits({ muxWindowBytes: MiB }) });
  open(a, b);
  send(a, Big, payload(100));
  send(a, Big, payload(MiB - 5));
  const got: InboundMessage[] = [];
  for (let round = 0; round < 1_000 && got.length < 2; round++) {
    flow(a, b);
    for (const m of inbound(b)) {
      got.push(m);
      b.release(m.channel, m.bytes);
    }
    flow(b, a);
  }
  assert.deepEqual(
    got.map((m) => (m.value as Uint8Array).length),
    [100, MiB - 5],
  );
});
