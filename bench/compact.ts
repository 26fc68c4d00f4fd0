/**
 * Compact block benchmark: bytes on the wire to relay one block of devchain
 * transactions in full versus compactly, at several mempool overlaps, with
 * the full block as the baseline measured in the same run. Two transaction
 * shapes: the devchain's bare transfers (~77 bytes) and transfers carrying a
 * 180-byte memo (~260 bytes, the size of a typical payment elsewhere).
 *
 * What is measured: the encoded payload of every message exchanged, exactly
 * as the message registry encodes it (`payloadBytes`), and the same plus the
 * frame overhead the mux adds (4-byte length, 8-byte header and 16-byte AEAD
 * tag per chunk of at most 65,528 bytes: `wireBytes`). Handshakes, credit
 * grants and pings are not counted (they do not depend on the relay mode).
 *
 *   - full:    INV [block] -> GETDATA [block] -> BLOCK (the block's bytes)
 *   - compact: CMPCTBLOCK -> (GETBLOCKTXN request -> BLOCKTXN response if the
 *              receiver misses transactions): the missing transactions' round
 *              trip included.
 *
 * The compact flow is run for real: two `RelayEngine`s on devchains in
 * temporary files, their messages encoded and decoded by the registry. The
 * sender mined the block from its mempool; the receiver's mempool holds
 * `overlap` of the block's transactions (picked pseudo-randomly) plus as many
 * unrelated ones. Two sender beliefs:
 *   - `prefill: none`  the sender believes the receiver has every transaction
 *                      (it announced them all): nothing is prefilled and the
 *                      receiver fetches what it lacks (one round trip);
 *   - `prefill: known` the sender knows exactly which transactions the
 *                      receiver has (they were exchanged by INV): the rest are
 *                      prefilled and there is no round trip.
 * Every run checks that the receiver imported the block. `relayMs` is the
 * time from the announcement to the import (rebuild, assembly and the
 * chain's full import of the block), for orientation only.
 */
import path from 'node:path';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { hex } from '../src/chain/adapter.ts';
import { Devchain, encodeTx, type DevBlock, type DevchainParams } from '../src/chain/devchain/index.ts';
import { FRAME_HEADER_BYTES, AEAD_TAG_BYTES, LENGTH_PREFIX_BYTES, MAX_CHUNK_BYTES } from '../src/core/limits.ts';
import { SeededRandom } from '../src/core/random.ts';
import { Mempool } from '../src/sync/mempool.ts';
import { InvKind, relayMessages, type InvItem, type RelayMessages } from '../src/sync/relay-messages.ts';
import { RelayEngine, type RelayAction } from '../src/sync/relay.ts';
import { MessageRegistry, type MessageType } from '../src/wire/registry.ts';
import { emit, emitEnvironment, log, round, type BenchOptions } from './_util.ts';

const T0 = 1_700_000_000_000;
const WALL = T0 + 3_600_000;
const OPTIONS = { clock: { wallNow: () => WALL } };
const OVERLAPS = [0, 0.5, 0.9, 0.99, 1];

interface Sizes {
  readonly txs: number;
  readonly accounts: number;
}

const FULL: Sizes = { txs: 1_000, accounts: 2_000 };
const QUICK: Sizes = { txs: 200, accounts: 400 };

/** Bytes of one message as the mux frames it when credit is not the limit. */
function framed(payload: number): number {
  return payload + Math.max(1, Math.ceil(payload / MAX_CHUNK_BYTES)) * (LENGTH_PREFIX_BYTES + FRAME_HEADER_BYTES + AEAD_TAG_BYTES);
}

class Meter {
  payload = 0;
  wire = 0;
  readonly byType = new Map<string, number>();
  readonly #reg: MessageRegistry;

  constructor(m: RelayMessages) {
    this.#reg = new MessageRegistry(m.types);
  }

