// `pqnet peer|info|stats`: the pure helpers, and the commands against a canned node:http API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { banTarget, formatAge, formatBytes, formatTable, infoCommand, MAX_DURATION_MS, parseDuration, peerCommand, statsCommand, UsageError } from '../../src/cli/client-commands.ts';
import { ApiError } from '../../src/rpc/client.ts';
import type { BanJson, InfoResponse, PeerJson, StatsResponse } from '../../src/rpc/types.ts';
import { PeerId } from '../../src/secure/identity.ts';
import { makePeer } from '../rpc/_peer-json.ts';

const PEER_A = new PeerId(new Uint8Array(32).fill(1)).toString();
const PEER_B = new PeerId(new Uint8Array(32).fill(2)).toString();
const TOKEN = 'cli-test-token-0123456789';

// ---- Pure helpers ----

test('parseDuration: units, plain seconds, and the values it refuses', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  assert.equal(parseDuration('1w'), 604_800_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('45'), 45_000);
  assert.equal(parseDuration('3650d'), MAX_DURATION_MS);
  for (const bad of ['0', '0s', '0.0001s', '-5m', '', 'abc', '5 x', '1h30m', '5M', 'h', '1e3', '+5s', '3651d', '600w', '99999999999999999999']) {
    assert.throws(() => parseDuration(bad), (e: Error) => e.message.includes(JSON.stringify(bad)), `should refuse ${JSON.stringify(bad)}`);
  }
});

test('banTarget: peer ids, IPs, CIDRs and tcp:// / ws:// addresses; nothing else', () => {
  assert.deepEqual(banTarget(PEER_A), { peerId: PEER_A });
  assert.deepEqual(banTarget('192.0.2.7'), { address: '192.0.2.7' });
  assert.deepEqual(banTarget('192.0.2.7/24'), { address: '192.0.2.0/24' });
  assert.deepEqual(banTarget('2001:DB8::1'), { address: '2001:db8::1' });
  assert.deepEqual(banTarget('2001:db8::/32'), { address: '2001:db8::/32' });
  assert.deepEqual(banTarget('[2001:db8::1]'), { address: '2001:db8::1' });
  assert.deepEqual(banTarget('tcp://192.0.2.7:41000'), { address: '192.0.2.7' });
  assert.deepEqual(banTarget('tcp://[2001:db8::1]:41000'), { address: '2001:db8::1' });
  assert.deepEqual(banTarget('ws://[::ffff:192.0.2.9]:80'), { address: '192.0.2.9' });
  const refused: [string, RegExp][] = [
    [`${PEER_A.slice(0, -1)}`, /not a valid peer id/],
    ['pq1zzzz', /not a valid peer id/],
    ['tcp://example.com:41000', /not a peer id, an IP address/],
    ['udp://192.0.2.7:1', /only tcp:\/\/ and ws:\/\//],
    ['tcp://192.0.2.7', /not an address/],
    ['tcp://2001:db8::1:41000', /not an address/],
    ['192.0.2.256', /not a peer id/],
    ['010.0.0.1', /not a peer id/],
    ['192.0.2.0/33', /not a peer id/],
    ['example.com', /not a peer id/],
    ['', /not a peer id/],
  ];
  for (const [input, why] of refused) assert.throws(() => banTarget(input), why, `should refuse ${JSON.stringify(input)}`);
});

test('formatTable: left-aligned, two spaces apart, no trailing spaces, controls neutralised', () => {
  assert.equal(formatTable(['A', 'LONG-HEADER', 'C'], [['xxxx', 'y', ''], ['z', '', 'w']]), ['A     LONG-HEADER  C', 'xxxx  y', 'z                  w'].join('\n'));
  assert.equal(formatTable(['ONLY'], []), 'ONLY');
  assert.equal(formatTable(['A', 'B'], [['evil\x1b[2J\nrow', 'x']]), ['A             B', 'evil?[2J?row  x'].join('\n'));
  for (const line of formatTable(['A', 'B', 'C'], [['1', '22', '333'], ['4444', '', '']]).split('\n')) assert.equal(line, line.trimEnd());
});

test('formatBytes and formatAge', () => {
  const bytes: [number, string][] = [
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [1024 * 1024 - 1, '1.0 MiB'],
    [12 * 1024 * 1024, '12.0 MiB'],
    [5.5 * 1024 ** 3, '5.5 GiB'],
    [-1, '-'],
    [Number.NaN, '-'],
  ];
  for (const [n, s] of bytes) assert.equal(formatBytes(n), s, `formatBytes(${n})`);
  const ages: [number, string][] = [
    [0, '0s'],
    [999, '0s'],
    [45_000, '45s'],
    [59_999, '59s'],
    [60_000, '1m'],
    [12 * 60_000 + 59_000, '12m'],
    [3 * 3_600_000 + 5 * 60_000 + 30_000, '3h05m'],
    [2 * 86_400_000 + 4 * 3_600_000 + 59 * 60_000, '2d04h'],
    [400 * 86_400_000, '400d00h'],
    [-5, '0s'],
  ];
  for (const [ms, s] of ages) assert.equal(formatAge(ms), s, `formatAge(${ms})`);
});

// ---- Commands against a canned API ----

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: unknown;
}

