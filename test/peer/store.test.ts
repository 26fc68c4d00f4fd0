import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import fc from 'fast-check';
import { isPqnetError, Reasons, type Reason } from '../../src/core/errors.ts';
import { PeerId } from '../../src/secure/identity.ts';
import { PeerStore, STORE_SCHEMA_VERSION } from '../../src/peer/store.ts';
import type { AddressSource, BanRecord, PeerBookEntry } from '../../src/peer/types.ts';

let dir = '';
let counter = 0;
/** A fresh path in the test directory. */
const fresh = (): string => path.join(dir, `store-${counter++}.db`);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'pqnet-store-'));
});
after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** Opens a store on a fresh file, runs `fn`, closes it. */
function withStore(fn: (store: PeerStore, file: string) => void): void {
  const file = fresh();
  const store = PeerStore.open(file);
  try {
    fn(store, file);
  } finally {
    store.close();
  }
}

function throwsCode(fn: () => unknown, code: Reason, label: string = code): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isPqnetError(e), `${label}: not a PqnetError: ${String(e)}`);
    assert.equal(e.code, code, `${label}: ${e.message}`);
    return true;
  }, label);
}

const pid = (n: number): string => new PeerId(new Uint8Array(32).fill(n)).toString();

const peer = (address: string, over: Partial<PeerBookEntry> = {}): PeerBookEntry => ({
  address,
  peerId: pid(1),
  source: 'peer-exchange',
  firstSeen: 1_700_000_000_000,
  lastSeen: 1_700_000_100_000,
  lastAttempt: 1_700_000_050_000,
  lastSuccess: 1_700_000_040_000,
  successes: 3,
  failures: 5,
  consecutiveFailures: 2,
  lastFailureReason: 'DIAL_FAILED',
  ...over,
});

const ban = (kind: 'peer' | 'address', target: string, over: Partial<BanRecord> = {}): BanRecord => ({
  kind, target, reason: 'INVALID_BLOCK', createdAt: 1_700_000_000_000, expiresAt: 1_700_003_600_000.5, offenses: 2, note: 'note ✓', ...over,
});

/** Runs `fn` with a raw connection to `file` (what an operator's sqlite3 would see). */
function raw<T>(file: string, fn: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

test('every peer field round-trips; upsert replaces; delete and count', () => {
  withStore((store) => {
    const a = peer('tcp://203.0.113.7:7420');
    const b = peer('tcp://[2001:db8::1]:7420', {
      peerId: null, source: 'static', lastAttempt: 0, lastSuccess: 0, successes: 0, failures: 0, consecutiveFailures: 0, lastFailureReason: null,
    });
    store.upsertPeer(a);
    store.upsertPeer(b);
    assert.deepEqual(store.getPeer(a.address), a);
    assert.deepEqual(store.getPeer(b.address), b);
    assert.deepEqual(store.listPeers(), [b, a].sort((x, y) => (x.address < y.address ? -1 : 1)));
    assert.equal(store.countPeers(), 2);

    const a2 = peer(a.address, { peerId: pid(2), source: 'operator', successes: 4, consecutiveFailures: 0, lastFailureReason: 'HS_DEADLINE', lastSeen: 1.5 });
    store.upsertPeer(a2);
    assert.deepEqual(store.getPeer(a.address), a2);
    assert.equal(store.countPeers(), 2);

    store.deletePeer(a.address);
    store.deletePeer('tcp://unknown:1');
    assert.equal(store.getPeer(a.address), undefined);
    assert.equal(store.countPeers(), 1);
    assert.equal(store.stats().skippedRows, 0);
  });
});

test('property: any valid entry round-trips exactly', () => {
  const sources: AddressSource[] = ['static', 'must-connect', 'inbound', 'peer-exchange', 'dns', 'mdns', 'kademlia', 'operator'];
  const time = fc.oneof(fc.nat(), fc.double({ min: 0, max: 1e300, noNaN: true }));
  const count = fc.maxSafeNat();
  const entry = fc.record({
    address: fc.string({ minLength: 1, maxLength: 80 }),
    peerId: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => new PeerId(b).toString())),
    source: fc.constantFrom(...sources),
    firstSeen: time, lastSeen: time, lastAttempt: time, lastSuccess: time,
    successes: count, failures: count, consecutiveFailures: count,
    lastFailureReason: fc.option(fc.constantFrom(...(Object.keys(Reasons) as Reason[]))),
  });
  withStore((store) => {
    fc.assert(fc.property(entry, (e) => {
      store.upsertPeer(e);
      assert.deepEqual(store.getPeer(e.address), { ...e });
    }), { numRuns: 200 });
    assert.equal(store.stats().skippedRows, 0);
  });
});

