/**
 * Handshake benchmark.
 *
 * 1. Crypto-only floor: two `Handshake` state machines driven in-process (no
 *    sockets, no timers), per provider and suite. Reported as handshakes/s with
 *    both sides on one core, plus the bound if the two sides ran on two cores
 *    (1 / slower side), plus the cost of each primitive.
 * 2. pqnet over loopback TCP between two processes: a `SecureListener` child,
 *    the parent dialling with 1 and 16 handshakes in flight. Each iteration is
 *    dialSecure (TCP connect + full handshake, remote identity checked) then
 *    session.close(). Latency is dial start to session ready on the initiator.
 * 3. js-libp2p TCP+Noise+Yamux: the same loop, `dial` of a fresh connection
 *    (`force`) then `close`. One dialling node per worker, because libp2p joins
 *    concurrent dials to the same peer into one.
 */
import { fileURLToPath } from 'node:url';
import { multiaddr } from '@multiformats/multiaddr';
import type { Libp2p } from 'libp2p';
import { systemRandom } from '../src/core/random.ts';
import type { SigAlg } from '../src/secure/algorithms.ts';
import { Handshake } from '../src/secure/handshake.ts';
import { generateIdentity, PeerId } from '../src/secure/identity.ts';
import { dialSecure, type SecureConfig } from '../src/secure/listener.ts';
import type { ProviderName } from '../src/secure/provider.ts';
import { getProvider } from '../src/secure/providers.ts';
import { TcpTransport } from '../src/transport/tcp.ts';
import { createNode, LIBP2P_IMPL } from './_libp2p.ts';
import { benchConfig, suiteAlgs, type Suite } from './_pqnet.ts';
import { Child, emit, emitEnvironment, log, percentile, round, selected, withChild, type BenchOptions, type Json } from './_util.ts';

const SERVER = fileURLToPath(new URL('./_server.ts', import.meta.url));
const CONCURRENCY = [1, 16] as const;
const SUITES: readonly { provider: ProviderName; suite: Suite }[] = [
  { provider: 'native', suite: 'pq' },
  { provider: 'portable', suite: 'pq' },
  { provider: 'native', suite: 'classic' },
  { provider: 'portable', suite: 'classic' },
];

interface Timing {
  readonly warmupMs: number;
  readonly measureMs: number;
  readonly floorMs: number;
  readonly opMs: number;
}

function timing(quick: boolean): Timing {
  return quick ? { warmupMs: 200, measureMs: 500, floorMs: 300, opMs: 25 } : { warmupMs: 1_000, measureMs: 5_000, floorMs: 2_000, opMs: 150 };
}

function implName(provider: ProviderName, suite: Suite): string {
  return `pqnet-${provider}${suite === 'classic' ? '-classic' : ''}`;
}

function suiteFields(provider: ProviderName, suite: Suite): Json {
  const a = suiteAlgs(suite);
  return { impl: implName(provider, suite), provider, suite, kem: a.kem, sig: a.sig, aead: 'chacha20-poly1305' };
}

// ------------------------------------------------------------ crypto-only floor

function driveOnce(a: SecureConfig, b: SecureConfig): { iMs: number; rMs: number } {
  const t0 = performance.now();
  const i = Handshake.initiate({ ...a, expectedPeerId: b.identity.peerId }, 0);
  const helloI = i.pollTransmit()!;
  const t1 = performance.now();
  const r = Handshake.respond({ ...b, remoteAddress: 'tcp://127.0.0.1:1' }, 0);
  r.receive(helloI, 0);
  const fromR: Uint8Array[] = [];
  for (let x = r.pollTransmit(); x !== undefined; x = r.pollTransmit()) fromR.push(x);
  const t2 = performance.now();
  for (const x of fromR) i.receive(x, 0);
  const authI = i.pollTransmit()!;
  const t3 = performance.now();
  r.receive(authI, 0);
  const t4 = performance.now();
  if (i.status !== 'complete' || r.status !== 'complete') throw new Error(`in-process handshake failed: ${i.error?.message ?? r.error?.message}`);
  return { iMs: t1 - t0 + (t3 - t2), rMs: t2 - t1 + (t4 - t3) };
}

function cryptoFloor(provider: ProviderName, suite: Suite, t: Timing): void {
  const a = benchConfig(provider, suite);
  const b = benchConfig(provider, suite);
  // Warm up the JIT and the providers' lazy tables.
  for (let k = 0; k < 3; k++) driveOnce(a, b);
  let n = 0;
  let iMs = 0;
  let rMs = 0;
  const start = performance.now();
  while (performance.now() - start < t.floorMs || n < 5) {
    const d = driveOnce(a, b);
    iMs += d.iMs;
    rMs += d.rMs;
    n++;
  }
  const seconds = (performance.now() - start) / 1000;
  const base = { bench: 'handshake', ...suiteFields(provider, suite), count: n, seconds: round(seconds) };
  emit({ ...base, metric: 'crypto_floor', value: round(n / seconds, 1), unit: 'handshakes/s', note: 'both sides in one process on one core, no I/O', initiatorMs: round(iMs / n), responderMs: round(rMs / n) });
  emit({ ...base, metric: 'crypto_floor_2core', value: round(1000 / Math.max(iMs / n, rMs / n), 1), unit: 'handshakes/s', note: 'bound with each side on its own core: 1 / slower side' });
}

