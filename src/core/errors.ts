/**
 * One reason-code table (DESIGN.md, Principle 4). Each code is at once the wire
 * code (u16, sent in REJECT and GOODBYE), the `code` of a thrown `PqnetError`,
 * the label of `p2p_rejects_total{reason}` and of disconnect metrics, and the
 * key of the score penalty applied to the peer that caused it.
 *
 * `penalty` is the score a remote peer loses when it causes this reason
 * (0 for local conditions and for failures that are not evidence of abuse).
 * Issue "Connections and peers" applies them; the numbers live here so that
 * every layer reads the same table.
 */

export interface ReasonInfo {
  readonly wire: number;
  readonly penalty: number;
  readonly description: string;
}

export const Reasons = {
  // Local and general conditions.
  INTERNAL: { wire: 1, penalty: 0, description: 'internal error' },
  CLOSED: { wire: 2, penalty: 0, description: 'closed locally' },
  TIMEOUT: { wire: 3, penalty: 5, description: 'operation timed out' },
  IO_ERROR: { wire: 4, penalty: 0, description: 'transport error' },
  REMOTE_CLOSED: { wire: 5, penalty: 0, description: 'closed by the remote peer' },
  INVALID_ARGUMENT: { wire: 6, penalty: 0, description: 'invalid argument from the local caller' },
  SHUTDOWN: { wire: 7, penalty: 0, description: 'node shutting down' },

  // Handshake.
  HS_VERSION_MISMATCH: { wire: 100, penalty: 0, description: 'protocol version not supported' },
  HS_CHAIN_MISMATCH: { wire: 101, penalty: 0, description: 'chain id differs' },
  HS_POLICY_MISMATCH: { wire: 102, penalty: 0, description: 'algorithm policy root differs' },
  HS_NO_COMMON_KEM: { wire: 103, penalty: 0, description: 'no key exchange in common' },
  HS_NO_COMMON_AEAD: { wire: 104, penalty: 0, description: 'no AEAD in common' },
  HS_BAD_MESSAGE: { wire: 105, penalty: 20, description: 'malformed handshake message' },
  HS_UNEXPECTED_MESSAGE: { wire: 106, penalty: 20, description: 'handshake message out of order' },
  HS_DEADLINE: { wire: 107, penalty: 5, description: 'handshake deadline passed' },
  HS_AUTH_FAILED: { wire: 108, penalty: 20, description: 'handshake authentication record failed to decrypt' },
  HS_BAD_SIGNATURE: { wire: 109, penalty: 40, description: 'identity signature over the transcript is invalid' },
  HS_BAD_KEY: { wire: 110, penalty: 20, description: 'invalid ephemeral or identity public key' },
  HS_REJECTED: { wire: 111, penalty: 0, description: 'remote rejected the handshake' },
  HS_BUSY: { wire: 112, penalty: 0, description: 'too many handshakes in progress' },
  HS_BAD_COOKIE: { wire: 113, penalty: 5, description: 'retry cookie missing, stale or forged' },
  HS_SELF_CONNECT: { wire: 114, penalty: 0, description: 'connected to ourselves' },
  HS_UNSUPPORTED_IDENTITY: { wire: 115, penalty: 0, description: 'identity algorithm not allowed by policy' },
  HS_OVERSIZE: { wire: 116, penalty: 50, description: 'handshake message over its size cap' },
  HS_PEER_ID_MISMATCH: { wire: 117, penalty: 0, description: 'remote is not the peer that was dialled' },
  HS_DOWNGRADE: { wire: 118, penalty: 50, description: 'responder chose an algorithm that was not offered' },
  HS_RETRY_LOOP: { wire: 119, penalty: 5, description: 'too many retry round trips' },
  HS_RATE_LIMITED: { wire: 120, penalty: 5, description: 'too many handshakes from this address; retry later' },

  // Encrypted frames.
  FRAME_OVERSIZE: { wire: 200, penalty: 100, description: 'frame longer than the maximum' },
  FRAME_UNDERSIZE: { wire: 201, penalty: 50, description: 'frame shorter than header and tag' },
  FRAME_AEAD_FAILED: { wire: 202, penalty: 50, description: 'frame failed authentication (forged, reordered or replayed)' },
  FRAME_COUNTER_EXHAUSTED: { wire: 203, penalty: 20, description: 'frame counter reached its limit without a rekey' },
  FRAME_BAD_HEADER: { wire: 204, penalty: 50, description: 'frame header has reserved bits set or an invalid field' },

  // Messages.
  MSG_UNKNOWN_ID: { wire: 300, penalty: 20, description: 'unknown message id' },
  MSG_OVERSIZE: { wire: 301, penalty: 50, description: 'message over its type cap' },
  MSG_MALFORMED: { wire: 302, penalty: 20, description: 'message is not valid CBOR' },
  MSG_NON_CANONICAL: { wire: 303, penalty: 20, description: 'message CBOR is not canonical' },
  MSG_SCHEMA: { wire: 304, penalty: 20, description: 'message does not match its schema' },
  MSG_WRONG_CHANNEL: { wire: 305, penalty: 20, description: 'message sent on a channel other than its own' },

  // Keys and identities (local).
  KEY_FILE_MISSING: { wire: 400, penalty: 0, description: 'key file not found' },
  KEY_FILE_CORRUPT: { wire: 401, penalty: 0, description: 'key file is corrupt' },
  KEY_FILE_WRONG_ALG: { wire: 402, penalty: 0, description: 'key file holds a key of another algorithm' },
  KEY_FILE_INSECURE: { wire: 403, penalty: 0, description: 'key file is readable by other users' },
  KEY_FILE_EXISTS: { wire: 404, penalty: 0, description: 'key file already exists' },
  UNSUPPORTED_ALGORITHM: { wire: 405, penalty: 0, description: 'algorithm not supported by this crypto provider' },
  BAD_PEER_ID: { wire: 406, penalty: 0, description: 'text is not a valid peer id' },

  // Transport.
  ADDRESS_INVALID: { wire: 600, penalty: 0, description: 'address cannot be parsed' },
  DIAL_FAILED: { wire: 601, penalty: 0, description: 'could not connect' },
  LISTEN_FAILED: { wire: 602, penalty: 0, description: 'could not listen' },
  CONNECTION_LIMIT: { wire: 603, penalty: 0, description: 'connection limit reached' },
  TOO_MANY_PER_IP: { wire: 604, penalty: 0, description: 'too many connections from one address' },
} as const satisfies Record<string, ReasonInfo>;