async function withApi(routes: Record<string, unknown>, fn: (hostPort: string, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: text === '' ? undefined : JSON.parse(text) });
      const body = routes[`${req.method} ${req.url}`];
      res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body ?? { error: { code: 'NOT_FOUND', message: 'no such route' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    await fn(`127.0.0.1:${port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** What `fn` printed with console.log, line by line. */
async function output(fn: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.map(String).join(' '));
  try {
    await fn();
  } finally {
    console.log = log;
  }
  return lines.join('\n');
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-cli-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const peers: PeerJson[] = [
  makePeer({ peerId: PEER_A }),
  makePeer({ peerId: PEER_B, direction: 'inbound', address: 'tcp://[2001:db8::1]:5000', rttMs: null, score: 12.25, agent: null, connectedForMs: 45_000, bytesIn: 0, bytesOut: 10 }),
  makePeer({ peerId: null, state: 'handshaking', address: 'tcp://192.0.2.9:41000', agent: null, handshake: null }),
];

const ban: BanJson = { kind: 'peer', target: PEER_B, reason: 'OPERATOR', createdAt: '2030-01-01T00:00:00.000Z', expiresAt: '2030-01-01T02:00:00.000Z', offenses: 2, note: 'flooding' };

const info: InfoResponse = {
  peerId: PEER_A,
  identityAlg: 'ml-dsa-65',
  chainId: 7,
  agent: 'pqnet/0.1',
  version: '0.1.0',
  protocolVersion: 1,
  peerProtocolVersion: 2,
  listen: ['tcp://127.0.0.1:41000', 'tcp://[::1]:41000'],
  announce: [],
  algorithms: { kem: ['x25519-ml-kem-768', 'ml-kem-1024'], aead: ['chacha20-poly1305'], sig: ['ml-dsa-65', 'ed25519'] },
  policyRoot: 'ab'.repeat(32),
  provider: 'native',
  startedAt: '2030-01-01T00:00:00.000Z',
  uptimeMs: 2 * 86_400_000 + 4 * 3_600_000,
};

const stats: StatsResponse = {
  peers: { byState: { active: 2, handshaking: 1 }, inbound: 1, outbound: 2 },
  bytes: { in: 2048, out: 3 * 1024 * 1024 },
  messages: { in: { ping: 10, block: 3 }, out: { ping: 11, tx: 4 } },
  scores: [{ peerId: PEER_B, score: 12.25, status: 'greylisted' }],
  handshakes: { completed: 5, failed: { HANDSHAKE_TIMEOUT: 2 } },
  rejects: { BANNED: 1, TOO_MANY_PEERS: 4 },
  disconnects: {},
  offenses: { BAD_MESSAGE: 1 },
  bans: 1,
  peerBook: 12,
};

const routes: Record<string, unknown> = {
  'GET /p2p/peers': { peers },
  'GET /p2p/bans': { bans: [ban] },
  'GET /p2p/info': info,
  'GET /p2p/stats': stats,
  'POST /p2p/connect': { peer: peers[0] },
  'POST /p2p/disconnect': { disconnected: true },
  'POST /p2p/ban': { ban },
  'POST /p2p/unban': { unbanned: true },
};

test('peer list: active peers as a table; --all shows every one; --json prints the whole answer', async () => {
  await withApi(routes, async (api, seen) => {
    const table = await output(() => peerCommand(['list', '--api', api]));
    assert.equal(
      table,
      [
        `PEER-ID${' '.repeat(50)}DIR  STATE   ADDRESS                   RTT     SCORE  IN       OUT       UP     AGENT`,
        `${PEER_A}  out  active  tcp://127.0.0.1:41001     0.4 ms  50     1.5 KiB  12.0 MiB  3h05m  pqnet/0.1`,
        `${PEER_B}  in   active  tcp://[2001:db8::1]:5000  -       12.3   0 B      10 B      45s    -`,
      ].join('\n'),
    );
    const all = await output(() => peerCommand(['list', '--all', '--api', api]));
    assert.equal(all.split('\n').length, 4);
    assert.match(all.split('\n')[3] ?? '', /^- {2,}out  handshaking  tcp:\/\/192\.0\.2\.9:41000/);
    const json = await output(() => peerCommand(['list', '--json', '--api', api]));
    assert.deepEqual(JSON.parse(json), { peers });
    assert.ok(json.includes('\n  "peers": ['), 'pretty-printed with two spaces');
    assert.ok(seen.every((s) => s.method === 'GET' && s.url === '/p2p/peers' && s.headers.authorization === undefined));
  });
});

