/**
 * FrameSealer / FrameOpener / FrameSplitter: round trips, and every way a frame
 * can be reordered, replayed, dropped, forged, inflated or malformed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { concatBytes, equalBytes, u32BE } from '../../src/core/bytes.ts';
import { isPqnetError, type Reason } from '../../src/core/errors.ts';
import {
  AEAD_TAG_BYTES,
  FRAME_HEADER_BYTES,
  LENGTH_PREFIX_BYTES,
  makeLimits,
  MAX_CHUNK_BYTES,
  MAX_FRAME_CIPHERTEXT_BYTES,
  MIN_FRAME_CIPHERTEXT_BYTES,
  type Limits,
} from '../../src/core/limits.ts';
import { SeededRandom } from '../../src/core/random.ts';
import { FLAG_MORE, FLAG_REKEY, FrameSplitter, type FrameHeader, type RawFrame } from '../../src/wire/frame.ts';
import type { AeadAlg } from '../../src/secure/algorithms.ts';
import { FrameOpener, FrameSealer, frameNonce, nextKey, type OpenedFrame } from '../../src/secure/frames.ts';
import { getProvider } from '../../src/secure/providers.ts';
import { flipByte } from './_evil.ts';

const provider = getProvider();
const KEY = new SeededRandom('frames key').bytes(32);

function pair(alg: AeadAlg = 'chacha20-poly1305', limits: Limits = makeLimits(), now = 0): { sealer: FrameSealer; opener: FrameOpener } {
  return { sealer: new FrameSealer(provider, alg, KEY, limits, now), opener: new FrameOpener(provider, alg, KEY) };
}

function header(seq: number, o: Partial<FrameHeader> = {}): FrameHeader {
  return { channel: 2, msgId: 0x8001, seq, flags: 0, ...o };
}

function chunk(i: number, len = 32): Uint8Array {
  return new Uint8Array(len).fill(i & 0xff);
}

/** Split one sealed frame (len || sealed) into what the splitter would return. */
function raw(frame: Uint8Array): RawFrame {
  const s = new FrameSplitter();
  s.push(frame);
  const r = s.next();
  assert.ok(r !== undefined);
  return r;
}

function openCode(opener: FrameOpener, frame: RawFrame): Reason | 'ok' {
  try {
    opener.open(frame);
    return 'ok';
  } catch (e) {
    assert.ok(isPqnetError(e), String(e));
    return e.code;
  }
}

function splitCode(bytes: Uint8Array): Reason | 'ok' | 'wait' {
  const s = new FrameSplitter();
  s.push(bytes);
  try {
    return s.next() === undefined ? 'wait' : 'ok';
  } catch (e) {
    assert.ok(isPqnetError(e), String(e));
    return e.code;
  }
}

for (const alg of ['chacha20-poly1305', 'aes-256-gcm'] as const) {
  test(`${alg}: frames round trip with their headers; the length prefix is the AAD`, () => {
    const { sealer, opener } = pair(alg);
    const headers: FrameHeader[] = [
      header(0),
      { channel: 0, msgId: 0, seq: 0, flags: 0 },
      { channel: 255, msgId: 0xffff, seq: 0xffffffff, flags: FLAG_MORE },
      header(7, { flags: FLAG_MORE }),
    ];
    for (const [i, h] of headers.entries()) {
      const c = chunk(i, i * 100);
      const frame = sealer.seal(h, c, 0);
      assert.equal(frame.length, LENGTH_PREFIX_BYTES + FRAME_HEADER_BYTES + c.length + AEAD_TAG_BYTES);
      assert.deepEqual([...frame.subarray(0, 4)], [...u32BE(frame.length - 4)]);
      const got = opener.open(raw(frame));
      assert.deepEqual({ channel: got.channel, msgId: got.msgId, seq: got.seq, flags: got.flags }, h);
      assert.ok(equalBytes(got.chunk, c));
    }
    assert.equal(sealer.frames, headers.length);
    assert.equal(opener.frames, headers.length);
    assert.equal(sealer.generation, 0);
  });
}

test('empty and maximum chunks; a chunk over the maximum is refused by the sealer', () => {
  const { sealer, opener } = pair();
  const max = new SeededRandom('max').bytes(MAX_CHUNK_BYTES);
  const empty = sealer.seal(header(0), new Uint8Array(0), 0);
  assert.equal(empty.length - 4, MIN_FRAME_CIPHERTEXT_BYTES);
  const full = sealer.seal(header(1), max, 0);
  assert.equal(full.length - 4, MAX_FRAME_CIPHERTEXT_BYTES);
  assert.equal(opener.open(raw(empty)).chunk.length, 0);
  assert.ok(equalBytes(opener.open(raw(full)).chunk, max));
  assert.throws(() => sealer.seal(header(2), new Uint8Array(MAX_CHUNK_BYTES + 1), 0), { code: 'INVALID_ARGUMENT' });
  // The refused chunk consumed no counter: the next frame still opens.
  assert.equal(opener.open(raw(sealer.seal(header(2), chunk(2), 0))).seq, 2);
});

