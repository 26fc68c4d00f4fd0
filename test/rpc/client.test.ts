// The API client against a canned node:http server (the real server is tested in its own file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { ApiClient, ApiError } from '../../src/rpc/client.ts';
import type { BanJson, HealthResponse, InfoResponse, PeerJson, StatsResponse } from '../../src/rpc/types.ts';
import { makePeer } from './_peer-json.ts';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

type Reply = { status?: number; json?: unknown; text?: string; headers?: Record<string, string>; delayMs?: number } | 'hang';

/** A server that answers each request with `reply(seen)`; closed (with its connections) after `fn`. */
async function withServer(reply: (req: Seen) => Reply, fn: (base: string, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      const r = reply(s);
      if (r === 'hang') return;
      const send = (): void => {
        res.writeHead(r.status ?? 200, { 'content-type': r.text === undefined ? 'application/json' : 'text/plain', ...r.headers });
        res.end(r.text ?? JSON.stringify(r.json));
      };
      if (r.delayMs === undefined) send();
      else setTimeout(send, r.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    await fn(`http://127.0.0.1:${port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an ApiError');
}

const PEER_ID = 'pq1' + 'a'.repeat(52);
const TOKEN = 'secret-token-0123456789';

const peer: PeerJson = makePeer({
  peerId: PEER_ID,
  rttMs: 0.4,
  connectedForMs: 1000,
  bytesIn: 10,
  bytesOut: 20,
  handshake: { kem: 'x25519-ml-kem-768', aead: 'chacha20-poly1305', sig: 'ml-dsa-65', ms: 3 },
});

const ban: BanJson = { kind: 'address', target: '192.0.2.0/24', reason: 'OPERATOR', createdAt: '2030-01-01T00:00:00.000Z', expiresAt: '2030-01-01T01:00:00.000Z', offenses: 1, note: '' };

const info: InfoResponse = {
  peerId: PEER_ID,
  identityAlg: 'ml-dsa-65',
  chainId: 1,
  agent: 'pqnet/0.1',
  version: '0.1.0',
  protocolVersion: 1,
  peerProtocolVersion: 1,
  listen: ['tcp://127.0.0.1:41000'],
  announce: [],
  algorithms: { kem: ['x25519-ml-kem-768'], aead: ['chacha20-poly1305'], sig: ['ml-dsa-65'] },
  policyRoot: 'ab'.repeat(32),
  provider: 'native',
  startedAt: '2030-01-01T00:00:00.000Z',
  uptimeMs: 5000,
};

const health: HealthResponse = {
  status: 'ok',
  peerId: PEER_ID,
  uptimeMs: 1,
  listening: [],
  peers: {},
  inbound: 0,
  outbound: 0,
  handshakesInProgress: 0,
  queuedBytes: 0,
  scores: { greylisted: 0, trusted: 0, lowest: null },
  bans: 0,
  peerBook: 0,
  rejects: {},
  disconnects: {},
  sync: null,
  gossip: null,
};

const stats: StatsResponse = {
  peers: { byState: { active: 1 }, inbound: 0, outbound: 1 },
  bytes: { in: 1, out: 2 },
  messages: { in: {}, out: {} },
  scores: [],
  handshakes: { completed: 1, failed: {} },
  rejects: {},
  disconnects: {},
  offenses: {},
  bans: 0,
  peerBook: 0,
};

const routes: Record<string, unknown> = {
  'GET /health': health,
  'GET /p2p/info': info,
  'GET /p2p/peers': { peers: [peer] },
  'GET /p2p/bans': { bans: [ban] },
  'GET /p2p/stats': stats,
  'POST /p2p/connect': { peer },
  'POST /p2p/disconnect': { disconnected: true },
  'POST /p2p/ban': { ban },
  'POST /p2p/unban': { unbanned: true },
};

function canned(req: Seen): Reply {
  if (req.url === '/metrics') return { text: '# HELP p2p_peers peers\np2p_peers{state="active"} 1\n' };
  const body = routes[`${req.method} ${req.url}`];
  return body === undefined ? { status: 404, json: { error: { code: 'NOT_FOUND', message: 'no such route' } } } : { json: body };
}

test('read-only calls GET their paths, parse the bodies and send no token', async () => {
  await withServer(canned, async (base, seen) => {
    const c = new ApiClient({ base: `${base}/`, token: TOKEN });
    assert.equal(c.base, base);
    assert.deepEqual(await c.health(), health);
    assert.deepEqual(await c.info(), info);
    assert.deepEqual(await c.peers(), { peers: [peer] });
    assert.deepEqual(await c.bans(), { bans: [ban] });
    assert.deepEqual(await c.stats(), stats);
    assert.match(await c.metrics(), /^p2p_peers\{state="active"\} 1$/m);
    assert.deepEqual(
      seen.map((s) => `${s.method} ${s.url}`),
      ['GET /health', 'GET /p2p/info', 'GET /p2p/peers', 'GET /p2p/bans', 'GET /p2p/stats', 'GET /metrics'],
    );
    for (const s of seen) assert.equal(s.headers.authorization, undefined, `${s.url} must not carry the token`);
    assert.equal(seen[1]?.headers.accept, 'application/json');
  });
});

test('operator actions POST JSON with the bearer token', async () => {
  await withServer(canned, async (base, seen) => {
    const c = new ApiClient({ base, token: TOKEN });
    assert.deepEqual(await c.connect({ addr: 'tcp://127.0.0.1:41001', peerId: PEER_ID }), { peer });
    assert.deepEqual(await c.disconnect({ peerId: PEER_ID }), { disconnected: true });
    assert.deepEqual(await c.ban({ address: '192.0.2.0/24', durationMs: 3_600_000, note: 'spam' }), { ban });
    assert.deepEqual(await c.unban({ peerId: PEER_ID }), { unbanned: true });
    assert.deepEqual(
      seen.map((s) => [s.method, s.url, JSON.parse(s.body) as unknown]),
      [
        ['POST', '/p2p/connect', { addr: 'tcp://127.0.0.1:41001', peerId: PEER_ID }],
        ['POST', '/p2p/disconnect', { peerId: PEER_ID }],
        ['POST', '/p2p/ban', { address: '192.0.2.0/24', durationMs: 3_600_000, note: 'spam' }],
        ['POST', '/p2p/unban', { peerId: PEER_ID }],
      ],
    );
    for (const s of seen) {
      assert.equal(s.headers.authorization, `Bearer ${TOKEN}`);
      assert.equal(s.headers['content-type'], 'application/json');
    }
  });
});

test('without a token a POST fails with NO_TOKEN before anything is sent', async () => {
  await withServer(canned, async (base, seen) => {
    const e = await apiError(new ApiClient({ base, tokenFile: '/data/api.token' }).ban({ peerId: PEER_ID }));
    assert.equal(e.code, 'NO_TOKEN');
    assert.equal(e.status, 0);
    assert.match(e.message, /--token/);
    assert.match(e.message, /PQNET_API_TOKEN/);
    assert.match(e.message, /api\.token/);
    assert.match(e.message, /\/data\/api\.token/);
    assert.equal(seen.length, 0);
    const e2 = await apiError(new ApiClient({ base, token: '' }).disconnect({ peerId: PEER_ID }));
    assert.equal(e2.code, 'NO_TOKEN');
    assert.equal(seen.length, 0);
  });
});

test('a closed port is UNREACHABLE, with the cause code and a hint', async () => {
  const port = await closedPort();
  const e = await apiError(new ApiClient({ base: `http://127.0.0.1:${port}` }).info());
  assert.equal(e.code, 'UNREACHABLE');
  assert.equal(e.status, 0);
  assert.equal(e.message, `cannot reach the node API at http://127.0.0.1:${port} (ECONNREFUSED); is "pqnet listen" running?`);
});

test('a port fetch refuses is named as such', async () => {
  const e = await apiError(new ApiClient({ base: 'http://127.0.0.1:6000' }).info());
  assert.equal(e.code, 'UNREACHABLE');
  assert.match(e.message, /port 6000/);
});

test('a node that does not answer in time is a TIMEOUT', async () => {
  await withServer(
    () => 'hang',
    async (base) => {
      const started = performance.now();
      const e = await apiError(new ApiClient({ base, timeoutMs: 150 }).peers());
      assert.equal(e.code, 'TIMEOUT');
      assert.equal(e.status, 0);
      assert.match(e.message, /did not answer GET \/p2p\/peers within 150 ms/);
      assert.ok(performance.now() - started < 2000);
    },
  );
});

test('connect waits at least CONNECT_TIMEOUT_MS, not the shorter default', async () => {
  // /p2p/connect answers after 300 ms: later than timeoutMs, well within 30 s.
  await withServer(
    (req) => (req.url === '/p2p/connect' ? { json: { peer }, delayMs: 300 } : { json: { peers: [] }, delayMs: 300 }),
    async (base) => {
      const c = new ApiClient({ base, token: TOKEN, timeoutMs: 100 });
      assert.deepEqual(await c.connect({ addr: 'tcp://127.0.0.1:41001' }), { peer });
      assert.equal((await apiError(c.peers())).code, 'TIMEOUT');
    },
  );
});

test("the server's error code, status and message are passed on", async () => {
  await withServer(
    (req) =>
      req.url === '/p2p/disconnect'
        ? { status: 404, json: { error: { code: 'NOT_CONNECTED', message: 'no connection to\nthat peer' } } }
        : { status: 401, json: { error: { code: 'UNAUTHORIZED', message: 'bad token' } } },
    async (base) => {
      const c = new ApiClient({ base, token: TOKEN, tokenFile: '/d/api.token' });
      const e = await apiError(c.disconnect({ peerId: PEER_ID }));
      assert.equal(e.status, 404);
      assert.equal(e.code, 'NOT_CONNECTED');
      assert.equal(e.message, 'POST /p2p/disconnect: no connection to that peer (NOT_CONNECTED)');
      const u = await apiError(c.ban({ peerId: PEER_ID }));
      assert.equal(u.status, 401);
      assert.equal(u.code, 'UNAUTHORIZED');
      assert.match(u.message, /bad token \(UNAUTHORIZED\); check the token .*\/d\/api\.token/);
    },
  );
});

test('answers that are not the API are BAD_RESPONSE', async () => {
  const replies: Record<string, Reply> = {
    '/p2p/info': { text: '<html>hello</html>' },
    '/p2p/peers': { json: { nodes: [] } },
    '/p2p/bans': { status: 502, text: 'Bad Gateway' },
    '/p2p/stats': { json: [1, 2] },
    '/metrics': { status: 500, text: 'oops' },
    '/health': { status: 302, text: '', headers: { location: '/elsewhere' } },
  };
  await withServer(
    (req) => replies[req.url] ?? { status: 500, text: '' },
    async (base, seen) => {
      const c = new ApiClient({ base });
      const info = await apiError(c.info());
      assert.deepEqual([info.code, info.status], ['BAD_RESPONSE', 200]);
      assert.match(info.message, /GET \/p2p\/info .*not a JSON object/);
      const peers = await apiError(c.peers());
      assert.deepEqual([peers.code, peers.status], ['BAD_RESPONSE', 200]);
      assert.match(peers.message, /no peers in it/);
      const bans = await apiError(c.bans());
      assert.deepEqual([bans.code, bans.status], ['BAD_RESPONSE', 502]);
      assert.deepEqual((await apiError(c.stats())).code, 'BAD_RESPONSE');
      assert.deepEqual([(await apiError(c.metrics())).status, (await apiError(c.metrics())).code], [500, 'BAD_RESPONSE']);
      // A redirect is not followed.
      const h = await apiError(c.health());
      assert.deepEqual([h.code, h.status], ['BAD_RESPONSE', 302]);
      assert.equal(seen.filter((s) => s.url === '/elsewhere').length, 0);
    },
  );
});

test('a stopped node: /health answers 503 with its snapshot, which is returned', async () => {
  const stopped: HealthResponse = { ...health, status: 'stopped' };
  await withServer(
    () => ({ status: 503, json: stopped }),
    async (base) => {
      assert.deepEqual(await new ApiClient({ base }).health(), stopped);
    },
  );
  await withServer(
    () => ({ status: 503, json: { error: { code: 'STOPPING', message: 'shutting down' } } }),
    async (base) => {
      const e = await apiError(new ApiClient({ base }).health());
      assert.deepEqual([e.status, e.code], [503, 'STOPPING']);
    },
  );
});

test('the constructor refuses a bad base, timeout or token', () => {
  assert.throws(() => new ApiClient({ base: '127.0.0.1:41080' }), /expected http:\/\/HOST:PORT/);
  assert.throws(() => new ApiClient({ base: 'ftp://h:1' }), /expected http:\/\/ or https/);
  assert.throws(() => new ApiClient({ base: 'not a url' }), /not a URL/);
  assert.throws(() => new ApiClient({ base: 'http://h:1', timeoutMs: 0 }), RangeError);
  assert.throws(() => new ApiClient({ base: 'http://h:1', token: 'a b' }), /token/);
  assert.equal(new ApiClient({ base: 'http://[::1]:41080/' }).base, 'http://[::1]:41080');
});
