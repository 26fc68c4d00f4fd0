/**
 * `DevchainStore`: the devchain on disk, one SQLite file through `node:sqlite`
 * (DESIGN.md, Principle 7), synchronous. It holds rows and runs statements;
 * the chain rules are in `devchain.ts`.
 *
 * Design choices (following `peer/store.ts`):
 * - **Durability.** WAL journal with `synchronous=NORMAL`: a committed
 *   transaction survives `kill -9` at any moment; a power loss may roll back
 *   the last few commits, never corrupt the file. Every mutation of the chain
 *   runs inside one `BEGIN IMMEDIATE … COMMIT` (`write`), so a method that
 *   returned has committed and one that threw has changed nothing. `savepoint`
 *   nests a step that may be undone on its own (a block that fails to connect)
 *   inside it.
 * - **One owner.** The connection takes SQLite's exclusive lock
 *   (`locking_mode=EXCLUSIVE`): a second `Devchain` on the same file, in this
 *   process or another, gets `STORE_LOCKED` instead of silently diverging from
 *   the first one's in-memory tip and caches.
 * - **Never damage a file we do not understand.** An existing file is first
 *   inspected read-only: not SQLite, another `application_id` or
 *   `user_version`, a version-0 database that already holds tables, or a store
 *   made with other chain parameters (fingerprint in `meta`) → `STORE_CORRUPT`,
 *   the file left as it was. A fresh file gets the schema and the genesis
 *   (`init`) in one transaction. No `PRAGMA quick_check` at open (unlike the
 *   peer store): a chain file grows to gigabytes, and SQLite reports
 *   corruption it meets as SQLITE_CORRUPT, which becomes `STORE_CORRUPT`.
 * - **Typed errors.** Busy or locked → `STORE_LOCKED`; corrupt →
 *   `STORE_CORRUPT`; other SQLite failures → `STORE_OPEN_FAILED` while
 *   opening, `STORE_IO` afterwards. A row whose values are not what this code
 *   writes (a hash not 32 bytes, a flag not 0/1) is corruption: a chain cannot
 *   skip a header the way the peer book skips an entry.
 * - **Schema.** `headers` keeps every header ever stored, with its place in
 *   the tree: `seq` (storage order, which breaks ties in total work),
 *   `total_work` as 40 big-endian bytes (BLOB comparison = numeric order, and
 *   2^53 blocks of at most 2^255 work fit), `has_block` (body stored),
 *   `linked` (body stored and every ancestor's down to the state base too —
 *   Bitcoin's nChainTx ≠ 0: the block could be connected) and `invalid`.
 *   `best_chain` and `valid_chain` map height → hash along the best header
 *   chain and the validated chain. `accounts`, `buckets` and `undo` are the
 *   state at the tip and how to take blocks off it. `meta` holds `params`,
 *   `tip`, `best` and `base` (the block the state starts from: genesis, or a
 *   snapshot's block; nothing below it can be disconnected).
 */
import { existsSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { PqnetError } from '../../core/errors.ts';
import { prepareAll, storeIo, toStoreError, transaction, useWal } from '../../core/sqlite.ts';
import type { Hash } from '../adapter.ts';
import { bigintToBytes, bytesToBigint, compareBytes } from './hash.ts';
import { HASH_BYTES, MAX_BALANCE } from './params.ts';
import { BUCKETS, type Account } from './state.ts';

/** `PRAGMA user_version` of the schema below. */
export const DEVCHAIN_SCHEMA_VERSION = 1;
/** `PRAGMA application_id`: 'pqdc'. Tells a devchain file from another SQLite file (a peer store, say). */
export const DEVCHAIN_APPLICATION_ID = 0x70716463;
/** How long opening waits for another connection's lock before `STORE_LOCKED`. */
export const BUSY_TIMEOUT_MS = 2_000;
/** Bytes of a stored total work. */
export const TOTAL_WORK_BYTES = 40;

const SCHEMA = `
  CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT, WITHOUT ROWID;
  CREATE TABLE headers (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    parent BLOB NOT NULL,
    height INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    state_root BLOB NOT NULL,
    total_work BLOB NOT NULL,
    has_block INTEGER NOT NULL,
    linked INTEGER NOT NULL,
    invalid INTEGER NOT NULL,
    bytes BLOB NOT NULL
  ) STRICT;
  CREATE INDEX headers_parent ON headers (parent);
  CREATE INDEX headers_best ON headers (total_work DESC, seq) WHERE invalid = 0;
  CREATE INDEX headers_candidates ON headers (total_work DESC, seq) WHERE invalid = 0 AND linked = 1;
  CREATE TABLE blocks (hash BLOB PRIMARY KEY NOT NULL, bytes BLOB NOT NULL) STRICT;
  CREATE TABLE best_chain (height INTEGER PRIMARY KEY, hash BLOB NOT NULL) STRICT;
  CREATE TABLE valid_chain (height INTEGER PRIMARY KEY, hash BLOB NOT NULL) STRICT;
  CREATE TABLE accounts (id BLOB PRIMARY KEY NOT NULL, balance INTEGER NOT NULL, nonce INTEGER NOT NULL) STRICT, WITHOUT ROWID;
  CREATE TABLE buckets (bucket INTEGER PRIMARY KEY, hash BLOB NOT NULL) STRICT;
  CREATE TABLE undo (hash BLOB PRIMARY KEY NOT NULL, bytes BLOB NOT NULL) STRICT;
  PRAGMA application_id = ${DEVCHAIN_APPLICATION_ID};
  PRAGMA user_version = ${DEVCHAIN_SCHEMA_VERSION};
`;

export type MetaKey = 'params' | 'tip' | 'best' | 'base';
export type ChainIndex = 'best' | 'valid';

export interface HeaderRow {
  readonly seq: number;
  readonly hash: Hash;
  readonly parent: Hash;
  readonly height: number;
  readonly timestampMs: number;
  readonly stateRoot: Hash;
  readonly totalWork: bigint;
  readonly hasBlock: boolean;
  readonly linked: boolean;
  readonly invalid: boolean;
  readonly bytes: Uint8Array;
}

type Row = Record<string, unknown>;

function corrupt(what: string): never {
  throw new PqnetError('STORE_CORRUPT', what);
}

const hashOf = (v: unknown, what: string): Hash => (v instanceof Uint8Array && v.length === HASH_BYTES ? v : corrupt(`${what} is not a 32-byte hash`));
const uintOf = (v: unknown, what: string): number => (Number.isSafeInteger(v) && (v as number) >= 0 ? (v as number) : corrupt(`${what} is not an unsigned integer`));
const flagOf = (v: unknown, what: string): boolean => (v === 0 ? false : v === 1 ? true : corrupt(`${what} is not 0 or 1`));

function rowToHeader(r: Row): HeaderRow {
  const work = r.total_work;
  if (!(work instanceof Uint8Array) || work.length !== TOTAL_WORK_BYTES) corrupt('total_work');
  if (!(r.bytes instanceof Uint8Array)) corrupt('header bytes');
  return {
    seq: uintOf(r.seq, 'seq'),
    hash: hashOf(r.hash, 'header hash'),
    parent: hashOf(r.parent, 'parent'),
    height: uintOf(r.height, 'height'),
    timestampMs: uintOf(r.timestamp_ms, 'timestamp'),
    stateRoot: hashOf(r.state_root, 'state root'),
    totalWork: bytesToBigint(work),
    hasBlock: flagOf(r.has_block, 'has_block'),
    linked: flagOf(r.linked, 'linked'),
    invalid: flagOf(r.invalid, 'invalid'),
    bytes: r.bytes,
  };
}

const MAX_NONCE = BigInt(Number.MAX_SAFE_INTEGER);

/** An account row read as an array [id, balance, nonce] (the hot path of every block: no row objects). */
function rowToAccount(r: unknown[]): readonly [Hash, Account] {
  const [id, balance, nonce] = r;
  if (typeof balance !== 'bigint' || balance < 0n || balance > MAX_BALANCE) corrupt('account balance');
  if (typeof nonce !== 'bigint' || nonce < 0n || nonce > MAX_NONCE) corrupt('account nonce');
  return [hashOf(id, 'account id'), { balance, nonce: Number(nonce) }];
}

/** Whether the database is empty ('fresh') or a devchain store of ours ('current'); anything else throws `STORE_CORRUPT`. Reads only. */
function schemaState(db: DatabaseSync, fingerprint: Uint8Array): 'fresh' | 'current' {
  const version = (db.prepare('PRAGMA user_version').get() as Row).user_version;
  const appId = (db.prepare('PRAGMA application_id').get() as Row).application_id;
  if (version === 0 && appId === 0) {
    const { n } = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as Row;
    if (n !== 0) throw new PqnetError('STORE_CORRUPT', 'the database holds tables but is not a devchain store');
    return 'fresh';
  }
  if (appId !== DEVCHAIN_APPLICATION_ID) throw new PqnetError('STORE_CORRUPT', 'not a devchain store (application_id)');
  if (version !== DEVCHAIN_SCHEMA_VERSION) throw new PqnetError('STORE_CORRUPT', `devchain schema version ${String(version)}, expected ${DEVCHAIN_SCHEMA_VERSION}`);
  const row = db.prepare("SELECT value FROM meta WHERE key = 'params'").get() as Row | undefined;
  const stored = row?.value;
  if (!(stored instanceof Uint8Array)) throw new PqnetError('STORE_CORRUPT', 'devchain store without a params fingerprint');
  if (compareBytes(stored, fingerprint) !== 0) {
    throw new PqnetError('STORE_CORRUPT', `the file was made with other devchain parameters (fingerprint ${Buffer.from(stored).toString('hex').slice(0, 16)}…, these are ${Buffer.from(fingerprint).toString('hex').slice(0, 16)}…)`);
  }
  return 'current';
}

function inspect(path: string, fingerprint: Uint8Array): void {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true, timeout: BUSY_TIMEOUT_MS });
  } catch (e) {
    throw toStoreError(e, 'STORE_OPEN_FAILED');
  }
  try {
    schemaState(db, fingerprint);
  } catch (e) {
    throw toStoreError(e, 'STORE_OPEN_FAILED');
  } finally {
    db.close();
  }
}

