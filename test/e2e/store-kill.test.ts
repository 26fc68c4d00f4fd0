import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { PeerStore } from '../../src/peer/store.ts';
import type { BanRecord } from '../../src/peer/types.ts';
import { writerBan, writerNumber, writerPeer } from './_store-writer.ts';

const WRITER = fileURLToPath(new URL('./_store-writer.ts', import.meta.url));
/** A child is killed after this long whatever happens. */
const CHILD_DEADLINE_MS = 45_000;

interface Run {
  readonly acked: number[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Starts a writer on `file`, SIGKILLs it once `killAfter` writes were acknowledged, and returns every acknowledged N. */
async function runAndKill(file: string, killAfter: number): Promise<Run> {
  const child = spawn(process.execPath, [WRITER, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  let killed = false;
  const kill = (): void => {
    if (!killed) killed = child.kill('SIGKILL');
  };
  const guard = setTimeout(kill, CHILD_DEADLINE_MS);
  let out = '';
  let lines = 0;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    lines += chunk.split('\n').length - 1;
    if (lines >= killAfter) kill(); // the child is mid-loop: the kill lands anywhere in a write
  });
  try {
    // 'close' comes after the pipe drained: lines the child printed before dying are all in `out`.
    const [code, signal] = await closed;
    return { acked: out.split('\n').slice(0, -1).map(Number), code, signal };
  } finally {
    clearTimeout(guard);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'close');
    }
  }
}

function quickCheck(file: string): string {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare('PRAGMA quick_check').all() as { quick_check: string }[]).map((r) => r.quick_check).join('; ');
  } finally {
    db.close();
  }
}

test('kill -9 while writing loses no acknowledged peer or ban, three times over', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pqnet-store-kill-'));
  try {
    const file = path.join(dir, 'peers.db');
    const acked: number[] = [];
    for (const killAfter of [100, 200, 300]) {
      const run = await runAndKill(file, killAfter);
      assert.equal(run.signal, 'SIGKILL', `the writer was killed, not exited (code ${run.code})`);
      assert.ok(run.acked.length >= killAfter, `only ${run.acked.length} writes acknowledged before the kill`);
      run.acked.forEach((n, i) => assert.equal(n, run.acked[0]! + i, 'acknowledged numbers are consecutive'));
      assert.ok(acked.length === 0 || run.acked[0]! > acked.at(-1)!, 'numbering continues after what was stored');
      acked.push(...run.acked);

      const store = PeerStore.open(file); // recovers the WAL; throws on a damaged or unreadable file
      try {
        assert.equal(quickCheck(file), 'ok');
        const peers = new Map(store.listPeers().map((e) => [e.address, e]));
        const bans = new Map(store.loadBans().map((b): [string, BanRecord] => [`${b.kind} ${b.target}`, b]));
        assert.equal(store.stats().skippedRows, 0);
        for (const n of acked) {
          assert.deepEqual(peers.get(writerPeer(n).address), writerPeer(n), `acknowledged peer ${n}`);
          if (n % 10 === 0) {
            const ban = writerBan(n);
            assert.deepEqual(bans.get(`${ban.kind} ${ban.target}`), ban, `acknowledged ban ${n}`);
          }
        }
        // Whatever else is stored (a write committed but not yet printed) is intact too.
        for (const [address, entry] of peers) assert.deepEqual(entry, writerPeer(writerNumber(address)!));
        // (A kill between a peer and its ban may leave that ban out; it was never acknowledged.)
        for (const ban of bans.values()) {
          const n = Number(ban.note.slice('writer ban '.length));
          assert.deepEqual(ban, writerBan(n));
          assert.ok(peers.has(writerPeer(n).address), `ban ${n} without its peer`);
        }
      } finally {
        store.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
