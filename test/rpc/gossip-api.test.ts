/**
 * The gossip part of the API through real node services (`startNodeService`
 * in temp data directories, real TCP between them on loopback): the services
 * announce pqnet/gossip/1 and form meshes for their configured topics;
 * `/gossip/status` shows them; `POST /gossip/publish` (token, base64 body)
 * reaches the other node, runs the topic's validator and refuses unknown
 * topics, oversize and duplicate items with typed errors; `/health` reports
 * gossip and a degraded state; a node without gossip announces no gossip and
 * answers 404 NO_GOSSIP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GOSSIP_PROTOCOL } from '../../src/gossip/messages.ts';
import { loadConfig } from '../../src/node/config.ts';
import type { GossipMessage } from '../../src/node/gossip.ts';
import { createLogger } from '../../src/node/log.ts';
import { startNodeService, type NodeService } from '../../src/node/service.ts';
import { SYNC_PROTOCOL } from '../../src/sync/messages.ts';
import { ApiClient, ApiError } from '../../src/rpc/client.ts';
import type { ApiErrorBody, GossipPublishResponse, GossipStatusResponse, GossipTopicJson, HealthResponse, PeersResponse } from '../../src/rpc/types.ts';

const TOKEN = 'tok-0123456789abcdefghijklmnopqr';
const MAX_BODY = 1024;

interface Services {
  readonly started: NodeService[];
  start(extra?: Record<string, unknown>): Promise<NodeService>;
}

/** Services on loopback with a fast heartbeat and no chain sync (unless `extra` says otherwise); all stopped and removed after `fn`. */
async function withServices(fn: (s: Services) => Promise<void>): Promise<void> {
  const started: NodeService[] = [];
  const dirs: string[] = [];
  const services: Services = {
    started,
    async start(extra = {}) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'pqnet-gossip-api-'));
      dirs.push(dir);
      const { gossip, ...rest } = extra as { gossip?: Record<string, unknown> };
      // The chain topics are listed explicitly (joined without sync); `topics: undefined` means the default list.
      const g: Record<string, unknown> = { heartbeat_ms: 50, topics: ['blocks', 'txs', 'votes'], ...gossip };
      for (const k of Object.keys(g)) if (g[k] === undefined) delete g[k];
      const config = loadConfig({
        env: {},
        homeDir: dir,
        flags: {
          values: { data_dir: dir, listen: ['tcp://127.0.0.1:0'], api: { listen: '127.0.0.1:0', token: TOKEN, max_body_bytes: MAX_BODY }, sync: { enabled: false }, gossip: g, ...rest },
          describe: () => 'test',
        },
      });
      const s = await startNodeService(config, createLogger({ level: 'silent', format: 'json' }));
      started.push(s);
      return s;
    },
  };
  try {
    await fn(services);
  } finally {
    for (const s of started) await s.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
}

