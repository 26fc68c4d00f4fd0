/**
 * Multiplexed connections: many message flows over ONE connection between two
 * processes over loopback TCP. The sender is this process; the receiver is a
 * child (bench/_mux-server.ts) that counts messages per kind, echoes votes and
 * reports. Every pqnet figure is printed beside baselines measured in the same
 * run. pqnet: native provider, x25519-ml-kem-768 + ML-DSA-65 handshake,
 * chacha20-poly1305, default limits (benchConfig lifts only the per-address
 * handshake caps), message types from bench/_mux-common.ts. Connections are set
 * up (TCP connect, handshake, opening credits) before any clock starts.
 *
 * a) throughput: MB/s (10^6 bytes of message payload per second) of 10
 *    concurrent senders on one connection. Each flow sends the same number of
 *    65,528-byte messages (one full frame each in pqnet); time runs from the
 *    first send to the receiver's report of the last message. Median of 3 runs
 *    (1 with --quick) after a warm-up run, with each process's CPU share
 *    (user + system, 1.0 = one core) during the median run, and when each flow
 *    finished (flowFinishSeconds: priorities and fairness show here).
 *      pqnet-native        10 async loops `await conn.send(FlowTypes[i], [body])`.
 *                          Flow i uses data channel (i mod 6) + 1, so channels
 *                          1-4 carry two flows each (one FIFO and one credit
 *                          window per channel, shared), channels 5 and 6 one.
 *                          Channel windows: 1 MiB each (the default).
 *      libp2p-noise-yamux  10 yamux streams on one Noise connection; each loop
 *                          `stream.send(record)`, waiting while it returns false or
 *                          4 MiB are queued (sendLibp2p in bench/_libp2p.ts; not
 *                          `onDrain()`, which stops waiting after the first drain).
 *      tcp-raw             one node:net socket; 10 loops write whole
 *                          length-prefixed records (u32 len | u8 flow | body),
 *                          waiting for 'drain' while 4 MiB are queued
 *                          (limits.maxWriteBufferBytes, as bench/channel.ts).
 * b) small-messages: messages/s of 100-byte messages, one sender, one flow.
 *    pqnet: `conn.send(Tx, [97 bytes])` (100 bytes of CBOR, channel 3) without
 *    awaiting each one; at most 1,000 send() promises are unresolved: before
 *    send k the loop awaits send k - 1000 (sends resolve in order, when handed to
 *    the socket). libp2p: 105-byte records (u32 len | u8 kind | 100 B) on one
 *    stream, one `send` each, with sendLibp2p's back-pressure. tcp-raw: the same
 *    records, one `socket.write` each, 4 MiB back-pressure rule. The receiver
 *    materializes and counts every message; time runs from the first send to
 *    its report. Median of 3 runs (1 with --quick) after a warm-up run.
 * c) priority-latency: round-trip time of a 100-byte vote while the same
 *    connection is saturated by bulk data. The sender sends a vote carrying a
 *    nonce every ~10 ms (timer-driven, not waiting for echoes); the receiver
 *    echoes it back on the same channel / stream / socket; RTT is from just
 *    before the send call to the echo's arrival in this process. 10 warm-up
 *    votes are dropped, then 400 (60 with --quick) are measured. Bulk: a loop
 *    sending 1 MiB messages back to back, started 0.5 s before the first vote;
 *    bulkMBps is what the receiver counted during the vote phase.
 *      pqnet-native               votes on channel 1 (consensus), bulk on
 *                                 channel 6 (window 4 MiB, raised by the bulk
 *                                 type's 4 MiB cap); `await conn.send` loop.
 *      pqnet-native-lowwater-64MiB  the same with the sender's
 *                                 muxWriteLowWaterBytes at 64 MiB instead of
 *                                 128 KiB: frames go to the socket as soon as
 *                                 credit allows, so priorities no longer decide
 *                                 what waits in the socket buffer.
 *      libp2p-noise-yamux         a vote stream and a bulk stream on one connection.
 *      tcp-raw                    votes and bulk records on one socket (one
 *                                 FIFO, no priorities), 4 MiB back-pressure rule.
 *    Each is measured idle (votes only) and under bulk, except the low-water
 *    variant (bulk only).
 */
