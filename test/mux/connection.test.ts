import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PqnetError, type Reason } from '../../src/core/errors.ts';
import type { InboundMessage } from '../../src/mux/mux.ts';
import { Channel } from '../../src/wire/channels.ts';
import { connectedPair, rejectsWith, settle, until } from './_pair.ts';
import { Block, Echo, Note, payload, Quick, Tx, Vote } from './_types.ts';

const MiB = 1024 * 1024;

function collect(): { got: InboundMessage[]; handler: (m: InboundMessage) => void } {
  const got: InboundMessage[] = [];
  return { got, handler: (m) => void got.push(m) };
}

for (const tcp of [false, true]) {
  const name = tcp ? 'tcp' : 'memory';

  test(`${name}: messages of every size arrive intact on their channels; send resolves once written`, async () => {
    const { a, b, close } = await connectedPair({ tcp });
    try {
      const { got, handler } = collect();
      a.start(() => undefined);
      b.start(handler);
      const big = payload(5 * MiB + 3);
      await Promise.all([a.send(Block, [big]), a.send(Vote, [payload(10)]), a.send(Tx, [payload(70)]), a.send(Note, [payload(60_000)])]);
      await until(() => got.length === 4, 'four messages');
      const byType = new Map(got.map((m) => [m.type.name, m]));
      assert.deepEqual(byType.get('block')!.value, [big]);
      assert.equal(byType.get('vote')!.channel, Channel.CONSENSUS);
      assert.deepEqual(byType.get('note')!.value, [payload(60_000)]);
    } finally {
      await close();
    }
  });
}

test('memory: a consensus message queued while a block is on the wire overtakes it', async () => {
  const { a, b, close } = await connectedPair();
  try {
    const order: string[] = [];
    a.start(() => undefined);
    b.start((m) => void order.push(m.type.name));
    const blockSent = a.send(Block, [payload(8 * MiB - 100)]);
    // Part of the block has reached the receiver when the vote is queued.
    await until(() => b.mux.outstanding(Channel.BLOCKS) > 0, 'block bytes at the receiver');
    await a.send(Vote, [payload(100)]);
    await blockSent;
    await until(() => order.length === 2, 'both messages');
    assert.deepEqual(order, ['vote', 'block']);
  } finally {
    await close();
  }
});

test('tcp: a consensus message queued behind 32 MiB of blocks is not delivered after them', async () => {
  const { a, b, close } = await connectedPair({ tcp: true, limitsA: { muxQueueBytes: 64 * MiB }, limitsB: { muxWindowBytes: 64 * MiB } });
  try {
    const order: string[] = [];
    a.start(() => undefined);
    b.start((m) => void order.push(m.type.name));
    // The receiver stops reading, so the kernel buffers fill and the sender's mux holds the rest.
    b.session.pauseReading();
    const blocks = [0, 1, 2, 3].map((i) => a.send(Block, [payload(8 * MiB - 100, i)]));
    await until(() => a.session.bufferedBytes > 0, 'the sender to be held up by the socket');
    const vote = a.send(Vote, [payload(100)]);
    b.session.resumeReading();
    await Promise.all([...blocks, vote]);
    await until(() => order.length === 5, 'all five messages');
    // Only what was already in the socket buffers (a few MiB) can arrive before the vote.
    assert.ok(order.indexOf('vote') <= 2, order.join(','));
  } finally {
    await close();
  }
});

test('back-pressure: a receiver that does not finish its messages stops the sender at its window', async () => {
  const window = 256 * 1024;
  const { a, b, close } = await connectedPair({ limitsA: { muxWindowBytes: window }, limitsB: { muxWindowBytes: window } });
  try {
    const holds: (() => void)[] = [];
    a.start(() => undefined);
    b.start(() => new Promise<void>((r) => holds.push(r)));
    let sent = 0;
    let stop = false;
    const sender = (async () => {
      while (!stop) {
        await a.send(Tx, [payload(60_000, sent)]);
        sent++;
      }
    })();
    await until(() => holds.length === 4, 'four messages held');
    await settle();
    // Four 60 kB messages fill the 256 KiB window; the fifth send waits for credit.
    assert.equal(holds.length, 4);
    assert.equal(sent, 4);
    assert.ok(b.mux.outstanding(Channel.TRANSACTIONS) <= window);
    assert.ok(a.session.bufferedBytes < 64 * 1024);
    // Finishing the held messages grants credit back, and the sender moves on.
    for (const r of holds.splice(0)) r();
    await until(() => holds.length >= 4 && sent >= 8, 'the sender to resume');
    stop = true;
    for (const r of holds.splice(0)) r();
    await until(() => holds.length === 0 || (holds.splice(0).forEach((r) => r()), false), 'drain');
    await Promise.race([sender, settle(50)]);
  } finally {
    await close();
  }
});

