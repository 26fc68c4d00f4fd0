/**
 * Benchmark server child process: `node bench/_server.ts --mode <mode> [...]`.
 *
 *   --mode pqnet  --provider native|portable --suite pq|classic   SecureListener
 *                 [--transport tcp|ws]                            over TCP (default) or WebSocket
 *   --mode libp2p                                                 js-libp2p TCP+Noise+Yamux
 *   --mode raw                                                    node:net sink
 *   --mode aead --key <64 hex>                                    chacha20-poly1305 record sink
 *   --mode ws-raw                                                 `ws` binary message sink
 *
 * Prints `{"event":"ready","address":...}` and, with `--report`, one
 * `{"event":"received","bytes":...}` per connection (stream) when the sender
 * closes it. Commands on stdin: `{"cmd":"stats"}`. Exits when stdin closes.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { SecureListener } from '../src/secure/listener.ts';
import type { ProviderName } from '../src/secure/provider.ts';
import { TcpTransport } from '../src/transport/tcp.ts';
import { WebSocketTransport, WS_MAX_MESSAGE_BYTES } from '../src/transport/ws.ts';
import { createNode, LIBP2P_SINK_PROTOCOL } from './_libp2p.ts';
import { benchConfig, type Suite } from './_pqnet.ts';
import { parseFlags, serveParent, toParent, type Json } from './_util.ts';

const flags = parseFlags(process.argv.slice(2));
const mode = flags.get('mode');
const report = flags.get('report') === 'true';

/** Byte counting for one inbound connection, reported when it ends. */
class Counter {
  bytes = 0;
  frames = 0;
  #first = 0;
  #cpu: NodeJS.CpuUsage | undefined;
  #reported = false;

  add(n: number): void {
    if (this.frames === 0) {
      this.#first = performance.now();
      this.#cpu = process.cpuUsage();
    }
    this.bytes += n;
    this.frames++;
  }

  report(extra: Json = {}): void {
    if (!report || this.#reported) return;
    this.#reported = true;
    const seconds = this.frames === 0 ? 0 : (performance.now() - this.#first) / 1000;
    const cpu = process.cpuUsage(this.#cpu);
    // CPU time of this whole process (user + system) from the first byte to the report.
    const cpuSeconds = this.#cpu === undefined ? 0 : (cpu.user + cpu.system) / 1e6;
    toParent({ event: 'received', bytes: this.bytes, frames: this.frames, receiverSeconds: seconds, receiverCpuSeconds: cpuSeconds, ...extra });
  }
}

async function pqnet(): Promise<void> {
  const provider = (flags.get('provider') ?? 'native') as ProviderName;
  const suite = (flags.get('suite') ?? 'pq') as Suite;
  const cfg = benchConfig(provider, suite);
  const scheme = flags.get('transport') ?? 'tcp';
  if (scheme !== 'tcp' && scheme !== 'ws') throw new Error(`--transport must be tcp or ws, not ${scheme}`);
  const transport = scheme === 'ws' ? new WebSocketTransport() : new TcpTransport();
  let sessions = 0;
  const listener = await SecureListener.listen({
    ...cfg,
    transport,
    address: `${scheme}://127.0.0.1:0`,
    onSession: (s) => {
      sessions++;
      const c = new Counter();
      s.once('close', (reason) => c.report({ reason: reason.code, aead: s.aead, rekeys: s.stats.rekeysIn }));
      s.start((f) => c.add(f.chunk.length));
    },
    onHandshakeError: (e) => {
      if (report) process.stderr.write(`[server] handshake failed: ${e.code} ${e.message}\n`);
    },
  });
  serveParent(
    { address: listener.address, peerId: cfg.identity.peerId.toString(), provider, suite },
    (cmd) => {
      if (cmd.cmd === 'stats') {
        const s = listener.stats;
        return { event: 'stats', sessions, accepted: s.accepted, refused: s.refused, failed: s.failed, retriesSent: s.retriesSent, failures: Object.fromEntries(s.failuresByReason) };
      }
      return { event: 'error', message: `unknown command ${JSON.stringify(cmd)}` };
    },
    () => listener.close(),
  );
}

async function libp2p(): Promise<void> {
  const node = await createNode(true);
  let connections = 0;
  node.addEventListener('connection:open', () => connections++);
  await node.handle(
    LIBP2P_SINK_PROTOCOL,
    (stream) => {
      const c = new Counter();
      stream.addEventListener('message', (e) => c.add(e.data.byteLength));
      stream.addEventListener('remoteCloseWrite', () => {
        c.report();
        stream.close().catch(() => undefined);
      });
      stream.addEventListener('close', () => c.report());
    },
    { maxInboundStreams: 1024 },
  );
  const address = node.getMultiaddrs()[0]!.toString();
  serveParent(
    { address, peerId: node.peerId.toString() },
    (cmd) => (cmd.cmd === 'stats' ? { event: 'stats', connections, open: node.getConnections().length } : { event: 'error', message: 'unknown command' }),
    async () => {
      await node.stop();
    },
  );
}

function listenNet(onSocket: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, onSocket);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve(server));
  });
}

