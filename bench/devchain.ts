/**
 * Devchain benchmark: what the reference chain costs the sync engines, beside
 * bare SQLite doing the same writes, measured in the same run.
 *
 *   1. Mining: blocks/s of `mine()` on the tip with 0 and 100 transactions per
 *      block (the transactions are made by `makeTxs` before each block, outside
 *      the timing). Proof of work is ~16 SHA3-256 hashes per block.
 *   2. Headers: a fresh chain takes the empty chain's headers in batches of
 *      2,000 as a sync engine does (decodeHeader + validateHeader each, then
 *      storeHeaders per batch). Baseline: raw SQLite inserts of the same
 *      (hash, bytes) pairs, one transaction per 2,000.
 *   3. Block import: a fresh chain that already stored the headers takes every
 *      block from its stored bytes (decodeBlock + importBlock: checks, state
 *      transition, undo record, indexes; one transaction each). Empty blocks
 *      and 100-transaction blocks. Baseline: raw SQLite inserts of the same
 *      block bytes, one transaction per block.
 *   4. State snapshot of a chain whose genesis holds many accounts: build
 *      (stateManifest: read every account, cut and hash the chunks) and apply
 *      (applyState on a fresh chain: verify chunks and records, recompute the
 *      root, replace the accounts). Baseline for apply: raw SQLite inserts of
 *      the same records in one transaction.
 *
 * Runs take the best of several attempts (fresh files each time). Every file
 * lives in a temporary directory removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { HeaderEntry } from '../src/chain/adapter.ts';
import { Devchain, type DevchainParams } from '../src/chain/devchain/index.ts';
import { emit, emitEnvironment, log, round, type BenchOptions } from './_util.ts';

const T0 = 1_700_000_000_000;
const OPTIONS = { clock: { wallNow: () => T0 + 3_600_000 } };
const PARAMS: Partial<DevchainParams> = { chainId: 11, genesisTimestampMs: T0 };
const HEADER_BATCH = 2_000;

interface Sizes {
  readonly emptyBlocks: number;
  readonly txBlocks: number;
  readonly txsPerBlock: number;
  readonly snapshotAccounts: number;
  readonly runs: number;
}

const FULL: Sizes = { emptyBlocks: 10_000, txBlocks: 300, txsPerBlock: 100, snapshotAccounts: 100_000, runs: 3 };
const QUICK: Sizes = { emptyBlocks: 2_000, txBlocks: 60, txsPerBlock: 100, snapshotAccounts: 20_000, runs: 1 };

function best(runs: number, fn: () => number): number {
  let b = Infinity;
  for (let i = 0; i < runs; i++) b = Math.min(b, fn());
  return b;
}

/** A bare SQLite file with the devchain's settings and one (hash, bytes) table. */
function rawDb(file: string): DatabaseSync {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
  db.exec('CREATE TABLE t (hash BLOB PRIMARY KEY NOT NULL, bytes BLOB NOT NULL) STRICT');
  return db;
}

/** Raw inserts of (hash, bytes) in transactions of `perTx` rows; returns ms. */
function rawInserts(file: string, rows: readonly { readonly hash: Uint8Array; readonly bytes: Uint8Array }[], perTx: number): number {
  const db = rawDb(file);
  try {
    const insert = db.prepare('INSERT INTO t (hash, bytes) VALUES (?, ?)');
    const t = performance.now();
    for (let i = 0; i < rows.length; i += perTx) {
      db.exec('BEGIN IMMEDIATE');
      for (const r of rows.slice(i, i + perTx)) insert.run(r.hash, r.bytes);
      db.exec('COMMIT');
    }
    return performance.now() - t;
  } finally {
    db.close();
  }
}

