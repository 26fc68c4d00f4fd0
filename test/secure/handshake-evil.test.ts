/**
 * Adversarial handshake tests: a peer (or a man in the middle) that flips,
 * truncates, inflates, replays, strips or forges handshake records. Every
 * failure must end in status 'failed' with a reason code; `receive` must never
 * throw and a tampered handshake must never complete.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import { equalBytes, u32BE, utf8 } from '../../src/core/bytes.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { isPqnetError, PqnetError, Reasons, type Reason } from '../../src/core/errors.ts';
import { MAX_AUTH_BYTES, MAX_HELLO_I_BYTES, MAX_HELLO_R_BYTES, MAX_REJECT_BYTES, MAX_RETRY_BYTES, PROTOCOL_VERSION } from '../../src/core/limits.ts';
import { SeededRandom, systemRandom } from '../../src/core/random.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { AEAD_IDS, KEM_IDS, SIG_IDS } from '../../src/secure/algorithms.ts';
import { CookieJar } from '../../src/secure/cookie.ts';
import { Handshake } from '../../src/secure/handshake.ts';
import { AUTH_R_LABEL, authSignedData } from '../../src/secure/handshake-keys.ts';
import { encodeRecord, RecordType } from '../../src/secure/handshake-records.ts';
import { compilePolicy, DEFAULT_POLICY, type AlgorithmPolicy } from '../../src/secure/policy.ts';
import { dialSecure, SecureListener } from '../../src/secure/listener.ts';
import { MemoryNetwork } from '../../src/transport/memory.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import { ALL_POLICY, drive, makeConfigs, makePair, testIdentity, type Pair, type PairOptions } from './_drive.ts';
import { endpoint } from './_endpoints.ts';
import {
  EvilInitiator,
  flipByte,
  openAuthRecord,
  rawConnect,
  recordFields,
  recordType,
  replicaSchedule,
  rewriteRecord,
  sealAuthRecord,
  until,
  within,
  type AuthFields,
} from './_evil.ts';

/** The default (post-quantum) KEMs and AEADs, plus Ed25519 identities for cheap sweeps. */
const ED_POLICY: AlgorithmPolicy = { kem: DEFAULT_POLICY.kem, aead: DEFAULT_POLICY.aead, sig: ['ml-dsa-65', 'ed25519'] };

type RecordName = 'HELLO_I' | 'HELLO_R' | 'AUTH_R' | 'AUTH_I';
const WHERE: Record<RecordName, { dir: 'i2r' | 'r2i'; index: number }> = {
  HELLO_I: { dir: 'i2r', index: 0 },
  AUTH_I: { dir: 'i2r', index: 1 },
  HELLO_R: { dir: 'r2i', index: 0 },
  AUTH_R: { dir: 'r2i', index: 1 },
};

function receiverOf(p: Pair, rec: RecordName): Handshake {
  return WHERE[rec].dir === 'i2r' ? p.responder : p.initiator;
}

/**
 * `hs` must not be complete; if it is still waiting, its deadline fails it.
 * Returns the reason code it failed with.
 */
function failureCode(hs: Handshake, what: string): Reason {
  assert.notEqual(hs.status, 'complete', `${what}: completed`);
  if (hs.status === 'in-progress') {
    const deadline = hs.pollTimeout();
    assert.ok(deadline !== undefined, `${what}: in progress without a deadline`);
    hs.handleTimeout(deadline - 1);
    assert.equal(hs.status, 'in-progress', `${what}: failed before its deadline`);
    hs.handleTimeout(deadline);
    assert.equal(hs.error?.code, 'HS_DEADLINE', `${what}: deadline did not fail it`);
  }
  assert.equal(hs.status, 'failed', what);
  assert.ok(isPqnetError(hs.error), `${what}: error is not a PqnetError`);
  assert.ok(hs.error.code in Reasons, `${what}: unknown code ${hs.error.code}`);
  return hs.error.code;
}

/** drive(), turning an exception out of `receive` into an assertion naming the case. */
function driveSafely(p: Pair, what: string, tamper?: Parameters<typeof drive>[1]): ReturnType<typeof drive> {
  try {
    return drive(p, tamper);
  } catch (e) {
    assert.fail(`${what}: receive threw ${e instanceof Error ? e.stack : String(e)}`);
  }
}

/** Flip each `step`-th byte of `rec` in a fresh handshake; returns reason code -> count. */
function flipSweep(rec: RecordName, opts: PairOptions, step: number): Map<Reason, number> {
  const codes = new Map<Reason, number>();
  const where = WHERE[rec];
  const length = driveSafely(makePair(opts), 'baseline')[where.dir][where.index]!.length;
  for (let i = 0; i < length; i += step) {
    const p = makePair(opts);
    const what = `${rec} byte ${i}/${length}`;
    let flipped = false;
    driveSafely(p, what, (dir, index, bytes) => {
      if (dir !== where.dir || index !== where.index) return undefined;
      assert.equal(bytes.length, length, `${what}: record length differs between runs`);
      flipped = true;
      return flipByte(bytes, i);
    });
    assert.ok(flipped, `${what}: record was never sent`);
    const code = failureCode(receiverOf(p, rec), what);
    codes.set(code, (codes.get(code) ?? 0) + 1);
    // The other side never completes either, except the initiator, which is
    // done the moment it sends AUTH_I.
    if (rec !== 'AUTH_I') assert.notEqual(p.initiator.status, 'complete', `${what}: initiator completed`);
    if (rec === 'AUTH_I') assert.equal(p.initiator.status, 'complete', `${what}: initiator should have completed`);
    else assert.notEqual(p.responder.status, 'complete', `${what}: responder completed`);
  }
  return codes;
}

const FLIP_ALLOWED: Record<RecordName, readonly Reason[]> = {
  // Responder: framing, schema, plaintext mismatches (REJECT), bad ephemeral keys;
  // a flip it cannot see (nonce, keys) leaves it waiting for an AUTH_I that never comes.
  HELLO_I: ['HS_OVERSIZE', 'HS_BAD_MESSAGE', 'HS_UNEXPECTED_MESSAGE', 'HS_VERSION_MISMATCH', 'HS_CHAIN_MISMATCH', 'HS_POLICY_MISMATCH', 'HS_BAD_KEY', 'HS_DEADLINE'],
  HELLO_R: ['HS_OVERSIZE', 'HS_BAD_MESSAGE', 'HS_UNEXPECTED_MESSAGE', 'HS_VERSION_MISMATCH', 'HS_DOWNGRADE', 'HS_BAD_KEY', 'HS_AUTH_FAILED', 'HS_DEADLINE'],
  AUTH_R: ['HS_OVERSIZE', 'HS_BAD_MESSAGE', 'HS_UNEXPECTED_MESSAGE', 'HS_AUTH_FAILED', 'HS_DEADLINE'],
  AUTH_I: ['HS_OVERSIZE', 'HS_BAD_MESSAGE', 'HS_UNEXPECTED_MESSAGE', 'HS_AUTH_FAILED', 'HS_DEADLINE'],
};
/** Codes each sweep must produce at least once (the sweep really reaches them). */
const FLIP_REQUIRED: Record<RecordName, readonly Reason[]> = {
  HELLO_I: ['HS_OVERSIZE', 'HS_BAD_MESSAGE', 'HS_VERSION_MISMATCH', 'HS_CHAIN_MISMATCH', 'HS_POLICY_MISMATCH', 'HS_DEADLINE'],
  HELLO_R: ['HS_OVERSIZE', 'HS_BAD_MESSAGE', 'HS_VERSION_MISMATCH', 'HS_DOWNGRADE', 'HS_AUTH_FAILED', 'HS_UNEXPECTED_MESSAGE'],
  AUTH_R: ['HS_OVERSIZE', 'HS_AUTH_FAILED', 'HS_UNEXPECTED_MESSAGE', 'HS_DEADLINE'],
  // AUTH_I's type flipped is REJECT (type 5), whose 64-byte cap it exceeds: HS_OVERSIZE.
  AUTH_I: ['HS_OVERSIZE', 'HS_AUTH_FAILED', 'HS_DEADLINE'],
};

function checkSweep(rec: RecordName, codes: Map<Reason, number>, requireAll: boolean): void {
  const seen = [...codes.keys()].sort();
  for (const c of seen) assert.ok(FLIP_ALLOWED[rec].includes(c), `${rec}: unexpected reason ${c} (seen ${JSON.stringify(Object.fromEntries(codes))})`);
  if (requireAll) for (const c of FLIP_REQUIRED[rec]) assert.ok(codes.has(c), `${rec}: sweep never produced ${c} (seen ${seen.join(', ')})`);
}

