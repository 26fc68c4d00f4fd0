/**
 * `ChainAdapter`: what a chain provides to pqnet's sync engines (DESIGN.md,
 * Sync; docs/spec/sync.md). The engines in `sync/` know headers, blocks and
 * transactions only as bytes with the few facts below (hash, parent, height,
 * work); everything chain-specific — encoding, proof of work or signatures,
 * transaction rules, state — is behind this interface. The reference
 * implementation is the devchain (`chain/devchain/`).
 *
 * Conventions:
 * - Hashes are 32-byte `Uint8Array`s; `hex()` of a hash is its text form.
 * - Every method that judges peer data throws a `PqnetError` whose code names
 *   the fault (`CHAIN_BAD_HEADER`, `CHAIN_UNKNOWN_PARENT`, `CHAIN_BAD_BLOCK`,
 *   `CHAIN_BAD_TX`, `CHAIN_BAD_STATE`); the engines turn it into the peer's
 *   penalty. Local failures are `STORE_*`.
 * - Methods are synchronous: the devchain's SQLite store is, and the engines
 *   are sans-I/O state machines that call the adapter between events. An
 *   adapter over an asynchronous store keeps a synchronous cache of headers.
 * - Writes are atomic: after a crash the adapter reopens at a consistent
 *   state (every stored header's ancestors are stored; the tip's blocks and
 *   state are all applied or none of a block's are).
 */

/** 32 bytes. */
export type Hash = Uint8Array;

/** A header as the wire carries it, with what sync needs to know about it. */
export interface ChainHeader {
  readonly hash: Hash;
  /** Hash of the parent header (all zero for genesis). */
  readonly parent: Hash;
  readonly height: number;
  /** Work this header adds to its chain (e.g. 2^256 / (target + 1)). */
  readonly work: bigint;
  /** Canonical encoding: what `encode`-less relays forward and what `decodeHeader` reads. */
  readonly bytes: Uint8Array;
}

/** A stored header: its place in the header tree. */
export interface HeaderEntry extends ChainHeader {
  /** Cumulative work from genesis to this header inclusive. */
  readonly totalWork: bigint;
  /** Whether the block body is stored (and valid against the header). */
  readonly hasBlock: boolean;
}

export interface ChainBlock {
  readonly header: ChainHeader;
  /** Transaction ids in block order. */
  readonly txIds: readonly Hash[];
  /** Transaction bytes (each as `decodeTx` reads it) in block order: what compact block relay sends and rebuilds from. */
  readonly txs: readonly Uint8Array[];
  /** Canonical encoding of the whole block. */
  readonly bytes: Uint8Array;
}

export interface ChainTx {
  readonly id: Hash;
  readonly bytes: Uint8Array;
}

/** What importing one block did to the validated chain. */
export interface ImportResult {
  /** Blocks connected to the validated chain, in order (empty if the block is stored on a side branch or waits for its parent's body). */
  readonly connected: readonly Hash[];
  /** Blocks taken off the validated chain by a reorg, tip first. */
  readonly disconnected: readonly Hash[];
}

/** A state snapshot: enough to fetch and verify it chunk by chunk. */
export interface StateManifest {
  /** The block whose state this is. */
  readonly height: number;
  readonly blockHash: Hash;
  /** The state root the block's header commits to. */
  readonly stateRoot: Hash;
  /** Bytes per chunk (the last one may be shorter). */
  readonly chunkSize: number;
  /** Total bytes of the snapshot. */
  readonly totalBytes: number;
  /** Hash of each chunk, in order; a chunk is accepted only if it hashes to its entry. */
  readonly chunkHashes: readonly Hash[];
}

export interface ChainLimits {
  /** Largest encoded header, block and transaction: the wire caps of their messages. */
  readonly maxHeaderBytes: number;
  readonly maxBlockBytes: number;
  readonly maxTxBytes: number;
}