import crypto from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { multiaddr } from '@multiformats/multiaddr';
import type { Libp2p } from 'libp2p';
import { DEFAULT_LIMITS, makeLimits, type Limits } from '../src/core/limits.ts';
import { MuxConnection } from '../src/mux/connection.ts';
import { PeerId } from '../src/secure/identity.ts';
import { dialSecure, type SecureConfig } from '../src/secure/listener.ts';
import { TcpTransport } from '../src/transport/tcp.ts';
import { createNode, LIBP2P_IMPL, sendLibp2p } from './_libp2p.ts';
import {
  asBytes,
  Bulk,
  BULK_BODY_BYTES,
  BULK_MESSAGE_BYTES,
  FLOW_BODY_BYTES,
  FLOW_CHANNELS,
  FLOW_MESSAGE_BYTES,
  FLOWS,
  FlowTypes,
  KIND_BULK,
  KIND_FLOW,
  KIND_SMALL,
  KIND_VOTE,
  MUX_RECORD_PROTOCOL,
  record,
  RecordReader,
  scenarioRegistry,
  SMALL_BODY_BYTES,
  SMALL_MESSAGE_BYTES,
  Tx,
  Vote,
  VOTE_BODY_BYTES,
  type Blob,
  type Scenario,
} from './_mux-common.ts';
import { benchConfig } from './_pqnet.ts';
import { emit, emitEnvironment, log, mbPerSecond, median, MiB, percentile, round, selected, withChild, withTimeout, type BenchOptions, type Child, type Json } from './_util.ts';

const SERVER = fileURLToPath(new URL('./_mux-server.ts', import.meta.url));
const WRITE_BUFFER_LIMIT = DEFAULT_LIMITS.maxWriteBufferBytes;
const PQNET = 'pqnet-native';
const RAW = 'tcp-raw';
const IMPLS = [PQNET, LIBP2P_IMPL, RAW] as const;
type Impl = (typeof IMPLS)[number];
const SERVER_IMPL: Record<Impl, string> = { [PQNET]: 'pqnet', [LIBP2P_IMPL]: 'libp2p', [RAW]: 'raw' };
/** Unresolved `send` promises the pqnet small-message sender allows. */
const SMALL_PIPELINE = 1_000;
const VOTE_INTERVAL_MS = 10;
const WARMUP_VOTES = 10;
const BULK_WARMUP_MS = 500;
const LOW_WATER_VARIANT_BYTES = 64 * MiB;

// ------------------------------------------------------------ connections

/** Sender-side state of one implementation (config, libp2p node), shared by its connections. */
interface Dialer {
  readonly impl: Impl;
  readonly server: Child;
  readonly cfg?: SecureConfig;
  readonly node?: Libp2p;
}

async function makeDialer(impl: Impl, server: Child): Promise<Dialer> {
  if (impl === PQNET) return { impl, server, cfg: benchConfig('native', 'pq') };
  if (impl === LIBP2P_IMPL) return { impl, server, node: await createNode(false) };
  return { impl, server };
}

async function disposeDialer(d: Dialer): Promise<void> {
  await d.node?.stop();
}

/** dialSecure + MuxConnection, started; resolves once the peer's opening credit has arrived. */
async function openPqnet(d: Dialer, scenario: Scenario, onMessage: (type: number, value: Blob) => void, limits?: Limits): Promise<MuxConnection> {
  const cfg = d.cfg!;
  const session = await dialSecure(new TcpTransport(), String(d.server.info.address), cfg, { expectedPeerId: PeerId.parse(String(d.server.info.peerId)) });
  const conn = new MuxConnection(session, { registry: scenarioRegistry(scenario), limits: limits ?? cfg.limits, clock: cfg.clock });
  conn.on('offense', (reason, detail) => log(`pqnet offense ${reason}: ${detail}`));
  conn.on('handlerError', (e) => log(`pqnet handler error: ${String(e)}`));
  conn.start((m) => onMessage(m.type.id, m.value as Blob));
  const deadline = performance.now() + 5_000;
  while (conn.mux.credit(1) === 0) {
    if (performance.now() > deadline || conn.closed) throw new Error('pqnet: no opening credit from the receiver');
    await sleep(2);
  }
  return conn;
}

