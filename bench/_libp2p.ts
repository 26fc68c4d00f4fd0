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