test('a peer that never reads: sends wait for credit, the queue is capped, and nothing grows without bound', async () => {
  const { a, b, close } = await connectedPair({ limitsA: { muxQueueBytes: 300_000 } });
  try {
    a.start(() => undefined);
    // b never starts: it neither reads nor grants credit.
    const pending: Promise<void>[] = [];
    let refused: PqnetError | undefined;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      try {
        pending.push(a.send(Tx, [payload(50_000, i)]).catch(() => undefined));
      } catch (e) {
        refused = e as PqnetError;
      }
    }
    const full = await rejectsWith(a.send(Tx, [payload(50_000)]), 'MUX_QUEUE_FULL');
    assert.match(full.message, /channel 3/);
    assert.ok(a.mux.queuedBytes(Channel.TRANSACTIONS) <= 300_000 + 50_010);
    await settle();
    assert.ok(a.session.bufferedBytes < 1024, `${a.session.bufferedBytes} bytes buffered`);
    assert.equal(b.closed, false);
  } finally {
    await close();
  }
});

test('request/response: answers, error statuses, missing handlers, caps, timeouts and aborts', async () => {
  const { a, b, close } = await connectedPair({ limitsA: { maxRequestsInFlight: 4 }, limitsB: { maxInboundRequests: 2, requestTimeoutMs: 300 } });
  try {
    const offensesA: Reason[] = [];
    const offensesB: Reason[] = [];
    a.on('offense', (r) => offensesA.push(r));
    b.on('offense', (r) => offensesB.push(r));
    a.start(() => undefined);
    b.start(() => undefined);

    // No handler yet.
    const none = await rejectsWith(a.request(Echo, ['x', 3]), 'REQ_FAILED');
    assert.equal(none.details?.remoteReason, 'REQ_NO_HANDLER');

    const gates: (() => void)[] = [];
    b.handle(Echo, async ([text, n]) => {
      if (text === 'bad') throw new PqnetError('INVALID_DATA', 'refused');
      if (text === 'slow') await new Promise<void>((r) => gates.push(r));
      if (text === 'never') await new Promise(() => undefined);
      return payload(n);
    });
    assert.deepEqual(await a.request(Echo, ['hi', 100_000]), payload(100_000));

    const bad = await rejectsWith(a.request(Echo, ['bad', 1]), 'REQ_FAILED');
    assert.equal(bad.details?.remoteReason, 'INVALID_DATA');

    // b serves at most 2 at once: the third and fourth are refused with REQ_TOO_MANY.
    const slow = [0, 1, 2, 3].map(() => a.request(Echo, ['slow', 1]).then(() => 'ok', (e: PqnetError) => e.details?.remoteReason ?? e.code));
    // a has at most 4 in flight: a fifth is refused locally.
    await rejectsWith(a.request(Echo, ['x', 1]), 'REQ_TOO_MANY');
    await until(() => gates.length === 2, 'two requests being served');
    await settle();
    for (const g of gates.splice(0)) g();
    assert.deepEqual((await Promise.all(slow)).sort(), ['REQ_TOO_MANY', 'REQ_TOO_MANY', 'ok', 'ok']);
    // A handler refusing a request as invalid blames the requester; requests over the
    // serving cap are refused but not scored (the requester may have abandoned earlier ones).
    assert.deepEqual(offensesB, ['INVALID_DATA']);

    // A request that is never answered times out and counts against the peer.
    await rejectsWith(a.request(Echo, ['never', 1], { timeoutMs: 30 }), 'REQ_TIMEOUT');
    assert.deepEqual(offensesA, ['REQ_TIMEOUT']);

    const ac = new AbortController();
    const aborted = a.request(Echo, ['never', 1], { signal: ac.signal });
    ac.abort();
    await rejectsWith(aborted, 'CLOSED');
    // b gives each handler requestTimeoutMs (300 ms): the two that never finish lose their
    // slots, and their late TIMEOUT answers are recognised by a as late, not unsolicited.
    await until(() => b.stats().requestsServing === 2, 'both never-ending requests being served');
    await until(() => b.stats().requestsServing === 0, 'the serving slots to be freed');
    await settle();
    assert.equal((await a.request(Echo, ['ok', 5])).length, 5);
    assert.deepEqual(offensesA, ['REQ_TIMEOUT']);
  } finally {
    await close();
  }
});

