/**
 * WebSocket transport (RFC 6455, the `ws` package): `ws://HOST:PORT`
 * addresses, path `/`, binary messages only, no compression. Each connection
 * is a ByteStream with the semantics of tcp.ts:
 *
 * - Message boundaries mean nothing: each received message is one data chunk,
 *   and a write longer than WS_MAX_MESSAGE_BYTES goes out as several messages.
 *   A text message is a protocol violation: the connection is closed (1003)
 *   and the stream closes with IO_ERROR.
 * - `write` returns false once the socket's buffered bytes reach its
 *   `writableHighWaterMark` (the mark tcp.ts gets from node:net, 64 KiB), and
 *   `drain` follows when they are back below it (a send callback on each write
 *   that returned false checks).
 * - `end` sends a close frame (1000) after everything queued and waits for the
 *   remote's, at most END_LINGER_MS; `destroy` drops the TCP connection.
 * - `close` is undefined for an orderly close (a close frame 1000, 1001 or
 *   without a code from the remote, or our own `end`/`destroy()`), and an
 *   IO_ERROR otherwise: a socket error, a WebSocket protocol error (an oversized
 *   or malformed frame), another close code, or a connection that ended without
 *   a close frame (1006).
 *
 * The listener serves plain HTTP requests a 426 and gives a connection
 * WS_UPGRADE_TIMEOUT_MS to send its upgrade request; like tcp.ts's, closing it
 * drops every connection it accepted.
 */
import http from 'node:http';
import type net from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { PqnetError } from '../core/errors.ts';
import { MAX_FRAME_CIPHERTEXT_BYTES, LENGTH_PREFIX_BYTES } from '../core/limits.ts';
import { formatHostPort, parseHostPort } from './address.ts';
import { DEFAULT_DIAL_TIMEOUT_MS, END_LINGER_MS } from './tcp.ts';
import type { ByteStream, DialOptions, StreamHandlers, Transport, TransportListener } from './types.ts';

/**
 * The largest message sent, and the largest accepted (`maxPayload`; a larger
 * one closes the connection with 1009). Twice the largest secure frame on the
 * wire (64 KiB + tag + length prefix): the secure layer's biggest write, a
 * gathered batch of small frames plus one more (< 80 KiB), always fits in one
 * message; longer writes are split.
 */
export const WS_MAX_MESSAGE_BYTES = 2 * (MAX_FRAME_CIPHERTEXT_BYTES + LENGTH_PREFIX_BYTES);
/** A listener drops a connection that has not sent a complete upgrade request within this time. */
export const WS_UPGRADE_TIMEOUT_MS = 10_000;

/** Close codes that mean an orderly close: normal, going away, no code given. */
const ORDERLY_CLOSE_CODES = new Set([1000, 1001, 1005]);
const SEND_OPTIONS = { binary: true, compress: false, fin: true } as const;

class WebSocketStream implements ByteStream {
  readonly remoteAddress: string;
  readonly remoteHost: string;
  readonly localAddress: string;
  readonly #ws: WebSocket;
  readonly #highWater: number;
  #handlers: StreamHandlers | undefined;
  /** Messages not delivered yet (no handlers, or paused), from `#heldHead` on. */
  #held: Buffer[] = [];
  #heldHead = 0;
  #delivering = false;
  #paused = false;
  #closed = false;
  #error: PqnetError | undefined;
  #ended = false;
  /** Destroyed locally, or the remote broke the protocol: nothing more is delivered. */
  #discarding = false;
  #wantDrain = false;
  #linger: NodeJS.Timeout | undefined;

