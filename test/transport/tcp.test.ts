import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { isPqnetError } from '../../src/core/errors.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import type { ByteStream } from '../../src/transport/types.ts';

/** A port nothing listens on: bind, read the port, close. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('a malformed address is a rejected promise (ADDRESS_INVALID), not a synchronous throw', async () => {
  const t = new TcpTransport();
  await assert.rejects(t.dial('tcp://nope'), (e: unknown) => isPqnetError(e) && e.code === 'ADDRESS_INVALID');
  await assert.rejects(t.listen('tcp://nope', () => undefined), (e: unknown) => isPqnetError(e) && e.code === 'ADDRESS_INVALID');
});

test('dialling a closed port fails with DIAL_FAILED', async () => {
  const port = await closedPort();
  await assert.rejects(new TcpTransport().dial(`tcp://127.0.0.1:${port}`), (e: unknown) => isPqnetError(e) && e.code === 'DIAL_FAILED');
});

test('a dial with an aborted signal fails with CLOSED and never connects', async () => {
  const ac = new AbortController();
  const t = new TcpTransport();
  const server = await t.listen('tcp://127.0.0.1:0', (s) => s.destroy());
  try {
    ac.abort();
    await assert.rejects(t.dial(server.address, { signal: ac.signal }), (e: unknown) => isPqnetError(e) && e.code === 'CLOSED');
  } finally {
    await server.close();
  }
});

test('listening on a port in use fails with LISTEN_FAILED', async () => {
  const t = new TcpTransport();
  const a = await t.listen('tcp://127.0.0.1:0', (s) => s.destroy());
  try {
    await assert.rejects(t.listen(a.address, (s) => s.destroy()), (e: unknown) => isPqnetError(e) && e.code === 'LISTEN_FAILED');
  } finally {
    await a.close();
  }
});

test('bytes written before the receiver sets handlers are held, in order; end closes both sides', async () => {
  const t = new TcpTransport();
  let accepted!: (s: ByteStream) => void;
  const inbound = new Promise<ByteStream>((r) => (accepted = r));
  const server = await t.listen('tcp://127.0.0.1:0', (s) => accepted(s));
  try {
    const client = await t.dial(server.address);
    const clientClosed = new Promise<void>((r) => client.setHandlers({ data: () => undefined, drain: () => undefined, close: () => r() }));
    const payload = new Uint8Array(300_000).map((_, i) => i % 251);
    client.write(payload);
    const s = await inbound;
    assert.equal(s.remoteHost, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 20));
    const got: Uint8Array[] = [];
    const done = new Promise<void>((r) => s.setHandlers({ data: (b) => got.push(b), drain: () => undefined, close: () => r() }));
    client.end();
    await done;
    await clientClosed;
    assert.deepEqual(Buffer.concat(got), Buffer.from(payload));
  } finally {
    await server.close();
  }
});
