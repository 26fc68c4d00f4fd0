/**
 * State sync (docs/spec/state-sync.md), sans-I/O: the engine decides whom to
 * ask for manifests and chunks, judges the answers, and says when to persist,
 * apply or penalise; the caller carries out the actions `poll` returns, feeds
 * back answers (`onManifest`, `onChunk`) and failures (`onManifestFailed`,
 * `onFailed`), and reports how applying went (`onApplied`, `onApplyFailed`).
 *
 * - **Manifests are untrusted.** Every peer is asked for its manifest. A
 *   malformed one (caps, sizes, chunk count) is SYNC_BAD_MANIFEST; one naming
 *   a stored header at another height too. A manifest is *eligible* when its
 *   block is on our best header chain (`headerAt(height)` is `blockHash`),
 *   above our validated tip, and not known bad. The engine cannot read a
 *   state root from a header (the adapter's `applyState` checks it), so
 *   offers are grouped by manifest id (every field, chunk hashes included)
 *   and the group offered by the most peers wins, then the highest block.
 *   The choice waits until every asked peer has answered, or `manifestWaitMs`
 *   after the first eligible offer; a group needs `minPeers` peers.
 * - **Chunks** are fetched from every peer that offered the chosen manifest,
 *   at most `maxInFlightPerPeer` per peer and `maxInFlight` in all, lowest
 *   missing index first (refetches before new ones), and paced: at most
 *   `chunkRequestsPerSecond` requests per peer (a peer drops and scores
 *   messages above its connection rate limit). `wakeAt` tells the caller when
 *   a paced request or a deadline needs a poll. Each answer is checked
 *   before it is kept: its length against the manifest (else
 *   SYNC_BAD_RESPONSE), its SHA3-256 against the chunk's hash (else
 *   SYNC_BAD_CHUNK); either way the peer is penalised (once per manifest), not
 *   asked again for this manifest, and the chunk goes to another. An empty answer means the peer no longer
 *   holds the snapshot: it is skipped without penalty. A request unanswered
 *   after `chunkTimeoutMs` is SYNC_STALL, cancelled and reassigned; a peer
 *   that stalls `maxStallsPerPeer` times is not asked again for this manifest.
 * - **Applying.** With every chunk held, `apply` hands them to the caller for
 *   `chain.applyState`. If the chain refuses the state (CHAIN_BAD_STATE),
 *   every peer that offered the manifest is penalised with it, the manifest
 *   is never chosen again, the progress is discarded and the next group is
 *   tried.
 * - **Persistence** is the caller's: `select` (a download begins: replace any
 *   stored progress), `chunk` (a verified chunk to store), `discard` (drop
 *   the progress). `resume` continues a stored download: the manifest must
 *   still be eligible, and stored chunks that no longer hash right are
 *   fetched again.
 * - **Giving up on a manifest.** The chosen manifest is discarded when its
 *   block leaves our best header chain or our tip reaches it, and replaced
 *   when no peer has served it for `switchAfterMs` while another group is
 *   eligible.
 */
import { hex, sameHash, type ChainAdapter, type Hash, type StateManifest } from '../chain/adapter.ts';
import type { Reason } from '../core/errors.ts';
import {
  checkManifest, chunkLength, makeStateLimits, manifestId, stateChunkHash, type StateLimits,
} from './state-messages.ts';

export interface StateSyncOptions {
  /** Chunk requests out to one peer at once. */
  readonly maxInFlightPerPeer: number;
  /** Chunk requests out at once in all. */
  readonly maxInFlight: number;
  /**
   * Chunk requests sent to one peer per second (a token bucket holding one
   * second's worth; `Infinity`: unpaced). A peer drops, and scores, messages
   * above its per-connection rate limit (200 messages/s by default, for all
   * messages of the connection), so this stays well below it.
   */
  readonly chunkRequestsPerSecond: number;
  /** A chunk request unanswered this long is a stall (SYNC_STALL) and is reassigned. */
  readonly chunkTimeoutMs: number;
  /** A peer whose offer is missing or not the chosen one is asked again after this long. */
  readonly manifestRecheckMs: number;
  /** After the first eligible offer, wait at most this long for the other peers' answers before choosing. */
  readonly manifestWaitMs: number;
  /** Peers that must offer a manifest before it may be chosen. */
  readonly minPeers: number;
  /** With no peer serving the chosen manifest for this long, another eligible group replaces it. */
  readonly switchAfterMs: number;
  /** Stalls after which a peer is not asked again for the chosen manifest. */
  readonly maxStallsPerPeer: number;
  readonly limits: StateLimits;
}

