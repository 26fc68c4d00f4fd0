/**
 * Named limits (DESIGN.md, Principle 3). Spec values are fixed by the wire
 * protocol (docs/spec/wire.md, docs/spec/handshake.md) and both sides must agree
 * on them; implementation defaults are this node's policy and can be overridden
 * through `Limits` overrides (the `[limits]` section of the node configuration,
 * docs/CONFIG.md).
 */

// ---- Spec values: changing one changes the protocol. ----

/** Protocol version carried in HELLO_I. */
export const PROTOCOL_VERSION = 1;
/** Length prefix of every record and frame (u32 big-endian). */
export const LENGTH_PREFIX_BYTES = 4;
/** Poly1305 / GCM tag. */
export const AEAD_TAG_BYTES = 16;
/** AEAD nonce: 4 zero bytes || 64-bit big-endian counter. */
export const AEAD_NONCE_BYTES = 12;
/** AEAD and HKDF output key size. */
export const KEY_BYTES = 32;
/** Plaintext frame header: channel u8 | msg_id u16 | seq u32 | flags u8. */
export const FRAME_HEADER_BYTES = 8;
/** A frame's plaintext (header + chunk) is at most 64 KiB (DESIGN.md, Frames). */
export const MAX_FRAME_PLAINTEXT_BYTES = 65_536;
/** The largest value a frame length prefix may carry. */
export const MAX_FRAME_CIPHERTEXT_BYTES = MAX_FRAME_PLAINTEXT_BYTES + AEAD_TAG_BYTES;
/** The smallest: a header with an empty chunk, plus the tag. */
export const MIN_FRAME_CIPHERTEXT_BYTES = FRAME_HEADER_BYTES + AEAD_TAG_BYTES;
/** Largest chunk in one frame. */
export const MAX_CHUNK_BYTES = MAX_FRAME_PLAINTEXT_BYTES - FRAME_HEADER_BYTES;
/** The receiver closes a direction whose counter reaches this without a rekey (2^32 frames). */
export const MAX_FRAMES_PER_KEY = 2 ** 32;
/** A chunk that is not the last of its message (flag MORE) carries at least this many bytes (docs/spec/mux.md). */
export const MIN_MORE_CHUNK_BYTES = 4_096;
/** Credit a sender may hold on one channel; a grant beyond it is MUX_CREDIT_OVERFLOW. */
export const MAX_CREDIT_WINDOW_BYTES = 2 ** 30;
/** Data channels (1-6) are credited; the control channel (0) is not. */
export const CHANNEL_COUNT = 7;
/** Handshake nonces (nonce_I, nonce_R). */
export const HANDSHAKE_NONCE_BYTES = 32;
/** Cap on the body of each handshake record type (type byte excluded). */
export const MAX_HELLO_I_BYTES = 2_048;
export const MAX_HELLO_R_BYTES = 2_048;
/** AUTH carries the identity public key, a signature (SLH-DSA: 7,856 B) and identify data. */
export const MAX_AUTH_BYTES = 16_384;
export const MAX_REJECT_BYTES = 64;
export const MAX_RETRY_BYTES = 128;
/** Largest identify blob inside AUTH. */
export const MAX_IDENTIFY_BYTES = 4_096;
/** Largest offer list in HELLO_I. */
export const MAX_OFFERS = 8;
/** Retry cookie: issued_at u64 || HMAC-SHA3-256 tag. */
export const COOKIE_BYTES = 40;

// ---- Implementation defaults: this node's policy. ----

