/**
 * WebSocketTransport beyond the shared ByteStream contract (conformance.test.ts
 * runs that for tcp and ws): what raw `ws` peers and non-WebSocket peers see
 * and cause, and MultiTransport's dispatch by scheme.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { isPqnetError, type PqnetError } from '../../src/core/errors.ts';
import { MemoryNetwork } from '../../src/transport/memory.ts';
import { MultiTransport } from '../../src/transport/multi.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import type { ByteStream, TransportListener } from '../../src/transport/types.ts';
import { WebSocketTransport, WS_MAX_MESSAGE_BYTES } from '../../src/transport/ws.ts';
import { pattern, Recorder, sleep, withConnection, within } from './_conformance.ts';

const isCode = (code: string) => (e: unknown) => isPqnetError(e) && e.code === code;

/** A WebSocketTransport listener whose streams are handed out in order. */
async function wsListener(transport = new WebSocketTransport()): Promise<{ listener: TransportListener; next: () => Promise<ByteStream> }> {
  const queue: ByteStream[] = [];
  const waiting: ((s: ByteStream) => void)[] = [];
  const listener = await transport.listen('ws://127.0.0.1:0', (s) => {
    const w = waiting.shift();
    if (w !== undefined) w(s);
    else queue.push(s);
  });
  return {
    listener,
    next: () => within(queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise<ByteStream>((r) => waiting.push(r)), 'an inbound stream'),
  };
}

/** A raw `ws` client, open. */
async function rawClient(address: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(`${address}/`, { perMessageDeflate: false, ...options });
  ws.on('error', () => undefined);
  await within(once(ws, 'open'), 'the raw client to open');
  return ws;
}

function closeCode(ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(-1);
  return within(once(ws, 'close').then(([code]) => code as number), 'the raw client close');
}

/** A TCP server that accepts connections and never answers; sockets are destroyed on close. */
async function silentServer(): Promise<{ address: string; accepted: () => number; open: () => number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.resume(); // reads (and drops) the upgrade request, so the dialler's close is seen
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `ws://127.0.0.1:${port}`,
    accepted: () => accepted,
    open: () => sockets.size,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

test('a text message from the remote closes the stream with IO_ERROR and the remote gets 1003', async () => {
  const { listener, next } = await wsListener();
  try {
    const raw = await rawClient(listener.address);
    const stream = await next();
    const s = new Recorder();
    stream.setHandlers(s);
    raw.send(Uint8Array.of(1, 2, 3));
    await s.bytesAtLeast(3);
    const code = closeCode(raw);
    raw.send('hello');
    raw.send(Uint8Array.of(4, 5, 6));
    const err = await within(s.closedPromise, 'the stream close');
    assert.ok(isPqnetError(err) && err.code === 'IO_ERROR', String(err));
    assert.match(err.message, /text message/);
    assert.equal(await code, 1003);
    assert.equal(s.bytes, 3, 'nothing after the text message is delivered');
    assert.equal(s.closes, 1);
  } finally {
    await listener.close();
  }
});

test('a message over WS_MAX_MESSAGE_BYTES closes the stream with IO_ERROR; the remote gets 1009', async () => {
  const { listener, next } = await wsListener();
  try {
    const raw = await rawClient(listener.address);
    const stream = await next();
    const s = new Recorder();
    stream.setHandlers(s);
    const code = closeCode(raw);
    raw.send(new Uint8Array(WS_MAX_MESSAGE_BYTES + 1));
    const err = await within(s.closedPromise, 'the stream close');
    assert.ok(isPqnetError(err) && err.code === 'IO_ERROR', String(err));
    assert.equal(await code, 1009);
    assert.equal(s.bytes, 0);
  } finally {
    await listener.close();
  }
});

test('a long write goes out as binary messages of at most WS_MAX_MESSAGE_BYTES; the caller buffer is not masked in place', async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await within(once(wss, 'listening'), 'the raw server');
  const messages: { bytes: Buffer; binary: boolean }[] = [];
  wss.on('connection', (ws) => ws.on('message', (data, binary) => messages.push({ bytes: data as Buffer, binary })));
  const { port } = wss.address() as net.AddressInfo;
  const stream = await new WebSocketTransport().dial(`ws://127.0.0.1:${port}`);
  try {
    stream.setHandlers(new Recorder());
    const data = pattern(3 * WS_MAX_MESSAGE_BYTES + 10);
    const copy = Buffer.from(data);
    stream.write(data);
    for (let i = 0; i < 1000 && messages.length < 4; i++) await sleep(5);
    assert.deepEqual(
      messages.map((m) => [m.bytes.length, m.binary]),
      [
        [WS_MAX_MESSAGE_BYTES, true],
        [WS_MAX_MESSAGE_BYTES, true],
        [WS_MAX_MESSAGE_BYTES, true],
        [10, true],
      ],
    );
    assert.deepEqual(Buffer.concat(messages.map((m) => m.bytes)), copy);
    assert.deepEqual(Buffer.from(data), copy, 'the written buffer is unchanged');
  } finally {
    stream.destroy();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  }
});

