/**
 * `PeerStore`: the peer book and the ban list on disk (DESIGN.md, Principle 7),
 * one SQLite file through `node:sqlite`, synchronous.
 *
 * Design choices:
 * - **Durability.** WAL journal with `synchronous=NORMAL`: a committed
 *   transaction survives a crash or `kill -9` of the process at any moment; a
 *   power loss or OS crash may roll back the last few commits (never
 *   corrupt the file). Every write is its own `BEGIN IMMEDIATE … COMMIT`, so a
 *   method that returned has committed, and one that threw has changed nothing.
 * - **Never damage a file we do not understand.** `open` first inspects an
 *   existing file through a read-only connection: not SQLite, another
 *   `user_version`, a version-0 database that already holds tables (someone
 *   else's), or a failing `PRAGMA quick_check` → `STORE_CORRUPT`, and the file is
 *   left byte for byte as it was (a read-write connection could checkpoint a
 *   foreign WAL into it on close). Only then is it opened read-write, switched
 *   to WAL and, if empty, given the schema (`user_version` 1) in one transaction.
 * - **Several connections may share the file** (another process, a second
 *   store in tests): each write waits up to `BUSY_TIMEOUT_MS` for the write
 *   lock, then fails with `STORE_LOCKED`.
 * - **Typed errors.** Busy or locked → `STORE_LOCKED`; corruption found later
 *   → `STORE_CORRUPT`; any other SQLite failure → `STORE_OPEN_FAILED` while
 *   opening, `STORE_IO` afterwards, with the SQLite error as `cause`. Invalid
 *   records are refused before writing (`INVALID_ARGUMENT`), so the store never
 *   writes what it would refuse to read.
 * - **Rows are checked when read.** Tables are `STRICT` (SQLite enforces the
 *   column types); values are checked against the record types (known source,
 *   canonical peer-id text, reason code, counters non-negative safe integers,
 *   times finite and non-negative). A row that fails is skipped, never fatal
 *   and never deleted, and counted once in `stats().skippedRows`.
 * - **Reasons are stored as their wire codes**, which are fixed by the
 *   protocol, rather than as names, which a refactor could rename.
 * - **Times are REAL** (any finite ms value round-trips exactly, e.g. a ban
 *   escalated by a fractional factor); counters are INTEGER, read as bigints and
 *   narrowed, so an out-of-range value in a hand-edited file makes its row
 *   invalid instead of throwing for the whole table.
 */
import { existsSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { PqnetError, reasonFromWire, Reasons, type Reason } from '../core/errors.ts';
import { storeIo, toStoreError, transaction, useWal } from '../core/sqlite.ts';
import { PeerId } from '../secure/identity.ts';
import { normalizeCidr } from './bans.ts';
import type { AddressSource, BanKind, BanRecord, BanStore, PeerBookEntry } from './types.ts';

/** `PRAGMA user_version` of the schema below. */
export const STORE_SCHEMA_VERSION = 1;
/** How long a write waits for another connection's write lock before `STORE_LOCKED`. */
export const BUSY_TIMEOUT_MS = 2_000;

const SCHEMA = `
  CREATE TABLE peers (
    address TEXT PRIMARY KEY NOT NULL,
    peer_id TEXT,
    source TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    last_attempt REAL NOT NULL,
    last_success REAL NOT NULL,
    successes INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    last_failure_reason INTEGER
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE bans (
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    reason INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    offenses INTEGER NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (kind, target)
  ) STRICT, WITHOUT ROWID;
  PRAGMA user_version = ${STORE_SCHEMA_VERSION};
`;

// Exhaustive over the unions: adding a source or kind to types.ts fails to compile here.
const SOURCES = {
  static: true, 'must-connect': true, inbound: true, 'peer-exchange': true, dns: true, mdns: true, kademlia: true, operator: true,
} as const satisfies Record<AddressSource, true>;
const BAN_KINDS = { peer: true, address: true } as const satisfies Record<BanKind, true>;

const PEER_TIMES = ['firstSeen', 'lastSeen', 'lastAttempt', 'lastSuccess'] as const;
const PEER_COUNTERS = ['successes', 'failures', 'consecutiveFailures'] as const;

type Row = Record<string, unknown>;
type Statements = Record<
  'upsertPeer' | 'getPeer' | 'listPeers' | 'deletePeer' | 'countPeers' | 'saveBan' | 'loadBans' | 'deleteBan',
  StatementSync
>;

const isTime = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

function isPeerIdText(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  try {
    return PeerId.parse(v).toString() === v;
  } catch {
    return false;
  }
}

/** An address ban target as `BanList` writes it: a canonical IP or CIDR. */
function isCanonicalCidr(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  try {
    return normalizeCidr(v) === v;
  } catch {
    return false;
  }
}

/** The first invalid field of a peer entry, or undefined if it is valid. */
function peerProblem(e: PeerBookEntry): string | undefined {
  if (!isText(e.address)) return 'address';
  if (e.peerId !== null && !isPeerIdText(e.peerId)) return 'peerId';
  if (!Object.hasOwn(SOURCES, e.source)) return 'source';
  for (const k of PEER_TIMES) if (!isTime(e[k])) return k;
  for (const k of PEER_COUNTERS) if (!isCount(e[k])) return k;
  if (e.lastFailureReason !== null && !Object.hasOwn(Reasons, e.lastFailureReason)) return 'lastFailureReason';
  return undefined;
}

function banProblem(b: BanRecord): string | undefined {
  if (!Object.hasOwn(BAN_KINDS, b.kind)) return 'kind';
  if (b.kind === 'peer' ? !isPeerIdText(b.target) : !isCanonicalCidr(b.target)) return 'target';
  if (!Object.hasOwn(Reasons, b.reason)) return 'reason';
  if (!isTime(b.createdAt)) return 'createdAt';
  if (!isTime(b.expiresAt)) return 'expiresAt';
  if (!isCount(b.offenses) || b.offenses < 1) return 'offenses';
  if (typeof b.note !== 'string') return 'note';
  return undefined;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** A column read as bigint, as a number; NaN (invalid) if not a safe integer. */
const int = (v: unknown): number => (typeof v === 'bigint' && v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : NaN);
/** A REAL column (SQLite returns those as numbers even with bigints on). */
const real = (v: unknown): number => (typeof v === 'number' ? v : NaN);
/** A reason column: its wire code's name, or undefined for an unknown code. */
const reasonOf = (v: unknown): Reason | undefined => reasonFromWire(int(v));

function rowToPeer(r: Row): PeerBookEntry | undefined {
  const lastFailureReason = r.last_failure_reason === null ? null : reasonOf(r.last_failure_reason);
  if (lastFailureReason === undefined) return undefined;
  const entry = {
    address: r.address as string,
    peerId: r.peer_id as string | null,
    source: r.source as AddressSource,
    firstSeen: real(r.first_seen),
    lastSeen: real(r.last_seen),
    lastAttempt: real(r.last_attempt),
    lastSuccess: real(r.last_success),
    successes: int(r.successes),
    failures: int(r.failures),
    consecutiveFailures: int(r.consecutive_failures),
    lastFailureReason,
  };
  return peerProblem(entry) === undefined ? entry : undefined;
}

function rowToBan(r: Row): BanRecord | undefined {
  const reason = reasonOf(r.reason);
  if (reason === undefined) return undefined;
  const ban = {
    kind: r.kind as BanKind,
    target: r.target as string,
    reason,
    createdAt: real(r.created_at),
    expiresAt: real(r.expires_at),
    offenses: int(r.offenses),
    note: r.note as string,
  };
  return banProblem(ban) === undefined ? ban : undefined;
}

/**
 * Whether the database is a store of ours ('current'), empty ('fresh'); anything
 * else throws `STORE_CORRUPT`. Reads only.
 */
function schemaState(db: DatabaseSync): 'fresh' | 'current' {
  const version = (db.prepare('PRAGMA user_version').get() as Row).user_version;
  if (version === STORE_SCHEMA_VERSION) return 'current';
  if (version !== 0) throw new PqnetError('STORE_CORRUPT', `schema version ${String(version)}, expected ${STORE_SCHEMA_VERSION}`);
  const { n } = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as Row;
  if (n !== 0) throw new PqnetError('STORE_CORRUPT', 'the database holds tables but is not a pqnet store');
  return 'fresh';
}

/** Checks an existing file through a read-only connection, so a file refused stays untouched. */
function inspect(path: string): void {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true, timeout: BUSY_TIMEOUT_MS });
  } catch (e) {
    throw toStoreError(e, 'STORE_OPEN_FAILED');
  }
  try {
    schemaState(db);
    const rows = db.prepare('PRAGMA quick_check').all() as Row[];
    if (rows.length !== 1 || rows[0]!.quick_check !== 'ok') {
      throw new PqnetError('STORE_CORRUPT', `quick_check: ${rows.map((r) => String(r.quick_check)).join('; ').slice(0, 500)}`);
    }
  } catch (e) {
    throw toStoreError(e, 'STORE_OPEN_FAILED');
  } finally {
    db.close();
  }
}