export interface Limits {
  /** Deadline for a whole handshake: from accepting the connection (responder) or creating HELLO_I (initiator) to session keys. */
  readonly handshakeTimeoutMs: number;
  /** Handshakes in progress at once on one listener. */
  readonly maxConcurrentHandshakes: number;
  /** Handshakes in progress at once from one remote host group (IPv4 address, IPv6 /64). */
  readonly maxHandshakesPerIp: number;
  /** New inbound handshakes per second from one host group (token bucket rate)... */
  readonly handshakesPerHostPerSecond: number;
  /** ... and its burst. */
  readonly handshakeBurstPerHost: number;
  /**
   * Responder handshake work (public-key operations, measured on the clock) the
   * listener may spend per second, in milliseconds: 500 is half a core. Over
   * budget, new connections get REJECT{HS_BUSY} before any cryptography.
   */
  readonly handshakeCpuMsPerSecond: number;
  /** Burst of that budget, in milliseconds. */
  readonly handshakeCpuBurstMs: number;
  /** A responder fails a connection that has not delivered HELLO_I within this time. */
  readonly helloTimeoutMs: number;
  /** While more than this many handshakes are in progress, new ones must present a retry cookie. */
  readonly cookieThreshold: number;
  /** How long a retry cookie stays valid. */
  readonly cookieTtlMs: number;
  /** Retry round trips an initiator accepts before giving up. */
  readonly maxRetries: number;
  /** Rekey a direction after this many frames under one key. */
  readonly rekeyAfterFrames: number;
  /** ... or this many plaintext bytes under one key. */
  readonly rekeyAfterBytes: number;
  /** ... or this much time under one key. */
  readonly rekeyAfterMs: number;
  /** Bytes a session may queue for writing before `send` reports back-pressure. */
  readonly maxWriteBufferBytes: number;
  /**
   * Receive window per data channel: bytes the peer may send on it before we have
   * consumed them. The effective window is at least the largest size cap of a
   * message type on the channel, so that any accepted message fits.
   */
  readonly muxWindowBytes: number;
  /** Largest chunk the mux puts in one frame (at most MAX_CHUNK_BYTES, at least MIN_MORE_CHUNK_BYTES). */
  readonly muxChunkBytes: number;
  /** The mux hands frames to the socket only while fewer bytes than this wait in its write buffer, so a late high-priority message overtakes bulk data. */
  readonly muxWriteLowWaterBytes: number;
  /** Bytes of messages waiting on one channel before `send` refuses more (MUX_QUEUE_FULL); one message is always accepted into an empty queue. */
  readonly muxQueueBytes: number;
  /** Default deadline of an outbound request. */
  readonly requestTimeoutMs: number;
  /** Our requests awaiting an answer from one peer. */
  readonly maxRequestsInFlight: number;
  /** Requests from one peer we handle at once; more are answered REQ_TOO_MANY. */
  readonly maxInboundRequests: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  handshakeTimeoutMs: 10_000,
  maxConcurrentHandshakes: 256,
  maxHandshakesPerIp: 32,
  handshakesPerHostPerSecond: 10,
  handshakeBurstPerHost: 20,
  handshakeCpuMsPerSecond: 500,
  handshakeCpuBurstMs: 2_000,
  helloTimeoutMs: 3_000,
  cookieThreshold: 128,
  cookieTtlMs: 10_000,
  maxRetries: 2,
  rekeyAfterFrames: 1 << 20,
  rekeyAfterBytes: 2 ** 34, // 16 GiB
  rekeyAfterMs: 10 * 60_000,
  maxWriteBufferBytes: 4 * 1024 * 1024,
  muxWindowBytes: 1024 * 1024,
  muxChunkBytes: MAX_CHUNK_BYTES,
  muxWriteLowWaterBytes: 128 * 1024,
  muxQueueBytes: 4 * 1024 * 1024,
  requestTimeoutMs: 10_000,
  maxRequestsInFlight: 32,
  maxInboundRequests: 32,
});

export function makeLimits(overrides: Partial<Limits> = {}): Limits {
  const l = { ...DEFAULT_LIMITS, ...overrides };
  for (const [k, v] of Object.entries(l)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`limit ${k} must be a non-negative number`);
  }
  if (l.rekeyAfterFrames >= MAX_FRAMES_PER_KEY) throw new RangeError('rekeyAfterFrames must be below MAX_FRAMES_PER_KEY');
  if (l.muxChunkBytes < MIN_MORE_CHUNK_BYTES || l.muxChunkBytes > MAX_CHUNK_BYTES) throw new RangeError(`muxChunkBytes must be in [${MIN_MORE_CHUNK_BYTES}, ${MAX_CHUNK_BYTES}]`);
  if (l.muxWindowBytes < MIN_MORE_CHUNK_BYTES || l.muxWindowBytes > MAX_CREDIT_WINDOW_BYTES) throw new RangeError(`muxWindowBytes must be in [${MIN_MORE_CHUNK_BYTES}, ${MAX_CREDIT_WINDOW_BYTES}]`);
  if (l.maxRequestsInFlight < 1 || l.maxInboundRequests < 1) throw new RangeError('request caps must be at least 1');
  return Object.freeze(l);
}
