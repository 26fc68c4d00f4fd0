/**
 * `pqnet gossip status|publish` through `main` (exit codes, stdout, stderr)
 * against real node services on loopback, found through their data
 * directories (api.addr, api.token) or --api/--token; and the pure helpers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { formatGossipStatus, parseHex } from '../../src/cli/gossip-commands.ts';
import { UsageError } from '../../src/cli/client-commands.ts';
import { main } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/node/config.ts';
import { createLogger } from '../../src/node/log.ts';
import { startNodeService, type NodeService } from '../../src/node/service.ts';
import type { GossipPublishResponse, GossipStatusResponse } from '../../src/rpc/types.ts';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `pqnet ARGS` in this process: its exit code and what it printed. */
async function pqnet(args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.map(String).join(' '));
  console.error = (...a: unknown[]) => void err.push(a.map(String).join(' '));
  try {
    const code = await main(args);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** A failed run: its exit code, one line on stderr (no stack trace) matching `re`, nothing on stdout. */
function failed(r: Run, code: number, re: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stdout, '');
}

/** Two services with gossip (sync off, so the chain topics are listed to be joined; fast heartbeat), B dialled A; A's API token is generated into its data directory. */
async function withNodes(fn: (a: NodeService, b: NodeService, dirA: string) => Promise<void>): Promise<void> {
  const dirs: string[] = [];
  const services: NodeService[] = [];
  try {
    for (const name of ['a', 'b']) {
      const dir = await mkdtemp(path.join(os.tmpdir(), `pqnet-cli-gossip-${name}-`));
      dirs.push(dir);
      const config = loadConfig({
        env: {},
        homeDir: dir,
        flags: { values: { data_dir: dir, listen: ['tcp://127.0.0.1:0'], api: { listen: '127.0.0.1:0' }, sync: { enabled: false }, gossip: { heartbeat_ms: 50, topics: ['blocks', 'txs', 'votes'] } }, describe: () => 'test' },
      });
      services.push(await startNodeService(config, createLogger({ level: 'silent', format: 'json' })));
    }
    const [a, b] = services as [NodeService, NodeService];
    await b.node.connect(a.node.listenAddresses[0]!);
    for (let i = 0; i < 250 && !(a.gossip!.router.meshPeers('txs').length === 1 && b.gossip!.router.meshPeers('txs').length === 1); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(a.gossip!.router.meshPeers('txs').length, 1, 'the txs mesh');
    await fn(a, b, dirs[0]!);
  } finally {
    for (const s of services) await s.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
}

test('gossip status --json and the table, against a running node found by its data directory', async () => {
  await withNodes(async (a, b, dirA) => {
    const json = await pqnet(['gossip', 'status', '--json', '--data-dir', dirA]);
    assert.equal(json.code, 0, json.stderr);
    const st = JSON.parse(json.stdout) as GossipStatusResponse;
    assert.equal(st.params['heartbeatMs'], 50);
    assert.equal(st.peers.length, 1);
    assert.equal(st.peers[0]!.peerId, b.node.peerId);
    assert.ok(st.peers[0]!.mesh.includes('txs'));
    assert.equal(st.topics.find((t) => t.topic === 'txs')?.mesh, 1);

    const text = await pqnet(['gossip', 'status', '--api', a.api!.address]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^mode:\s+mesh D=6 \(4\.\.12\), D_lazy=6, D_unchoked=3$/m);
    assert.match(text.stdout, /^heartbeat:\s+50 ms$/m);
    assert.match(text.stdout, /^peers:\s+1 speak gossip$/m);
    assert.match(text.stdout, /^ {2}TOPIC\s+SUB\s+MESH\s+FANOUT\s+PEERS\s+CHOKE\s+ACCEPTED\s+DUP\s+REJECTED\s+OTHER\s+SENT\s+ANNOUNCED\s+PUBLISHED$/m);
    assert.match(text.stdout, /^ {2}txs\s+yes\s+1\s+0\s+1\s+0\/0\s+0\s+0\s+0\s+0\s+0\s+0\s+0$/m);
    assert.match(text.stdout, /\(4 other topics idle; --json lists every one\)/);
    assert.match(text.stdout, new RegExp(`^ {2}${b.node.peerId}\\s+in\\s+blocks,txs,votes\\s+`, 'm'));
  });
});

test('gossip publish --hex and --file: the item reaches the other node; a repeat fails with GOSSIP_DUPLICATE, exit 1', async () => {
  await withNodes(async (a, b, dirA) => {
    const got: string[] = [];
    b.gossip!.on('message', (m) => got.push(`${m.topic} ${Buffer.from(m.payload).toString('hex')}`));
    const hex = await pqnet(['gossip', 'publish', 'txs', '--hex', '0xCAFE01', '--data-dir', dirA]);
    assert.equal(hex.code, 0, hex.stderr);
    assert.match(hex.stdout, /^published 3 bytes on txs: id [0-9a-f]{40}, sent to 1 peer$/);
    const file = path.join(dirA, 'payload.bin');
    await writeFile(file, Buffer.from('vote: yes'));
    const viaFile = await pqnet(['gossip', 'publish', 'votes', '--file', file, '--json', '--data-dir', dirA]);
    assert.equal(viaFile.code, 0, viaFile.stderr);
    const r = JSON.parse(viaFile.stdout) as GossipPublishResponse;
    assert.deepEqual([r.topic, r.bytes, r.peers], ['votes', 9, 1]);
    for (let i = 0; i < 250 && got.length < 2; i++) await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(got.sort(), ['txs cafe01', `votes ${Buffer.from('vote: yes').toString('hex')}`]);
    failed(await pqnet(['gossip', 'publish', 'txs', '--hex', 'cafe01', '--data-dir', dirA]), 1, /^pqnet: POST \/gossip\/publish: .*already seen \(GOSSIP_DUPLICATE\)$/);
    failed(await pqnet(['gossip', 'publish', 'nope', '--hex', '00', '--data-dir', dirA]), 1, /\(GOSSIP_UNKNOWN_TOPIC\)$/);
    // With --api alone the local token is not sent: refused before anything goes out.
    failed(await pqnet(['gossip', 'publish', 'txs', '--hex', '02', '--api', a.api!.address]), 1, /needs the node's API token/);
    failed(await pqnet(['gossip', 'publish', 'txs', '--hex', '02', '--api', a.api!.address, '--token', 'wrong-token-0123456789']), 1, /\(UNAUTHORIZED\); check the token/);
    assert.equal(a.gossip!.stats().topics['txs']!.published, 1);
  });
});

test('usage errors exit 2 with one line: subcommand, topic, payload flags, hex, file', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pqnet-cli-gossip-'));
  try {
    const api = ['--api', '127.0.0.1:9'];
    failed(await pqnet(['gossip']), 2, /^pqnet: gossip: missing subcommand \(status, publish\)/);
    failed(await pqnet(['gossip', 'shout']), 2, /unknown subcommand "shout"/);
    failed(await pqnet(['gossip', 'publish', ...api]), 2, /missing TOPIC/);
    failed(await pqnet(['gossip', 'publish', 'Bad Topic', '--hex', '00', ...api]), 2, /"Bad Topic" is not a topic name/);
    failed(await pqnet(['gossip', 'publish', 'txs', ...api]), 2, /exactly one of --hex DATA and --file PATH/);
    failed(await pqnet(['gossip', 'publish', 'txs', '--hex', '00', '--file', 'x', ...api]), 2, /exactly one of --hex/);
    failed(await pqnet(['gossip', 'publish', 'txs', '--hex', 'abc', ...api]), 2, /--hex: expected an even number of hex digits, got "abc"/);
    failed(await pqnet(['gossip', 'publish', 'txs', '--hex', 'zz', ...api]), 2, /--hex/);
    failed(await pqnet(['gossip', 'publish', 'txs', '--file', path.join(dir, 'missing.bin'), ...api]), 2, /--file: cannot read .*missing\.bin: ENOENT/);
    failed(await pqnet(['gossip', 'publish', 'txs', '--file', dir, ...api]), 2, /--file: cannot read .*EISDIR/);
    failed(await pqnet(['gossip', 'status', '--bogus']), 2, /bogus/);
    failed(await pqnet(['gossip', 'status', 'extra', ...api]), 2, /Unexpected argument 'extra'/);
    // Nothing listening: exit 1, one line.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    failed(await pqnet(['gossip', 'status', '--api', `127.0.0.1:${port}`]), 1, /cannot reach the node API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    const help = await pqnet(['gossip', 'help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /publish TOPIC \(--hex DATA \| --file PATH\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('gossip status against a node without gossip: 404 NO_GOSSIP, exit 1', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pqnet-cli-gossip-off-'));
  let s: NodeService | undefined;
  try {
    const config = loadConfig({ env: {}, homeDir: dir, flags: { values: { data_dir: dir, listen: [], api: { listen: '127.0.0.1:0' }, sync: { enabled: false }, gossip: { enabled: false } }, describe: () => 'test' } });
    s = await startNodeService(config, createLogger({ level: 'silent', format: 'json' }));
    failed(await pqnet(['gossip', 'status', '--data-dir', dir]), 1, /^pqnet: GET \/gossip\/status: .*gossip\.enabled = false.* \(NO_GOSSIP\)$/);
    failed(await pqnet(['gossip', 'publish', 'txs', '--hex', '00', '--data-dir', dir]), 1, /\(NO_GOSSIP\)$/);
  } finally {
    await s?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('parseHex and formatGossipStatus', () => {
  assert.deepEqual([...parseHex('0a0B')], [10, 11]);
  assert.deepEqual([...parseHex('0x')], []);
  assert.throws(() => parseHex('0x1'), UsageError);
  const st: GossipStatusResponse = {
    params: { D: 6, Dlo: 4, Dhi: 12, Dlazy: 6, Dunchoked: 3, heartbeatMs: 1000, flood: true },
    topics: [],
    control: { graft: { sent: 2, received: 1 }, prune: { sent: 0, received: 0 } },
    ihaveIds: 0,
    brokenPromises: 0,
    cache: { seen: 1, mcache: 2, wanted: 3, validating: 4 },
    peers: [],
  };
  const text = formatGossipStatus(st);
  assert.match(text, /^mode:\s+flood \(no mesh\)$/m);
  assert.match(text, /^control:\s+graft 2\/1 \(sent\/received\)$/m);
  assert.match(text, /^caches:\s+seen 1, mcache 2, wanted 3, validating 4; broken promises 0$/m);
  assert.match(text, /^topics:\n {2}none subscribed$/m);
  assert.match(text, /^peers:\n {2}none$/m);
});
