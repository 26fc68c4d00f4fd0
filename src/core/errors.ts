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
  MSG_NOT_NEGOTIATED: { wire: 306, penalty: 20, description: 'message of a protocol the peers did not both announce' },
  MSG_RATE_LIMITED: { wire: 307, penalty: 1, description: 'message dropped by a rate limit (flood)' },

  // Multiplexing and request/response.
  MUX_BAD_CHANNEL: { wire: 500, penalty: 50, description: 'frame on a channel that does not exist' },
  MUX_BAD_CHUNK: { wire: 501, penalty: 50, description: 'chunk breaks the chunking rules (empty, too short, or continued on the control channel)' },
  MUX_BAD_SEQ: { wire: 502, penalty: 50, description: 'chunk does not continue the message in progress on its channel' },
  MUX_CREDIT_EXCEEDED: { wire: 503, penalty: 50, description: 'peer sent more than the credit it was granted' },
  MUX_CREDIT_OVERFLOW: { wire: 504, penalty: 20, description: 'credit grant overflows the window' },
  MUX_QUEUE_FULL: { wire: 505, penalty: 0, description: 'outgoing queue of the channel is full' },
  REQ_TIMEOUT: { wire: 510, penalty: 5, description: 'request not answered in time' },
  REQ_UNSOLICITED: { wire: 511, penalty: 5, description: 'response to a request that was never made' },
  REQ_TOO_MANY: { wire: 512, penalty: 5, description: 'too many requests in flight' },
  REQ_FAILED: { wire: 513, penalty: 0, description: 'the peer answered the request with an error' },
  REQ_NO_HANDLER: { wire: 514, penalty: 0, description: 'no handler for this request type' },

  // Peers.
  HELLO_TIMEOUT: { wire: 800, penalty: 5, description: 'no HELLO or HelloAck in time' },
  HELLO_VERSION_MISMATCH: { wire: 801, penalty: 0, description: 'peer protocol version not supported' },
  HELLO_CHAIN_MISMATCH: { wire: 802, penalty: 20, description: 'HELLO names another chain than the handshake did' },
  HELLO_CLOCK_SKEW: { wire: 803, penalty: 10, description: 'peer clock differs from ours by more than the allowed skew' },
  HELLO_UNEXPECTED: { wire: 804, penalty: 20, description: 'HELLO or HelloAck out of order or repeated' },
  PEER_SILENT: { wire: 805, penalty: 5, description: 'peer sent nothing for too long' },
  PEER_DUPLICATE: { wire: 806, penalty: 0, description: 'already connected to this peer' },
  PEER_SELF: { wire: 807, penalty: 0, description: 'connection to ourselves' },
  PEER_LIMIT: { wire: 808, penalty: 0, description: 'peer set is full' },
  PEER_SUBNET_LIMIT: { wire: 809, penalty: 0, description: 'too many peers from one subnet' },
  PEER_EVICTED: { wire: 810, penalty: 0, description: 'evicted to make room for another peer' },
  PEER_BANNED: { wire: 811, penalty: 0, description: 'peer or address is banned' },
  PEER_DENIED: { wire: 812, penalty: 0, description: 'address refused by the allow/deny lists' },
  PEER_LOW_SCORE: { wire: 813, penalty: 0, description: 'score fell below the ban threshold' },
  OPERATOR_DISCONNECT: { wire: 814, penalty: 0, description: 'disconnected by the operator' },
  OPERATOR_BAN: { wire: 815, penalty: 0, description: 'banned by the operator' },
  SLOW_READER: { wire: 816, penalty: 10, description: 'peer does not read what it is sent' },
  INVALID_BLOCK: { wire: 820, penalty: 25, description: 'invalid block' },
  INVALID_TX: { wire: 821, penalty: 5, description: 'invalid transaction' },
  INVALID_DATA: { wire: 822, penalty: 20, description: 'invalid data' },

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

  // Storage (local).
  STORE_OPEN_FAILED: { wire: 900, penalty: 0, description: 'store could not be opened' },
  STORE_CORRUPT: { wire: 901, penalty: 0, description: 'store file is corrupt or of an unknown schema' },
  STORE_IO: { wire: 902, penalty: 0, description: 'store read or write failed' },
  STORE_LOCKED: { wire: 903, penalty: 0, description: 'store is in use by another process' },

  // Operator surface: configuration, command line, HTTP API (local).
  CONFIG_INVALID: { wire: 1000, penalty: 0, description: 'invalid configuration' },

  // Chain data from a peer (the ChainAdapter's verdicts).
  CHAIN_BAD_HEADER: { wire: 1100, penalty: 100, description: 'header is malformed or fails validation' },
  CHAIN_UNKNOWN_PARENT: { wire: 1101, penalty: 10, description: 'header or block does not connect to a known parent' },
  CHAIN_BAD_BLOCK: { wire: 1102, penalty: 100, description: 'block is malformed or does not match its header' },
  CHAIN_BAD_TX: { wire: 1103, penalty: 5, description: 'transaction is malformed or not admissible' },
  CHAIN_BAD_STATE: { wire: 1104, penalty: 100, description: 'state snapshot data does not match its manifest' },

  // Sync protocol.
  SYNC_STALL: { wire: 1200, penalty: 10, description: 'peer did not deliver requested chain data in time' },
  SYNC_UNREQUESTED: { wire: 1201, penalty: 20, description: 'chain data that was not requested' },
  SYNC_BAD_RESPONSE: { wire: 1202, penalty: 50, description: 'response does not answer its request' },
  SYNC_RELAY_FLOOD: { wire: 1210, penalty: 10, description: 'peer announced or pushed more transactions or blocks than its relay rate cap' },
  SYNC_BAD_COMPACT: { wire: 1211, penalty: 50, description: 'compact block or its missing transactions do not rebuild the announced block' },
  SYNC_BAD_CHUNK: { wire: 1220, penalty: 50, description: 'state chunk does not hash to its manifest entry' },
  SYNC_BAD_MANIFEST: { wire: 1221, penalty: 50, description: 'state manifest is malformed or does not match the header it names' },

  // Gossip.
  GOSSIP_INVALID: { wire: 1300, penalty: 10, description: 'gossip item rejected by its topic validator (or a known-invalid item forwarded)' },
  GOSSIP_RATE_LIMITED: { wire: 1301, penalty: 2, description: 'gossip items pushed faster than the topic rate cap' },
  GOSSIP_OVERSIZE: { wire: 1302, penalty: 20, description: 'gossip item over its topic size cap' },
  GOSSIP_BROKEN_PROMISE: { wire: 1303, penalty: 2, description: 'item offered by IHAVE not delivered after IWANT' },
  GOSSIP_GRAFT_BACKOFF: { wire: 1304, penalty: 5, description: 'GRAFT during the prune backoff' },
  GOSSIP_MESH_DEFICIT: { wire: 1305, penalty: 3, description: 'mesh member delivered too few items' },
  GOSSIP_CONTROL_FLOOD: { wire: 1306, penalty: 5, description: 'more IHAVE or IWANT than allowed per heartbeat' },
  GOSSIP_DUPLICATE: { wire: 1307, penalty: 0, description: 'gossip item already seen' },
  GOSSIP_UNKNOWN_TOPIC: { wire: 1308, penalty: 0, description: 'gossip topic not registered' },
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