test('reordered, replayed and dropped frames: FRAME_AEAD_FAILED', () => {
  const frames = (n: number): { frames: Uint8Array[]; opener: FrameOpener } => {
    const { sealer, opener } = pair();
    return { frames: Array.from({ length: n }, (_, i) => sealer.seal(header(i), chunk(i), 0)), opener };
  };
  {
    const { frames: f, opener } = frames(2);
    assert.equal(openCode(opener, raw(f[1]!)), 'FRAME_AEAD_FAILED', 'second frame first');
  }
  {
    const { frames: f, opener } = frames(3);
    assert.equal(openCode(opener, raw(f[0]!)), 'ok');
    assert.equal(openCode(opener, raw(f[2]!)), 'FRAME_AEAD_FAILED', 'frame 1 dropped');
  }
  {
    const { frames: f, opener } = frames(2);
    assert.equal(openCode(opener, raw(f[0]!)), 'ok');
    assert.equal(openCode(opener, raw(f[0]!)), 'FRAME_AEAD_FAILED', 'frame 0 replayed');
  }
  {
    // A frame from the other direction (same key material, wrong counter) or another key.
    const { sealer } = pair();
    const other = new FrameOpener(provider, 'chacha20-poly1305', new SeededRandom('other key').bytes(32));
    assert.equal(openCode(other, raw(sealer.seal(header(0), chunk(0), 0))), 'FRAME_AEAD_FAILED', 'other key');
    const aes = new FrameOpener(provider, 'aes-256-gcm', KEY);
    assert.equal(openCode(aes, raw(pair().sealer.seal(header(0), chunk(0), 0))), 'FRAME_AEAD_FAILED', 'other AEAD');
  }
  {
    // A frame replayed from an earlier key generation after a rekey.
    const { sealer, opener } = pair('chacha20-poly1305', makeLimits({ rekeyAfterFrames: 2 }));
    const f0 = sealer.seal(header(0), chunk(0), 0);
    const f1 = sealer.seal(header(1), chunk(1), 0);
    assert.equal(openCode(opener, raw(f0)), 'ok');
    assert.equal(openCode(opener, raw(f1)), 'ok');
    assert.equal(opener.generation, 1);
    assert.equal(openCode(opener, raw(f0)), 'FRAME_AEAD_FAILED', 'generation-0 frame 0 replayed under generation 1');
  }
});

test('every bit-flipped byte of a sealed frame (and the AAD alone) fails FRAME_AEAD_FAILED', () => {
  const { sealer } = pair();
  const frame = raw(sealer.seal(header(5, { flags: FLAG_MORE }), chunk(5, 40), 0));
  for (let i = 0; i < frame.sealed.length; i++) {
    for (const mask of [0x01, 0x80]) {
      const { opener } = pair();
      assert.equal(openCode(opener, { aad: frame.aad, sealed: flipByte(frame.sealed, i, mask) }), 'FRAME_AEAD_FAILED', `byte ${i} mask ${mask}`);
      assert.equal(opener.frames, 0, 'a failed frame does not advance the counter');
    }
  }
  for (let i = 0; i < 4; i++) {
    const { opener } = pair();
    assert.equal(openCode(opener, { aad: flipByte(frame.aad, i), sealed: frame.sealed }), 'FRAME_AEAD_FAILED', `aad byte ${i}`);
  }
  // Truncated or extended ciphertext with a matching length prefix.
  for (const sealed of [frame.sealed.subarray(0, frame.sealed.length - 1), concatBytes(frame.sealed, Uint8Array.of(0))]) {
    const { opener } = pair();
    assert.equal(openCode(opener, { aad: u32BE(sealed.length), sealed }), 'FRAME_AEAD_FAILED');
  }
  // The genuine frame still opens after all that, on a fresh opener.
  assert.equal(openCode(pair().opener, frame), 'ok');
});

