/**
 * What a gossip scenario published and who received it, when: each item's
 * publish time and publisher, the receipt time of each item at each honest
 * node up for the whole run (an items × nodes array, NaN for none; the
 * publisher's own slot holds the publish time), receipts of cycling processes
 * (in their `Life`, churn.ts), and a SHA3 trace of every receipt and fault
 * event with its virtual time (the result's `traceHash`: same seed, same hash).
 *
 * An item's payload starts with its index (u32, big-endian); receipts at
 * non-honest nodes, of items not yet published (spam) and repeats are not
 * recorded.
 */
import { createHash } from 'node:crypto';
import type { Life } from './churn.ts';
import type { SimNode } from './sim-node.ts';

export class Deliveries {
  /** Publish time of item k (virtual ms; undefined until published). */
  readonly publishAt: number[] = [];
  /** Node that publishes item k (set when planned). */
  readonly publisher: number[] = [];
  /** Receipt time of item k at node i (whole-run honest nodes only) at `k * nodes + i`, NaN if none. */
  readonly recvAt: Float64Array;
  /** Receipts at whole-run honest nodes, and at cycling processes. */
  receipts = 0;
  churnReceipts = 0;
  readonly #nodes: number;
  readonly #trace = createHash('sha3-256');

  constructor(messages: number, nodes: number) {
    this.#nodes = nodes;
    this.recvAt = new Float64Array(messages * nodes).fill(NaN);
  }

  /** Adds a fault event (leave, join, split, heal) to the trace. */
  note(event: string): void {
    this.#trace.update(event);
  }

  /** Item `k` was published by node `from` at `now`. */
  published(k: number, from: number, now: number): void {
    this.publishAt[k] = now;
    this.recvAt[k * this.#nodes + from] = now;
  }

  /** Process `n` (of cycling node life `life`, else undefined) delivered `payload` at `now`. */
  received(n: SimNode, life: Life | undefined, payload: Uint8Array, now: number): void {
    const k = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
    const at = this.publishAt[k];
    if (at === undefined || n.role !== 'honest') return;
    if (life !== undefined) {
      if (life.got.has(k)) return;
      life.got.set(k, now);
      this.churnReceipts++;
      this.#trace.update(`${n.index}.${n.gen}:${k}:${(now - at).toFixed(3)};`);
      return;
    }
    const slot = k * this.#nodes + n.index;
    if (!Number.isNaN(this.recvAt[slot])) return;
    this.recvAt[slot] = now;
    this.receipts++;
    this.#trace.update(`${n.index}:${k}:${(now - at).toFixed(3)};`);
  }

  /** Publish to receipt at the `stable` nodes (publishers left out), split by whether `held(publish time)`. */
  latencies(stable: readonly SimNode[], held: (publishedAt: number) => boolean): { latencies: number[]; heldLatencies: number[] } {
    const latencies: number[] = [];
    const heldLatencies: number[] = [];
    for (let k = 0; k < this.publisher.length; k++) {
      for (const n of stable) {
        const at = this.recvAt[k * this.#nodes + n.index]!;
        if (n.index === this.publisher[k] || Number.isNaN(at)) continue;
        (held(this.publishAt[k]!) ? heldLatencies : latencies).push(at - this.publishAt[k]!);
      }
    }
    return { latencies, heldLatencies };
  }

  /** The trace's SHA3-256, hex (call once, at the end). */
  traceHash(): string {
    return this.#trace.digest('hex');
  }
}
