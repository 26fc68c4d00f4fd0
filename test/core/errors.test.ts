import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPqnetError, PqnetError, reasonFromWire, Reasons, toPqnetError, type Reason } from '../../src/core/errors.ts';

const entries = Object.entries(Reasons) as [Reason, (typeof Reasons)[Reason]][];

test('every reason has a unique u16 wire code and a non-negative penalty', () => {
  const seen = new Map<number, string>();
  for (const [name, info] of entries) {
    assert.ok(Number.isInteger(info.wire) && info.wire > 0 && info.wire <= 0xffff, name);
    assert.ok(Number.isInteger(info.penalty) && info.penalty >= 0, name);
    assert.ok(info.description.length > 0, name);
    assert.equal(seen.get(info.wire), undefined, `${name} reuses wire code ${info.wire}`);
    seen.set(info.wire, name);
  }
  assert.equal(seen.size, entries.length);
});

test('reasonFromWire inverts the table; unknown codes give undefined', () => {
  for (const [name, info] of entries) assert.equal(reasonFromWire(info.wire), name);
  const known = new Set<number>(entries.map(([, i]) => i.wire));
  for (let code = 0; code <= 1_000; code++) {
    if (!known.has(code)) assert.equal(reasonFromWire(code), undefined, String(code));
  }
  for (const code of [-1, 1.5, 0x10000, Number.NaN]) assert.equal(reasonFromWire(code), undefined);
});

test('PqnetError carries code, wireCode, details and cause', () => {
  const cause = new Error('root cause');
  const e = new PqnetError('HS_BAD_KEY', 'x25519 agreement failed', { cause, details: { peer: 'pq1x' } });
  assert.ok(e instanceof Error);
  assert.ok(e instanceof PqnetError);
  assert.equal(e.name, 'PqnetError');
  assert.equal(e.code, 'HS_BAD_KEY');
  assert.equal(e.wireCode, 110);
  assert.equal(e.wireCode, Reasons.HS_BAD_KEY.wire);
  assert.deepEqual(e.details, { peer: 'pq1x' });
  assert.equal(e.cause, cause);
  assert.equal(e.message, `${Reasons.HS_BAD_KEY.description}: x25519 agreement failed`);
  assert.ok(typeof e.stack === 'string' && e.stack.length > 0);

  const bare = new PqnetError('TIMEOUT');
  assert.equal(bare.message, 'operation timed out');
  assert.equal(bare.details, undefined);
  assert.equal(bare.cause, undefined);
  for (const [name, info] of entries) assert.equal(new PqnetError(name).wireCode, info.wire);
});

test('isPqnetError', () => {
  assert.equal(isPqnetError(new PqnetError('INTERNAL')), true);
  for (const v of [new Error('x'), new TypeError('x'), null, undefined, 'PqnetError', 42, {}, { code: 'INTERNAL' }]) {
    assert.equal(isPqnetError(v), false, String(v));
  }
});

test('toPqnetError keeps typed errors and wraps anything else', () => {
  const typed = new PqnetError('MSG_SCHEMA', 'x');
  assert.equal(toPqnetError(typed), typed);
  assert.equal(toPqnetError(typed, 'IO_ERROR'), typed);

  const err = new RangeError('bad range');
  const w = toPqnetError(err);
  assert.ok(w instanceof PqnetError);
  assert.equal(w.code, 'INTERNAL');
  assert.equal(w.cause, err);
  assert.equal(w.message, 'internal error: bad range');

  const io = toPqnetError(new Error('ECONNRESET'), 'IO_ERROR');
  assert.equal(io.code, 'IO_ERROR');
  assert.equal(io.wireCode, 4);

  const s = toPqnetError('just a string', 'CLOSED');
  assert.equal(s.code, 'CLOSED');
  assert.equal(s.cause, 'just a string');
  assert.equal(s.message, 'closed locally: just a string');

  const u = toPqnetError(undefined);
  assert.equal(u.code, 'INTERNAL');
  assert.equal(u.message, 'internal error: undefined');
});
