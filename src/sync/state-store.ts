/**
 * `StateStore`: the progress of a state sync on disk (docs/spec/state-sync.md,
 * Persistence), so that a restart continues where the download stopped. One
 * small SQLite file through `node:sqlite`, synchronous, holding the chosen
 * manifest and every chunk verified against it.
 *
 * Design choices (following `peer/store.ts` and `chain/devchain/store.ts`):
 * - **Durability.** WAL journal with `synchronous=NORMAL`: a committed write
 *   survives `kill -9` at any moment. Every write is its own `BEGIN IMMEDIATE
 *   … COMMIT`: `begin` (the manifest replaces any earlier progress and its
 *   chunks, together), `putChunk` (one chunk), `clear`. A method that returned
 *   has committed; one that threw has changed nothing.
 * - **One owner.** The connection takes SQLite's exclusive lock
 *   (`locking_mode=EXCLUSIVE`): a second store on the same file gets
 *   `STORE_LOCKED`.
 * - **Never damage a file we do not understand.** An existing file is first
 *   inspected read-only: not SQLite, another `application_id` or
 *   `user_version`, a version-0 database that already holds tables, or a
 *   stored manifest that does not decode → `STORE_CORRUPT`, the file left as
 *   it was.
 * - **Checked when read.** Tables are `STRICT`; a chunk row whose index is
 *   outside the manifest or whose bytes are not a BLOB is corruption
 *   (`STORE_CORRUPT`). Whether a chunk still hashes to its manifest entry is
 *   the engine's business (`StateSync.resume` drops those that do not and
 *   fetches them again); a chunk's row is replaced when it is written again.
 * - **Only the shape of the manifest is checked here** (the wire schema with
 *   the protocol's ceilings): the engine judges it against its own limits
 *   and the chain when it resumes.
 */
import { existsSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { StateManifest } from '../chain/adapter.ts';
import { PqnetError } from '../core/errors.ts';
import { prepareAll, storeIo, toStoreError, transaction, useWal } from '../core/sqlite.ts';
import { decodeCbor, encodeCbor } from '../wire/cbor.ts';
import {
  chunkCountOf, manifestFromWire, manifestId, manifestSchema, manifestToWire, MAX_STATE_CHUNK_BYTES_LIMIT, MAX_STATE_CHUNKS_LIMIT, maxManifestBytes,
  type StateLimits,
} from './state-messages.ts';

/** `PRAGMA user_version` of the schema below. */
export const STATE_STORE_SCHEMA_VERSION = 1;
/** `PRAGMA application_id`: 'pqss'. Tells a state-sync file from another SQLite file. */
export const STATE_STORE_APPLICATION_ID = 0x70717373;
/** How long opening waits for another connection's lock before `STORE_LOCKED`. */
export const BUSY_TIMEOUT_MS = 2_000;

const SCHEMA = `
  CREATE TABLE progress (
    slot INTEGER PRIMARY KEY CHECK (slot = 0),
    manifest BLOB NOT NULL,
    manifest_id TEXT NOT NULL
  ) STRICT;
  CREATE TABLE chunks (
    idx INTEGER PRIMARY KEY,
    bytes BLOB NOT NULL
  ) STRICT;
  PRAGMA application_id = ${STATE_STORE_APPLICATION_ID};
  PRAGMA user_version = ${STATE_STORE_SCHEMA_VERSION};
`;

/** The widest manifest any limits allow: the store reads what an engine with other limits wrote. */
const CEILING: StateLimits = { maxChunkBytes: MAX_STATE_CHUNK_BYTES_LIMIT, maxChunks: MAX_STATE_CHUNKS_LIMIT, maxTotalBytes: Number.MAX_SAFE_INTEGER };
const MANIFEST_SCHEMA = manifestSchema(CEILING);
const MAX_MANIFEST_BYTES = maxManifestBytes(CEILING);

type Row = Record<string, unknown>;

export interface StoredProgress {
  readonly manifest: StateManifest;
  /** `manifestId(manifest)`. */
  readonly id: string;
  /** Stored chunks by index (not re-hashed here). */
  readonly chunks: Map<number, Uint8Array>;
}

function corrupt(message: string): never {
  throw new PqnetError('STORE_CORRUPT', message);
}

/** The manifest of a progress row, or STORE_CORRUPT. */
function decodeManifest(r: Row): { manifest: StateManifest; id: string } {
  const blob = r.manifest;
  if (!(blob instanceof Uint8Array)) corrupt('stored manifest is not a BLOB');
  let manifest: StateManifest;
  try {
    manifest = manifestFromWire(MANIFEST_SCHEMA.check(decodeCbor(blob, MAX_MANIFEST_BYTES), 'manifest'));
  } catch (e) {
    throw new PqnetError('STORE_CORRUPT', `stored manifest does not decode: ${(e as Error).message}`, { cause: e });
  }
  if (manifest.chunkSize < 1 || manifest.chunkHashes.length !== chunkCountOf(manifest.chunkSize, manifest.totalBytes)) corrupt('stored manifest: chunk count does not match its sizes');
  const id = manifestId(manifest);
  if (r.manifest_id !== id) corrupt('stored manifest id does not match the manifest');
  return { manifest, id };
}

/** Whether the database is a state store of ours ('current') or empty ('fresh'); anything else throws STORE_CORRUPT. Reads only. */
function schemaState(db: DatabaseSync): 'fresh' | 'current' {
  const version = (db.prepare('PRAGMA user_version').get() as Row).user_version;
  const appId = (db.prepare('PRAGMA application_id').get() as Row).application_id;
  if (version === 0 && appId === 0) {
    const { n } = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as Row;
    if (n !== 0) throw new PqnetError('STORE_CORRUPT', 'the database holds tables but is not a state-sync store');
    return 'fresh';
  }
  if (appId !== STATE_STORE_APPLICATION_ID) throw new PqnetError('STORE_CORRUPT', 'not a state-sync store (application_id)');
  if (version !== STATE_STORE_SCHEMA_VERSION) throw new PqnetError('STORE_CORRUPT', `state-sync store schema version ${String(version)}, expected ${STATE_STORE_SCHEMA_VERSION}`);
  return 'current';
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
    if (schemaState(db) === 'current') {
      const r = db.prepare('SELECT manifest, manifest_id FROM progress WHERE slot = 0').get() as Row | undefined;
      if (r !== undefined) decodeManifest(r);
    }
  } catch (e) {
    throw toStoreError(e, 'STORE_OPEN_FAILED');
  } finally {
    db.close();
  }
}

