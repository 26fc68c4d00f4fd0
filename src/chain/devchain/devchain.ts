/**
 * `Devchain`: a small real chain for development and tests, implementing
 * `ChainAdapter` (adapter.ts) on a `DevchainStore` (SQLite). Encodings are in
 * `encoding.ts`, the state rules in `state.ts`, the parameters in `params.ts`.
 *
 * How it works:
 * - **Headers** are stored as they come (headers-first): each one's parent is
 *   stored, its total work is the parent's plus the chain's fixed work. A
 *   header building on a block known to be invalid is stored as invalid too
 *   (and `validateHeader` refuses it). The **best header** is the valid one
 *   with the most total work, the first stored among equals; `best_chain`
 *   (height → hash) follows it and is rewritten from the fork point when it
 *   changes.
 * - **Blocks.** `importBlock` stores the body, marks it *linked* when its
 *   parent is (every body from the state base up is stored), and links its
 *   stored descendants in turn. Then it *activates the best chain*, as
 *   bitcoind does: while some valid linked header has more work than the tip,
 *   disconnect down to the fork point (undo records) and connect up to it, one
 *   savepoint per attempt. A block whose transactions do not apply, or whose
 *   resulting state root is not its header's, undoes the attempt, is marked
 *   invalid with every stored descendant, and the search starts again (maybe
 *   ending on the old chain). The whole import (body, links, every disconnect
 *   and connect) is one transaction, so a crash leaves the chain before or
 *   after it, never half-reorganised. Opening a store runs the activation
 *   once more as a safety net (it finds nothing to do on a file this code
 *   wrote). Ties in work keep the current tip (first seen).
 * - **Mined blocks** are not applied twice: `mine` keeps the state transition
 *   it computed on the tip, and connecting that block on that same tip reuses
 *   it (the root is still compared with the header's).
 * - **State** at the tip: accounts, bucket hashes (in memory too) and one undo
 *   record per connected block, kept for every block above the state base so
 *   any reorganisation down to it can be undone exactly.
 * - **Snapshots** (`stateManifest`) are the tip's state, built on first
 *   request and kept per block (the last SNAPSHOTS_KEPT, in memory);
 *   `stateChunk` serves any held one by state root. `applyState` checks the
 *   chunks, the records and the root against the stored header, then replaces
 *   the accounts, makes that block the tip and the state base (the blocks
 *   below it are not needed), and links its stored descendants.
 * - **Producing blocks.** `mine` builds on the tip, or on any block whose
 *   state can be reached (`parent`: a block of the validated chain or a
 *   descendant with all bodies stored): that state is the tip's with the undo
 *   records applied down to the fork point and the side branch's blocks
 *   replayed, all in an in-memory overlay, so nothing is written until the
 *   mined block is imported like any other. That is how tests build competing
 *   branches on one node.
 *
 * One `Devchain` per file (the store holds SQLite's exclusive lock). Methods
 * are synchronous; bad peer data throws CHAIN_*, local failures STORE_*.
 */
import { SystemClock, type Clock } from '../../core/clock.ts';
import { isPqnetError, PqnetError } from '../../core/errors.ts';
import {
  hex, sameHash,
  type ChainAdapter, type ChainBlock, type ChainHeader, type ChainLimits, type ChainTx, type Hash, type HeaderEntry, type ImportResult, type StateManifest,
} from '../adapter.ts';
import {
  buildHeader, decodeBlock, decodeHeader, decodeTx, encodeBlock, encodeTx, merkleRoot, mineHeader,
  type DevBlock, type DevHeader, type DevTx,
} from './encoding.ts';
import { compareBytes, sha3, ZERO_HASH } from './hash.ts';
import {
  DEFAULT_STATE_CHUNK_BYTES, devchainLimits, genesisAccountId, HEADER_VERSION, makeDevchainParams, MAX_NONCE_AHEAD, MAX_STATE_CHUNK_BYTES,
  MIN_STATE_CHUNK_BYTES, paramsFingerprint, SNAPSHOTS_KEPT, workOf, type DevchainParams,
} from './params.ts';
import {
  applyTx, bucketHash, bucketHashesOf, buildSnapshot, decodeSnapshot, decodeUndo, encodeUndo, Overlay, stateRootOf, BUCKETS,
  type Account, type Change, type Snapshot,
} from './state.ts';
import { DevchainStore, type HeaderRow } from './store.ts';

/** Decoded headers kept by hash, so validating a batch does not decode a parent twice. */
export const HEADER_CACHE_SIZE = 4_096;

export interface DevchainOptions {
  /** Wall clock for the default timestamp of mined blocks and their "not in the future" check. Default: the system clock. */
  readonly clock?: Pick<Clock, 'wallNow'>;
  /** Chunk size of the snapshots this node serves (default 16 KiB). */
  readonly stateChunkBytes?: number;
}

export interface MineOptions {
  /** Candidate transactions, in order; those that do not decode, repeat or apply are skipped. At most `maxTxsPerBlock` are taken. */
  readonly txs?: readonly Uint8Array[];
  /** Default: max(parent's timestamp, the clock's wall time). */
  readonly timestampMs?: number;
  /** Build on this stored block instead of the tip (see the file header). */
  readonly parent?: Hash;
}

