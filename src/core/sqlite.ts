/**
 * What every SQLite store of pqnet shares (DESIGN.md, Principle 7): mapping
 * `node:sqlite` errors to STORE_* reasons, and the WAL journal with
 * `synchronous=NORMAL` (a committed write survives `kill -9`).
 */
import type { DatabaseSync } from 'node:sqlite';
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