async function connectRaw(server: Child): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port: Number(server.info.port), noDelay: true });
  await once(socket, 'connect');
  socket.on('error', () => undefined);
  socket.setMaxListeners(64);
  return socket;
}

/** Write, then wait for 'drain' while 4 MiB or more are queued (bench/channel.ts's rule). */
async function writeRaw(socket: net.Socket, data: Uint8Array): Promise<void> {
  socket.write(data);
  if (socket.writableLength >= WRITE_BUFFER_LIMIT) await once(socket, 'drain');
}

async function closeRaw(socket: net.Socket): Promise<void> {
  socket.end();
  socket.resume();
  await withTimeout(once(socket, 'close'), 5_000, 'raw socket close').catch(() => socket.destroy());
}

async function dialLibp2p(d: Dialer): Promise<Awaited<ReturnType<Libp2p['dial']>>> {
  // A fresh connection each time (force), like the other implementations.
  return d.node!.dial(multiaddr(String(d.server.info.address)), { force: true });
}

// ---------------------------------------------------------- (a) throughput

interface Run {
  readonly messages: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly senderCpu: number;
  readonly received: Json;
}

/** A connection ready to be timed: `go` sends `n` messages per flow and resolves when the last send returned. */
interface Timed {
  go(n: number): Promise<void>;
  close(): Promise<void>;
}

async function timedRun(d: Dialer, open: () => Promise<Timed>, messages: number, bytes: number, perFlowMessages: number, goArg: number): Promise<Run> {
  const link = await open();
  await d.server.request({ cmd: 'expect', messages, perFlow: perFlowMessages }, 'expecting');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const received = d.server.nextEvent('received', 300_000);
  await link.go(goArg);
  const r = await received;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await link.close();
  if (r.messages !== messages || r.bytes !== bytes) log(`${d.impl}: sent ${messages} messages / ${bytes} bytes, receiver counted ${String(r.messages)} / ${String(r.bytes)}`);
  return { messages, bytes, seconds, senderCpu: (cpu.user + cpu.system) / 1e6, received: r };
}

const flowBody = crypto.randomBytes(FLOW_MESSAGE_BYTES);

function openThroughput(d: Dialer): () => Promise<Timed> {
  if (d.impl === PQNET) {
    const body = flowBody.subarray(0, FLOW_BODY_BYTES);
    return async () => {
      const conn = await openPqnet(d, 'throughput', () => undefined);
      return {
        go: async (n) => {
          await Promise.all(
            FlowTypes.map(async (type) => {
              for (let k = 0; k < n; k++) await conn.send(type, [body]);
            }),
          );
        },
        close: () => {
          conn.close();
          return Promise.resolve();
        },
      };
    };
  }
  const records = Array.from({ length: FLOWS }, (_, i) => record(KIND_FLOW + i, flowBody));
  if (d.impl === RAW) {
    return async () => {
      const socket = await connectRaw(d.server);
      return {
        go: async (n) => {
          await Promise.all(
            records.map(async (rec) => {
              for (let k = 0; k < n; k++) await writeRaw(socket, rec);
            }),
          );
        },
        close: () => closeRaw(socket),
      };
    };
  }
  return async () => {
    const conn = await dialLibp2p(d);
    const streams = await Promise.all(records.map(() => conn.newStream(MUX_RECORD_PROTOCOL)));
    return {
      go: async (n) => {
        await Promise.all(
          streams.map(async (stream, i) => {
            const rec = records[i]!;
            for (let k = 0; k < n; k++) await sendLibp2p(stream, rec);
          }),
        );
      },
      close: async () => {
        await Promise.all(streams.map((s) => s.close().catch(() => undefined)));
        await conn.close();
      },
    };
  };
}