test('deletePeers removes a batch and ignores unknown addresses', () => {
  withStore((store) => {
    for (let i = 0; i < 5; i++) store.upsertPeer(peer(`tcp://10.0.0.${i}:1`));
    store.deletePeers(['tcp://10.0.0.1:1', 'tcp://10.0.0.3:1', 'tcp://nowhere:1']);
    store.deletePeers([]);
    assert.deepEqual(store.listPeers().map((e) => e.address), ['tcp://10.0.0.0:1', 'tcp://10.0.0.2:1', 'tcp://10.0.0.4:1']);
  });
});

test('every ban field round-trips; saveBan replaces; deleteBan', () => {
  withStore((store) => {
    const p = ban('peer', pid(9));
    const a = ban('address', '192.0.2.0/24', { reason: 'OPERATOR_BAN', offenses: 1, note: '' });
    store.saveBan(p);
    store.saveBan(a);
    assert.deepEqual(store.loadBans(), [a, p]);
    const p2 = ban('peer', pid(9), { offenses: 3, expiresAt: 1_800_000_000_000, reason: 'FRAME_AEAD_FAILED', note: 'again' });
    store.saveBan(p2);
    assert.deepEqual(store.loadBans(), [a, p2]);
    store.deleteBan('address', '192.0.2.0/24');
    store.deleteBan('peer', pid(10));
    assert.deepEqual(store.loadBans(), [p2]);
  });
});

test('invalid records are refused before anything is written', () => {
  withStore((store) => {
    const bad: Partial<PeerBookEntry>[] = [
      { address: '' }, { peerId: 'pq1nope' }, { peerId: pid(1).toUpperCase() }, { source: 'bogus' as AddressSource },
      { firstSeen: NaN }, { lastSeen: -1 }, { lastAttempt: Infinity }, { successes: 1.5 }, { failures: -1 },
      { consecutiveFailures: 2 ** 53 }, { lastFailureReason: 'NOPE' as Reason },
    ];
    for (const over of bad) throwsCode(() => store.upsertPeer(peer('tcp://x:1', over)), 'INVALID_ARGUMENT', JSON.stringify(over));
    const badBans: BanRecord[] = [
      ban('peer', 'not-a-peer-id'), ban('address', ''), ban('address', '192.0.2.1', { offenses: 0 }),
      ban('address', '192.0.2.1', { expiresAt: NaN }), ban('address', '192.0.2.1', { reason: 'NOPE' as Reason }),
      { ...ban('address', '192.0.2.1'), kind: 'host' as 'peer' },
    ];
    for (const b of badBans) throwsCode(() => store.saveBan(b), 'INVALID_ARGUMENT', JSON.stringify(b));
    assert.equal(store.countPeers(), 0);
    assert.deepEqual(store.loadBans(), []);
  });
});

test('survives close and reopen; schema version, WAL and pragmas are set', () => {
  const file = fresh();
  const a = peer('tcp://198.51.100.1:7420');
  const b = ban('address', '2001:db8::/64');
  const s1 = PeerStore.open(file);
  s1.upsertPeer(a);
  s1.saveBan(b);
  s1.close();
  const s2 = PeerStore.open(file);
  try {
    assert.deepEqual(s2.listPeers(), [a]);
    assert.deepEqual(s2.loadBans(), [b]);
  } finally {
    s2.close();
  }
  raw(file, (db) => {
    assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, STORE_SCHEMA_VERSION);
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
  });
});

test('close is idempotent; every other method then throws CLOSED', () => {
  const store = PeerStore.open(fresh());
  store.close();
  store.close();
  const calls: (() => unknown)[] = [
    () => store.upsertPeer(peer('tcp://x:1')), () => store.getPeer('tcp://x:1'), () => store.listPeers(),
    () => store.deletePeer('tcp://x:1'), () => store.deletePeers(['tcp://x:1']), () => store.countPeers(),
    () => store.loadBans(), () => store.saveBan(ban('address', '192.0.2.1')), () => store.deleteBan('peer', pid(1)),
  ];
  for (const call of calls) throwsCode(call, 'CLOSED');
});

test('a file that is not SQLite is STORE_CORRUPT and left untouched', () => {
  for (const size of [5, 100, 8192]) {
    const file = fresh();
    const bytes = randomBytes(size);
    writeFileSync(file, bytes);
    throwsCode(() => PeerStore.open(file), 'STORE_CORRUPT', `${size} random bytes`);
    assert.deepEqual(readFileSync(file), bytes);
  }
});

test('another schema version, or someone else\'s database, is STORE_CORRUPT and left untouched', () => {
  const cases: [string, string][] = [
    ['user_version 2', 'CREATE TABLE peers (address TEXT); PRAGMA user_version = 2'],
    ['user_version 0 with tables', 'CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER); INSERT INTO accounts VALUES (1, 100)'],
  ];
  for (const [label, sql] of cases) {
    const file = fresh();
    raw(file, (db) => db.exec(sql));
    const before = readFileSync(file);
    throwsCode(() => PeerStore.open(file), 'STORE_CORRUPT', label);
    assert.deepEqual(readFileSync(file), before, label);
  }
});