export interface MineChainOptions {
  /** Transactions per block, made by `makeTxs` (default 0). */
  readonly txsPerBlock?: number;
  /** Seed of the first block's transactions; block i uses seed + i (default 0). */
  readonly seed?: number;
}

interface Genesis {
  readonly header: DevHeader;
  readonly blockBytes: Uint8Array;
  readonly accounts: readonly (readonly [Hash, Account])[];
  readonly bucketHashes: readonly Hash[];
}

function buildGenesis(p: DevchainParams): Genesis {
  const accounts = Array.from({ length: p.genesisAccounts }, (_, i) => [genesisAccountId(i), { balance: p.genesisBalance, nonce: 0 }] as const);
  const bucketHashes = bucketHashesOf(accounts);
  const header = buildHeader({
    version: HEADER_VERSION,
    chainId: p.chainId,
    parent: ZERO_HASH,
    height: 0,
    timestampMs: p.genesisTimestampMs,
    txRoot: merkleRoot([]),
    stateRoot: stateRootOf(bucketHashes),
    target: p.target,
    nonce: 0,
  });
  return { header, blockBytes: encodeBlock(header.bytes, []), accounts, bucketHashes };
}

function writeGenesis(s: DevchainStore, g: Genesis, fingerprint: Uint8Array): void {
  const h = g.header;
  s.insertHeader({
    hash: h.hash, parent: h.parent, height: 0, timestampMs: h.timestampMs, stateRoot: h.stateRoot, totalWork: h.work,
    hasBlock: true, linked: true, invalid: false, bytes: h.bytes,
  });
  s.putBlock(h.hash, g.blockBytes);
  for (const [id, a] of g.accounts) s.putAccount(id, a);
  g.bucketHashes.forEach((hash, b) => s.putBucket(b, hash));
  s.setChainAt('best', 0, h.hash);
  s.setChainAt('valid', 0, h.hash);
  s.setMeta('params', fingerprint);
  for (const key of ['tip', 'best', 'base'] as const) s.setMeta(key, h.hash);
}

