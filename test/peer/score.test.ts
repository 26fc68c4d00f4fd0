import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Reasons, type Reason } from '../../src/core/errors.ts';
import { BAN_BELOW, DEFAULT_SCORE_OPTIONS, GREYLIST_BELOW, NEUTRAL, ScoreBook, TRUSTED_FROM } from '../../src/peer/score.ts';

const HALF = DEFAULT_SCORE_OPTIONS.scoreHalfLifeMs;
const near = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-9, `${a} ≈ ${b}`);

test('an unknown peer is neutral and not stored', () => {
  const book = new ScoreBook();
  assert.equal(book.score('p', 0), NEUTRAL);
  assert.equal(book.status('p', 0), 'neutral');
  assert.deepEqual(book.snapshot(0), []);
});

test('two invalid blocks take a fresh peer to 0 and ban it, crossing exactly once', () => {
  assert.equal(Reasons.INVALID_BLOCK.penalty, 25);
  const book = new ScoreBook();
  assert.deepEqual(book.penalize('p', 'INVALID_BLOCK', 0), { score: 25, status: 'neutral', crossed: false });
  assert.deepEqual(book.penalize('p', 'INVALID_BLOCK', 0), { score: 0, status: 'banned', crossed: true });
  assert.deepEqual(book.penalize('p', 'INVALID_BLOCK', 0), { score: 0, status: 'banned', crossed: false }, 'already banned: no second crossing');
});

test('an oversize frame is a ban on its own', () => {
  const r = new ScoreBook().penalize('p', 'FRAME_OVERSIZE', 0);
  assert.deepEqual(r, { score: 0, status: 'banned', crossed: true });
});

test('times multiplies the penalty; reasons without a penalty change nothing', () => {
  const book = new ScoreBook();
  assert.equal(book.penalize('p', 'INVALID_TX', 0, 3).score, 35);
  assert.deepEqual(book.penalize('q', 'PEER_DUPLICATE', 0), { score: NEUTRAL, status: 'neutral', crossed: false });
  assert.deepEqual(book.snapshot(0).map((e) => e.peerId), ['p']);
  assert.throws(() => book.penalize('p', 'INVALID_TX', 0, -1), RangeError);
  assert.throws(() => book.adjust('p', Number.NaN, 0), RangeError);
});

test('thresholds: banned below 10, greylisted below 25, trusted from 80', () => {
  const book = new ScoreBook();
  const at = (score: number): string => {
    book.forget('p');
    book.adjust('p', score - NEUTRAL, 0);
    return book.status('p', 0);
  };
  assert.equal(at(BAN_BELOW - 0.5), 'banned');
  assert.equal(at(BAN_BELOW), 'greylisted');
  assert.equal(at(GREYLIST_BELOW - 0.5), 'greylisted');
  assert.equal(at(GREYLIST_BELOW), 'neutral');
  assert.equal(at(TRUSTED_FROM - 0.5), 'neutral');
  assert.equal(at(TRUSTED_FROM), 'trusted');
});

test('rewards and penalties clamp to [0, 100]', () => {
  const book = new ScoreBook();
  assert.deepEqual(book.adjust('p', 500, 0), { score: 100, status: 'trusted', crossed: true });
  assert.deepEqual(book.adjust('p', -1000, 0), { score: 0, status: 'banned', crossed: true });
});

test('the distance from neutral halves every half-life', () => {
  const book = new ScoreBook();
  book.penalize('p', 'FRAME_OVERSIZE', 1000); // 0
  book.adjust('q', 40, 1000); // 90
  near(book.score('p', 1000 + HALF), 25);
  near(book.score('p', 1000 + 2 * HALF), 37.5);
  near(book.score('q', 1000 + HALF), 70);
  assert.equal(book.status('p', 1000 + HALF), 'neutral', 'a banned score decays out of the ban');
});

test('crossed compares with the decayed score just before the call', () => {
  const book = new ScoreBook();
  book.penalize('p', 'FRAME_OVERSIZE', 0); // 0, banned
  // After three half-lives the score is 43.75: neutral again, so the next ban crosses anew.
  const r = book.penalize('p', 'FRAME_OVERSIZE', 3 * HALF);
  assert.deepEqual(r, { score: 0, status: 'banned', crossed: true });
});