test('a damaged store fails quick_check: STORE_CORRUPT and left untouched', () => {
  const file = fresh();
  const store = PeerStore.open(file);
  for (let i = 0; i < 2000; i++) store.upsertPeer(peer(`tcp://10.${i >> 8}.${i & 255}.1:7420`));
  store.close(); // the last connection checkpoints the WAL into the file
  const bytes = readFileSync(file);
  const pageSize = 4096;
  assert.ok(bytes.length > 6 * pageSize);
  bytes.fill(0xa5, 3 * pageSize + 16, 5 * pageSize); // garble two b-tree pages, keep the header
  writeFileSync(file, bytes);
  throwsCode(() => PeerStore.open(file), 'STORE_CORRUPT');
  assert.deepEqual(readFileSync(file), bytes);
});

test('a missing directory is STORE_OPEN_FAILED', () => {
  throwsCode(() => PeerStore.open(path.join(dir, 'no-such-dir', 'peers.db')), 'STORE_OPEN_FAILED');
  const sub = path.join(dir, `is-a-dir-${counter++}`);
  mkdirSync(sub);
  throwsCode(() => PeerStore.open(sub), 'STORE_OPEN_FAILED', 'path is a directory');
});

test('invalid rows written behind the store\'s back are skipped and counted, not fatal', () => {
  withStore((store, file) => {
    const good = peer('tcp://good:1');
    const goodBan = ban('address', '192.0.2.7');
    store.upsertPeer(good);
    store.saveBan(goodBan);
    raw(file, (db) => {
      const cols = 'address, peer_id, source, first_seen, last_seen, last_attempt, last_success, successes, failures, consecutive_failures, last_failure_reason';
      const insert = db.prepare(`INSERT INTO peers (${cols}) VALUES (?, ?, ?, 1, 2, 3, 4, ?, 0, 0, ?)`);
      insert.run('tcp://bad-source:1', null, 'bogus', 0, null);
      insert.run('tcp://bad-peer-id:1', 'pq1xyz', 'dns', 0, null);
      insert.run('tcp://negative:1', null, 'dns', -1, null);
      insert.run('tcp://huge:1', null, 'dns', 2n ** 60n, null);
      insert.run('tcp://bad-reason:1', null, 'dns', 0, 65_000);
      db.exec("INSERT INTO peers VALUES ('', NULL, 'dns', 1, 2, 3, 4, 0, 0, 0, NULL)");
      db.exec("INSERT INTO bans VALUES ('address', '192.0.2.8', 820, 1, 2, 0, '')"); // offenses 0
      db.exec("INSERT INTO bans VALUES ('peer', 'nobody', 820, 1, 2, 1, '')");
      db.exec("INSERT INTO bans VALUES ('host', 'x', 820, 1, 2, 1, '')");
    });
    assert.deepEqual(store.listPeers(), [good]);
    assert.deepEqual(store.loadBans(), [goodBan]);
    assert.equal(store.stats().skippedRows, 9);
    assert.equal(store.getPeer('tcp://huge:1'), undefined);
    assert.equal(store.stats().skippedRows, 9, 'a row skipped again is counted once');
    assert.equal(store.countPeers(), 7, 'countPeers counts rows, valid or not');
    // A skipped row is still there, and a valid write replaces it.
    store.upsertPeer(peer('tcp://bad-source:1'));
    assert.equal(store.listPeers().length, 2);
  });
});

test('write-through: a second store on the same file sees each change at once', () => {
  withStore((s1, file) => {
    const s2 = PeerStore.open(file);
    try {
      const a = peer('tcp://198.51.100.2:7420');
      s1.upsertPeer(a);
      assert.deepEqual(s2.getPeer(a.address), a);
      s1.saveBan(ban('peer', pid(3)));
      assert.equal(s2.loadBans().length, 1);
      s2.deletePeers([a.address]);
      assert.equal(s1.getPeer(a.address), undefined);
    } finally {
      s2.close();
    }
  });
});

test('a write blocked by another connection\'s write lock is STORE_LOCKED and changes nothing', () => {
  withStore((store, file) => {
    const other = new DatabaseSync(file);
    try {
      other.exec('BEGIN IMMEDIATE');
      throwsCode(() => store.upsertPeer(peer('tcp://locked:1')), 'STORE_LOCKED'); // waits BUSY_TIMEOUT_MS first
      other.exec('ROLLBACK');
    } finally {
      other.close();
    }
    assert.equal(store.countPeers(), 0);
    store.upsertPeer(peer('tcp://locked:1'));
    assert.equal(store.countPeers(), 1);
  });
});