/** mulberry32: a small deterministic generator for `makeTxs` (not for anything secret). */
function seededRandom(seed: number): (n: number) => number {
  let a = new DataView(sha3(Buffer.from(`devchain/makeTxs/${seed}`, 'utf8')).buffer).getUint32(0);
  return (n: number): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

const INVALID_BLOCK_DETAIL = 'invalidBlock';

function badBlock(hash: Hash, reason: string): PqnetError {
  return new PqnetError('CHAIN_BAD_BLOCK', `block ${hex(hash)}: ${reason}`, { details: { [INVALID_BLOCK_DETAIL]: hex(hash), reason } });
}

/** A block found invalid while connecting. */
interface Failure {
  readonly hash: Hash;
  readonly error: PqnetError;
}

function corrupt(message: string): never {
  throw new PqnetError('STORE_CORRUPT', message);
}

export class Devchain implements ChainAdapter {
  readonly name = 'devchain';
  readonly params: DevchainParams;
  readonly limits: ChainLimits;
  readonly genesis: HeaderEntry;
  readonly #store: DevchainStore;
  readonly #clock: Pick<Clock, 'wallNow'>;
  readonly #chunkBytes: number;
  readonly #work: bigint;
  readonly #genesisIds: readonly Hash[];
  readonly #headerCache = new Map<string, DevHeader>();
  readonly #decodedBlocks = new WeakSet<object>();
  readonly #decodedTxs = new WeakSet<object>();
  #snapshots: Snapshot[] = [];
  /** The state transition `mine` computed for its block on the tip, reused when that block connects on that same tip. */
  #prepared: { readonly block: Hash; readonly tip: Hash; readonly overlay: Overlay; readonly buckets: Hash[] } | undefined;
  #tip!: HeaderRow;
  #best!: HeaderRow;
  #base!: Hash;
  #buckets!: Hash[];

  /**
   * Opens (or creates) the chain at `path` with these parameters (defaults
   * for the rest). A file made with other parameters is refused with
   * STORE_CORRUPT and left untouched.
   */
  static open(path: string, params: Partial<DevchainParams> = {}, options: DevchainOptions = {}): Devchain {
    const p = makeDevchainParams(params);
    const chunk = options.stateChunkBytes ?? DEFAULT_STATE_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunk) || chunk < MIN_STATE_CHUNK_BYTES || chunk > MAX_STATE_CHUNK_BYTES) {
      throw new RangeError(`stateChunkBytes must be an integer in [${MIN_STATE_CHUNK_BYTES}, ${MAX_STATE_CHUNK_BYTES}]`);
    }
    const g = buildGenesis(p);
    const fingerprint = paramsFingerprint(p);
    const store = DevchainStore.open(path, fingerprint, (s) => writeGenesis(s, g, fingerprint));
    try {
      return new Devchain(store, p, g, options, chunk);
    } catch (e) {
      store.close();
      throw e;
    }
  }

  private constructor(store: DevchainStore, params: DevchainParams, g: Genesis, options: DevchainOptions, chunkBytes: number) {
    this.#store = store;
    this.params = params;
    this.limits = devchainLimits(params);
    this.#clock = options.clock ?? new SystemClock();
    this.#chunkBytes = chunkBytes;
    this.#work = workOf(params.target);
    this.#genesisIds = g.accounts.map(([id]) => id);
    this.#cacheHeader(g.header);
    store.run(() => {
      const stored = store.chainAt('best', 0);
      if (stored === undefined || !sameHash(stored, g.header.hash)) corrupt('genesis differs from the parameters\'');
      this.#reload();
    });
    this.genesis = this.#entry(store.run(() => store.header(g.header.hash)) ?? corrupt('genesis header missing'));
    // Finish what a crash may have interrupted (a heavier linked branch not yet connected).
    this.#write(() => {
      this.#activate();
    });
  }

  /** Closes the file. Idempotent; every other method then throws CLOSED. */
  close(): void {
    this.#store.close();
    this.#snapshots = [];
  }

  // ================================================================ headers

  decodeHeader(bytes: Uint8Array): DevHeader {
    const h = decodeHeader(bytes, this.params, this.genesis.hash);
    this.#cacheHeader(h);
    return h;
  }

  validateHeader(header: ChainHeader, parent: HeaderEntry, nowMs: number): void {
    const h = this.#fieldsOf(header);
    const p = this.#fieldsOf(parent);
    const bad = (why: string): never => {
      throw new PqnetError('CHAIN_BAD_HEADER', `header ${hex(h.hash)} at height ${h.height}: ${why}`);
    };
    if (!sameHash(h.parent, p.hash)) bad('parent hash differs from the given parent');
    if (h.height !== p.height + 1) bad(`height is not the parent's ${p.height} + 1`);
    if (h.timestampMs < p.timestampMs) bad(`timestamp ${h.timestampMs} before the parent's ${p.timestampMs}`);
    if (h.timestampMs > nowMs + this.params.maxFutureMs) bad(`timestamp ${h.timestampMs} more than ${this.params.maxFutureMs} ms ahead of ${nowMs}`);
    if (this.#store.run(() => this.#store.header(p.hash))?.invalid === true) bad('builds on an invalid block');
  }

  storeHeaders(headers: readonly ChainHeader[]): void {
    if (headers.length === 0) return;
    const fields = headers.map((h) => this.#fieldsOf(h)); // decode (or find) all before writing
    this.#write(() => {
      const s = this.#store;
      const batch = new Map<string, HeaderRow>();
      let top = this.#best;
      for (const h of fields) {
        const key = hex(h.hash);
        if (batch.has(key) || s.hasHeader(h.hash)) continue;
        const parent = batch.get(hex(h.parent)) ?? s.header(h.parent);
        if (parent === undefined) throw new PqnetError('CHAIN_UNKNOWN_PARENT', `header ${key} at height ${h.height}: parent ${hex(h.parent)} not stored`);
        if (h.height !== parent.height + 1) throw new PqnetError('CHAIN_BAD_HEADER', `header ${key}: height ${h.height} does not follow its parent's ${parent.height}`);
        const row = s.insertHeader({
          hash: h.hash, parent: h.parent, height: h.height, timestampMs: h.timestampMs, stateRoot: h.stateRoot,
          totalWork: parent.totalWork + this.#work, hasBlock: false, linked: false, invalid: parent.invalid, bytes: h.bytes,
        });
        batch.set(key, row);
        if (!row.invalid && row.totalWork > top.totalWork) top = row; // strict: ties keep the first stored
      }
      if (top !== this.#best) this.#setBest(top, (hash) => batch.get(hex(hash)) ?? s.header(hash));
    });
  }

  header(hash: Hash): HeaderEntry | undefined {
    const row = this.#store.run(() => this.#store.header(hash));
    return row === undefined ? undefined : this.#entry(row);
  }

  bestHeader(): HeaderEntry {
    this.#open();
    return this.#entry(this.#best);
  }

  headerAt(height: number, tip?: Hash): HeaderEntry | undefined {
    if (!Number.isSafeInteger(height) || height < 0) return undefined;
    const s = this.#store;
    return s.run(() => {
      const at = (hash: Hash | undefined): HeaderEntry | undefined => {
        const row = hash === undefined ? undefined : s.header(hash);
        return row === undefined ? undefined : this.#entry(row);
      };
      if (tip === undefined || sameHash(tip, this.#best.hash)) return height > this.#best.height ? undefined : at(s.chainAt('best', height));
      if (sameHash(tip, this.#tip.hash)) return height > this.#tip.height ? undefined : at(s.chainAt('valid', height));
      let r = s.header(tip);
      if (r === undefined || height > r.height) return undefined;
      for (;;) {
        if (r.height === height) return this.#entry(r);
        for (const index of ['best', 'valid'] as const) {
          const onIndex = s.chainAt(index, r.height);
          if (onIndex !== undefined && sameHash(onIndex, r.hash)) return at(s.chainAt(index, height));
        }
        r = s.header(r.parent) ?? corrupt(`parent of ${hex(r.hash)} missing`);
      }
    });
  }

  // ================================================================ blocks

  decodeBlock(bytes: Uint8Array): DevBlock {
    const b = decodeBlock(bytes, this.params, this.genesis.hash, { maxBlockBytes: this.limits.maxBlockBytes, maxTxsPerBlock: this.params.maxTxsPerBlock });
    this.#decodedBlocks.add(b);
    this.#cacheHeader(b.header);
    return b;
  }

  importBlock(block: ChainBlock): ImportResult {
    const b = this.#blockOf(block);
    const hash = b.header.hash;
    const before = this.#tip;
    const result = this.#write(() => {
      const s = this.#store;
      const row = s.header(hash);
      if (row === undefined) throw new PqnetError('CHAIN_UNKNOWN_PARENT', `block ${hex(hash)}: header not stored`);
      if (row.invalid) throw new PqnetError('CHAIN_BAD_BLOCK', `block ${hex(hash)} is known to be invalid`);
      if (!row.hasBlock) {
        s.putBlock(hash, b.bytes);
        s.setHasBlock(hash);
        if (sameHash(this.#best.hash, hash)) this.#best = { ...this.#best, hasBlock: true };
        if (s.header(row.parent)?.linked === true) this.#link(hash);
      }
      const failures = this.#activate(b);
      return { ...this.#diff(before), failures };
    });
    if (this.#store.run(() => this.#store.header(hash))?.invalid === true) {
      // The block itself failed, or an ancestor whose body came earlier: either way this chain is invalid.
      const own = result.failures.find((f) => sameHash(f.hash, hash)) ?? result.failures[0];
      const why = own === undefined ? 'builds on an invalid block'
        : sameHash(own.hash, hash) ? String(own.error.details?.reason) : `builds on invalid block ${hex(own.hash)} (${String(own.error.details?.reason)})`;
      throw new PqnetError('CHAIN_BAD_BLOCK', `block ${hex(hash)} is invalid: ${why}`, {
        cause: own?.error,
        details: { connected: result.connected.map(hex), disconnected: result.disconnected.map(hex) },
      });
    }
    return { connected: result.connected, disconnected: result.disconnected };
  }

  block(hash: Hash): Uint8Array | undefined {
    return this.#store.run(() => this.#store.block(hash));
  }

  /** `[header.bytes, txs]` encoded and checked by `decodeBlock` (CHAIN_BAD_BLOCK if the transactions do not match the header). */
  assembleBlock(header: ChainHeader, txs: readonly Uint8Array[]): DevBlock {
    if (!Array.isArray(txs) || txs.length > this.params.maxTxsPerBlock) {
      throw new PqnetError('CHAIN_BAD_BLOCK', `block ${hex(header.hash)}: more than ${this.params.maxTxsPerBlock} transactions`);
    }
    const b = this.decodeBlock(encodeBlock(header.bytes, txs));
    if (!sameHash(b.header.hash, header.hash)) throw new PqnetError('CHAIN_BAD_BLOCK', `header bytes hash to ${hex(b.header.hash)}, not ${hex(header.hash)}`);
    return b;
  }

  tip(): HeaderEntry {
    this.#open();
    return this.#entry(this.#tip);
  }

  // ================================================================ transactions

  decodeTx(bytes: Uint8Array): DevTx {
    const tx = decodeTx(bytes);
    this.#decodedTxs.add(tx);
    return tx;
  }

  /**
   * Pre-admission against the tip's state: amount > 0, sender ≠ recipient,
   * the sender exists, balance ≥ amount + fee, and the nonce is the
   * account's or up to MAX_NONCE_AHEAD above it — the mempool may hold
   * several transactions of one sender, which must connect in nonce order
   * (and each is checked against the balance on its own).
   */
  checkTx(tx: ChainTx): void {
    const t = this.#decodedTxs.has(tx) ? (tx as DevTx) : this.decodeTx(tx.bytes);
    const bad = (why: string): never => {
      throw new PqnetError('CHAIN_BAD_TX', `transaction ${hex(t.id)}: ${why}`);
    };
    if (t.amount <= 0) bad('amount is zero');
    if (sameHash(t.from, t.to)) bad('sender is the recipient');
    const a = this.#store.run(() => this.#store.account(t.from));
    if (a === undefined) return bad('unknown sender');
    if (t.nonce < a.nonce) bad(`nonce ${t.nonce} already used (account at ${a.nonce})`);
    if (t.nonce > a.nonce + MAX_NONCE_AHEAD) bad(`nonce ${t.nonce} more than ${MAX_NONCE_AHEAD} ahead of the account's ${a.nonce}`);
    const cost = BigInt(t.amount) + BigInt(t.fee);
    if (a.balance < cost) bad(`balance ${a.balance} < amount + fee ${cost}`);
  }

  // ================================================================ state

  stateManifest(): StateManifest | undefined {
    return this.#snapshotOfTip().manifest;
  }

  stateChunk(stateRoot: Hash, index: number): Uint8Array | undefined {
    this.#open();
    let snap = this.#snapshots.find((s) => sameHash(s.manifest.stateRoot, stateRoot));
    if (snap === undefined && sameHash(this.#tip.stateRoot, stateRoot)) snap = this.#snapshotOfTip();
    return Number.isSafeInteger(index) && index >= 0 ? snap?.chunks[index] : undefined;
  }

  applyState(manifest: StateManifest, chunks: readonly Uint8Array[]): void {
    const bad = (why: string): never => {
      throw new PqnetError('CHAIN_BAD_STATE', why);
    };
    const s = this.#store;
    if (!(manifest.blockHash instanceof Uint8Array) || !(manifest.stateRoot instanceof Uint8Array)) bad('manifest hashes are not bytes');
    const row = s.run(() => s.header(manifest.blockHash));
    if (row === undefined) return bad(`block ${hex(manifest.blockHash)}: header not stored`);
    if (row.invalid) bad(`block ${hex(row.hash)} is invalid`);
    if (manifest.height !== row.height) bad(`manifest height ${manifest.height}, header's ${row.height}`);
    if (!sameHash(manifest.stateRoot, row.stateRoot)) bad('manifest state root is not the header\'s');
    const state = decodeSnapshot(manifest, chunks);
    if (!sameHash(state.stateRoot, row.stateRoot)) bad('state does not hash to the header\'s state root');
    this.#write(() => {
      s.clearAccounts();
      for (const [id, a] of state.accounts) s.putAccount(id, a);
      state.bucketHashes.forEach((h, b) => s.putBucket(b, h));
      s.clearUndo();
      // The validated chain is the block's ancestry: the best index where it agrees, walked parents above that.
      const above: HeaderRow[] = [];
      let r = row;
      for (;;) {
        const onBest = s.chainAt('best', r.height);
        if (onBest !== undefined && sameHash(onBest, r.hash)) break;
        above.push(r);
        r = s.header(r.parent) ?? corrupt(`parent of ${hex(r.hash)} missing`);
      }
      s.resetValidFromBest(r.height);
      for (const a of above) s.setChainAt('valid', a.height, a.hash);
      s.clearLinked();
      this.#link(row.hash);
      s.setMeta('tip', row.hash);
      s.setMeta('base', row.hash);
      this.#reload();
      this.#activate();
    });
  }

  // ================================================================ producing (development and tests)

  /** Builds a block on the tip (or `options.parent`), finds its proof of work, stores and imports it. */
  mine(options: MineOptions = {}): DevBlock {
    const s = this.#store;
    const { parent, overlay, txs } = s.run(() => {
      const parent = options.parent === undefined ? this.#tip : s.header(options.parent);
      if (parent === undefined) throw new PqnetError('INVALID_ARGUMENT', `parent ${hex(options.parent!)} not stored`);
      const overlay = this.#stateAt(parent);
      const txs: DevTx[] = [];
      const seen = new Set<string>();
      for (const bytes of options.txs ?? []) {
        if (txs.length >= this.params.maxTxsPerBlock) break;
        let tx: DevTx;
        try {
          tx = decodeTx(bytes);
        } catch {
          continue;
        }
        const key = hex(tx.id);
        if (seen.has(key) || applyTx(overlay, tx) !== undefined) continue;
        seen.add(key);
        txs.push(tx);
      }
      return { parent, overlay, txs };
    });
    const buckets = s.run(() => this.#bucketsWith(overlay));
    const header = mineHeader({
      version: HEADER_VERSION,
      chainId: this.params.chainId,
      parent: parent.hash,
      height: parent.height + 1,
      timestampMs: options.timestampMs ?? Math.max(parent.timestampMs, this.#clock.wallNow()),
      txRoot: merkleRoot(txs.map((t) => t.id)),
      stateRoot: stateRootOf(buckets),
      target: this.params.target,
    });
    const block = this.decodeBlock(encodeBlock(header.bytes, txs.map((t) => t.bytes)));
    this.validateHeader(block.header, this.#entry(parent), this.#clock.wallNow());
    this.storeHeaders([block.header]);
    if (parent === this.#tip) this.#prepared = { block: header.hash, tip: parent.hash, overlay, buckets };
    try {
      this.importBlock(block);
    } finally {
      this.#prepared = undefined;
    }
    return block;
  }

  /**
   * `count` valid transfers between genesis accounts against the state at the
   * tip (or `parent`), in an order that applies: a sender's nonces follow
   * each other and every balance covers what it pays. Deterministic for a
   * seed and a state. Fewer if the accounts run dry.
   */
  makeTxs(count: number, seed = 0, parent?: Hash): Uint8Array[] {
    const n = this.#genesisIds.length;
    if (n < 2 || count <= 0) return [];
    const s = this.#store;
    const state = s.run(() => {
      const row = parent === undefined ? this.#tip : s.header(parent);
      if (row === undefined) throw new PqnetError('INVALID_ARGUMENT', `parent ${hex(parent!)} not stored`);
      return this.#stateAt(row);
    });
    const rand = seededRandom(seed);
    const out: Uint8Array[] = [];
    return s.run(() => {
      for (let attempts = 0; out.length < count && attempts < count * 10; attempts++) {
        const i = rand(n);
        let j = rand(n - 1);
        if (j >= i) j++;
        const from = this.#genesisIds[i]!;
        const a = state.get(from);
        const amount = 1 + rand(1_000);
        const fee = rand(10);
        if (a === undefined || a.balance < BigInt(amount + fee)) continue;
        const tx = { from, to: this.#genesisIds[j]!, amount, fee, nonce: a.nonce, memo: new Uint8Array(0) };
        if (applyTx(state, tx) === undefined) out.push(encodeTx(tx));
      }
      return out;
    });
  }

  /** Mines `n` blocks on the tip, each with `txsPerBlock` transactions from `makeTxs`. */
  mineChain(n: number, options: MineChainOptions = {}): DevBlock[] {
    const { txsPerBlock = 0, seed = 0 } = options;
    const out: DevBlock[] = [];
    for (let i = 0; i < n; i++) out.push(this.mine({ txs: txsPerBlock > 0 ? this.makeTxs(txsPerBlock, seed + i) : [] }));
    return out;
  }

  // ================================================================ inspection (tests, tools)

  /** The account at the tip, if it exists. */
  account(id: Hash): Account | undefined {
    return this.#store.run(() => this.#store.account(id));
  }

  /** Ids of the genesis accounts, in order. */
  get genesisAccountIds(): readonly Hash[] {
    return this.#genesisIds;
  }

  /** Whether the stored header is marked invalid (its block or an ancestor failed). */
  isInvalid(hash: Hash): boolean {
    return this.#store.run(() => this.#store.header(hash))?.invalid === true;
  }

  /**
   * Recomputes what the store keeps incrementally and compares: every bucket
   * hash from the accounts, the state root against the tip's header, the
   * validated index against the tip's ancestry down to the state base, and
   * the best header against the header table. Throws STORE_CORRUPT. O(state + chain).
   */
  checkIntegrity(): void {
    const s = this.#store;
    s.run(() => {
      const all = [...s.accounts()];
      const buckets = bucketHashesOf(all);
      const stored = s.buckets();
      for (let b = 0; b < BUCKETS; b++) if (!sameHash(buckets[b]!, stored[b]!)) corrupt(`bucket ${b} hash is stale`);
      if (!sameHash(stateRootOf(buckets), this.#tip.stateRoot)) corrupt('accounts do not hash to the tip\'s state root');
      let r: HeaderRow = this.#tip;
      for (;;) {
        const at = s.chainAt('valid', r.height);
        if (at === undefined || !sameHash(at, r.hash)) corrupt(`validated index differs at height ${r.height}`);
        if (!r.linked || r.invalid) corrupt(`block ${hex(r.hash)} on the validated chain is not linked or is invalid`);
        if (sameHash(r.hash, this.#base)) break;
        if (s.undo(r.hash) === undefined) corrupt(`no undo record for ${hex(r.hash)}`);
        r = s.header(r.parent) ?? corrupt(`parent of ${hex(r.hash)} missing`);
      }
      if (s.chainAt('valid', this.#tip.height + 1) !== undefined) corrupt('validated index runs past the tip');
      const best = s.bestValid();
      if (best === undefined || !sameHash(best.hash, this.#best.hash)) corrupt('best header is not the valid header with the most work');
      const onBest = s.chainAt('best', this.#best.height);
      if (onBest === undefined || !sameHash(onBest, this.#best.hash) || s.chainAt('best', this.#best.height + 1) !== undefined) corrupt('best index does not end at the best header');
    });
  }

  // ================================================================ internals

  #open(): void {
    if (this.#store.closed) throw new PqnetError('CLOSED', 'devchain');
  }

  /** A transaction; on failure the in-memory view is re-read from the store, which rolled back. */
  #write<T>(fn: () => T): T {
    try {
      return this.#store.write(fn);
    } catch (e) {
      if (!this.#store.closed) {
        try {
          this.#store.run(() => this.#reload());
        } catch {
          // The original error says more.
        }
      }
      throw e;
    }
  }

  /** Reads tip, best header, base and bucket hashes from the store. */
  #reload(): void {
    const s = this.#store;
    const row = (key: 'tip' | 'best' | 'base'): HeaderRow => {
      const hash = s.meta(key) ?? corrupt(`meta ${key} missing`);
      return s.header(hash) ?? corrupt(`meta ${key} names a header that is not stored`);
    };
    this.#tip = row('tip');
    this.#best = row('best');
    this.#base = row('base').hash;
    this.#buckets = s.buckets();
    if (!sameHash(stateRootOf(this.#buckets), this.#tip.stateRoot)) corrupt('bucket hashes do not match the tip\'s state root');
  }

  #entry(r: HeaderRow): HeaderEntry {
    return Object.freeze({ hash: r.hash, parent: r.parent, height: r.height, work: this.#work, bytes: r.bytes, totalWork: r.totalWork, hasBlock: r.hasBlock });
  }

  #cacheHeader(h: DevHeader): void {
    const key = hex(h.hash);
    if (this.#headerCache.has(key)) return;
    this.#headerCache.set(key, h);
    if (this.#headerCache.size > HEADER_CACHE_SIZE) this.#headerCache.delete(this.#headerCache.keys().next().value!);
  }

  /** The decoded header behind any ChainHeader: from the cache by hash, else decoded from its bytes (which must hash to it). */
  #fieldsOf(h: ChainHeader): DevHeader {
    const cached = this.#headerCache.get(hex(h.hash));
    if (cached !== undefined) return cached;
    const d = this.decodeHeader(h.bytes);
    if (!sameHash(d.hash, h.hash)) throw new PqnetError('CHAIN_BAD_HEADER', `header bytes hash to ${hex(d.hash)}, not ${hex(h.hash)}`);
    return d;
  }

  #blockOf(block: ChainBlock): DevBlock {
    if (this.#decodedBlocks.has(block)) return block as DevBlock;
    const b = this.decodeBlock(block.bytes);
    if (!sameHash(b.header.hash, block.header.hash)) throw new PqnetError('INVALID_ARGUMENT', 'block bytes do not match its header');
    return b;
  }

  /** A stored body, decoded; it was checked when imported, so a failure now is corruption. */
  #storedBlock(hash: Hash): DevBlock {
    const bytes = this.#store.block(hash) ?? corrupt(`body of linked block ${hex(hash)} missing`);
    try {
      return this.decodeBlock(bytes);
    } catch (e) {
      throw new PqnetError('STORE_CORRUPT', `stored block ${hex(hash)} no longer decodes`, { cause: e });
    }
  }

  #onValidChain(r: HeaderRow): boolean {
    const at = this.#store.chainAt('valid', r.height);
    return at !== undefined && sameHash(at, r.hash);
  }

  /** Makes `row` the best header and rewrites `best_chain` from the fork point. */
  #setBest(row: HeaderRow, lookup: (hash: Hash) => HeaderRow | undefined): void {
    const s = this.#store;
    const path: HeaderRow[] = [];
    for (let r: HeaderRow = row; ;) {
      const at = s.chainAt('best', r.height);
      if (at !== undefined && sameHash(at, r.hash)) break;
      path.push(r);
      if (r.height === 0) corrupt('best header does not descend from genesis');
      r = lookup(r.parent) ?? corrupt(`parent of ${hex(r.hash)} missing`);
    }
    s.truncateChain('best', row.height);
    for (const r of path) s.setChainAt('best', r.height, r.hash);
    s.setMeta('best', row.hash);
    this.#best = row;
  }

  /** Marks `hash` linked, then every stored descendant whose body is stored and whose parent became linked. */
  #link(hash: Hash): void {
    const s = this.#store;
    const queue = [hash];
    for (let h = queue.pop(); h !== undefined; h = queue.pop()) {
      s.setLinked(h, true);
      for (const c of s.children(h)) if (c.hasBlock && !c.linked) queue.push(c.hash);
    }
  }

  /** Marks `hash` and its stored descendants invalid; moves the best header off them. */
  #markInvalid(hash: Hash): void {
    const s = this.#store;
    const queue = [hash];
    for (let h = queue.pop(); h !== undefined; h = queue.pop()) {
      s.setInvalid(h);
      for (const c of s.children(h)) if (!c.invalid) queue.push(c.hash);
    }
    const best = s.bestValid() ?? corrupt('no valid header left');
    if (!sameHash(best.hash, this.#best.hash)) this.#setBest(best, (h) => s.header(h));
  }

  /** Connects the valid linked branch with the most work while it has more than the tip (see the file header). */
  #activate(hint?: DevBlock): Failure[] {
    const s = this.#store;
    const failures: Failure[] = [];
    for (;;) {
      const cand = s.bestCandidate();
      if (cand === undefined || cand.totalWork <= this.#tip.totalWork) return failures;
      const path: HeaderRow[] = [];
      let r = cand;
      while (!this.#onValidChain(r)) {
        path.push(r);
        r = s.header(r.parent) ?? corrupt(`parent of ${hex(r.hash)} missing`);
      }
      const fork = r;
      path.reverse();
      try {
        s.savepoint(() => {
          while (!sameHash(this.#tip.hash, fork.hash)) this.#disconnectTip();
          for (const p of path) this.#connect(p, hint !== undefined && sameHash(hint.header.hash, p.hash) ? hint : undefined);
        });
      } catch (e) {
        this.#reload(); // the savepoint rolled back: tip and buckets as before the attempt
        const bad = isPqnetError(e) && e.code === 'CHAIN_BAD_BLOCK' ? e.details?.[INVALID_BLOCK_DETAIL] : undefined;
        if (typeof bad !== 'string') throw e;
        const badHash = Uint8Array.from(Buffer.from(bad, 'hex'));
        this.#markInvalid(badHash);
        failures.push({ hash: badHash, error: e as PqnetError });
      }
    }
  }

  /** Bucket hashes of the tip's state with the overlay's changes, recomputing only the buckets they touch. */
  #bucketsWith(overlay: Overlay): Hash[] {
    const byBucket = new Map<number, Change[]>();
    for (const c of overlay.changes.values()) {
      const b = c.id[0]!;
      const list = byBucket.get(b);
      if (list === undefined) byBucket.set(b, [c]);
      else list.push(c);
    }
    const buckets = this.#buckets.slice();
    for (const [b, changes] of byBucket) {
      // Merge two sorted lists: the bucket's stored accounts and the overlay's changes to it.
      const rows = this.#store.bucketAccounts(b);
      changes.sort((x, y) => compareBytes(x.id, y.id));
      const merged: (readonly [Hash, Account])[] = [];
      for (let i = 0, j = 0; i < rows.length || j < changes.length;) {
        const order = i === rows.length ? 1 : j === changes.length ? -1 : compareBytes(rows[i]![0], changes[j]!.id);
        if (order < 0) {
          merged.push(rows[i++]!);
          continue;
        }
        if (order === 0) i++;
        const c = changes[j++]!;
        if (c.after !== undefined) merged.push([c.id, c.after]);
      }
      buckets[b] = bucketHash(merged);
    }
    return buckets;
  }

  /** Writes the overlay's accounts and the new bucket hashes. */
  #commitState(overlay: Overlay, buckets: Hash[]): void {
    const s = this.#store;
    for (const c of overlay.changes.values()) {
      if (c.after === undefined) s.deleteAccount(c.id);
      else s.putAccount(c.id, c.after);
    }
    for (let b = 0; b < BUCKETS; b++) if (buckets[b] !== this.#buckets[b]) s.putBucket(b, buckets[b]!);
    this.#buckets = buckets;
  }

  /** Applies the block of `row` (a child of the tip) to the state. Throws CHAIN_BAD_BLOCK naming it if it does not apply. */
  #connect(row: HeaderRow, body?: DevBlock): void {
    const s = this.#store;
    const prepared = this.#prepared;
    let overlay: Overlay;
    let buckets: Hash[];
    if (prepared !== undefined && sameHash(prepared.block, row.hash) && sameHash(prepared.tip, this.#tip.hash)) {
      ({ overlay, buckets } = prepared); // computed from these transactions on this very state by `mine`
    } else {
      const b = body ?? this.#storedBlock(row.hash);
      overlay = new Overlay((id) => s.account(id));
      b.decodedTxs.forEach((tx, i) => {
        const problem = applyTx(overlay, tx);
        if (problem !== undefined) throw badBlock(row.hash, `transaction ${i} (${hex(tx.id)}): ${problem}`);
      });
      buckets = this.#bucketsWith(overlay);
    }
    const root = overlay.changes.size === 0 ? this.#tip.stateRoot : stateRootOf(buckets); // no change: the tip's state
    if (!sameHash(root, row.stateRoot)) throw badBlock(row.hash, 'state root differs from the header\'s');
    this.#commitState(overlay, buckets);
    s.putUndo(row.hash, encodeUndo([...overlay.changes.values()]));
    s.setChainAt('valid', row.height, row.hash);
    s.setMeta('tip', row.hash);
    this.#tip = row;
  }

  /** Takes the tip's block off with its undo record. */
  #disconnectTip(): void {
    const s = this.#store;
    const row = this.#tip;
    if (sameHash(row.hash, this.#base)) throw new PqnetError('INTERNAL', 'cannot disconnect the state base');
    const overlay = new Overlay((id) => s.account(id));
    for (const e of decodeUndo(s.undo(row.hash) ?? corrupt(`no undo record for ${hex(row.hash)}`))) overlay.set(e.id, e.before);
    const buckets = this.#bucketsWith(overlay);
    const parent = s.header(row.parent) ?? corrupt(`parent of ${hex(row.hash)} missing`);
    if (!sameHash(stateRootOf(buckets), parent.stateRoot)) corrupt(`undoing ${hex(row.hash)} does not restore its parent's state root`);
    this.#commitState(overlay, buckets);
    s.deleteUndo(row.hash);
    s.truncateChain('valid', parent.height);
    s.setMeta('tip', parent.hash);
    this.#tip = parent;
  }

  /** The state after block `row`, as an overlay on the tip's state (see the file header). Writes nothing. */
  #stateAt(row: HeaderRow): Overlay {
    const s = this.#store;
    const overlay = new Overlay((id) => s.account(id));
    if (sameHash(row.hash, this.#tip.hash)) return overlay;
    if (!row.linked || row.invalid) throw new PqnetError('INVALID_ARGUMENT', `no state for block ${hex(row.hash)}: not all bodies down to the state base are stored, or it is invalid`);
    const side: HeaderRow[] = [];
    let r = row;
    while (!this.#onValidChain(r)) {
      side.push(r);
      r = s.header(r.parent) ?? corrupt(`parent of ${hex(r.hash)} missing`);
    }
    for (let h = this.#tip.height; h > r.height; h--) {
      const hash = s.chainAt('valid', h) ?? corrupt(`validated index has no height ${h}`);
      for (const e of decodeUndo(s.undo(hash) ?? corrupt(`no undo record for ${hex(hash)}`))) overlay.set(e.id, e.before);
    }
    for (const sideRow of side.reverse()) {
      for (const tx of this.#storedBlock(sideRow.hash).decodedTxs) {
        const problem = applyTx(overlay, tx);
        if (problem !== undefined) throw new PqnetError('INVALID_ARGUMENT', `block ${hex(sideRow.hash)} does not apply: ${problem}`);
      }
    }
    return overlay;
  }

  /** What the validated chain did since it ended at `before`: blocks taken off (tip first) and put on (in order). */
  #diff(before: HeaderRow): ImportResult {
    const s = this.#store;
    const disconnected: Hash[] = [];
    let r = before;
    while (!this.#onValidChain(r)) {
      disconnected.push(r.hash);
      r = s.header(r.parent) ?? corrupt(`parent of ${hex(r.hash)} missing`);
    }
    const connected: Hash[] = [];
    for (let h = r.height + 1; h <= this.#tip.height; h++) connected.push(s.chainAt('valid', h) ?? corrupt(`validated index has no height ${h}`));
    return Object.freeze({ connected: Object.freeze(connected), disconnected: Object.freeze(disconnected) });
  }

  #snapshotOfTip(): Snapshot {
    this.#open();
    const tip = this.#tip;
    const held = this.#snapshots.find((x) => sameHash(x.manifest.blockHash, tip.hash));
    if (held !== undefined) return held;
    const s = this.#store;
    const snap = s.run(() => buildSnapshot(s.accounts(), s.countAccounts(), this.#chunkBytes, { height: tip.height, blockHash: tip.hash, stateRoot: tip.stateRoot }));
    this.#snapshots = [snap, ...this.#snapshots].slice(0, SNAPSHOTS_KEPT);
    return snap;
  }
}