test('a score that returns to neutral is dropped; a decayed one reads as exactly neutral', () => {
  const book = new ScoreBook();
  book.adjust('p', 10, 0);
  book.adjust('p', -10, 0);
  assert.deepEqual(book.snapshot(0), []);
  book.adjust('q', -50, 0);
  assert.equal(book.score('q', 40 * HALF), NEUTRAL);
  assert.deepEqual(book.snapshot(40 * HALF), []);
});

test('snapshot lists non-neutral peers lowest first; forget removes one', () => {
  const book = new ScoreBook();
  book.adjust('a', 30, 0);
  book.penalize('b', 'INVALID_BLOCK', 0, 2);
  book.penalize('c', 'HELLO_CLOCK_SKEW', 0);
  assert.deepEqual(book.snapshot(0), [
    { peerId: 'b', score: 0, status: 'banned' },
    { peerId: 'c', score: 40, status: 'neutral' },
    { peerId: 'a', score: 80, status: 'trusted' },
  ]);
  book.forget('b');
  assert.equal(book.score('b', 0), NEUTRAL);
  assert.equal(book.snapshot(0).length, 2);
});

test('beyond maxTracked, the peers closest to neutral are forgotten first', () => {
  const book = new ScoreBook({ maxTracked: 20 });
  for (let i = 0; i < 20; i++) book.adjust(`p${i}`, -(i + 1), 0); // distances 1..20
  assert.equal(book.snapshot(0).length, 20);
  book.adjust('far', -45, 0);
  // Over the cap: cut to 90% (18), dropping the three closest to neutral.
  const kept = new Set(book.snapshot(0).map((e) => e.peerId));
  assert.equal(kept.size, 18);
  for (const gone of ['p0', 'p1', 'p2']) assert.ok(!kept.has(gone), gone);
  assert.ok(kept.has('far') && kept.has('p3'));
});

test('updating a tracked peer never evicts', () => {
  const book = new ScoreBook({ maxTracked: 2 });
  book.adjust('a', -1, 0);
  book.adjust('b', -2, 0);
  for (let i = 0; i < 5; i++) book.adjust('a', -1, 0);
  assert.equal(book.snapshot(0).length, 2);
});

test('options are validated', () => {
  assert.throws(() => new ScoreBook({ scoreHalfLifeMs: 0 }), RangeError);
  assert.throws(() => new ScoreBook({ maxTracked: 0 }), RangeError);
  assert.throws(() => new ScoreBook({ banBelow: 30 }), RangeError, 'ban above greylist');
  assert.throws(() => new ScoreBook({ trustedFrom: 50 }), RangeError, 'a fresh peer would be trusted');
  assert.throws(() => new ScoreBook({ greylistBelow: 51 }), RangeError, 'a fresh peer would be greylisted');
});

const reasons = Object.keys(Reasons) as Reason[];
const op = fc.oneof(
  fc.record({ kind: fc.constant('penalize' as const), reason: fc.constantFrom(...reasons), times: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ kind: fc.constant('adjust' as const), delta: fc.double({ min: -200, max: 200, noNaN: true }) }),
);

test('property: the score stays within [0, 100] and crossed matches the status change', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(op, fc.nat({ max: 4 * HALF })), { maxLength: 40 }), (steps) => {
      const book = new ScoreBook();
      let now = 0;
      for (const [o, dt] of steps) {
        now += dt;
        const before = book.status('p', now);
        const r = o.kind === 'penalize' ? book.penalize('p', o.reason, now, o.times) : book.adjust('p', o.delta, now);
        assert.ok(r.score >= 0 && r.score <= 100, `${r.score}`);
        assert.equal(r.score, book.score('p', now));
        assert.equal(r.status, book.status('p', now));
        assert.equal(r.crossed, r.status !== before);
      }
    }),
  );
});

test('property: decay moves monotonically toward 50 without crossing it', () => {
  fc.assert(
    fc.property(fc.double({ min: -100, max: 100, noNaN: true }), fc.nat({ max: 10 * HALF }), fc.nat({ max: 10 * HALF }), (delta, t1, dt) => {
      const book = new ScoreBook();
      const s0 = book.adjust('p', delta, 0).score;
      const a = book.score('p', t1);
      const b = book.score('p', t1 + dt);
      assert.ok(Math.abs(b - NEUTRAL) <= Math.abs(a - NEUTRAL) && Math.abs(a - NEUTRAL) <= Math.abs(s0 - NEUTRAL));
      assert.ok((a - NEUTRAL) * (s0 - NEUTRAL) >= 0 && (b - NEUTRAL) * (s0 - NEUTRAL) >= 0, 'same side of neutral');
    }),
  );
});
