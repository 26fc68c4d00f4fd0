/**
 * The node's HTTP API (src/rpc/server.ts) with 50 connected peers: what it
 * serves per second, and what it costs the node when nobody calls it.
 *
 * Three processes, all started from this file (`--role`, see the end):
 *   target  the node under test: a `Node` listening on 127.0.0.1 TCP, and, on
 *           command, `createNodeMetrics(node)` (prom-client default metrics on)
 *           with an `ApiServer` on 127.0.0.1:0, as `pqnet listen` runs them
 *           (src/node/service.ts; a pino logger at level info), and a bare
 *           `node:http` baseline server. It reports `process.cpuUsage()` when
 *           asked. It is its own process so that its CPU time is the node's
 *           and the API's alone: in-process, the HTTP client, the 50 peers
 *           and this coordinator would be counted with it.
 *   peers   50 real `Node`s (fresh ML-DSA-65 identities, no listener, own
 *           SQLite stores) that dial the target over 127.0.0.1 TCP (8 at a
 *           time) and then stay connected and idle (PING every 10 s).
 *   this    the coordinator and the HTTP client.
 * The target's peer set admits 64 peers from one address (default: 4 per IP,
 * 8 per /24) and the per-address handshake caps are lifted (as bench/_pqnet.ts
 * does): every peer comes from 127.0.0.1. Store files go to a temporary
 * directory, removed at the end (also on failure or Ctrl-C).
 *
 * Figures, in this order (each measured once all 50 peers are active and a
 * settling pause has passed):
 * a) idle-cpu: the target's CPU time (user + system, all its threads: GC and
 *    compiler threads included) per second of wall time over 10 s (3 s with
 *    --quick), first without any API (no ApiServer, no createNodeMetrics),
 *    then after starting metrics and the API (nobody calls it). Same process,
 *    same peers, same connections; a full GC (the target runs with
 *    --expose-gc) before each window. 10 s is one PING interval, so each
 *    window holds every peer's ping exactly once, and the full run settles
 *    11 s after connecting so that the first ping round is over; the quick
 *    run settles 1 s, its windows are shorter and noisier.
 *    idle-cpu-overhead is the difference.
 * b) scrape-cpu: the target's CPU time for one `GET /metrics`. Prometheus
 *    scrapes every 15 s, longer than the API's 5 s keep-alive timeout, so
 *    each scrape here opens a new TCP connection (agent: false) and the
 *    window lasts until that connection is closed. A window is bracketed by
 *    two `cpu` requests to the target over its stdin/stdout; the same
 *    bracket with nothing inside is measured after each scrape, and the
 *    figure is mean(scrape windows) - mean(empty windows). 3 warm-up scrapes,
 *    then 30 (10 with --quick), 100 ms apart. Also given per second at a
 *    15 s scrape interval.
 * c) throughput: requests/s of `GET /p2p/peers` and `GET /metrics` from this
 *    process: 8 workers, each a loop of `http.request` then read the whole
 *    body, over a keep-alive `http.Agent` with 8 sockets; 1 s warm-up (0.5 s
 *    with --quick) on the same sockets, then 3 s (1 s) measured. p50/p99 are
 *    per-request latencies seen by the client; responseBytes is the mean
 *    body size; serverCpu is the target's CPU share (1.0 = one core) during
 *    the measured run, clientCpu this process's. The baseline, measured the
 *    same way in the same run, is a bare `node:http` server in the target
 *    process (same timeouts and connection cap as ApiServer) answering every
 *    request with a fixed 15-byte JSON body: what the HTTP stack costs by
 *    itself. vsBaseline is the ratio of requests/s; apiCpuUsPerRequest is
 *    the target's CPU per request minus the baseline's, the API's own work
 *    (routing, the node's snapshots, JSON or prom-client text). When the
 *    baseline's serverCpu is well below 1 the client was the bottleneck (on
 *    a machine with few cores it shares them with the server), so its
 *    requests/s is a floor and the CPU per request is the sounder
 *    comparison. `--only=<substring>` selects the API endpoints; the
 *    baseline always runs.
 * A summary line collects the main figures.
 */