for (const rec of ['HELLO_I', 'HELLO_R', 'AUTH_R', 'AUTH_I'] as const) {
  test(`1. every byte of ${rec} flipped (Ed25519 identities, hybrid KEM): fails with a reason, never completes`, () => {
    const codes = flipSweep(rec, { alg: 'ed25519', policy: ED_POLICY, seed: `flip ${rec}` }, 1);
    checkSweep(rec, codes, true);
  });
  test(`1. every 16th byte of ${rec} flipped (ML-DSA-65 identities): fails with a reason, never completes`, () => {
    const codes = flipSweep(rec, { alg: 'ml-dsa-65', seed: `flip ${rec}` }, 16);
    checkSweep(rec, codes, false);
  });
}

test('1. flipping the high length byte of each record is HS_OVERSIZE as soon as the header is in', () => {
  for (const rec of ['HELLO_I', 'HELLO_R', 'AUTH_R', 'AUTH_I'] as const) {
    const where = WHERE[rec];
    const p = makePair({ alg: 'ed25519', policy: ED_POLICY });
    driveSafely(p, rec, (dir, index, bytes) => (dir === where.dir && index === where.index ? flipByte(bytes, 0).subarray(0, 5) : undefined));
    assert.equal(receiverOf(p, rec).error?.code, 'HS_OVERSIZE', rec);
  }
});

test('1. every bit of the length prefix of the last record of a flight: longer waits (HS_DEADLINE), over cap HS_OVERSIZE, shorter fails', () => {
  const caps: Record<RecordName, number> = { HELLO_I: MAX_HELLO_I_BYTES, HELLO_R: MAX_HELLO_R_BYTES, AUTH_R: MAX_AUTH_BYTES, AUTH_I: MAX_AUTH_BYTES };
  // HELLO_R is followed by AUTH_R in the same flight, which a longer prefix swallows; the others end their flight.
  for (const rec of ['HELLO_I', 'AUTH_R', 'AUTH_I'] as const) {
    const where = WHERE[rec];
    const opts: PairOptions = { alg: 'ed25519', policy: ED_POLICY };
    const len = new DataView(driveSafely(makePair(opts), 'baseline')[where.dir][where.index]!.buffer).getUint32(0);
    for (let bit = 0; bit < 32; bit++) {
      const flipped = (len ^ (1 << bit)) >>> 0;
      const p = makePair(opts);
      const what = `${rec} length ${len} -> ${flipped}`;
      driveSafely(p, what, (dir, index, bytes) => (dir === where.dir && index === where.index ? flipByte(bytes, 3 - (bit >> 3), 1 << (bit & 7)) : undefined));
      const hs = receiverOf(p, rec);
      if (flipped - 1 > caps[rec]) {
        assert.equal(hs.error?.code, 'HS_OVERSIZE', what);
      } else if (flipped > len) {
        assert.equal(hs.status, 'in-progress', `${what}: ${hs.error?.message}`);
        assert.equal(failureCode(hs, what), 'HS_DEADLINE');
      } else {
        assert.equal(hs.status, 'failed', what);
        assert.equal(hs.error?.code, rec === 'HELLO_I' ? 'HS_BAD_MESSAGE' : 'HS_AUTH_FAILED', what);
      }
    }
  }
});

// ---------------------------------------------------------------- 2. truncation

/**
 * Deliver only `cut` bytes of `rec` and nothing after it in that direction;
 * `rest` is what was held back (the rest of the record and any later records).
 */
function truncated(rec: RecordName, cut: (len: number) => number, opts: PairOptions = { alg: 'ed25519', policy: ED_POLICY }): { p: Pair; rest: Uint8Array } {
  const where = WHERE[rec];
  const p = makePair(opts);
  const held: Uint8Array[] = [];
  driveSafely(p, rec, (dir, index, bytes) => {
    if (dir !== where.dir || index < where.index) return undefined;
    if (index > where.index) {
      held.push(bytes);
      return new Uint8Array(0);
    }
    const n = cut(bytes.length);
    held.push(bytes.slice(n));
    return bytes.subarray(0, n);
  });
  return { p, rest: Uint8Array.from(held.flatMap((b) => [...b])) };
}

const CUTS: [string, (len: number) => number][] = [
  ['1 byte', () => 1],
  ['length prefix only', () => 4],
  ['header only', () => 5],
  ['header + 1', () => 6],
  ['half', (l) => Math.floor(l / 2)],
  ['all but the last byte', (l) => l - 1],
];

test('2. each record cut short: the receiver waits, before its deadline nothing happens, at it HS_DEADLINE', () => {
  for (const rec of ['HELLO_I', 'HELLO_R', 'AUTH_R', 'AUTH_I'] as const) {
    for (const [name, cut] of CUTS) {
      const { p } = truncated(rec, cut);
      const hs = receiverOf(p, rec);
      const what = `${rec} cut at ${name}`;
      assert.equal(hs.status, 'in-progress', `${what}: ${hs.error?.message}`);
      assert.equal(failureCode(hs, what), 'HS_DEADLINE');
    }
  }
});

test('2. a record cut anywhere and completed later still completes (segmentation is not an attack surface)', () => {
  for (const rec of ['HELLO_I', 'HELLO_R', 'AUTH_R', 'AUTH_I'] as const) {
    for (const [name, cut] of CUTS) {
      const { p, rest } = truncated(rec, cut, { alg: 'ed25519', policy: ED_POLICY, seed: `${rec} ${name}` });
      const hs = receiverOf(p, rec);
      hs.receive(rest, p.clock.now());
      drive(p);
      assert.equal(p.initiator.status, 'complete', `${rec} ${name}: ${p.initiator.error?.message}`);
      assert.equal(p.responder.status, 'complete', `${rec} ${name}: ${p.responder.error?.message}`);
    }
  }
});

test('2. byte-at-a-time delivery of the whole handshake completes; bytes after AUTH_I are leftover', () => {
  const p = makePair({ alg: 'ed25519', policy: ED_POLICY });
  const now = p.clock.now();
  const feed = (to: Handshake, bytes: Uint8Array): void => {
    for (let i = 0; i < bytes.length; i++) to.receive(bytes.subarray(i, i + 1), now);
  };
  const helloI = p.initiator.pollTransmit()!;
  feed(p.responder, helloI);
  const helloR = p.responder.pollTransmit()!;
  const authR = p.responder.pollTransmit()!;
  feed(p.initiator, helloR);
  assert.equal(p.initiator.state, 'await-auth-r');
  feed(p.initiator, authR);
  const authI = p.initiator.pollTransmit()!;
  assert.equal(p.initiator.status, 'complete');
  const extra = utf8('first frame bytes');
  feed(p.responder, authI.subarray(0, authI.length - 1));
  p.responder.receive(Uint8Array.of(authI[authI.length - 1]!, ...extra), now);
  assert.equal(p.responder.status, 'complete', p.responder.error?.message);
  assert.deepEqual([...p.responder.result().leftover], [...extra]);
});

test('2. the stream closing mid-record fails the handshake with the reason given to abort()', () => {
  for (const rec of ['HELLO_I', 'HELLO_R', 'AUTH_R', 'AUTH_I'] as const) {
    const { p } = truncated(rec, (l) => Math.floor(l / 3));
    const hs = receiverOf(p, rec);
    const reason = new PqnetError('REMOTE_CLOSED', `closed inside ${rec}`);
    hs.abort(reason);
    assert.equal(hs.status, 'failed');
    assert.equal(hs.error, reason);
    assert.equal(hs.pollTimeout(), undefined);
    // Later bytes and timeouts change nothing.
    hs.receive(new Uint8Array(100), p.clock.now());
    hs.handleTimeout(Number.MAX_SAFE_INTEGER);
    assert.equal(hs.error, reason);
  }
});

// ---------------------------------------------------------------- 3. oversize

test('3. a 0xffffffff length prefix is HS_OVERSIZE from the 5 header bytes alone, for every record type', () => {
  for (const type of [1, 2, 3, 4, 5, 6]) {
    const { rCfg, iCfg } = makeConfigs({ alg: 'ed25519', policy: ED_POLICY });
    for (const hs of [Handshake.respond(rCfg, 0), Handshake.initiate(iCfg, 0)]) {
      hs.receive(Uint8Array.of(0xff, 0xff, 0xff), 0);
      assert.equal(hs.status, 'in-progress');
      hs.receive(Uint8Array.of(0xff), 0);
      assert.equal(hs.status, 'in-progress', 'no decision before the type byte');
      hs.receive(Uint8Array.of(type), 0);
      assert.equal(hs.status, 'failed', `type ${type} at ${hs.role}`);
      assert.equal(hs.error?.code, 'HS_OVERSIZE', `type ${type} at ${hs.role}: ${hs.error?.message}`);
    }
  }
});