/** Payload bytes per throughput run: full, quick. */
const THROUGHPUT_BYTES: Record<Impl, readonly [number, number]> = {
  [RAW]: [1024 * MiB, 128 * MiB],
  [PQNET]: [512 * MiB, 64 * MiB],
  [LIBP2P_IMPL]: [256 * MiB, 32 * MiB],
};

async function throughput(impl: Impl, opts: BenchOptions): Promise<number> {
  const perFlow = Math.max(1, Math.round(THROUGHPUT_BYTES[impl][opts.quick ? 1 : 0] / FLOWS / FLOW_MESSAGE_BYTES));
  const reps = opts.quick ? 1 : 3;
  return withChild(`mux-receiver-${impl}`, SERVER, ['--impl', SERVER_IMPL[impl], '--scenario', 'throughput'], async (server) => {
    const d = await makeDialer(impl, server);
    try {
      const open = openThroughput(d);
      const run = (n: number): Promise<Run> => timedRun(d, open, n * FLOWS, n * FLOWS * FLOW_MESSAGE_BYTES, n, n);
      log(`mux throughput ${impl}: warm-up`);
      await run(Math.max(1, Math.round(perFlow / 8)));
      const runs: Run[] = [];
      for (let r = 0; r < reps; r++) {
        log(`mux throughput ${impl}: run ${r + 1}/${reps}, ${FLOWS} flows x ${perFlow} messages of ${FLOW_MESSAGE_BYTES} B`);
        runs.push(await run(perFlow));
      }
      const rates = runs.map((r) => mbPerSecond(r.bytes, r.seconds));
      const value = median(rates);
      const mid = runs[rates.indexOf(value)]!;
      const finish = mid.received.flowFinishSeconds as number[] | undefined;
      emit({
        bench: 'mux',
        impl,
        metric: 'throughput',
        transport: 'tcp-loopback-2proc',
        flows: FLOWS,
        ...(impl === PQNET ? { flowChannels: FLOW_CHANNELS, channelWindowBytes: DEFAULT_LIMITS.muxWindowBytes } : impl === LIBP2P_IMPL ? { streams: FLOWS } : { sockets: 1 }),
        messageBytes: FLOW_MESSAGE_BYTES,
        value: round(value, 1),
        unit: 'MB/s',
        bytes: mid.bytes,
        seconds: round(mid.seconds),
        runs: rates.map((x) => round(x, 1)),
        senderCpu: round(mid.senderCpu / mid.seconds, 2),
        receiverCpu: round(Number(mid.received.receiverCpuSeconds) / Number(mid.received.receiverSeconds), 2),
        ...(finish === undefined ? {} : { flowFinishSeconds: finish.map((x) => round(x, 3)) }),
      });
      return value;
    } finally {
      await disposeDialer(d);
    }
  });
}

// ------------------------------------------------------- (b) small messages

function openSmall(d: Dialer): () => Promise<Timed> {
  const body = crypto.randomBytes(SMALL_BODY_BYTES);
  if (d.impl === PQNET) {
    return async () => {
      const conn = await openPqnet(d, 'small', () => undefined);
      return {
        go: async (n) => {
          const pending: Promise<void>[] = [];
          for (let k = 0; k < n; k++) {
            const slot = k % SMALL_PIPELINE;
            if (k >= SMALL_PIPELINE) await pending[slot];
            pending[slot] = conn.send(Tx, [body]);
          }
          await Promise.all(pending);
        },
        close: () => {
          conn.close();
          return Promise.resolve();
        },
      };
    };
  }
  const rec = record(KIND_SMALL, crypto.randomBytes(SMALL_MESSAGE_BYTES));
  if (d.impl === RAW) {
    return async () => {
      const socket = await connectRaw(d.server);
      return {
        go: async (n) => {
          for (let k = 0; k < n; k++) {
            socket.write(rec);
            if (socket.writableLength >= WRITE_BUFFER_LIMIT) await once(socket, 'drain');
          }
        },
        close: () => closeRaw(socket),
      };
    };
  }
  return async () => {
    const conn = await dialLibp2p(d);
    const stream = await conn.newStream(MUX_RECORD_PROTOCOL);
    return {
      go: async (n) => {
        for (let k = 0; k < n; k++) {
          const wait = sendLibp2p(stream, rec);
          if (wait !== undefined) await wait;
        }
      },
      close: async () => {
        await stream.close().catch(() => undefined);
        await conn.close();
      },
    };
  };
}

