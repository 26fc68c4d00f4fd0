/**
 * Devchain parameters: the consensus constants of one development chain and
 * the size limits they imply (DESIGN.md, Principle 3: every cap is named and
 * has its default here).
 *
 * - **Fixed difficulty.** `target` holds for the whole chain: a header's target
 *   must equal it, and every header adds the same work, 2^256 / (target + 1)
 *   (Bitcoin's formula; with the default 2^256/16 a block takes ~16 hashes and
 *   adds 15 units of work). No retargeting: a dev chain wants cheap, steady
 *   blocks, not a stable block interval.
 * - **Deterministic genesis.** Genesis is built from the parameters alone
 *   (`genesisAccounts` accounts with `genesisBalance` each, ids
 *   SHA3-256("devchain/account/" + i)), never mined: same parameters, same
 *   genesis hash on every node.
 * - **Money fits SQLite.** Balances are stored as SQLite INTEGERs (signed 64
 *   bit), so the total supply `genesisAccounts * genesisBalance` must be at
 *   most 2^63 - 1; since fees are burnt, no balance can ever exceed it.
 * - **The fingerprint** is what a store file is bound to: every parameter that
 *   decides validity (chain id, target, genesis, transactions per block). Not
 *   `maxFutureMs`, a local acceptance rule that can change without making any
 *   stored header wrong.
 */
import { encodeCbor } from '../../wire/cbor.ts';
import type { ChainLimits } from '../adapter.ts';
import { bigintToBytes, sha3 } from './hash.ts';

export interface DevchainParams {
  /** Chain id (u32); every header carries it. */
  readonly chainId: number;
  /** Proof-of-work target: a header's hash, read as a big-endian integer, must be ≤ it. 1 ≤ target < 2^256. */
  readonly target: bigint;
  readonly genesisTimestampMs: number;
  /** Accounts in the genesis state. */
  readonly genesisAccounts: number;
  /** Balance of each genesis account. */
  readonly genesisBalance: bigint;
  /** Most transactions in one block. */
  readonly maxTxsPerBlock: number;
  /** How far a header's timestamp may be ahead of the local clock. */
  readonly maxFutureMs: number;
}

/** 2^256 / 16: about 16 hashes per block. */
export const DEFAULT_TARGET = 1n << 252n;

export const DEFAULT_DEVCHAIN_PARAMS: DevchainParams = Object.freeze({
  chainId: 0x64657600, // 'dev\0'
  target: DEFAULT_TARGET,
  genesisTimestampMs: 1_700_000_000_000,
  genesisAccounts: 1_000,
  genesisBalance: 1_000_000_000n,
  maxTxsPerBlock: 1_000,
  maxFutureMs: 2 * 3_600_000,
});

export const HEADER_VERSION = 1;
export const HASH_BYTES = 32;
/** Largest memo a transaction may carry. */
export const MAX_MEMO_BYTES = 1_024;
/** Pre-admission accepts nonces up to this far above the account's (several pending transactions of one sender). */
export const MAX_NONCE_AHEAD = 64;
/** Largest balance (SQLite's INTEGER) and thus largest total supply. */
export const MAX_BALANCE = (1n << 63n) - 1n;
/** One account in a state snapshot and in a bucket hash: id 32 | balance u64 BE | nonce u64 BE. */
export const ACCOUNT_RECORD_BYTES = 48;
/** Most accounts a state (and a snapshot) may hold: 4 Mi accounts, 192 MiB of records. */
export const MAX_STATE_ACCOUNTS = 1 << 22;
/** Snapshot chunk size this node serves. */
export const DEFAULT_STATE_CHUNK_BYTES = 16 * 1024;
/** Chunk sizes accepted in a peer's manifest. */
export const MIN_STATE_CHUNK_BYTES = 1_024;
export const MAX_STATE_CHUNK_BYTES = 1024 * 1024;
/** Most chunks in a manifest (4 Mi accounts at 16 KiB per chunk need 12,288). */
export const MAX_STATE_CHUNKS = 65_536;
/** Snapshots kept in memory for serving: the tip's and the one before, so a download in progress survives a new block. */
export const SNAPSHOTS_KEPT = 2;