const STATEMENTS = {
  savepoint: 'SAVEPOINT step',
  release: 'RELEASE step',
  rollbackTo: 'ROLLBACK TO step',
  getMeta: 'SELECT value FROM meta WHERE key = ?',
  setMeta: 'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  getHeader: 'SELECT * FROM headers WHERE hash = ?',
  hasHeader: 'SELECT 1 AS x FROM headers WHERE hash = ?',
  insertHeader: `INSERT INTO headers (hash, parent, height, timestamp_ms, state_root, total_work, has_block, linked, invalid, bytes)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  setHasBlock: 'UPDATE headers SET has_block = 1 WHERE hash = ?',
  setLinked: 'UPDATE headers SET linked = ? WHERE hash = ?',
  clearLinked: 'UPDATE headers SET linked = 0 WHERE linked = 1',
  setInvalid: 'UPDATE headers SET invalid = 1 WHERE hash = ?',
  children: 'SELECT * FROM headers WHERE parent = ? ORDER BY seq',
  bestValid: 'SELECT * FROM headers WHERE invalid = 0 ORDER BY total_work DESC, seq LIMIT 1',
  bestCandidate: 'SELECT * FROM headers WHERE invalid = 0 AND linked = 1 ORDER BY total_work DESC, seq LIMIT 1',
  getBlock: 'SELECT bytes FROM blocks WHERE hash = ?',
  putBlock: 'INSERT OR IGNORE INTO blocks (hash, bytes) VALUES (?, ?)',
  bestAt: 'SELECT hash FROM best_chain WHERE height = ?',
  setBestAt: 'INSERT INTO best_chain (height, hash) VALUES (?, ?) ON CONFLICT (height) DO UPDATE SET hash = excluded.hash',
  truncateBest: 'DELETE FROM best_chain WHERE height > ?',
  validAt: 'SELECT hash FROM valid_chain WHERE height = ?',
  setValidAt: 'INSERT INTO valid_chain (height, hash) VALUES (?, ?) ON CONFLICT (height) DO UPDATE SET hash = excluded.hash',
  truncateValid: 'DELETE FROM valid_chain WHERE height > ?',
  copyBestToValid: 'INSERT INTO valid_chain (height, hash) SELECT height, hash FROM best_chain WHERE height <= ?',
  clearValid: 'DELETE FROM valid_chain',
  getAccount: 'SELECT id, balance, nonce FROM accounts WHERE id = ?',
  putAccount: 'INSERT INTO accounts (id, balance, nonce) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, nonce = excluded.nonce',
  deleteAccount: 'DELETE FROM accounts WHERE id = ?',
  bucketAccounts: 'SELECT id, balance, nonce FROM accounts WHERE id >= ? AND id < ? ORDER BY id',
  allAccounts: 'SELECT id, balance, nonce FROM accounts ORDER BY id',
  countAccounts: 'SELECT count(*) AS n FROM accounts',
  clearAccounts: 'DELETE FROM accounts',
  getBuckets: 'SELECT bucket, hash FROM buckets ORDER BY bucket',
  putBucket: 'INSERT INTO buckets (bucket, hash) VALUES (?, ?) ON CONFLICT (bucket) DO UPDATE SET hash = excluded.hash',
  getUndo: 'SELECT bytes FROM undo WHERE hash = ?',
  putUndo: 'INSERT INTO undo (hash, bytes) VALUES (?, ?) ON CONFLICT (hash) DO UPDATE SET bytes = excluded.bytes',
  deleteUndo: 'DELETE FROM undo WHERE hash = ?',
  clearUndo: 'DELETE FROM undo',
} as const;

type Statements = Record<keyof typeof STATEMENTS, StatementSync>;

/** Bounds of bucket `b` for `bucketAccounts`: every 32-byte id starting with `b` is ≥ [b] and < [b + 1] (or < 33 × 0xff). */
const BUCKET_BOUNDS: readonly (readonly [Uint8Array, Uint8Array])[] = Array.from({ length: BUCKETS }, (_, b) => [
  new Uint8Array([b]),
  b === BUCKETS - 1 ? new Uint8Array(HASH_BYTES + 1).fill(0xff) : new Uint8Array([b + 1]),
]);

export class DevchainStore {
  #db: DatabaseSync | undefined;
  readonly #s: Statements;
  #depth = 0;

  /**
   * Opens the store at `path`, creating it if needed; a fresh store gets the
   * schema, then `init` runs in the same transaction (the genesis). Throws
   * `STORE_CORRUPT` (file left untouched), `STORE_OPEN_FAILED` or `STORE_LOCKED`.
   */
  static open(path: string, fingerprint: Uint8Array, init: (store: DevchainStore) => void): DevchainStore {
    if (existsSync(path)) inspect(path, fingerprint);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS });
    } catch (e) {
      throw toStoreError(e, 'STORE_OPEN_FAILED');
    }
    try {
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      useWal(db);
      // The transaction takes the exclusive lock; the schema is checked again under it.
      return transaction(db, () => {
        const fresh = schemaState(db, fingerprint) === 'fresh';
        if (fresh) db.exec(SCHEMA);
        const store = new DevchainStore(db);
        if (fresh) {
          store.#depth = 1;
          init(store);
          store.#depth = 0;
        }
        return store;
      });
    } catch (e) {
      db.close();
      throw toStoreError(e, 'STORE_OPEN_FAILED');
    }
  }

  private constructor(db: DatabaseSync) {
    const s = prepareAll(db, STATEMENTS, `version ${DEVCHAIN_SCHEMA_VERSION}`);
    for (const name of ['getAccount', 'bucketAccounts', 'allAccounts'] as const) {
      s[name].setReadBigInts(true);
      s[name].setReturnArrays(true);
    }
    this.#db = db;
    this.#s = s;
  }

  /** Closes the file. Idempotent; every other method then throws `CLOSED`. */
  close(): void {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }

  get closed(): boolean {
    return this.#db === undefined;
  }

  // ---------------------------------------------------------------- transactions

  /** Runs `fn` with SQLite errors mapped to STORE_*; reads and, inside `write`, writes. */
  run<T>(fn: () => T): T {
    return storeIo(this.#db, 'devchain store', fn);
  }

  /** Runs `fn` in one transaction: committed if it returns, rolled back if it throws. Nested calls join the outer transaction. */
  write<T>(fn: () => T): T {
    return storeIo(this.#db, 'devchain store', (db) => {
      if (this.#depth > 0) return fn();
      this.#depth = 1;
      try {
        return transaction(db, fn);
      } finally {
        this.#depth = 0;
      }
    });
  }

  /** Inside `write`: runs `fn`, undoing only its own changes if it throws. */
  savepoint<T>(fn: () => T): T {
    if (this.#depth === 0) throw new PqnetError('INTERNAL', 'savepoint outside a transaction');
    this.#s.savepoint.run();
    this.#depth++;
    try {
      const out = fn();
      this.#s.release.run();
      return out;
    } catch (e) {
      this.#s.rollbackTo.run();
      this.#s.release.run();
      throw e;
    } finally {
      this.#depth--;
    }
  }

  // ---------------------------------------------------------------- meta

  meta(key: MetaKey): Uint8Array | undefined {
    const v = (this.#s.getMeta.get(key) as Row | undefined)?.value;
    if (v !== undefined && !(v instanceof Uint8Array)) corrupt(`meta ${key}`);
    return v;
  }

  setMeta(key: MetaKey, value: Uint8Array): void {
    this.#s.setMeta.run(key, value);
  }

  // ---------------------------------------------------------------- headers

  header(hash: Hash): HeaderRow | undefined {
    const r = this.#s.getHeader.get(hash) as Row | undefined;
    return r === undefined ? undefined : rowToHeader(r);
  }

  hasHeader(hash: Hash): boolean {
    return this.#s.hasHeader.get(hash) !== undefined;
  }

  /** Inserts a header; returns its row (with `seq`). */
  insertHeader(h: Omit<HeaderRow, 'seq'>): HeaderRow {
    const { lastInsertRowid } = this.#s.insertHeader.run(
      h.hash, h.parent, h.height, h.timestampMs, h.stateRoot, bigintToBytes(h.totalWork, TOTAL_WORK_BYTES),
      h.hasBlock ? 1 : 0, h.linked ? 1 : 0, h.invalid ? 1 : 0, h.bytes,
    );
    return { ...h, seq: Number(lastInsertRowid) };
  }

  setHasBlock(hash: Hash): void {
    this.#s.setHasBlock.run(hash);
  }

  setLinked(hash: Hash, linked: boolean): void {
    this.#s.setLinked.run(linked ? 1 : 0, hash);
  }

  clearLinked(): void {
    this.#s.clearLinked.run();
  }

  setInvalid(hash: Hash): void {
    this.#s.setInvalid.run(hash);
  }

  children(hash: Hash): HeaderRow[] {
    return (this.#s.children.all(hash) as Row[]).map(rowToHeader);
  }

  /** The valid header with the most total work, the first stored among equals. */
  bestValid(): HeaderRow | undefined {
    const r = this.#s.bestValid.get() as Row | undefined;
    return r === undefined ? undefined : rowToHeader(r);
  }

  /** The valid, linked header with the most total work, the first stored among equals. */
  bestCandidate(): HeaderRow | undefined {
    const r = this.#s.bestCandidate.get() as Row | undefined;
    return r === undefined ? undefined : rowToHeader(r);
  }

  // ---------------------------------------------------------------- blocks

  block(hash: Hash): Uint8Array | undefined {
    const v = (this.#s.getBlock.get(hash) as Row | undefined)?.bytes;
    if (v !== undefined && !(v instanceof Uint8Array)) corrupt('block bytes');
    return v;
  }

  putBlock(hash: Hash, bytes: Uint8Array): void {
    this.#s.putBlock.run(hash, bytes);
  }

  // ---------------------------------------------------------------- chain indexes

  chainAt(index: ChainIndex, height: number): Hash | undefined {
    const v = ((index === 'best' ? this.#s.bestAt : this.#s.validAt).get(height) as Row | undefined)?.hash;
    return v === undefined ? undefined : hashOf(v, `${index}_chain hash`);
  }

  setChainAt(index: ChainIndex, height: number, hash: Hash): void {
    (index === 'best' ? this.#s.setBestAt : this.#s.setValidAt).run(height, hash);
  }

  /** Deletes the entries above `height`. */
  truncateChain(index: ChainIndex, height: number): void {
    (index === 'best' ? this.#s.truncateBest : this.#s.truncateValid).run(height);
  }

  /** Replaces the validated index by the best one's entries up to `height`. */
  resetValidFromBest(height: number): void {
    this.#s.clearValid.run();
    this.#s.copyBestToValid.run(height);
  }

  // ---------------------------------------------------------------- accounts

  account(id: Hash): Account | undefined {
    const r = this.#s.getAccount.get(id) as unknown[] | undefined;
    return r === undefined ? undefined : rowToAccount(r)[1];
  }

  putAccount(id: Hash, a: Account): void {
    this.#s.putAccount.run(id, a.balance, a.nonce);
  }

  deleteAccount(id: Hash): void {
    this.#s.deleteAccount.run(id);
  }

  /** Accounts of bucket `b`, sorted by id. */
  bucketAccounts(b: number): (readonly [Hash, Account])[] {
    const [lo, hi] = BUCKET_BOUNDS[b]!;
    return (this.#s.bucketAccounts.all(lo, hi) as unknown as unknown[][]).map(rowToAccount);
  }

  /** Every account, sorted by id. */
  *accounts(): Generator<readonly [Hash, Account]> {
    for (const r of this.#s.allAccounts.iterate() as Iterable<unknown>) yield rowToAccount(r as unknown[]);
  }

  countAccounts(): number {
    return Number((this.#s.countAccounts.get() as Row).n);
  }

  clearAccounts(): void {
    this.#s.clearAccounts.run();
  }

  // ---------------------------------------------------------------- buckets

  /** The 256 stored bucket hashes. */
  buckets(): Hash[] {
    const rows = this.#s.getBuckets.all() as Row[];
    if (rows.length !== BUCKETS) corrupt(`${rows.length} bucket hashes`);
    return rows.map((r, i) => (r.bucket === i ? hashOf(r.hash, 'bucket hash') : corrupt('bucket numbering')));
  }

  putBucket(b: number, hash: Hash): void {
    this.#s.putBucket.run(b, hash);
  }

  // ---------------------------------------------------------------- undo

  undo(hash: Hash): Uint8Array | undefined {
    const v = (this.#s.getUndo.get(hash) as Row | undefined)?.bytes;
    if (v !== undefined && !(v instanceof Uint8Array)) corrupt('undo bytes');
    return v;
  }

  putUndo(hash: Hash, bytes: Uint8Array): void {
    this.#s.putUndo.run(hash, bytes);
  }

  deleteUndo(hash: Hash): void {
    this.#s.deleteUndo.run(hash);
  }

  clearUndo(): void {
    this.#s.clearUndo.run();
  }
}
