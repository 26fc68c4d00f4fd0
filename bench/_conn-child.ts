/**
 * Child process of the connection-memory benchmark (bench/conn-memory.ts):
 * `node --expose-gc bench/_conn-child.ts --role server|dialer --impl pqnet|libp2p|raw`.
 *
 * The server listens and keeps every inbound connection open and idle; the
 * dialer opens connections to it on command and keeps them. Neither sends
 * anything after setup (pqnet: the opening CREDIT of each MuxConnection).
 *
 * Commands (both roles):
 *   {"cmd":"mem"}   full GC (several passes), then {"event":"mem",rss,heapUsed,
 *                   heapTotal,external,arrayBuffers,live,ready} in bytes; `live`
 *                   is the open connections, `ready` those fully set up (pqnet:
 *                   the peer's opening credit has arrived; libp2p: status
 *                   open; raw: connected).
 *   {"cmd":"count"} the same `live` and `ready`, without GC: {"event":"count",...}.
 * Dialer only:
 *   {"cmd":"prepare","address":...,"peerId":...,"port":...}  build what is
 *                   shared by all connections (pqnet config, libp2p dialer
 *                   nodes) before the baseline is taken; {"event":"prepared"}.
 *   {"cmd":"open","count":N,"keep":true|false}  open N connections (16 at a
 *                   time); with keep false close them again (warm-up);
 *                   {"event":"opened",opened,errors,seconds,firstError?}.
 */
import net from 'node:net';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { multiaddr } from '@multiformats/multiaddr';
import type { Libp2p } from 'libp2p';
import { MuxConnection } from '../src/mux/connection.ts';
import { PeerId } from '../src/secure/identity.ts';
import { dialSecure, SecureListener, type SecureConfig } from '../src/secure/listener.ts';
import type { SecureSession } from '../src/secure/session.ts';
import { TcpTransport } from '../src/transport/tcp.ts';
import { createRegistry } from '../src/wire/messages.ts';
import { createNode } from './_libp2p.ts';
import { benchConfig } from './_pqnet.ts';
import { parseFlags, serveParent, type Json } from './_util.ts';

const flags = parseFlags(process.argv.slice(2));
const role = flags.get('role');
const impl = flags.get('impl');
/** Dials in flight at once. */
const CONCURRENCY = 16;
/** libp2p joins concurrent dials to one peer from one node, so each dialling worker gets its own node. */
const LIBP2P_DIALER_NODES = CONCURRENCY;
/** The registry is shared by all connections; the control messages are all an idle connection needs. */
const registry = createRegistry();

async function memory(live: () => number, ready: () => number): Promise<Json> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  // Several passes with turns of the event loop between them, so that weak
  // callbacks and ArrayBuffer finalizers run and their memory is counted as freed.
  for (let i = 0; i < 4; i++) {
    gc();
    await tick();
    await sleep(20);
  }
  const m = process.memoryUsage();
  return { event: 'mem', rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, live: live(), ready: ready() };
}

/** The commands both roles answer. */
function command(cmd: Json, live: () => number, ready: () => number): Promise<Json> | Json {
  if (cmd.cmd === 'mem') return memory(live, ready);
  if (cmd.cmd === 'count') return { event: 'count', live: live(), ready: ready() };
  return { event: 'error', message: `unknown command ${JSON.stringify(cmd)}` };
}

/** Run `task(i)` for i < count with `concurrency` in flight; count failures. */
async function pool(count: number, concurrency: number, task: (i: number, worker: number) => Promise<void>): Promise<{ errors: number; firstError?: string }> {
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async (_, worker) => {
      while (next < count) {
        const i = next++;
        try {
          await task(i, worker);
        } catch (e) {
          errors++;
          firstError ??= e instanceof Error ? e.message : String(e);
        }
      }
    }),
  );
  return firstError === undefined ? { errors } : { errors, firstError };
}

// -------------------------------------------------------------------- pqnet

/**
 * Wrap and start. `onClose` is attached before `start`: a peer that closed at
 * once may have its GOODBYE delivered (and 'close' emitted) inside `start`.
 */
function muxConnection(session: SecureSession, cfg: SecureConfig, onClose?: (conn: MuxConnection) => void): MuxConnection {
  const conn = new MuxConnection(session, { registry, limits: cfg.limits, clock: cfg.clock });
  conn.on('handlerError', (e) => process.stderr.write(`[conn-child] handler error: ${String(e)}\n`));
  if (onClose !== undefined) conn.once('close', () => onClose(conn));
  conn.start(() => undefined);
  return conn;
}

const pqnetLive = new Set<MuxConnection>();
const pqnetReady = (): number => [...pqnetLive].filter((c) => c.mux.credit(1) > 0).length;

async function pqnetServer(): Promise<void> {
  const cfg = benchConfig('native', 'pq');
  const listener = await SecureListener.listen({
    ...cfg,
    transport: new TcpTransport(),
    address: 'tcp://127.0.0.1:0',
    onSession: (session) => {
      const conn = muxConnection(session, cfg, (c) => pqnetLive.delete(c));
      if (!conn.closed) pqnetLive.add(conn);
    },
    onHandshakeError: (e) => process.stderr.write(`[conn-child] handshake failed: ${e.code} ${e.message}\n`),
  });
  serveParent(
    { address: listener.address, peerId: cfg.identity.peerId.toString() },
    (cmd) => command(cmd, () => pqnetLive.size, pqnetReady),
    () => listener.close(),
  );
}