test('3. record caps are exact: a body of cap bytes waits, cap + 1 is HS_OVERSIZE; length 0 is HS_BAD_MESSAGE', () => {
  const caps: [number, number][] = [
    [1, MAX_HELLO_I_BYTES],
    [2, MAX_HELLO_R_BYTES],
    [3, MAX_AUTH_BYTES],
    [4, MAX_AUTH_BYTES],
    [5, MAX_REJECT_BYTES],
    [6, MAX_RETRY_BYTES],
  ];
  const { rCfg } = makeConfigs({ alg: 'ed25519', policy: ED_POLICY });
  for (const [type, cap] of caps) {
    const ok = Handshake.respond(rCfg, 0);
    ok.receive(Uint8Array.of(...u32BE(cap + 1), type), 0);
    assert.equal(ok.status, 'in-progress', `type ${type} at cap`);
    const over = Handshake.respond(rCfg, 0);
    over.receive(Uint8Array.of(...u32BE(cap + 2), type), 0);
    assert.equal(over.error?.code, 'HS_OVERSIZE', `type ${type} over cap`);
  }
  const empty = Handshake.respond(rCfg, 0);
  empty.receive(Uint8Array.of(0, 0, 0, 0, 1), 0);
  assert.equal(empty.error?.code, 'HS_BAD_MESSAGE');
});

// ---------------------------------------------------------------- 4. garbage

const GARBAGE_CODES: readonly Reason[] = ['HS_BAD_MESSAGE', 'HS_OVERSIZE', 'HS_UNEXPECTED_MESSAGE', 'HS_REJECTED'];

test('4. an HTTP request, a TLS ClientHello or SSH banner instead of HELLO_I fails HS_BAD_MESSAGE at once', () => {
  const { rCfg, iCfg } = makeConfigs({ alg: 'ed25519', policy: ED_POLICY });
  const inputs: [string, Uint8Array][] = [
    ['http', utf8('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.0\r\n\r\n')],
    ['tls', Uint8Array.of(0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03)],
    ['ssh', utf8('SSH-2.0-OpenSSH_9.6\r\n')],
    ['zeros', new Uint8Array(64)],
  ];
  for (const [name, bytes] of inputs) {
    const r = Handshake.respond(rCfg, 0);
    r.receive(bytes, 0);
    assert.equal(r.error?.code, 'HS_BAD_MESSAGE', `${name} at responder: ${r.status}`);
    assert.equal(r.pollTransmit(), undefined, `${name}: responder must not answer garbage`);
    const i = Handshake.initiate(iCfg, 0);
    i.pollTransmit();
    i.receive(utf8('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'), 0);
    assert.equal(i.error?.code, 'HS_BAD_MESSAGE', `HTTP answer at initiator`);
  }
});

test('4. adapter over TCP: an HTTP request is answered with nothing, closed, and counted HS_BAD_MESSAGE', async () => {
  const transport = new TcpTransport();
  const bob = endpoint('bob', { alg: 'ed25519', policy: ED_POLICY });
  const listener = await SecureListener.listen({ ...bob, transport, address: 'tcp://127.0.0.1:0', onSession: (s) => s.destroy(new PqnetError('CLOSED')) });
  const c = await rawConnect(listener.address);
  try {
    c.socket.write('GET / HTTP/1.1\r\nHost: example\r\n\r\n');
    await within(c.closed, 3_000, 'server closing');
    assert.equal(c.received().length, 0, 'no REJECT for a malformed message');
    await until(() => listener.stats.failed === 1, 2_000, 'the failure to be counted');
    assert.equal(listener.stats.failuresByReason.get('HS_BAD_MESSAGE'), 1);
  } finally {
    c.socket.destroy();
    await listener.close();
  }
});

test('4. property: random bytes, in random pieces, never throw out of receive and never complete', () => {
  const { rCfg, iCfg } = makeConfigs({ alg: 'ed25519', policy: ED_POLICY });
  const initiator = Handshake.initiate(iCfg, 0);
  const helloI = initiator.pollTransmit()!;
  // Bodies behind a valid header too, so the CBOR and schema paths get garbage.
  const arbRecord = fc.tuple(fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 1500 })).map(([type, body]) => encodeRecord(type as 1, body));
  const arbInput = fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 3000 }), arbRecord, fc.constant(helloI).chain((h) => fc.nat(h.length - 1).map((i) => flipByte(h, i, 0xff))));
  fc.assert(
    fc.property(arbInput, fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), (bytes, cuts, toInitiator) => {
      const hs = toInitiator ? Handshake.initiate(iCfg, 0) : Handshake.respond(rCfg, 0);
      hs.pollTransmit();
      const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      let prev = 0;
      for (const at of [...points, bytes.length]) {
        hs.receive(bytes.subarray(prev, at), 0);
        prev = at;
      }
      assert.notEqual(hs.status, 'complete');
      if (hs.status === 'failed') {
        // A responder answering a garbled HELLO_I may REJECT it on plaintext grounds.
        const allowed = [...GARBAGE_CODES, 'HS_VERSION_MISMATCH', 'HS_CHAIN_MISMATCH', 'HS_POLICY_MISMATCH', 'HS_BAD_KEY', 'HS_DOWNGRADE'];
        assert.ok(allowed.includes(hs.error!.code), hs.error!.code);
      } else {
        assert.equal(failureCode(hs, 'garbage'), 'HS_DEADLINE');
      }
    }),
    { numRuns: 300, seed: 20240611 },
  );
});

test('4. records out of order or of the wrong kind are HS_UNEXPECTED_MESSAGE', () => {
  const opts: PairOptions = { alg: 'ed25519', policy: ED_POLICY };
  const ref = makePair(opts);
  const trace = drive(ref);
  const [helloI, authI] = trace.i2r as [Uint8Array, Uint8Array];
  const [helloR, authR] = trace.r2i as [Uint8Array, Uint8Array];
  const retry = encodeRecord(RecordType.RETRY, encodeCbor([new Uint8Array(40)]));
  const { rCfg, iCfg } = makeConfigs(opts);
  for (const [name, bytes] of [
    ['AUTH_I first', authI],
    ['HELLO_R', helloR],
    ['AUTH_R', authR],
    ['RETRY', retry],
    ['REJECT', encodeRecord(RecordType.REJECT, encodeCbor([101]))],
  ] as [string, Uint8Array][]) {
    const r = Handshake.respond(rCfg, 0);
    r.receive(bytes, 0);
    assert.equal(r.error?.code, 'HS_UNEXPECTED_MESSAGE', `responder given ${name}`);
  }
  // A second HELLO_I once the responder is waiting for AUTH_I.
  const r = Handshake.respond(rCfg, 0);
  r.receive(helloI, 0);
  assert.equal(r.state, 'await-auth-i');
  r.receive(helloI, 0);
  assert.equal(r.error?.code, 'HS_UNEXPECTED_MESSAGE');
  for (const [name, bytes] of [
    ['HELLO_I', helloI],
    ['AUTH_R before HELLO_R', authR],
    ['AUTH_I', authI],
  ] as [string, Uint8Array][]) {
    const i = Handshake.initiate(iCfg, 0);
    i.receive(bytes, 0);
    assert.equal(i.error?.code, 'HS_UNEXPECTED_MESSAGE', `initiator given ${name}`);
  }
  // RETRY after HELLO_R is out of order too, and so is a REJECT: it is believed
  // only before HELLO_R (spec §2 state table), when it can only report a mismatch.
  for (const [name, late] of [
    ['RETRY', retry],
    ['REJECT', encodeRecord(RecordType.REJECT, encodeCbor([Reasons.HS_BUSY.wire]))],
  ] as [string, Uint8Array][]) {
    const p = makePair(opts);
    p.responder.receive(p.initiator.pollTransmit()!, 0);
    p.initiator.receive(p.responder.pollTransmit()!, 0);
    assert.equal(p.initiator.state, 'await-auth-r');
    p.initiator.receive(late, 0);
    assert.equal(p.initiator.error?.code, 'HS_UNEXPECTED_MESSAGE', `${name} in await-auth-r`);
  }
});

