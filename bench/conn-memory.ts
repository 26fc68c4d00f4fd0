/**
 * Memory per idle authenticated connection: 500 connections (100 with
 * --quick) between two fresh child processes over loopback TCP, a server that
 * accepts and a dialer that opens them (bench/_conn-child.ts), both started
 * with --expose-gc. This process only coordinates.
 *
 * For each implementation:
 *  1. The dialer builds what all its connections share (pqnet: config and
 *     identity; libp2p: 16 dialling nodes) before anything is measured.
 *  2. Warm-up: 8 connections opened and closed (code loaded, JIT, lazy tables
 *     of the crypto providers), then 1 s of rest.
 *  3. Baseline: in each process, several full GCs, then process.memoryUsage().
 *  4. Open N connections, 16 at a time, and keep them; wait until the server
 *     holds them all, then 2 s of idle.
 *  5. GC again and measure; the figure is (after - before) / live connections,
 *     per process, in KiB: RSS, V8 heapUsed, external (memory of C++ objects
 *     tied to JS objects, including ArrayBuffers) and arrayBuffers (the part
 *     of external held by ArrayBuffers and Buffers). RSS after GC includes
 *     memory the allocator has not returned to the OS, so it is the noisiest.
 *
 *   pqnet-native        dialSecure (x25519-ml-kem-768, ML-DSA-65, chacha20-
 *                       poly1305; benchConfig lifts the per-address handshake
 *                       caps) then a MuxConnection on each session, started,
 *                       so the opening CREDITs have been exchanged; the server
 *                       does the same on every accepted session. `ready`
 *                       counts connections whose peer credit arrived.
 *   libp2p-noise-yamux  TCP + Noise + Yamux, no streams. libp2p reuses an
 *                       existing connection to a peer unless the dial is
 *                       `force`d, and joins concurrent dials to one peer from
 *                       one node; so the dialer runs 16 nodes (created before
 *                       the baseline), each dialling with `force: true` one
 *                       connection after another. The server is one node.
 *   tcp-raw             node:net sockets, connected and reading, nothing else.
 *
 * The count is lowered (with a log line) when the file descriptor limit
 * (`ulimit -n`, inherited by the children) leaves too little room.
 */
import { execSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LIBP2P_IMPL } from './_libp2p.ts';
import { Child, emit, emitEnvironment, log, round, selected, type BenchOptions, type Json } from './_util.ts';

const CHILD = fileURLToPath(new URL('./_conn-child.ts', import.meta.url));
const FULL_COUNT = 500;
const QUICK_COUNT = 100;
const WARMUP_CONNECTIONS = 8;
const IDLE_MS = 2_000;
/** File descriptors each process needs besides its connections. */
const FD_HEADROOM = 100;

const PLANS: readonly { impl: string; child: string; fields: Json }[] = [
  { impl: 'pqnet-native', child: 'pqnet', fields: { kem: 'x25519-ml-kem-768', sig: 'ml-dsa-65', aead: 'chacha20-poly1305', layer: 'SecureSession + MuxConnection (credits exchanged)' } },
  { impl: LIBP2P_IMPL, child: 'libp2p', fields: { layer: 'TCP + Noise + Yamux connection, no streams', dialerNodes: 16 } },
  { impl: 'tcp-raw', child: 'raw', fields: { layer: 'node:net socket' } },
];

function fdLimit(): number {
  try {
    const out = execSync('ulimit -n', { shell: '/bin/sh', encoding: 'utf8' }).trim();
    return out === 'unlimited' ? Infinity : Number(out);
  } catch {
    return Number.NaN;
  }
}

const KiB = 1024;
const MEM_FIELDS = ['rss', 'heapUsed', 'external', 'arrayBuffers'] as const;

function perConnection(before: Json, after: Json, n: number): Json {
  return Object.fromEntries(MEM_FIELDS.map((k) => [`${k}KiB`, round((Number(after[k]) - Number(before[k])) / n / KiB, 2)]));
}

function mib(m: Json): Json {
  return Object.fromEntries(MEM_FIELDS.map((k) => [`${k}MiB`, round(Number(m[k]) / 1024 / KiB, 2)]));
}

async function spawnGc(name: string, args: readonly string[]): Promise<Child> {
  return Child.spawn(name, CHILD, args, 30_000, ['--expose-gc']);
}

