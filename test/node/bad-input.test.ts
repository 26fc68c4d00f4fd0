/**
 * A real Node on tcp://127.0.0.1:0 against evil peers (test/node/_evil.ts):
 * clients that complete the genuine secure handshake and then flood, write
 * oversized frames, open too many connections, come back after a ban, lie in
 * HELLO, stop reading, or send what was never negotiated. Every assertion is on
 * what can be observed from outside: the GOODBYE reason the evil side gets,
 * the node's events, peers(), bans() and health() counters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPqnetError, type PqnetError, type Reason, Reasons } from '../../src/core/errors.ts';
import type { Node, PeerInfo } from '../../src/node/node.ts';
import { DEFAULT_RATE_LIMITS } from '../../src/peer/limiter.ts';
import { HelloAck, HelloStatus } from '../../src/peer/messages.ts';
import { DEFAULT_PEER_SET_OPTIONS } from '../../src/peer/peer-set.ts';
import { BAN_BELOW, NEUTRAL } from '../../src/peer/score.ts';
import type { BanRecord } from '../../src/peer/types.ts';
import { encodeRecord, RecordType } from '../../src/secure/handshake-records.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { Channel } from '../../src/wire/channels.ts';
import { defineMessage, type MessageType } from '../../src/wire/registry.ts';
import { bytes, tuple } from '../../src/wire/schema.ts';
import { Echo, Extra, payload, Tx, Vote } from '../mux/_types.ts';
import { recordFields, recordType, within, type RawClient } from '../secure/_evil.ts';
import { Evils, remoteReason } from './_evil.ts';
import { CHAIN, testNodes, until } from './_nodes.ts';

/** Small peer timers: HELLO within 300 ms, a PING every 100 ms, 300 ms of silence drops a peer. */
const SMALL_TIMERS = { silenceTimeoutMs: 300, pingIntervalMs: 100, helloTimeoutMs: 300 } as const;
const LOOPBACK = '127.0.0.1';

function closeOf(node: Node): Promise<[PeerInfo, PqnetError]> {
  return new Promise((resolve) => node.once('peer:closed', (p, r) => resolve([p, r])));
}

