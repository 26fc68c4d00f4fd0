/**
 * pqnet public API. Everything a node embedding pqnet needs is exported here;
 * deeper imports are possible but not a stable interface.
 */
export { SystemClock, ManualClock, type Clock, type TimerHandle } from './core/clock.ts';
export { PqnetError, Reasons, isPqnetError, reasonFromWire, type Reason } from './core/errors.ts';
export { DEFAULT_LIMITS, makeLimits, PROTOCOL_VERSION, MAX_CHUNK_BYTES, type Limits } from './core/limits.ts';
export { systemRandom, SeededRandom, type Random } from './core/random.ts';

export { KEM_ALGS, AEAD_ALGS, SIG_ALGS, type KemAlg, type AeadAlg, type SigAlg } from './secure/algorithms.ts';
export type { CryptoProvider, ProviderName } from './secure/provider.ts';
export { getProvider, isNativeAvailable } from './secure/providers.ts';
export { nativeProvider } from './secure/native.ts';
export { portableProvider, createPortableProvider } from './secure/portable.ts';
export { PeerId, generateIdentity, identityFromPrivateKey, type Identity } from './secure/identity.ts';
export { saveIdentity, loadIdentity } from './secure/keyfile.ts';
export { compilePolicy, DEFAULT_POLICY, type AlgorithmPolicy, type CompiledPolicy } from './secure/policy.ts';
export { Handshake, type HandshakeResult, type HandshakeStatus, type RemoteIdentity } from './secure/handshake.ts';
export { SecureListener, dialSecure, type SecureConfig, type SecureListenerOptions, type DialSecureOptions } from './secure/listener.ts';
export { SecureSession, type FrameHandler, type SessionStats } from './secure/session.ts';
export type { OpenedFrame } from './secure/frames.ts';

export { Channel, type ChannelId } from './wire/channels.ts';
export { MessageRegistry, defineMessage, type MessageType } from './wire/registry.ts';
export { createRegistry, Ping, Pong, Goodbye, APP_MESSAGE_ID_MIN } from './wire/messages.ts';
export * as schema from './wire/schema.ts';
export { FLAG_MORE, FLAG_REKEY, type FrameHeader } from './wire/frame.ts';

export { TcpTransport } from './transport/tcp.ts';
export { WebSocketTransport, type WebSocketTransportOptions } from './transport/ws.ts';
export { MultiTransport } from './transport/multi.ts';
export { MemoryNetwork } from './transport/memory.ts';
export type { ByteStream, Transport, TransportListener } from './transport/types.ts';

export { MuxConnection, type ConnectionContext, type MessageHandler, type RequestHandler, type ConnectionStats } from './mux/connection.ts';
export { Mux, type InboundMessage, type InboundLimiter } from './mux/mux.ts';
export { defineRequest, registerRequest, type RequestType, type RequestSpec } from './mux/rpc.ts';
export { Credit } from './wire/messages.ts';

export { Node, type NodeConfig, type PeerInfo, type HealthSnapshot, type NodeEvents, type MustConnectPeer, type Subscriber } from './node/node.ts';
export { Peer, DEFAULT_PEER_TIMERS, type PeerState, type PeerTimers } from './peer/peer.ts';
export { Hello, HelloAck, HelloStatus, Capability, PEER_PROTOCOL_VERSION, encodeIdentify, decodeIdentify, type IdentifyInfo } from './peer/messages.ts';
export { PeerSet, DEFAULT_PEER_SET_OPTIONS, type PeerSetOptions } from './peer/peer-set.ts';
export { ScoreBook, DEFAULT_SCORE_OPTIONS, type ScoreOptions, type ScoreStatus } from './peer/score.ts';
export { BanList, DEFAULT_BAN_OPTIONS, type BanOptions } from './peer/bans.ts';
export { AddressFilter } from './peer/filter.ts';
export { ConnectionLimiter, DEFAULT_RATE_LIMITS, type RateLimits } from './peer/limiter.ts';
export { PeerStore } from './peer/store.ts';
export { PeerBook, DEFAULT_PEER_BOOK_OPTIONS, type PeerBookOptions } from './peer/book.ts';
export type { PeerBookEntry, BanRecord, BanKind, AddressSource } from './peer/types.ts';
