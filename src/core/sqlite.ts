/**
 * What every SQLite store of pqnet shares (DESIGN.md, Principle 7): mapping
 * `node:sqlite` errors to STORE_* reasons, and the WAL journal with
 * `synchronous=NORMAL` (a committed write survives `kill -9`).
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { isPqnetError, PqnetError } from './errors.ts';

/** Primary SQLite result codes (`errcode & 0xff`) that get their own reason. */
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/** A `node:sqlite` failure as a STORE_* error: busy or locked, corrupt or not a database, else `fallback`. */
export function toStoreError(e: unknown, fallback: 'STORE_OPEN_FAILED' | 'STORE_IO'): PqnetError {
  if (isPqnetError(e)) return e;
  const errcode = (e as { errcode?: unknown } | null)?.errcode;
  const primary = typeof errcode === 'number' ? errcode & 0xff : undefined;
  const code = primary === SQLITE_BUSY || primary === SQLITE_LOCKED ? 'STORE_LOCKED'
    : primary === SQLITE_CORRUPT || primary === SQLITE_NOTADB ? 'STORE_CORRUPT'
    : fallback;
  return new PqnetError(code, e instanceof Error ? e.message : String(e), { cause: e });
}

/** Switch `db` to the WAL journal with `synchronous=NORMAL`; STORE_OPEN_FAILED if WAL is unavailable. */
export function useWal(db: DatabaseSync): void {
  const { journal_mode: mode } = db.prepare('PRAGMA journal_mode = WAL').get() as Record<string, unknown>;
  if (mode !== 'wal') throw new PqnetError('STORE_OPEN_FAILED', `journal_mode is ${String(mode)}, WAL unavailable`);
  db.exec('PRAGMA synchronous = NORMAL');
}

/** Every statement of `sql`, prepared. One that does not prepare means the file's tables are not those of `schema`: STORE_CORRUPT. */
export function prepareAll<K extends string>(db: DatabaseSync, sql: Readonly<Record<K, string>>, schema: string): Record<K, StatementSync> {
  const out: Partial<Record<K, StatementSync>> = {};
  try {
    for (const [name, text] of Object.entries(sql) as [K, string][]) out[name] = db.prepare(text);
  } catch (e) {
    throw new PqnetError('STORE_CORRUPT', `schema does not match ${schema}`, { cause: e });
  }
  return out as Record<K, StatementSync>;
}

/** `fn` in one IMMEDIATE transaction on `db`: committed if it returns, rolled back if it throws. */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const out = fn();
    db.exec('COMMIT');
    return out;
  } catch (e) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/** `fn` on a store's open database (`db` undefined: CLOSED, naming the store), with SQLite failures as STORE_IO. */
export function storeIo<T>(db: DatabaseSync | undefined, store: string, fn: (db: DatabaseSync) => T): T {
  if (db === undefined) throw new PqnetError('CLOSED', store);
  try {
    return fn(db);
  } catch (e) {
    throw toStoreError(e, 'STORE_IO');
  }
}
