/** js-libp2p baseline nodes: TCP + Noise + Yamux, nothing else (no identify, no pings). */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';

export const LIBP2P_SINK_PROTOCOL = '/pqnet-bench/sink/1.0.0';
export const LIBP2P_IMPL = 'libp2p-noise-yamux';

/**
 * A node with the default TCP/Noise/Yamux settings. Listening nodes allow
 * 127.0.0.1 explicitly, which bypasses libp2p's inbound rate limit (5
 * connections per second per host by default) and pending-connection cap:
 * those are DoS guards, not part of the cost being measured.
 */
export function createNode(listen: boolean): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: listen ? ['/ip4/127.0.0.1/tcp/0'] : [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.1'], maxConnections: 100_000 },
    connectionMonitor: { enabled: false },
  });
}

export type Libp2pStream = Awaited<ReturnType<Libp2p['dialProtocol']>>;

/** Queued bytes above which a libp2p sender waits, like SecureSession's maxWriteBufferBytes. */
export const LIBP2P_WRITE_BUFFER_LIMIT = 4 * 1024 * 1024;

/**
 * `stream.send(data)` with back-pressure. Returns undefined when the caller may
 * send again at once, else a promise that resolves when it may.
 *
 * Not `stream.onDrain()`: in the installed js-libp2p (@libp2p/utils 7.4.1,
 * AbstractMessageStream) its promise is created once and never reset, so after
 * the first drain every later `onDrain()` resolves at once and a send loop
 * queues without bound. This waits for the next 'drain' event instead (or
 * 'idle', when the queue emptied without one). Yamux also emits 'drain' on
 * every window update while data is queued, so the wait goes on while
 * LIBP2P_WRITE_BUFFER_LIMIT or more bytes are queued.
 */
export function sendLibp2p(stream: Libp2pStream, data: Uint8Array): Promise<void> | undefined {
  if (stream.send(data) && stream.writeBufferLength < LIBP2P_WRITE_BUFFER_LIMIT) return undefined;
  return (async () => {
    do await nextWritable(stream);
    while (stream.writeBufferLength >= LIBP2P_WRITE_BUFFER_LIMIT);
  })();
}

function nextWritable(stream: Libp2pStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error): void => {
      stream.removeEventListener('drain', onWritable);
      stream.removeEventListener('idle', onWritable);
      stream.removeEventListener('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onWritable = (): void => settle();
    const onClose = (): void => settle(new Error('libp2p stream closed'));
    stream.addEventListener('drain', onWritable);
    stream.addEventListener('idle', onWritable);
    stream.addEventListener('close', onClose);
  });
}
