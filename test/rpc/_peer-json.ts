/** A `PeerJson` as the API serves it, for client and CLI tests; `over` replaces fields. */
import type { PeerJson } from '../../src/rpc/types.ts';

export function makePeer(over: Partial<PeerJson>): PeerJson {
  return {
    peerId: null,
    direction: 'outbound',
    state: 'active',
    address: 'tcp://127.0.0.1:41001',
    host: '127.0.0.1',
    mustConnect: false,
    agent: 'pqnet/0.1',
    listenAddresses: [],
    protocols: [],
    height: null,
    rttMs: 0.42,
    score: 50,
    scoreStatus: 'neutral',
    clockSkewMs: null,
    connectedForMs: 3 * 3_600_000 + 5 * 60_000,
    bytesIn: 1536,
    bytesOut: 12 * 1024 * 1024,
    queuedBytes: 0,
    requestsInFlight: 0,
    handshake: { kem: 'x25519-ml-kem-768', aead: 'chacha20-poly1305', sig: 'ml-dsa-65', ms: 12.3 },
    messages: { in: {}, out: {} },
    ...over,
  };
}