/** Messages per small-message run: full, quick. */
const SMALL_COUNT: Record<Impl, readonly [number, number]> = {
  [RAW]: [1_000_000, 200_000],
  [PQNET]: [500_000, 100_000],
  [LIBP2P_IMPL]: [300_000, 30_000],
};

async function smallMessages(impl: Impl, opts: BenchOptions): Promise<number> {
  const n = SMALL_COUNT[impl][opts.quick ? 1 : 0];
  const reps = opts.quick ? 1 : 3;
  return withChild(`mux-receiver-${impl}`, SERVER, ['--impl', SERVER_IMPL[impl], '--scenario', 'small'], async (server) => {
    const d = await makeDialer(impl, server);
    try {
      const open = openSmall(d);
      const run = (m: number): Promise<Run> => timedRun(d, open, m, m * SMALL_MESSAGE_BYTES, 0, m);
      log(`mux small-messages ${impl}: warm-up`);
      await run(Math.round(n / 10));
      const runs: Run[] = [];
      for (let r = 0; r < reps; r++) {
        log(`mux small-messages ${impl}: run ${r + 1}/${reps}, ${n} messages of ${SMALL_MESSAGE_BYTES} B`);
        runs.push(await run(n));
      }
      const rates = runs.map((r) => r.messages / r.seconds);
      const value = median(rates);
      const mid = runs[rates.indexOf(value)]!;
      emit({
        bench: 'mux',
        impl,
        metric: 'small-messages',
        transport: 'tcp-loopback-2proc',
        messageBytes: SMALL_MESSAGE_BYTES,
        sender:
          impl === PQNET
            ? `conn.send(Tx) on channel 3, at most ${SMALL_PIPELINE} unresolved sends`
            : impl === LIBP2P_IMPL
              ? 'one stream.send per 105-byte record, sendLibp2p back-pressure'
              : 'one socket.write per 105-byte record, drain at 4 MiB queued',
        value: round(value, 0),
        unit: 'messages/s',
        payloadMBps: round(mbPerSecond(mid.bytes, mid.seconds), 1),
        messages: mid.messages,
        seconds: round(mid.seconds),
        runs: rates.map((x) => round(x, 0)),
        senderCpu: round(mid.senderCpu / mid.seconds, 2),
        receiverCpu: round(Number(mid.received.receiverCpuSeconds) / Number(mid.received.receiverSeconds), 2),
      });
      return value;
    } finally {
      await disposeDialer(d);
    }
  });
}

// ----------------------------------------------------- (c) priority latency

interface VoteLink {
  sendVote(body: Buffer): void;
  /** Send bulk messages back to back until `stop()` is true. */
  bulk(stop: () => boolean): Promise<void>;
  close(): Promise<void>;
}