import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../src/node/log.ts';
import { createNodeMetrics, type NodeMetrics } from '../src/node/metrics.ts';
import { Node } from '../src/node/node.ts';
import { ApiServer } from '../src/rpc/server.ts';
import { generateIdentity } from '../src/secure/identity.ts';
import { BENCH_CHAIN_ID } from './_pqnet.ts';
import { Child, emit, emitEnvironment, log, parseFlags, percentile, round, selected, serveParent, type BenchOptions, type Json } from './_util.ts';

const SELF = fileURLToPath(import.meta.url);
const PEERS = 50;
/** Peers dialling at once. */
const DIAL_CONCURRENCY = 8;
/** HTTP client connections (and workers) per throughput run. */
const CONCURRENCY = 8;
/** Room in the target's peer set: all peers come from 127.0.0.1. */
const TARGET_PEER_SET = { maxPeers: 64, maxPeersPerIp: 64, maxPeersPerSubnet: 64 };
/** The per-address handshake caps exist against strangers; here they would only serialize the setup. */
const LIFTED_HANDSHAKE_CAPS = { maxHandshakesPerIp: 1024, handshakesPerHostPerSecond: 1e9, handshakeBurstPerHost: 1e9, handshakeCpuMsPerSecond: 1e9, handshakeCpuBurstMs: 1e9 };
/** config.ts default for api.max_body_bytes. */
const MAX_BODY_BYTES = 16 * 1024;
/** Same server options as ApiServer's constructor. */
const HTTP_SERVER_OPTIONS = { requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 } as const;
const API_MAX_CONNECTIONS = 64;
const BASELINE_BODY = JSON.stringify({ status: 'ok' });
/** Pause between starting the API and its idle window. */
const API_SETTLE_MS = 1_000;
const SCRAPE_INTERVAL_S = 15;
const SCRAPE_WARMUP = 3;
const SCRAPE_GAP_MS = 100;
const BASELINE = 'baseline-bare-http';
const ENDPOINTS = ['/p2p/peers', '/metrics'] as const;

interface Durations {
  readonly settleMs: number;
  readonly idleMs: number;
  readonly scrapes: number;
  readonly warmupMs: number;
  readonly runMs: number;
}

/**
 * Full: the settling pause outlasts the first PING round (10 s after a peer
 * becomes active), so code that runs first then (and is compiled then) is
 * not counted in the first idle window only.
 */
const FULL: Durations = { settleMs: 11_000, idleMs: 10_000, scrapes: 30, warmupMs: 1_000, runMs: 3_000 };
const QUICK: Durations = { settleMs: 1_000, idleMs: 3_000, scrapes: 10, warmupMs: 500, runMs: 1_000 };

// ------------------------------------------------------------- child: target

const TEMP_PREFIX = 'pqnet-bench-api-';

/**
 * A child removes its directory when it exits, and the coordinator's
 * temporary directory too once it is empty: if the coordinator was killed
 * (SIGKILL), the children exit when their stdin closes and nothing is left.
 */
function removeOnExit(dir: string): void {
  process.on('exit', () => {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    const parent = path.dirname(dir);
    if (path.basename(parent).startsWith(TEMP_PREFIX)) {
      try {
        rmdirSync(parent);
      } catch {
        // Not empty yet (the other child) or already gone.
      }
    }
  });
}

function cpuNow(): Json {
  const c = process.cpuUsage();
  return { event: 'cpu', us: c.user + c.system, user: c.user, system: c.system, t: performance.now() };
}

/** The bare `node:http` server of the baseline: same timeouts and connection cap as ApiServer, one fixed JSON body. */
async function startBaseline(): Promise<http.Server> {
  const server = http.createServer(HTTP_SERVER_OPTIONS, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(BASELINE_BODY) });
    res.end(BASELINE_BODY);
  });
  server.maxConnections = API_MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return server;
}

