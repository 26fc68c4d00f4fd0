/**
 * The `gossip-tcp` scenario, shared by its pqnet and js-libp2p sides: the
 * seeded topology and publishers, the payloads (a float64 publish time in
 * the first 8 bytes, then seeded bytes of which 8..24 identify the message),
 * receipt bookkeeping, the timed publish phase and the figures.
 *
 * Figures: delivery ratio = receipts / (messages x (nodes - 1)); latency from
 * publish to receipt; amplification = TCP bytes written by all nodes during
 * the publish phase / (messageBytes x receipts), counted by
 * bench/_socket-bytes.ts (everything on the wire in that phase: items,
 * control, framing, encryption).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SeededRandom, uniformInt } from '../src/core/random.ts';
import { bytesWritten, reset } from './_socket-bytes.ts';
import { log, median, MiB, percentile, round } from './_util.ts';

export interface GossipTcpScenario {
  nodes: number;
  dialsPerNode: number;
  messages: number;
  messageBytes: number;
  ratePerSecond: number;
  seed: string;
  /** Upper bound on the wait for every node to have its minimum mesh. */
  meshWaitMs: number;
  /** Upper bound on the wait for outstanding receipts after the last publish. */
  drainWaitMs: number;
}

export const GOSSIP_TCP_SCENARIO: GossipTcpScenario = {
  nodes: 30,
  dialsPerNode: 4,
  messages: 200,
  messageBytes: 1024,
  ratePerSecond: 20,
  seed: 'gossip-tcp',
  meshWaitMs: 20_000,
  drainWaitMs: 10_000,
};

export interface GossipTcpFigures {
  impl: string;
  nodes: number;
  messages: number;
  receipts: number;
  expected: number;
  deliveryRatio: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  bytesWritten: number;
  amplification: number;
  /** Mesh peers per node for the topic when publishing starts. */
  meshPeers: { min: number; median: number; max: number };
  /** Node start, dials and the mesh wait. */
  setupMs: number;
  /** First publish until every receipt is in, or the drain wait ran out. */
  publishPhaseMs: number;
  heapUsedMb: number;
}

/** Bytes of the payload that identify a message (after the 8-byte timestamp). */
const KEY_BYTES = 16;

/** Each node dials `dialsPerNode` others: no self, and no pair twice (in either direction). */
export function topology(s: GossipTcpScenario, r: SeededRandom): [number, number][] {
  const paired = new Set<string>();
  const key = (a: number, b: number): string => (a < b ? `${a}-${b}` : `${b}-${a}`);
  const edges: [number, number][] = [];
  for (let i = 0; i < s.nodes; i++) {
    const candidates: number[] = [];
    for (let j = 0; j < s.nodes; j++) if (j !== i && !paired.has(key(i, j))) candidates.push(j);
    if (candidates.length < s.dialsPerNode) throw new Error(`topology: node ${i} has only ${candidates.length} unpaired peers left`);
    for (let k = 0; k < s.dialsPerNode; k++) {
      const j = candidates.splice(uniformInt(r, candidates.length), 1)[0]!;
      paired.add(key(i, j));
      edges.push([i, j]);
    }
  }
  return edges;
}

/** The seeded plan of a run, and the receipts as they come in. */
export class GossipRun {
  readonly s: GossipTcpScenario;
  readonly edges: [number, number][];
  readonly publishers: number[];
  readonly payloads: Uint8Array[];
  readonly expected: number;
  readonly latencies: number[] = [];
  receipts = 0;
  duplicates = 0;
  readonly #indexByKey = new Map<string, number>();
  readonly #seen: Set<number>[];
  #done: () => void = () => undefined;
  readonly delivered: Promise<void>;

