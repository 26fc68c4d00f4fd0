/**
 * The connection graph's diameter in latency: the longest shortest path over
 * the active connections among a set of processes, each link weighted by its
 * seeded latency (Dijkstra from every node, on a binary min-heap). The
 * scenario's latency target is p99 < 200 ms + this.
 */
import type { GossipScenario } from './scenario-types.ts';
import { pairLatency, type SimNode } from './sim-node.ts';

/** Longest shortest path (latency) over the active connections among `nodes` (Dijkstra from every node). */
export function diameter(nodes: SimNode[], s: GossipScenario): number {
  const index = new Map(nodes.map((n, k) => [n.node.peerId, k]));
  const adj: [number, number][][] = nodes.map(() => []);
  for (const [k, n] of nodes.entries()) {
    for (const p of n.node.peers()) {
      const j = p.peerId === undefined ? undefined : index.get(p.peerId);
      if (j !== undefined && p.state === 'active') adj[k]!.push([j, pairLatency(s.seed, n.ip, nodes[j]!.ip, s.latencyMs[0], s.latencyMs[1])]);
    }
  }
  let worst = 0;
  for (let src = 0; src < nodes.length; src++) {
    const dist = new Float64Array(nodes.length).fill(Infinity);
    dist[src] = 0;
    const heap = new MinHeap();
    heap.push(0, src);
    while (heap.size > 0) {
      const [d, u] = heap.pop();
      if (d > dist[u]!) continue;
      for (const [v, w] of adj[u]!) {
        if (d + w < dist[v]!) {
          dist[v] = d + w;
          heap.push(d + w, v);
        }
      }
    }
    for (const d of dist) if (d !== Infinity && d > worst) worst = d;
  }
  return worst;
}

/** Min-heap of (key, value) pairs, keys and values in parallel arrays. */
class MinHeap {
  readonly #k: number[] = [];
  readonly #v: number[] = [];

  get size(): number {
    return this.#k.length;
  }

  push(k: number, v: number): void {
    const K = this.#k;
    const V = this.#v;
    let i = K.length;
    K.push(k);
    V.push(v);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (K[p]! <= k) break;
      K[i] = K[p]!;
      V[i] = V[p]!;
      i = p;
    }
    K[i] = k;
    V[i] = v;
  }

  pop(): [number, number] {
    const K = this.#k;
    const V = this.#v;
    const top: [number, number] = [K[0]!, V[0]!];
    const k = K.pop()!;
    const v = V.pop()!;
    if (K.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= K.length) break;
        const c = l + 1 < K.length && K[l + 1]! < K[l]! ? l + 1 : l;
        if (K[c]! >= k) break;
        K[i] = K[c]!;
        V[i] = V[c]!;
        i = c;
      }
      K[i] = k;
      V[i] = v;
    }
    return top;
  }
}
