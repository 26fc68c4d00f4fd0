import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { isPqnetError } from '../../src/core/errors.ts';
import { PeerId } from '../../src/secure/identity.ts';
import { DEFAULT_PEER_BOOK_OPTIONS, PeerBook, type PeerBookOptions } from '../../src/peer/book.ts';
import { PeerStore } from '../../src/peer/store.ts';
import type { PeerBookEntry } from '../../src/peer/types.ts';

let dir = '';
let counter = 0;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pqnet-book-'));
});
after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

const SEC = 1_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = 1_700_000_000_000;
const pid = (n: number): string => new PeerId(new Uint8Array(32).fill(n)).toString();
const addr = (n: number): string => `tcp://10.0.${n >> 8}.${n & 255}:7420`;

/** A book on a fresh store; `fn` gets both and the file; the store is closed afterwards. */
function withBook(options: Partial<PeerBookOptions>, fn: (book: PeerBook, store: PeerStore, file: string) => void): void {
  const file = path.join(dir, `book-${counter++}.db`);
  const store = PeerStore.open(file);
  try {
    fn(new PeerBook(store, options), store, file);
  } finally {
    store.close();
  }
}

/** What a fresh store on the same file holds, as the book after a restart would load it. */
function reloaded(file: string): PeerBookEntry[] {
  const store = PeerStore.open(file);
  try {
    return new PeerBook(store).entries();
  } finally {
    store.close();
  }
}

/** Makes `address` fail `n` times in a row, the last failure at `at`. */
function fail(book: PeerBook, address: string, n: number, at: number): void {
  for (let i = 0; i < n; i++) {
    book.recordAttempt(address, at);
    book.recordFailure(address, 'DIAL_FAILED', at);
  }
}

test('options: defaults, overrides, undefined means default, invalid values are RangeErrors', () => {
  withBook({}, (book, store) => {
    assert.deepEqual(book.options, DEFAULT_PEER_BOOK_OPTIONS);
    assert.deepEqual(DEFAULT_PEER_BOOK_OPTIONS, {
      baseBackoffMs: 30_000, maxBackoffMs: 6 * HOUR, minRetryMs: 60_000, forgetAfterFailures: 10, forgetAfterMs: 7 * DAY, maxEntries: 10_000,
    });
    assert.equal(new PeerBook(store, { maxEntries: 5, baseBackoffMs: undefined }).options.maxEntries, 5);
    assert.equal(new PeerBook(store, { baseBackoffMs: undefined }).options.baseBackoffMs, 30_000);
    const bad: Partial<PeerBookOptions>[] = [
      { baseBackoffMs: -1 }, { maxBackoffMs: NaN }, { minRetryMs: Infinity }, { forgetAfterMs: -0.5 },
      { forgetAfterFailures: 0 }, { forgetAfterFailures: 2.5 }, { maxEntries: NaN }, { maxEntries: -3 },
    ];
    for (const o of bad) assert.throws(() => new PeerBook(store, o), RangeError, JSON.stringify(o));
  });
});

test('add learns an address; known addresses refresh only from an equal or better source', () => {
  withBook({}, (book, _store, file) => {
    const a = addr(1);
    assert.deepEqual(book.add(a, 'peer-exchange', T0), {
      address: a, peerId: null, source: 'peer-exchange', firstSeen: T0, lastSeen: T0, lastAttempt: 0, lastSuccess: 0,
      successes: 0, failures: 0, consecutiveFailures: 0, lastFailureReason: null,
    });
    // Re-announcement from the same source: lastSeen refreshed, peer-id learned.
    let e = book.add(a, 'peer-exchange', T0 + 10, pid(1));
    assert.equal(e.lastSeen, T0 + 10);
    assert.equal(e.peerId, pid(1));
    // Better source: raised, refreshed; no peer-id given: the known one stays.
    e = book.add(a, 'dns', T0 + 20);
    assert.deepEqual([e.source, e.lastSeen, e.peerId, e.firstSeen], ['dns', T0 + 20, pid(1), T0]);
    // Worse source: nothing changes.
    e = book.add(a, 'peer-exchange', T0 + 30, pid(2));
    assert.deepEqual([e.source, e.lastSeen, e.peerId], ['dns', T0 + 20, pid(1)]);
    // Time going backwards never moves lastSeen back.
    assert.equal(book.add(a, 'static', T0 + 5).lastSeen, T0 + 20);
    assert.equal(book.get(a)?.source, 'static');
    assert.equal(book.size, 1);
    assert.deepEqual(reloaded(file), [book.get(a)]);
  });
});