  constructor(s: GossipTcpScenario) {
    if (s.messageBytes < 8 + KEY_BYTES) throw new RangeError(`messageBytes must be at least ${8 + KEY_BYTES}`);
    this.s = s;
    const rng = new SeededRandom(s.seed);
    this.edges = topology(s, rng);
    this.publishers = Array.from({ length: s.messages }, () => uniformInt(rng, s.nodes));
    this.payloads = Array.from({ length: s.messages }, () => {
      const p = new Uint8Array(s.messageBytes);
      p.set(rng.bytes(s.messageBytes - 8), 8);
      return p;
    });
    for (const [i, p] of this.payloads.entries()) {
      if (this.#indexByKey.has(keyOf(p))) throw new Error('two payloads share a key');
      this.#indexByKey.set(keyOf(p), i);
    }
    this.expected = s.messages * (s.nodes - 1);
    this.#seen = Array.from({ length: s.nodes }, () => new Set());
    this.delivered = new Promise((resolve) => (this.#done = resolve));
  }

  /** Node `node` received `data` now; not counted for the publisher, and once per node. */
  receive(node: number, data: Uint8Array): void {
    const now = performance.now();
    if (data.length !== this.s.messageBytes) return;
    const index = this.#indexByKey.get(keyOf(data));
    if (index === undefined || this.publishers[index] === node) return;
    if (this.#seen[node]!.has(index)) {
      this.duplicates++;
      return;
    }
    this.#seen[node]!.add(index);
    this.latencies.push(now - new DataView(data.buffer, data.byteOffset, 8).getFloat64(0));
    if (++this.receipts === this.expected) this.#done();
  }

  /**
   * Reset the byte counter, publish every message on schedule through
   * `publish(node, payload)`, wait for the receipts (bounded), and return
   * the phase's figures.
   */
  async publishPhase(impl: string, publish: (node: number, payload: Uint8Array) => unknown, setup: { t0: number; mesh: number[] }): Promise<GossipTcpFigures> {
    const s = this.s;
    const meshPeers = { min: Math.min(...setup.mesh), median: median(setup.mesh), max: Math.max(...setup.mesh) };
    const setupMs = performance.now() - setup.t0;
    log(`${impl}: publishing after ${round(setupMs, 0)} ms of setup; mesh peers min ${meshPeers.min}, median ${meshPeers.median}, max ${meshPeers.max}`);
    reset();
    const phaseStart = performance.now();
    const results: unknown[] = [];
    for (let k = 0; k < s.messages; k++) {
      const wait = phaseStart + (k * 1000) / s.ratePerSecond - performance.now();
      if (wait > 0) await sleep(wait);
      const payload = this.payloads[k]!;
      new DataView(payload.buffer, payload.byteOffset, 8).setFloat64(0, performance.now());
      results.push(publish(this.publishers[k]!, payload));
    }
    const lastPublish = performance.now();
    const controller = new AbortController();
    await Promise.race([this.delivered, sleep(Math.max(0, lastPublish + s.drainWaitMs - performance.now()), undefined, { signal: controller.signal }).catch(() => undefined)]);
    controller.abort();
    const phaseEnd = performance.now();
    const written = bytesWritten();
    const heapUsedMb = process.memoryUsage().heapUsed / MiB;
    const errors = (await Promise.allSettled(results)).filter((p) => p.status === 'rejected');
    if (errors.length > 0) log(`${impl}: ${errors.length} publishes failed, first: ${String(errors[0]!.reason)}`);
    if (this.duplicates > 0) log(`${impl}: ${this.duplicates} duplicate deliveries (not counted)`);
    if (this.receipts < this.expected) log(`${impl}: ${this.expected - this.receipts} of ${this.expected} receipts missing ${s.drainWaitMs} ms after the last publish`);
    const sorted = this.latencies.sort((a, b) => a - b);
    return {
      impl,
      nodes: s.nodes,
      messages: s.messages,
      receipts: this.receipts,
      expected: this.expected,
      deliveryRatio: round(this.receipts / this.expected, 4),
      latencyMs: {
        p50: round(percentile(sorted, 50), 2),
        p95: round(percentile(sorted, 95), 2),
        p99: round(percentile(sorted, 99), 2),
        max: round(sorted.at(-1) ?? Number.NaN, 2),
      },
      bytesWritten: written,
      amplification: round(written / (s.messageBytes * this.receipts), 3),
      meshPeers,
      setupMs: round(setupMs, 0),
      publishPhaseMs: round(phaseEnd - phaseStart, 0),
      heapUsedMb: round(heapUsedMb, 1),
    };
  }
}

function keyOf(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset + 8, KEY_BYTES).toString('hex');
}

/** Poll `sizes` every 100 ms until its minimum reaches `min` or `waitMs` passes; returns the last sizes. */
export async function waitForMesh(sizes: () => number[], min: number, waitMs: number): Promise<number[]> {
  const deadline = performance.now() + waitMs;
  while (Math.min(...sizes()) < min && performance.now() < deadline) await sleep(100);
  return sizes();
}
