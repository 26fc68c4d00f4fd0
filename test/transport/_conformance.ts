/**
 * The ByteStream contract (src/transport/types.ts) checked against a real
 * transport on 127.0.0.1: run once per socket transport (tcp, ws) so that they
 * are held to the same behaviour. Waits are bounded; nothing asserts on time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { isPqnetError, PqnetError } from '../../src/core/errors.ts';
import type { ByteStream, StreamHandlers, Transport, TransportListener } from '../../src/transport/types.ts';

/** A port nothing listens on: bind, read the port, close. */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves with `p`, or rejects after `ms` naming `what` (a bounded wait, not a timing assertion). */
export async function within<T>(p: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Handlers that record everything, with promises for the close. */
export class Recorder implements StreamHandlers {
  readonly chunks: Uint8Array[] = [];
  bytes = 0;
  drains = 0;
  closes = 0;
  closeError: PqnetError | undefined;
  readonly closedPromise: Promise<PqnetError | undefined>;
  #resolveClosed!: (e: PqnetError | undefined) => void;
  #onData: (() => void) | undefined;

  constructor() {
    this.closedPromise = new Promise((r) => (this.#resolveClosed = r));
  }

  data(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.#onData?.();
  }

  drain(): void {
    this.drains++;
  }

  close(error?: PqnetError): void {
    this.closes++;
    this.closeError = error;
    this.#resolveClosed(error);
  }

  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Resolves once `n` bytes have arrived in all. */
  async bytesAtLeast(n: number, what = `${n} bytes`): Promise<void> {
    if (this.bytes >= n) return;
    await within(
      new Promise<void>((r) => {
        this.#onData = () => {
          if (this.bytes >= n) r();
        };
      }),
      what,
    );
    this.#onData = undefined;
  }
}

export function pattern(n: number, seed = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i + seed) % 251;
  return b;
}

export interface Connected {
  readonly listener: TransportListener;
  readonly client: ByteStream;
  readonly server: ByteStream;
}

/** A listener on 127.0.0.1:0 and one connection to it; `fn` runs with both ends, then everything is closed. */
export async function withConnection(transport: Transport, scheme: string, fn: (c: Connected) => Promise<void>): Promise<void> {
  let accepted!: (s: ByteStream) => void;
  const inbound = new Promise<ByteStream>((r) => (accepted = r));
  const listener = await transport.listen(`${scheme}://127.0.0.1:0`, (s) => accepted(s));
  let client: ByteStream | undefined;
  try {
    client = await transport.dial(listener.address, { timeoutMs: 5_000 });
    const server = await within(inbound, 'the inbound stream');
    await fn({ listener, client, server });
  } finally {
    client?.destroy();
    await listener.close();
  }
}

/** Registers the contract's tests for `make()`'s transport, whose addresses use `scheme`. */
export function conformance(scheme: string, make: () => Transport): void {
  const name = (s: string): string => `${scheme}: ${s}`;
  const isCode = (code: string) => (e: unknown) => isPqnetError(e) && e.code === code;

  test(name('a malformed or foreign address is a rejected promise (ADDRESS_INVALID), not a synchronous throw'), async () => {
    const t = make();
    assert.equal(t.scheme, scheme);
    await assert.rejects(t.dial(`${scheme}://nope`), isCode('ADDRESS_INVALID'));
    await assert.rejects(t.listen(`${scheme}://nope`, () => undefined), isCode('ADDRESS_INVALID'));
    await assert.rejects(t.dial('udp://127.0.0.1:1'), isCode('ADDRESS_INVALID'));
  });

  test(name('dialling a closed port fails with DIAL_FAILED'), async () => {
    const port = await closedPort();
    await assert.rejects(make().dial(`${scheme}://127.0.0.1:${port}`), isCode('DIAL_FAILED'));
  });

  test(name('a dial with an aborted signal fails with CLOSED and never connects'), async () => {
    const t = make();
    let streams = 0;
    const server = await t.listen(`${scheme}://127.0.0.1:0`, (s) => {
      streams++;
      s.destroy();
    });
    try {
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(t.dial(server.address, { signal: ac.signal }), isCode('CLOSED'));
      await sleep(50);
      assert.equal(streams, 0);
    } finally {
      await server.close();
    }
  });

  test(name('listening on a port in use fails with LISTEN_FAILED; the bound address has the real port'), async () => {
    const t = make();
    const a = await t.listen(`${scheme}://127.0.0.1:0`, (s) => s.destroy());
    try {
      assert.match(a.address, new RegExp(`^${scheme}://127\\.0\\.0\\.1:[1-9]\\d*$`));
      await assert.rejects(t.listen(a.address, (s) => s.destroy()), isCode('LISTEN_FAILED'));
    } finally {
      await a.close();
    }
  });

  test(name('addresses: remote and local addresses pair up, remoteHost is the IP'), () =>
    withConnection(make(), scheme, async ({ listener, client, server }) => {
      assert.equal(client.remoteAddress, listener.address);
      assert.equal(server.remoteHost, '127.0.0.1');
      assert.equal(client.remoteHost, '127.0.0.1');
      assert.equal(server.remoteAddress, client.localAddress);
      assert.equal(server.localAddress, client.remoteAddress);
      assert.match(server.remoteAddress, new RegExp(`^${scheme}://127\\.0\\.0\\.1:\\d+$`));
      await Promise.resolve();
    }));

  test(name('bytes written before the receiver sets handlers are held, in order; end closes both sides in order'), () =>
    withConnection(make(), scheme, async ({ client, server }) => {
      const c = new Recorder();
      client.setHandlers(c);
      const payload = pattern(300_000);
      client.write(payload.subarray(0, 1));
      client.write(payload.subarray(1));
      await sleep(30);
      const s = new Recorder();
      server.setHandlers(s);
      client.end();
      assert.equal(client.write(Uint8Array.of(1)), false, 'write after end is refused');
      assert.equal(await within(s.closedPromise, 'the server close'), undefined);
      assert.equal(await within(c.closedPromise, 'the client close'), undefined);
      assert.deepEqual(s.received(), Buffer.from(payload));
      assert.equal(client.closed, true);
      assert.equal(server.closed, true);
      await sleep(20);
      assert.equal(s.closes, 1);
      assert.equal(c.closes, 1);
    }));

  test(name('both directions carry data; the remote end is an orderly close for the other side'), () =>
    withConnection(make(), scheme, async ({ client, server }) => {
      const c = new Recorder();
      const s = new Recorder();
      client.setHandlers(c);
      server.setHandlers(s);
      client.write(pattern(1000, 1));
      server.write(pattern(2000, 2));
      await c.bytesAtLeast(2000);
      await s.bytesAtLeast(1000);
      assert.deepEqual(c.received(), Buffer.from(pattern(2000, 2)));
      assert.deepEqual(s.received(), Buffer.from(pattern(1000, 1)));
      server.write(pattern(10, 3));
      server.end();
      assert.equal(await within(c.closedPromise, 'the client close'), undefined);
      assert.equal(await within(s.closedPromise, 'the server close'), undefined);
      assert.equal(c.bytes, 2010);
    }));

  test(name('a write over the high-water mark returns false; drain follows once the buffer is below it'), () =>
    withConnection(make(), scheme, async ({ client, server }) => {
      const c = new Recorder();
      let bufferedAtDrain = -1;
      client.setHandlers({
        data: () => undefined,
        close: (e) => c.close(e),
        drain: () => {
          bufferedAtDrain = client.bufferedBytes;
          c.drain();
        },
      });
      const s = new Recorder();
      server.setHandlers(s);
      server.pause();
      const big = pattern(8 * 1024 * 1024);
      assert.equal(client.write(big), false);
      assert.ok(client.bufferedBytes > 0, 'bytes are buffered');
      await sleep(20);
      server.resume();
      await s.bytesAtLeast(big.length, 'all 8 MiB');
      assert.deepEqual(s.received(), Buffer.from(big));
      for (let i = 0; i < 400 && c.drains === 0; i++) await sleep(5);
      assert.ok(c.drains >= 1, 'drain fired');
      assert.ok(bufferedAtDrain >= 0 && bufferedAtDrain < 64 * 1024, `buffered at drain: ${bufferedAtDrain}`);
      assert.equal(client.bufferedBytes, 0);
      assert.equal(client.write(pattern(100)), true, 'a small write into an empty buffer is accepted');
    }));

  test(name('pause stops delivery until resume; nothing is lost'), () =>
    withConnection(make(), scheme, async ({ client, server }) => {
      client.setHandlers(new Recorder());
      const s = new Recorder();
      server.setHandlers(s);
      client.write(pattern(100));
      await s.bytesAtLeast(100);
      server.pause();
      await sleep(10);
      const before = s.bytes;
      for (let i = 0; i < 20; i++) client.write(pattern(5000, i));
      await sleep(100);
      assert.equal(s.bytes, before, 'paused: nothing delivered');
      server.resume();
      await s.bytesAtLeast(100 + 20 * 5000);
      const expected = Buffer.concat([pattern(100), ...Array.from({ length: 20 }, (_, i) => pattern(5000, i))]);
      assert.deepEqual(s.received(), expected);
    }));

  test(name('destroy closes at once: the local handler gets the given error, the remote sees a close, each exactly once'), () =>
    withConnection(make(), scheme, async ({ client, server }) => {
      const c = new Recorder();
      const s = new Recorder();
      client.setHandlers(c);
      server.setHandlers(s);
      client.write(pattern(100));
      await s.bytesAtLeast(100);
      const why = new PqnetError('PEER_BANNED', 'test');
      client.destroy(why);
      assert.equal(await within(c.closedPromise, 'the local close'), why);
      const remote = await within(s.closedPromise, 'the remote close');
      assert.ok(remote === undefined || isPqnetError(remote), 'undefined or a PqnetError');
      assert.equal(client.write(pattern(10)), false);
      client.destroy();
      client.end();
      await sleep(20);
      assert.equal(c.closes, 1);
      assert.equal(s.closes, 1);
    }));

  test(name('a stream destroyed before handlers were set reports its close to the handlers set later'), () =>
    withConnection(make(), scheme, async ({ server }) => {
      server.destroy();
      for (let i = 0; i < 400 && !server.closed; i++) await sleep(5);
      assert.equal(server.closed, true);
      const s = new Recorder();
      server.setHandlers(s);
      assert.equal(await within(s.closedPromise, 'the close'), undefined);
      assert.equal(s.closes, 1);
    }));

  test(name('closing the listener closes its open connections'), async () => {
    const t = make();
    let accepted!: (s: ByteStream) => void;
    const inbound = new Promise<ByteStream>((r) => (accepted = r));
    const listener = await t.listen(`${scheme}://127.0.0.1:0`, (s) => accepted(s));
    const client = await t.dial(listener.address);
    try {
      const c = new Recorder();
      client.setHandlers(c);
      const server = await within(inbound, 'the inbound stream');
      const s = new Recorder();
      server.setHandlers(s);
      await within(listener.close(), 'the listener close');
      await within(s.closedPromise, 'the server-side close');
      await within(c.closedPromise, 'the client-side close');
      await assert.rejects(t.dial(listener.address), isCode('DIAL_FAILED'));
    } finally {
      client.destroy();
    }
  });
}