test('length prefix: oversize is FRAME_OVERSIZE from the 4 prefix bytes alone, undersize FRAME_UNDERSIZE', () => {
  for (const len of [MAX_FRAME_CIPHERTEXT_BYTES + 1, 0x00100000, 0x7fffffff, 0xffffffff]) {
    const s = new FrameSplitter();
    s.push(u32BE(len).subarray(0, 3));
    assert.equal(s.next(), undefined);
    s.push(u32BE(len).subarray(3));
    assert.throws(() => s.next(), { code: 'FRAME_OVERSIZE' }, `len ${len}`);
    assert.equal(s.buffered, 4, 'nothing beyond the prefix was buffered');
  }
  for (const len of [0, 1, MIN_FRAME_CIPHERTEXT_BYTES - 1]) assert.equal(splitCode(u32BE(len)), 'FRAME_UNDERSIZE', `len ${len}`);
  assert.equal(splitCode(u32BE(MIN_FRAME_CIPHERTEXT_BYTES)), 'wait');
  assert.equal(splitCode(u32BE(MAX_FRAME_CIPHERTEXT_BYTES)), 'wait');
  assert.equal(splitCode(concatBytes(u32BE(MIN_FRAME_CIPHERTEXT_BYTES), new Uint8Array(MIN_FRAME_CIPHERTEXT_BYTES))), 'ok');
  // A smaller configured maximum is honoured.
  const small = new FrameSplitter(1000);
  small.push(u32BE(1001));
  assert.throws(() => small.next(), { code: 'FRAME_OVERSIZE' });
  // An oversize prefix behind a valid frame is found once that frame is taken.
  const { sealer } = pair();
  const s = new FrameSplitter();
  s.push(concatBytes(sealer.seal(header(0), chunk(0), 0), u32BE(0xffffffff)));
  assert.ok(s.next() !== undefined);
  assert.throws(() => s.next(), { code: 'FRAME_OVERSIZE' });
});

/**
 * Seal `plaintext` (header bytes included, unchecked) as frame number `counter`
 * under KEY, as a sender that ignores the header rules would.
 */
function sealByHand(plaintext: Uint8Array, counter = 0, alg: AeadAlg = 'chacha20-poly1305'): Uint8Array {
  const aad = u32BE(plaintext.length + AEAD_TAG_BYTES);
  const out = provider.aead(alg, KEY).seal(frameNonce(counter), aad, plaintext, LENGTH_PREFIX_BYTES);
  out.set(aad, 0);
  return out;
}

test('reserved flag bits: FRAME_BAD_HEADER after authentication; our own sealer refuses to send them', () => {
  for (const flags of [0x80, 0x04, 0xfc, 0xff]) {
    const { sealer, opener } = pair();
    assert.throws(() => sealer.seal(header(0, { flags }), chunk(0), 0), { code: 'INVALID_ARGUMENT' }, `sealer with flags 0x${flags.toString(16)}`);
    const hdr = Uint8Array.of(2, 0x80, 0x01, 0, 0, 0, 0, flags);
    assert.equal(openCode(opener, raw(sealByHand(concatBytes(hdr, chunk(0))))), 'FRAME_BAD_HEADER', `flags 0x${flags.toString(16)}`);
  }
  // Reserved bits next to a genuine FLAG_REKEY are refused too.
  assert.equal(openCode(pair().opener, raw(sealByHand(Uint8Array.of(2, 0, 1, 0, 0, 0, 0, FLAG_REKEY | 0x40)))), 'FRAME_BAD_HEADER');
  // A plaintext shorter than the header.
  for (const len of [0, 1, FRAME_HEADER_BYTES - 1]) {
    const aad = u32BE(len + AEAD_TAG_BYTES);
    const short = provider.aead('chacha20-poly1305', KEY).seal(frameNonce(0), aad, new Uint8Array(len));
    assert.equal(openCode(pair().opener, { aad, sealed: short }), 'FRAME_BAD_HEADER', `plaintext of ${len} bytes`);
  }
  // The hand sealer is faithful: known flags open.
  const f = pair().opener.open(raw(sealByHand(Uint8Array.of(2, 0x80, 0x01, 0, 0, 0, 9, FLAG_MORE, 7))));
  assert.deepEqual([f.channel, f.msgId, f.seq, f.flags, ...f.chunk], [2, 0x8001, 9, FLAG_MORE, 7]);
  // Other header fields out of range are refused by the sealer (local misuse).
  const { sealer } = pair();
  for (const bad of [{ channel: 256 }, { msgId: 0x10000 }, { seq: 2 ** 32 }, { seq: -1 }, { channel: 1.5 }]) {
    assert.throws(() => sealer.seal(header(0, bad), chunk(0), 0), { code: 'INVALID_ARGUMENT' }, JSON.stringify(bad));
  }
  assert.equal(sealer.frames, 0, 'refused frames consume no counter');
});