test('4. schema violations in a well-framed HELLO_I are HS_BAD_MESSAGE, bad ephemeral keys HS_BAD_KEY', () => {
  const opts: PairOptions = { alg: 'ed25519', policy: ED_POLICY };
  const cases: [string, (h: unknown[]) => unknown[] | void, Reason][] = [
    ['extra field', (h) => [...h, 0], 'HS_BAD_MESSAGE'],
    ['missing field', (h) => h.slice(0, 8), 'HS_BAD_MESSAGE'],
    ['duplicate KEM offers', (h) => void (h[3] = [1, 1]), 'HS_BAD_MESSAGE'],
    ['empty KEM offers', (h) => void (h[3] = []), 'HS_BAD_MESSAGE'],
    ['nine KEM offers', (h) => void (h[3] = [1, 2, 3, 4, 5, 6, 7, 8, 9]), 'HS_BAD_MESSAGE'],
    ['duplicate AEAD offers', (h) => void (h[4] = [2, 2]), 'HS_BAD_MESSAGE'],
    ['short nonce', (h) => void (h[5] = new Uint8Array(31)), 'HS_BAD_MESSAGE'],
    ['x25519 key of 31 bytes', (h) => void (h[6] = new Uint8Array(31)), 'HS_BAD_MESSAGE'],
    ['hybrid offer without an x25519 key', (h) => void (h[6] = new Uint8Array(0)), 'HS_BAD_MESSAGE'],
    ['hybrid offer without an ML-KEM key', (h) => void (h[7] = new Uint8Array(0)), 'HS_BAD_MESSAGE'],
    ['cookie of 39 bytes', (h) => void (h[8] = new Uint8Array(39)), 'HS_BAD_MESSAGE'],
    ['version as text', (h) => void (h[0] = '1'), 'HS_BAD_MESSAGE'],
    ['unknown KEM id', (h) => void (h[3] = [1, 200]), 'HS_POLICY_MISMATCH'],
    ['x25519 offered outside the policy', (h) => void (h[3] = [1, 3]), 'HS_POLICY_MISMATCH'],
    ['unknown AEAD id', (h) => void (h[4] = [7]), 'HS_POLICY_MISMATCH'],
    ['low-order x25519 key (zero)', (h) => void (h[6] = new Uint8Array(32)), 'HS_BAD_KEY'],
    ['ML-KEM key with coefficients >= q', (h) => void (h[7] = new Uint8Array(1184).fill(0xff)), 'HS_BAD_KEY'],
  ];
  // Collect every mismatch, so one report shows them all.
  const wrong: string[] = [];
  for (const [name, edit, code] of cases) {
    const p = makePair(opts);
    driveSafely(p, name, (dir, index, bytes) => (dir === 'i2r' && index === 0 ? rewriteRecord(bytes, edit) : undefined));
    assert.equal(p.responder.status, 'failed', name);
    assert.notEqual(p.initiator.status, 'complete', name);
    if (p.responder.error?.code !== code) wrong.push(`${name}: expected ${code}, got ${p.responder.error?.code} (${p.responder.error?.message})`);
    // Only plaintext configuration mismatches are answered (with REJECT); the rest is silent.
    const answered = p.initiator.error?.code === 'HS_REJECTED';
    assert.equal(answered, ['HS_VERSION_MISMATCH', 'HS_CHAIN_MISMATCH', 'HS_POLICY_MISMATCH'].includes(code), `${name}: REJECT sent = ${answered}`);
  }
  assert.deepEqual(wrong, []);
  // Non-canonical CBOR: the version as a two-byte integer.
  const p = makePair(opts);
  driveSafely(p, 'non-canonical', (dir, index, bytes) => {
    if (dir !== 'i2r' || index !== 0) return undefined;
    const body = bytes.subarray(5);
    assert.equal(body[1], 0x01);
    return encodeRecord(1, Uint8Array.of(body[0]!, 0x18, 0x01, ...body.subarray(2)));
  });
  assert.equal(p.responder.error?.code, 'HS_BAD_MESSAGE');
});

test('4. bad keys and shapes in HELLO_R are HS_BAD_KEY / HS_BAD_MESSAGE at the initiator', () => {
  const opts: PairOptions = { alg: 'ed25519', policy: ED_POLICY };
  const cases: [string, (h: unknown[]) => void, Reason][] = [
    ['low-order x25519 key (zero)', (h) => void (h[4] = new Uint8Array(32)), 'HS_BAD_KEY'],
    ['hybrid without x25519 key', (h) => void (h[4] = new Uint8Array(0)), 'HS_BAD_MESSAGE'],
    ['hybrid without ML-KEM ciphertext', (h) => void (h[5] = new Uint8Array(0)), 'HS_BAD_MESSAGE'],
    ['ML-KEM ciphertext replaced (implicit rejection)', (h) => void (h[5] = new Uint8Array(1088).fill(7)), 'HS_AUTH_FAILED'],
    ['version 2', (h) => void (h[0] = 2), 'HS_VERSION_MISMATCH'],
  ];
  for (const [name, edit, code] of cases) {
    const p = makePair(opts);
    driveSafely(p, name, (dir, index, bytes) => (dir === 'r2i' && index === 0 ? rewriteRecord(bytes, edit) : undefined));
    assert.equal(p.initiator.error?.code, code, `${name}: ${p.initiator.status} ${p.initiator.error?.message}`);
    assert.equal(p.initiator.pollTransmit(), undefined, `${name}: initiator must not send AUTH_I`);
  }
});

// ---------------------------------------------------------------- 5. stalls

test('5. stalled initiator after HELLO_I: pollTimeout is the deadline; before it nothing, at it HS_DEADLINE', () => {
  const p = makePair({ alg: 'ed25519', policy: ED_POLICY, limits: { handshakeTimeoutMs: 3_000 } });
  p.clock.advance(500);
  const r = Handshake.respond(p.rCfg, p.clock.now());
  assert.equal(r.pollTimeout(), 3_500);
  r.receive(p.initiator.pollTransmit()!, p.clock.now());
  assert.equal(r.state, 'await-auth-i');
  assert.ok(r.pollTransmit() !== undefined && r.pollTransmit() !== undefined && r.pollTransmit() === undefined);
  assert.equal(r.pollTimeout(), 3_500, 'progress does not move the deadline');
  for (const t of [0, 600, 3_499, 3_499.999]) {
    r.handleTimeout(t);
    assert.equal(r.status, 'in-progress', `at ${t}`);
  }
  r.handleTimeout(3_500);
  assert.equal(r.error?.code, 'HS_DEADLINE');
  assert.equal(r.pollTimeout(), undefined);
  assert.equal(r.pollTransmit(), undefined, 'no REJECT for a deadline');
});

test('5. bytes that arrive at or after the deadline are not processed: HS_DEADLINE', () => {
  const p = makePair({ alg: 'ed25519', policy: ED_POLICY, limits: { handshakeTimeoutMs: 1_000 } });
  const helloI = p.initiator.pollTransmit()!;
  p.responder.receive(helloI, 1_000);
  assert.equal(p.responder.error?.code, 'HS_DEADLINE');
  assert.equal(p.responder.pollTransmit(), undefined);
});

test('5. adapter over TCP: raw clients that connect and send nothing are closed, counted HS_DEADLINE', async () => {
  const transport = new TcpTransport();
  const bob = endpoint('bob', { alg: 'ed25519', policy: ED_POLICY, limits: { handshakeTimeoutMs: 200 } });
  const errors: PqnetError[] = [];
  const listener = await SecureListener.listen({
    ...bob,
    transport,
    address: 'tcp://127.0.0.1:0',
    onSession: (s) => s.destroy(new PqnetError('CLOSED')),
    onHandshakeError: (e) => errors.push(e),
  });
  const clients: Awaited<ReturnType<typeof rawConnect>>[] = [];
  try {
    // Several connections: each must be timed out, not just most of them.
    for (let i = 0; i < 12; i++) clients.push(await rawConnect(listener.address));
    await within(Promise.all(clients.map((c) => c.closed)), 3_000, 'server closing stalled connections');
    for (const c of clients) assert.equal(c.received().length, 0, 'nothing is sent to a silent client');
    await until(() => listener.stats.handshakesInProgress === 0, 2_000, 'handshakes to finish');
    assert.equal(listener.stats.failuresByReason.get('HS_DEADLINE'), 12);
    assert.equal(listener.stats.failed, 12);
    assert.deepEqual(errors.map((e) => e.code), Array(12).fill('HS_DEADLINE'));
  } finally {
    for (const c of clients) c.socket.destroy();
    await listener.close();
  }
});

/** Node's timers are millisecond-granular: they can fire up to ~1 ms before performance.now() reaches the due time. */
class EarlyTimerClock extends ManualClock {
  override setTimer(delayMs: number, fn: () => void): ReturnType<ManualClock['setTimer']> {
    return super.setTimer(delayMs - 0.5, fn);
  }
}