test('recordAttempt, recordSuccess and recordFailure keep the counters', () => {
  withBook({}, (book, _store, file) => {
    const a = addr(2);
    book.add(a, 'dns', T0);
    book.recordAttempt(a, T0 + 1);
    let e = book.recordFailure(a, 'DIAL_FAILED', T0 + 2)!;
    assert.deepEqual([e.lastAttempt, e.failures, e.consecutiveFailures, e.lastFailureReason], [T0 + 2, 1, 1, 'DIAL_FAILED']);
    book.recordAttempt(a, T0 + 3);
    e = book.recordFailure(a, 'HS_DEADLINE', T0 + 2)!; // reported late: lastAttempt never moves back
    assert.deepEqual([e.lastAttempt, e.failures, e.consecutiveFailures, e.lastFailureReason], [T0 + 3, 2, 2, 'HS_DEADLINE']);
    e = book.recordSuccess(a, pid(4), T0 + 4)!;
    assert.deepEqual(
      [e.peerId, e.lastSuccess, e.lastSeen, e.successes, e.failures, e.consecutiveFailures, e.lastFailureReason],
      [pid(4), T0 + 4, T0 + 4, 1, 2, 0, 'HS_DEADLINE'],
    );
    assert.deepEqual(reloaded(file), [e]);

    // Unknown addresses: no-ops, nothing created.
    assert.equal(book.recordAttempt(addr(99), T0), undefined);
    assert.equal(book.recordSuccess(addr(99), pid(1), T0), undefined);
    assert.equal(book.recordFailure(addr(99), 'DIAL_FAILED', T0), undefined);
    assert.equal(book.size, 1);
  });
});

test('backoff doubles from baseBackoffMs per consecutive failure, capped at maxBackoffMs', () => {
  withBook({}, (book) => {
    const a = addr(3);
    book.add(a, 'dns', T0);
    const delay = (): number => book.nextAttemptAt(book.get(a)!) - book.get(a)!.lastAttempt;
    assert.equal(book.nextAttemptAt(book.get(a)!), 0, 'not failing and not tried by this book: due at once');
    book.recordAttempt(a, T0);
    assert.equal(delay(), 60 * SEC, 'not failing: minRetryMs');
    const expected = [30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600].map((s) => s * SEC);
    for (const [i, ms] of expected.entries()) {
      fail(book, a, 1, T0 + i * DAY);
      assert.equal(delay(), ms, `after ${i + 1} failures`);
    }
    book.recordSuccess(a, pid(1), T0 + 20 * DAY);
    assert.equal(delay(), 60 * SEC, 'a success resets the backoff');
  });
});

test('a reopened book (a restarted node) redials addresses that were not failing at once; failing ones keep their backoff', () => {
  withBook({}, (book, store) => {
    const ok = addr(1);
    const bad = addr(2);
    book.add(ok, 'operator', T0);
    book.add(bad, 'operator', T0);
    book.recordAttempt(ok, T0);
    book.recordSuccess(ok, pid(1), T0);
    fail(book, bad, 1, T0);
    assert.deepEqual(book.dialCandidates(T0 + SEC, 10), [], 'this book tried both a second ago');
    const reopened = new PeerBook(store, {});
    assert.deepEqual(
      reopened.dialCandidates(T0 + SEC, 10).map((e) => e.address),
      [ok],
    );
    assert.deepEqual(
      reopened.dialCandidates(T0 + 31 * SEC, 10).map((e) => e.address),
      [ok, bad],
    );
  });
});