/** Poll `cond` every 20 ms, at most 250 times. */
async function until(cond: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function getJson<T>(s: NodeService, p: string): Promise<{ status: number; body: T }> {
  const r = await fetch(`${s.api!.url}${p}`);
  return { status: r.status, body: (await r.json()) as T };
}

const status = async (s: NodeService): Promise<GossipStatusResponse> => (await getJson<GossipStatusResponse>(s, '/gossip/status')).body;
const topicOf = (st: GossipStatusResponse, name: string): GossipTopicJson => st.topics.find((t) => t.topic === name)!;

async function publish(s: NodeService, body: unknown, token: string | null = TOKEN): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${s.api!.url}/gossip/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

function isError(r: { status: number; body: unknown }, status: number, code: string): string {
  assert.equal(r.status, status, JSON.stringify(r.body));
  const e = (r.body as ApiErrorBody).error;
  assert.equal(e.code, code, JSON.stringify(r.body));
  return e.message;
}

const b64 = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64');

/** A and B with gossip (B dialled A), both with a mesh on every default topic. */
async function meshed(svc: Services, extra: Record<string, unknown> = {}): Promise<[NodeService, NodeService]> {
  const a = await svc.start(extra);
  const b = await svc.start(extra);
  await b.node.connect(a.node.listenAddresses[0]!);
  await until(async () => {
    const [sa, sb] = [await status(a), await status(b)];
    return ['blocks', 'txs', 'votes'].every((t) => topicOf(sa, t).mesh === 1 && topicOf(sb, t).mesh === 1);
  }, 'meshes on blocks, txs and votes at both nodes');
  return [a, b];
}

test('two services: gossip announced, /gossip/status shows the peer, its meshes, the parameters and the topics', async () => {
  await withServices(async (svc) => {
    const [a, b] = await meshed(svc);
    const peers = (await getJson<PeersResponse>(a, '/p2p/peers')).body.peers;
    assert.deepEqual(peers.map((p) => p.protocols), [[GOSSIP_PROTOCOL]]);
    const st = await status(a);
    assert.equal(st.params['heartbeatMs'], 50);
    assert.equal(st.params['D'], 6);
    assert.equal(st.params['flood'], false);
    assert.deepEqual(st.topics.slice(0, 3).map((t) => [t.topic, t.subscribed]), [['blocks', true], ['txs', true], ['votes', true]]);
    assert.ok(st.topics.some((t) => t.topic === 'headers' && !t.subscribed), 'the other registered topics are listed, not subscribed');
    const txs = topicOf(st, 'txs');
    assert.deepEqual([txs.priority, txs.maxBytes, txs.ratePerSecond, txs.burst, txs.peers, txs.mesh], ['transactions', 128 * 1024, 200, 400, 1, 1]);
    assert.ok(st.control['graft']!.sent >= 1 || st.control['graft']!.received >= 1);
    assert.equal(st.peers.length, 1);
    const p = st.peers[0]!;
    assert.equal(p.peerId, b.node.peerId);
    assert.equal(p.outbound, false);
    assert.deepEqual([...p.topics].sort(), ['blocks', 'txs', 'votes']);
    assert.deepEqual([...p.mesh].sort(), ['blocks', 'txs', 'votes']);
    assert.deepEqual(p.choking, []);
    assert.ok(p.scores.some((x) => x.topic === 'txs' && typeof x.score === 'number'));
    assert.deepEqual(Object.keys(st.cache).sort(), ['mcache', 'seen', 'validating', 'wanted']);
    // /health: both meshes up, so ok.
    await until(async () => (await getJson<HealthResponse>(a, '/health')).body.status === 'ok', 'health ok');
    const h = (await getJson<HealthResponse>(a, '/health')).body;
    assert.deepEqual(h.gossip, { status: 'ok', peers: 1, flood: false, topics: [{ topic: 'blocks', mesh: 1, peers: 1 }, { topic: 'txs', mesh: 1, peers: 1 }, { topic: 'votes', mesh: 1, peers: 1 }], warnings: [] });
    // The client reads the same.
    const viaClient = await new ApiClient({ base: b.api!.url }).gossipStatus();
    assert.equal(viaClient.peers[0]!.peerId, a.node.peerId);
  });
});

test('POST /gossip/publish on A reaches B (status counters and the message event); metrics count it; a repeat is GOSSIP_DUPLICATE', async () => {
  await withServices(async (svc) => {
    const [a, b] = await meshed(svc);
    const got: GossipMessage[] = [];
    b.gossip!.on('message', (m) => got.push(m));
    const payload = Buffer.from('a transaction, as far as gossip knows');
    const r = await publish(a, { topic: 'txs', data: b64(payload) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const res = r.body as GossipPublishResponse;
    assert.equal(res.topic, 'txs');
    assert.equal(res.bytes, payload.length);
    assert.equal(res.peers, 1);
    assert.match(res.id, /^[0-9a-f]{40}$/);
    await until(async () => topicOf(await status(b), 'txs').received['accepted'] === 1, 'B to accept the item');
    assert.equal(got.length, 1);
    assert.deepEqual(Buffer.from(got[0]!.payload), payload);
    assert.equal(Buffer.from(got[0]!.id).toString('hex'), res.id);
    assert.equal(got[0]!.from, a.node.peerId);
    assert.equal(topicOf(await status(a), 'txs').published, 1);
    const metrics = await (await fetch(`${a.api!.url}/metrics`)).text();
    assert.match(metrics, /p2p_gossip_messages_total\{topic="txs",outcome="published"\} 1/);
    assert.match(await (await fetch(`${b.api!.url}/metrics`)).text(), /p2p_gossip_messages_total\{topic="txs",outcome="accepted"\} 1/);
    isError(await publish(a, { topic: 'txs', data: b64(payload) }), 409, 'GOSSIP_DUPLICATE');
    // Through the client too.
    const client = new ApiClient({ base: a.api!.url, token: TOKEN });
    const again = await client.gossipPublish({ topic: 'votes', data: b64('yes') });
    assert.equal(again.peers, 1);
    const dup = await client.gossipPublish({ topic: 'votes', data: b64('yes') }).catch((e: unknown) => e);
    assert.ok(dup instanceof ApiError && dup.status === 409 && dup.code === 'GOSSIP_DUPLICATE', String(dup));
  });
});

test('publish refusals: no token, unknown topic, oversize (topic cap and body cap), bad bodies; nothing is published', async () => {
  await withServices(async (svc) => {
    const a = await svc.start({ gossip: { topics: ['txs', 'tiny'], topic: { tiny: { max_bytes: 8 } } } });
    isError(await publish(a, { topic: 'txs', data: b64('x') }, null), 401, 'UNAUTHORIZED');
    isError(await publish(a, { topic: 'txs', data: b64('x') }, 'wrong-token-0123456789'), 401, 'UNAUTHORIZED');
    const noToken = await new ApiClient({ base: a.api!.url }).gossipPublish({ topic: 'txs', data: b64('x') }).catch((e: unknown) => e);
    assert.ok(noToken instanceof ApiError && noToken.code === 'NO_TOKEN');
    assert.match(isError(await publish(a, { topic: 'nope', data: b64('x') }), 404, 'GOSSIP_UNKNOWN_TOPIC'), /"nope" is not registered \(known: blocks, headers, txs, votes, shares, blobs, peers, tiny\)/);
    // The configured topic exists, is joined, and has its cap.
    const tiny = topicOf(await status(a), 'tiny');
    assert.deepEqual([tiny.subscribed, tiny.maxBytes], [true, 8]);
    assert.equal(topicOf(await status(a), 'blocks').subscribed, false);
    assert.match(isError(await publish(a, { topic: 'tiny', data: b64('123456789') }), 413, 'GOSSIP_OVERSIZE'), /tiny: 9 bytes > 8/);
    assert.equal((await publish(a, { topic: 'tiny', data: b64('12345678') })).status, 200);
    isError(await publish(a, { topic: 'txs', data: b64(new Uint8Array(MAX_BODY)) }), 413, 'BODY_TOO_LARGE');
    for (const bad of [{ topic: 'txs', data: 'not base64!' }, { topic: 'txs', data: 'YQ' }, { topic: 'txs' }, { data: b64('x') }, { topic: '', data: '' }, { topic: 'txs', data: b64('x'), extra: 1 }, { topic: 'txs', data: 5 }]) {
      isError(await publish(a, bad), 400, 'BAD_REQUEST');
    }
    const st = await status(a);
    assert.equal(topicOf(st, 'txs').published, 0);
    assert.equal(topicOf(st, 'tiny').published, 1);
    assert.equal(st.peers.length, 0);
  });
});

test('the topic validator set through the service judges local publishes (reject → GOSSIP_INVALID, ignore → GOSSIP_IGNORED) and items from peers', async () => {
  await withServices(async (svc) => {
    const [a, b] = await meshed(svc);
    const verdict = (p: Uint8Array): 'accept' | 'reject' | 'ignore' => (p[0] === 0 ? 'reject' : p[0] === 1 ? 'ignore' : 'accept');
    const seen: string[] = [];
    a.gossip!.setValidator('txs', (p, from, topic) => {
      seen.push(`${topic} ${from === a.node.peerId ? 'self' : from}`);
      return verdict(p);
    });
    // B's validator (asynchronous) is stricter: it also rejects items starting with 3.
    b.gossip!.setValidator('txs', (p) => Promise.resolve(p[0] === 3 ? 'reject' : verdict(p)));
    isError(await publish(a, { topic: 'txs', data: b64(new Uint8Array([0, 9])) }), 400, 'GOSSIP_INVALID');
    isError(await publish(a, { topic: 'txs', data: b64(new Uint8Array([1, 9])) }), 400, 'GOSSIP_IGNORED');
    assert.deepEqual(seen, ['txs self', 'txs self']);
    assert.equal(topicOf(await status(a), 'txs').published, 0);
    // Accepted by A's validator, published; B's validator judges it as an item from a peer.
    assert.equal((await publish(a, { topic: 'txs', data: b64(new Uint8Array([2, 9])) })).status, 200);
    const calls = seen.length;
    isError(await publish(a, { topic: 'txs', data: b64(new Uint8Array([2, 9])) }), 409, 'GOSSIP_DUPLICATE');
    assert.equal(seen.length, calls, 'a duplicate is refused before the validator (which may act on the item) runs');
    assert.equal((await publish(a, { topic: 'txs', data: b64(new Uint8Array([3, 9])) })).status, 200);
    await until(async () => {
      const r = topicOf(await status(b), 'txs').received;
      return r['accepted'] === 1 && r['rejected'] === 1;
    }, 'B to accept one item and reject the other');
    // A topic without a validator takes anything; B's txs validator judges B's own publishes too.
    assert.equal((await publish(a, { topic: 'votes', data: b64(new Uint8Array([0])) })).status, 200);
    isError(await publish(b, { topic: 'txs', data: b64(new Uint8Array([3, 1])) }), 400, 'GOSSIP_INVALID');
    assert.throws(() => a.gossip!.setValidator('nope', () => 'accept'), (e: Error & { code?: string }) => e.code === 'GOSSIP_UNKNOWN_TOPIC');
  });
});

test('/health: degraded while a subscribed topic has an empty mesh and gossip peers are connected', async () => {
  await withServices(async (svc) => {
    const a = await svc.start();
    const alone = (await getJson<HealthResponse>(a, '/health')).body;
    assert.equal(alone.status, 'ok', 'no gossip peers: nothing to mesh with');
    assert.deepEqual(alone.gossip?.warnings, []);
    // B joins txs only: A's blocks and votes meshes stay empty.
    const b = await svc.start({ gossip: { topics: ['txs'] } });
    await b.node.connect(a.node.listenAddresses[0]!);
    await until(async () => topicOf(await status(a), 'txs').mesh === 1, 'the txs mesh');
    const h = await getJson<HealthResponse>(a, '/health');
    assert.equal(h.status, 200, 'degraded still answers 200');
    assert.equal(h.body.status, 'degraded');
    assert.equal(h.body.gossip?.status, 'degraded');
    assert.deepEqual(h.body.gossip?.warnings, ['topic blocks: empty mesh with 1 gossip peer connected (0 of them subscribed)', 'topic votes: empty mesh with 1 gossip peer connected (0 of them subscribed)']);
    assert.equal((await getJson<HealthResponse>(b, '/health')).body.status, 'ok');
  });
});

test('flood mode: no meshes, items still delivered, and an empty mesh is not degraded', async () => {
  await withServices(async (svc) => {
    const a = await svc.start({ gossip: { flood: true } });
    const b = await svc.start({ gossip: { flood: true } });
    await b.node.connect(a.node.listenAddresses[0]!);
    await until(async () => topicOf(await status(a), 'txs').peers === 1, 'A to see B subscribed to txs');
    const st = await status(a);
    assert.equal(st.params['flood'], true);
    assert.equal(topicOf(st, 'txs').mesh, 0);
    const h = (await getJson<HealthResponse>(a, '/health')).body;
    assert.equal(h.status, 'ok');
    assert.equal(h.gossip?.flood, true);
    assert.equal(((await publish(a, { topic: 'txs', data: b64('flooded') })).body as GossipPublishResponse).peers, 1);
    await until(async () => topicOf(await status(b), 'txs').received['accepted'] === 1, 'B to accept the flooded item');
  });
});

test('gossip disabled: the protocol is not announced, /gossip/* answer 404 NO_GOSSIP, /health has gossip null', async () => {
  await withServices(async (svc) => {
    const on = await svc.start({ sync: { enabled: true } });
    const off = await svc.start({ sync: { enabled: true }, gossip: { enabled: false } });
    assert.equal(off.gossip, undefined);
    assert.equal(off.chainGossip, undefined);
    assert.ok(on.chainGossip !== undefined, 'sync and gossip on: blocks and transactions go through topics');
    assert.deepEqual(on.gossip?.router.meshPeers('blocks'), [], 'the blocks topic is joined by the chain bridge');
    assert.ok(on.gossip?.router.subscribed('blocks') && on.gossip.router.subscribed('txs'));
    // Sync off and the default topics: the chain topics are left out (nothing would validate them).
    const chainless = await svc.start({ gossip: { topics: undefined } });
    assert.deepEqual(['blocks', 'txs', 'votes'].map((t) => chainless.gossip?.router.subscribed(t)), [false, false, true]);
    await off.node.connect(on.node.listenAddresses[0]!);
    await until(() => on.node.peers().some((p) => p.state === 'active'), 'the connection');
    // Sync is announced alone by the node without gossip, both by the other.
    assert.deepEqual(on.node.peers()[0]!.protocols, [SYNC_PROTOCOL]);
    assert.deepEqual(off.node.peers()[0]!.protocols, [SYNC_PROTOCOL, GOSSIP_PROTOCOL]);
    const st = await getJson<ApiErrorBody>(off, '/gossip/status');
    assert.equal(st.status, 404);
    assert.equal(st.body.error.code, 'NO_GOSSIP');
    isError(await publish(off, { topic: 'txs', data: b64('x') }), 404, 'NO_GOSSIP');
    const h = (await getJson<HealthResponse>(off, '/health')).body;
    assert.equal(h.gossip, null);
    assert.equal(h.status, 'ok');
    assert.doesNotMatch(await (await fetch(`${off.api!.url}/metrics`)).text(), /p2p_gossip_/);
    // The gossip node has no gossip peer, so no warning either.
    const onStatus = await status(on);
    assert.equal(onStatus.peers.length, 0);
    assert.equal((await getJson<HealthResponse>(on, '/health')).body.status, 'ok');
    const client = await new ApiClient({ base: off.api!.url }).gossipStatus().catch((e: unknown) => e);
    assert.ok(client instanceof ApiError && client.status === 404 && client.code === 'NO_GOSSIP');
  });
});