test('pause inside a data handler holds the messages ws has already read; resume delivers them in order', async () => {
  const { listener, next } = await wsListener();
  try {
    const raw = await rawClient(listener.address);
    const stream = await next();
    const got: number[] = [];
    const closed = new Promise<PqnetError | undefined>((r) =>
      stream.setHandlers({
        data: (b) => {
          got.push(b[0]!);
          if (got.length === 1) stream.pause();
        },
        drain: () => undefined,
        close: r,
      }),
    );
    // One burst: the messages arrive in one or a few socket reads.
    for (let i = 0; i < 100; i++) raw.send(Uint8Array.of(i));
    raw.close(1000);
    for (let i = 0; i < 400 && got.length === 0; i++) await sleep(5);
    await sleep(50);
    assert.deepEqual(got, [0], 'paused after the first message');
    stream.resume();
    assert.equal(await within(closed, 'the orderly close after the data'), undefined);
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => i));
  } finally {
    await listener.close();
  }
});

test('remote closes: 1000 and no code are orderly; another code and a missing close frame are IO_ERROR', async () => {
  const { listener, next } = await wsListener();
  try {
    const cases: [string, (ws: WebSocket) => void, string | undefined][] = [
      ['1000', (ws) => ws.close(1000), undefined],
      ['no code', (ws) => ws.close(), undefined],
      ['4000', (ws) => ws.close(4000, 'custom'), 'code 4000'],
      ['terminate', (ws) => ws.terminate(), 'without a WebSocket close frame'],
    ];
    for (const [what, close, error] of cases) {
      const raw = await rawClient(listener.address);
      const stream = await next();
      const s = new Recorder();
      stream.setHandlers(s);
      close(raw);
      const err = await within(s.closedPromise, `the close after ${what}`);
      if (error === undefined) assert.equal(err, undefined, what);
      else assert.ok(isPqnetError(err) && err.code === 'IO_ERROR' && err.message.includes(error), `${what}: ${String(err)}`);
    }
  } finally {
    await listener.close();
  }
});

test('end sends what is queued, then a close frame with 1000', async () => {
  const { listener, next } = await wsListener();
  try {
    const raw = await rawClient(listener.address);
    const got: Buffer[] = [];
    raw.on('message', (d) => got.push(d as Buffer));
    const code = closeCode(raw);
    const stream = await next();
    const s = new Recorder();
    stream.setHandlers(s);
    stream.write(pattern(1000));
    stream.end();
    assert.equal(await code, 1000);
    assert.equal(await within(s.closedPromise, 'the stream close'), undefined);
    assert.deepEqual(Buffer.concat(got), Buffer.from(pattern(1000)));
  } finally {
    await listener.close();
  }
});

test('dial: a silent server hits the timeout (DIAL_FAILED); an abort during the dial is CLOSED; both drop the connection', async () => {
  const silent = await silentServer();
  try {
    const t = new WebSocketTransport();
    await assert.rejects(t.dial(silent.address, { timeoutMs: 100 }), (e: unknown) => isPqnetError(e) && e.code === 'DIAL_FAILED' && /no answer within 100 ms/.test(e.message));
    const ac = new AbortController();
    const dial = t.dial(silent.address, { signal: ac.signal, timeoutMs: 60_000 });
    for (let i = 0; i < 400 && silent.accepted() < 2; i++) await sleep(5);
    ac.abort();
    await assert.rejects(within(dial, 'the aborted dial'), isCode('CLOSED'));
    assert.equal(silent.accepted(), 2);
    for (let i = 0; i < 400 && silent.open() > 0; i++) await sleep(5);
    assert.equal(silent.open(), 0, 'the dialler closed both connections');
  } finally {
    await silent.close();
  }
});

