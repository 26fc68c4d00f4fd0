import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPqnetError } from '../../src/core/errors.ts';
import { MemoryNetwork } from '../../src/transport/memory.ts';
import type { ByteStream } from '../../src/transport/types.ts';

async function pair(net: MemoryNetwork, name: string): Promise<[ByteStream, ByteStream]> {
  let accepted!: (s: ByteStream) => void;
  const inbound = new Promise<ByteStream>((r) => (accepted = r));
  await net.listen(name, (s) => accepted(s));
  const a = await net.dial(name);
  return [a, await inbound];
}

test('memory addresses are validated; dialling nobody fails; a name is listened on once', async () => {
  const net = new MemoryNetwork();
  await assert.rejects(net.dial('mem://nobody'), (e: unknown) => isPqnetError(e) && e.code === 'DIAL_FAILED');
  await assert.rejects(net.dial('tcp://1.2.3.4:1'), (e: unknown) => isPqnetError(e) && e.code === 'ADDRESS_INVALID');
  await net.listen('mem://x', () => undefined);
  await assert.rejects(net.listen('mem://x', () => undefined), (e: unknown) => isPqnetError(e) && e.code === 'LISTEN_FAILED');
});

test('write reports back-pressure at the high-water mark and drain follows consumption; pause holds bytes', async () => {
  const net = new MemoryNetwork({ highWaterMark: 1000 });
  const [a, b] = await pair(net, 'mem://bp');
  let drains = 0;
  a.setHandlers({ data: () => undefined, drain: () => drains++, close: () => undefined });
  const got: number[] = [];
  b.setHandlers({ data: (x) => got.push(x.length), drain: () => undefined, close: () => undefined });
  b.pause();
  assert.equal(a.write(new Uint8Array(600)), true);
  assert.equal(a.write(new Uint8Array(600)), false);
  assert.equal(a.bufferedBytes, 1200);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [], 'paused: nothing delivered');
  b.resume();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [600, 600]);
  assert.equal(a.bufferedBytes, 0);
  assert.equal(drains, 1);
});

test('end delivers queued bytes then an orderly close; destroy is a reset', async () => {
  const net = new MemoryNetwork();
  const [a, b] = await pair(net, 'mem://end');
  a.setHandlers({ data: () => undefined, drain: () => undefined, close: () => undefined });
  const got: Uint8Array[] = [];
  const closed = new Promise<unknown>((r) => b.setHandlers({ data: (x) => got.push(x), drain: () => undefined, close: r }));
  a.write(Uint8Array.of(1, 2, 3));
  a.end();
  assert.equal(await closed, undefined);
  assert.deepEqual(got.map((x) => [...x]), [[1, 2, 3]]);

  const [c, d] = await pair(net, 'mem://reset');
  c.setHandlers({ data: () => undefined, drain: () => undefined, close: () => undefined });
  const reset = new Promise<unknown>((r) => d.setHandlers({ data: () => undefined, drain: () => undefined, close: r }));
  c.destroy();
  const err = await reset;
  assert.ok(isPqnetError(err) && err.code === 'IO_ERROR');
});