export const DEFAULT_STATE_SYNC_OPTIONS: StateSyncOptions = Object.freeze({
  maxInFlightPerPeer: 4,
  maxInFlight: 16,
  chunkRequestsPerSecond: 100,
  chunkTimeoutMs: 20_000,
  manifestRecheckMs: 10_000,
  manifestWaitMs: 2_000,
  minPeers: 1,
  switchAfterMs: 60_000,
  maxStallsPerPeer: 3,
  limits: makeStateLimits(),
});

export type StateSyncOptionsInput = Partial<Omit<StateSyncOptions, 'limits'>> & { readonly limits?: Partial<StateLimits> };

/** Fills defaults and checks each value; RangeError naming the first bad one. */
export function makeStateSyncOptions(input: StateSyncOptionsInput = {}): StateSyncOptions {
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as StateSyncOptionsInput;
  const o: StateSyncOptions = { ...DEFAULT_STATE_SYNC_OPTIONS, ...defined, limits: makeStateLimits(input.limits) };
  for (const k of ['maxInFlightPerPeer', 'maxInFlight', 'minPeers', 'maxStallsPerPeer'] as const) {
    if (!Number.isSafeInteger(o[k]) || o[k] < 1) throw new RangeError(`state sync: ${k} must be an integer ≥ 1, got ${String(o[k])}`);
  }
  if (typeof o.chunkRequestsPerSecond !== 'number' || Number.isNaN(o.chunkRequestsPerSecond) || o.chunkRequestsPerSecond <= 0) {
    throw new RangeError(`state sync: chunkRequestsPerSecond must be a number > 0 (or Infinity), got ${String(o.chunkRequestsPerSecond)}`);
  }
  for (const k of ['chunkTimeoutMs', 'manifestRecheckMs', 'manifestWaitMs', 'switchAfterMs'] as const) {
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k]) || o[k] < 0) throw new RangeError(`state sync: ${k} must be a finite number ≥ 0, got ${String(o[k])}`);
  }
  return Object.freeze(o);
}

/** What the engine needs of the chain: where headers are, and the validated tip. */
export type StateSyncChain = Pick<ChainAdapter, 'header' | 'headerAt' | 'tip'>;

export type StateSyncPhase = 'discovering' | 'fetching' | 'applying' | 'done';

export type StateSyncAction =
  | { readonly type: 'request-manifest'; readonly peer: string }
  | { readonly type: 'request-chunk'; readonly peer: string; readonly stateRoot: Hash; readonly index: number }
  /** The engine gave up on this request (stall): abort it, a late answer is not wanted. */
  | { readonly type: 'cancel-chunk'; readonly peer: string; readonly index: number }
  | { readonly type: 'penalize'; readonly peer: string; readonly reason: Reason; readonly detail: string }
  /** A download begins: persist `manifest`, replacing any stored progress. */
  | { readonly type: 'select'; readonly manifest: StateManifest; readonly id: string; readonly resumed: number }
  /** A verified chunk of manifest `id`: persist it. */
  | { readonly type: 'chunk'; readonly id: string; readonly peer: string; readonly index: number; readonly bytes: Uint8Array }
  /** The download of manifest `id` is abandoned: drop the stored progress. */
  | { readonly type: 'discard'; readonly manifest: StateManifest; readonly id: string; readonly why: string }
  /** Every chunk is held and verified: `chain.applyState(manifest, chunks)`, then `onApplied` or `onApplyFailed`. */
  | { readonly type: 'apply'; readonly manifest: StateManifest; readonly id: string; readonly chunks: readonly Uint8Array[] }
  | { readonly type: 'done'; readonly manifest: StateManifest };

/** What `onChunk` made of an answer. */
export type ChunkVerdict = 'accepted' | 'bad' | 'missing' | 'ignored';

