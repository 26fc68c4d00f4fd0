/**
 * The listener's defences against cheap attacks: rate of new handshakes per
 * host group, a budget of handshake work, the HELLO_I deadline, sockets that
 * never close their side, and application callbacks that throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { isPqnetError, PqnetError, Reasons, type Reason } from '../../src/core/errors.ts';
import type { Limits } from '../../src/core/limits.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { encodeRecord, RecordType } from '../../src/secure/handshake-records.ts';
import { dialSecure, SecureListener } from '../../src/secure/listener.ts';
import type { SecureSession } from '../../src/secure/session.ts';
import { MemoryNetwork } from '../../src/transport/memory.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import { endpoint } from './_endpoints.ts';
import { portOf, until, within } from './_evil.ts';

const alice = endpoint('alice');

function rejectRecord(code: Reason): Buffer {
  return Buffer.from(encodeRecord(RecordType.REJECT, encodeCbor([Reasons[code].wire])));
}

async function tcpListener(limits: Partial<Limits>): Promise<{ listener: SecureListener; sessions: SecureSession[] }> {
  const sessions: SecureSession[] = [];
  const listener = await SecureListener.listen({
    ...endpoint('bob', { limits }),
    transport: new TcpTransport(),
    address: 'tcp://127.0.0.1:0',
    onSession: (s) => {
      sessions.push(s);
      s.start(() => undefined);
    },
  });
  return { listener, sessions };
}

/** A raw client that keeps its half of the connection open unless told otherwise. */
async function halfOpenClient(address: string, send?: Uint8Array): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port: portOf(address), allowHalfOpen: true });
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  // Our side stays open, so 'close' comes only once the server's socket is gone:
  // after its FIN, keep writing a byte; a destroyed socket answers with a reset.
  socket.once('end', () => {
    let probes = 0;
    const probe = setInterval(() => {
      if (socket.destroyed || probes++ > 200) return clearInterval(probe);
      socket.write(Uint8Array.of(0));
    }, 25);
    socket.once('close', () => clearInterval(probe));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  if (send !== undefined) socket.write(send);
  return { socket, received: () => Buffer.concat(chunks), closed };
}

test('new handshakes from one address beyond the per-host burst get REJECT{HS_RATE_LIMITED}', async () => {
  const { listener } = await tcpListener({ handshakesPerHostPerSecond: 0.001, handshakeBurstPerHost: 2 });
  const clients: Awaited<ReturnType<typeof halfOpenClient>>[] = [];
  try {
    for (let i = 0; i < 3; i++) clients.push(await halfOpenClient(listener.address));
    await within(clients[2]!.closed, 5_000, 'the third connection to be refused and closed');
    assert.deepEqual(clients[2]!.received(), rejectRecord('HS_RATE_LIMITED'));
    assert.equal(listener.stats.failuresByReason.get('HS_RATE_LIMITED'), 1);
    assert.equal(clients[0]!.received().length, 0, 'the first two are in their handshakes, untouched');
  } finally {
    for (const c of clients) c.socket.destroy();
    await listener.close();
  }
});

test('once the handshake work budget is spent, new connections get REJECT{HS_BUSY} before any cryptography', async () => {
  const { listener } = await tcpListener({ handshakeCpuMsPerSecond: 0.001, handshakeCpuBurstMs: 0.001 });
  let first: SecureSession | undefined;
  try {
    first = await dialSecure(new TcpTransport(), listener.address, alice);
    assert.ok(listener.stats.handshakeWorkMs > 0, 'the completed handshake was charged');
    const c = await halfOpenClient(listener.address);
    await within(c.closed, 5_000, 'the connection to be refused');
    assert.deepEqual(c.received(), rejectRecord('HS_BUSY'));
    await assert.rejects(dialSecure(new TcpTransport(), listener.address, alice), (e: unknown) => isPqnetError(e) && e.code === 'HS_REJECTED' && e.details?.remoteReason === 'HS_BUSY');
  } finally {
    first?.close();
    await listener.close();
  }
});

test('a connection that sends no HELLO_I is dropped at helloTimeoutMs, long before the handshake deadline', async () => {
  const { listener } = await tcpListener({ helloTimeoutMs: 100, handshakeTimeoutMs: 120_000 });
  try {
    const c = await halfOpenClient(listener.address);
    await within(c.closed, 10_000, 'the silent connection to be closed');
    assert.equal(listener.stats.failuresByReason.get('HS_DEADLINE'), 1);
    assert.equal(c.received().length, 0, 'a silent failure sends nothing');
  } finally {
    await listener.close();
  }
});

test('a failed handshake closes the socket even when the peer never closes its side', async () => {
  const { listener } = await tcpListener({});
  try {
    // A record header with an unknown type: HS_BAD_MESSAGE, a silent failure.
    const c = await halfOpenClient(listener.address, Uint8Array.of(0, 0, 0, 1, 9));
    await within(c.closed, 5_000, 'the server to destroy the half-open socket');
    await until(() => listener.stats.failuresByReason.get('HS_BAD_MESSAGE') === 1, 2_000, 'the failure to be counted');
  } finally {
    await listener.close();
  }
});

test('a refused connection whose peer never closes its side is destroyed after the linger period', async () => {
  const { listener } = await tcpListener({ maxConcurrentHandshakes: 0 });
  try {
    const c = await halfOpenClient(listener.address);
    await within(c.closed, 10_000, 'the refused socket to be destroyed');
    assert.deepEqual(c.received(), rejectRecord('HS_BUSY'));
  } finally {
    await listener.close();
  }
});

test('an application callback that throws does not take the listener down', async () => {
  const network = new MemoryNetwork();
  let calls = 0;
  const original = console.error;
  console.error = () => undefined;
  const listener = await SecureListener.listen({
    ...endpoint('bob'),
    transport: network,
    address: 'mem://throws',
    onSession: () => {
      calls++;
      throw new Error('application bug');
    },
    onHandshakeError: () => {
      throw new Error('another application bug');
    },
  });
  try {
    for (let i = 0; i < 2; i++) {
      const s = await dialSecure(network, 'mem://throws', alice);
      const closed = new Promise<PqnetError>((r) => s.once('close', r));
      s.start(() => undefined);
      await within(closed, 5_000, 'the session the application failed on to close');
    }
    assert.equal(calls, 2);
    assert.equal(listener.stats.accepted, 2);
    // A failing handshake calls the throwing onHandshakeError; the listener still serves.
    await assert.rejects(dialSecure(network, 'mem://throws', { ...alice, chainId: 99 }));
    await until(() => listener.stats.failed === 1, 2_000, 'the failure to reach onHandshakeError');
    const s = await dialSecure(network, 'mem://throws', alice);
    s.destroy(new PqnetError('CLOSED'));
  } finally {
    console.error = original;
    await listener.close();
  }
});

test('a listener whose identity is outside its policy fails at listen(), not on the first connection', async () => {
  const bob = endpoint('bob', { alg: 'ed25519', policy: { kem: ['x25519-ml-kem-768'], aead: ['chacha20-poly1305'], sig: ['ml-dsa-65'] } });
  await assert.rejects(
    SecureListener.listen({ ...bob, transport: new MemoryNetwork(), address: 'mem://bad', onSession: () => undefined }),
    (e: unknown) => isPqnetError(e) && e.code === 'INVALID_ARGUMENT',
  );
});

test('aborting a dial during the handshake fails it with CLOSED and closes the socket', async () => {
  // A server that accepts and never answers.
  const silent = net.createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const { port } = silent.address() as net.AddressInfo;
  const gotConnection = new Promise<net.Socket>((r) => silent.once('connection', r));
  try {
    const ac = new AbortController();
    const dial = dialSecure(new TcpTransport(), `tcp://127.0.0.1:${port}`, alice, { signal: ac.signal });
    const serverSide = await within(gotConnection, 5_000, 'the connection');
    const serverClosed = new Promise<void>((r) => serverSide.once('close', () => r()));
    ac.abort();
    await assert.rejects(dial, (e: unknown) => isPqnetError(e) && e.code === 'CLOSED');
    await within(serverClosed, 5_000, 'the dialler to close the socket');
  } finally {
    await new Promise<void>((r) => silent.close(() => r()));
  }
});
