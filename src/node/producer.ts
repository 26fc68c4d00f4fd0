/**
 * The devchain's producer behind `pqnet publish` (docs/API.md, POST
 * /chain/publish): mines blocks on the tip or makes transfer transactions,
 * and hands each result to the node to announce. Mining runs in slices that
 * yield to the event loop, so a large publish does not starve the peers.
 */
import type { Devchain } from '../chain/devchain/index.ts';
import type { Hash, ImportResult } from '../chain/adapter.ts';
import { PqnetError } from '../core/errors.ts';
import { hex } from '../chain/adapter.ts';

/** Blocks mined between yields to the event loop. */
const BLOCKS_PER_SLICE = 32;

export interface ProducerHooks {
  /** Transactions to put in the next block when the caller did not say how many (e.g. the mempool's). */
  readonly pendingTxs?: () => readonly Uint8Array[];
  /** After a slice of blocks: what connected (mempool upkeep and the announcement of the new tip). */
  readonly mined?: (result: ImportResult) => void;
  /** Each new transaction: admit and relay it (throws CHAIN_BAD_TX if it does not pass). */
  readonly submitTx?: (bytes: Uint8Array) => void;
}

export interface PublishOutcome {
  readonly kind: 'blocks' | 'txs';
  readonly count: number;
  readonly tipHeight: number;
  readonly tipHash: string;
}

export class DevProducer {
  readonly #chain: Devchain;
  readonly #hooks: ProducerHooks;
  /** Seeds of `makeTxs`, so successive publishes make different transactions. */
  #seed: number;
  #busy = false;

  constructor(chain: Devchain, hooks: ProducerHooks = {}) {
    this.#chain = chain;
    this.#hooks = hooks;
    this.#seed = chain.tip().height * 1_000_003 + Math.floor(Math.random() * 1_000_000);
  }

  /** Mine `count` blocks on the tip, with `txsPerBlock` new transfers each, or else the pending transactions. */
  async blocks(count: number, txsPerBlock?: number): Promise<PublishOutcome> {
    return this.#exclusive(async () => {
      for (let done = 0; done < count; ) {
        const n = Math.min(BLOCKS_PER_SLICE, count - done);
        const connected: Hash[] = [];
        for (let i = 0; i < n; i++) {
          const txs = txsPerBlock === undefined ? (this.#hooks.pendingTxs?.() ?? []) : txsPerBlock > 0 ? this.#chain.makeTxs(txsPerBlock, this.#seed++) : [];
          connected.push(this.#chain.mine({ txs }).header.hash);
        }
        done += n;
        this.#hooks.mined?.({ connected, disconnected: [] });
        if (done < count) await new Promise<void>((resolve) => setImmediate(resolve));
      }
      return this.#outcome('blocks', count);
    });
  }

  /** Make `count` transfers valid against the tip and submit each (fewer if the accounts run dry). */
  async txs(count: number): Promise<PublishOutcome> {
    return this.#exclusive(() => {
      const txs = this.#chain.makeTxs(count, this.#seed++);
      for (const tx of txs) this.#hooks.submitTx?.(tx);
      return Promise.resolve(this.#outcome('txs', txs.length));
    });
  }

  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#busy) throw new PqnetError('INVALID_ARGUMENT', 'a publish is already running');
    this.#busy = true;
    try {
      return await fn();
    } finally {
      this.#busy = false;
    }
  }

  #outcome(kind: 'blocks' | 'txs', count: number): PublishOutcome {
    const tip = this.#chain.tip();
    return { kind, count, tipHeight: tip.height, tipHash: hex(tip.hash) };
  }
}
