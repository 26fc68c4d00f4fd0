/**
 * Channel throughput: payload MB/s (10^6 bytes/s) of one connection over
 * loopback TCP between two processes. The sender is this process; the
 * receiver is a child (bench/_server.ts) that counts payload bytes and reports
 * them when the sender closes. Each run uses a fresh connection, set up (TCP
 * connect, handshake) before the clock starts; time runs from the first write
 * to the child's report, so it covers everything in flight. Each figure is the
 * median of 5 runs (1 with --quick) after a warm-up run, with the CPU share of
 * each process during the median run.
 *
 *   tcp-raw                       node:net, 64 KiB writes, no encryption
 *   aead-stream-chacha20-poly1305 len:u32 || chacha20-poly1305(64 KiB) records, 12-byte counter nonce
 *   pqnet-native                  SecureSession, 64 KiB - 8 byte chunks via sendFrame, chacha20-poly1305
 *   pqnet-native-aes-256-gcm      the same with aes-256-gcm
 *   pqnet-portable                the same on the @noble provider
 *   libp2p-noise-yamux            one yamux stream over Noise, 64 KiB chunks
 *   ws-raw                        the `ws` package: 64 KiB binary messages, no compression (client frames masked)
 *   pqnet-native-ws               pqnet-native over WebSocketTransport (ws://)
 *
 * The ws pair is the WebSocket transport's cost: ws-raw against tcp-raw is what
 * WebSocket framing and masking cost on their own, pqnet-native-ws against
 * pqnet-native what they cost pqnet (the summary's wsVsTcp).
 *
 * tcp-raw, aead-stream and ws-raw apply the same back-pressure rule as SecureSession
 * (write until 4 MiB are queued, limits.maxWriteBufferBytes, then wait for
 * 'drain'; ws-raw waits for the send callback of the message that crossed the
 * mark, i.e. until its buffer is empty); pqnet awaits `session.drained()` when `sendFrame` returns false;
 * libp2p waits while `send` returns false or 4 MiB are queued (sendLibp2p in
 * bench/_libp2p.ts; not `stream.onDrain()`, which stops waiting after the
 * first drain in @libp2p/utils 7.4.1).
 */
import crypto from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { multiaddr } from '@multiformats/multiaddr';
import { WebSocket } from 'ws';
import { DEFAULT_LIMITS, MAX_CHUNK_BYTES } from '../src/core/limits.ts';
import type { AeadAlg } from '../src/secure/algorithms.ts';
import { PeerId } from '../src/secure/identity.ts';
import { dialSecure } from '../src/secure/listener.ts';
import type { ProviderName } from '../src/secure/provider.ts';
import { TcpTransport } from '../src/transport/tcp.ts';
import { WebSocketTransport, WS_MAX_MESSAGE_BYTES } from '../src/transport/ws.ts';
import { createNode, LIBP2P_IMPL, LIBP2P_SINK_PROTOCOL, sendLibp2p } from './_libp2p.ts';
import { aeadOffer, benchConfig, streamFrames } from './_pqnet.ts';
import { emit, emitEnvironment, log, mbPerSecond, median, MiB, round, selected, withChild, type BenchOptions, type Child, type Json } from './_util.ts';

const SERVER = fileURLToPath(new URL('./_server.ts', import.meta.url));
const RECORD_BYTES = 64 * 1024;
const WRITE_BUFFER_LIMIT = DEFAULT_LIMITS.maxWriteBufferBytes;

interface Plan {
  readonly impl: string;
  /** Bytes per timed run (full, quick). */
  readonly bytes: readonly [number, number];
  readonly fields: Json;
  /** What carries the bytes (default tcp-loopback-2proc). */
  readonly transport?: string;
  /** Receiver child arguments. */
  readonly server: (key: Buffer) => string[];
  readonly prepare: (server: Child, key: Buffer) => Promise<Sender>;
}

interface Sender {
  /** A fresh connection (handshake done), not timed. */
  open(): Promise<Connection>;
  dispose?(): Promise<void>;
}

interface Connection {
  /** Send `bytes` of payload, then close the sending side. Timed. */
  send(bytes: number): Promise<void>;
  /** Called once the receiver has reported. */
  release?(): Promise<void>;
}

/** Write `total` bytes produced by `next(n)`, honouring the 4 MiB back-pressure rule. */
async function pump(socket: net.Socket, total: number, chunk: number, next: (n: number) => Uint8Array): Promise<void> {
  let sent = 0;
  while (sent < total) {
    const n = Math.min(chunk, total - sent);
    socket.write(next(n));
    sent += n;
    if (socket.writableLength >= WRITE_BUFFER_LIMIT) await once(socket, 'drain');
  }
  socket.end();
}

async function connectNet(server: Child): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port: Number(server.info.port), noDelay: true });
  await once(socket, 'connect');
  socket.on('error', () => undefined);
  socket.resume();
  return socket;
}