async function targetRole(dir: string): Promise<void> {
  removeOnExit(dir);
  const node = new Node({
    identity: generateIdentity('ml-dsa-65'),
    chainId: BENCH_CHAIN_ID,
    storePath: path.join(dir, 'target.sqlite'),
    listen: ['tcp://127.0.0.1:0'],
    agent: 'pqnet-bench/api-target',
    limits: LIFTED_HANDSHAKE_CAPS,
    peerSet: TARGET_PEER_SET,
  });
  await node.start();
  let metrics: NodeMetrics | undefined;
  let api: ApiServer | undefined;
  let baseline: http.Server | undefined;
  // As in `pqnet listen` at the default level: debug records (one per API request) are dropped.
  const logger = createLogger({ level: 'info', format: 'json', destination: new Writable({ write: (_c, _e, done) => done() }) });
  serveParent(
    { address: node.listenAddresses[0], peerId: node.peerId },
    async (cmd) => {
      switch (cmd.cmd) {
        case 'cpu':
          return cpuNow();
        case 'gc':
          globalThis.gc?.();
          return { event: 'gc' };
        case 'peers': {
          const peers = node.peers();
          return { event: 'peers', active: peers.filter((p) => p.state === 'active').length, total: peers.length, rejects: node.health().rejects };
        }
        case 'api-start':
          metrics = createNodeMetrics(node);
          api = await ApiServer.start({ node, metrics: metrics.registry, host: '127.0.0.1', port: 0, token: 'bench-token-0123456789', maxBodyBytes: MAX_BODY_BYTES, log: logger });
          return { event: 'api', url: api.url };
        case 'baseline-start': {
          baseline = await startBaseline();
          const a = baseline.address() as AddressInfo;
          return { event: 'baseline', url: `http://127.0.0.1:${a.port}` };
        }
        default:
          return { event: 'error', message: `unknown command ${JSON.stringify(cmd)}` };
      }
    },
    async () => {
      baseline?.closeAllConnections();
      baseline?.close();
      await api?.close();
      await node.stop();
      metrics?.close();
    },
  );
}

// -------------------------------------------------------------- child: peers

function peersRole(dir: string, count: number): void {
  removeOnExit(dir);
  const nodes: Node[] = [];
  const active = (): number => nodes.filter((n) => n.peers().some((p) => p.state === 'active')).length;
  serveParent(
    { role: 'peers', count },
    async (cmd) => {
      if (cmd.cmd === 'connect') {
        const t0 = performance.now();
        for (let i = 0; i < count; i++) {
          const node = new Node({ identity: generateIdentity('ml-dsa-65'), chainId: BENCH_CHAIN_ID, storePath: path.join(dir, `peer-${i}.sqlite`), agent: `pqnet-bench/api-peer-${i}` });
          nodes.push(node);
          await node.start();
        }
        let next = 0;
        let errors = 0;
        let firstError: string | undefined;
        await Promise.all(
          Array.from({ length: DIAL_CONCURRENCY }, async () => {
            while (next < nodes.length) {
              const node = nodes[next++]!;
              try {
                await node.connect(String(cmd.address), { peerId: String(cmd.peerId) });
              } catch (e) {
                errors++;
                firstError ??= e instanceof Error ? e.message : String(e);
              }
            }
          }),
        );
        return { event: 'connected', active: active(), errors, seconds: (performance.now() - t0) / 1000, ...(firstError === undefined ? {} : { firstError }) };
      }
      if (cmd.cmd === 'count') return { event: 'count', active: active() };
      return { event: 'error', message: `unknown command ${JSON.stringify(cmd)}` };
    },
    async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  );
}

// ------------------------------------------------------------- coordinator

/** One command, one answer of kind `event` (an `error` answer, or any other, throws). */
async function ask(c: Child, cmd: Json, event: string, timeoutMs = 60_000): Promise<Json> {
  c.send(cmd);
  const m = await c.next(timeoutMs);
  if (m.event !== event) throw new Error(`child ${c.name}: ${String(cmd.cmd)} answered ${JSON.stringify(m)}`);
  return m;
}

interface Cpu {
  readonly us: number;
  readonly t: number;
}

async function cpu(target: Child): Promise<Cpu> {
  const m = await ask(target, { cmd: 'cpu' }, 'cpu');
  return { us: Number(m.us), t: Number(m.t) };
}

/** CPU milliseconds and the target's own wall-clock seconds between two samples. */
function cpuDelta(a: Cpu, b: Cpu): { cpuMs: number; seconds: number } {
  return { cpuMs: (b.us - a.us) / 1000, seconds: (b.t - a.t) / 1000 };
}

interface Reply {
  readonly status: number;
  readonly bytes: number;
}

/**
 * GET `url`, reading the whole body. With `agent: false` the request says
 * `Connection: close`, and the promise waits for the socket to close too.
 */