test('dialCandidates: only due and not excluded, best first, limited, independent of insertion order', () => {
  const order = [1, 2, 3, 4, 5, 6, 7, 8, 9];
  for (const insertion of [order, [...order].reverse()]) {
    withBook({}, (book) => {
      for (const n of insertion) book.add(addr(n), 'dns', T0);
      book.recordSuccess(addr(1), pid(1), T0 + 1); // 1 success, recent
      book.recordSuccess(addr(2), pid(2), T0);
      book.recordSuccess(addr(2), pid(2), T0); // 2 successes
      book.recordSuccess(addr(3), pid(3), T0); // 1 success, older than addr(1)'s
      fail(book, addr(4), 1, T0 - HOUR); // failing once, backoff long over
      fail(book, addr(5), 3, T0 - HOUR); // failing three times
      fail(book, addr(6), 5, T0); // backing off until T0 + 8 min
      book.recordAttempt(addr(7), T0); // attempted just now: not due before T0 + 60 s

      const now = T0 + 10 * SEC;
      const expected = [2, 1, 3, 8, 9, 4, 5].map(addr); // addr(8), addr(9): never tried, tie broken by address
      assert.deepEqual(book.dialCandidates(now, 100).map((e) => e.address), expected);
      assert.deepEqual(book.dialCandidates(now, 3).map((e) => e.address), expected.slice(0, 3));
      assert.deepEqual(book.dialCandidates(now, 0), []);
      assert.deepEqual(book.dialCandidates(now, 100, new Set([addr(2), addr(8)])).map((e) => e.address), [1, 3, 9, 4, 5].map(addr));
      assert.ok(book.dialCandidates(T0 + 9 * 60 * SEC, 100).some((e) => e.address === addr(6)), 'due once its backoff ran out');
      assert.throws(() => book.dialCandidates(now, -1), RangeError);
      assert.throws(() => book.dialCandidates(NaN, 1), RangeError);
    });
  }
});

test('prune forgets failing addresses, keeps good and configured ones', () => {
  withBook({}, (book, _store, file) => {
    const now = T0 + 30 * DAY;
    const never = addr(1); // 10 failures, never succeeded: forgotten
    const old = addr(2); // 10 failures, last success 8 days ago: forgotten
    const recent = addr(3); // 10 failures, success 6 days ago: kept
    const fewer = addr(4); // 9 failures, never succeeded: kept (not yet)
    const must = addr(5); // must-connect, 20 failures: kept
    const stat = addr(6); // static, 20 failures: kept
    const good = addr(7); // succeeding: kept
    for (const a of [never, old, recent, fewer, good]) book.add(a, 'peer-exchange', T0);
    book.add(must, 'must-connect', T0);
    book.add(stat, 'static', T0);
    book.recordSuccess(old, pid(2), now - 8 * DAY);
    book.recordSuccess(recent, pid(3), now - 6 * DAY);
    book.recordSuccess(good, pid(7), now - HOUR);
    fail(book, never, 10, now - DAY);
    fail(book, old, 10, now - DAY);
    fail(book, recent, 10, now - DAY);
    fail(book, fewer, 9, now - DAY);
    fail(book, must, 20, now - DAY);
    fail(book, stat, 20, now - DAY);

    assert.deepEqual(book.prune(now).sort(), [never, old].sort());
    assert.deepEqual(book.entries().map((e) => e.address).sort(), [recent, fewer, must, stat, good].sort());
    assert.deepEqual(reloaded(file).map((e) => e.address).sort(), [recent, fewer, must, stat, good].sort());
    assert.deepEqual(book.prune(now), [], 'nothing more to prune');
  });
});