export interface StateSyncStats {
  readonly phase: StateSyncPhase;
  /** The chosen manifest's block height (undefined while discovering). */
  readonly height: number | undefined;
  readonly chunksDone: number;
  readonly chunksTotal: number;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Chunks taken from stored progress at `resume`. */
  readonly resumedChunks: number;
  readonly peers: number;
  /** Peers serving the chosen manifest. */
  readonly servingPeers: number;
  readonly inflight: number;
  readonly badChunks: number;
  readonly stalls: number;
  /** Manifests refused by the chain (CHAIN_BAD_STATE). */
  readonly badManifests: number;
}

interface Offer {
  readonly manifest: StateManifest;
  readonly id: string;
}

interface PeerState {
  offer: Offer | undefined;
  /** A manifest request is out. */
  asking: boolean;
  /** When it was last asked (-1: never). */
  askedAt: number;
  /** When its last manifest answer (or failure) came. */
  answeredAt: number;
  /** Chunk indexes requested from it. */
  readonly inflight: Set<number>;
  /** Chunk requests it may be sent now (the pacing bucket), as of `tokensAt`. */
  tokens: number;
  tokensAt: number;
}

interface Download {
  readonly manifest: StateManifest;
  readonly id: string;
  readonly chunks: (Uint8Array | undefined)[];
  have: number;
  bytes: number;
  resumed: number;
  /** index → the peer asked and the deadline. */
  readonly inflight: Map<number, { readonly peer: string; readonly deadline: number }>;
  /** Chunks to fetch again (failed, stalled, bad), before `cursor`'s. */
  readonly retry: number[];
  /** Every index below it was handed out once. */
  cursor: number;
  /** Peers not asked again for this manifest: bad data, too many stalls. */
  readonly excluded: Set<string>;
  /** Peers that answered empty (no longer hold the snapshot); asked again only if they offer it again. */
  readonly gone: Set<string>;
  /** Peers that failed a given chunk: another is preferred for it. */
  readonly failedBy: Map<number, Set<string>>;
  readonly stalls: Map<string, number>;
  /** Last time a peer could serve it (or a chunk arrived). */
  servedAt: number;
}

export class StateSync {
  readonly options: StateSyncOptions;
  readonly #chain: StateSyncChain;
  readonly #peers = new Map<string, PeerState>();
  /** Manifest ids the chain refused. */
  readonly #bad = new Set<string>();
  #actions: StateSyncAction[] = [];
  #phase: StateSyncPhase = 'discovering';
  #dl: Download | undefined;
  #firstEligibleAt: number | undefined;
  #badChunks = 0;
  #stalls = 0;
  /** When a peer with room will have a pacing token for the chunks waiting (set by `#assign`). */
  #tokenWakeAt: number | undefined;

  constructor(chain: StateSyncChain, options: StateSyncOptionsInput = {}) {
    this.#chain = chain;
    this.options = makeStateSyncOptions(options);
  }

