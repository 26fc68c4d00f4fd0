/**
 * The node's HTTP API (src/rpc/server.ts) over real HTTP (global fetch) in
 * front of real nodes on loopback TCP: the reads describe the node and its
 * peers, the actions need the bearer token, bad bodies, paths and methods get
 * the documented 4xx, and ban / unban / disconnect / connect act on the node.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { isPqnetError } from '../../src/core/errors.ts';
import { createNodeMetrics, type NodeMetrics } from '../../src/node/metrics.ts';
import type { Node } from '../../src/node/node.ts';
import { HelloAck, Hello as PeerHello, PEER_PROTOCOL_VERSION } from '../../src/peer/messages.ts';
import { ApiServer, PQNET_VERSION } from '../../src/rpc/server.ts';
import type {
  ApiErrorBody,
  BanResponse,
  BansResponse,
  ConnectResponse,
  HealthResponse,
  InfoResponse,
  PeerJson,
  PeersResponse,
  StatsResponse,
} from '../../src/rpc/types.ts';
import { DEFAULT_POLICY } from '../../src/secure/policy.ts';
import { payload, Vote } from '../mux/_types.ts';
import { CHAIN, testNodes, until, type TestNodes } from '../node/_nodes.ts';
import { testIdentity } from '../secure/_drive.ts';

const TOKEN = 'tok-0123456789abcdefghijklmnopqr';
const MAX_BODY = 1024;
/** A well-formed peer-id of nobody the nodes know. */
const STRANGER = testIdentity('stranger').peerId.toString();

interface Fixture {
  readonly t: TestNodes;
  readonly a: Node;
  readonly b: Node;
  readonly api: ApiServer;
  readonly addrA: string;
}

/** Nodes A and B (B dialled A, both active), both knowing `Vote`, and an API on A. */
async function withApi(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const t = testNodes();
  let api: ApiServer | undefined;
  let metrics: NodeMetrics | undefined;
  try {
    const a = t.make('a');
    const b = t.make('b');
    for (const n of [a, b]) n.register(Vote);
    metrics = createNodeMetrics(a, { defaultMetrics: false });
    await a.start();
    await b.start();
    api = await ApiServer.start({ node: a, metrics: metrics.registry, host: '127.0.0.1', port: 0, token: TOKEN, maxBodyBytes: MAX_BODY });
    const addrA = a.listenAddresses[0]!;
    await b.connect(addrA);
    await until(() => a.peer(b.peerId)?.state === 'active', 'A to see B active');
    await fn({ t, a, b, api, addrA });
  } finally {
    await api?.close();
    metrics?.close();
    await t.cleanup();
  }
}

interface Reply<T> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
  readonly text: string;
}

interface CallOptions {
  readonly method?: string;
  /** A raw body; objects go through `json`. */
  readonly body?: string | ReadableStream<Uint8Array>;
  readonly json?: unknown;
  /** Content-Type; null for none. Default application/json when there is a body. */
  readonly type?: string | null;
  /** Bearer token; null for no Authorization header. Default: the right one. */
  readonly token?: string | null;
  readonly authorization?: string;
}

async function call<T = unknown>(api: ApiServer, path: string, o: CallOptions = {}): Promise<Reply<T>> {
  const headers: Record<string, string> = {};
  const body = o.json !== undefined ? JSON.stringify(o.json) : o.body;
  const type = o.type === undefined ? (body === undefined ? null : 'application/json') : o.type;
  if (type !== null) headers['content-type'] = type;
  const token = o.token === undefined ? TOKEN : o.token;
  if (o.authorization !== undefined) headers['authorization'] = o.authorization;
  else if (token !== null) headers['authorization'] = `Bearer ${token}`;
  const init: RequestInit = { method: o.method ?? (body === undefined ? 'GET' : 'POST'), headers, signal: AbortSignal.timeout(10_000) };
  if (body !== undefined) {
    init.body = body;
    if (typeof body !== 'string') init.duplex = 'half';
  }
  const res = await fetch(`${api.url}${path}`, init);
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json') && text !== '' ? (JSON.parse(text) as T) : (undefined as T);
  return { status: res.status, headers: res.headers, body: json, text };
}

