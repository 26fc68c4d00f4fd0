/** `pqnet status` and `pqnet publish`: the progress bar, the status text, and the usage errors (no node needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus, progressBar, publishCommand, statusCommand, statusLine } from '../../src/cli/chain-commands.ts';
import { UsageError } from '../../src/cli/client-commands.ts';
import type { SyncStatusResponse } from '../../src/rpc/types.ts';

const status: SyncStatusResponse = {
  chain: 'devchain',
  progress: {
    state: 'blocks', tipHeight: 4_120, tipHash: 'ab'.repeat(32), bestHeaderHeight: 10_000, targetHeight: 10_000, peers: 3,
    headersPerSecond: 0, blocksPerSecond: 1_210.4, blockBytesPerSecond: 254_013, etaSeconds: 5, fraction: 0.412,
    startedAt: '2026-11-21T09:12:03.120Z', startHeight: 0,
  },
  headers: { bestHeight: 10_000 },
  blocks: { blocksInFlight: 256, queuedBlocks: 12, stalls: 1, backPressure: false },
};

test('progressBar: clamped to 0–100%, thirty cells', () => {
  assert.equal(progressBar(0), `[${'-'.repeat(30)}]   0.0%`);
  assert.equal(progressBar(0.5), `[${'#'.repeat(15)}${'-'.repeat(15)}]  50.0%`);
  assert.equal(progressBar(1), `[${'#'.repeat(30)}] 100.0%`);
  assert.equal(progressBar(7), progressBar(1));
  assert.equal(progressBar(Number.NaN), progressBar(0));
});

test('formatStatus and statusLine: state, heights with the bar, rates, ETA, start and the block counters', () => {
  const text = formatStatus(status);
  assert.match(text, /^state:\s+blocks \(3 sync peers, chain devchain\)$/m);
  assert.match(text, /^tip:\s+4,120 \/ 10,000\s+\[#{12}-{18}\]\s+41\.2%$/m);
  assert.match(text, /^rate:\s+1,210\.4 blocks\/s \(248\.1 KiB\/s\), 0 headers\/s$/m);
  assert.match(text, /^eta:\s+5s$/m);
  assert.match(text, /^started:\s+2026-11-21T09:12:03\.120Z at height 0$/m);
  assert.match(text, /^blocks:\s+256 in flight, 12 queued, 1 stalls$/m);
  assert.match(statusLine({ ...status.progress, state: 'synced', tipHeight: 10_000, fraction: 1 }), /^synced {2}10,000\/10,000 \[#{30}\] 100\.0% .* eta synced$/);
  assert.match(formatStatus({ ...status, progress: { ...status.progress, state: 'waiting', etaSeconds: null, peers: 0 } }), /eta:\s+waiting for sync peers/);
});

test('usage errors: what to publish, --count, --txs-per-block, --interval', async () => {
  const usage = (fn: () => Promise<void>, re: RegExp): Promise<void> => assert.rejects(fn, (e: unknown) => e instanceof UsageError && re.test(e.message));
  await usage(() => publishCommand(['coins', '--count', '1']), /expected blocks, headers or txs/);
  await usage(() => publishCommand(['blocks']), /--count N is required/);
  await usage(() => publishCommand(['blocks', '--count', '0']), /--count: expected an integer from 1 to 100000/);
  await usage(() => publishCommand(['blocks', '--count', '1e3']), /--count/);
  await usage(() => publishCommand(['txs', '--count', '5', '--txs-per-block', '2']), /--txs-per-block is for blocks/);
  await usage(() => publishCommand(['blocks', '--count', '5', '--bogus']), /bogus/);
  await usage(() => statusCommand(['--interval', '0']), /--interval/);
});