async function waitCount(c: Child, want: (live: number, ready: number) => boolean, timeoutMs: number): Promise<Json> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const n = await c.request({ cmd: 'count' }, 'count');
    if (want(Number(n.live), Number(n.ready)) || performance.now() > deadline) return n;
    await sleep(50);
  }
}

async function measure(plan: (typeof PLANS)[number], count: number, opts: BenchOptions): Promise<Json> {
  const server = await spawnGc(`conn-server-${plan.child}`, ['--role', 'server', '--impl', plan.child]);
  let dialer: Child | undefined;
  try {
    dialer = await spawnGc(`conn-dialer-${plan.child}`, ['--role', 'dialer', '--impl', plan.child]);
    await dialer.request({ cmd: 'prepare', ...server.info }, 'prepared');
    log(`conn-memory ${plan.impl}: warm-up, ${WARMUP_CONNECTIONS} connections opened and closed`);
    const w = await dialer.request({ cmd: 'open', count: WARMUP_CONNECTIONS, keep: false }, 'opened', 60_000);
    if (Number(w.errors) > 0) log(`${plan.impl}: warm-up: ${String(w.errors)} errors, first: ${String(w.firstError)}`);
    await waitCount(server, (live) => live === 0, 10_000);
    await waitCount(dialer, (live) => live === 0, 10_000);
    await sleep(1_000);
    const s0 = await server.request({ cmd: 'mem' }, 'mem');
    const d0 = await dialer.request({ cmd: 'mem' }, 'mem');
    log(`conn-memory ${plan.impl}: opening ${count} connections`);
    const o = await dialer.request({ cmd: 'open', count, keep: true }, 'opened', 600_000);
    if (Number(o.errors) > 0) log(`${plan.impl}: ${String(o.errors)} of ${count} connections failed, first: ${String(o.firstError)}`);
    await waitCount(server, (live, ready) => live >= Number(o.opened) && ready >= Number(o.opened), 20_000);
    await waitCount(dialer, (live, ready) => ready >= live, 20_000);
    await sleep(IDLE_MS);
    const s1 = await server.request({ cmd: 'mem' }, 'mem');
    const d1 = await dialer.request({ cmd: 'mem' }, 'mem');
    const sides: Json = {};
    for (const [side, before, after] of [
      ['server', s0, s1],
      ['dialer', d0, d1],
    ] as const) {
      const n = Number(after.live);
      if (n !== count || Number(after.ready) !== n) log(`${plan.impl} ${side}: ${n} live, ${String(after.ready)} ready of ${count}`);
      const per = n > 0 ? perConnection(before, after, n) : {};
      sides[side] = per;
      emit({
        bench: 'conn-memory',
        impl: plan.impl,
        ...plan.fields,
        side,
        metric: 'memory-per-connection',
        value: per.rssKiB,
        unit: 'KiB/connection (RSS)',
        ...per,
        connections: n,
        ready: after.ready,
        ...(opts.quick ? { note: `quick mode: ${count} connections instead of ${FULL_COUNT}` } : {}),
        ...(side === 'dialer' ? { openSeconds: round(Number(o.seconds), 2) } : {}),
        before: mib(before),
        after: mib(after),
      });
    }
    return sides;
  } finally {
    await dialer?.close();
    await server.close();
  }
}

export async function main(opts: BenchOptions): Promise<void> {
  log(`conn-memory benchmark (${opts.quick ? 'quick' : 'full'})`);
  emitEnvironment('conn-memory', opts);
  let count = opts.quick ? QUICK_COUNT : FULL_COUNT;
  const limit = fdLimit();
  log(`file descriptor limit (ulimit -n): ${limit}`);
  if (Number.isFinite(limit) && limit < count + FD_HEADROOM) {
    const reduced = Math.max(10, limit - FD_HEADROOM);
    log(`the descriptor limit ${limit} is too low for ${count} connections per process: measuring ${reduced} instead (raise it with ulimit -n)`);
    count = reduced;
  }
  const results = new Map<string, Json>();
  for (const plan of PLANS) {
    if (!selected(opts, plan.impl)) continue;
    results.set(plan.impl, await measure(plan, count, opts));
  }
  emit({
    bench: 'conn-memory',
    metric: 'summary',
    unit: 'KiB per connection',
    connections: count,
    fdLimit: Number.isFinite(limit) ? limit : String(limit),
    ...Object.fromEntries([...results]),
  });
}