async function openVoteLink(d: Dialer, onEcho: (nonce: number) => void, lowWater: number | undefined): Promise<VoteLink> {
  const bulkBody = crypto.randomBytes(BULK_BODY_BYTES);
  const nonceOf = (b: Uint8Array): number => Buffer.from(b.buffer, b.byteOffset, b.byteLength).readUInt32BE(0);
  if (d.impl === PQNET) {
    const limits = lowWater === undefined ? undefined : makeLimits({ ...d.cfg!.limits, muxWriteLowWaterBytes: lowWater });
    const conn = await openPqnet(
      d,
      'latency',
      (type, value) => {
        if (type === Vote.id) onEcho(nonceOf(value[0]));
      },
      limits,
    );
    return {
      sendVote: (body) => {
        conn.send(Vote, [body]).catch(() => undefined);
      },
      bulk: async (stop) => {
        while (!stop()) await conn.send(Bulk, [bulkBody]);
      },
      close: () => {
        conn.close();
        return Promise.resolve();
      },
    };
  }
  const bulkRec = record(KIND_BULK, crypto.randomBytes(BULK_MESSAGE_BYTES));
  const reader = new RecordReader((kind, _size, body) => {
    if (kind === KIND_VOTE && body !== undefined) onEcho(nonceOf(body));
  });
  if (d.impl === RAW) {
    const socket = await connectRaw(d.server);
    socket.on('data', (b: Buffer) => reader.push(b));
    return {
      sendVote: (body) => {
        socket.write(record(KIND_VOTE, body));
      },
      bulk: async (stop) => {
        while (!stop()) await writeRaw(socket, bulkRec);
      },
      close: () => closeRaw(socket),
    };
  }
  const conn = await dialLibp2p(d);
  const votes = await conn.newStream(MUX_RECORD_PROTOCOL);
  const bulk = await conn.newStream(MUX_RECORD_PROTOCOL);
  votes.addEventListener('message', (e) => reader.push(asBytes(e.data)));
  return {
    sendVote: (body) => {
      votes.send(record(KIND_VOTE, body));
    },
    bulk: async (stop) => {
      while (!stop()) await sendLibp2p(bulk, bulkRec);
    },
    close: async () => {
      votes.abort(new Error('done'));
      bulk.abort(new Error('done'));
      await conn.close().catch(() => undefined);
    },
  };
}

interface LatencyVariant {
  readonly impl: Impl;
  readonly name: string;
  readonly load: 'idle' | 'bulk';
  readonly lowWater?: number;
}

const LATENCY_VARIANTS: readonly LatencyVariant[] = [
  { impl: PQNET, name: PQNET, load: 'idle' },
  { impl: PQNET, name: PQNET, load: 'bulk' },
  { impl: PQNET, name: `${PQNET}-lowwater-64MiB`, load: 'bulk', lowWater: LOW_WATER_VARIANT_BYTES },
  { impl: LIBP2P_IMPL, name: LIBP2P_IMPL, load: 'idle' },
  { impl: LIBP2P_IMPL, name: LIBP2P_IMPL, load: 'bulk' },
  { impl: RAW, name: RAW, load: 'idle' },
  { impl: RAW, name: RAW, load: 'bulk' },
];