test('prune evicts the worst entries down to maxEntries, never configured ones', () => {
  withBook({ maxEntries: 4 }, (book, _store, file) => {
    book.add(addr(1), 'must-connect', T0); // protected, never successful
    book.add(addr(2), 'static', T0); // protected
    book.add(addr(3), 'dns', T0 + 3); // never successful, 0 failures, newest
    book.add(addr(4), 'dns', T0 + 1); // never successful, 0 failures, oldest
    book.add(addr(5), 'dns', T0 + 2); // never successful, 2 failures
    book.add(addr(6), 'dns', T0); // successful
    book.add(addr(7), 'dns', T0); // successful, failing once since
    fail(book, addr(5), 2, T0 + 10);
    book.recordSuccess(addr(6), pid(6), T0 + 10);
    book.recordSuccess(addr(7), pid(7), T0 + 10);
    fail(book, addr(7), 1, T0 + 20);

    // 7 entries, 3 over: addr(5) (most failures among never successful), then addr(4), addr(3) by lastSeen.
    assert.deepEqual(book.prune(T0 + 30), [addr(5), addr(4), addr(3)]);
    assert.deepEqual(book.entries().map((e) => e.address).sort(), [1, 2, 6, 7].map(addr));
    assert.equal(reloaded(file).length, 4);

    // Configured entries alone may exceed maxEntries; they stay.
    for (let n = 10; n < 14; n++) book.add(addr(n), 'static', T0);
    assert.deepEqual(book.prune(T0 + 40).sort(), [addr(6), addr(7)].sort());
    assert.equal(book.size, 6);
  });
});

test('write-through: another store on the same file sees every change without the first closing', () => {
  withBook({}, (book, _store, file) => {
    const other = PeerStore.open(file);
    try {
      const a = addr(1);
      book.add(a, 'dns', T0);
      assert.deepEqual(other.getPeer(a), book.get(a));
      book.recordAttempt(a, T0 + 1);
      assert.deepEqual(other.getPeer(a), book.get(a));
      book.recordFailure(a, 'DIAL_FAILED', T0 + 2);
      assert.deepEqual(other.getPeer(a), book.get(a));
      book.recordSuccess(a, pid(1), T0 + 3);
      assert.deepEqual(other.getPeer(a), book.get(a));
      assert.equal(book.remove(a), true);
      assert.equal(book.remove(a), false);
      assert.equal(other.getPeer(a), undefined);
    } finally {
      other.close();
    }
  });
});

test('a change the store refuses leaves the book unchanged', () => {
  withBook({}, (book, store) => {
    const a = addr(1);
    book.add(a, 'dns', T0);
    const before = book.get(a);
    assert.throws(() => book.recordSuccess(a, 'not-a-peer-id', T0 + 1), (e: unknown) => isPqnetError(e) && e.code === 'INVALID_ARGUMENT');
    assert.equal(book.get(a), before);
    store.close();
    assert.throws(() => book.add(addr(2), 'dns', T0), (e: unknown) => isPqnetError(e) && e.code === 'CLOSED');
    assert.throws(() => book.remove(a), (e: unknown) => isPqnetError(e) && e.code === 'CLOSED');
    assert.equal(book.size, 1);
    assert.equal(book.get(a), before);
  });
});

test('time must be finite and non-negative', () => {
  withBook({}, (book) => {
    for (const now of [NaN, -1, Infinity]) {
      assert.throws(() => book.add(addr(1), 'dns', now), RangeError);
      assert.throws(() => book.prune(now), RangeError);
    }
    assert.equal(book.size, 0);
  });
});

test('loading skips invalid rows and keeps the rest', () => {
  withBook({}, (book, store, file) => {
    book.add(addr(1), 'dns', T0);
    const db = new DatabaseSync(file);
    try {
      db.exec("INSERT INTO peers VALUES ('tcp://bad:1', NULL, 'carrier-pigeon', 1, 2, 3, 4, 0, 0, 0, NULL)");
    } finally {
      db.close();
    }
    const again = new PeerBook(store);
    assert.deepEqual(again.entries().map((e) => e.address), [addr(1)]);
    assert.equal(store.stats().skippedRows, 1);
  });
});