export async function main(opts: BenchOptions): Promise<void> {
  emitEnvironment('devchain', opts);
  const sizes = opts.quick ? QUICK : FULL;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-bench-devchain-'));
  let n = 0;
  const file = (name: string): string => path.join(dir, `${name}-${n++}.db`);
  try {
    // ---- 1. mining
    log(`devchain: mining ${sizes.emptyBlocks} empty blocks and ${sizes.txBlocks} blocks of ${sizes.txsPerBlock} transactions`);
    const empty = Devchain.open(file('empty'), PARAMS, OPTIONS);
    const full = Devchain.open(file('full'), PARAMS, OPTIONS);
    try {
      let t = performance.now();
      for (let i = 0; i < sizes.emptyBlocks; i++) empty.mine({});
      const emptyMs = performance.now() - t;
      let txMs = 0;
      let makeMs = 0;
      for (let i = 0; i < sizes.txBlocks; i++) {
        t = performance.now();
        const txs = full.makeTxs(sizes.txsPerBlock, i);
        const made = performance.now();
        full.mine({ txs });
        txMs += performance.now() - made;
        makeMs += made - t;
      }
      for (const [txs, blocks, ms] of [[0, sizes.emptyBlocks, emptyMs], [sizes.txsPerBlock, sizes.txBlocks, txMs]] as const) {
        emit({ bench: 'devchain', impl: 'devchain', op: 'mine', txsPerBlock: txs, metric: 'rate', value: round(blocks / (ms / 1000), 1), unit: 'blocks/s', blocks, usPerBlock: round((ms * 1000) / blocks, 1), ms: round(ms, 1) });
      }
      emit({ bench: 'devchain', impl: 'devchain', op: 'makeTxs', metric: 'rate', value: Math.round((sizes.txBlocks * sizes.txsPerBlock) / (makeMs / 1000)), unit: 'txs/s' });

      // ---- 2. headers
      const headers: HeaderEntry[] = [];
      for (let h = 1; h <= sizes.emptyBlocks; h++) headers.push(empty.headerAt(h)!);
      log(`devchain: ${headers.length} headers in batches of ${HEADER_BATCH}, best of ${sizes.runs}`);
      const nowMs = T0 + 3_600_000;
      const headersMs = best(sizes.runs, () => {
        const c = Devchain.open(file('headers'), PARAMS, OPTIONS);
        try {
          const t0 = performance.now();
          let parent: HeaderEntry = c.genesis;
          for (let i = 0; i < headers.length; i += HEADER_BATCH) {
            const batch = headers.slice(i, i + HEADER_BATCH).map((e) => {
              const d = c.decodeHeader(e.bytes);
              c.validateHeader(d, parent, nowMs);
              parent = { ...d, totalWork: parent.totalWork + d.work, hasBlock: false };
              return d;
            });
            c.storeHeaders(batch);
          }
          const ms = performance.now() - t0;
          if (c.bestHeader().height !== headers.length) throw new Error('headers not all stored');
          return ms;
        } finally {
          c.close();
        }
      });
      const rawHeadersMs = best(sizes.runs, () => rawInserts(file('raw-headers'), headers, HEADER_BATCH));
      for (const [impl, ms] of [['devchain', headersMs], ['sqlite-raw', rawHeadersMs]] as const) {
        emit({ bench: 'devchain', impl, op: 'headers', batch: HEADER_BATCH, metric: 'rate', value: Math.round(headers.length / (ms / 1000)), unit: 'headers/s', headers: headers.length, ms: round(ms, 1) });
      }
      emit({ bench: 'devchain', op: 'headers', metric: 'overhead_vs_raw', value: round(headersMs / rawHeadersMs, 2), unit: 'ratio (1 = bare inserts)' });

      // ---- 3. block import
      for (const [label, source, count] of [['empty', empty, sizes.emptyBlocks], [`${sizes.txsPerBlock}tx`, full, sizes.txBlocks]] as const) {
        const entries: HeaderEntry[] = [];
        for (let h = 1; h <= count; h++) entries.push(source.headerAt(h)!);
        const blocks = entries.map((e) => ({ hash: e.hash, bytes: source.block(e.hash)! }));
        const bytes = blocks.reduce((s, b) => s + b.bytes.length, 0);
        log(`devchain: import ${count} ${label} blocks (${round(bytes / 1e6, 2)} MB), best of ${sizes.runs}`);
        const importMs = best(sizes.runs, () => {
          const c = Devchain.open(file('import'), PARAMS, OPTIONS);
          try {
            for (let i = 0; i < entries.length; i += HEADER_BATCH) c.storeHeaders(entries.slice(i, i + HEADER_BATCH).map((e) => c.decodeHeader(e.bytes)));
            const t0 = performance.now();
            for (const b of blocks) c.importBlock(c.decodeBlock(b.bytes));
            const ms = performance.now() - t0;
            if (c.tip().height !== count) throw new Error('blocks not all connected');
            return ms;
          } finally {
            c.close();
          }
        });
        const rawMs = best(sizes.runs, () => rawInserts(file('raw-blocks'), blocks, 1));
        for (const [impl, ms] of [['devchain', importMs], ['sqlite-raw', rawMs]] as const) {
          emit({
            bench: 'devchain', impl, op: 'import', blocks: label, txsPerBlock: label === 'empty' ? 0 : sizes.txsPerBlock, metric: 'rate',
            value: round(count / (ms / 1000), 1), unit: 'blocks/s', mbPerSecond: round(bytes / 1e6 / (ms / 1000), 2), usPerBlock: round((ms * 1000) / count, 1), count, ms: round(ms, 1),
          });
        }
        emit({ bench: 'devchain', op: 'import', blocks: label, metric: 'overhead_vs_raw', value: round(importMs / rawMs, 2), unit: 'ratio (1 = bare inserts)' });
      }
    } finally {
      empty.close();
      full.close();
    }

    // ---- 4. state snapshot
    const params = { ...PARAMS, genesisAccounts: sizes.snapshotAccounts };
    log(`devchain: snapshot of ${sizes.snapshotAccounts} accounts`);
    const t = performance.now();
    const source = Devchain.open(file('snap'), params, OPTIONS);
    const genesisMs = performance.now() - t;
    try {
      source.mineChain(3, { txsPerBlock: 100 });
      let manifest = source.stateManifest()!;
      const buildMs = best(sizes.runs, () => {
        // A new tip each run, so the manifest is built, not served from the cache.
        source.mine({});
        const t0 = performance.now();
        manifest = source.stateManifest()!;
        return performance.now() - t0;
      });
      const chunks = manifest.chunkHashes.map((_, i) => source.stateChunk(manifest.stateRoot, i)!);
      const headers: HeaderEntry[] = [];
      for (let h = 1; h <= manifest.height; h++) headers.push(source.headerAt(h)!);
      const applyMs = best(sizes.runs, () => {
        const c = Devchain.open(file('snap-apply'), params, OPTIONS);
        try {
          c.storeHeaders(headers.map((e) => c.decodeHeader(e.bytes)));
          const t0 = performance.now();
          c.applyState(manifest, chunks);
          const ms = performance.now() - t0;
          if (c.tip().height !== manifest.height) throw new Error('state not applied');
          return ms;
        } finally {
          c.close();
        }
      });
      const all = Buffer.concat(chunks);
      const rawMs = best(sizes.runs, () => {
        const db = new DatabaseSync(file('raw-accounts'));
        try {
          db.exec('PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
          db.exec('CREATE TABLE a (id BLOB PRIMARY KEY NOT NULL, balance INTEGER NOT NULL, nonce INTEGER NOT NULL) STRICT, WITHOUT ROWID');
          const insert = db.prepare('INSERT INTO a (id, balance, nonce) VALUES (?, ?, ?)');
          const t0 = performance.now();
          db.exec('BEGIN IMMEDIATE');
          for (let off = 0; off < all.length; off += 48) insert.run(all.subarray(off, off + 32), all.readBigUInt64BE(off + 32), all.readBigUInt64BE(off + 40));
          db.exec('COMMIT');
          return performance.now() - t0;
        } finally {
          db.close();
        }
      });
      const common = { bench: 'devchain', accounts: sizes.snapshotAccounts, totalBytes: manifest.totalBytes, chunks: manifest.chunkHashes.length, chunkSize: manifest.chunkSize };
      emit({ ...common, impl: 'devchain', op: 'genesis', metric: 'time', value: round(genesisMs, 1), unit: 'ms' });
      emit({ ...common, impl: 'devchain', op: 'snapshot-build', metric: 'time', value: round(buildMs, 1), unit: 'ms', mbPerSecond: round(manifest.totalBytes / 1e6 / (buildMs / 1000), 1) });
      emit({ ...common, impl: 'devchain', op: 'snapshot-apply', metric: 'time', value: round(applyMs, 1), unit: 'ms', mbPerSecond: round(manifest.totalBytes / 1e6 / (applyMs / 1000), 1) });
      emit({ ...common, impl: 'sqlite-raw', op: 'snapshot-apply', metric: 'time', value: round(rawMs, 1), unit: 'ms', mbPerSecond: round(manifest.totalBytes / 1e6 / (rawMs / 1000), 1) });
      emit({ bench: 'devchain', op: 'snapshot-apply', metric: 'overhead_vs_raw', value: round(applyMs / rawMs, 2), unit: 'ratio (1 = bare inserts)' });
    } finally {
      source.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await Promise.resolve();
}