export type Reason = keyof typeof Reasons;

const byWire = new Map<number, Reason>();
for (const [name, info] of Object.entries(Reasons)) {
  if (byWire.has(info.wire)) throw new Error(`duplicate wire code ${info.wire}`);
  byWire.set(info.wire, name as Reason);
}

/** The reason a wire code stands for; unknown codes map to `undefined`. */
export function reasonFromWire(code: number): Reason | undefined {
  return byWire.get(code);
}

export interface PqnetErrorOptions {
  readonly cause?: unknown;
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * The one error type. Callers match on `code`, never on the class or message.
 */
export class PqnetError extends Error {
  override readonly name = 'PqnetError';
  readonly code: Reason;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: Reason, message?: string, options: PqnetErrorOptions = {}) {
    super(message === undefined ? Reasons[code].description : `${Reasons[code].description}: ${message}`, {
      cause: options.cause,
    });
    this.code = code;
    this.details = options.details;
  }

  get wireCode(): number {
    return Reasons[this.code].wire;
  }
}

export function isPqnetError(e: unknown): e is PqnetError {
  if (!(e instanceof Error) || e.name !== 'PqnetError') return false;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && Object.hasOwn(Reasons, code);
}

/** Wrap anything thrown into a `PqnetError`, keeping typed ones as they are. */
export function toPqnetError(e: unknown, fallback: Reason = 'INTERNAL'): PqnetError {
  if (isPqnetError(e)) return e;
  return new PqnetError(fallback, e instanceof Error ? e.message : String(e), { cause: e });
}