/**
 * Open `count` authenticated pqnet connections to `address`: dialSecure with
 * CONCURRENCY handshakes in flight, each session wrapped in a MuxConnection
 * and started, so the opening credits are exchanged. Everything a connection
 * holds on to lives in the returned handles. This is the one place to switch
 * to a higher-level node class once there is one.
 */
async function openPqnet(count: number, address: string, expectedPeerId: PeerId, cfg: SecureConfig): Promise<{ conns: MuxConnection[]; errors: number; firstError?: string }> {
  const transport = new TcpTransport();
  const conns: MuxConnection[] = [];
  const result = await pool(count, CONCURRENCY, async () => {
    const session = await dialSecure(transport, address, cfg, { expectedPeerId });
    conns.push(muxConnection(session, cfg));
  });
  return { conns, ...result };
}

// ------------------------------------------------------------------- libp2p

async function libp2pServer(): Promise<void> {
  const node = await createNode(true);
  const ready = (): number => node.getConnections().filter((c) => c.status === 'open').length;
  serveParent(
    { address: node.getMultiaddrs()[0]!.toString(), peerId: node.peerId.toString() },
    (cmd) => command(cmd, () => node.getConnections().length, ready),
    async () => {
      await node.stop();
    },
  );
}

// ---------------------------------------------------------------------- raw

const rawLive = new Set<net.Socket>();

function track(socket: net.Socket): void {
  rawLive.add(socket);
  socket.on('error', () => undefined);
  socket.once('close', () => rawLive.delete(socket));
  socket.resume();
}

async function rawServer(): Promise<void> {
  const server = net.createServer({ noDelay: true }, track);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  serveParent(
    { address: `127.0.0.1:${port}`, port },
    (cmd) => command(cmd, () => rawLive.size, () => rawLive.size),
    () => new Promise((r) => server.close(() => r())),
  );
}

function connectRaw(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

// ------------------------------------------------------------------- dialer

function dialer(): void {
  let target: Json = {};
  let cfg: SecureConfig | undefined;
  let nodes: Libp2p[] = [];
  const pq: MuxConnection[] = [];
  const lp: Awaited<ReturnType<Libp2p['dial']>>[] = [];
  const live = (): number => (impl === 'pqnet' ? pq.filter((c) => !c.closed).length : impl === 'libp2p' ? lp.filter((c) => c.status === 'open').length : rawLive.size);
  const ready = (): number => (impl === 'pqnet' ? pq.filter((c) => c.mux.credit(1) > 0).length : live());

  const open = async (count: number, keep: boolean): Promise<Json> => {
    const t0 = performance.now();
    let opened = 0;
    let result: { errors: number; firstError?: string };
    if (impl === 'pqnet') {
      const r = await openPqnet(count, String(target.address), PeerId.parse(String(target.peerId)), cfg!);
      opened = r.conns.length;
      result = r.firstError === undefined ? { errors: r.errors } : { errors: r.errors, firstError: r.firstError };
      if (keep) pq.push(...r.conns);
      else for (const c of r.conns) c.close();
    } else if (impl === 'libp2p') {
      const ma = multiaddr(String(target.address));
      const mine: typeof lp = [];
      result = await pool(count, nodes.length, async (_, worker) => {
        // force: a new connection even though one to this peer exists.
        mine.push(await nodes[worker]!.dial(ma, { force: true }));
      });
      opened = mine.length;
      if (keep) lp.push(...mine);
      else await Promise.all(mine.map((c) => c.close().catch(() => undefined)));
    } else {
      const mine: net.Socket[] = [];
      result = await pool(count, CONCURRENCY, async () => {
        const s = await connectRaw(Number(target.port));
        track(s);
        mine.push(s);
      });
      opened = mine.length;
      if (!keep) for (const s of mine) s.destroy();
    }
    return { event: 'opened', opened, seconds: (performance.now() - t0) / 1000, ...result };
  };

  serveParent(
    { role: 'dialer', impl },
    async (cmd) => {
      if (cmd.cmd === 'prepare') {
        target = cmd;
        if (impl === 'pqnet') cfg = benchConfig('native', 'pq');
        if (impl === 'libp2p') nodes = await Promise.all(Array.from({ length: LIBP2P_DIALER_NODES }, () => createNode(false)));
        return { event: 'prepared' };
      }
      if (cmd.cmd === 'open') return open(Number(cmd.count), cmd.keep === true);
      return command(cmd, live, ready);
    },
    async () => {
      for (const c of pq) c.close();
      for (const s of rawLive) s.destroy();
      for (const n of nodes) await n.stop();
    },
  );
}

const servers: Record<string, () => Promise<void>> = { pqnet: pqnetServer, libp2p: libp2pServer, raw: rawServer };
if (impl === undefined || !(impl in servers) || (role !== 'server' && role !== 'dialer')) {
  process.stderr.write(`[conn-child] usage: --role server|dialer --impl pqnet|libp2p|raw\n`);
  process.exit(2);
}
if (role === 'dialer') {
  dialer();
} else {
  servers[impl]!().catch((e: unknown) => {
    process.stderr.write(`[conn-child] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