function get(url: URL, agent: http.Agent | false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let closed = agent !== false;
    let reply: Reply | undefined;
    const done = (): void => {
      if (closed && reply !== undefined) resolve(reply);
    };
    const req = http.request(url, { agent, method: 'GET' }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.once('end', () => {
        reply = { status: res.statusCode ?? 0, bytes };
        done();
      });
      res.once('error', reject);
    });
    if (agent === false)
      req.once('socket', (s) =>
        s.once('close', () => {
          closed = true;
          done();
        }),
      );
    req.once('error', reject);
    req.end();
  });
}

async function waitActive(target: Child, want: number, timeoutMs: number): Promise<Json> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const p = await ask(target, { cmd: 'peers' }, 'peers');
    if (Number(p.active) >= want || performance.now() > deadline) return p;
    await sleep(100);
  }
}

async function idleCpu(target: Child, ms: number): Promise<{ cpuMs: number; seconds: number; cpuMsPerSecond: number; peersActive: number }> {
  // Each window starts on a collected heap: garbage of what came before is not collected inside it.
  await ask(target, { cmd: 'gc' }, 'gc');
  await sleep(100);
  const a = await cpu(target);
  await sleep(ms);
  const b = await cpu(target);
  const d = cpuDelta(a, b);
  const p = await ask(target, { cmd: 'peers' }, 'peers');
  return { ...d, cpuMsPerSecond: d.cpuMs / d.seconds, peersActive: Number(p.active) };
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

async function scrapeCost(target: Child, apiUrl: string, d: Durations): Promise<Json> {
  const url = new URL('/metrics', apiUrl);
  for (let i = 0; i < SCRAPE_WARMUP; i++) await get(url, false);
  const scrape: number[] = [];
  const empty: number[] = [];
  let bytes = 0;
  for (let i = 0; i < d.scrapes; i++) {
    await sleep(SCRAPE_GAP_MS);
    const a = await cpu(target);
    const r = await get(url, false);
    const b = await cpu(target);
    if (r.status !== 200) throw new Error(`GET /metrics: status ${r.status}`);
    bytes += r.bytes;
    scrape.push(cpuDelta(a, b).cpuMs);
    await sleep(SCRAPE_GAP_MS);
    const c = await cpu(target);
    const e = await cpu(target);
    empty.push(cpuDelta(c, e).cpuMs);
  }
  const perScrape = mean(scrape) - mean(empty);
  const sortedScrape = [...scrape].sort((x, y) => x - y);
  return {
    bench: 'api',
    metric: 'scrape-cpu',
    endpoint: '/metrics',
    peers: PEERS,
    connection: 'new per scrape (Connection: close)',
    value: round(perScrape, 3),
    unit: 'CPU ms/scrape',
    cpuMsPerSecondAt15sInterval: round(perScrape / SCRAPE_INTERVAL_S, 4),
    scrapes: d.scrapes,
    scrapeWindowMs: { mean: round(mean(scrape), 3), p50: round(percentile(sortedScrape, 50), 3), max: round(sortedScrape[sortedScrape.length - 1]!, 3) },
    emptyWindowMs: { mean: round(mean(empty), 3) },
    responseBytes: Math.round(bytes / d.scrapes),
  };
}

interface Load {
  readonly requests: number;
  readonly seconds: number;
  readonly latencies: number[];
  readonly bytes: number;
  readonly non200: number;
}

/** CONCURRENCY loops of GET over `agent` until `ms` have passed; any network error ends the run with that error. */
async function load(url: URL, agent: http.Agent, ms: number): Promise<Load> {
  const latencies: number[] = [];
  let bytes = 0;
  let non200 = 0;
  let failed = false;
  const t0 = performance.now();
  const stopAt = t0 + ms;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (!failed && performance.now() < stopAt) {
        const s = performance.now();
        try {
          const r = await get(url, agent);
          latencies.push(performance.now() - s);
          bytes += r.bytes;
          if (r.status !== 200) non200++;
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    }),
  );
  return { requests: latencies.length, seconds: (performance.now() - t0) / 1000, latencies, bytes, non200 };
}

