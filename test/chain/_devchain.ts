/**
 * Helpers for the devchain tests: chains on temporary files, moving headers and
 * blocks between two chains as sync would, and forging blocks that break one
 * rule.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isPqnetError, type Reason } from '../../src/core/errors.ts';
import type { ChainHeader, Hash, HeaderEntry } from '../../src/chain/adapter.ts';
import {
  Devchain, encodeBlock, HEADER_VERSION, merkleRoot, mineHeader, sha3,
  type DevBlock, type DevchainOptions, type DevchainParams,
} from '../../src/chain/devchain/index.ts';

export const T0 = 1_700_000_000_000;
/** Small, fast test chains: 200 genesis accounts. */
export const TEST_PARAMS: Partial<DevchainParams> = { chainId: 7, genesisAccounts: 200, genesisTimestampMs: T0 };
/** A wall clock an hour after genesis, so mined timestamps are deterministic. */
export const TEST_OPTIONS: DevchainOptions = { clock: { wallNow: () => T0 + 3_600_000 } };

/** A temp dir for one test file; `cleanup` removes it. */
export async function tempDir(prefix: string): Promise<{ file: (name: string) => string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  let n = 0;
  return {
    file: (name: string) => path.join(dir, `${name}-${n++}.db`),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** `withChains` in a temp dir of its own (`dir.file(name)` names a chain file there), removed afterwards. */
export async function inTempChains<T>(
  prefix: string,
  fn: (open: (file: string, params?: Partial<DevchainParams>, options?: DevchainOptions) => Devchain, dir: { file: (name: string) => string }) => T | Promise<T>,
): Promise<T> {
  const dir = await tempDir(prefix);
  try {
    return await withChains((open) => fn(open, dir));
  } finally {
    await dir.cleanup();
  }
}

/** Opens chains with `open` and closes them all after `fn`, whatever happens. */
export async function withChains<T>(fn: (open: (file: string, params?: Partial<DevchainParams>, options?: DevchainOptions) => Devchain) => T | Promise<T>): Promise<T> {
  const chains: Devchain[] = [];
  try {
    return await fn((file, params = TEST_PARAMS, options = TEST_OPTIONS) => {
      const c = Devchain.open(file, params, options);
      chains.push(c);
      return c;
    });
  } finally {
    for (const c of chains) c.close();
  }
}

/** An `assert.throws` validator: a PqnetError with code `c` (and a message matching `message`). */
export function code(c: Reason, message?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isPqnetError(e), `expected a PqnetError ${c}, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

/** Headers of `from`'s chain ending at `tip` (default its tip), heights `lo`..`hi`. */
export function headersOf(from: Devchain, lo: number, hi: number, tip: Hash = from.tip().hash): HeaderEntry[] {
  const out: HeaderEntry[] = [];
  for (let h = lo; h <= hi; h++) out.push(from.headerAt(h, tip)!);
  return out;
}

/** What a sync engine does with a batch: decode, validate each against the previous, store. */
export function syncHeaders(to: Devchain, headers: readonly ChainHeader[], nowMs = T0 + 3_600_000): void {
  let parent = to.header(headers[0]!.parent)!;
  const decoded = headers.map((h) => {
    const d = to.decodeHeader(h.bytes);
    to.validateHeader(d, parent, nowMs);
    parent = { ...d, totalWork: parent.totalWork + d.work, hasBlock: false };
    return d;
  });
  to.storeHeaders(decoded);
}

/** `from`'s block bodies for `headers`, decoded by `to`. */
export function blocksOf(from: Devchain, to: Devchain, headers: readonly { readonly hash: Hash }[]): DevBlock[] {
  return headers.map((h) => to.decodeBlock(from.block(h.hash)!));
}

/** Copies `from`'s chain up to height `hi` into `to`, headers then blocks in order. */
export function syncTo(from: Devchain, to: Devchain, hi: number, tip?: Hash): void {
  const headers = headersOf(from, 1, hi, tip);
  syncHeaders(to, headers);
  for (const b of blocksOf(from, to, headers)) to.importBlock(b);
}

export interface ForgeOptions {
  readonly txs?: readonly Uint8Array[];
  readonly stateRoot?: Hash;
  readonly txRoot?: Hash;
  readonly timestampMs?: number;
}

/** A block on `parent` with valid proof of work but whatever roots the test wants (default: the parent's state root, the right tx root). */
export function forge(chain: Devchain, parent: HeaderEntry, options: ForgeOptions = {}): DevBlock {
  const txs = options.txs ?? [];
  const parentHeader = chain.decodeHeader(parent.bytes);
  const header = mineHeader({
    version: HEADER_VERSION,
    chainId: chain.params.chainId,
    parent: parent.hash,
    height: parent.height + 1,
    timestampMs: options.timestampMs ?? parentHeader.timestampMs,
    txRoot: options.txRoot ?? merkleRoot(txs.map((t) => sha3(t))),
    stateRoot: options.stateRoot ?? parentHeader.stateRoot,
    target: chain.params.target,
  });
  return { header, txIds: txs.map((t) => sha3(t)), txs, decodedTxs: [], bytes: encodeBlock(header.bytes, txs) };
}

/** Every genesis account's balance and nonce at the tip, as text. */
export function balances(chain: Devchain): string[] {
  return chain.genesisAccountIds.map((id) => {
    const a = chain.account(id);
    return a === undefined ? '-' : `${a.balance}/${a.nonce}`;
  });
}
