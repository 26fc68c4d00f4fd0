/** TCP transport over node:net. Nagle is off: frames are written whole. */
import net from 'node:net';
import { PqnetError } from '../core/errors.ts';
import { formatHostPort, parseHostPort } from './address.ts';
import type { ByteStream, DialOptions, StreamHandlers, Transport, TransportListener } from './types.ts';

export const DEFAULT_DIAL_TIMEOUT_MS = 10_000;
/** How long `end()` waits for an orderly close before destroying the socket. */
export const END_LINGER_MS = 2_000;

class TcpStream implements ByteStream {
  readonly remoteAddress: string;
  readonly remoteHost: string;
  readonly localAddress: string;
  readonly #socket: net.Socket;
  #handlers: StreamHandlers | undefined;
  #held: Uint8Array[] = [];
  #closed = false;
  #error: PqnetError | undefined;
  #ended = false;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    this.remoteHost = socket.remoteAddress ?? 'unknown';
    this.remoteAddress = formatHostPort('tcp', this.remoteHost, socket.remotePort ?? 0);
    this.localAddress = formatHostPort('tcp', socket.localAddress ?? 'unknown', socket.localPort ?? 0);
    socket.pause();
    socket.on('data', (b: Buffer) => {
      if (this.#handlers === undefined) this.#held.push(b);
      else this.#handlers.data(b);
    });
    socket.on('drain', () => this.#handlers?.drain());
    socket.on('error', (e) => {
      this.#error ??= new PqnetError('IO_ERROR', e.message, { cause: e });
    });
    socket.on('end', () => {
      // The remote finished sending; finish our side too.
      if (!this.#ended) socket.end();
    });
    socket.on('close', () => {
      this.#closed = true;
      const h = this.#handlers;
      this.#handlers = undefined;
      h?.close(this.#error);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  setHandlers(handlers: StreamHandlers): void {
    this.#handlers = handlers;
    const held = this.#held;
    this.#held = [];
    for (const b of held) handlers.data(b);
    if (this.#closed) {
      this.#handlers = undefined;
      handlers.close(this.#error);
      return;
    }
    this.#socket.resume();
  }

  write(data: Uint8Array): boolean {
    if (this.#closed || this.#ended) return false;
    return this.#socket.write(data);
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    if (this.#handlers !== undefined) this.#socket.resume();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#socket.end();
    // A peer that never sends its FIN (or never reads what we flush) must not
    // hold the socket: after a grace period the connection is destroyed.
    const t = setTimeout(() => this.#socket.destroy(), END_LINGER_MS);
    t.unref();
    this.#socket.once('close', () => clearTimeout(t));
  }

  destroy(error?: PqnetError): void {
    if (error !== undefined) this.#error ??= error;
    this.#socket.destroy();
  }
}

export class TcpTransport implements Transport {
  readonly scheme = 'tcp';

  // async: a bad address or an aborted signal is a rejection, never a synchronous throw.
  async dial(address: string, options: DialOptions = {}): Promise<ByteStream> {
    const { host, port } = parseHostPort(address, 'tcp');
    if (options.signal?.aborted === true) throw new PqnetError('CLOSED', `dial to ${address} aborted`);
    return await new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timeout = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
      socket.setTimeout(timeout);
      const fail = (e: PqnetError): void => {
        cleanup();
        socket.destroy();
        reject(e);
      };
      const onError = (e: Error): void => fail(new PqnetError('DIAL_FAILED', `${address}: ${e.message}`, { cause: e }));
      const onTimeout = (): void => fail(new PqnetError('DIAL_FAILED', `${address}: no answer within ${timeout} ms`));
      const onAbort = (): void => fail(new PqnetError('CLOSED', `dial to ${address} aborted`));
      const cleanup = (): void => {
        socket.off('error', onError);
        socket.off('timeout', onTimeout);
        options.signal?.removeEventListener('abort', onAbort);
      };
      socket.once('error', onError);
      socket.once('timeout', onTimeout);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        cleanup();
        socket.setTimeout(0);
        resolve(new TcpStream(socket));
      });
    });
  }

  async listen(address: string, onStream: (stream: ByteStream) => void): Promise<TransportListener> {
    const { host, port } = parseHostPort(address, 'tcp');
    const server = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
      onStream(new TcpStream(socket));
    });
    return await new Promise((resolve, reject) => {
      const onListenError = (e: Error): void => reject(new PqnetError('LISTEN_FAILED', `${address}: ${e.message}`, { cause: e }));
      server.once('error', onListenError);
      server.listen({ host, port, backlog: 1024 }, () => {
        server.off('error', onListenError);
        // Accept errors after listening (EMFILE, ENFILE, ENOBUFS) are transient: keep serving.
        server.on('error', () => undefined);
        const a = server.address() as net.AddressInfo;
        const bound = formatHostPort('tcp', a.address, a.port);
        const sockets = new Set<net.Socket>();
        server.on('connection', (s) => {
          sockets.add(s);
          s.once('close', () => sockets.delete(s));
        });
        resolve({
          address: bound,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done());
              for (const s of sockets) s.destroy();
            }),
        });
      });
    });
  }
}