test('dial: an HTTP server that does not upgrade is DIAL_FAILED naming its status', async () => {
  const server = http.createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as net.AddressInfo;
    await assert.rejects(new WebSocketTransport().dial(`ws://127.0.0.1:${port}`), (e: unknown) => isPqnetError(e) && e.code === 'DIAL_FAILED' && /404/.test(e.message));
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('listener: plain HTTP gets 426; another path is refused; a connection that never upgrades is dropped, an upgraded idle one is not', async () => {
  const { listener, next } = await wsListener(new WebSocketTransport({ upgradeTimeoutMs: 150 }));
  try {
    const port = Number(listener.address.split(':').at(-1));
    const res = await within(
      new Promise<http.IncomingMessage>((resolve, reject) => http.get({ host: '127.0.0.1', port, path: '/' }, resolve).on('error', reject)),
      'the HTTP answer',
    );
    res.resume();
    assert.equal(res.statusCode, 426);

    const other = new WebSocket(`${listener.address}/other`);
    const refused = await within(new Promise<Error>((r) => other.once('error', r)), 'the refusal of /other');
    assert.match(refused.message, /400/);

    const idle = net.connect({ host: '127.0.0.1', port });
    idle.on('error', () => undefined);
    await within(once(idle, 'close'), 'the silent connection to be dropped', 20_000);

    const raw = await rawClient(listener.address);
    const stream = await next();
    const s = new Recorder();
    stream.setHandlers(s);
    await sleep(500);
    assert.equal(stream.closed, false, 'the upgraded connection outlives the upgrade timeout');
    raw.send(Uint8Array.of(7));
    await s.bytesAtLeast(1);
    raw.close(1000);
    assert.equal(await within(s.closedPromise, 'the close'), undefined);
  } finally {
    await listener.close();
  }
});

test('the same stream semantics carry a secure-layer-sized exchange in both directions', () =>
  withConnection(new WebSocketTransport(), 'ws', async ({ client, server }) => {
    const c = new Recorder();
    const s = new Recorder();
    client.setHandlers(c);
    server.setHandlers(s);
    // Writes of the sizes the secure layer makes: handshake records, full frames, gathered batches.
    const sizes = [1_200, 1_100, 9_000, 65_556, 80_000, 20, 65_556];
    let total = 0;
    for (const [i, n] of sizes.entries()) {
      client.write(pattern(n, i));
      server.write(pattern(n, i + 1));
      total += n;
    }
    await c.bytesAtLeast(total);
    await s.bytesAtLeast(total);
    assert.deepEqual(s.received(), Buffer.concat(sizes.map((n, i) => pattern(n, i))));
    assert.deepEqual(c.received(), Buffer.concat(sizes.map((n, i) => pattern(n, i + 1))));
  }));

test('MultiTransport dispatches by scheme and refuses others, naming the supported ones', async () => {
  const tcp = new TcpTransport();
  const ws = new WebSocketTransport();
  const multi = new MultiTransport([tcp, ws]);
  assert.equal(multi.scheme, 'multi');
  assert.deepEqual(multi.schemes, ['tcp', 'ws']);
  const listeners: TransportListener[] = [];
  try {
    const inbound: ByteStream[] = [];
    const onStream = (s: ByteStream): void => {
      inbound.push(s);
      s.setHandlers(new Recorder());
    };
    for (const scheme of ['tcp', 'ws']) listeners.push(await multi.listen(`${scheme}://127.0.0.1:0`, onStream));
    assert.match(listeners[0]!.address, /^tcp:\/\//);
    assert.match(listeners[1]!.address, /^ws:\/\//);
    for (const l of listeners) {
      const s = await multi.dial(l.address);
      assert.equal(s.remoteAddress, l.address);
      const r = new Recorder();
      s.setHandlers(r);
      s.write(Uint8Array.of(1, 2, 3));
      s.end();
      await within(r.closedPromise, `the close on ${l.address}`);
    }
    for (let i = 0; i < 400 && inbound.length < 2; i++) await sleep(5);
    assert.deepEqual(
      inbound.map((s) => s.localAddress.split(':')[0]),
      ['tcp', 'ws'],
    );
    // A ws address is not served by the TCP listener's port and vice versa: each went to its own transport.
    await assert.rejects(tcp.dial(listeners[1]!.address), isCode('ADDRESS_INVALID'));

    await assert.rejects(multi.dial('udp://127.0.0.1:1'), (e: unknown) => isPqnetError(e) && e.code === 'ADDRESS_INVALID' && e.message.includes('supported: tcp://, ws://'));
    await assert.rejects(multi.listen('wss://127.0.0.1:0', () => undefined), isCode('ADDRESS_INVALID'));
    await assert.rejects(multi.dial('127.0.0.1:1'), isCode('ADDRESS_INVALID'));

    // Nested and mixed transports; one transport per scheme.
    const wider = new MultiTransport([multi, new MemoryNetwork()]);
    assert.deepEqual(wider.schemes, ['tcp', 'ws', 'mem']);
    assert.throws(() => new MultiTransport([tcp, new TcpTransport()]), isCode('INVALID_ARGUMENT'));
    assert.throws(() => new MultiTransport([]), isCode('INVALID_ARGUMENT'));
  } finally {
    for (const l of listeners) await l.close();
  }
});
