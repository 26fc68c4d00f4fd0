/** VirtualClock: heap order, ties, clearTimer, and job queues settled before time moves (all on virtual time). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualClock } from '../../sim/clock.ts';

test('timers fire in deadline order, ties in the order set; now() is the deadline; run ends at untilMs', async () => {
  const c = new VirtualClock({ epochMs: 1_000 });
  const log: string[] = [];
  const at = (name: string) => () => log.push(`${name}@${c.now()}`);
  c.setTimer(30, at('c'));
  c.setTimer(10, at('a1'));
  c.setTimer(20, at('b'));
  c.setTimer(10, at('a2'));
  c.schedule(10, at('a3'));
  c.setTimer(-5, at('zero'));
  c.setTimer(100, at('late'));
  assert.equal(c.now(), 0);
  assert.equal(c.nextDeadline(), 0);
  await c.run(50);
  assert.deepEqual(log, ['zero@0', 'a1@10', 'a2@10', 'a3@10', 'b@20', 'c@30']);
  assert.equal(c.now(), 50);
  assert.equal(c.wallNow(), 1_050);
  assert.equal(c.pendingTimers, 1);
  await c.advance(50);
  assert.deepEqual(log.slice(-1), ['late@100']);
  // wallNow is whole milliseconds, as Date.now() (wire timestamps are integers).
  c.schedule(100.75, () => log.push(`wall ${c.wallNow()}`));
  await c.run(101);
  assert.deepEqual(log.slice(-1), ['wall 1100']);
  assert.equal(c.eventsFired, 8);
  assert.equal(c.pendingTimers, 0);
});

test('a timer set for now from inside a callback fires at the same instant, after those already due', async () => {
  const c = new VirtualClock();
  const log: string[] = [];
  c.setTimer(5, () => {
    log.push(`x@${c.now()}`);
    c.setTimer(0, () => log.push(`x-child@${c.now()}`));
    c.schedule(1, () => log.push(`past@${c.now()}`));
  });
  c.setTimer(5, () => log.push(`y@${c.now()}`));
  c.setTimer(6, () => log.push(`z@${c.now()}`));
  await c.run(10);
  assert.deepEqual(log, ['x@5', 'y@5', 'x-child@5', 'past@5', 'z@6']);
});

test('clearTimer: a cleared timer never fires; clearing a fired or foreign handle does nothing', async () => {
  const c = new VirtualClock();
  const log: number[] = [];
  const h1 = c.setTimer(1, () => log.push(1));
  const h2 = c.setTimer(2, () => log.push(2));
  c.setTimer(3, () => log.push(3));
  c.clearTimer(h2);
  c.clearTimer(h2);
  assert.equal(c.pendingTimers, 2);
  await c.run(10);
  assert.deepEqual(log, [1, 3]);
  c.clearTimer(h1);
  c.clearTimer({ id: 1 });
  assert.equal(c.pendingTimers, 0);
});

test('clearing most of many timers (heap compaction) keeps the rest in order', async () => {
  const c = new VirtualClock();
  const fired: number[] = [];
  const handles = [];
  for (let i = 0; i < 10_000; i++) {
    const at = (i * 7919) % 5_000; // many ties
    handles.push({ i, at, h: c.setTimer(at, () => fired.push(i)) });
  }
  for (const { i, h } of handles) if (i % 5 !== 0) c.clearTimer(h);
  assert.equal(c.pendingTimers, 2_000);
  await c.run(5_000);
  const expected = handles
    .filter(({ i }) => i % 5 === 0)
    .sort((a, b) => a.at - b.at || a.i - b.i)
    .map(({ i }) => i);
  assert.deepEqual(fired, expected);
});

test('a multi-step async chain started in a timer completes at that instant, before the clock advances', async () => {
  const c = new VirtualClock();
  const log: string[] = [];
  const step = async (n: number): Promise<number> => {
    await Promise.resolve();
    await new Promise<void>((r) => process.nextTick(r));
    await new Promise<void>((r) => queueMicrotask(r));
    return n + 1;
  };
  // A handshake-like chain: several levels of awaits, ticks from promise jobs, a zero-delay timer in the middle.
  const handshake = async (): Promise<void> => {
    let n = 0;
    for (let i = 0; i < 25; i++) n = await step(n);
    log.push(`half ${n}@${c.now()}`);
    await new Promise<void>((r) => c.setTimer(0, r));
    await Promise.all([step(0), step(1), (async () => step(await step(2)))()]);
    process.nextTick(() => {
      void Promise.resolve().then(() => {
        process.nextTick(() => log.push(`done@${c.now()}`));
      });
    });
  };
  c.setTimer(10, () => void handshake());
  c.setTimer(10.001, () => log.push(`next@${c.now()}`));
  await c.run(20);
  assert.deepEqual(log, ['half 25@10', 'done@10', 'next@10.001']);
  assert.ok(c.instantsSettled >= 2);
});

test('maxEvents stops early, leaving time at the last event; a second run continues', async () => {
  const c = new VirtualClock();
  const log: number[] = [];
  for (let i = 1; i <= 5; i++) c.setTimer(i * 10, () => log.push(c.now()));
  await c.run(1_000, { maxEvents: 3 });
  assert.deepEqual(log, [10, 20, 30]);
  assert.equal(c.now(), 30);
  await c.run(1_000);
  assert.deepEqual(log, [10, 20, 30, 40, 50]);
  assert.equal(c.now(), 1_000);
});

test('run refuses to run twice at once; a throwing callback rejects the run and the clock stays usable', async () => {
  const c = new VirtualClock();
  const log: number[] = [];
  c.setTimer(1, () => log.push(c.now()));
  c.setTimer(2, () => {
    throw new Error('boom');
  });
  c.setTimer(3, () => log.push(c.now()));
  const first = c.run(10);
  await assert.rejects(c.run(10), /already running/);
  await assert.rejects(first, /boom/);
  assert.equal(c.now(), 2);
  assert.equal(c.running, false);
  await c.run(10);
  assert.deepEqual(log, [1, 3]);
  assert.equal(c.now(), 10);
});

test('one settle per distinct instant, not per timer', async () => {
  const c = new VirtualClock();
  for (let i = 0; i < 100; i++) c.setTimer(i % 4, () => undefined);
  await c.run(10);
  assert.equal(c.eventsFired, 100);
  assert.equal(c.instantsSettled, 4);
  c.resetCounters();
  assert.equal(c.eventsFired, 0);
});