test('rekey by frame count: rekeyAfterFrames 4 keeps both sides in step over 100 frames', () => {
  const limits = makeLimits({ rekeyAfterFrames: 4 });
  const { sealer, opener } = pair('chacha20-poly1305', limits);
  const flagged: number[] = [];
  for (let i = 0; i < 100; i++) {
    const before = sealer.generation;
    const f = opener.open(raw(sealer.seal(header(i), chunk(i), 0)));
    assert.equal(f.seq, i);
    assert.ok(equalBytes(f.chunk, chunk(i)));
    if ((f.flags & FLAG_REKEY) !== 0) flagged.push(i);
    assert.equal(opener.generation, sealer.generation, `frame ${i}`);
    assert.equal(sealer.generation - before, (f.flags & FLAG_REKEY) !== 0 ? 1 : 0);
  }
  assert.deepEqual(flagged, Array.from({ length: 25 }, (_, k) => 4 * k + 3), 'every 4th frame carries FLAG_REKEY');
  assert.equal(sealer.generation, 25);
  assert.equal(sealer.frames, 100);
  // The caller cannot clear the flag or forge one: the sealer decides.
  const a = pair('chacha20-poly1305', limits);
  const f0 = a.opener.open(raw(a.sealer.seal(header(0, { flags: FLAG_REKEY }), chunk(0), 0)));
  assert.equal(f0.flags & FLAG_REKEY, 0, 'FLAG_REKEY from the caller is ignored');
  assert.equal(a.sealer.generation, 0);
});

test('rekey: the new key is HKDF(old key, "pqnet/1 rekey"); a receiver that misses the flag cannot open further', () => {
  const { sealer, opener } = pair('chacha20-poly1305', makeLimits({ rekeyAfterFrames: 1 }));
  const f0 = sealer.seal(header(0), chunk(0), 0);
  const f1 = sealer.seal(header(1), chunk(1), 0);
  assert.equal(opener.open(raw(f0)).flags & FLAG_REKEY, FLAG_REKEY);
  const manual = new FrameOpener(provider, 'chacha20-poly1305', nextKey(provider, KEY));
  assert.equal(manual.open(raw(f1)).seq, 1, 'generation 1 key is nextKey(key)');
  assert.equal(opener.open(raw(f1)).seq, 1);
  // An opener that never ratcheted (it lost the flagged frame) fails.
  assert.equal(openCode(new FrameOpener(provider, 'chacha20-poly1305', KEY), raw(f1)), 'FRAME_AEAD_FAILED');
});

test('rekey by time budget: a frame sealed rekeyAfterMs after the key was made carries FLAG_REKEY', () => {
  const limits = makeLimits({ rekeyAfterMs: 1_000 });
  const { sealer, opener } = pair('aes-256-gcm', limits, 5_000);
  const open = (i: number, now: number): OpenedFrame => opener.open(raw(sealer.seal(header(i), chunk(i), now)));
  assert.equal(open(0, 5_000).flags & FLAG_REKEY, 0);
  assert.equal(sealer.rekeyDue(5_999), false);
  assert.equal(open(1, 5_999).flags & FLAG_REKEY, 0);
  assert.equal(sealer.rekeyDue(6_000), true);
  assert.equal(open(2, 6_000).flags & FLAG_REKEY, FLAG_REKEY);
  assert.equal(sealer.generation, 1);
  assert.equal(opener.generation, 1);
  // The time budget restarts with the new key.
  assert.equal(open(3, 6_999).flags & FLAG_REKEY, 0);
  assert.equal(open(4, 7_000).flags & FLAG_REKEY, FLAG_REKEY);
  assert.equal(sealer.generation, 2);
  assert.equal(open(5, 7_001).seq, 5);
});

test('rekey by byte budget: the frame after rekeyAfterBytes plaintext bytes carries FLAG_REKEY', () => {
  const { sealer, opener } = pair('chacha20-poly1305', makeLimits({ rekeyAfterBytes: 100 }));
  const flags = [60, 39, 1, 10, 100, 0].map((len, i) => opener.open(raw(sealer.seal(header(i), chunk(i, len), 0))).flags & FLAG_REKEY);
  // 60, 99, 100 -> the 4th frame (after 100 bytes) rekeys; then 100 again -> the 6th.
  assert.deepEqual(flags, [0, 0, 0, FLAG_REKEY, 0, FLAG_REKEY]);
  assert.equal(opener.generation, 2);
});