for (const [name, clock] of [
  ['a clock whose timers fire on time', new ManualClock()],
  ['a clock whose timers fire 0.5 ms early (as Node timers do)', new EarlyTimerClock()],
] as [string, ManualClock][]) {
  test(`5. adapter with ${name}: a silent dialer is still failed with HS_DEADLINE`, async () => {
    const network = new MemoryNetwork();
    const bob = { ...endpoint('bob', { alg: 'ed25519', policy: ED_POLICY, limits: { handshakeTimeoutMs: 200 } }), clock };
    const listener = await SecureListener.listen({ ...bob, transport: network, address: 'mem://early', onSession: (s) => s.destroy(new PqnetError('CLOSED')) });
    const s = await network.dial('mem://early');
    try {
      const closed = new Promise<PqnetError | undefined>((resolve) => s.setHandlers({ data: () => undefined, drain: () => undefined, close: resolve }));
      await until(() => listener.stats.handshakesInProgress === 1, 2_000, 'the handshake to start');
      // Far past the deadline, firing every timer that falls due on the way.
      for (let i = 0; i < 10; i++) clock.advance(1_000);
      await within(closed, 2_000, 'the stalled stream to be closed');
      await until(() => listener.stats.handshakesInProgress === 0, 2_000, 'the handshake to end');
      assert.equal(listener.stats.failuresByReason.get('HS_DEADLINE'), 1);
    } finally {
      s.destroy();
      await listener.close();
    }
  });
}

test('5. adapter over memory: a dialer that never sends HELLO_I is closed with HS_DEADLINE', async () => {
  const network = new MemoryNetwork();
  const bob = endpoint('bob', { alg: 'ed25519', policy: ED_POLICY, limits: { handshakeTimeoutMs: 200 } });
  const listener = await SecureListener.listen({ ...bob, transport: network, address: 'mem://stall', onSession: (s) => s.destroy(new PqnetError('CLOSED')) });
  const streams = [];
  try {
    const closes: Promise<PqnetError | undefined>[] = [];
    for (let i = 0; i < 6; i++) {
      const s = await network.dial('mem://stall');
      streams.push(s);
      closes.push(new Promise((resolve) => s.setHandlers({ data: () => undefined, drain: () => undefined, close: resolve })));
    }
    await within(Promise.all(closes), 3_000, 'listener closing stalled memory streams');
    await until(() => listener.stats.handshakesInProgress === 0, 2_000, 'handshakes to finish');
    assert.equal(listener.stats.failuresByReason.get('HS_DEADLINE'), 6);
  } finally {
    for (const s of streams) s.destroy();
    await listener.close();
  }
});

