/**
 * The state-sync progress store: what it keeps across a reopen, what it
 * refuses (foreign or damaged files, chunks of another manifest), a resumed
 * download fetching only what is missing, and `kill -9` in the middle of
 * writing chunks.
 *
 * Run with `state-store-writer <path>` as arguments, this file is the writer
 * child of the kill test instead (it then registers no tests).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import type { StateManifest } from '../../src/chain/adapter.ts';
import { PeerStore } from '../../src/peer/store.ts';
import { manifestId, stateChunkHash } from '../../src/sync/state-messages.ts';
import { StateStore } from '../../src/sync/state-store.ts';
import { StateSync } from '../../src/sync/state.ts';
import { code, headersOf, inTempChains, syncHeaders, tempDir, TEST_OPTIONS, TEST_PARAMS, withChains } from '../chain/_devchain.ts';

const SELF = fileURLToPath(import.meta.url);
const WRITER_CHUNKS = 20_000;
const WRITER_CHUNK_BYTES = 1_000;

/** Chunk `i` of the writer's made-up snapshot: every byte depends on `i`, so a torn or misplaced row shows. */
function writerChunk(i: number): Uint8Array {
  const out = new Uint8Array(WRITER_CHUNK_BYTES);
  for (let k = 0; k < out.length; k++) out[k] = (i * 31 + k * 7) & 0xff;
  new DataView(out.buffer).setUint32(0, i);
  return out;
}

function writerManifest(): StateManifest {
  return {
    height: 5,
    blockHash: new Uint8Array(32).fill(5),
    stateRoot: new Uint8Array(32).fill(6),
    chunkSize: WRITER_CHUNK_BYTES,
    totalBytes: WRITER_CHUNKS * WRITER_CHUNK_BYTES,
    chunkHashes: Array.from({ length: WRITER_CHUNKS }, (_, i) => stateChunkHash(writerChunk(i))),
  };
}