export interface ChainAdapter {
  /** Short name, e.g. `devchain`. */
  readonly name: string;
  readonly limits: ChainLimits;
  readonly genesis: HeaderEntry;

  // ---- Headers ----

  /** Parse a header and run the checks that need no other header (size, encoding, proof of work). Throws CHAIN_BAD_HEADER. */
  decodeHeader(bytes: Uint8Array): ChainHeader;
  /**
   * Check `header` against its parent (height, timestamp, difficulty): a stored
   * header, or, for a batch being judged before it is stored, the previous
   * header of the batch as a `HeaderEntry` (its `totalWork` computed, `hasBlock` false).
   * `nowMs` is wall-clock time for "not too far in the future" rules. Throws
   * CHAIN_BAD_HEADER.
   */
  validateHeader(header: ChainHeader, parent: HeaderEntry, nowMs: number): void;
  /**
   * Store headers that passed `validateHeader`, in one transaction; each one's
   * parent is stored or earlier in `headers`. Already stored ones are skipped.
   * Throws CHAIN_UNKNOWN_PARENT if a parent is missing (nothing is stored).
   */
  storeHeaders(headers: readonly ChainHeader[]): void;
  header(hash: Hash): HeaderEntry | undefined;
  /** The stored header with the most total work (ties: the one stored first). */
  bestHeader(): HeaderEntry;
  /** The header at `height` on the chain ending at `tip` (by default the best header chain). */
  headerAt(height: number, tip?: Hash): HeaderEntry | undefined;

  // ---- Blocks ----

  /** Parse a block and check it against its own header (transaction root, sizes). Throws CHAIN_BAD_BLOCK. */
  decodeBlock(bytes: Uint8Array): ChainBlock;
  /**
   * Store a decoded block whose header is stored, and connect every stored
   * block that now extends the validated chain; when a branch with more work
   * than the tip has all its blocks, reorganise to it. A block whose
   * transactions fail against the state marks it and its descendants invalid
   * and throws CHAIN_BAD_BLOCK. Throws CHAIN_UNKNOWN_PARENT if its header is
   * not stored.
   */
  importBlock(block: ChainBlock): ImportResult;
  block(hash: Hash): Uint8Array | undefined;
  /**
   * Encode the block of `header` with `txs` (transaction bytes in block order)
   * and check it as `decodeBlock` does: how compact block relay turns a header
   * and the transactions it gathered into a block. Throws CHAIN_BAD_BLOCK if
   * they do not make that header's block (transaction root, sizes, encoding).
   */
  assembleBlock(header: ChainHeader, txs: readonly Uint8Array[]): ChainBlock;
  /** The validated tip: the last block whose transactions have been applied. */
  tip(): HeaderEntry;

  // ---- Transactions ----

  /** Parse a transaction (encoding, size). Throws CHAIN_BAD_TX. */
  decodeTx(bytes: Uint8Array): ChainTx;
  /**
   * Pre-admission: whether `tx` may enter the mempool and be relayed, judged
   * against the tip's state (e.g. nonce and balance). Throws CHAIN_BAD_TX.
   */
  checkTx(tx: ChainTx): void;

  // ---- State ----

  /** The manifest of the newest state snapshot this node can serve, if any. */
  stateManifest(): StateManifest | undefined;
  /** One chunk of the snapshot whose state root is `stateRoot`; undefined if not held. */
  stateChunk(stateRoot: Hash, index: number): Uint8Array | undefined;
  /**
   * Adopt a snapshot whose chunks have all been verified against `manifest`:
   * the state at `manifest.blockHash` (whose header must be stored) becomes
   * the validated tip's state. Throws CHAIN_BAD_STATE if the chunks do not
   * decode or do not hash to the header's state root.
   */
  applyState(manifest: StateManifest, chunks: readonly Uint8Array[]): void;
}

/** Lowercase hex of a hash (for logs, maps and the API). */
export function hex(hash: Hash): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex');
}

export function sameHash(a: Hash, b: Hash): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