/** Mean microseconds per call of each primitive a handshake uses. */
function primitives(provider: ProviderName, t: Timing): void {
  const p = getProvider(provider);
  const rnd = (n: number): Uint8Array => systemRandom.bytes(n);
  const xa = p.x25519FromPrivate(rnd(32));
  const xb = p.x25519FromPrivate(rnd(32));
  const kem = p.mlKem768FromSeed(rnd(64));
  const enc = p.mlKem768Encapsulate(kem.publicKey);
  const msg = rnd(100);
  const sigs: SigAlg[] = ['ml-dsa-65', 'ed25519'];
  const keys = Object.fromEntries(sigs.map((alg) => [alg, generateIdentity(alg, p)]));
  const sigOf = Object.fromEntries(sigs.map((alg) => [alg, keys[alg]!.sign(msg)]));
  const aead = p.aead('chacha20-poly1305', rnd(32));
  const nonce = new Uint8Array(12);
  // AUTH body with ML-DSA-65: CBOR [alg, 1952 B key, identify, 3309 B signature].
  const authBody = rnd(5_280);
  const sealed = aead.seal(nonce, new Uint8Array(5), authBody);
  const transcript = rnd(8_192);
  const ops: [string, () => unknown][] = [
    ['x25519.keygen', () => p.x25519FromPrivate(rnd(32))],
    ['x25519.derive', () => xa.derive(xb.publicKey)],
    ['ml-kem-768.keygen', () => p.mlKem768FromSeed(rnd(64))],
    ['ml-kem-768.encaps', () => p.mlKem768Encapsulate(kem.publicKey)],
    ['ml-kem-768.decaps', () => kem.decapsulate(enc.ciphertext)],
    ['ml-dsa-65.sign', () => keys['ml-dsa-65']!.sign(msg)],
    ['ml-dsa-65.verify', () => p.verify('ml-dsa-65', keys['ml-dsa-65']!.publicKey, msg, sigOf['ml-dsa-65']!)],
    ['ed25519.sign', () => keys.ed25519!.sign(msg)],
    ['ed25519.verify', () => p.verify('ed25519', keys.ed25519!.publicKey, msg, sigOf.ed25519!)],
    ['sha3-256.8KiB', () => p.sha3_256(transcript)],
    ['hkdf-sha3-256', () => p.hkdfSha3_256(msg, transcript.subarray(0, 32), msg.subarray(0, 16), 32)],
    ['chacha20-poly1305.seal.5KiB', () => aead.seal(nonce, new Uint8Array(5), authBody)],
    ['chacha20-poly1305.open.5KiB', () => aead.open(nonce, new Uint8Array(5), sealed)],
  ];
  const us = new Map<string, number>();
  for (const [name, fn] of ops) {
    for (let k = 0; k < 3; k++) fn();
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < t.opMs || n < 3) {
      fn();
      n++;
    }
    const v = ((performance.now() - start) * 1000) / n;
    us.set(name, v);
    emit({ bench: 'handshake', impl: `pqnet-${provider}`, provider, metric: 'primitive', op: name, value: round(v, 1), unit: 'us/op', count: n });
  }
  // What one pq handshake needs, both sides: 2 x25519 keygen + 2 derive, ML-KEM
  // keygen + encaps + decaps, 2 ML-DSA signs + 2 verifies, 10 HKDFs, ~12 SHA3
  // of transcript-sized inputs (overestimate), 2 AEAD seals + 2 opens of AUTH size.
  const get = (k: string): number => us.get(k)!;
  const sum =
    2 * get('x25519.keygen') +
    2 * get('x25519.derive') +
    get('ml-kem-768.keygen') +
    get('ml-kem-768.encaps') +
    get('ml-kem-768.decaps') +
    2 * get('ml-dsa-65.sign') +
    2 * get('ml-dsa-65.verify') +
    10 * get('hkdf-sha3-256') +
    12 * get('sha3-256.8KiB') +
    2 * get('chacha20-poly1305.seal.5KiB') +
    2 * get('chacha20-poly1305.open.5KiB');
  emit({
    bench: 'handshake',
    ...suiteFields(provider, 'pq'),
    metric: 'primitives_sum',
    value: round(1e6 / sum, 1),
    unit: 'handshakes/s',
    perHandshakeMs: round(sum / 1000),
    note: 'sum of the primitive costs above for one pq handshake (both sides), no encoding or state machine',
  });
}

// -------------------------------------------------------------- over loopback

