/**
 * Process-wide count of bytes written to TCP sockets, for any transport in the
 * process (js-libp2p's @libp2p/tcp, pqnet's own, ws): it patches
 * `net.Socket.prototype`, so every TCP `net.Socket` is counted, whoever made
 * it. Only sockets whose handle is a TCP handle count: pipes (a piped
 * process.stdout/stderr, child-process stdio, IPC) and TTYs are `net.Socket`s
 * too, and the benchmark's own output must not be counted as traffic.
 *
 * What is patched: `_write` and `_writev`, the two hooks through which
 * `stream.Writable` hands data to a socket, not the public `write()`. Every
 * public path ends in one of them: `write(chunk)` (what @libp2p/tcp calls, in
 * socket-to-conn.js), `end(chunk)` (which does not go through `write()`),
 * `cork()`/`uncork()` batches (`_writev`) and `pipe()`. A chunk is counted
 * once, when Writable passes it to the socket (a write queued behind a busy
 * socket is counted when it is flushed; one written before the connection is
 * up is counted at once), and chunks still queued in Writable when a socket
 * is destroyed are not counted. The count is of bytes given to
 * the kernel, i.e. TCP payload: TCP/IP headers, retransmissions and ACKs are
 * not included. A `tls.TLSSocket` is a `net.Socket` too, but its `_write`
 * receives plaintext, so TLS sockets would be counted before encryption
 * (nothing in the gossip benchmarks uses TLS).
 *
 * Usage: `startCounting()` once (patches; idempotent), `reset()` at the start
 * of the phase being measured, `bytesWritten()` at its end, `stopCounting()`
 * to restore the original methods.
 */
import net from 'node:net';

type WriteCallback = (error?: Error | null) => void;
type WriteFn = (this: net.Socket, chunk: unknown, encoding: BufferEncoding, cb: WriteCallback) => void;
interface BufferedChunk { chunk: unknown; encoding: BufferEncoding }
type WritevFn = (this: net.Socket, chunks: readonly BufferedChunk[], cb: WriteCallback) => void;

/** The two internal hooks, typed; @types/node does not declare them. */
interface SocketInternals {
  _write: WriteFn;
  _writev: WritevFn;
}

/**
 * Whether the socket is TCP. `_handle` is internal too: net.connect() and
 * accepted connections get a `TCP` handle synchronously, before any write,
 * and pipes get a `Pipe`, TTYs a `TTY`.
 */
function isTcp(socket: net.Socket): boolean {
  return (socket as unknown as { _handle?: object | null })._handle?.constructor.name === 'TCP';
}

const proto = net.Socket.prototype as unknown as SocketInternals;

let original: SocketInternals | undefined;
let written = 0;

function chunkBytes(chunk: unknown, encoding: BufferEncoding): number {
  // net.Socket sets decodeStrings: false, so strings reach _write undecoded.
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, encoding);
  if (ArrayBuffer.isView(chunk)) return chunk.byteLength;
  return 0;
}

/** Patch net.Socket so that every socket's writes are counted. Idempotent. */
export function startCounting(): void {
  if (original !== undefined) return;
  const orig: SocketInternals = { _write: proto._write, _writev: proto._writev };
  original = orig;
  proto._write = function (chunk, encoding, cb) {
    if (isTcp(this)) written += chunkBytes(chunk, encoding);
    orig._write.call(this, chunk, encoding, cb);
  };
  proto._writev = function (chunks, cb) {
    if (isTcp(this)) for (const c of chunks) written += chunkBytes(c.chunk, c.encoding);
    orig._writev.call(this, chunks, cb);
  };
}

export function isCounting(): boolean {
  return original !== undefined;
}

/** Bytes written to all TCP sockets since the last reset() (or since startCounting()). */
export function bytesWritten(): number {
  return written;
}

export function reset(): void {
  written = 0;
}

/** Restore net.Socket's original methods. The count is kept until reset(). */
export function stopCounting(): void {
  if (original === undefined) return;
  proto._write = original._write;
  proto._writev = original._writev;
  original = undefined;
}