test('a handler gets its type\'s deadline, and an answer its schema refuses is our fault, not the requester\'s', async () => {
  const { a, b, close } = await connectedPair({ limitsB: { requestTimeoutMs: 60_000 } });
  try {
    const offensesB: Reason[] = [];
    const handlerErrors: string[] = [];
    b.on('offense', (r) => offensesB.push(r));
    b.on('handlerError', (e) => handlerErrors.push((e as PqnetError).code));
    a.start(() => undefined);
    b.start(() => undefined);
    b.handle(Quick, async (text) => {
      if (text === 'never') await new Promise(() => undefined);
      return text === 'big' ? payload(100) : payload(4);
    });
    assert.equal((await a.request(Quick, 'ok')).length, 4);
    // Quick's timeoutMs is 150 ms: b's handler deadline is that, not requestTimeoutMs (60 s).
    // a waits longer (5 s), so the answer a gets is b's TIMEOUT status.
    const slow = await rejectsWith(a.request(Quick, 'never', { timeoutMs: 5_000 }), 'REQ_FAILED');
    assert.equal(slow.details?.remoteReason, 'TIMEOUT');
    assert.equal(b.stats().requestsServing, 0);
    // 100 bytes > the 8-byte response schema: b answers INTERNAL and blames itself.
    const big = await rejectsWith(a.request(Quick, 'big'), 'REQ_FAILED');
    assert.equal(big.details?.remoteReason, 'INTERNAL');
    assert.deepEqual(handlerErrors, ['MSG_SCHEMA']);
    assert.deepEqual(offensesB, []);
  } finally {
    await close();
  }
});

test('pending requests fail with CLOSED when the connection ends', async () => {
  const { a, b, close } = await connectedPair();
  try {
    a.start(() => undefined);
    b.start(() => undefined);
    b.handle(Echo, () => new Promise<Uint8Array>(() => undefined));
    const p = a.request(Echo, ['x', 1]);
    await settle();
    b.close('SHUTDOWN');
    await rejectsWith(p, 'CLOSED');
    await rejectsWith(a.send(Vote, [payload(1)]), 'CLOSED');
  } finally {
    await close();
  }
});

test('a protocol violation closes the connection with GOODBYE carrying the reason', async () => {
  const { a, b, close } = await connectedPair({ tcp: true });
  try {
    a.start(() => undefined);
    b.start(() => undefined);
    const closedA = once(a, 'close');
    const closedB = once(b, 'close');
    // A frame on channel 9 straight through the secure session.
    a.session.sendFrame({ channel: 9, msgId: Vote.id, seq: 0, flags: 0 }, payload(10));
    const [rb] = (await closedB) as [PqnetError];
    assert.equal(rb.code, 'MUX_BAD_CHANNEL');
    const [ra] = (await closedA) as [PqnetError];
    assert.equal(ra.code, 'REMOTE_CLOSED');
    assert.equal(ra.details?.remoteReason, 'MUX_BAD_CHANNEL');
  } finally {
    await close();
  }
});

test('rate limiting: refused messages are dropped and reported, and their credit still comes back', async () => {
  let admitted = 0;
  const { a, b, close } = await connectedPair({
    limitsA: { muxWindowBytes: 128 * 1024 },
    limitsB: { muxWindowBytes: 128 * 1024 },
    limiterB: {
      admit: (type) => (type.channel === Channel.TRANSACTIONS && ++admitted > 5 ? 'MSG_RATE_LIMITED' : undefined),
      charge: () => undefined,
    },
  });
  try {
    const offenses: Reason[] = [];
    b.on('offense', (r) => offenses.push(r));
    const { got, handler } = collect();
    a.start(() => undefined);
    b.start(handler);
    for (let i = 0; i < 20; i++) await a.send(Tx, [payload(30_000, i)]);
    await until(() => b.stats().dropped === 15, 'fifteen drops');
    await settle();
    assert.equal(offenses.length, 15, 'one offense per dropped message, however many chunks it had');
    assert.equal(got.length, 5);
    assert.equal(b.stats().dropped, 15);
    assert.equal(b.mux.outstanding(Channel.TRANSACTIONS), 0);
    // PING, answered by the session through the mux's admission, still works.
    assert.ok((await a.session.ping()) >= 0);
  } finally {
    await close();
  }
});

test('a handler that rejects a message as invalid blames the peer; other handler failures do not', async () => {
  const { a, b, close } = await connectedPair();
  try {
    const offenses: Reason[] = [];
    const failures: unknown[] = [];
    b.on('offense', (r) => offenses.push(r));
    b.on('handlerError', (e) => failures.push(e));
    a.start(() => undefined);
    b.start((m) => {
      if (m.type === Block) throw new PqnetError('INVALID_BLOCK', 'bad merkle root');
      if (m.type === Tx) return Promise.reject(new Error('database down'));
    });
    await a.send(Block, [payload(10)]);
    await a.send(Tx, [payload(10)]);
    await until(() => offenses.length === 1 && failures.length === 1, 'both failures');
    assert.deepEqual(offenses, ['INVALID_BLOCK']);
    assert.match(String(failures[0]), /database down/);
    assert.equal(b.closed, false);
    assert.equal(b.mux.outstanding(Channel.BLOCKS), 0);
  } finally {
    await close();
  }
});