function createSchemaIfFresh(db: DatabaseSync): void {
  if (schemaState(db) === 'current') return; // no write lock needed
  transaction(db, () => {
    // Checked again under the write lock: another process may have created it meanwhile.
    if (schemaState(db) === 'fresh') db.exec(SCHEMA);
  });
}

export interface PeerStoreStats {
  /** Distinct rows skipped as invalid since the store was opened (they stay in the file). */
  readonly skippedRows: number;
}

export class PeerStore implements BanStore {
  #db: DatabaseSync | undefined;
  readonly #skipped = new Set<string>();
  readonly #s: Statements;

  /**
   * Opens the store at `path`, creating the file if it does not exist.
   * Throws `STORE_CORRUPT` (file left untouched), `STORE_OPEN_FAILED` or `STORE_LOCKED`.
   */
  static open(path: string): PeerStore {
    if (existsSync(path)) inspect(path);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: BUSY_TIMEOUT_MS }); // `timeout` is PRAGMA busy_timeout
    } catch (e) {
      throw toStoreError(e, 'STORE_OPEN_FAILED');
    }
    try {
      useWal(db);
      db.exec('PRAGMA foreign_keys = ON');
      createSchemaIfFresh(db);
      return new PeerStore(db);
    } catch (e) {
      db.close();
      throw toStoreError(e, 'STORE_OPEN_FAILED');
    }
  }

  private constructor(db: DatabaseSync) {
    const read = (sql: string): StatementSync => {
      const s = db.prepare(sql);
      s.setReadBigInts(true);
      return s;
    };
    let s: Statements;
    try {
      s = {
        upsertPeer: db.prepare(`
          INSERT INTO peers (address, peer_id, source, first_seen, last_seen, last_attempt, last_success,
                             successes, failures, consecutive_failures, last_failure_reason)
          VALUES ($address, $peerId, $source, $firstSeen, $lastSeen, $lastAttempt, $lastSuccess,
                  $successes, $failures, $consecutiveFailures, $lastFailureReason)
          ON CONFLICT (address) DO UPDATE SET
            peer_id = excluded.peer_id, source = excluded.source, first_seen = excluded.first_seen,
            last_seen = excluded.last_seen, last_attempt = excluded.last_attempt, last_success = excluded.last_success,
            successes = excluded.successes, failures = excluded.failures,
            consecutive_failures = excluded.consecutive_failures, last_failure_reason = excluded.last_failure_reason`),
        getPeer: read('SELECT * FROM peers WHERE address = ?'),
        listPeers: read('SELECT * FROM peers ORDER BY address'),
        deletePeer: db.prepare('DELETE FROM peers WHERE address = ?'),
        countPeers: read('SELECT count(*) AS n FROM peers'),
        saveBan: db.prepare(`
          INSERT INTO bans (kind, target, reason, created_at, expires_at, offenses, note)
          VALUES ($kind, $target, $reason, $createdAt, $expiresAt, $offenses, $note)
          ON CONFLICT (kind, target) DO UPDATE SET
            reason = excluded.reason, created_at = excluded.created_at, expires_at = excluded.expires_at,
            offenses = excluded.offenses, note = excluded.note`),
        loadBans: read('SELECT * FROM bans ORDER BY kind, target'),
        deleteBan: db.prepare('DELETE FROM bans WHERE kind = ? AND target = ?'),
      };
    } catch (e) {
      // user_version says 1 but the tables do not match what this code expects.
      throw new PqnetError('STORE_CORRUPT', `schema does not match version ${STORE_SCHEMA_VERSION}`, { cause: e });
    }
    this.#db = db;
    this.#s = s;
  }

  upsertPeer(entry: PeerBookEntry): void {
    const bad = peerProblem(entry);
    if (bad !== undefined) throw new PqnetError('INVALID_ARGUMENT', `peer entry: invalid ${bad}`);
    const reason = entry.lastFailureReason;
    this.#write(() => this.#s.upsertPeer.run({
      address: entry.address,
      peerId: entry.peerId,
      source: entry.source,
      firstSeen: entry.firstSeen,
      lastSeen: entry.lastSeen,
      lastAttempt: entry.lastAttempt,
      lastSuccess: entry.lastSuccess,
      successes: entry.successes,
      failures: entry.failures,
      consecutiveFailures: entry.consecutiveFailures,
      lastFailureReason: reason === null ? null : Reasons[reason].wire,
    }));
  }

  getPeer(address: string): PeerBookEntry | undefined {
    const row = this.#read(() => this.#s.getPeer.get(address) as Row | undefined);
    return row === undefined ? undefined : this.#checked(rowToPeer, row, `peers:${address}`);
  }

  /** Every valid entry, ordered by address. */
  listPeers(): PeerBookEntry[] {
    const out: PeerBookEntry[] = [];
    for (const row of this.#read(() => this.#s.listPeers.all() as Row[])) {
      const entry = this.#checked(rowToPeer, row, `peers:${String(row.address)}`);
      if (entry !== undefined) out.push(entry);
    }
    return out;
  }

  deletePeer(address: string): void {
    this.#write(() => this.#s.deletePeer.run(address));
  }

  /** Deletes all of `addresses` in one transaction. */
  deletePeers(addresses: readonly string[]): void {
    if (addresses.length === 0) return;
    this.#write(() => {
      for (const a of addresses) this.#s.deletePeer.run(a);
    });
  }

  /** Rows in the peers table, including any `listPeers` skips as invalid. */
  countPeers(): number {
    return int(this.#read(() => (this.#s.countPeers.get() as Row).n));
  }

  /** Every valid ban, expired ones included (lifting them is the ban list's job). */
  loadBans(): BanRecord[] {
    const out: BanRecord[] = [];
    for (const row of this.#read(() => this.#s.loadBans.all() as Row[])) {
      const ban = this.#checked(rowToBan, row, `bans:${String(row.kind)}:${String(row.target)}`);
      if (ban !== undefined) out.push(ban);
    }
    return out;
  }

  /** Inserts or replaces the ban on `(kind, target)`. */
  saveBan(ban: BanRecord): void {
    const bad = banProblem(ban);
    if (bad !== undefined) throw new PqnetError('INVALID_ARGUMENT', `ban record: invalid ${bad}`);
    this.#write(() => this.#s.saveBan.run({
      kind: ban.kind,
      target: ban.target,
      reason: Reasons[ban.reason].wire,
      createdAt: ban.createdAt,
      expiresAt: ban.expiresAt,
      offenses: ban.offenses,
      note: ban.note,
    }));
  }

  deleteBan(kind: BanKind, target: string): void {
    this.#write(() => this.#s.deleteBan.run(kind, target));
  }

  stats(): PeerStoreStats {
    return { skippedRows: this.#skipped.size };
  }

  /** Closes the file. Idempotent; every other method then throws `CLOSED`. */
  close(): void {
    const db = this.#db;
    this.#db = undefined;
    db?.close();
  }

  #checked<T>(parse: (r: Row) => T | undefined, row: Row, key: string): T | undefined {
    const value = parse(row);
    if (value === undefined) this.#skipped.add(key);
    return value;
  }

  #read<T>(fn: () => T): T {
    return storeIo(this.#db, 'peer store', fn);
  }

  #write(fn: () => void): void {
    storeIo(this.#db, 'peer store', (db) => transaction(db, fn));
  }
}