interface LoopResult {
  readonly count: number;
  readonly errors: number;
  readonly seconds: number;
  readonly latencies: number[];
  readonly firstError?: string;
}

/** `concurrency` workers each calling `once` back to back until `ms` have passed. */
async function dialLoop(concurrency: number, ms: number, once: (worker: number) => Promise<number>): Promise<LoopResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      while (performance.now() < end) {
        try {
          latencies.push(await once(w));
        } catch (e) {
          errors++;
          firstError ??= e instanceof Error ? e.message : String(e);
          if (errors > 1_000) return;
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { count: latencies.length, errors, seconds, latencies, firstError };
}

function emitLoop(base: Json, concurrency: number, r: LoopResult): void {
  const common = { ...base, concurrency, count: r.count, seconds: round(r.seconds), errors: r.errors, ...(r.firstError !== undefined ? { firstError: r.firstError } : {}) };
  emit({ ...common, metric: 'handshakes_per_s', value: round(r.count / r.seconds, 1), unit: 'handshakes/s' });
  emit({ ...common, metric: 'latency_p50', value: round(percentile(r.latencies, 50)), unit: 'ms' });
  emit({ ...common, metric: 'latency_p99', value: round(percentile(r.latencies, 99)), unit: 'ms' });
}

async function pqnetOverTcp(provider: ProviderName, suite: Suite, t: Timing): Promise<void> {
  await withChild(`server-${implName(provider, suite)}`, SERVER, ['--mode', 'pqnet', '--provider', provider, '--suite', suite], async (server: Child) => {
    const address = String(server.info.address);
    const expectedPeerId = PeerId.parse(String(server.info.peerId));
    const cfg = benchConfig(provider, suite);
    const transport = new TcpTransport();
    const once = async (): Promise<number> => {
      const t0 = performance.now();
      const s = await dialSecure(transport, address, cfg, { expectedPeerId });
      const dt = performance.now() - t0;
      s.close();
      return dt;
    };
    const base = { bench: 'handshake', ...suiteFields(provider, suite), transport: 'tcp-loopback-2proc' };
    for (const c of CONCURRENCY) {
      log(`handshake ${implName(provider, suite)} concurrency ${c}`);
      await dialLoop(c, t.warmupMs, once);
      emitLoop(base, c, await dialLoop(c, t.measureMs, once));
    }
    const stats = await server.request({ cmd: 'stats' }, 'stats');
    if (Number(stats.failed) > 0 || Number(stats.refused) > 0) log(`server ${implName(provider, suite)}: ${JSON.stringify(stats)}`);
  });
}

async function libp2pOverTcp(t: Timing): Promise<void> {
  await withChild('server-libp2p', SERVER, ['--mode', 'libp2p'], async (server: Child) => {
    // The listen address already ends in /p2p/<peer id>: Noise checks the remote identity.
    const target = multiaddr(String(server.info.address));
    const nodes: Libp2p[] = [];
    const closing = new Set<Promise<void>>();
    try {
      for (let k = 0; k < Math.max(...CONCURRENCY); k++) nodes.push(await createNode(false));
      const once = async (w: number): Promise<number> => {
        const t0 = performance.now();
        const conn = await nodes[w]!.dial(target, { force: true });
        const dt = performance.now() - t0;
        const p = conn.close().catch(() => undefined);
        closing.add(p);
        void p.finally(() => closing.delete(p));
        return dt;
      };
      const base = { bench: 'handshake', impl: LIBP2P_IMPL, kem: 'x25519', sig: 'ed25519', aead: 'chacha20-poly1305', transport: 'tcp-loopback-2proc' };
      for (const c of CONCURRENCY) {
        log(`handshake libp2p concurrency ${c}`);
        await dialLoop(c, t.warmupMs, once);
        await Promise.all([...closing]);
        emitLoop(base, c, await dialLoop(c, t.measureMs, once));
        await Promise.all([...closing]);
      }
    } finally {
      await Promise.all(
        nodes.map(async (n) => {
          await n.stop();
        }),
      );
    }
  });
}

export async function main(opts: BenchOptions): Promise<void> {
  const t = timing(opts.quick);
  log(`handshake benchmark (${opts.quick ? 'quick' : 'full'})`);
  emitEnvironment('handshake', opts);
  for (const provider of ['native', 'portable'] as const) {
    if (!selected(opts, `pqnet-${provider}`)) continue;
    log(`primitives ${provider}`);
    primitives(provider, t);
  }
  const suites = SUITES.filter(({ provider, suite }) => selected(opts, implName(provider, suite)));
  for (const { provider, suite } of suites) {
    log(`crypto floor ${implName(provider, suite)}`);
    cryptoFloor(provider, suite, t);
  }
  for (const { provider, suite } of suites) await pqnetOverTcp(provider, suite, t);
  if (selected(opts, LIBP2P_IMPL)) await libp2pOverTcp(t);
}