test('peer list: no peers, and no active ones', async () => {
  await withApi({ 'GET /p2p/peers': { peers: [] } }, async (api) => {
    assert.equal(await output(() => peerCommand(['list', '--api', api])), 'no peers');
  });
  await withApi({ 'GET /p2p/peers': { peers: [peers[2]] } }, async (api) => {
    assert.match(await output(() => peerCommand(['list', '--api', api])), /^no active peers \(1 /);
  });
});

test('peer connect, disconnect, ban, unban: the requests they send and what they print', async () => {
  await withApi(routes, async (api, seen) => {
    const common = ['--api', `http://${api}`, '--token', TOKEN];
    assert.equal(
      await output(() => peerCommand(['connect', '--addr', 'tcp://127.0.0.1:41001', '--peer-id', PEER_A, ...common])),
      `connected to ${PEER_A} at tcp://127.0.0.1:41001 (x25519-ml-kem-768, ml-dsa-65, handshake 12 ms)`,
    );
    assert.equal(await output(() => peerCommand(['disconnect', PEER_B, ...common])), `disconnected ${PEER_B}`);
    assert.equal(await output(() => peerCommand(['ban', PEER_B, '--for', '2h', '--note', 'flooding', ...common])), `banned ${PEER_B} until 2030-01-01T02:00:00.000Z (OPERATOR)`);
    assert.equal(await output(() => peerCommand(['ban', 'tcp://[2001:DB8::1]:5000', ...common])), `banned ${PEER_B} until 2030-01-01T02:00:00.000Z (OPERATOR)`);
    assert.equal(await output(() => peerCommand(['unban', '192.0.2.7/24', ...common])), 'unbanned 192.0.2.0/24');
    assert.deepEqual(JSON.parse(await output(() => peerCommand(['unban', PEER_B, '--json', ...common]))), { unbanned: true });
    assert.deepEqual(
      seen.map((s) => [s.method, s.url, s.body]),
      [
        ['POST', '/p2p/connect', { addr: 'tcp://127.0.0.1:41001', peerId: PEER_A }],
        ['POST', '/p2p/disconnect', { peerId: PEER_B }],
        ['POST', '/p2p/ban', { peerId: PEER_B, durationMs: 7_200_000, note: 'flooding' }],
        ['POST', '/p2p/ban', { address: '2001:db8::1' }],
        ['POST', '/p2p/unban', { address: '192.0.2.0/24' }],
        ['POST', '/p2p/unban', { peerId: PEER_B }],
      ],
    );
    assert.ok(seen.every((s) => s.headers.authorization === `Bearer ${TOKEN}`));
  });
});

test('peer bans: a table, or "no bans"', async () => {
  await withApi(routes, async (api) => {
    assert.equal(
      await output(() => peerCommand(['bans', '--api', api])),
      [`KIND  TARGET${' '.repeat(51)}REASON    EXPIRES                   OFFENSES  NOTE`, `peer  ${PEER_B}  OPERATOR  2030-01-01T02:00:00.000Z  2         flooding`].join('\n'),
    );
  });
  await withApi({ 'GET /p2p/bans': { bans: [] } }, async (api) => {
    assert.equal(await output(() => peerCommand(['bans', '--api', api])), 'no bans');
  });
});

test('info and stats print key: value lines and tables; --json the answer', async () => {
  await withApi(routes, async (api) => {
    const text = await output(() => infoCommand(['--api', api]));
    const lines = text.split('\n');
    assert.ok(lines.includes(`peer id:      ${PEER_A}`), text);
    assert.ok(lines.includes('chain id:     7'), text);
    assert.ok(lines.includes('listen:       tcp://127.0.0.1:41000, tcp://[::1]:41000'), text);
    assert.ok(lines.includes('announce:     -'), text);
    assert.ok(lines.includes('kem:          x25519-ml-kem-768, ml-kem-1024'), text);
    assert.ok(lines.includes('uptime:       2d04h (since 2030-01-01T00:00:00.000Z)'), text);
    assert.ok(['identity alg:', 'version:', 'aead:', 'sig:', 'policy root:', 'provider:'].every((k) => lines.some((l) => l.startsWith(k))), text);
    assert.deepEqual(JSON.parse(await output(() => infoCommand(['--api', api, '--json']))), info);

    const s = await output(() => statsCommand(['--api', api]));
    assert.match(s, /^peers: +active=2, handshaking=1 \(inbound 1, outbound 2\)$/m);
    assert.match(s, /^bytes: +2\.0 KiB in, 3\.0 MiB out$/m);
    assert.match(s, /^handshakes: +5 completed, 2 failed \(HANDSHAKE_TIMEOUT=2\)$/m);
    assert.match(s, /^rejects: +TOO_MANY_PEERS=4, BANNED=1$/m);
    assert.match(s, /^disconnects: +none$/m);
    assert.match(s, /^offenses: +BAD_MESSAGE=1$/m);
    assert.ok(s.includes(['  TYPE   IN  OUT', '  block  3   0', '  ping   10  11', '  tx     0   4'].join('\n')), s);
    assert.ok(s.includes(`  ${PEER_B}  12.3   greylisted`), s);
    assert.deepEqual(JSON.parse(await output(() => statsCommand(['--json', '--api', api]))), stats);
  });
});

test('bad command lines are UsageErrors and send nothing', async () => {
  await withApi(routes, async (api, seen) => {
    const cases: [() => Promise<void>, RegExp][] = [
      [() => peerCommand([]), /missing subcommand/],
      [() => peerCommand(['frobnicate']), /unknown subcommand "frobnicate"/],
      [() => peerCommand(['list', '--bogus', '--api', api]), /bogus/],
      [() => peerCommand(['list', 'extra', '--api', api]), /argument 'extra'/],
      [() => peerCommand(['connect', '--api', api, '--token', TOKEN]), /--addr .* is required/],
      [() => peerCommand(['connect', '--addr', 'http://x:1', '--api', api, '--token', TOKEN]), /--addr: expected tcp:\/\//],
      [() => peerCommand(['connect', '--addr', 'tcp://x:1', '--peer-id', 'pq1nope', '--api', api, '--token', TOKEN]), /--peer-id/],
      [() => peerCommand(['disconnect', '--api', api, '--token', TOKEN]), /missing PEER-ID/],
      [() => peerCommand(['disconnect', '192.0.2.1', '--api', api, '--token', TOKEN]), /not a peer id/],
      [() => peerCommand(['ban', 'example.com', '--api', api, '--token', TOKEN]), /peer ban: "example.com" is not a peer id/],
      [() => peerCommand(['ban', PEER_B, '--for', '0', '--api', api, '--token', TOKEN]), /--for: "0" is not a positive duration/],
      [() => peerCommand(['ban', PEER_B, '--for', 'soon', '--api', api, '--token', TOKEN]), /--for: "soon" is not a duration/],
      [() => peerCommand(['unban', '--api', api, '--token', TOKEN]), /missing PEER-ID, IP/],
      [() => infoCommand(['--api', 'not an address']), /--api: expected HOST:PORT/],
      [() => statsCommand(['--api']), /--api/],
    ];
    for (const [run, message] of cases) {
      await assert.rejects(run, (e: Error) => e instanceof UsageError && message.test(e.message), String(message));
    }
    assert.equal(seen.length, 0);
  });
});

test('API failures come out as ApiError', async () => {
  await withApi({}, async (api) => {
    await assert.rejects(
      () => peerCommand(['disconnect', PEER_B, '--api', api, '--token', TOKEN]),
      (e: Error) => e instanceof ApiError && e.code === 'NOT_FOUND' && e.status === 404,
    );
  });
  // A port that was just closed: nothing listens there.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const closed = `127.0.0.1:${(probe.address() as net.AddressInfo).port}`;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  await assert.rejects(
    () => infoCommand(['--api', closed]),
    (e: Error) => e instanceof ApiError && e.code === 'UNREACHABLE' && e.message.startsWith(`cannot reach the node API at http://${closed} (ECONNREFUSED)`),
  );
});

test('--api alone never sends the local data directory\'s token to that address', async () => {
  await withDir(async (dir) => {
    await withApi(routes, async (api, seen) => {
      writeFileSync(path.join(dir, 'api.token'), `${TOKEN}\n`);
      const saved = { token: process.env['PQNET_API_TOKEN'], dir: process.env['PQNET_DATA_DIR'] };
      delete process.env['PQNET_API_TOKEN'];
      process.env['PQNET_DATA_DIR'] = dir;
      try {
        await assert.rejects(
          () => peerCommand(['disconnect', PEER_B, '--api', api]),
          (e: Error) => e instanceof ApiError && e.code === 'NO_TOKEN' && /--api/.test(e.message),
        );
        assert.equal(seen.length, 0, 'nothing sent');
        // Naming the data directory says the --api address is that node's.
        await output(() => peerCommand(['disconnect', PEER_B, '--api', api, '--data-dir', dir]));
        assert.equal(seen.at(-1)?.headers.authorization, `Bearer ${TOKEN}`);
      } finally {
        for (const [k, v] of [['PQNET_API_TOKEN', saved.token], ['PQNET_DATA_DIR', saved.dir]] as const) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    });
  });
});

test('endpoint and token from the data directory: api.addr, then api.listen; the api.token file', async () => {
  await withDir(async (dir) => {
    await withApi(routes, async (api, seen) => {
      const [host, port] = api.split(':') as [string, string];
      // No api.addr: api.listen from <data dir>/config.toml. No token anywhere: NO_TOKEN.
      writeFileSync(path.join(dir, 'config.toml'), `[api]\nlisten = "${host}:${port}"\n`);
      const saved = process.env['PQNET_API_TOKEN'];
      delete process.env['PQNET_API_TOKEN'];
      try {
        assert.equal(JSON.parse(await output(() => infoCommand(['--data-dir', dir, '--json']))).chainId, 7);
        await assert.rejects(
          () => peerCommand(['disconnect', PEER_B, '--data-dir', dir]),
          (e: Error) => e instanceof ApiError && e.code === 'NO_TOKEN' && e.message.includes(path.join(dir, 'api.token')),
        );
        // The token file, trimmed.
        writeFileSync(path.join(dir, 'api.token'), `${TOKEN}\n`);
        await output(() => peerCommand(['disconnect', PEER_B, '--data-dir', dir]));
        assert.equal(seen.at(-1)?.headers.authorization, `Bearer ${TOKEN}`);
        // PQNET_API_TOKEN wins over the file, --token over both.
        process.env['PQNET_API_TOKEN'] = 'from-the-environment-123';
        await output(() => peerCommand(['disconnect', PEER_B, '--data-dir', dir]));
        assert.equal(seen.at(-1)?.headers.authorization, 'Bearer from-the-environment-123');
        await output(() => peerCommand(['disconnect', PEER_B, '--data-dir', dir, '--token', 'from-the-flag-0123']));
        assert.equal(seen.at(-1)?.headers.authorization, 'Bearer from-the-flag-0123');
        // api.token in the configuration file comes before the token file.
        delete process.env['PQNET_API_TOKEN'];
        writeFileSync(path.join(dir, 'config.toml'), `[api]\nlisten = "${host}:${port}"\ntoken = "from-the-config-file"\n`);
        await output(() => peerCommand(['disconnect', PEER_B, '--data-dir', dir]));
        assert.equal(seen.at(-1)?.headers.authorization, 'Bearer from-the-config-file');
      } finally {
        if (saved === undefined) delete process.env['PQNET_API_TOKEN'];
        else process.env['PQNET_API_TOKEN'] = saved;
      }
      // api.addr wins over api.listen (which now points nowhere).
      writeFileSync(path.join(dir, 'config.toml'), '[api]\nlisten = "127.0.0.1:9"\n');
      writeFileSync(path.join(dir, 'api.addr'), `${api}\n`);
      assert.equal(JSON.parse(await output(() => statsCommand(['--data-dir', dir, '--json']))).peerBook, 12);
      // --api wins over api.addr.
      writeFileSync(path.join(dir, 'api.addr'), '127.0.0.1:9\n');
      assert.equal(await output(() => peerCommand(['bans', '--data-dir', dir, '--api', api])).then((t) => t.split('\n').length), 2);
    });
  });
});
