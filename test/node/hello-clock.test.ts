import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SystemClock } from '../../src/core/clock.ts';
import { testNodes } from './_nodes.ts';

/** A clock whose wall time has a fraction of a millisecond, as a simulator's can. */
class FractionalClock extends SystemClock {
  override wallNow(): number {
    return Date.now() + 0.25;
  }
}

test('HELLO carries whole milliseconds: peers become active with a clock that gives fractions', async () => {
  const t = testNodes();
  try {
    const clock = new FractionalClock();
    const a = t.make('a', { clock });
    const b = t.make('b', { clock });
    await a.start();
    await b.start();
    const info = await a.connect(b.listenAddresses[0]!);
    assert.equal(info.state, 'active');
    assert.equal(info.peerId, b.peerId);
  } finally {
    await t.cleanup();
  }
});
