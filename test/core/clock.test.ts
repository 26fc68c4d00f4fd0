import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeadlineTimer, ManualClock, SystemClock } from '../../src/core/clock.ts';

describe('ManualClock', () => {
  test('starts at the given time; wallNow is epoch + now', () => {
    const c = new ManualClock();
    assert.equal(c.now(), 0);
    assert.equal(c.wallNow(), 1_700_000_000_000);
    const d = new ManualClock(500, 1_000);
    assert.equal(d.now(), 500);
    assert.equal(d.wallNow(), 1_500);
    d.advance(250);
    assert.equal(d.now(), 750);
    assert.equal(d.wallNow(), 1_750);
  });

  test('timers fire in deadline order, ties in the order they were set', () => {
    const c = new ManualClock();
    const log: string[] = [];
    c.setTimer(30, () => log.push('c30'));
    c.setTimer(10, () => log.push('a10'));
    c.setTimer(20, () => log.push('b20-1'));
    c.setTimer(20, () => log.push('b20-2'));
    c.setTimer(10, () => log.push('a10-2'));
    c.setTimer(20, () => log.push('b20-3'));
    c.advance(100);
    assert.deepEqual(log, ['a10', 'a10-2', 'b20-1', 'b20-2', 'b20-3', 'c30']);
    assert.equal(c.now(), 100);
    assert.equal(c.pendingTimers(), 0);
  });

  test('time inside a callback is the timer deadline, and moves to the target after', () => {
    const c = new ManualClock(5);
    const seen: number[] = [];
    c.setTimer(10, () => seen.push(c.now()));
    c.setTimer(25, () => seen.push(c.now()));
    c.runUntil(100);
    assert.deepEqual(seen, [15, 30]);
    assert.equal(c.now(), 100);
  });

  test('advance fires only timers that fall due, inclusive of the boundary', () => {
    const c = new ManualClock();
    const log: number[] = [];
    c.setTimer(10, () => log.push(10));
    c.setTimer(11, () => log.push(11));
    c.advance(9);
    assert.deepEqual(log, []);
    c.advance(1);
    assert.deepEqual(log, [10]);
    assert.equal(c.pendingTimers(), 1);
    c.advance(1);
    assert.deepEqual(log, [10, 11]);
  });

  test('clearTimer cancels a pending timer, including from inside another callback', () => {
    const c = new ManualClock();
    const log: string[] = [];
    const a = c.setTimer(10, () => log.push('a'));
    let victim = c.setTimer(30, () => log.push('victim'));
    c.setTimer(20, () => {
      log.push('b');
      c.clearTimer(victim);
    });
    c.clearTimer(a);
    c.clearTimer(a); // twice is harmless
    c.clearTimer({ id: 9999 }); // unknown is harmless
    assert.equal(c.pendingTimers(), 2);
    c.advance(100);
    assert.deepEqual(log, ['b']);
    // A handle of a timer that already fired: harmless.
    victim = c.setTimer(1, () => log.push('late'));
    c.advance(1);
    c.clearTimer(victim);
    assert.deepEqual(log, ['b', 'late']);
  });

  test('timers set from a callback fire in the same run when due; later ones wait', () => {
    const c = new ManualClock();
    const log: string[] = [];
    c.setTimer(10, () => {
      log.push(`outer@${c.now()}`);
      c.setTimer(0, () => log.push(`zero@${c.now()}`));
      c.setTimer(5, () => log.push(`five@${c.now()}`));
      c.setTimer(50, () => log.push(`fifty@${c.now()}`));
    });
    c.setTimer(10, () => log.push(`tie@${c.now()}`));
    c.runUntil(20);
    assert.deepEqual(log, ['outer@10', 'tie@10', 'zero@10', 'five@15']);
    assert.equal(c.nextDeadline(), 60);
    c.runUntil(60);
    assert.deepEqual(log.at(-1), 'fifty@60');
  });

  test('negative delays fire at the current time; runUntil never moves time backwards', () => {
    const c = new ManualClock(100);
    let fired = -1;
    c.setTimer(-50, () => (fired = c.now()));
    assert.equal(c.nextDeadline(), 100);
    c.runUntil(50);
    assert.equal(fired, -1, 'not due before 100');
    assert.equal(c.now(), 100);
    c.advance(0);
    assert.equal(fired, 100);
  });

  test('nextDeadline is the earliest pending deadline, or undefined', () => {
    const c = new ManualClock();
    assert.equal(c.nextDeadline(), undefined);
    const a = c.setTimer(40, () => {});
    c.setTimer(70, () => {});
    assert.equal(c.nextDeadline(), 40);
    c.clearTimer(a);
    assert.equal(c.nextDeadline(), 70);
    c.advance(70);
    assert.equal(c.nextDeadline(), undefined);
  });

  test('property: timers fire sorted by (deadline, set order), each exactly once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 10 }),
        (delays, steps) => {
          const c = new ManualClock();
          const fired: number[] = [];
          delays.forEach((d, i) => c.setTimer(d, () => fired.push(i)));
          for (const s of steps) c.advance(s);
          const end = c.now();
          const expected = delays
            .map((d, i) => ({ d, i }))
            .filter((t) => t.d <= end)
            .sort((x, y) => x.d - y.d || x.i - y.i)
            .map((t) => t.i);
          assert.deepEqual(fired, expected);
          assert.equal(c.pendingTimers(), delays.length - expected.length);
        },
      ),
      { numRuns: 200, seed: 3 },
    );
  });
});

describe('SystemClock', () => {
  test('setTimer fires; a cleared timer does not', async () => {
    const c = new SystemClock();
    // SystemClock timers are unref'd: keep the event loop alive while waiting.
    const keepAlive = setInterval(() => {}, 1_000);
    try {
      let clearedFired = false;
      const cleared = c.setTimer(1, () => {
        clearedFired = true;
      });
      c.clearTimer(cleared);
      const order: string[] = [];
      await new Promise<void>((resolve) => {
        c.setTimer(0, () => order.push('first'));
        c.setTimer(5, () => {
          order.push('second');
          resolve();
        });
      });
      assert.deepEqual(order, ['first', 'second']);
      assert.equal(clearedFired, false);
      c.clearTimer(cleared); // again, after the fact: harmless
    } finally {
      clearInterval(keepAlive);
    }
  });

  test('now() does not go backwards; wallNow() is a Unix timestamp in milliseconds', () => {
    const c = new SystemClock();
    const a = c.now();
    const b = c.now();
    assert.ok(b >= a);
    const w = c.wallNow();
    assert.ok(Number.isInteger(w));
    assert.ok(w > Date.UTC(2024, 0, 1));
  });
});

test('DeadlineTimer fires once at the earliest deadline it was given, and clear disarms it', () => {
  const clock = new ManualClock();
  const fired: number[] = [];
  const t = new DeadlineTimer(clock, () => fired.push(clock.now()));
  t.arm(100);
  t.arm(300); // later: ignored until the first fires
  t.arm(50); // earlier: moves the timer
  t.arm(undefined);
  clock.advance(1_000);
  assert.deepEqual(fired, [50]);
  t.arm(clock.now() + 10);
  t.clear();
  clock.advance(1_000);
  assert.deepEqual(fired, [50]);
  assert.equal(clock.pendingTimers(), 0);
});