if (process.argv[2] === 'state-store-writer') {
  // The kill test's child: store chunks after the ones already stored, acknowledging each on stdout, until killed (or 30 s).
  const store = StateStore.open(process.argv[3]!);
  const m = writerManifest();
  const id = manifestId(m);
  if (store.manifestId !== id) store.begin(m);
  const start = store.chunkCount();
  const until = Date.now() + 30_000;
  for (let i = start; i < WRITER_CHUNKS && Date.now() < until; i++) {
    store.putChunk(id, i, writerChunk(i));
    process.stdout.write(`${i}\n`);
  }
  store.close();
} else {
  const manifest = (n: number, size = 100): StateManifest => ({
    height: 7,
    blockHash: new Uint8Array(32).fill(1),
    stateRoot: new Uint8Array(32).fill(2),
    chunkSize: size,
    totalBytes: n * size - 10,
    chunkHashes: Array.from({ length: n }, (_, i) => new Uint8Array(32).fill(i)),
  });

  test('a download\'s manifest and chunks survive a reopen; begin replaces them, clear drops them', async () => {
    const dir = await tempDir('pqnet-state-store-');
    try {
      const file = dir.file('s');
      const m = manifest(5);
      const id = manifestId(m);
      let s = StateStore.open(file);
      assert.equal(s.load(), undefined);
      s.begin(m);
      s.putChunk(id, 0, new Uint8Array([1, 2, 3]));
      s.putChunk(id, 3, new Uint8Array([4]));
      s.putChunk(id, 3, new Uint8Array([5, 6])); // written again: replaced
      s.close();
      s = StateStore.open(file);
      const p = s.load()!;
      assert.equal(p.id, id);
      assert.equal(manifestId(p.manifest), id);
      assert.deepEqual([...p.chunks.entries()].map(([i, b]) => [i, [...b]]), [[0, [1, 2, 3]], [3, [5, 6]]]);
      assert.equal(s.chunkCount(), 2);
      // Another manifest: the old chunks go with the old manifest.
      const m2 = manifest(3, 200);
      s.begin(m2);
      assert.equal(s.load()!.chunks.size, 0);
      assert.equal(s.load()!.id, manifestId(m2));
      s.clear();
      assert.equal(s.load(), undefined);
      assert.equal(s.manifestId, undefined);
      s.close();
      assert.throws(() => s.load(), code('CLOSED'));
      s.close(); // idempotent
    } finally {
      await dir.cleanup();
    }
  });

  test('putChunk refuses a chunk of another manifest, or outside it, and writes nothing', async () => {
    const dir = await tempDir('pqnet-state-store-');
    try {
      const s = StateStore.open(dir.file('s'));
      try {
        const m = manifest(4);
        assert.throws(() => s.putChunk(manifestId(m), 0, new Uint8Array(1)), code('INVALID_ARGUMENT'), 'nothing begun');
        s.begin(m);
        assert.throws(() => s.putChunk(manifestId(manifest(5)), 0, new Uint8Array(1)), code('INVALID_ARGUMENT'));
        assert.throws(() => s.putChunk(manifestId(m), 4, new Uint8Array(1)), code('INVALID_ARGUMENT'));
        assert.throws(() => s.putChunk(manifestId(m), -1, new Uint8Array(1)), code('INVALID_ARGUMENT'));
        assert.equal(s.chunkCount(), 0);
      } finally {
        s.close();
      }
    } finally {
      await dir.cleanup();
    }
  });

  test('foreign or damaged files are refused with STORE_CORRUPT and left untouched; a second owner gets STORE_LOCKED', async () => {
    const dir = await tempDir('pqnet-state-store-');
    try {
      const junk = dir.file('junk');
      writeFileSync(junk, Buffer.alloc(4096, 0x5a));
      const foreign = dir.file('foreign');
      const db = new DatabaseSync(foreign);
      db.exec('CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)');
      db.close();
      const peers = dir.file('peers');
      PeerStore.open(peers).close();
      for (const [what, file] of [['not SQLite', junk], ['someone else\'s tables', foreign], ['a peer store', peers]] as const) {
        const before = readFileSync(file);
        assert.throws(() => StateStore.open(file), code('STORE_CORRUPT'), what);
        assert.deepEqual(readFileSync(file), before, `${what}: untouched`);
      }
      await withChains((open) => {
        const chainFile = dir.file('chain');
        open(chainFile).close();
        assert.throws(() => StateStore.open(chainFile), code('STORE_CORRUPT'), 'a devchain file');
      });

      // Our own file with a manifest row that does not decode.
      const bad = dir.file('bad');
      const s = StateStore.open(bad);
      s.begin(manifest(3));
      s.close();
      const raw = new DatabaseSync(bad);
      raw.prepare('UPDATE progress SET manifest = ?').run(new Uint8Array([0x83, 1, 2]));
      raw.close();
      assert.throws(() => StateStore.open(bad), code('STORE_CORRUPT', /manifest/));

      // A chunk row outside the manifest.
      const outside = dir.file('outside');
      const s2 = StateStore.open(outside);
      s2.begin(manifest(3));
      s2.close();
      const raw2 = new DatabaseSync(outside);
      raw2.prepare('INSERT INTO chunks (idx, bytes) VALUES (?, ?)').run(99, new Uint8Array(1));
      raw2.close();
      const s3 = StateStore.open(outside);
      try {
        assert.throws(() => s3.load(), code('STORE_CORRUPT', /outside/));
        assert.throws(() => StateStore.open(outside), code('STORE_LOCKED'));
      } finally {
        s3.close();
      }
    } finally {
      await dir.cleanup();
    }
  });

  test('resume: after a reopen the engine takes the stored chunks and asks only for the missing ones', async () => {
    await inTempChains('pqnet-state-store-', (open, dir) => {
      const params = { ...TEST_PARAMS, genesisAccounts: 1_000 };
      const options = { ...TEST_OPTIONS, stateChunkBytes: 2_048 };
      const a = open(dir.file('a'), params, options);
      a.mineChain(2, { txsPerBlock: 10 });
      const b = open(dir.file('b'), params, options);
      syncHeaders(b, headersOf(a, 1, 2));
      const m = a.stateManifest()!;
      const n = m.chunkHashes.length;
      const file = dir.file('progress');
      // First run: the manifest is chosen and half the chunks are stored.
      let store = StateStore.open(file);
      store.begin(m);
      for (let i = 0; i < n; i += 2) store.putChunk(manifestId(m), i, a.stateChunk(m.stateRoot, i)!);
      store.close();
      // Restart.
      store = StateStore.open(file);
      try {
        const p = store.load()!;
        const engine = new StateSync(b);
        assert.equal(engine.resume(p.manifest, p.chunks, 0), Math.ceil(n / 2));
        engine.addPeer('a');
        const requested: number[] = [];
        let done = false;
        for (let round = 0; round < 100 && !done; round++) {
          for (const x of engine.poll(round)) {
            if (x.type === 'request-manifest') engine.onManifest('a', a.stateManifest(), round);
            if (x.type === 'request-chunk') {
              requested.push(x.index);
              engine.onChunk('a', x.index, a.stateChunk(x.stateRoot, x.index)!, round);
            }
            if (x.type === 'chunk') store.putChunk(x.id, x.index, x.bytes);
            if (x.type === 'apply') {
              b.applyState(x.manifest, x.chunks);
              engine.onApplied(round);
              store.clear();
            }
            if (x.type === 'done') done = true;
          }
        }
        assert.ok(done);
        assert.deepEqual(requested.sort((x, y) => x - y), Array.from({ length: Math.floor(n / 2) }, (_, i) => 2 * i + 1));
        assert.deepEqual(b.tip().hash, a.tip().hash);
        assert.equal(store.load(), undefined, 'progress deleted after applying');
      } finally {
        store.close();
      }
    });
  });

  test('kill -9 while chunks are written loses no acknowledged chunk, twice over', { timeout: 120_000 }, async () => {
    const dir = await tempDir('pqnet-state-store-');
    try {
      const file = dir.file('kill');
      const acked: number[] = [];
      for (const killAfter of [50, 100]) {
        const child = spawn(process.execPath, [SELF, 'state-store-writer', file], { stdio: ['ignore', 'pipe', 'inherit'] });
        const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
        const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
        let out = '';
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (s: string) => {
          out += s;
          if (out.split('\n').length - 1 >= killAfter) child.kill('SIGKILL');
        });
        const [, signal] = await closed;
        clearTimeout(guard);
        assert.equal(signal, 'SIGKILL', 'killed mid-write, not finished');
        const run = out.split('\n').slice(0, -1).map(Number);
        assert.ok(run.length >= killAfter);
        // The writer continues after what was stored (commits whose acknowledgement was still queued for the pipe when the kill came are stored too).
        assert.ok(acked.length === 0 ? run[0] === 0 : run[0]! > acked.at(-1)!, `first chunk ${run[0]} of this run after ${acked.at(-1)}`);
        run.forEach((i, k) => assert.equal(i, run[0]! + k, 'acknowledged chunks are consecutive'));
        acked.push(...run);
        const store = StateStore.open(file); // recovers the WAL
        try {
          const p = store.load()!;
          assert.equal(p.id, manifestId(writerManifest()));
          for (const i of acked) assert.deepEqual(p.chunks.get(i), writerChunk(i), `chunk ${i}`);
          for (const [i, bytes] of p.chunks) assert.deepEqual(bytes, writerChunk(i), `stored chunk ${i} is whole`);
        } finally {
          store.close();
        }
        const check = new DatabaseSync(file, { readOnly: true });
        try {
          assert.equal((check.prepare('PRAGMA quick_check').get() as { quick_check: string }).quick_check, 'ok');
        } finally {
          check.close();
        }
      }
    } finally {
      await dir.cleanup();
    }
  });
}
