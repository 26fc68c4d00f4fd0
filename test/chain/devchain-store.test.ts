import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { fromHex } from '../../src/core/bytes.ts';
import { hex } from '../../src/chain/adapter.ts';
import { Devchain } from '../../src/chain/devchain/index.ts';
import { PeerStore } from '../../src/peer/store.ts';
import { code, TEST_OPTIONS, TEST_PARAMS, tempDir } from './_devchain.ts';

const WRITER = fileURLToPath(new URL('./_devchain-writer.ts', import.meta.url));
const CHILD_DEADLINE_MS = 45_000;

let tmp: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  tmp = await tempDir('pqnet-devchain-store-');
});
after(async () => {
  await tmp.cleanup();
});

test('a file made with other params, another SQLite file or not SQLite at all is refused and left as it was', () => {
  const file = tmp.file('params');
  const a = Devchain.open(file, TEST_PARAMS, TEST_OPTIONS);
  a.mineChain(3);
  a.close();
  const bytes = readFileSync(file);
  for (const other of [{ ...TEST_PARAMS, chainId: 99 }, { ...TEST_PARAMS, genesisAccounts: 201 }, { ...TEST_PARAMS, maxTxsPerBlock: 10 }]) {
    assert.throws(() => Devchain.open(file, other, TEST_OPTIONS), code('STORE_CORRUPT', /other devchain parameters/));
  }
  assert.deepEqual(readFileSync(file), bytes);
  // maxFutureMs is a local rule, not part of the fingerprint.
  const again = Devchain.open(file, { ...TEST_PARAMS, maxFutureMs: 1_000 }, TEST_OPTIONS);
  assert.equal(again.tip().height, 3);
  again.close();

  const peers = tmp.file('peers');
  PeerStore.open(peers).close();
  assert.throws(() => Devchain.open(peers, TEST_PARAMS, TEST_OPTIONS), code('STORE_CORRUPT', /not a devchain store/));
  const foreign = tmp.file('foreign');
  const db = new DatabaseSync(foreign);
  db.exec('CREATE TABLE t (x)');
  db.close();
  assert.throws(() => Devchain.open(foreign, TEST_PARAMS, TEST_OPTIONS), code('STORE_CORRUPT', /not a devchain store/));
  const text = tmp.file('text');
  writeFileSync(text, 'hello, this is not a database at all, not even close'.repeat(100));
  assert.throws(() => Devchain.open(text, TEST_PARAMS, TEST_OPTIONS), code('STORE_CORRUPT'));
  assert.equal(readFileSync(text, 'utf8').slice(0, 5), 'hello');
});

test('one owner per file: a second open gets STORE_LOCKED; a closed chain throws CLOSED', () => {
  const file = tmp.file('lock');
  const a = Devchain.open(file, TEST_PARAMS, TEST_OPTIONS);
  try {
    assert.throws(() => Devchain.open(file, TEST_PARAMS, TEST_OPTIONS), code('STORE_LOCKED'));
    assert.equal(a.tip().height, 0, 'the owner is unaffected');
    a.mine({});
  } finally {
    a.close();
  }
  a.close(); // idempotent
  assert.throws(() => a.tip(), code('CLOSED'));
  assert.throws(() => a.header(a.genesis.hash), code('CLOSED'));
  assert.throws(() => a.mine({}), code('CLOSED'));
  const b = Devchain.open(file, TEST_PARAMS, TEST_OPTIONS);
  assert.equal(b.tip().height, 1);
  b.close();
});

interface Run {
  readonly acked: { height: number; hash: string }[];
  readonly signal: NodeJS.Signals | null;
}

/** Starts the writer on `file`, SIGKILLs it once `killAfter` steps were acknowledged. */
async function runAndKill(file: string, killAfter: number): Promise<Run> {
  const child = spawn(process.execPath, [WRITER, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  let killed = false;
  const kill = (): void => {
    if (!killed) killed = child.kill('SIGKILL');
  };
  const guard = setTimeout(kill, CHILD_DEADLINE_MS);
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    out += chunk;
    if (out.split('\n').length - 1 >= killAfter) kill(); // lands anywhere in a later step
  });
  try {
    const [, signal] = await closed;
    const acked = out.split('\n').slice(0, -1).map((line) => {
      const [height, hash] = line.split(' ');
      return { height: Number(height), hash: hash! };
    });
    return { acked, signal };
  } finally {
    clearTimeout(guard);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'close');
    }
  }
}

test('kill -9 while mining and reorganising: the reopened chain is consistent and keeps every acknowledged step', { timeout: 120_000 }, async () => {
  const file = tmp.file('kill');
  let last = 0;
  for (const killAfter of [30, 60, 90]) {
    const run = await runAndKill(file, killAfter);
    assert.equal(run.signal, 'SIGKILL', 'the writer was killed, not exited');
    assert.ok(run.acked.length >= killAfter);
    const final = run.acked.at(-1)!;
    assert.ok(final.height > last, 'the chain grew');
    last = final.height;
    const chain = Devchain.open(file, TEST_PARAMS, TEST_OPTIONS);
    try {
      chain.checkIntegrity();
      assert.ok(chain.tip().height >= final.height, `tip ${chain.tip().height} below the acknowledged ${final.height}`);
      for (const { hash } of run.acked) {
        const h = chain.header(fromHex(hash));
        assert.ok(h !== undefined && h.hasBlock, `acknowledged tip ${hash} stored with its block`);
      }
      assert.equal(hex(chain.bestHeader().hash), hex(chain.tip().hash), 'no body is missing: the best header is the tip');
    } finally {
      chain.close();
    }
  }
});