test('5. adapter: dialSecure to a server that accepts and never answers rejects with HS_DEADLINE', async () => {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as net.AddressInfo).port;
    const alice = endpoint('alice', { alg: 'ed25519', policy: ED_POLICY, limits: { handshakeTimeoutMs: 200 } });
    const dials = Array.from({ length: 4 }, () => dialSecure(new TcpTransport(), `tcp://127.0.0.1:${port}`, alice).then(
      () => assert.fail('completed against a silent server'),
      (e: unknown) => e,
    ));
    const results = await within(Promise.all(dials), 3_000, 'dialSecure to time out');
    for (const e of results) {
      assert.ok(isPqnetError(e), String(e));
      assert.equal(e.code, 'HS_DEADLINE');
    }
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('5. adapter over TCP: a client that sends half a HELLO_I and closes is counted REMOTE_CLOSED', async () => {
  const transport = new TcpTransport();
  const bob = endpoint('bob', { alg: 'ed25519', policy: ED_POLICY });
  const listener = await SecureListener.listen({ ...bob, transport, address: 'tcp://127.0.0.1:0', onSession: (s) => s.destroy(new PqnetError('CLOSED')) });
  const { iCfg } = makeConfigs({ alg: 'ed25519', policy: ED_POLICY });
  const helloI = Handshake.initiate(iCfg, 0).pollTransmit()!;
  const c = await rawConnect(listener.address);
  try {
    c.socket.write(helloI.subarray(0, 600));
    c.socket.end();
    await within(c.closed, 4_000, 'server closing');
    await until(() => listener.stats.failed === 1, 2_000, 'the failure to be counted');
    assert.equal(listener.stats.failuresByReason.get('REMOTE_CLOSED'), 1);
  } finally {
    c.socket.destroy();
    await listener.close();
  }
});

// ---------------------------------------------------------------- 6. replay

test('6. replaying a recorded HELLO_I + AUTH_I to a fresh responder fails HS_AUTH_FAILED', () => {
  for (const alg of ['ed25519', 'ml-dsa-65'] as const) {
    const opts: PairOptions = { alg, policy: ED_POLICY };
    const recorded = makePair(opts);
    const trace = drive(recorded);
    assert.equal(recorded.responder.status, 'complete');
    const [helloI, authI] = trace.i2r as [Uint8Array, Uint8Array];
    const victim = Handshake.respond({ ...makeConfigs(opts).rCfg, random: systemRandom }, 0);
    victim.receive(helloI, 0);
    assert.equal(victim.state, 'await-auth-i', 'a replayed HELLO_I looks like any HELLO_I');
    victim.receive(authI, 0);
    assert.equal(victim.error?.code, 'HS_AUTH_FAILED', alg);
    // All at once, too.
    const victim2 = Handshake.respond({ ...makeConfigs(opts).rCfg, random: systemRandom }, 0);
    victim2.receive(Uint8Array.of(...helloI, ...authI), 0);
    assert.equal(victim2.error?.code, 'HS_AUTH_FAILED', alg);
  }
});

test('6. replaying a recorded HELLO_R + AUTH_R to a fresh initiator fails HS_AUTH_FAILED', () => {
  for (const alg of ['ed25519', 'ml-dsa-65'] as const) {
    const opts: PairOptions = { alg, policy: ED_POLICY };
    const trace = drive(makePair(opts));
    const [helloR, authR] = trace.r2i as [Uint8Array, Uint8Array];
    const victim = Handshake.initiate({ ...makeConfigs(opts).iCfg, random: systemRandom }, 0);
    victim.pollTransmit();
    victim.receive(Uint8Array.of(...helloR, ...authR), 0);
    assert.equal(victim.error?.code, 'HS_AUTH_FAILED', alg);
    assert.equal(victim.pollTransmit(), undefined);
  }
});

// ---------------------------------------------------------------- 7. downgrade

test('7. a MITM stripping the KEM offers to x25519 (re-encoded correctly) breaks the transcript: HS_AUTH_FAILED', () => {
  const p = makePair({ policy: ALL_POLICY, alg: 'ed25519' });
  driveSafely(p, 'strip kem', (dir, index, bytes) =>
    dir === 'i2r' && index === 0
      ? rewriteRecord(bytes, (h) => {
          h[3] = [KEM_IDS.x25519];
          h[7] = new Uint8Array(0);
        })
      : undefined,
  );
  assert.equal(p.responder.state, 'await-auth-i', 'the responder accepted the stripped HELLO_I');
  assert.notEqual(p.responder.status, 'complete');
  assert.equal(p.initiator.error?.code, 'HS_AUTH_FAILED', p.initiator.error?.message);
});

test('7. a MITM stripping the AEAD offers to AES-256-GCM breaks the transcript: HS_AUTH_FAILED', () => {
  const p = makePair({ policy: ALL_POLICY, alg: 'ed25519' });
  driveSafely(p, 'strip aead', (dir, index, bytes) =>
    dir === 'i2r' && index === 0 ? rewriteRecord(bytes, (h) => void (h[4] = [AEAD_IDS['aes-256-gcm']])) : undefined,
  );
  assert.notEqual(p.responder.status, 'complete');
  assert.equal(p.initiator.error?.code, 'HS_AUTH_FAILED', p.initiator.error?.message);
});

/**
 * A full active MITM: it terminates the key exchange on both legs with its own
 * ephemeral keys (stripping to x25519 toward the responder, or substituting
 * every key), so it can decrypt AUTH_R and re-encrypt it for the initiator.
 * Only the responder's signature over its own transcript stops it.
 */
function activeMitm(stripToX25519: boolean): Handshake {
  const p = makePair({ policy: ALL_POLICY, alg: 'ml-dsa-65', seed: `mitm ${stripToX25519}` });
  const provider = p.iCfg.provider;
  const random = new SeededRandom('mallory');
  const helloI = p.initiator.pollTransmit()!;
  const h = recordFields(helloI);
  // Leg toward the responder.
  const m1x = provider.x25519FromPrivate(random.bytes(32));
  const m1k = provider.mlKem768FromSeed(random.bytes(64));
  const helloI2 = encodeRecord(
    1,
    encodeCbor([h[0], h[1], h[2], stripToX25519 ? [KEM_IDS.x25519] : h[3], h[4], h[5], m1x.publicKey, stripToX25519 ? new Uint8Array(0) : m1k.publicKey, h[8]]),
  );
  p.responder.receive(helloI2, 0);
  const helloR = p.responder.pollTransmit()!;
  const authR = p.responder.pollTransmit()!;
  assert.equal(p.responder.state, 'await-auth-i');
  const r = recordFields(helloR) as [number, number, number, Uint8Array, Uint8Array, Uint8Array];
  const ikmR = Uint8Array.of(...m1x.derive(r[4]), ...(r[5].length > 0 ? m1k.decapsulate(r[5]) : []));
  const legR = replicaSchedule(provider, ikmR, helloI2, helloR);
  const aead = r[2] === AEAD_IDS['aes-256-gcm'] ? 'aes-256-gcm' : 'chacha20-poly1305';
  const auth = openAuthRecord(provider, aead, legR.hsKeyR2I, authR);
  assert.ok(auth !== undefined, 'the MITM can read AUTH_R');
  // Sanity: the responder's signature is genuine over ITS transcript.
  assert.ok(provider.verify('ml-dsa-65', auth[1], authSignedData(provider, AUTH_R_LABEL, legR.th2, 'ml-dsa-65', auth[1], auth[2]), auth[3]));
  // Leg toward the initiator: own keys again, same algorithm choice, relayed nonce.
  const m2x = provider.x25519FromPrivate(random.bytes(32));
  const hx = h[6] as Uint8Array;
  const hk = h[7] as Uint8Array;
  const enc = stripToX25519 ? undefined : provider.mlKem768Encapsulate(hk);
  const helloR2 = encodeRecord(2, encodeCbor([r[0], r[1], r[2], r[3], m2x.publicKey, enc?.ciphertext ?? new Uint8Array(0)]));
  const ikmI = Uint8Array.of(...m2x.derive(hx), ...(enc?.sharedSecret ?? []));
  const legI = replicaSchedule(provider, ikmI, helloI, helloR2);
  const authR2 = sealAuthRecord(provider, aead, 3, legI.hsKeyR2I, auth);
  p.initiator.receive(Uint8Array.of(...helloR2, ...authR2), 0);
  assert.equal(p.initiator.pollTransmit(), undefined, 'initiator must not send AUTH_I');
  // The responder never hears from the initiator again.
  assert.equal(failureCode(p.responder, 'responder behind MITM'), 'HS_DEADLINE');
  return p.initiator;
}

test('7. an active MITM that strips to x25519 and re-encrypts AUTH_R is caught by the signature: HS_BAD_SIGNATURE', () => {
  assert.equal(activeMitm(true).error?.code, 'HS_BAD_SIGNATURE');
});

test('7. an active MITM substituting every ephemeral key (hybrid) is caught by the signature: HS_BAD_SIGNATURE', () => {
  assert.equal(activeMitm(false).error?.code, 'HS_BAD_SIGNATURE');
});

test('7. a responder choosing a KEM or AEAD that was not offered: HS_DOWNGRADE', () => {
  const cases: [string, Partial<PairOptions['initiator']>, (h: unknown[]) => void][] = [
    ['KEM ml-kem-768 when only hybrid offered', { kemOffers: ['x25519-ml-kem-768'] }, (h) => void (h[1] = KEM_IDS['ml-kem-768'])],
    ['KEM x25519 when only hybrid offered', { kemOffers: ['x25519-ml-kem-768'] }, (h) => void (h[1] = KEM_IDS.x25519)],
    ['unknown KEM id', {}, (h) => void (h[1] = 99)],
    ['AEAD aes when only chacha offered', { aeadOffers: ['chacha20-poly1305'] }, (h) => void (h[2] = AEAD_IDS['aes-256-gcm'])],
    ['unknown AEAD id', {}, (h) => void (h[2] = 0)],
  ];
  for (const [name, initiator, edit] of cases) {
    const p = makePair({ policy: ALL_POLICY, alg: 'ed25519', initiator });
    driveSafely(p, name, (dir, index, bytes) => (dir === 'r2i' && index === 0 ? rewriteRecord(bytes, edit) : undefined));
    assert.equal(p.initiator.error?.code, 'HS_DOWNGRADE', `${name}: ${p.initiator.error?.message}`);
  }
});

// ---------------------------------------------------------------- 8. mismatches

test('8. wrong chain id, protocol version or policy: REJECT; initiator HS_REJECTED with the remote reason', () => {
  const cases: [string, PairOptions, Reason][] = [
    ['chain', { initiator: { chainId: 8 } }, 'HS_CHAIN_MISMATCH'],
    ['initiator version 2', { initiator: { version: 2 } }, 'HS_VERSION_MISMATCH'],
    ['responder version 2', { responder: { version: 2 } }, 'HS_VERSION_MISMATCH'],
    ['version 0', { initiator: { version: 0 } }, 'HS_VERSION_MISMATCH'],
    ['policy', { policy: ED_POLICY, responderPolicy: { ...ED_POLICY, aead: ['chacha20-poly1305'] } }, 'HS_POLICY_MISMATCH'],
    ['policy order is local, contents are not', { policy: ALL_POLICY, responderPolicy: { ...ALL_POLICY, kem: ['x25519-ml-kem-768', 'ml-kem-768'] } }, 'HS_POLICY_MISMATCH'],
  ];
  for (const [name, o, code] of cases) {
    const p = makePair({ alg: 'ed25519', policy: ED_POLICY, ...o });
    const trace = drive(p);
    assert.equal(p.responder.error?.code, code, name);
    assert.equal(trace.r2i.length, 1, `${name}: the responder sends only the REJECT`);
    assert.equal(recordType(trace.r2i[0]!), RecordType.REJECT);
    assert.deepEqual(recordFields(trace.r2i[0]!), [Reasons[code].wire]);
    assert.equal(p.initiator.error?.code, 'HS_REJECTED', name);
    assert.equal(p.initiator.error?.details?.remoteReason, code, name);
    assert.equal(p.initiator.error?.details?.remoteCode, Reasons[code].wire, name);
  }
  // Policy order differing only in preference is not a mismatch.
  const same = makePair({ alg: 'ed25519', policy: ED_POLICY, responderPolicy: { ...ED_POLICY, kem: ['ml-kem-768', 'x25519-ml-kem-768'] } });
  drive(same);
  assert.equal(same.responder.status, 'complete');
  assert.equal(same.initiator.result().kem, 'x25519-ml-kem-768', 'initiator preference wins');
});

test('8. adapter over TCP: the REJECT is flushed before the close; both ends report the mismatch', async () => {
  const transport = new TcpTransport();
  const bob = endpoint('bob', { alg: 'ed25519', policy: ED_POLICY });
  const errors: PqnetError[] = [];
  const listener = await SecureListener.listen({
    ...bob,
    transport,
    address: 'tcp://127.0.0.1:0',
    onSession: (s) => s.destroy(new PqnetError('CLOSED')),
    onHandshakeError: (e) => errors.push(e),
  });
  try {
    for (const [chainId, policy, code] of [
      [8, ED_POLICY, 'HS_CHAIN_MISMATCH'],
      [7, ALL_POLICY, 'HS_POLICY_MISMATCH'],
    ] as [number, AlgorithmPolicy, Reason][]) {
      const alice = endpoint('alice', { alg: 'ed25519', policy, chainId });
      await assert.rejects(dialSecure(transport, listener.address, alice), (e: unknown) => {
        assert.ok(isPqnetError(e));
        assert.equal(e.code, 'HS_REJECTED');
        assert.equal(e.details?.remoteReason, code);
        return true;
      });
      await until(() => errors.some((e) => e.code === code), 3_000, `listener to count ${code}`);
    }
    assert.equal(listener.stats.failuresByReason.get('HS_CHAIN_MISMATCH'), 1);
    assert.equal(listener.stats.failuresByReason.get('HS_POLICY_MISMATCH'), 1);
  } finally {
    await listener.close();
  }
});

test('8. REJECT with an unknown wire code or a malformed body', () => {
  const { iCfg } = makeConfigs({ alg: 'ed25519', policy: ED_POLICY });
  const a = Handshake.initiate(iCfg, 0);
  a.receive(encodeRecord(RecordType.REJECT, encodeCbor([65_000])), 0);
  assert.equal(a.error?.code, 'HS_REJECTED');
  assert.equal(a.error?.details?.remoteReason, undefined);
  assert.equal(a.error?.details?.remoteCode, 65_000);
  const b = Handshake.initiate(iCfg, 0);
  b.receive(encodeRecord(RecordType.REJECT, encodeCbor(['HS_BUSY'])), 0);
  assert.equal(b.error?.code, 'HS_BAD_MESSAGE');
});

// ---------------------------------------------------------------- 9. retry cookies

function cookiePair(o: PairOptions = {}, requireCookie: () => boolean = () => true): Pair {
  const provider = makeConfigs().iCfg.provider;
  const ttl = o.limits?.cookieTtlMs ?? 10_000;
  return makePair({
    alg: 'ed25519',
    policy: ED_POLICY,
    ...o,
    responder: { cookies: new CookieJar(provider, ttl, new SeededRandom('jar')), requireCookie, ...o.responder },
  });
}

test('9. requireCookie: the handshake completes after exactly one RETRY', () => {
  let asked = 0;
  const p = cookiePair({}, () => {
    asked++;
    return true;
  });
  const trace = drive(p);
  assert.equal(p.initiator.status, 'complete', p.initiator.error?.message);
  assert.equal(p.responder.status, 'complete', p.responder.error?.message);
  assert.equal(p.initiator.result().retries, 1);
  assert.deepEqual(trace.r2i.map(recordType), [RecordType.RETRY, RecordType.HELLO_R, RecordType.AUTH_R]);
  assert.deepEqual(trace.i2r.map(recordType), [RecordType.HELLO_I, RecordType.HELLO_I, RecordType.AUTH_I]);
  assert.equal(asked, 2, 'asked once per HELLO_I');
  const [first, second] = trace.i2r.slice(0, 2).map(recordFields) as [unknown[], unknown[]];
  assert.equal((first[8] as Uint8Array).length, 0);
  assert.ok(equalBytes(second[8] as Uint8Array, recordFields(trace.r2i[0]!)[0] as Uint8Array), 'cookie echoed');
  assert.deepEqual(first.slice(0, 8), second.slice(0, 8), 'same HELLO_I otherwise');
  // Keys still agree, and the transcript is the second HELLO_I's.
  assert.ok(equalBytes(p.initiator.result().sessionId, p.responder.result().sessionId));
});

test('9. forged cookies: HS_BAD_COOKIE', () => {
  const forgeries: [string, (dir: 'i2r' | 'r2i', index: number, bytes: Uint8Array) => Uint8Array | undefined][] = [
    ['random cookie in RETRY', (d, i) => (d === 'r2i' && i === 0 ? encodeRecord(RecordType.RETRY, encodeCbor([new SeededRandom('forge').bytes(40)])) : undefined)],
    ['cookie tag bit flipped in echo', (d, i, b) => (d === 'i2r' && i === 1 ? flipByte(b, b.length - 1) : undefined)],
    ['cookie timestamp moved in echo', (d, i, b) => (d === 'i2r' && i === 1 ? flipByte(b, b.length - 40 + 7) : undefined)],
    ['cookie reused with another nonce', (d, i, b) => (d === 'i2r' && i === 1 ? rewriteRecord(b, (h) => void (h[5] = new Uint8Array(32))) : undefined)],
    ['cookie reused with other ephemeral keys', (d, i, b) => (d === 'i2r' && i === 1 ? rewriteRecord(b, (h) => void (h[6] = new SeededRandom('x').bytes(32))) : undefined)],
  ];
  for (const [name, tamper] of forgeries) {
    const p = cookiePair();
    driveSafely(p, name, tamper);
    assert.equal(p.responder.error?.code, 'HS_BAD_COOKIE', `${name}: ${p.responder.status} ${p.responder.error?.message}`);
    assert.notEqual(p.initiator.status, 'complete');
    assert.equal(p.responder.pollTransmit(), undefined, `${name}: no answer to a bad cookie`);
  }
});

test('9. one RETRY per connection: a second HELLO_I without the cookie is HS_BAD_COOKIE', () => {
  // A MITM strips the echoed cookie: the responder does not RETRY a second time.
  const p = cookiePair();
  const trace = driveSafely(p, 'strip cookie', (d, i, b) => (d === 'i2r' && i === 1 ? rewriteRecord(b, (h) => void (h[8] = new Uint8Array(0))) : undefined));
  assert.equal(p.responder.error?.code, 'HS_BAD_COOKIE', p.responder.error?.message);
  assert.deepEqual(trace.r2i.map(recordType), [RecordType.RETRY], 'exactly one RETRY');
  assert.equal(p.responder.retriesIssued, 1);
  assert.notEqual(p.initiator.status, 'complete');
});

test('9. a cookie issued to one address is refused from another: HS_BAD_COOKIE', () => {
  const provider = makeConfigs().iCfg.provider;
  const jar = new CookieJar(provider, 10_000, new SeededRandom('shared jar'));
  const base = makeConfigs({ alg: 'ed25519', policy: ED_POLICY });
  const i = Handshake.initiate(base.iCfg, 0);
  const r1 = Handshake.respond({ ...base.rCfg, cookies: jar, requireCookie: () => true, remoteAddress: 'tcp://10.0.0.1:1000' }, 0);
  r1.receive(i.pollTransmit()!, 0);
  i.receive(r1.pollTransmit()!, 0);
  const echoed = i.pollTransmit()!;
  const r2 = Handshake.respond({ ...base.rCfg, cookies: jar, requireCookie: () => true, remoteAddress: 'tcp://10.0.0.2:1000' }, 0);
  r2.receive(echoed, 0);
  assert.equal(r2.error?.code, 'HS_BAD_COOKIE');
  // From the right address (even on another connection) it is accepted.
  const r3 = Handshake.respond({ ...base.rCfg, cookies: jar, requireCookie: () => true, remoteAddress: 'tcp://10.0.0.1:1000' }, 0);
  r3.receive(echoed, 0);
  assert.equal(r3.state, 'await-auth-i', r3.error?.message);
});

test('9. a stale cookie (older than cookieTtlMs) is HS_BAD_COOKIE; at exactly the TTL it is accepted', () => {
  for (const [delay, expect] of [
    [1_001, 'HS_BAD_COOKIE'],
    [1_000, undefined],
  ] as const) {
    const p = cookiePair({ limits: { cookieTtlMs: 1_000, handshakeTimeoutMs: 10_000 } });
    const clock: ManualClock = p.clock;
    p.responder.receive(p.initiator.pollTransmit()!, clock.now());
    const retry = p.responder.pollTransmit()!;
    assert.equal(recordType(retry), RecordType.RETRY);
    p.initiator.receive(retry, clock.now());
    const echoed = p.initiator.pollTransmit()!;
    clock.advance(delay);
    p.responder.receive(echoed, clock.now());
    assert.equal(p.responder.error?.code, expect, `after ${delay} ms: ${p.responder.error?.message}`);
  }
});

test('9. a responder that RETRYs forever: the initiator gives up with HS_RETRY_LOOP after maxRetries', () => {
  for (const maxRetries of [0, 1, 2, 5]) {
    const { iCfg } = makeConfigs({ alg: 'ed25519', policy: ED_POLICY, limits: { maxRetries } });
    const i = Handshake.initiate(iCfg, 0);
    const hellos = [i.pollTransmit()!];
    const random = new SeededRandom('retry loop');
    for (let n = 0; n < maxRetries + 5 && i.status === 'in-progress'; n++) {
      const cookie = random.bytes(40);
      i.receive(encodeRecord(RecordType.RETRY, encodeCbor([cookie])), 0);
      const h = i.pollTransmit();
      if (h !== undefined) {
        assert.ok(equalBytes(recordFields(h)[8] as Uint8Array, cookie), 'echoes the latest cookie');
        hellos.push(h);
      }
    }
    assert.equal(i.error?.code, 'HS_RETRY_LOOP', `maxRetries ${maxRetries}`);
    assert.equal(hellos.length, maxRetries + 1, `maxRetries ${maxRetries}: HELLO_I sent ${hellos.length} times`);
  }
  // A RETRY carrying a cookie of the wrong size is malformed.
  const { iCfg } = makeConfigs({ alg: 'ed25519', policy: ED_POLICY });
  const i = Handshake.initiate(iCfg, 0);
  i.receive(encodeRecord(RecordType.RETRY, encodeCbor([new Uint8Array(41)])), 0);
  assert.equal(i.error?.code, 'HS_BAD_MESSAGE');
});

// ---------------------------------------------------------------- 10. identities

test('10. self-connection (same identity both sides): HS_SELF_CONNECT at the initiator', () => {
  const alice = testIdentity('alice', 'ed25519');
  const p = makePair({ alg: 'ed25519', policy: ED_POLICY, responder: { identity: alice } });
  drive(p);
  assert.equal(p.initiator.error?.code, 'HS_SELF_CONNECT');
  assert.notEqual(p.responder.status, 'complete');
});

test('10. self-connection seen by the responder (initiator lies about its own peer id): HS_SELF_CONNECT', () => {
  const bob = testIdentity('bob', 'ed25519');
  const carol = testIdentity('carol', 'ed25519');
  const p = makePair({ alg: 'ed25519', policy: ED_POLICY, initiator: { identity: { ...bob, peerId: carol.peerId } } });
  drive(p);
  assert.equal(p.responder.error?.code, 'HS_SELF_CONNECT');
});

test('10. expectedPeerId: mismatch is HS_PEER_ID_MISMATCH, match completes', () => {
  const carol = testIdentity('carol', 'ed25519');
  const bad = makePair({ alg: 'ed25519', policy: ED_POLICY, initiator: { expectedPeerId: carol.peerId } });
  drive(bad);
  assert.equal(bad.initiator.error?.code, 'HS_PEER_ID_MISMATCH');
  assert.equal(bad.initiator.pollTransmit(), undefined, 'no AUTH_I to the wrong peer');
  const good = makePair({ alg: 'ed25519', policy: ED_POLICY, initiator: { expectedPeerId: testIdentity('bob', 'ed25519').peerId } });
  drive(good);
  assert.equal(good.initiator.status, 'complete');
  assert.equal(good.responder.status, 'complete');
});

test('10. identity algorithm outside the receiver policy: HS_UNSUPPORTED_IDENTITY (both directions)', () => {
  // The peer lies about its policy: same root, but its sig list has ed25519.
  const strict = compilePolicy(DEFAULT_POLICY);
  const liar = { ...strict, sig: [...strict.sig, 'ed25519' as const] };
  const ed = (name: string) => testIdentity(name, 'ed25519');
  const i = makePair({ alg: 'ml-dsa-65', initiator: { policy: liar, identity: ed('mallory') } });
  drive(i);
  assert.equal(i.responder.error?.code, 'HS_UNSUPPORTED_IDENTITY');
  const r = makePair({ alg: 'ml-dsa-65', responder: { policy: liar, identity: ed('mallory') } });
  drive(r);
  assert.equal(r.initiator.error?.code, 'HS_UNSUPPORTED_IDENTITY');
});

test('10. forged AUTH_I contents (sealed under the right key): bad signature, bad key, unknown algorithm, garbage', () => {
  const { rCfg } = makeConfigs({ alg: 'ml-dsa-65' });
  const alice = testIdentity('alice', 'ml-dsa-65');
  const mallory = testIdentity('mallory', 'ml-dsa-65');
  const identify = utf8('evil');
  const cases: [string, (e: EvilInitiator) => Uint8Array, Reason | 'complete'][] = [
    ['honest control', (e) => e.authI([SIG_IDS['ml-dsa-65'], alice.publicKey, identify, alice.sign(e.signedData(alice, identify))]), 'complete'],
    ['signature over another transcript', (e) => e.authI([SIG_IDS['ml-dsa-65'], alice.publicKey, identify, alice.sign(e.signedData(alice, identify, new Uint8Array(32)))]), 'HS_BAD_SIGNATURE'],
    ['signature with the AUTH_R label', (e) => e.authI([SIG_IDS['ml-dsa-65'], alice.publicKey, identify, alice.sign(authSignedData(e.provider, AUTH_R_LABEL, e.th3, alice.alg, alice.publicKey, identify))]), 'HS_BAD_SIGNATURE'],
    ['signature by another key', (e) => e.authI([SIG_IDS['ml-dsa-65'], alice.publicKey, identify, mallory.sign(e.signedData(alice, identify))]), 'HS_BAD_SIGNATURE'],
    ['identify swapped after signing', (e) => e.authI([SIG_IDS['ml-dsa-65'], alice.publicKey, utf8('other'), alice.sign(e.signedData(alice, identify))]), 'HS_BAD_SIGNATURE'],
    ['truncated signature', (e) => e.authI([SIG_IDS['ml-dsa-65'], alice.publicKey, identify, alice.sign(e.signedData(alice, identify)).subarray(1)]), 'HS_BAD_SIGNATURE'],
    ['public key of the wrong size', (e) => e.authI([SIG_IDS['ml-dsa-65'], alice.publicKey.subarray(0, 32), identify, new Uint8Array(3309)]), 'HS_BAD_KEY'],
    ['unknown algorithm id', (e) => e.authI([9, alice.publicKey, identify, new Uint8Array(64)]), 'HS_UNSUPPORTED_IDENTITY'],
    ['ed25519 outside the policy', (e) => e.authI([SIG_IDS.ed25519, new Uint8Array(32), identify, new Uint8Array(64)]), 'HS_UNSUPPORTED_IDENTITY'],
    ['wrong shape', (e) => e.authI([1, alice.publicKey, identify] as unknown as AuthFields), 'HS_BAD_MESSAGE'],
    ['empty public key', (e) => e.authI([1, new Uint8Array(0), identify, new Uint8Array(1)]), 'HS_BAD_MESSAGE'],
  ];
  for (const [name, build, expect] of cases) {
    const r = Handshake.respond({ ...rCfg, random: systemRandom }, 0);
    const evil = new EvilInitiator(rCfg.provider, systemRandom, { chainId: rCfg.chainId, policyRoot: rCfg.policy.root });
    r.receive(evil.helloI, 0);
    const fields = evil.accept(r.pollTransmit()!, r.pollTransmit()!);
    assert.ok(equalBytes(fields[1], rCfg.identity.publicKey), 'AUTH_R carries the responder key');
    r.receive(build(evil), 0);
    if (expect === 'complete') {
      assert.equal(r.status, 'complete', `${name}: ${r.error?.message}`);
      assert.ok(r.result().remote.peerId.equals(alice.peerId));
    } else {
      assert.equal(r.error?.code, expect, `${name}: ${r.status} ${r.error?.message}`);
    }
  }
  // Plaintexts that are not CBOR, or not canonical CBOR, or empty.
  for (const [name, plaintext] of [
    ['not CBOR', utf8('definitely not cbor')],
    ['empty', new Uint8Array(0)],
    ['non-canonical', Uint8Array.of(0x84, 0x18, 0x01, 0x41, 0x00, 0x40, 0x41, 0x00)],
  ] as [string, Uint8Array][]) {
    const r = Handshake.respond({ ...rCfg, random: systemRandom }, 0);
    const evil = new EvilInitiator(rCfg.provider, systemRandom, { chainId: rCfg.chainId, policyRoot: rCfg.policy.root });
    r.receive(evil.helloI, 0);
    evil.accept(r.pollTransmit()!, r.pollTransmit()!);
    r.receive(evil.authIRaw(plaintext), 0);
    assert.equal(r.error?.code, 'HS_BAD_MESSAGE', name);
  }
});

// ---------------------------------------------------------------- 11. freshness

test('11. fresh ephemeral keys: two handshakes with system randomness differ in every ephemeral value', () => {
  const runs = [0, 1].map(() => {
    const { iCfg, rCfg } = makeConfigs({ alg: 'ed25519', policy: ED_POLICY });
    const p: Pair = {
      clock: new ManualClock(),
      iCfg,
      rCfg,
      initiator: Handshake.initiate({ ...iCfg, random: systemRandom }, 0),
      responder: Handshake.respond({ ...rCfg, random: systemRandom }, 0),
    };
    const trace = drive(p);
    assert.equal(p.responder.status, 'complete');
    return { hI: recordFields(trace.i2r[0]!), hR: recordFields(trace.r2i[0]!), i: p.initiator.result() };
  });
  const [a, b] = runs as [(typeof runs)[0], (typeof runs)[0]];
  for (const [what, x, y] of [
    ['nonce_I', a.hI[5], b.hI[5]],
    ['initiator x25519 key', a.hI[6], b.hI[6]],
    ['initiator ML-KEM key', a.hI[7], b.hI[7]],
    ['nonce_R', a.hR[3], b.hR[3]],
    ['responder x25519 key', a.hR[4], b.hR[4]],
    ['ML-KEM ciphertext', a.hR[5], b.hR[5]],
    ['tx key', a.i.txKey, b.i.txKey],
    ['rx key', a.i.rxKey, b.i.rxKey],
    ['session id', a.i.sessionId, b.i.sessionId],
    ['transcript hash', a.i.transcriptHash, b.i.transcriptHash],
  ] as [string, Uint8Array, Uint8Array][]) {
    assert.equal(x.length > 0, true, what);
    assert.ok(!equalBytes(x, y), `${what} repeated across handshakes`);
  }
  assert.equal(a.hI[0], PROTOCOL_VERSION);
});