async function priorityLatency(v: LatencyVariant, opts: BenchOptions): Promise<Json> {
  const votes = opts.quick ? 60 : 400;
  return withChild(`mux-receiver-${v.name}-${v.load}`, SERVER, ['--impl', SERVER_IMPL[v.impl], '--scenario', 'latency'], async (server) => {
    const d = await makeDialer(v.impl, server);
    try {
      const sentAt = new Map<number, number>();
      const rtts: number[] = [];
      let echoed = 0;
      let allEchoed: (() => void) | undefined;
      const total = WARMUP_VOTES + votes;
      const link = await openVoteLink(
        d,
        (nonce) => {
          const t = sentAt.get(nonce);
          if (t === undefined) return;
          sentAt.delete(nonce);
          if (nonce >= WARMUP_VOTES) rtts.push(performance.now() - t);
          if (++echoed === total) allEchoed?.();
        },
        v.lowWater,
      );
      let stopping = false;
      let bulkDone: Promise<void> = Promise.resolve();
      if (v.load === 'bulk') {
        bulkDone = link.bulk(() => stopping).catch((e: unknown) => {
          if (!stopping) log(`${v.name}: bulk sender failed: ${e instanceof Error ? e.message : String(e)}`);
        });
        await sleep(BULK_WARMUP_MS);
      }
      log(`mux priority-latency ${v.name} ${v.load}: ${votes} votes, ${VOTE_INTERVAL_MS} ms apart`);
      const done = new Promise<void>((resolve) => (allEchoed = resolve));
      let s0: Json | undefined;
      let t0 = 0;
      for (let k = 0; k < total; k++) {
        if (k === WARMUP_VOTES) {
          s0 = await server.request({ cmd: 'stats' }, 'stats');
          t0 = performance.now();
        }
        const body = Buffer.alloc(VOTE_BODY_BYTES);
        body.writeUInt32BE(k, 0);
        sentAt.set(k, performance.now());
        link.sendVote(body);
        await sleep(VOTE_INTERVAL_MS);
      }
      await withTimeout(done, 10_000, 'vote echoes').catch(() => log(`${v.name}: ${sentAt.size} votes not echoed within 10 s`));
      const s1 = await server.request({ cmd: 'stats' }, 'stats');
      const seconds = (performance.now() - t0) / 1000;
      stopping = true;
      await withTimeout(bulkDone, 10_000, 'bulk sender stop').catch(() => undefined);
      await link.close();
      const bulkBytes = (s: Json | undefined): number => Number((s?.bytesByKind as Record<string, number> | undefined)?.[String(KIND_BULK)] ?? 0);
      const sorted = rtts.sort((a, b) => a - b);
      const fig: Json = {
        bench: 'mux',
        impl: v.name,
        metric: 'priority-latency',
        load: v.load,
        transport: 'tcp-loopback-2proc',
        value: round(percentile(sorted, 50), 3),
        unit: 'ms',
        p50: round(percentile(sorted, 50), 3),
        p90: round(percentile(sorted, 90), 3),
        p99: round(percentile(sorted, 99), 3),
        max: round(sorted[sorted.length - 1] ?? Number.NaN, 3),
        votes: sorted.length,
        lost: votes - sorted.length,
        voteBytes: 100,
        ...(v.load === 'bulk' ? { bulkMessageBytes: BULK_MESSAGE_BYTES, bulkMBps: round(mbPerSecond(bulkBytes(s1) - bulkBytes(s0), seconds), 1) } : {}),
        ...(v.impl === PQNET ? { muxWriteLowWaterBytes: v.lowWater ?? DEFAULT_LIMITS.muxWriteLowWaterBytes, voteChannel: Vote.channel, bulkChannel: Bulk.channel } : {}),
      };
      emit(fig);
      return fig;
    } finally {
      await disposeDialer(d);
    }
  });
}

// ------------------------------------------------------------------- main

export async function main(opts: BenchOptions): Promise<void> {
  log(`mux benchmark (${opts.quick ? 'quick' : 'full'})`);
  emitEnvironment('mux', opts);
  const tput = new Map<string, number>();
  for (const impl of IMPLS) if (selected(opts, impl)) tput.set(impl, await throughput(impl, opts));
  const small = new Map<string, number>();
  for (const impl of IMPLS) if (selected(opts, impl)) small.set(impl, await smallMessages(impl, opts));
  const lat: Json[] = [];
  for (const v of LATENCY_VARIANTS) if (selected(opts, v.name)) lat.push(await priorityLatency(v, opts));
  const ratios = (m: Map<string, number>, base: string): Json | null => {
    const b = m.get(base);
    return b === undefined ? null : Object.fromEntries([...m].map(([k, x]) => [k, round(x / b, 3)]));
  };
  emit({
    bench: 'mux',
    metric: 'summary',
    throughputMBps: Object.fromEntries([...tput].map(([k, x]) => [k, round(x, 1)])),
    throughputVsTcpRaw: ratios(tput, RAW),
    throughputVsLibp2p: ratios(tput, LIBP2P_IMPL),
    smallMessagesPerSecond: Object.fromEntries([...small].map(([k, x]) => [k, round(x, 0)])),
    smallMessagesVsTcpRaw: ratios(small, RAW),
    smallMessagesVsLibp2p: ratios(small, LIBP2P_IMPL),
    priorityLatencyMs: Object.fromEntries(lat.map((f) => [`${String(f.impl)}/${String(f.load)}`, { p50: f.p50, p90: f.p90, p99: f.p99, ...(f.bulkMBps === undefined ? {} : { bulkMBps: f.bulkMBps }) }])),
  });
}