function near(actual: number | undefined, expected: number, tolerance: number, what: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not ${expected} ± ${tolerance}`);
}

function banTargets(bans: readonly BanRecord[]): string[] {
  return bans.map((b) => `${b.kind}:${b.target}`).sort();
}

/** A raw client's socket closed (we saw 'close'). */
function tracked(c: RawClient): { client: RawClient; closed: () => boolean } {
  let closed = false;
  void c.closed.then(() => (closed = true));
  return { client: c, closed: () => closed };
}

/** The REJECT record a listener sends: length prefix, type 5, CBOR [wire code]. */
const TOO_MANY_PER_IP_REJECT = encodeRecord(RecordType.REJECT, encodeCbor([Reasons.TOO_MANY_PER_IP.wire]));

test('1. flood: ~2,000 votes as fast as credit allows are rate-limited, each drop is an offense, the score falls and the peer ends banned', async (ctx) => {
  const t = testNodes();
  const ev = new Evils();
  try {
    const node = t.make('n-flood', { banLoopbackAddresses: true });
    node.register(Vote);
    let delivered = 0;
    node.subscribe(Vote, () => void delivered++);
    const offenses: Reason[] = [];
    node.on('peer:offense', (_p, r) => offenses.push(r));
    const banned: BanRecord[] = [];
    node.on('banned', (b) => banned.push(b));
    const nodeClosed = closeOf(node);
    await node.start();

    // The connection's limiter is created after this instant: the bound below is conservative.
    const t0 = performance.now();
    const evil = await ev.active(node, { name: 'evil-flood' });
    const SENT = 2_000;
    for (let i = 0; i < SENT; i++) void evil.send(Vote, [payload(8, i)]);
    const reason = await within(evil.closed, 10_000, 'the flooder to be disconnected');
    const elapsedS = (performance.now() - t0) / 1000;

    // Disconnected for its score, with a GOODBYE that says so.
    assert.equal(remoteReason(reason), 'PEER_LOW_SCORE', reason.message);
    const [info, nodeReason] = await nodeClosed;
    assert.equal(info.peerId, evil.peerId);
    assert.equal(nodeReason.code, 'PEER_LOW_SCORE');

    // Every dropped message is a MSG_RATE_LIMITED offense (penalty 1): from 50 to below 10 takes 41.
    const drops = offenses.filter((r) => r === 'MSG_RATE_LIMITED').length;
    const dropsToBan = Math.floor((NEUTRAL - BAN_BELOW) / Reasons.MSG_RATE_LIMITED.penalty) + 1;
    assert.deepEqual(new Set(offenses), new Set(['MSG_RATE_LIMITED']));
    assert.equal(drops, dropsToBan, `${drops} rate-limit offenses`);

    // The subscriber saw no more than the bucket allows: burst + rate × elapsed.
    const { messagesPerSecond } = DEFAULT_RATE_LIMITS;
    const bound = 2 * messagesPerSecond + messagesPerSecond * elapsedS;
    ctx.diagnostic(`${delivered} votes delivered, ${drops} dropped, in ${elapsedS.toFixed(3)} s (bound ${bound.toFixed(0)})`);
    assert.ok(delivered > 0, 'some votes got through');
    assert.ok(delivered <= bound, `${delivered} votes delivered > ${bound.toFixed(0)} (burst + rate × ${elapsedS.toFixed(3)} s)`);
    assert.ok(delivered + drops < SENT, 'the node stopped reading the flooder long before the end of the flood');

    // Banned by peer-id and by address, for the offense that crossed the line.
    const h = node.health();
    assert.ok(h.scores.lowest !== undefined && h.scores.lowest < BAN_BELOW, `lowest score ${h.scores.lowest}`);
    assert.equal(h.disconnects['PEER_LOW_SCORE'], 1);
    assert.deepEqual(banTargets(node.bans()), [`address:${LOOPBACK}`, `peer:${evil.peerId}`]);
    assert.ok(node.bans().every((b) => b.reason === 'MSG_RATE_LIMITED'));
    assert.deepEqual(banTargets(banned), banTargets(node.bans()));
    assert.equal(node.peers().length, 0);
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});

test('2. oversize frame: a length prefix of 1 MiB closes the session with FRAME_OVERSIZE and bans the peer; its reconnect is refused in admit, before any handshake work', async () => {
  const t = testNodes();
  const ev = new Evils();
  try {
    const node = t.make('n-oversize', { banLoopbackAddresses: true });
    const banned: BanRecord[] = [];
    node.on('banned', (b) => banned.push(b));
    await node.start();
    const address = node.listenAddresses[0]!;
    const evil = await ev.active(node, { name: 'evil-oversize' });
    const nodeClosed = closeOf(node);

    // 0x00100000 = 1,048,576 > 65,552 (the largest sealed frame), below the frame layer.
    evil.stream.write(new Uint8Array([0x00, 0x10, 0x00, 0x00]));
    const [info, reason] = await within(nodeClosed, 10_000, 'the node to drop the peer');
    assert.equal(info.peerId, evil.peerId);
    assert.equal(reason.code, 'FRAME_OVERSIZE');
    // A framing violation is a destroy, not an orderly close: no GOODBYE reaches the peer.
    const evilReason = await within(evil.closed, 10_000, 'the evil side to see the close');
    assert.equal(remoteReason(evilReason), undefined, evilReason.message);

    // Penalty 100: score 0, banned by peer-id (and address) for FRAME_OVERSIZE.
    const h = node.health();
    assert.equal(h.disconnects['FRAME_OVERSIZE'], 1);
    near(h.scores.lowest, 0, 0.5, 'score');
    assert.ok(node.bans().some((b) => b.kind === 'peer' && b.target === evil.peerId && b.reason === 'FRAME_OVERSIZE'));
    assert.ok(node.bans().some((b) => b.kind === 'address' && b.target === LOOPBACK));
    assert.deepEqual(banTargets(banned), banTargets(node.bans()));

    // Reconnect from 127.0.0.1: a genuine HELLO_I gets nothing back (no HELLO_R, no REJECT),
    // the socket is closed, and the refusal is counted as PEER_BANNED.
    const rejectsBefore = node.health().rejects['PEER_BANNED'] ?? 0;
    const raw = await ev.rawHelloI(address, 'evil-oversize');
    await within(raw.closed, 10_000, 'the banned reconnect to be closed');
    assert.equal(raw.received().length, 0, 'the listener answered a banned host');
    assert.equal(node.health().rejects['PEER_BANNED'], rejectsBefore + 1);
    // The full client fails its handshake the same way.
    await assert.rejects(ev.connect(address, { name: 'evil-oversize' }));
    assert.equal(node.health().rejects['PEER_BANNED'], rejectsBefore + 2);
    assert.equal(node.health().handshakesInProgress, 0);
    assert.equal(node.peers().length, 0);
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});

test('3. 100 connections from one IP: at most maxPeersPerIp are admitted, the rest get REJECT TOO_MANY_PER_IP; once closed, the node accepts again', async () => {
  const t = testNodes();
  const ev = new Evils();
  try {
    // Long listener deadlines, so that the admitted (silent) connections stay until we close them.
    const node = t.make('n-per-ip', { limits: { helloTimeoutMs: 60_000, handshakeTimeoutMs: 60_000 } });
    await node.start();
    const address = node.listenAddresses[0]!;
    const perIp = DEFAULT_PEER_SET_OPTIONS.maxPeersPerIp;
    const N = 100;

    const clients = (await Promise.all(Array.from({ length: N }, () => ev.raw(address)))).map(tracked);
    await until(() => clients.filter((c) => c.closed()).length >= N - perIp, `${N - perIp} refusals`);
    const refused = clients.filter((c) => c.closed());
    const admitted = clients.filter((c) => !c.closed());
    assert.equal(refused.length, N - perIp);
    assert.equal(admitted.length, perIp);
    for (const c of refused) {
      const got = c.client.received();
      assert.equal(recordType(got), RecordType.REJECT);
      assert.deepEqual(recordFields(got), [Reasons.TOO_MANY_PER_IP.wire]);
      assert.deepEqual(got, TOO_MANY_PER_IP_REJECT);
    }
    for (const c of admitted) assert.equal(c.client.received().length, 0);

    let h = node.health();
    assert.equal(h.rejects['TOO_MANY_PER_IP'], N - perIp);
    assert.equal(h.inbound, perIp);
    assert.equal(h.peers.handshaking, perIp);
    assert.equal(h.handshakesInProgress, perIp);

    // Close the admitted ones: their slots are freed and a real peer is admitted again.
    for (const c of admitted) c.client.socket.destroy();
    await until(() => node.health().inbound === 0 && node.health().handshakesInProgress === 0, 'slots freed');
    h = node.health();
    assert.equal(Object.values(h.disconnects).reduce((a, b) => a + b, 0), perIp);
    const evil = await ev.active(node, { name: 'evil-per-ip' });
    assert.equal(node.peer(evil.peerId)?.state, 'active');
    assert.equal(node.health().inbound, 1);
    assert.equal(node.health().rejects['TOO_MANY_PER_IP'], N - perIp);
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});

test('4a. operator ban by peer-id: disconnected with PEER_BANNED; the same identity reconnecting is refused after the handshake (peer-id check), another identity is not', async () => {
  const t = testNodes();
  const ev = new Evils();
  try {
    const node = t.make('n-ban-id');
    await node.start();
    const address = node.listenAddresses[0]!;
    const evil = await ev.active(node, { name: 'evil-ban-id' });
    const rec = node.ban({ peerId: evil.peerId }, { note: 'test' });
    assert.equal(rec.kind, 'peer');
    assert.equal(rec.reason, 'OPERATOR_BAN');
    assert.equal(remoteReason(await within(evil.closed, 10_000, 'the ban to disconnect')), 'PEER_BANNED');
    await until(() => node.peers().length === 0, 'the banned peer to be gone');

    // Same identity, same IP: admit lets it through (no address ban), the handshake completes,
    // then the peer-id check closes it with PEER_BANNED.
    const again = await ev.connect(address, { name: 'evil-ban-id' });
    again.hello();
    assert.equal(remoteReason(await within(again.closed, 10_000, 'the reconnect to be closed')), 'PEER_BANNED');
    await until(() => node.peers().length === 0, 'the reconnect to be gone');
    const h = node.health();
    assert.equal(h.rejects['PEER_BANNED'], undefined, 'not refused in admit');
    assert.equal(h.disconnects['PEER_BANNED'], 2);
    assert.equal(h.peers.active, 0);

    // Another identity from the same address is welcome.
    const other = await ev.active(node, { name: 'evil-ban-id-other' });
    assert.equal(node.peer(other.peerId)?.state, 'active');
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});

test('4b. operator ban by address: connected peers from it are disconnected with PEER_BANNED and a reconnect is refused in admit, with no handshake', async () => {
  const t = testNodes();
  const ev = new Evils();
  try {
    const node = t.make('n-ban-addr');
    await node.start();
    const address = node.listenAddresses[0]!;
    const evil = await ev.active(node, { name: 'evil-ban-addr' });
    node.ban({ address: LOOPBACK }, { durationMs: 60_000 });
    assert.equal(remoteReason(await within(evil.closed, 10_000, 'the ban to disconnect')), 'PEER_BANNED');
    await until(() => node.peers().length === 0, 'the banned peer to be gone');

    const raw = await ev.rawHelloI(address, 'evil-ban-addr');
    await within(raw.closed, 10_000, 'the banned reconnect to be closed');
    assert.equal(raw.received().length, 0, 'no HELLO_R: the listener did no handshake');
    await assert.rejects(ev.connect(address, { name: 'evil-ban-addr-other' }));
    const h = node.health();
    assert.equal(h.rejects['PEER_BANNED'], 2);
    assert.equal(h.handshakesInProgress, 0);
    assert.equal(h.disconnects['PEER_BANNED'], 1);
    assert.equal(node.peers().length, 0);

    // Lifting it lets the host back in.
    assert.equal(node.unban({ address: LOOPBACK }), true);
    const back = await ev.active(node, { name: 'evil-ban-addr' });
    assert.equal(node.peer(back.peerId)?.state, 'active');
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});

test('5. HELLO naming another chain (handshake chain id right): HelloAck CHAIN_ID_MISMATCH, GOODBYE HELLO_CHAIN_MISMATCH, 20 points each time', async () => {
  const t = testNodes();
  const ev = new Evils();
  try {
    const node = t.make('n-chain');
    await node.start();
    const address = node.listenAddresses[0]!;
    const penalty = Reasons.HELLO_CHAIN_MISMATCH.penalty;
    const expected = [NEUTRAL - penalty, NEUTRAL - 2 * penalty];
    let pid = '';
    for (const [i, score] of expected.entries()) {
      const evil = await ev.connect(address, { name: 'evil-chain' });
      pid = evil.peerId;
      evil.hello({ chainId: CHAIN + 1 });
      const reason = await within(evil.closed, 10_000, 'the node to close');
      assert.equal(remoteReason(reason), 'HELLO_CHAIN_MISMATCH', reason.message);
      const ack = evil.inbound.find((m) => m.type.id === HelloAck.id);
      assert.ok(ack !== undefined, 'a HelloAck before the GOODBYE');
      assert.equal((ack.value as [number, number])[0], HelloStatus.CHAIN_ID_MISMATCH);
      await until(() => node.peers().length === 0, 'the peer to be gone');
      const h = node.health();
      assert.equal(h.disconnects['HELLO_CHAIN_MISMATCH'], i + 1);
      near(h.scores.lowest, score, 0.5, `score after ${i + 1} attempt(s)`);
      assert.equal(node.bans().length, 0);
    }
    // A third attempt takes it below 10: banned.
    const evil = await ev.connect(address, { name: 'evil-chain' });
    evil.hello({ chainId: CHAIN + 1 });
    assert.equal(remoteReason(await within(evil.closed, 10_000, 'the node to close')), 'HELLO_CHAIN_MISMATCH');
    await until(() => node.bans().length > 0, 'a ban');
    assert.ok(node.bans().some((b) => b.kind === 'peer' && b.target === pid && b.reason === 'HELLO_CHAIN_MISMATCH'));
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});

test('6. HELLO with a clock one hour behind: the peer becomes active, HELLO_CLOCK_SKEW is an offense, clockSkewMs ≈ −3.6e6, score 40', async () => {
  const t = testNodes();
  const ev = new Evils();
  try {
    const node = t.make('n-skew');
    const offenses: [string | undefined, Reason, string][] = [];
    node.on('peer:offense', (p, r, d) => offenses.push([p.peerId, r, d]));
    await node.start();
    const HOUR = 3_600_000;
    const evil = await ev.active(node, { name: 'evil-skew' }, { timestampMs: Date.now() - HOUR });
    const info = node.peer(evil.peerId)!;
    assert.equal(info.state, 'active');
    near(info.clockSkewMs, -HOUR, 5_000, 'clockSkewMs');
    assert.equal(offenses.length, 1);
    const [who, offense, detail] = offenses[0]!;
    assert.equal(who, evil.peerId);
    assert.equal(offense, 'HELLO_CLOCK_SKEW');
    assert.match(detail, /^-36\d\d s$/);
    near(info.score, NEUTRAL - Reasons.HELLO_CLOCK_SKEW.penalty, 0.5, 'score');
    assert.equal(info.scoreStatus, 'neutral');
    assert.equal(evil.closeReason, undefined);
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});

/**
 * The evil peer completes HELLO, then stops reading; the node sends 64 × 60 KB.
 * Returns the reason the node dropped it.
 */
async function neverReads(name: string, keepSending: boolean): Promise<Reason> {
  const t = testNodes();
  const ev = new Evils();
  let ticker: ReturnType<typeof setInterval> | undefined;
  try {
    const QUEUE = 256 * 1024;
    const node = t.make(`n-${name}`, { timers: SMALL_TIMERS, limits: { muxQueueBytes: QUEUE } });
    node.register(Tx);
    node.register(Vote);
    await node.start();
    const evil = await ev.active(node, { name });
    const window = evil.conn.mux.windows[Tx.channel]!;
    const nodeClosed = closeOf(node);
    evil.session.pauseReading();
    if (keepSending) ticker = setInterval(() => void evil.send(Vote, [payload(8)]), 20);

    const outcome = { ok: 0, full: 0, pending: 0, other: [] as string[] };
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 64; i++) {
      outcome.pending++;
      sends.push(
        node
          .send(evil.peerId, Tx, [payload(60_000, i)])
          .then(
            () => void outcome.ok++,
            (e: unknown) => {
              if (isPqnetError(e) && e.code === 'MUX_QUEUE_FULL') outcome.full++;
              else outcome.other.push(isPqnetError(e) ? e.code : String(e));
            },
          )
          .finally(() => void outcome.pending--),
      );
    }
    await new Promise((r) => setImmediate(r));
    // Back-pressure: some sends wait, the rest are refused, the queue and the bytes written stay bounded.
    assert.ok(outcome.full > 0, `no MUX_QUEUE_FULL (${JSON.stringify(outcome)})`);
    assert.ok(outcome.pending > 0, `nothing waiting for credit (${JSON.stringify(outcome)})`);
    assert.ok(outcome.ok * 60_000 <= window, `${outcome.ok} sends completed beyond the ${window}-byte window`);
    const info = node.peer(evil.peerId)!;
    assert.equal(info.state, 'active');
    assert.ok(node.health().queuedBytes <= QUEUE, `queued ${node.health().queuedBytes} > ${QUEUE}`);
    assert.ok(info.queuedBytes > 0 && info.queuedBytes <= QUEUE);
    assert.ok(info.bytesOut <= window + 128 * 1024, `wrote ${info.bytesOut} bytes to a peer that granted ${window}`);

    const [closedInfo, reason] = await within(nodeClosed, 10_000, 'the node to drop the peer');
    assert.equal(closedInfo.peerId, evil.peerId);
    assert.ok(node.health().queuedBytes === 0);
    await Promise.all(sends);
    assert.equal(outcome.pending, 0);
    assert.ok(outcome.other.every((c) => c === reason.code), `pending sends failed with ${outcome.other.join(', ')}`);
    assert.equal(node.health().disconnects[reason.code], 1);
    assert.equal(node.peers().length, 0);
    return reason.code;
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
    ev.cleanup();
    await t.cleanup();
  }
}

test('7a. a peer that stops reading and keeps quiet: bounded queues, MUX_QUEUE_FULL, dropped for silence (or as a slow reader)', async (ctx) => {
  const reason = await neverReads('evil-quiet', false);
  ctx.diagnostic(`dropped with ${reason}`);
  assert.ok(reason === 'PEER_SILENT' || reason === 'SLOW_READER', reason);
});

test('7b. a peer that stops reading but keeps sending: bounded queues, MUX_QUEUE_FULL, dropped as SLOW_READER', async () => {
  assert.equal(await neverReads('evil-chatty', true), 'SLOW_READER');
});

/** Known to the evil peer only. */
const Mystery = defineMessage({ id: 0x8f00, name: 'mystery', channel: Channel.GOSSIP, maxBytes: 64, schema: tuple(bytes(0, 32)) });

test('8. protocol violations after the handshake: unknown id, not negotiated, channel 9, data or a request before HELLO', async () => {
  const t = testNodes();
  const ev = new Evils();
  try {
    const node = t.make('n-violations', { protocols: ['test/extra/1'], banLoopbackAddresses: true });
    node.register(Vote);
    node.register(Extra);
    node.registerRequest(Echo);
    node.handle(Echo, () => payload(1));
    await node.start();
    const address = node.listenAddresses[0]!;
    // MUX_BAD_CHANNEL (penalty 50) goes last: it bans its peer, and with it the address 127.0.0.1.
    const cases: [string, Reason, (name: string) => Promise<PqnetError>][] = [
      [
        'a message id the node does not know',
        'MSG_UNKNOWN_ID',
        async (name) => {
          const evil = await ev.active(node, { name, types: [Mystery as MessageType<unknown>] });
          void evil.send(Mystery, [payload(4)]);
          return evil.closed;
        },
      ],
      [
        'a protocol-bound type the evil identify did not announce',
        'MSG_NOT_NEGOTIATED',
        async (name) => {
          const evil = await ev.active(node, { name, protocols: [], sendProtocols: ['test/extra/1'] });
          assert.deepEqual(node.peer(evil.peerId)?.protocols, []);
          void evil.send(Extra, [payload(4)]);
          return evil.closed;
        },
      ],
      [
        'a data message before HELLO',
        'HELLO_UNEXPECTED',
        async (name) => {
          const evil = await ev.connect(address, { name });
          void evil.send(Vote, [payload(4)]);
          return evil.closed;
        },
      ],
      [
        'a request before HELLO',
        'HELLO_UNEXPECTED',
        async (name) => {
          const evil = await ev.connect(address, { name, types: [Echo.request as MessageType<unknown>, Echo.response as MessageType<unknown>] });
          void evil.send(Echo.request, [1, ['x', 1]]);
          return evil.closed;
        },
      ],
      [
        'a frame on channel 9',
        'MUX_BAD_CHANNEL',
        async (name) => {
          const evil = await ev.active(node, { name });
          evil.session.sendFrame({ channel: 9, msgId: Vote.id, seq: 0, flags: 0 }, new Uint8Array([0x81, 0x40]));
          return evil.closed;
        },
      ],
    ];
    for (const [i, [what, expected, run]] of cases.entries()) {
      const reason = await within(run(`evil-violation-${i}`), 10_000, what);
      assert.equal(remoteReason(reason), expected, `${what}: ${reason.message}`);
      await until(() => node.peers().length === 0, `${what}: peer gone`);
      assert.equal(node.health().disconnects[expected], cases.slice(0, i + 1).filter((c) => c[1] === expected).length, what);
    }
    assert.deepEqual(node.bans().map((b) => [b.kind, b.reason]).sort(), [
      ['address', 'MUX_BAD_CHANNEL'],
      ['peer', 'MUX_BAD_CHANNEL'],
    ]);
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});

test('9. no HELLO at all: closed with HELLO_TIMEOUT', async () => {
  const t = testNodes();
  const ev = new Evils();
  try {
    const node = t.make('n-no-hello', { timers: SMALL_TIMERS });
    await node.start();
    const evil = await ev.connect(node.listenAddresses[0]!, { name: 'evil-no-hello', autoAck: false });
    const reason = await within(evil.closed, 10_000, 'HELLO_TIMEOUT');
    assert.equal(remoteReason(reason), 'HELLO_TIMEOUT', reason.message);
    const h = node.health();
    assert.equal(h.disconnects['HELLO_TIMEOUT'], 1);
    assert.equal(h.peers.active, 0);
    near(h.scores.lowest, NEUTRAL - Reasons.HELLO_TIMEOUT.penalty, 0.5, 'score');
    assert.ok(evil.inbound.some((m) => m.type.name === 'hello'), 'the node sent its own HELLO');
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});

test('10. a malformed identify record: closed with its MSG_* reason before HELLO, and the peer-id pays the penalty', async () => {
  const t = testNodes();
  const ev = new Evils();
  try {
    const node = t.make('n-identify');
    await node.start();
    // Valid canonical CBOR, wrong shape: [listen addresses, agent, protocols] expected.
    const evil = await ev.connect(node.listenAddresses[0]!, { name: 'evil-identify', identify: encodeCbor(['not', 'an', 'identify', 'record']) });
    const reason = await within(evil.closed, 10_000, 'the node to close');
    assert.equal(remoteReason(reason), 'MSG_SCHEMA', reason.message);
    assert.ok(!evil.inbound.some((m) => m.type.name === 'hello'), 'no HELLO for a refused peer');
    await until(() => node.peers().length === 0, 'the peer to be gone');
    near(node.health().scores.lowest, NEUTRAL - Reasons.MSG_SCHEMA.penalty, 0.5, 'score');
  } finally {
    ev.cleanup();
    await t.cleanup();
  }
});