  /** Encode as the wire does, count, decode as the receiver does. */
  pass<T>(type: MessageType<T>, value: T): T {
    const bytes = this.#reg.encode(type, value);
    this.payload += bytes.length;
    this.wire += framed(bytes.length);
    this.byType.set(type.name, (this.byType.get(type.name) ?? 0) + bytes.length);
    return this.#reg.decode(type.id, type.channel, bytes).value as T;
  }
}

/** Deterministic pick of round(n * fraction) indexes out of n. */
function pick(n: number, fraction: number, seed: string): Set<number> {
  const r = new SeededRandom(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const b = r.bytes(4);
    const j = (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return new Set(order.slice(0, Math.round(n * fraction)));
}

/** One compact relay of `block` from `sender` to a fresh receiver; returns the bytes and what happened. */
function relayCompact(m: RelayMessages, sender: Devchain, block: DevBlock, receiverFile: string, params: Partial<DevchainParams>, overlap: number, prefill: 'none' | 'known', extra: readonly Uint8Array[]) {
  const receiver = Devchain.open(receiverFile, params, OPTIONS);
  try {
    const held = pick(block.txs.length, overlap, `overlap/${overlap}`);
    const sPool = new Mempool(sender, { maxTxs: 100_000 });
    const rPool = new Mempool(receiver, { maxTxs: 100_000 });
    for (const i of held) rPool.add(receiver.decodeTx(block.txs[i]!));
    for (const t of extra) {
      try {
        rPool.add(receiver.decodeTx(t));
      } catch {
        // an unrelated transaction the receiver's state refuses: left out
      }
    }
    const s = new RelayEngine(sender, sPool, {}, new SeededRandom('sender'));
    const r = new RelayEngine(receiver, rPool, {}, new SeededRandom('receiver'));
    s.addPeer('r', 0);
    r.addPeer('s', 0);
    // What the sender believes the receiver has: learned from the receiver's INVs (not counted: they precede the block).
    const believed = prefill === 'none' ? block.txIds : block.txIds.filter((_, i) => held.has(i));
    for (let i = 0; i < believed.length; i += 1_000) s.onInv('r', believed.slice(i, i + 1_000).map((id): InvItem => [InvKind.TX, id]), 0);
    s.poll(0); // its GETDATAs for them (its own mempool no longer holds mined transactions) are dropped: not part of the block relay
    const meter = new Meter(m);
    let roundTrips = 0;
    let missing = 0;
    const started = performance.now();
    s.onChainChanged({ connected: [block.header.hash], disconnected: [] }, 1);
    const deliver = (from: 's' | 'r', a: RelayAction): void => {
      const to = from === 's' ? r : s;
      if (a.type === 'compact') to.onCompactBlock(from, meter.pass(m.compactBlock, a.message), 1, WALL);
      else if (a.type === 'getblocktxn') {
        roundTrips++;
        missing += a.indexes.length;
        const [, [hash, indexes]] = meter.pass(m.getBlockTxn.request, [0, [a.hash, a.indexes]]);
        const txs = to.serveBlockTxn(from, hash, indexes);
        const [, , body] = meter.pass(m.getBlockTxn.response, [0, 0, txs]);
        r.onBlockTxn('s', a.hash, body!, 1);
      } else if (a.type === 'penalize') throw new Error(`unexpected penalty ${a.reason}: ${a.detail}`);
      else if (a.type === 'getdata' || a.type === 'block') throw new Error(`unexpected ${a.type}: the compact relay fell back`);
    };
    for (let round = 0; round < 10; round++) {
      const acts = [...s.poll(1).map((a) => ['s', a] as const), ...r.poll(1).map((a) => ['r', a] as const)];
      if (acts.length === 0) break;
      for (const [from, a] of acts) deliver(from, a);
    }
    const ms = performance.now() - started;
    if (hex(receiver.tip().hash) !== hex(block.header.hash)) throw new Error(`overlap ${overlap}: the receiver did not import the block`);
    return { payload: meter.payload, wire: meter.wire, byType: Object.fromEntries(meter.byType), roundTrips, missing, ms };
  } finally {
    receiver.close();
  }
}

/**
 * `count` transfers from distinct genesis accounts (nonce 0, so all apply at
 * genesis), each with a memo of `memoBytes`: about 80 + memo bytes apiece.
 */
function memoTxs(chain: Devchain, count: number, memoBytes: number, seed: string): Uint8Array[] {
  const ids = chain.genesisAccountIds;
  const r = new SeededRandom(seed);
  return Array.from({ length: count }, (_, i) => encodeTx({ from: ids[i]!, to: ids[(i + 1) % ids.length]!, amount: 1 + i, fee: 1, nonce: 0, memo: r.bytes(memoBytes) }));
}

/** Transaction shapes: the devchain's own transfers (no memo), and transfers padded to a typical payment's size. */
const SHAPES = [
  { name: 'devchain-transfer', memoBytes: 0 },
  { name: 'memo-180', memoBytes: 180 },
] as const;

export async function main(o: BenchOptions): Promise<void> {
  emitEnvironment('compact', o);
  const sizes = o.quick ? QUICK : FULL;
  const params: Partial<DevchainParams> = { chainId: 12, genesisTimestampMs: T0, genesisAccounts: sizes.accounts, maxTxsPerBlock: Math.max(1_000, sizes.txs) };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-bench-compact-'));
  let n = 0;
  try {
    for (const shape of SHAPES) {
      const sender = Devchain.open(path.join(dir, `sender-${shape.name}.db`), params, OPTIONS);
      try {
        log(`compact: a block of ${sizes.txs} ${shape.name} transactions, overlaps ${OVERLAPS.join(', ')}`);
        const txs = shape.memoBytes === 0 ? sender.makeTxs(sizes.txs, 1) : memoTxs(sender, sizes.txs, shape.memoBytes, 'block');
        // Unrelated pending transactions at the receiver (as many as the block has).
        const extra = shape.memoBytes === 0 ? sender.makeTxs(sizes.txs, 2) : memoTxs(sender, sizes.txs, shape.memoBytes, 'extra');
        const block = sender.mine({ txs });
        if (block.txs.length !== sizes.txs) throw new Error(`mined ${block.txs.length} transactions, wanted ${sizes.txs}`);
        const txBytes = round(block.txs.reduce((a, t) => a + t.length, 0) / block.txs.length, 1);
        const m = relayMessages(sender.limits);
        // Baseline: the full block, announced and fetched.
        const meter = new Meter(m);
        const item: InvItem[] = [[InvKind.BLOCK, block.header.hash]];
        meter.pass(m.inv, item);
        meter.pass(m.getData, item);
        meter.pass(m.block, [block.bytes]);
        const full = { payload: meter.payload, wire: meter.wire };
        emit({
          bench: 'compact', impl: 'full-block', metric: 'bytes', shape: shape.name, txs: block.txs.length, txBytes, blockBytes: block.bytes.length,
          payloadBytes: full.payload, wireBytes: full.wire, byType: Object.fromEntries(meter.byType),
        });
        for (const prefill of ['none', 'known'] as const) {
          for (const overlap of OVERLAPS) {
            await new Promise((resolve) => setImmediate(resolve)); // let progress and figures flush between runs
            const r = relayCompact(m, sender, block, path.join(dir, `receiver-${n++}.db`), params, overlap, prefill, extra);
            emit({
              bench: 'compact', impl: 'compact', metric: 'bytes', shape: shape.name, txs: block.txs.length, txBytes, overlap, prefill,
              payloadBytes: r.payload, wireBytes: r.wire, byType: r.byType, missing: r.missing, roundTrips: r.roundTrips,
              savedPercent: round(100 * (1 - r.wire / full.wire), 1), ratioToFull: round(r.wire / full.wire, 4), relayMs: round(r.ms, 1),
            });
          }
        }
      } finally {
        sender.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