const get = <T>(api: ApiServer, path: string): Promise<Reply<T>> => call<T>(api, path, { token: null });
const post = <T>(api: ApiServer, path: string, json: unknown, o: CallOptions = {}): Promise<Reply<T>> => call<T>(api, path, { ...o, json });

/** A non-2xx reply with the documented error body; returns its message. */
function isError(r: Reply<unknown>, status: number, code: string): string {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  const e = (r.body as ApiErrorBody).error;
  assert.equal(e.code, code, r.text);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  return e.message;
}

async function peersOf(api: ApiServer): Promise<PeerJson[]> {
  const r = await get<PeersResponse>(api, '/p2p/peers');
  assert.equal(r.status, 200, r.text);
  return [...r.body.peers];
}

function count(m: Readonly<Record<string, number>>, name: string): number {
  return m[name] ?? 0;
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test('reads: /health, /p2p/info, /p2p/peers and /p2p/stats describe the node, its peer and the messages exchanged', async () => {
  await withApi(async ({ a, b, api }) => {
    assert.match(api.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(api.url, `http://${api.address}`);

    const health = await get<HealthResponse>(api, '/health');
    assert.equal(health.status, 200, health.text);
    assert.equal(health.headers.get('cache-control'), 'no-store');
    assert.equal(health.body.status, 'ok');
    assert.equal(health.body.peerId, a.peerId);
    assert.equal(health.body.peers['active'], 1);
    assert.equal(health.body.inbound, 1);
    assert.equal(health.body.outbound, 0);
    assert.deepEqual(health.body.listening, a.listenAddresses);
    assert.equal(health.body.bans, 0);
    // HEAD: the same status and headers, no body.
    const head = await call(api, '/health', { method: 'HEAD', token: null });
    assert.equal(head.status, 200);
    assert.equal(head.text, '');

    const info = await get<InfoResponse>(api, '/p2p/info');
    assert.equal(info.status, 200, info.text);
    assert.equal(info.body.peerId, a.peerId);
    assert.equal(info.body.identityAlg, 'ml-dsa-65');
    assert.equal(info.body.chainId, CHAIN);
    assert.equal(info.body.agent, 'test/a');
    assert.equal(info.body.version, PQNET_VERSION);
    assert.equal(info.body.peerProtocolVersion, PEER_PROTOCOL_VERSION);
    assert.deepEqual(info.body.listen, a.listenAddresses);
    assert.deepEqual(info.body.announce, a.listenAddresses);
    assert.deepEqual(info.body.algorithms, { kem: [...DEFAULT_POLICY.kem], aead: [...DEFAULT_POLICY.aead], sig: [...DEFAULT_POLICY.sig] });
    assert.match(info.body.policyRoot, /^[0-9a-f]{64}$/);
    assert.equal(info.body.policyRoot, Buffer.from(a.policy.root).toString('hex'));
    assert.equal(info.body.provider, a.providerName);
    assert.ok(Number.isFinite(Date.parse(info.body.startedAt)), info.body.startedAt);

    // B as A sees it: inbound, active, the negotiated algorithms, traffic, HELLO both ways.
    const [pb, ...others] = await peersOf(api);
    assert.equal(others.length, 0);
    assert.ok(pb !== undefined);
    assert.equal(pb.peerId, b.peerId);
    assert.equal(pb.state, 'active');
    assert.equal(pb.direction, 'inbound');
    assert.equal(pb.host, '127.0.0.1');
    assert.equal(pb.agent, 'test/b');
    assert.deepEqual(pb.listenAddresses, b.listenAddresses);
    assert.ok(pb.handshake !== null);
    assert.equal(pb.handshake.kem, 'x25519-ml-kem-768');
    assert.equal(pb.handshake.sig, 'ml-dsa-65');
    assert.ok((DEFAULT_POLICY.aead as readonly string[]).includes(pb.handshake.aead), pb.handshake.aead);
    // The same session seen from B.
    const pa = b.peer(a.peerId)!;
    assert.equal(pa.kem, pb.handshake.kem);
    assert.equal(pa.aead, pb.handshake.aead);
    assert.ok(Number.isFinite(pb.handshake.ms));
    assert.ok(pb.bytesIn > 0, `bytesIn ${pb.bytesIn}`);
    assert.ok(pb.bytesOut > 0, `bytesOut ${pb.bytesOut}`);
    // HELLO and HelloAck once each way, by their registry names.
    assert.equal(PeerHello.name, 'hello');
    assert.equal(HelloAck.name, 'hello-ack');
    for (const dir of ['in', 'out'] as const) {
      assert.equal(count(pb.messages[dir], 'hello'), 1, `${dir}: ${JSON.stringify(pb.messages)}`);
      assert.equal(count(pb.messages[dir], 'hello-ack'), 1, `${dir}: ${JSON.stringify(pb.messages)}`);
      assert.equal(count(pb.messages[dir], 'vote'), 0);
    }
    const stats0 = await get<StatsResponse>(api, '/p2p/stats');
    assert.equal(stats0.status, 200, stats0.text);
    assert.equal(stats0.body.handshakes.completed, 1);
    assert.deepEqual(stats0.body.handshakes.failed, {});
    assert.equal(count(stats0.body.messages.in, 'hello'), 1);
    assert.equal(count(stats0.body.messages.out, 'hello-ack'), 1);

    // Three votes B -> A and two A -> B.
    for (let i = 0; i < 3; i++) await b.send(a.peerId, Vote, [payload(20 + i)]);
    for (let i = 0; i < 2; i++) await a.send(b.peerId, Vote, [payload(30 + i)]);
    await until(() => count(a.messageCounts(b.peerId)?.in ?? {}, 'vote') === 3 && count(b.messageCounts(a.peerId)?.in ?? {}, 'vote') === 2, 'the votes to arrive');

    const [pb2] = await peersOf(api);
    assert.ok(pb2 !== undefined);
    assert.equal(count(pb2.messages.in, 'vote') - count(pb.messages.in, 'vote'), 3, JSON.stringify(pb2.messages));
    assert.equal(count(pb2.messages.out, 'vote') - count(pb.messages.out, 'vote'), 2, JSON.stringify(pb2.messages));
    // HELLO is not repeated.
    assert.equal(count(pb2.messages.in, 'hello'), 1);
    assert.equal(count(pb2.messages.out, 'hello'), 1);
    assert.ok(pb2.bytesIn > pb.bytesIn);
    assert.ok(pb2.bytesOut > pb.bytesOut);

    const stats = await get<StatsResponse>(api, '/p2p/stats');
    assert.equal(stats.status, 200, stats.text);
    assert.equal(count(stats.body.messages.in, 'vote') - count(stats0.body.messages.in, 'vote'), 3, JSON.stringify(stats.body.messages));
    assert.equal(count(stats.body.messages.out, 'vote') - count(stats0.body.messages.out, 'vote'), 2, JSON.stringify(stats.body.messages));
    assert.ok(stats.body.bytes.in > stats0.body.bytes.in);
    assert.ok(stats.body.bytes.out > stats0.body.bytes.out);
    assert.equal(stats.body.peers.byState['active'], 1);
    assert.equal(stats.body.peers.inbound, 1);
    assert.equal(stats.body.bans, 0);

    const bans = await get<BansResponse>(api, '/p2p/bans');
    assert.equal(bans.status, 200, bans.text);
    assert.deepEqual(bans.body.bans, []);

    const metrics = await get<undefined>(api, '/metrics');
    assert.equal(metrics.status, 200, metrics.text);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    assert.ok(metrics.text.includes('p2p_peers{state="active",direction="inbound"} 1'), metrics.text);
    assert.ok(metrics.text.includes('p2p_msgs_total{dir="in",type="vote"} 3'), metrics.text);
  });
});

test('auth: actions need the bearer token; reads do not', async () => {
  await withApi(async ({ a, b, api }) => {
    const target = { peerId: b.peerId };
    const none = await post(api, '/p2p/disconnect', target, { token: null });
    assert.match(isError(none, 401, 'UNAUTHORIZED'), /Bearer/);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="pqnet"');

    const wrong = await post(api, '/p2p/disconnect', target, { token: `${TOKEN.slice(0, -1)}x` });
    isError(wrong, 401, 'UNAUTHORIZED');
    assert.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="pqnet"');
    isError(await post(api, '/p2p/disconnect', target, { token: TOKEN.slice(0, 16) }), 401, 'UNAUTHORIZED');
    isError(await post(api, '/p2p/disconnect', target, { token: `${TOKEN}x` }), 401, 'UNAUTHORIZED');
    isError(await post(api, '/p2p/disconnect', target, { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` }), 401, 'UNAUTHORIZED');
    isError(await post(api, '/p2p/disconnect', target, { authorization: 'Bearer' }), 401, 'UNAUTHORIZED');
    // Unauthorized before the body is looked at: no 415 for a bad body without the token.
    isError(await call(api, '/p2p/ban', { body: 'not json', type: 'text/plain', token: null }), 401, 'UNAUTHORIZED');
    // Nothing happened.
    assert.equal(a.peer(b.peerId)?.state, 'active');
    assert.deepEqual(a.bans(), []);

    // The right token, any case of the scheme: the action runs.
    isError(await post(api, '/p2p/disconnect', { peerId: STRANGER }, { authorization: `bearer ${TOKEN}` }), 404, 'PEER_NOT_FOUND');
    const ok = await post<{ disconnected: true }>(api, '/p2p/disconnect', target);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { disconnected: true });
    await until(() => a.peers().length === 0, 'B gone');

    // Reads are open.
    for (const path of ['/health', '/p2p/info', '/p2p/peers', '/p2p/bans', '/p2p/stats', '/metrics']) assert.equal((await get(api, path)).status, 200, path);
  });
});

test('bodies, paths and methods: 415, 400, 413, 404 and 405 with the error body; the node is left alone', async () => {
  await withApi(async ({ a, b, api }) => {
    const target = { peerId: b.peerId };
    assert.match(isError(await call(api, '/p2p/ban', { body: JSON.stringify(target), type: 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE'), /application\/json/);
    isError(await call(api, '/p2p/ban', { body: JSON.stringify(target), type: null }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    isError(await call(api, '/p2p/ban', { body: JSON.stringify(target), type: 'application/jsonx' }), 415, 'UNSUPPORTED_MEDIA_TYPE');

    assert.match(isError(await call(api, '/p2p/ban', { body: '{"peerId":' }), 400, 'BAD_REQUEST'), /not JSON/);
    isError(await call(api, '/p2p/ban', { body: '' }), 400, 'BAD_REQUEST');
    isError(await post(api, '/p2p/ban', [b.peerId]), 400, 'BAD_REQUEST');
    isError(await post(api, '/p2p/ban', 'just a string'), 400, 'BAD_REQUEST');

    assert.match(isError(await post(api, '/p2p/ban', { ...target, forever: true }), 400, 'BAD_REQUEST'), /forever/);
    assert.match(isError(await post(api, '/p2p/disconnect', { peerId: b.peerId, reason: 'x' }), 400, 'BAD_REQUEST'), /reason/);
    assert.match(isError(await post(api, '/p2p/connect', { address: 'tcp://127.0.0.1:1' }), 400, 'BAD_REQUEST'), /address|addr/);
    assert.match(isError(await post(api, '/p2p/ban', { peerId: b.peerId, address: '127.0.0.1' }), 400, 'BAD_REQUEST'), /exactly one of peerId and address/);
    assert.match(isError(await post(api, '/p2p/ban', {}), 400, 'BAD_REQUEST'), /exactly one of peerId and address/);
    assert.match(isError(await post(api, '/p2p/unban', { peerId: b.peerId, address: '127.0.0.1' }), 400, 'BAD_REQUEST'), /exactly one/);
    assert.match(isError(await post(api, '/p2p/ban', { ...target, durationMs: 0 }), 400, 'BAD_REQUEST'), /durationMs/);
    assert.match(isError(await post(api, '/p2p/ban', { ...target, durationMs: 1.5 }), 400, 'BAD_REQUEST'), /durationMs/);
    assert.match(isError(await post(api, '/p2p/ban', { ...target, durationMs: '60000' }), 400, 'BAD_REQUEST'), /durationMs/);
    assert.match(isError(await post(api, '/p2p/disconnect', { peerId: 7 }), 400, 'BAD_REQUEST'), /peerId/);
    // Well-formed JSON naming something that is not a peer-id or an address: the ban list's INVALID_ARGUMENT, as a 400.
    isError(await post(api, '/p2p/ban', { peerId: 'not-a-peer-id' }), 400, 'INVALID_ARGUMENT');
    isError(await post(api, '/p2p/ban', { address: '300.1.2.3' }), 400, 'INVALID_ARGUMENT');

    // Over maxBodyBytes: declared (Content-Length) and streamed (chunked, no length).
    const big = JSON.stringify({ ...target, note: 'x'.repeat(MAX_BODY) });
    assert.ok(Buffer.byteLength(big) > MAX_BODY);
    assert.match(isError(await call(api, '/p2p/ban', { body: big }), 413, 'BODY_TOO_LARGE'), /1024/);
    const chunk = new TextEncoder().encode(' '.repeat(400));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 4) c.enqueue(chunk);
        else c.close();
      },
    });
    isError(await call(api, '/p2p/ban', { body: stream }), 413, 'BODY_TOO_LARGE');
    // Just under the cap is read (and then judged on its fields).
    const fits = JSON.stringify({ ...target, note: 'x'.repeat(201) });
    assert.ok(Buffer.byteLength(fits) <= MAX_BODY);
    assert.match(isError(await call(api, '/p2p/ban', { body: fits }), 400, 'BAD_REQUEST'), /note/);

    assert.match(isError(await get(api, '/p2p/nope'), 404, 'NOT_FOUND'), /\/p2p\/nope/);
    isError(await get(api, '/'), 404, 'NOT_FOUND');
    isError(await post(api, '/p2p/banish', target), 404, 'NOT_FOUND');

    const m1 = await get(api, '/p2p/ban');
    isError(m1, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(m1.headers.get('allow'), 'POST');
    const m2 = await post(api, '/health', {});
    isError(m2, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(m2.headers.get('allow'), 'GET');
    const m3 = await call(api, '/p2p/peers', { method: 'DELETE' });
    isError(m3, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(m3.headers.get('allow'), 'GET');
    const m4 = await call(api, '/metrics', { method: 'PUT', body: '{}' });
    isError(m4, 405, 'METHOD_NOT_ALLOWED');
    assert.equal(m4.headers.get('allow'), 'GET');
    // A query string does not change the route.
    assert.equal((await get<HealthResponse>(api, '/health?verbose=1')).status, 200);

    // None of it touched the node, and the server still answers.
    assert.equal(a.peer(b.peerId)?.state, 'active');
    assert.deepEqual(a.bans(), []);
    assert.equal((await get<HealthResponse>(api, '/health')).body.status, 'ok');
  });
});

test('ban and unban: a banned peer is disconnected and refused until unbanned; unbanning what is not banned is 404', async () => {
  await withApi(async ({ a, b, api, addrA }) => {
    const ban = await post<BanResponse>(api, '/p2p/ban', { peerId: b.peerId, note: 'api test' });
    assert.equal(ban.status, 200, ban.text);
    assert.equal(ban.body.ban.kind, 'peer');
    assert.equal(ban.body.ban.target, b.peerId);
    assert.equal(ban.body.ban.reason, 'OPERATOR_BAN');
    assert.equal(ban.body.ban.note, 'api test');
    assert.equal(ban.body.ban.offenses, 1);
    assert.ok(Date.parse(ban.body.ban.expiresAt) > Date.parse(ban.body.ban.createdAt));

    await until(() => a.peers().length === 0 && b.peers().length === 0, 'B disconnected');
    assert.ok(!(await peersOf(api)).some((p) => p.peerId === b.peerId && p.state === 'active'));
    const bans = await get<BansResponse>(api, '/p2p/bans');
    assert.deepEqual(
      bans.body.bans.map((x) => [x.kind, x.target, x.reason, x.note]),
      [['peer', b.peerId, 'OPERATOR_BAN', 'api test']],
    );
    assert.equal((await get<HealthResponse>(api, '/health')).body.bans, 1);

    // B comes back: the handshake authenticates it, and A refuses it before HELLO.
    const refused = await b.connect(addrA).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isPqnetError(refused), String(refused));
    assert.equal(refused.code, 'REMOTE_CLOSED');
    assert.equal(refused.details?.['remoteReason'], 'PEER_BANNED');
    await until(() => a.peers().length === 0, 'the refused connection gone');

    const unban = await post<{ unbanned: true }>(api, '/p2p/unban', { peerId: b.peerId });
    assert.equal(unban.status, 200, unban.text);
    assert.deepEqual(unban.body, { unbanned: true });
    assert.deepEqual((await get<BansResponse>(api, '/p2p/bans')).body.bans, []);
    const back = await b.connect(addrA);
    assert.equal(back.state, 'active');
    await until(() => a.peer(b.peerId)?.state === 'active', 'A to see B again');
    assert.ok((await peersOf(api)).some((p) => p.peerId === b.peerId && p.state === 'active'));

    assert.match(isError(await post(api, '/p2p/unban', { peerId: b.peerId }), 404, 'BAN_NOT_FOUND'), new RegExp(b.peerId));
    isError(await post(api, '/p2p/unban', { peerId: STRANGER }), 404, 'BAN_NOT_FOUND');
    isError(await post(api, '/p2p/unban', { address: '10.1.2.3' }), 404, 'BAN_NOT_FOUND');

    // An address ban with a duration: it catches B by its host.
    const addrBan = await post<BanResponse>(api, '/p2p/ban', { address: '127.0.0.1', durationMs: 60_000 });
    assert.equal(addrBan.status, 200, addrBan.text);
    assert.equal(addrBan.body.ban.kind, 'address');
    assert.equal(addrBan.body.ban.target, '127.0.0.1');
    assert.equal(Date.parse(addrBan.body.ban.expiresAt) - Date.parse(addrBan.body.ban.createdAt), 60_000);
    await until(() => a.peers().length === 0 && b.peers().length === 0, 'B disconnected by the address ban');
    await assert.rejects(b.connect(addrA));
    assert.equal((await post(api, '/p2p/unban', { address: '127.0.0.1' })).status, 200);
    assert.deepEqual(a.bans(), []);
  });
});

test('disconnect and connect: a connected peer goes away, unknown ones are 404; dial failures are 502, bad addresses 400, a live node 200', async () => {
  await withApi(async ({ t, a, b, api }) => {
    const bye = await post<{ disconnected: true }>(api, '/p2p/disconnect', { peerId: b.peerId });
    assert.equal(bye.status, 200, bye.text);
    await until(() => a.peers().length === 0 && b.peers().length === 0, 'B gone');
    assert.deepEqual(await peersOf(api), []);
    const stats = await get<StatsResponse>(api, '/p2p/stats');
    assert.equal(count(stats.body.disconnects, 'OPERATOR_DISCONNECT'), 1, JSON.stringify(stats.body.disconnects));
    isError(await post(api, '/p2p/disconnect', { peerId: b.peerId }), 404, 'PEER_NOT_FOUND');
    isError(await post(api, '/p2p/disconnect', { peerId: STRANGER }), 404, 'PEER_NOT_FOUND');

    const port = await closedPort();
    assert.match(isError(await post(api, '/p2p/connect', { addr: `tcp://127.0.0.1:${port}` }), 502, 'DIAL_FAILED'), new RegExp(`127\\.0\\.0\\.1:${port}`));
    isError(await post(api, '/p2p/connect', { addr: 'nonsense' }), 400, 'ADDRESS_INVALID');
    isError(await post(api, '/p2p/connect', { addr: 'tcp://127.0.0.1:99999' }), 400, 'ADDRESS_INVALID');
    // B answers, but it is not who the caller expected: the remote's fault, 502.
    isError(await post(api, '/p2p/connect', { addr: b.listenAddresses[0]!, peerId: STRANGER }), 502, 'HS_PEER_ID_MISMATCH');
    await until(() => a.peers().length === 0, 'the failed dial gone');

    const c = t.make('c');
    await c.start();
    const conn = await post<ConnectResponse>(api, '/p2p/connect', { addr: c.listenAddresses[0]! });
    assert.equal(conn.status, 200, conn.text);
    assert.equal(conn.body.peer.state, 'active');
    assert.equal(conn.body.peer.peerId, c.peerId);
    assert.equal(conn.body.peer.direction, 'outbound');
    assert.equal(conn.body.peer.address, c.listenAddresses[0]);
    assert.equal(conn.body.peer.agent, 'test/c');
    assert.equal(conn.body.peer.handshake?.kem, 'x25519-ml-kem-768');
    assert.equal(conn.body.peer.handshake.sig, 'ml-dsa-65');
    // With the right expected peer-id: the connection it has.
    const again = await post<ConnectResponse>(api, '/p2p/connect', { addr: c.listenAddresses[0]!, peerId: c.peerId });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.peer.peerId, c.peerId);
    const peers = await peersOf(api);
    assert.deepEqual(
      peers.map((p) => [p.peerId, p.state, p.direction]),
      [[c.peerId, 'active', 'outbound']],
    );
    const hs = (await get<StatsResponse>(api, '/p2p/stats')).body.handshakes;
    assert.equal(count(hs.failed, 'HS_PEER_ID_MISMATCH'), 1, JSON.stringify(hs));
  });
});

/** A raw GET with our own Host header and request target (fetch sets both itself). */
async function rawGet(api: ApiServer, target: string, host: string): Promise<{ status: number; body: { error?: { code: string } } }> {
  const [hostname, port] = api.address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port: Number(port), path: target, headers: { host }, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { error?: { code: string } } }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

test('a loopback API serves only requests addressed to an IP or localhost (DNS rebinding); an unparseable target is 400', async () => {
  await withApi(async ({ api }) => {
    const port = api.address.split(':')[1]!;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '127.0.0.1']) {
      assert.equal((await rawGet(api, '/health', host)).status, 200, host);
    }
    for (const host of [`evil.example:${port}`, 'localhost.evil.example', `127.0.0.1.nip.io:${port}`]) {
      const r = await rawGet(api, '/p2p/peers', host);
      assert.deepEqual([r.status, r.body.error?.code], [403, 'FORBIDDEN_HOST'], host);
    }
    const bad = await rawGet(api, '//', `127.0.0.1:${port}`);
    assert.deepEqual([bad.status, bad.body.error?.code], [400, 'BAD_REQUEST']);
  });
});

test('/health answers 503 "stopped" once the node is stopped; the server keeps answering', async () => {
  await withApi(async ({ a, api }) => {
    assert.equal((await get<HealthResponse>(api, '/health')).status, 200);
    await a.stop();
    const h = await get<HealthResponse>(api, '/health');
    assert.equal(h.status, 503, h.text);
    assert.equal(h.body.status, 'stopped');
    assert.equal(h.body.peerId, a.peerId);
    assert.equal(h.body.peers['active'], 0);
    assert.deepEqual(h.body.listening, []);
    assert.equal((await get<InfoResponse>(api, '/p2p/info')).status, 200);
    assert.deepEqual(await peersOf(api), []);
    assert.equal((await get(api, '/metrics')).status, 200);
  });
});

// A malformed expected peer-id used to be parsed after the peer slot was opened, leaving a peer stuck in
// `connecting` that blocked later dials to that address (PEER_DUPLICATE "already dialling").
test(
  'connect with a malformed peerId is a 400 and leaves nothing behind',
  async () => {
    await withApi(async ({ b, api }) => {
      const addrB = b.listenAddresses[0]!;
      isError(await post(api, '/p2p/connect', { addr: addrB, peerId: 'not-a-peer-id' }), 400, 'BAD_PEER_ID');
      assert.deepEqual(
        (await peersOf(api)).map((p) => [p.peerId, p.state]),
        [[b.peerId, 'active']],
      );
      const conn = await post<ConnectResponse>(api, '/p2p/connect', { addr: addrB, peerId: b.peerId });
      assert.equal(conn.status, 200, conn.text);
    });
  },
);