/** Bytes of a CBOR head (major type and length/value) for `n`. */
export function cborHeadBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1_0000_0000 ? 5 : 9;
}

const bstrBytes = (len: number): number => cborHeadBytes(len) + len;
const MAX_UINT_BYTES = 9; // a safe integer above 2^32

/** Largest header: [version, chainId u32, parent, height, timestampMs, txRoot, stateRoot, target, nonce]. */
export const MAX_HEADER_BYTES = 1 + 1 + 5 + bstrBytes(32) + MAX_UINT_BYTES * 2 + bstrBytes(32) * 3 + MAX_UINT_BYTES;
/** Largest transaction: [from, to, amount, fee, nonce, memo ≤ MAX_MEMO_BYTES]. */
export const MAX_TX_BYTES = 1 + bstrBytes(32) * 2 + MAX_UINT_BYTES * 3 + bstrBytes(MAX_MEMO_BYTES);

/** Limits that follow from the parameters: a block holds at most `maxTxsPerBlock` transactions of the largest size. */
export function devchainLimits(p: DevchainParams): ChainLimits {
  return Object.freeze({
    maxHeaderBytes: MAX_HEADER_BYTES,
    maxTxBytes: MAX_TX_BYTES,
    maxBlockBytes: 1 + bstrBytes(MAX_HEADER_BYTES) + cborHeadBytes(p.maxTxsPerBlock) + p.maxTxsPerBlock * bstrBytes(MAX_TX_BYTES),
  });
}

/** Most transactions per block a parameter set may allow: blocks stay under ~32 MB. */
export const MAX_TXS_PER_BLOCK_LIMIT = 28_000;

/**
 * Fills defaults and checks every value; throws `RangeError` naming the first
 * bad one. `undefined` means the default.
 */
export function makeDevchainParams(overrides: Partial<DevchainParams> = {}): DevchainParams {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<DevchainParams>;
  const p: DevchainParams = { ...DEFAULT_DEVCHAIN_PARAMS, ...defined };
  const int = (name: keyof DevchainParams, v: unknown, min: number, max: number): void => {
    if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) throw new RangeError(`devchain params: ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  };
  int('chainId', p.chainId, 0, 0xffff_ffff);
  int('genesisTimestampMs', p.genesisTimestampMs, 0, Number.MAX_SAFE_INTEGER);
  int('genesisAccounts', p.genesisAccounts, 0, MAX_STATE_ACCOUNTS);
  int('maxTxsPerBlock', p.maxTxsPerBlock, 1, MAX_TXS_PER_BLOCK_LIMIT);
  int('maxFutureMs', p.maxFutureMs, 0, Number.MAX_SAFE_INTEGER);
  if (typeof p.target !== 'bigint' || p.target < 1n || p.target >= 1n << 256n) throw new RangeError('devchain params: target must be a bigint in [1, 2^256)');
  if (typeof p.genesisBalance !== 'bigint' || p.genesisBalance < 0n) throw new RangeError('devchain params: genesisBalance must be a non-negative bigint');
  if (BigInt(p.genesisAccounts) * p.genesisBalance > MAX_BALANCE) throw new RangeError('devchain params: genesisAccounts * genesisBalance exceeds 2^63 - 1');
  return Object.freeze(p);
}

/** Work a header with `target` adds: 2^256 / (target + 1). */
export function workOf(target: bigint): bigint {
  return (1n << 256n) / (target + 1n);
}

/** Id of genesis account `i`: SHA3-256("devchain/account/" + i). */
export function genesisAccountId(i: number): Uint8Array {
  return sha3(Buffer.from(`devchain/account/${i}`, 'utf8'));
}

/** What a store file is bound to (see the file header). */
export function paramsFingerprint(p: DevchainParams): Uint8Array {
  return sha3(encodeCbor([
    'pqnet/devchain/params/1',
    p.chainId,
    bigintToBytes(p.target, 32),
    p.genesisTimestampMs,
    p.genesisAccounts,
    bigintToBytes(p.genesisBalance, 8),
    p.maxTxsPerBlock,
  ]));
}