  constructor(ws: WebSocket, socket: net.Socket) {
    this.#ws = ws;
    this.#highWater = socket.writableHighWaterMark;
    this.remoteHost = socket.remoteAddress ?? 'unknown';
    this.remoteAddress = formatHostPort('ws', this.remoteHost, socket.remotePort ?? 0);
    this.localAddress = formatHostPort('ws', socket.localAddress ?? 'unknown', socket.localPort ?? 0);
    ws.pause();
    // ws swallows socket errors (the connection just closes with 1006): keep the reason.
    socket.on('error', (e) => {
      this.#error ??= new PqnetError('IO_ERROR', e.message, { cause: e });
    });
    ws.on('error', (e) => {
      this.#error ??= new PqnetError('IO_ERROR', `WebSocket: ${e.message}`, { cause: e });
    });
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    ws.on('close', (code, reason) => this.#onClose(code, reason));
  }

  get closed(): boolean {
    return this.#closed;
  }

  get bufferedBytes(): number {
    return this.#ws.bufferedAmount;
  }

  setHandlers(handlers: StreamHandlers): void {
    this.#handlers = handlers;
    this.#paused = false;
    this.#deliver();
    if (!this.#closed && !this.#paused && this.#handlers !== undefined) this.#ws.resume();
  }

  write(data: Uint8Array): boolean {
    if (this.#closed || this.#ended || this.#discarding || this.#ws.readyState !== WebSocket.OPEN) return false;
    const n = data.length;
    if (n === 0) return this.#ws.bufferedAmount < this.#highWater;
    if (n <= WS_MAX_MESSAGE_BYTES) return this.#send(data);
    let ok = true;
    for (let off = 0; off < n; off += WS_MAX_MESSAGE_BYTES) ok = this.#send(data.subarray(off, Math.min(n, off + WS_MAX_MESSAGE_BYTES)));
    return ok;
  }

  pause(): void {
    this.#paused = true;
    this.#ws.pause();
  }

  resume(): void {
    if (this.#handlers === undefined) return;
    this.#paused = false;
    this.#deliver();
    if (!this.#closed && !this.#paused && this.#handlers !== undefined) this.#ws.resume();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#closeGracefully(1000, '');
  }

  destroy(error?: PqnetError): void {
    if (error !== undefined) this.#error ??= error;
    this.#discard();
    this.#ws.terminate();
    // Already closed: a new error is not reported again (as tcp.ts).
  }

  /** Close frame after what is queued; a remote that never answers is dropped after END_LINGER_MS. */
  #closeGracefully(code: number, reason: string): void {
    if (this.#closed || this.#linger !== undefined) return;
    this.#ws.close(code, reason);
    this.#linger = setTimeout(() => this.#ws.terminate(), END_LINGER_MS);
    this.#linger.unref();
  }

  #discard(): void {
    this.#discarding = true;
    this.#held = [];
    this.#heldHead = 0;
  }

  #send(part: Uint8Array): boolean {
    const ok = this.#ws.bufferedAmount + part.length < this.#highWater;
    if (ok) {
      this.#ws.send(part, SEND_OPTIONS);
    } else {
      // Once this message is written, everything before it is too: the buffer is then
      // at most what was written after it, and that was accepted below the mark.
      this.#wantDrain = true;
      this.#ws.send(part, SEND_OPTIONS, this.#afterSend);
    }
    return ok;
  }

  // Called with null (node:stream) or an Error (the message was not sent: closing).
  readonly #afterSend = (err?: Error | null): void => {
    if ((err !== undefined && err !== null) || !this.#wantDrain || this.#closed) return;
    if (this.#ws.bufferedAmount < this.#highWater) {
      this.#wantDrain = false;
      this.#handlers?.drain();
    }
  };

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#discarding) return;
    if (!isBinary) {
      this.#error ??= new PqnetError('IO_ERROR', 'WebSocket: text message received; only binary messages are accepted');
      this.#discard();
      this.#closeGracefully(1003, 'binary messages only');
      return;
    }
    // Held while there are no handlers, while paused (ws may still emit what it has
    // already read), and behind anything held before, so that order is kept.
    if (this.#handlers === undefined || this.#paused || this.#heldHead < this.#held.length) this.#held.push(data);
    else this.#handlers.data(data);
  }

  #onClose(code: number, reason: Buffer): void {
    this.#closed = true;
    if (this.#linger !== undefined) clearTimeout(this.#linger);
    if (!this.#ended && !this.#discarding && !ORDERLY_CLOSE_CODES.has(code)) {
      const why = code === 1006 ? 'connection closed without a WebSocket close frame' : `closed by the remote with code ${code}${reason.length > 0 ? ` (${reason.toString('utf8').slice(0, 123)})` : ''}`;
      this.#error ??= new PqnetError('IO_ERROR', `WebSocket: ${why}`, { details: { wsCode: code } });
    }
    this.#deliver();
  }

  /** Hand held messages to the handlers (unless paused); then, once closed, the close. */
  #deliver(): void {
    if (this.#delivering) return;
    this.#delivering = true;
    try {
      while (this.#handlers !== undefined && !this.#paused && this.#heldHead < this.#held.length) {
        const b = this.#held[this.#heldHead]!;
        this.#held[this.#heldHead++] = EMPTY;
        this.#handlers.data(b);
      }
    } finally {
      this.#delivering = false;
    }
    if (this.#heldHead >= this.#held.length && this.#held.length > 0) {
      this.#held = [];
      this.#heldHead = 0;
    }
    // An orderly close waits for the data before it (a paused reader gets it on resume);
    // a failure is reported at once, dropping what was not read.
    if (this.#closed && this.#handlers !== undefined && (this.#held.length === 0 || this.#error !== undefined)) {
      this.#discard();
      const h = this.#handlers;
      this.#handlers = undefined;
      h.close(this.#error);
    }
  }
}

const EMPTY = Buffer.alloc(0);

export interface WebSocketTransportOptions {
  /** See WS_UPGRADE_TIMEOUT_MS. */
  readonly upgradeTimeoutMs?: number;
}

export class WebSocketTransport implements Transport {
  readonly scheme = 'ws';
  readonly #upgradeTimeoutMs: number;

  constructor(options: WebSocketTransportOptions = {}) {
    this.#upgradeTimeoutMs = options.upgradeTimeoutMs ?? WS_UPGRADE_TIMEOUT_MS;
  }

  // async: a bad address or an aborted signal is a rejection, never a synchronous throw.
  async dial(address: string, options: DialOptions = {}): Promise<ByteStream> {
    const { host, port } = parseHostPort(address, 'ws');
    if (options.signal?.aborted === true) throw new PqnetError('CLOSED', `dial to ${address} aborted`);
    let ws: WebSocket;
    try {
      ws = new WebSocket(`${formatHostPort('ws', host, port)}/`, { perMessageDeflate: false, maxPayload: WS_MAX_MESSAGE_BYTES, followRedirects: false });
    } catch (e) {
      throw new PqnetError('ADDRESS_INVALID', `${JSON.stringify(address)}: ${(e as Error).message}`, { cause: e });
    }
    return await new Promise((resolve, reject) => {
      const timeout = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
      let socket: net.Socket | undefined;
      const fail = (e: PqnetError): void => {
        cleanup();
        // Terminating while connecting makes ws emit an error nobody needs.
        ws.on('error', () => undefined);
        ws.terminate();
        reject(e);
      };
      const onError = (e: Error): void => fail(new PqnetError('DIAL_FAILED', `${address}: ${e.message}`, { cause: e }));
      const onAbort = (): void => fail(new PqnetError('CLOSED', `dial to ${address} aborted`));
      const onUpgrade = (res: http.IncomingMessage): void => {
        socket = res.socket ?? undefined;
      };
      const onOpen = (): void => {
        if (socket === undefined) return fail(new PqnetError('DIAL_FAILED', `${address}: upgraded without a socket`));
        cleanup();
        resolve(new WebSocketStream(ws, socket));
      };
      const timer = setTimeout(() => fail(new PqnetError('DIAL_FAILED', `${address}: no answer within ${timeout} ms`)), timeout);
      const cleanup = (): void => {
        clearTimeout(timer);
        ws.off('error', onError);
        ws.off('upgrade', onUpgrade);
        ws.off('open', onOpen);
        options.signal?.removeEventListener('abort', onAbort);
      };
      ws.once('error', onError);
      ws.once('upgrade', onUpgrade);
      ws.once('open', onOpen);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async listen(address: string, onStream: (stream: ByteStream) => void): Promise<TransportListener> {
    const { host, port } = parseHostPort(address, 'ws');
    const upgradeTimeout = this.#upgradeTimeoutMs;
    // Until its upgrade, a connection is the HTTP server's: a silent one is dropped after
    // `upgradeTimeout` of inactivity (ws clears the socket timeout when it upgrades), one
    // that trickles its request after `upgradeTimeout` in all (checked every second at most).
    const server = http.createServer(
      { headersTimeout: upgradeTimeout, requestTimeout: upgradeTimeout, connectionsCheckingInterval: Math.min(1_000, upgradeTimeout), noDelay: true },
      (_req, res) => {
        res.writeHead(426, { 'content-type': 'text/plain', connection: 'close', upgrade: 'websocket' });
        res.end('WebSocket only\n');
      },
    );
    server.setTimeout(upgradeTimeout);
    const sockets = new Set<net.Socket>();
    server.on('connection', (s) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    const wss = new WebSocketServer({ server, path: '/', maxPayload: WS_MAX_MESSAGE_BYTES, perMessageDeflate: false, clientTracking: true });
    // ws re-emits the HTTP server's errors here; they are handled on `server` below.
    wss.on('error', () => undefined);
    wss.on('connection', (ws, req) => onStream(new WebSocketStream(ws, req.socket)));
    return await new Promise((resolve, reject) => {
      const onListenError = (e: Error): void => {
        wss.close();
        reject(new PqnetError('LISTEN_FAILED', `${address}: ${e.message}`, { cause: e }));
      };
      server.once('error', onListenError);
      server.listen({ host, port, backlog: 1024 }, () => {
        server.off('error', onListenError);
        // Accept errors after listening (EMFILE, ENFILE, ENOBUFS) are transient: keep serving.
        server.on('error', () => undefined);
        const a = server.address() as net.AddressInfo;
        resolve({
          address: formatHostPort('ws', a.address, a.port),
          close: () =>
            new Promise<void>((done) => {
              wss.close();
              server.close(() => done());
              for (const ws of wss.clients) ws.terminate();
              for (const s of sockets) s.destroy();
            }),
        });
      });
    });
  }
}