async function throughput(target: Child, name: string, url: URL, d: Durations): Promise<Json> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    log(`api throughput ${name}: ${d.warmupMs} ms warm-up, then ${d.runMs} ms with ${CONCURRENCY} keep-alive connections`);
    await load(url, agent, d.warmupMs);
    const a = await cpu(target);
    const client0 = process.cpuUsage();
    const r = await load(url, agent, d.runMs);
    const client = process.cpuUsage(client0);
    const b = await cpu(target);
    const server = cpuDelta(a, b);
    if (r.non200 > 0) log(`${name}: ${r.non200} of ${r.requests} answers were not 200`);
    const sorted = r.latencies.sort((x, y) => x - y);
    return {
      bench: 'api',
      metric: 'throughput',
      endpoint: name,
      ...(name === BASELINE ? { server: `node:http in the node's process, fixed ${Buffer.byteLength(BASELINE_BODY)}-byte JSON body` } : { path: url.pathname }),
      peers: PEERS,
      transport: 'http/1.1 keep-alive, loopback, client in another process',
      concurrency: CONCURRENCY,
      value: round(r.requests / r.seconds, 0),
      unit: 'req/s',
      p50Ms: round(percentile(sorted, 50), 3),
      p99Ms: round(percentile(sorted, 99), 3),
      maxMs: round(sorted[sorted.length - 1] ?? Number.NaN, 3),
      responseBytes: r.requests === 0 ? 0 : Math.round(r.bytes / r.requests),
      requests: r.requests,
      non200: r.non200,
      seconds: round(r.seconds),
      serverCpu: round(server.cpuMs / 1000 / server.seconds, 2),
      clientCpu: round((client.user + client.system) / 1e6 / r.seconds, 2),
      serverCpuUsPerRequest: r.requests === 0 ? null : round((server.cpuMs * 1000) / r.requests, 1),
    };
  } finally {
    agent.destroy();
  }
}

