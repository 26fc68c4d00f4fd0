/**
 * Receiver child of the mux benchmark (bench/mux.ts):
 * `node bench/_mux-server.ts --impl pqnet|libp2p|raw --scenario throughput|small|latency`.
 *
 *   pqnet   SecureListener (native provider, pq suite, benchConfig); every
 *           session is wrapped in a MuxConnection with the scenario's registry
 *           and started; handlers return at once, so credit goes back as soon
 *           as a message is counted.
 *   libp2p  js-libp2p TCP+Noise+Yamux node; protocol MUX_RECORD_PROTOCOL, one
 *           RecordReader per stream.
 *   raw     node:net server, one RecordReader per socket.
 *
 * Every implementation counts messages and bytes per kind (see
 * bench/_mux-common.ts) and echoes votes on the same channel / stream / socket.
 *
 * Commands on stdin:
 *   {"cmd":"expect","messages":N,"perFlow":M?}  reset the run counters; replies
 *       {"event":"expecting"}; once N messages have arrived, sends
 *       {"event":"received",messages,bytes,receiverSeconds,receiverCpuSeconds,flowFinishSeconds?}
 *       where the clock runs from the first message of the run, and
 *       flowFinishSeconds[i] is when flow i had delivered M messages.
 *   {"cmd":"stats"}  cumulative bytes per kind since start, connections.
 * Exits when stdin closes.
 */
import net from 'node:net';
import { MuxConnection } from '../src/mux/connection.ts';
import { SecureListener } from '../src/secure/listener.ts';
import { TcpTransport } from '../src/transport/tcp.ts';
import { createNode } from './_libp2p.ts';
import { asBytes, Bulk, FLOWS, KIND_BULK, KIND_FLOW, KIND_SMALL, KIND_VOTE, MUX_RECORD_PROTOCOL, record, RecordReader, scenarioRegistry, Tx, Vote, type Blob, type Scenario } from './_mux-common.ts';
import { benchConfig } from './_pqnet.ts';
import { parseFlags, serveParent, toParent, type Json } from './_util.ts';

const flags = parseFlags(process.argv.slice(2));
const impl = flags.get('impl');
const scenario = (flags.get('scenario') ?? 'throughput') as Scenario;

// ------------------------------------------------------------------ counting

const totals = new Map<number, number>();
let connections = 0;
let run:
  | {
      readonly expected: number;
      readonly perFlow: number;
      messages: number;
      bytes: number;
      readonly flowCounts: number[];
      readonly flowFinish: number[];
      first: number;
      cpu: NodeJS.CpuUsage | undefined;
      done: boolean;
    }
  | undefined;

function count(kind: number, bytes: number): void {
  totals.set(kind, (totals.get(kind) ?? 0) + bytes);
  const r = run;
  if (r === undefined || r.done) return;
  if (r.messages === 0) {
    r.first = performance.now();
    r.cpu = process.cpuUsage();
  }
  r.messages++;
  r.bytes += bytes;
  const flow = kind - KIND_FLOW;
  if (flow >= 0 && flow < FLOWS && ++r.flowCounts[flow]! === r.perFlow) r.flowFinish[flow] = (performance.now() - r.first) / 1000;
  if (r.messages >= r.expected) {
    r.done = true;
    const cpu = process.cpuUsage(r.cpu);
    toParent({
      event: 'received',
      messages: r.messages,
      bytes: r.bytes,
      receiverSeconds: (performance.now() - r.first) / 1000,
      receiverCpuSeconds: (cpu.user + cpu.system) / 1e6,
      ...(r.perFlow > 0 ? { flowFinishSeconds: r.flowFinish } : {}),
    });
  }
}