function serveNet(server: net.Server): void {
  const a = server.address() as net.AddressInfo;
  serveParent({ address: `127.0.0.1:${a.port}`, port: a.port }, () => ({ event: 'error', message: 'no commands' }), () => new Promise((r) => server.close(() => r())));
}

async function raw(): Promise<void> {
  const server = await listenNet((socket) => {
    const c = new Counter();
    socket.on('data', (b: Buffer) => c.add(b.length));
    socket.on('end', () => {
      c.report();
      socket.end();
    });
    socket.on('error', () => undefined);
  });
  serveNet(server);
}

/** The simplest encrypted stream: len:u32be || chacha20-poly1305(counter nonce) records. */
async function aead(): Promise<void> {
  const rawKey = Buffer.from(flags.get('key') ?? '', 'hex');
  if (rawKey.length !== 32) throw new Error('--key must be 32 bytes of hex');
  const key = crypto.createSecretKey(rawKey);
  const server = await listenNet((socket) => {
    const c = new Counter();
    let pending: Buffer = Buffer.alloc(0);
    let counter = 0;
    const nonce = Buffer.alloc(12);
    socket.on('data', (b: Buffer) => {
      pending = pending.length === 0 ? b : Buffer.concat([pending, b]);
      let off = 0;
      while (pending.length - off >= 4) {
        const len = pending.readUInt32BE(off);
        if (pending.length - off < 4 + len) break;
        nonce.writeUInt32BE(counter++, 8);
        const d = crypto.createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
        d.setAuthTag(pending.subarray(off + 4 + len - 16, off + 4 + len));
        const pt = d.update(pending.subarray(off + 4, off + 4 + len - 16));
        d.final();
        c.add(pt.length);
        off += 4 + len;
      }
      pending = pending.subarray(off);
    });
    socket.on('end', () => {
      c.report({ leftover: pending.length });
      socket.end();
    });
    socket.on('error', () => undefined);
  });
  serveNet(server);
}

/** Plain `ws` (binary messages, no compression, the transport's payload cap): counts message bytes until the close. */
async function wsRaw(): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: WS_MAX_MESSAGE_BYTES });
  await new Promise<void>((resolve, reject) => {
    wss.once('error', reject);
    wss.once('listening', () => resolve());
  });
  wss.on('connection', (ws) => {
    const c = new Counter();
    ws.on('message', (data: Buffer) => c.add(data.length));
    ws.on('error', () => undefined);
    ws.on('close', () => c.report());
  });
  const a = wss.address() as net.AddressInfo;
  serveParent(
    { address: `ws://127.0.0.1:${a.port}`, port: a.port },
    () => ({ event: 'error', message: 'no commands' }),
    () =>
      new Promise((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  );
}

const modes: Record<string, () => Promise<void>> = { pqnet, libp2p, raw, aead, 'ws-raw': wsRaw };
const run = mode === undefined ? undefined : modes[mode];
if (run === undefined) {
  process.stderr.write(`[server] unknown --mode ${String(mode)}\n`);
  process.exit(2);
}
run().catch((e: unknown) => {
  process.stderr.write(`[server] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