export async function main(opts: BenchOptions): Promise<void> {
  const d = opts.quick ? QUICK : FULL;
  log(`api benchmark (${opts.quick ? 'quick' : 'full'})`);
  emitEnvironment('api', opts);
  const root = mkdtempSync(path.join(os.tmpdir(), TEMP_PREFIX));
  let target: Child | undefined;
  let peers: Child | undefined;
  // Ctrl-C or an uncaught error ends this process through process.exit (bench/_util.ts): no finally runs then.
  const onExit = (): void => {
    peers?.kill();
    target?.kill();
    rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  };
  process.on('exit', onExit);
  try {
    const targetDir = path.join(root, 'target');
    const peersDir = path.join(root, 'peers');
    mkdirSync(targetDir);
    mkdirSync(peersDir);
    target = await Child.spawn('api-target', SELF, ['--role', 'target', '--dir', targetDir], 30_000, ['--expose-gc']);
    peers = await Child.spawn('api-peers', SELF, ['--role', 'peers', '--dir', peersDir, '--count', String(PEERS)]);
    log(`api: ${PEERS} peers connecting to ${String(target.info.address)}`);
    const c = await ask(peers, { cmd: 'connect', address: target.info.address, peerId: target.info.peerId }, 'connected', 120_000);
    if (Number(c.errors) > 0) log(`api: ${String(c.errors)} of ${PEERS} connects failed, first: ${String(c.firstError)}`);
    const p = await waitActive(target, PEERS, 10_000);
    if (Number(p.active) !== PEERS) throw new Error(`the target has ${String(p.active)} active peers of ${PEERS} (rejects: ${JSON.stringify(p.rejects)})`);
    log(`api: ${PEERS} peers active after ${round(Number(c.seconds), 2)} s; settling ${d.settleMs} ms`);
    await sleep(d.settleMs);

    // (a) idle CPU, without then with the API and its metrics.
    log(`api idle-cpu: node without API, ${d.idleMs} ms`);
    const bare = await idleCpu(target, d.idleMs);
    const api = await ask(target, { cmd: 'api-start' }, 'api');
    const apiUrl = String(api.url);
    await sleep(API_SETTLE_MS);
    log(`api idle-cpu: node with API + metrics at ${apiUrl}, ${d.idleMs} ms`);
    const withApi = await idleCpu(target, d.idleMs);
    const note = opts.quick ? { note: 'quick mode: window shorter than the 10 s PING interval, noisy' } : {};
    for (const [variant, r] of [
      ['node-only', bare],
      ['node+api+metrics', withApi],
    ] as const) {
      emit({ bench: 'api', metric: 'idle-cpu', variant, peers: PEERS, peersActive: r.peersActive, value: round(r.cpuMsPerSecond, 3), unit: 'CPU ms/s', cpuMs: round(r.cpuMs, 1), seconds: round(r.seconds, 2), ...note });
    }
    const overhead = withApi.cpuMsPerSecond - bare.cpuMsPerSecond;
    emit({
      bench: 'api',
      metric: 'idle-cpu-overhead',
      peers: PEERS,
      value: round(overhead, 3),
      unit: 'CPU ms/s',
      nodeOnly: round(bare.cpuMsPerSecond, 3),
      nodeWithApi: round(withApi.cpuMsPerSecond, 3),
      relative: round(overhead / bare.cpuMsPerSecond, 3),
      ...note,
    });

    // (b) CPU per /metrics scrape.
    log(`api scrape-cpu: ${SCRAPE_WARMUP} warm-up + ${d.scrapes} scrapes of /metrics, each on a new connection`);
    const scrape = await scrapeCost(target, apiUrl, d);
    emit(scrape);

    // (c) throughput against the baseline.
    const base = await ask(target, { cmd: 'baseline-start' }, 'baseline');
    const runs: Json[] = [await throughput(target, BASELINE, new URL('/', String(base.url)), d)];
    emit(runs[0]!);
    const baseRps = Number(runs[0]!.value);
    const baseUs = Number(runs[0]!.serverCpuUsPerRequest);
    for (const ep of ENDPOINTS) {
      if (!selected(opts, ep)) continue;
      const fig = await throughput(target, ep, new URL(ep, apiUrl), d);
      fig.vsBaseline = round(Number(fig.value) / baseRps, 3);
      fig.apiCpuUsPerRequest = round(Number(fig.serverCpuUsPerRequest) - baseUs, 1);
      emit(fig);
      runs.push(fig);
    }

    const perScrape = Number(scrape.value);
    emit({
      bench: 'api',
      metric: 'summary',
      peers: PEERS,
      requestsPerSecond: Object.fromEntries(runs.map((f) => [String(f.endpoint), f.value])),
      vsBaseline: Object.fromEntries(runs.slice(1).map((f) => [String(f.endpoint), f.vsBaseline])),
      serverCpuUsPerRequest: Object.fromEntries(runs.map((f) => [String(f.endpoint), f.serverCpuUsPerRequest])),
      apiCpuUsPerRequest: Object.fromEntries(runs.slice(1).map((f) => [String(f.endpoint), f.apiCpuUsPerRequest])),
      latencyMs: Object.fromEntries(runs.map((f) => [String(f.endpoint), { p50: f.p50Ms, p99: f.p99Ms }])),
      responseBytes: Object.fromEntries(runs.map((f) => [String(f.endpoint), f.responseBytes])),
      idleCpuMsPerSecond: { nodeOnly: round(bare.cpuMsPerSecond, 3), nodeWithApi: round(withApi.cpuMsPerSecond, 3), apiOverhead: round(overhead, 3) },
      scrapeCpuMs: perScrape,
      apiCpuMsPerSecondWithScrapeEvery15s: round(overhead + perScrape / SCRAPE_INTERVAL_S, 3),
    });
  } finally {
    await Promise.all([peers?.close(), target?.close()]);
    process.off('exit', onExit);
    rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  }
}

// ------------------------------------------------------------ child entry

if (import.meta.main) {
  const flags = parseFlags(process.argv.slice(2));
  const role = flags.get('role');
  const dir = flags.get('dir');
  const run = role === 'target' && dir !== undefined ? () => targetRole(dir) : role === 'peers' && dir !== undefined ? () => peersRole(dir, Number(flags.get('count') ?? PEERS)) : undefined;
  if (run === undefined) {
    process.stderr.write('[api] child usage: node bench/api.ts --role target|peers --dir <dir> [--count N]; run the benchmark with node bench/run.ts api\n');
    process.exit(2);
  }
  Promise.resolve()
    .then(run)
    .catch((e: unknown) => {
      process.stderr.write(`[api ${role}] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    });
}