const payload = crypto.randomBytes(RECORD_BYTES);
const WS_SEND = { binary: true, compress: false } as const;
const slice = (n: number): Buffer => (n === RECORD_BYTES ? payload : payload.subarray(0, n));

function pqnetPlan(provider: ProviderName, aead: AeadAlg, bytes: readonly [number, number], scheme: 'tcp' | 'ws' = 'tcp'): Plan {
  return {
    impl: `pqnet-${provider}${aead === 'aes-256-gcm' ? '-aes-256-gcm' : ''}${scheme === 'ws' ? '-ws' : ''}`,
    bytes,
    fields: { provider, aead, kem: 'x25519-ml-kem-768', sig: 'ml-dsa-65', chunkBytes: MAX_CHUNK_BYTES },
    ...(scheme === 'ws' ? { transport: 'ws-loopback-2proc' } : {}),
    server: () => ['--mode', 'pqnet', '--provider', provider, '--suite', 'pq', '--transport', scheme, '--report'],
    prepare: (server) => {
      const cfg = benchConfig(provider, 'pq');
      const transport = scheme === 'ws' ? new WebSocketTransport() : new TcpTransport();
      const expectedPeerId = PeerId.parse(String(server.info.peerId));
      const chunk = payload.subarray(0, MAX_CHUNK_BYTES);
      const open = async (): Promise<Connection> => {
        const s = await dialSecure(transport, String(server.info.address), cfg, { expectedPeerId, ...aeadOffer(aead) });
        if (s.aead !== aead) throw new Error(`negotiated ${s.aead}, wanted ${aead}`);
        s.start(() => undefined);
        return {
          send: (total) => streamFrames(s, total, chunk),
        };
      };
      return Promise.resolve({ open });
    },
  };
}

const PLANS: readonly Plan[] = [
  {
    impl: 'tcp-raw',
    bytes: [1024 * MiB, 128 * MiB],
    fields: { chunkBytes: RECORD_BYTES },
    server: () => ['--mode', 'raw', '--report'],
    prepare: (server) =>
      Promise.resolve({
        open: async () => {
          const socket = await connectNet(server);
          return { send: (total) => pump(socket, total, RECORD_BYTES, slice) };
        },
      }),
  },
  {
    impl: 'aead-stream-chacha20-poly1305',
    bytes: [512 * MiB, 64 * MiB],
    fields: { aead: 'chacha20-poly1305', chunkBytes: RECORD_BYTES },
    server: (key) => ['--mode', 'aead', '--key', key.toString('hex'), '--report'],
    prepare: (server, rawKey) => {
      const key = crypto.createSecretKey(rawKey);
      return Promise.resolve({
        open: async () => {
          const socket = await connectNet(server);
          const nonce = Buffer.alloc(12);
          let counter = 0;
          const seal = (n: number): Buffer => {
            nonce.writeUInt32BE(counter++, 8);
            const c = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
            const len = Buffer.allocUnsafe(4);
            len.writeUInt32BE(n + 16);
            const ct = c.update(slice(n));
            c.final();
            return Buffer.concat([len, ct, c.getAuthTag()]);
          };
          return { send: (total) => pump(socket, total, RECORD_BYTES, seal) };
        },
      });
    },
  },
  pqnetPlan('native', 'chacha20-poly1305', [512 * MiB, 64 * MiB]),
  pqnetPlan('native', 'aes-256-gcm', [512 * MiB, 64 * MiB]),
  pqnetPlan('portable', 'chacha20-poly1305', [64 * MiB, 16 * MiB]),
  {
    impl: LIBP2P_IMPL,
    bytes: [256 * MiB, 32 * MiB],
    fields: { aead: 'chacha20-poly1305', chunkBytes: RECORD_BYTES },
    server: () => ['--mode', 'libp2p', '--report'],
    prepare: async (server) => {
      const node = await createNode(false);
      const target = multiaddr(String(server.info.address));
      return {
        open: async () => {
          // A fresh connection per run (force), like the other implementations.
          const stream = await node.dialProtocol(target, LIBP2P_SINK_PROTOCOL, { force: true });
          return {
            send: async (total) => {
              let sent = 0;
              while (sent < total) {
                const n = Math.min(RECORD_BYTES, total - sent);
                const wait = sendLibp2p(stream, slice(n));
                sent += n;
                if (wait !== undefined) await wait;
              }
              // Closes our writable end once everything queued is handed to yamux;
              // the receiver reports when the remote close arrives, after the data.
              await stream.close();
            },
            release: async () => {
              await Promise.all(node.getConnections().map((c) => c.close()));
            },
          };
        },
        dispose: () => node.stop(),
      };
    },
  },
  {
    impl: 'ws-raw',
    bytes: [512 * MiB, 64 * MiB],
    fields: { chunkBytes: RECORD_BYTES, maxPayload: WS_MAX_MESSAGE_BYTES },
    transport: 'ws-loopback-2proc',
    server: () => ['--mode', 'ws-raw', '--report'],
    prepare: (server) =>
      Promise.resolve({
        open: async () => {
          const ws = new WebSocket(`${String(server.info.address)}/`, { perMessageDeflate: false, maxPayload: WS_MAX_MESSAGE_BYTES });
          ws.on('error', () => undefined);
          await once(ws, 'open');
          return {
            send: async (total) => {
              let sent = 0;
              while (sent < total) {
                const n = Math.min(RECORD_BYTES, total - sent);
                sent += n;
                if (ws.bufferedAmount + n < WRITE_BUFFER_LIMIT) ws.send(slice(n), WS_SEND);
                else await new Promise<void>((resolve, reject) => ws.send(slice(n), WS_SEND, (e) => (e ? reject(e) : resolve())));
              }
              ws.close(1000);
            },
          };
        },
      }),
  },
  pqnetPlan('native', 'chacha20-poly1305', [512 * MiB, 64 * MiB], 'ws'),
];