function onCommand(cmd: Json): Json {
  if (cmd.cmd === 'expect') {
    run = {
      expected: Number(cmd.messages),
      perFlow: Number(cmd.perFlow ?? 0),
      messages: 0,
      bytes: 0,
      flowCounts: new Array<number>(FLOWS).fill(0),
      flowFinish: new Array<number>(FLOWS).fill(Number.NaN),
      first: 0,
      cpu: undefined,
      done: false,
    };
    return { event: 'expecting' };
  }
  if (cmd.cmd === 'stats') return { event: 'stats', connections, bytesByKind: Object.fromEntries(totals) };
  return { event: 'error', message: `unknown command ${JSON.stringify(cmd)}` };
}

// ------------------------------------------------------------ implementations

async function pqnet(): Promise<void> {
  const cfg = benchConfig('native', 'pq');
  const registry = scenarioRegistry(scenario);
  const kindOf = new Map<number, number>([
    [Tx.id, KIND_SMALL],
    [Vote.id, KIND_VOTE],
    [Bulk.id, KIND_BULK],
    ...Array.from({ length: FLOWS }, (_, i) => [0x8100 + i, KIND_FLOW + i] as [number, number]),
  ]);
  const listener = await SecureListener.listen({
    ...cfg,
    transport: new TcpTransport(),
    address: 'tcp://127.0.0.1:0',
    onSession: (session) => {
      connections++;
      const conn = new MuxConnection(session, { registry, limits: cfg.limits, clock: cfg.clock });
      conn.on('offense', (reason, detail) => process.stderr.write(`[mux-server] offense ${reason}: ${detail}\n`));
      conn.on('handlerError', (e) => process.stderr.write(`[mux-server] handler error: ${String(e)}\n`));
      conn.on('close', (reason) => {
        if (reason.code !== 'REMOTE_CLOSED' && reason.code !== 'CLOSED' && reason.code !== 'SHUTDOWN') process.stderr.write(`[mux-server] connection closed: ${reason.code} ${reason.message}\n`);
      });
      conn.start((m, c) => {
        if (m.type.id === Vote.id) c.send(Vote, m.value as Blob).catch(() => undefined);
        count(kindOf.get(m.type.id) ?? 0, m.bytes);
      });
    },
    onHandshakeError: (e) => process.stderr.write(`[mux-server] handshake failed: ${e.code} ${e.message}\n`),
  });
  serveParent({ address: listener.address, peerId: cfg.identity.peerId.toString() }, onCommand, () => listener.close());
}

async function libp2p(): Promise<void> {
  const node = await createNode(true);
  node.addEventListener('connection:open', () => connections++);
  await node.handle(
    MUX_RECORD_PROTOCOL,
    (stream) => {
      const reader = new RecordReader((kind, size, body) => {
        if (kind === KIND_VOTE && body !== undefined) stream.send(record(KIND_VOTE, body));
        count(kind, size);
      });
      stream.addEventListener('message', (e) => reader.push(asBytes(e.data)));
      stream.addEventListener('remoteCloseWrite', () => {
        stream.close().catch(() => undefined);
      });
    },
    { maxInboundStreams: 1024 },
  );
  serveParent({ address: node.getMultiaddrs()[0]!.toString(), peerId: node.peerId.toString() }, onCommand, async () => {
    await node.stop();
  });
}

async function raw(): Promise<void> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    connections++;
    const reader = new RecordReader((kind, size, body) => {
      if (kind === KIND_VOTE && body !== undefined) socket.write(record(KIND_VOTE, body));
      count(kind, size);
    });
    socket.on('data', (b: Buffer) => reader.push(b));
    socket.on('end', () => socket.end());
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  serveParent({ address: `127.0.0.1:${port}`, port }, onCommand, () => new Promise((r) => server.close(() => r())));
}

const impls: Record<string, () => Promise<void>> = { pqnet, libp2p, raw };
const start = impl === undefined ? undefined : impls[impl];
if (start === undefined) {
  process.stderr.write(`[mux-server] unknown --impl ${String(impl)}\n`);
  process.exit(2);
}
start().catch((e: unknown) => {
  process.stderr.write(`[mux-server] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