const STATEMENTS = {
  getProgress: 'SELECT manifest, manifest_id FROM progress WHERE slot = 0',
  setProgress: 'INSERT INTO progress (slot, manifest, manifest_id) VALUES (0, ?, ?) ON CONFLICT (slot) DO UPDATE SET manifest = excluded.manifest, manifest_id = excluded.manifest_id',
  clearProgress: 'DELETE FROM progress',
  allChunks: 'SELECT idx, bytes FROM chunks ORDER BY idx',
  countChunks: 'SELECT count(*) AS n FROM chunks',
  putChunk: 'INSERT INTO chunks (idx, bytes) VALUES (?, ?) ON CONFLICT (idx) DO UPDATE SET bytes = excluded.bytes',
  clearChunks: 'DELETE FROM chunks',
} as const;

type Statements = Record<keyof typeof STATEMENTS, StatementSync>;

export class StateStore {
  #db: DatabaseSync | undefined;
  readonly #s: Statements;
  /** The stored manifest's id and chunk count, kept to check `putChunk` without a read. */
  #current: { id: string; chunks: number } | undefined;

  /**
   * Opens the store at `path`, creating it if needed. Throws `STORE_CORRUPT`
   * (file left untouched), `STORE_OPEN_FAILED` or `STORE_LOCKED`.
   */
  static open(path: string): StateStore {
    if (existsSync(path)) inspect(path);
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
      transaction(db, () => {
        if (schemaState(db) === 'fresh') db.exec(SCHEMA);
      });
      return new StateStore(db);
    } catch (e) {
      db.close();
      throw toStoreError(e, 'STORE_OPEN_FAILED');
    }
  }

  private constructor(db: DatabaseSync) {
    this.#s = prepareAll(db, STATEMENTS, `version ${STATE_STORE_SCHEMA_VERSION}`);
    this.#db = db;
    const r = this.#s.getProgress.get() as Row | undefined;
    if (r !== undefined) {
      const { manifest, id } = decodeManifest(r);
      this.#current = { id, chunks: manifest.chunkHashes.length };
    }
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

  /** The stored progress, if a download was begun and not cleared. STORE_CORRUPT for rows this code would not write. */
  load(): StoredProgress | undefined {
    return this.#run(() => {
      const r = this.#s.getProgress.get() as Row | undefined;
      if (r === undefined) return undefined;
      const { manifest, id } = decodeManifest(r);
      const chunks = new Map<number, Uint8Array>();
      for (const row of this.#s.allChunks.iterate() as Iterable<Row>) {
        const { idx, bytes } = row;
        if (typeof idx !== 'number' || !Number.isSafeInteger(idx) || idx < 0 || idx >= manifest.chunkHashes.length) corrupt(`chunk row ${String(idx)} outside the manifest's ${manifest.chunkHashes.length} chunks`);
        if (!(bytes instanceof Uint8Array)) corrupt(`chunk ${idx} is not a BLOB`);
        chunks.set(idx, bytes);
      }
      return { manifest, id, chunks };
    });
  }

  /** Chunks stored for the current manifest. */
  chunkCount(): number {
    return this.#run(() => Number((this.#s.countChunks.get() as Row).n));
  }

  /** The id of the stored manifest, if any. */
  get manifestId(): string | undefined {
    return this.#current?.id;
  }

  /** A new download: `manifest` replaces any stored progress and its chunks, in one transaction. */
  begin(manifest: StateManifest): void {
    const id = manifestId(manifest);
    const encoded = encodeCbor(manifestToWire(manifest));
    this.#write(() => {
      this.#s.clearChunks.run();
      this.#s.setProgress.run(encoded, id);
    });
    this.#current = { id, chunks: manifest.chunkHashes.length };
  }

  /** Stores chunk `index` (verified by the caller) of the manifest `id`; INVALID_ARGUMENT if that is not the stored manifest or the index is outside it. */
  putChunk(id: string, index: number, bytes: Uint8Array): void {
    const cur = this.#current;
    if (cur?.id !== id) throw new PqnetError('INVALID_ARGUMENT', 'chunk of a manifest that is not the stored one');
    if (!Number.isSafeInteger(index) || index < 0 || index >= cur.chunks) throw new PqnetError('INVALID_ARGUMENT', `chunk index ${index} outside [0, ${cur.chunks})`);
    this.#write(() => this.#s.putChunk.run(index, bytes));
  }

  /** Forgets the progress (applied, or abandoned). */
  clear(): void {
    this.#write(() => {
      this.#s.clearChunks.run();
      this.#s.clearProgress.run();
    });
    this.#current = undefined;
  }

  #run<T>(fn: () => T): T {
    return storeIo(this.#db, 'state-sync store', fn);
  }

  #write(fn: () => void): void {
    storeIo(this.#db, 'state-sync store', (db) => transaction(db, fn));
  }
}