interface Run {
  readonly bytes: number;
  readonly seconds: number;
  /** CPU seconds (user + system) of the sending process during the run. */
  readonly senderCpu: number;
  readonly received: Json;
}

async function measure(plan: Plan, opts: BenchOptions): Promise<number> {
  const key = crypto.randomBytes(32);
  const bytes = plan.bytes[opts.quick ? 1 : 0];
  const reps = opts.quick ? 1 : 5;
  return withChild(`receiver-${plan.impl}`, SERVER, plan.server(key), async (server) => {
    const sender = await plan.prepare(server, key);
    try {
      const run = async (n: number): Promise<Run> => {
        const conn = await sender.open();
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        await conn.send(n);
        const received = await server.nextEvent('received', 120_000);
        const seconds = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        await conn.release?.();
        if (received.bytes !== n) log(`${plan.impl}: sent ${n} bytes, receiver counted ${String(received.bytes)}`);
        return { bytes: n, seconds, senderCpu: (cpu.user + cpu.system) / 1e6, received };
      };
      log(`channel ${plan.impl}: warm-up`);
      await run(Math.min(bytes, opts.quick ? 8 * MiB : 32 * MiB));
      const runs: Run[] = [];
      for (let r = 0; r < reps; r++) {
        log(`channel ${plan.impl}: run ${r + 1}/${reps}, ${bytes / MiB} MiB`);
        runs.push(await run(bytes));
      }
      const rates = runs.map((r) => mbPerSecond(r.bytes, r.seconds));
      const value = median(rates);
      const mid = runs[rates.indexOf(value)]!;
      const mismatched = runs.filter((r) => r.received.bytes !== r.bytes).length;
      emit({
        bench: 'channel',
        impl: plan.impl,
        ...plan.fields,
        transport: plan.transport ?? 'tcp-loopback-2proc',
        metric: 'throughput',
        value: round(value, 1),
        unit: 'MB/s',
        bytes,
        seconds: round(mid.seconds),
        best: round(Math.max(...rates), 1),
        runs: rates.map((x) => round(x, 1)),
        // Share of one core used by each process during the median run (user + system).
        senderCpu: round(mid.senderCpu / mid.seconds, 2),
        receiverCpu: round(Number(mid.received.receiverCpuSeconds) / Number(mid.received.receiverSeconds), 2),
        ...(mismatched > 0 ? { mismatchedRuns: mismatched } : {}),
      });
      return value;
    } finally {
      await sender.dispose?.();
    }
  });
}

export async function main(opts: BenchOptions): Promise<void> {
  log(`channel benchmark (${opts.quick ? 'quick' : 'full'})`);
  emitEnvironment('channel', opts);
  const results = new Map<string, number>();
  for (const plan of PLANS) {
    if (!selected(opts, plan.impl)) continue;
    results.set(plan.impl, await measure(plan, opts));
  }
  const raw = results.get('tcp-raw');
  const libp2p = results.get(LIBP2P_IMPL);
  const ratio = (base: number | undefined): Json | undefined =>
    base === undefined ? undefined : Object.fromEntries([...results].map(([impl, v]) => [impl, round(v / base, 3)]));
  emit({
    bench: 'channel',
    metric: 'summary',
    unit: 'MB/s and ratios',
    throughput: Object.fromEntries([...results].map(([impl, v]) => [impl, round(v, 1)])),
    vsTcpRaw: ratio(raw) ?? null,
    vsLibp2p: ratio(libp2p) ?? null,
    // Each ws figure over its TCP counterpart in this run.
    wsVsTcp: Object.fromEntries(
      [
        ['ws-raw', 'tcp-raw'],
        ['pqnet-native-ws', 'pqnet-native'],
      ].flatMap(([ws, tcp]) => {
        const a = results.get(ws!);
        const b = results.get(tcp!);
        return a === undefined || b === undefined ? [] : [[ws!, round(a / b, 3)]];
      }),
    ),
  });
}