  /** Pacing bucket size: one second's worth, at least one request. */
  get #burst(): number {
    const r = this.options.chunkRequestsPerSecond;
    return r === Infinity ? Infinity : Math.max(1, r);
  }

  /**
   * The earliest time `poll` has something to do that no answer will
   * trigger: a chunk deadline, or a paced peer getting its next token.
   * The caller wakes the engine then (besides its regular tick).
   */
  wakeAt(): number | undefined {
    if (this.#phase !== 'fetching') return undefined;
    let at = this.#tokenWakeAt;
    for (const r of this.#dl!.inflight.values()) if (at === undefined || r.deadline < at) at = r.deadline;
    return at;
  }

  get phase(): StateSyncPhase {
    return this.#phase;
  }

  /** The manifest being fetched or applied (or applied, when done). */
  get manifest(): StateManifest | undefined {
    return this.#dl?.manifest;
  }

  addPeer(peer: string): void {
    if (!this.#peers.has(peer)) this.#peers.set(peer, { offer: undefined, asking: false, askedAt: -1, answeredAt: -Infinity, inflight: new Set(), tokens: this.#burst, tokensAt: -Infinity });
  }

  removePeer(peer: string): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    this.#peers.delete(peer);
    const dl = this.#dl;
    if (dl === undefined) return;
    for (const index of p.inflight) {
      const r = dl.inflight.get(index);
      if (r?.peer !== peer) continue;
      dl.inflight.delete(index);
      dl.retry.push(index);
    }
  }

  /**
   * Continue a stored download (before any peer is added, typically): the
   * manifest must pass the limits and still be eligible, else `discard`.
   * Returns the chunks kept (those that still hash to their entry).
   */
  resume(manifest: StateManifest, stored: ReadonlyMap<number, Uint8Array>, now: number): number {
    if (this.#phase !== 'discovering' || this.#dl !== undefined) return 0;
    const id = manifestId(manifest);
    const problem = checkManifest(manifest, this.options.limits) ?? this.#ineligible(manifest, id);
    if (problem !== undefined) {
      this.#actions.push({ type: 'discard', manifest, id, why: `stored progress: ${problem}` });
      return 0;
    }
    const dl = this.#start(manifest, id, now);
    for (const [index, bytes] of stored) {
      if (index < 0 || index >= dl.chunks.length || dl.chunks[index] !== undefined) continue;
      if (bytes.length !== chunkLength(manifest, index) || !sameHash(stateChunkHash(bytes), manifest.chunkHashes[index]!)) continue;
      dl.chunks[index] = bytes;
      dl.have++;
      dl.bytes += bytes.length;
    }
    dl.resumed = dl.have;
    return dl.have;
  }

  /** The answer to the peer's manifest request (`undefined`: it has none to serve). */
  onManifest(peer: string, manifest: StateManifest | undefined, now: number): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    p.asking = false;
    p.answeredAt = now;
    p.offer = undefined;
    if (manifest === undefined) return;
    const problem = checkManifest(manifest, this.options.limits);
    if (problem !== undefined) {
      this.#actions.push({ type: 'penalize', peer, reason: 'SYNC_BAD_MANIFEST', detail: problem });
      return;
    }
    const named = this.#chain.header(manifest.blockHash);
    if (named !== undefined && named.height !== manifest.height) {
      this.#actions.push({ type: 'penalize', peer, reason: 'SYNC_BAD_MANIFEST', detail: `manifest says height ${manifest.height}, block ${hex(manifest.blockHash)} is at ${named.height}` });
      return;
    }
    const id = manifestId(manifest);
    p.offer = { manifest, id };
    const dl = this.#dl;
    if (dl !== undefined && dl.id === id) {
      dl.gone.delete(peer); // it holds the snapshot (again)
      dl.servedAt = now;
    }
  }

  /** The manifest request failed (timeout, closed, refused): asked again after `manifestRecheckMs`. */
  onManifestFailed(peer: string, now: number): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    p.asking = false;
    p.answeredAt = now;
  }

  /** The answer to the peer's request for chunk `index` of the chosen manifest. */
  onChunk(peer: string, index: number, bytes: Uint8Array, now: number): ChunkVerdict {
    const dl = this.#dl;
    const r = dl?.inflight.get(index);
    if (dl === undefined || this.#phase !== 'fetching' || r?.peer !== peer) return 'ignored';
    dl.inflight.delete(index);
    this.#peers.get(peer)?.inflight.delete(index);
    if (bytes.length === 0) {
      dl.gone.add(peer);
      dl.retry.push(index);
      return 'missing';
    }
    const expected = chunkLength(dl.manifest, index);
    const fault: { reason: Reason; detail: string } | undefined = bytes.length !== expected
      ? { reason: 'SYNC_BAD_RESPONSE', detail: `chunk ${index} has ${bytes.length} bytes, the manifest says ${expected}` }
      : !sameHash(stateChunkHash(bytes), dl.manifest.chunkHashes[index]!)
        ? { reason: 'SYNC_BAD_CHUNK', detail: `chunk ${index} of state ${hex(dl.manifest.stateRoot)} does not hash to its manifest entry` }
        : undefined;
    if (fault !== undefined) {
      this.#badChunks++;
      dl.retry.push(index);
      // One penalty per peer and manifest: its other answers already on the way are judged (and dropped) the same.
      if (!dl.excluded.has(peer)) this.#actions.push({ type: 'penalize', peer, ...fault });
      dl.excluded.add(peer);
      return 'bad';
    }
    dl.chunks[index] = bytes;
    dl.have++;
    dl.bytes += bytes.length;
    dl.servedAt = now;
    this.#actions.push({ type: 'chunk', id: dl.id, peer, index, bytes });
    return 'accepted';
  }

  /** The chunk request failed (closed, refused, timed out at the connection): reassigned, preferably to another peer. */
  onFailed(peer: string, index: number, _now: number): void {
    const dl = this.#dl;
    const r = dl?.inflight.get(index);
    if (dl === undefined || r?.peer !== peer) return;
    dl.inflight.delete(index);
    this.#peers.get(peer)?.inflight.delete(index);
    this.#failedBy(dl, index).add(peer);
    dl.retry.push(index);
  }

  /** `chain.applyState` accepted the state. */
  onApplied(_now: number): void {
    const dl = this.#dl;
    if (dl === undefined || this.#phase !== 'applying') return;
    this.#phase = 'done';
    dl.chunks.fill(undefined); // the chain has them now
    this.#actions.push({ type: 'done', manifest: dl.manifest });
  }

  /**
   * `chain.applyState` refused the state (CHAIN_BAD_STATE): every peer that
   * offered the manifest is penalised, the manifest is never chosen again,
   * and the next group is tried.
   */
  onApplyFailed(detail: string, now: number): void {
    const dl = this.#dl;
    if (dl === undefined || this.#phase !== 'applying') return;
    this.#bad.add(dl.id);
    for (const [peer, p] of this.#peers) {
      if (p.offer?.id !== dl.id) continue;
      this.#actions.push({ type: 'penalize', peer, reason: 'CHAIN_BAD_STATE', detail: `offered manifest ${dl.id.slice(0, 16)}…: ${detail}` });
      p.offer = undefined;
      p.answeredAt = now - this.options.manifestRecheckMs; // ask again now: it may offer another
    }
    this.#abandon(`the chain refused the state: ${detail}`);
  }

  /** Requests to send, penalties, persistence and apply steps, in order. */
  poll(now: number): StateSyncAction[] {
    if (this.#phase === 'fetching') this.#fetch(now);
    if (this.#phase === 'discovering') this.#choose(now);
    if (this.#phase === 'fetching') this.#assign(now);
    if (this.#phase === 'discovering' || this.#phase === 'fetching') this.#askManifests(now);
    const out = this.#actions;
    this.#actions = [];
    return out;
  }

  stats(): StateSyncStats {
    const dl = this.#dl;
    return {
      phase: this.#phase,
      height: dl?.manifest.height,
      chunksDone: dl === undefined ? 0 : this.#phase === 'done' ? dl.chunks.length : dl.have,
      chunksTotal: dl?.chunks.length ?? 0,
      bytesDone: dl === undefined ? 0 : this.#phase === 'done' ? dl.manifest.totalBytes : dl.bytes,
      bytesTotal: dl?.manifest.totalBytes ?? 0,
      resumedChunks: dl?.resumed ?? 0,
      peers: this.#peers.size,
      servingPeers: dl === undefined ? 0 : this.#servers(dl).length,
      inflight: dl?.inflight.size ?? 0,
      badChunks: this.#badChunks,
      stalls: this.#stalls,
      badManifests: this.#bad.size,
    };
  }

  // ---------------------------------------------------------------- internals

  /** Why a well-formed manifest cannot be chosen now, or undefined. */
  #ineligible(m: StateManifest, id: string): string | undefined {
    if (this.#bad.has(id)) return 'refused by the chain before';
    const tip = this.#chain.tip();
    if (m.height <= tip.height) return `block height ${m.height} is not above our tip's ${tip.height}`;
    const onBest = this.#chain.headerAt(m.height);
    if (onBest === undefined || !sameHash(onBest.hash, m.blockHash)) return `block ${hex(m.blockHash)} is not on our best header chain`;
    return undefined;
  }

  #start(manifest: StateManifest, id: string, now: number): Download {
    const n = manifest.chunkHashes.length;
    const dl: Download = {
      manifest, id, chunks: new Array<Uint8Array | undefined>(n).fill(undefined), have: 0, bytes: 0, resumed: 0,
      inflight: new Map(), retry: [], cursor: 0, excluded: new Set(), gone: new Set(), failedBy: new Map(), stalls: new Map(), servedAt: now,
    };
    this.#dl = dl;
    this.#phase = 'fetching';
    this.#firstEligibleAt = undefined;
    return dl;
  }

  /** Pick the best eligible group once the peers have answered (or waited long enough). */
  #choose(now: number): void {
    const best = this.#bestGroup(undefined);
    if (best === undefined) {
      this.#firstEligibleAt = undefined;
      return;
    }
    this.#firstEligibleAt ??= now;
    const waiting = [...this.#peers.values()].some((p) => p.asking || p.askedAt < 0);
    if (waiting && now - this.#firstEligibleAt < this.options.manifestWaitMs) return;
    this.#select(best, now);
  }

  #select(offer: Offer, now: number): void {
    this.#start(offer.manifest, offer.id, now);
    this.#actions.push({ type: 'select', manifest: offer.manifest, id: offer.id, resumed: 0 });
  }

  /** The eligible group with the most peers, then the highest block (ties: the smaller id), other than `except`. */
  #bestGroup(except: string | undefined): Offer | undefined {
    const groups = new Map<string, { offer: Offer; peers: number }>();
    for (const p of this.#peers.values()) {
      if (p.offer === undefined || p.offer.id === except) continue;
      const g = groups.get(p.offer.id);
      if (g !== undefined) g.peers++;
      else groups.set(p.offer.id, { offer: p.offer, peers: 1 });
    }
    let best: { offer: Offer; peers: number } | undefined;
    for (const g of groups.values()) {
      if (g.peers < this.options.minPeers || this.#ineligible(g.offer.manifest, g.offer.id) !== undefined) continue;
      if (best === undefined || g.peers > best.peers || (g.peers === best.peers && (g.offer.manifest.height > best.offer.manifest.height
        || (g.offer.manifest.height === best.offer.manifest.height && g.offer.id < best.offer.id)))) best = g;
    }
    return best?.offer;
  }

  /** Stalls, the chosen manifest still worth fetching, completion. */
  #fetch(now: number): void {
    const dl = this.#dl!;
    for (const [index, r] of dl.inflight) {
      if (now < r.deadline) continue;
      dl.inflight.delete(index);
      this.#peers.get(r.peer)?.inflight.delete(index);
      this.#stalls++;
      const stalls = (dl.stalls.get(r.peer) ?? 0) + 1;
      dl.stalls.set(r.peer, stalls);
      if (stalls >= this.options.maxStallsPerPeer) dl.excluded.add(r.peer);
      this.#failedBy(dl, index).add(r.peer);
      dl.retry.push(index);
      this.#actions.push({ type: 'cancel-chunk', peer: r.peer, index });
      this.#actions.push({ type: 'penalize', peer: r.peer, reason: 'SYNC_STALL', detail: `chunk ${index} not delivered within ${this.options.chunkTimeoutMs} ms` });
    }
    const problem = this.#ineligible(dl.manifest, dl.id);
    if (problem !== undefined) return this.#abandon(problem);
    if (dl.have === dl.chunks.length) {
      this.#phase = 'applying';
      this.#actions.push({ type: 'apply', manifest: dl.manifest, id: dl.id, chunks: dl.chunks as Uint8Array[] });
      return;
    }
    if (this.#servers(dl).length > 0) {
      dl.servedAt = now;
      return;
    }
    if (now - dl.servedAt < this.options.switchAfterMs) return;
    const other = this.#bestGroup(dl.id);
    if (other === undefined) return;
    this.#abandon(`no peer served it for ${this.options.switchAfterMs} ms; manifest ${other.id.slice(0, 16)}… is offered`);
    this.#select(other, now);
  }

  /** Drop the chosen manifest and its progress; back to discovering. */
  #abandon(why: string): void {
    const dl = this.#dl!;
    for (const [index, r] of dl.inflight) this.#actions.push({ type: 'cancel-chunk', peer: r.peer, index });
    for (const p of this.#peers.values()) p.inflight.clear();
    this.#actions.push({ type: 'discard', manifest: dl.manifest, id: dl.id, why });
    this.#dl = undefined;
    this.#phase = 'discovering';
  }

  /** Peers that offered the chosen manifest and may be asked for its chunks. */
  #servers(dl: Download): string[] {
    const out: string[] = [];
    for (const [peer, p] of this.#peers) if (p.offer?.id === dl.id && !dl.excluded.has(peer) && !dl.gone.has(peer)) out.push(peer);
    return out;
  }

  #failedBy(dl: Download, index: number): Set<string> {
    let s = dl.failedBy.get(index);
    if (s === undefined) dl.failedBy.set(index, (s = new Set()));
    return s;
  }

  /** The next chunk to hand out, or undefined; `skip` holds chunks put aside this round. */
  #nextChunk(dl: Download, skip: Set<number>): number | undefined {
    for (let i = 0; i < dl.retry.length; i++) {
      const index = dl.retry[i]!;
      if (dl.chunks[index] !== undefined || dl.inflight.has(index)) {
        dl.retry.splice(i--, 1);
        continue;
      }
      if (!skip.has(index)) return index;
    }
    while (dl.cursor < dl.chunks.length && (dl.chunks[dl.cursor] !== undefined || dl.inflight.has(dl.cursor))) dl.cursor++;
    return dl.cursor < dl.chunks.length && !skip.has(dl.cursor) ? dl.cursor : undefined;
  }

  #assign(now: number): void {
    this.#tokenWakeAt = undefined;
    const dl = this.#dl!;
    const servers = this.#servers(dl);
    if (servers.length === 0) return;
    for (const s of servers) this.#refill(this.#peers.get(s)!, now);
    const skip = new Set<number>();
    while (dl.inflight.size < this.options.maxInFlight) {
      const roomy = servers.filter((s) => this.#peers.get(s)!.inflight.size < this.options.maxInFlightPerPeer);
      const free = roomy.filter((s) => this.#peers.get(s)!.tokens >= 1);
      if (free.length === 0) {
        // Peers with room but no token yet: wake up when the first gets one (if a chunk waits).
        if (roomy.length > 0 && this.#nextChunk(dl, skip) !== undefined) {
          const rate = this.options.chunkRequestsPerSecond;
          for (const s of roomy) {
            const at = now + ((1 - this.#peers.get(s)!.tokens) * 1000) / rate;
            if (this.#tokenWakeAt === undefined || at < this.#tokenWakeAt) this.#tokenWakeAt = at;
          }
        }
        return;
      }
      const index = this.#nextChunk(dl, skip);
      if (index === undefined) return;
      const failed = dl.failedBy.get(index);
      let candidates = failed === undefined ? free : free.filter((s) => !failed.has(s));
      if (candidates.length === 0) {
        // Every free peer failed this chunk. If a busy peer has not, leave the chunk for it; else try again anyway.
        if (servers.some((s) => !failed!.has(s))) {
          skip.add(index);
          continue;
        }
        failed!.clear();
        candidates = free;
      }
      let peer = candidates[0]!;
      for (const c of candidates) if (this.#peers.get(c)!.inflight.size < this.#peers.get(peer)!.inflight.size) peer = c;
      const ri = dl.retry.indexOf(index);
      if (ri >= 0) dl.retry.splice(ri, 1);
      else dl.cursor = index + 1;
      dl.inflight.set(index, { peer, deadline: now + this.options.chunkTimeoutMs });
      const ps = this.#peers.get(peer)!;
      ps.inflight.add(index);
      ps.tokens -= 1;
      this.#actions.push({ type: 'request-chunk', peer, stateRoot: dl.manifest.stateRoot, index });
    }
  }

  /** Adds the tokens earned since the last refill, up to the burst. */
  #refill(p: PeerState, now: number): void {
    const rate = this.options.chunkRequestsPerSecond;
    if (rate === Infinity || p.tokensAt === -Infinity) {
      p.tokens = this.#burst;
    } else if (now > p.tokensAt) {
      p.tokens = Math.min(this.#burst, p.tokens + ((now - p.tokensAt) * rate) / 1000);
    }
    p.tokensAt = now;
  }

  /** Ask peers that never answered, and re-ask those without a useful offer every `manifestRecheckMs`. */
  #askManifests(now: number): void {
    const dl = this.#dl;
    for (const [peer, p] of this.#peers) {
      if (p.asking) continue;
      if (p.askedAt >= 0) {
        if (dl !== undefined && p.offer?.id === dl.id && !dl.gone.has(peer)) continue; // serving (or excluded): nothing to learn
        if (now - p.answeredAt < this.options.manifestRecheckMs) continue;
      }
      p.asking = true;
      p.askedAt = now;
      this.#actions.push({ type: 'request-manifest', peer });
    }
  }
}