test('property: any segmentation of a valid frame stream decodes to the same frames', () => {
  const arbFrames = fc.array(
    fc.record({
      channel: fc.integer({ min: 0, max: 255 }),
      msgId: fc.integer({ min: 0, max: 0xffff }),
      seq: fc.nat({ max: 0xffffffff }),
      more: fc.boolean(),
      chunk: fc.uint8Array({ maxLength: 3_000 }),
    }),
    { minLength: 1, maxLength: 12 },
  );
  fc.assert(
    fc.property(arbFrames, fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 1, max: 5 }), (specs, cutSeeds, rekeyAfterFrames) => {
      const { sealer, opener } = pair('chacha20-poly1305', makeLimits({ rekeyAfterFrames }));
      const stream = concatBytes(...specs.map((s) => sealer.seal({ channel: s.channel, msgId: s.msgId, seq: s.seq, flags: s.more ? FLAG_MORE : 0 }, s.chunk, 0)));
      const cuts = [...new Set(cutSeeds.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      const splitter = new FrameSplitter();
      const got: OpenedFrame[] = [];
      let prev = 0;
      for (const at of [...cuts, stream.length]) {
        splitter.push(stream.subarray(prev, at));
        prev = at;
        for (let r = splitter.next(); r !== undefined; r = splitter.next()) got.push(opener.open(r));
      }
      assert.equal(splitter.buffered, 0);
      assert.equal(got.length, specs.length);
      specs.forEach((s, i) => {
        const g = got[i]!;
        assert.equal(g.channel, s.channel);
        assert.equal(g.msgId, s.msgId);
        assert.equal(g.seq, s.seq);
        assert.equal(g.flags & FLAG_MORE, s.more ? FLAG_MORE : 0);
        assert.ok(equalBytes(g.chunk, s.chunk));
      });
      assert.equal(opener.generation, sealer.generation);
    }),
    { numRuns: 150, seed: 424242 },
  );
});

test('property: a single flipped bit anywhere in a frame stream never yields a wrong frame', () => {
  const { sealer } = pair();
  const frames = Array.from({ length: 4 }, (_, i) => sealer.seal(header(i), chunk(i, 50 + i), 0));
  const stream = concatBytes(...frames);
  fc.assert(
    fc.property(fc.nat(stream.length - 1), fc.integer({ min: 0, max: 7 }), (at, bit) => {
      const bad = flipByte(stream, at, 1 << bit);
      const splitter = new FrameSplitter();
      const opener = pair().opener;
      splitter.push(bad);
      const good: OpenedFrame[] = [];
      let code: Reason | undefined;
      try {
        for (let r = splitter.next(); r !== undefined; r = splitter.next()) good.push(opener.open(r));
      } catch (e) {
        assert.ok(isPqnetError(e));
        code = e.code;
      }
      // Frames before the flipped one are intact; the flipped one never opens.
      let hit = 0;
      for (let off = frames[0]!.length; at >= off; off += frames[hit]!.length) hit++;
      assert.ok(good.length <= hit, `frame ${hit} opened despite a flipped bit`);
      good.forEach((g, i) => assert.ok(equalBytes(g.chunk, chunk(i, 50 + i))));
      if (code !== undefined) assert.ok(['FRAME_AEAD_FAILED', 'FRAME_OVERSIZE', 'FRAME_UNDERSIZE'].includes(code), code);
      else assert.ok(splitter.buffered > 0, 'a longer length prefix leaves the stream waiting');
    }),
    { numRuns: 300, seed: 7 },
  );
});

test('every chunk size seals to AEAD(header || chunk), whether the sealer joins the parts or not; providers open each other', () => {
  // The sealer copies short chunks behind the header (one AEAD part) and passes
  // long ones as a second part; the bytes on the wire must not tell them apart.
  const providers = [getProvider('portable'), ...(getProvider().name === 'native' ? [getProvider('native')] : [])];
  for (const alg of ['chacha20-poly1305', 'aes-256-gcm'] as const) {
    for (const p of providers) {
      const sealer = new FrameSealer(p, alg, KEY, makeLimits(), 0);
      const openers = providers.map((q) => new FrameOpener(q, alg, KEY));
      [0, 1, 100, 4_086, 4_087, 4_088, 4_089, 20_000, MAX_CHUNK_BYTES].forEach((len, counter) => {
        const c = chunk(counter, len);
        const frame = sealer.seal(header(counter), c, 0);
        const hdr = Uint8Array.of(2, 0x80, 0x01, 0, 0, 0, counter, 0);
        assert.ok(equalBytes(frame, sealByHand(concatBytes(hdr, c), counter, alg)), `${p.name} ${alg}: ${len}-byte chunk`);
        for (const o of openers) {
          const f = o.open(raw(frame));
          assert.equal(f.seq, counter);
          assert.ok(equalBytes(f.chunk, c));
        }
      });
    }
  }
});
