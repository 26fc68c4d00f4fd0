import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteQueue } from '../../src/core/byte-queue.ts';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Cut `data` at the given points (any order, duplicates allowed: empty chunks). */
function segment(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [0, ...cuts.map((c) => c % (data.length + 1)).sort((a, b) => a - b), data.length];
  const out: Uint8Array[] = [];
  for (let i = 1; i < points.length; i++) out.push(data.subarray(points[i - 1], points[i]));
  return out;
}

test('any segmentation and any sequence of takes gives back the same bytes', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.array(fc.nat({ max: 80 }), { maxLength: 20 }),
      (data, cuts, takes) => {
        const q = new ByteQueue();
        for (const c of segment(data, cuts)) q.push(c);
        assert.equal(q.length, data.length);
        const out: Uint8Array[] = [];
        let consumed = 0;
        for (const t of takes) {
          const n = Math.min(t, q.length);
          const got = q.take(n);
          assert.equal(got.length, n);
          assert.equal(hex(got), hex(data.subarray(consumed, consumed + n)));
          out.push(got);
          consumed += n;
          assert.equal(q.length, data.length - consumed);
        }
        out.push(q.drain());
        assert.equal(q.length, 0);
        assert.equal(hex(Buffer.concat(out)), hex(data));
      },
    ),
    { numRuns: 300, seed: 4 },
  );
});

test('interleaved pushes and takes preserve FIFO order', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.record({ push: fc.uint8Array({ maxLength: 20 }) }), fc.record({ take: fc.nat({ max: 30 }) })), { maxLength: 40 }),
      (ops) => {
        const q = new ByteQueue();
        const model: number[] = [];
        for (const op of ops) {
          if ('push' in op) {
            q.push(op.push);
            model.push(...op.push);
          } else {
            const n = Math.min(op.take, model.length);
            assert.deepEqual([...q.take(n)], model.splice(0, n));
          }
          assert.equal(q.length, model.length);
        }
        assert.deepEqual([...q.drain()], model);
      },
    ),
    { numRuns: 200, seed: 5 },
  );
});

test('peekByte and peekU32BE read across chunk boundaries without consuming', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 4, maxLength: 64 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.nat({ max: 20 }),
      fc.nat(),
      (data, cuts, skip, at) => {
        const q = new ByteQueue();
        for (const c of segment(data, cuts)) q.push(c);
        const s = Math.min(skip, data.length - 4);
        q.take(s);
        const rest = data.subarray(s);
        const i = at % (rest.length - 3);
        const view = new DataView(rest.buffer, rest.byteOffset, rest.byteLength);
        assert.equal(q.peekU32BE(i), view.getUint32(i, false));
        for (let k = 0; k < rest.length; k++) assert.equal(q.peekByte(k), rest[k]);
        assert.equal(q.length, rest.length, 'peeking does not consume');
      },
    ),
    { numRuns: 300, seed: 6 },
  );
});

test('peekU32BE: high bit set, one byte per chunk', () => {
  const q = new ByteQueue();
  for (const b of [0xff, 0xfe, 0xfd, 0xfc, 0x01]) q.push(Uint8Array.of(b));
  assert.equal(q.peekU32BE(0), 0xfffefdfc);
  assert.equal(q.peekU32BE(1), 0xfefdfc01);
  q.take(1);
  assert.equal(q.peekU32BE(0), 0xfefdfc01);
});

test('reading past the end throws RangeError; empty chunks are ignored', () => {
  const q = new ByteQueue();
  q.push(new Uint8Array(0));
  assert.equal(q.length, 0);
  assert.equal(q.take(0).length, 0);
  assert.throws(() => q.take(1), RangeError);
  assert.throws(() => q.peekByte(0), RangeError);
  q.push(Uint8Array.of(1, 2, 3));
  q.push(new Uint8Array(0));
  q.push(Uint8Array.of(4));
  assert.throws(() => q.peekU32BE(1), RangeError);
  assert.throws(() => q.take(5), RangeError);
  assert.equal(q.length, 4, 'a refused take consumes nothing');
  assert.equal(q.peekU32BE(0), 0x01020304);
  assert.deepEqual([...q.drain()], [1, 2, 3, 4]);
  assert.equal(q.drain().length, 0);
});

test('a trickle of one-byte chunks is coalesced: chunks held stay bounded and bytes stay in order', () => {
  const q = new ByteQueue();
  const n = 65_556;
  for (let i = 0; i < n; i++) q.push(Uint8Array.of(i & 0xff));
  assert.equal(q.length, n);
  assert.ok(q.chunkCount <= Math.ceil(n / 16_384), `chunks held: ${q.chunkCount}`);
  const all = q.take(n);
  for (let i = 0; i < n; i++) assert.equal(all[i], i & 0xff);
  assert.equal(q.chunkCount, 0);
});

test('large chunks are kept as views, small ones coalesced between them', () => {
  const q = new ByteQueue();
  const big = new Uint8Array(10_000).fill(7);
  q.push(big);
  q.push(Uint8Array.of(1));
  q.push(Uint8Array.of(2));
  q.push(big);
  assert.equal(q.chunkCount, 3);
  const first = q.take(10_000);
  assert.equal(first.buffer, big.buffer, 'a span inside one large chunk is a view, not a copy');
  assert.deepEqual([...q.take(2)], [1, 2]);
  assert.equal(q.take(10_000).length, 10_000);
});

test('an emptied queue holds no buffer; small chunks pushed afterwards are coalesced again', () => {
  const q = new ByteQueue();
  assert.equal(q.retainedBytes, 0);
  for (let i = 0; i < 100; i++) q.push(Uint8Array.of(i));
  assert.equal(q.chunkCount, 1, 'coalesced into one tail');
  const tail = q.retainedBytes;
  assert.ok(tail >= 100, `retained ${tail}`);
  q.take(99);
  assert.equal(q.retainedBytes, tail, 'a byte still queued keeps its buffer');
  const last = q.take(1);
  assert.equal(last[0], 99);
  // An idle connection's splitter sits here: nothing queued, nothing retained.
  assert.equal(q.retainedBytes, 0);
  assert.equal(last[0], 99, 'a view taken before the queue emptied stays valid');
  for (let i = 0; i < 100; i++) q.push(Uint8Array.of(i));
  assert.equal(q.chunkCount, 1);
  assert.deepEqual([...q.drain()], Array.from({ length: 100 }, (_, i) => i));
  assert.equal(q.retainedBytes, 0);
});

test('a tail that can no longer grow is not retained once its bytes are consumed', () => {
  const q = new ByteQueue();
  const big = new Uint8Array(10_000).fill(7);
  q.push(Uint8Array.of(1, 2, 3));
  q.push(big);
  q.take(3);
  // Only the large chunk is held now; the tail it followed is garbage.
  assert.equal(q.retainedBytes, big.buffer.byteLength);
  q.push(Uint8Array.of(4));
  q.take(10_000);
  assert.deepEqual([...q.drain()], [4]);
  assert.equal(q.retainedBytes, 0);
});
