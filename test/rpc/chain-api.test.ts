/**
 * The chain part of the API through the real node service (`startNodeService`
 * with a devchain in a temp data directory): `/sync/status`, `/health`'s
 * `sync`, and `POST /chain/publish` with its token, bodies and refusals; a
 * node without sync answers 404 NO_SYNC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/node/config.ts';
import { createLogger } from '../../src/node/log.ts';
import { startNodeService, type NodeService } from '../../src/node/service.ts';
import type { ApiErrorBody, HealthResponse, PublishResponse, SyncStatusResponse } from '../../src/rpc/types.ts';

const TOKEN = 'tok-0123456789abcdefghijklmnopqr';

async function withService(extra: Record<string, unknown>, fn: (s: NodeService, url: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pqnet-chain-api-'));
  let service: NodeService | undefined;
  try {
    const config = loadConfig({
      env: {},
      homeDir: dir,
      flags: { values: { data_dir: dir, listen: ['tcp://127.0.0.1:0'], api: { listen: '127.0.0.1:0', token: TOKEN }, ...extra }, describe: () => 'test' },
    });
    service = await startNodeService(config, createLogger({ level: 'silent', format: 'json' }));
    await fn(service, service.api!.url);
  } finally {
    await service?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function post(url: string, body: unknown, token: string | null = TOKEN): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${url}/chain/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

test('publish mines blocks and makes transactions on the node\'s chain; /sync/status and /health report them', async () => {
  await withService({}, async (s, url) => {
    const before = (await (await fetch(`${url}/sync/status`)).json()) as SyncStatusResponse;
    assert.equal(before.chain, 'devchain');
    assert.equal(before.progress.tipHeight, 0);
    assert.equal(before.progress.state, 'waiting');

    const blocks = await post(url, { kind: 'blocks', count: 40, txsPerBlock: 3 });
    assert.equal(blocks.status, 200);
    const b = blocks.body as PublishResponse;
    assert.deepEqual([b.kind, b.count, b.tipHeight], ['blocks', 40, 40]);
    assert.equal(s.chain!.tip().height, 40);
    assert.equal(b.tipHash, Buffer.from(s.chain!.tip().hash).toString('hex'));

    const txs = await post(url, { kind: 'txs', count: 25 });
    assert.equal((txs.body as PublishResponse).count, 25);
    assert.equal(s.relay!.mempool.size, 25);
    // A block without txsPerBlock takes the pending transactions.
    await post(url, { kind: 'blocks', count: 1 });
    assert.equal(s.relay!.mempool.size, 0);

    const h = (await (await fetch(`${url}/health`)).json()) as HealthResponse;
    assert.equal(h.sync?.tipHeight, 41);
    const status = (await (await fetch(`${url}/sync/status`)).json()) as SyncStatusResponse & { relay: { mempool: { txs: number } } };
    assert.equal(status.progress.tipHeight, 41);
    assert.equal(status.relay.mempool.txs, 0);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /p2p_sync_height\{kind="tip"\} 41/);
    assert.match(metrics, /p2p_mempool_changes_total\{kind="mined"\} 25/);
  });
});

test('publish: the token is required, bodies are checked, and one publish runs at a time', async () => {
  await withService({}, async (s, url) => {
    assert.equal((await post(url, { kind: 'blocks', count: 1 }, null)).status, 401);
    for (const bad of [{ kind: 'headers', count: 1 }, { kind: 'blocks', count: 0 }, { kind: 'blocks', count: 100_001 }, { kind: 'txs' }, { kind: 'blocks', count: 1, extra: 1 }]) {
      const r = await post(url, bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal((r.body as ApiErrorBody).error.code, 'BAD_REQUEST');
    }
    const [first, second] = await Promise.all([post(url, { kind: 'blocks', count: 200 }), post(url, { kind: 'blocks', count: 1 })]);
    assert.equal(first.status, 200);
    assert.equal(second.status, 400);
    assert.match((second.body as ApiErrorBody).error.message, /already running/);
    assert.equal(s.chain!.tip().height, 200);
  });
});

test('a node without chain sync: /health has sync null, /sync/status and /chain/publish are 404 NO_SYNC', async () => {
  await withService({ sync: { enabled: false } }, async (s, url) => {
    assert.equal(s.chain, undefined);
    assert.equal(((await (await fetch(`${url}/health`)).json()) as HealthResponse).sync, null);
    const status = await fetch(`${url}/sync/status`);
    assert.equal(status.status, 404);
    assert.equal(((await status.json()) as ApiErrorBody).error.code, 'NO_SYNC');
    const r = await post(url, { kind: 'blocks', count: 1 });
    assert.equal(r.status, 404);
  });
});
