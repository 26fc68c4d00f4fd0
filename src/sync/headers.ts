/**
 * Headers-first sync (docs/spec/sync.md, Headers), sans-I/O: the engine
 * decides whom to ask for which headers and judges the answers; the caller
 * sends the GETHEADERS requests it returns from `poll`, feeds back answers
 * (`onHeaders`) and failures (`onFailed`), and applies penalties.
 *
 * - Each peer has a cursor: the last header it gave us. A peer whose cursor is
 *   on our best header chain is asked from our best header (so peers on the
 *   same chain continue where any of them stopped); a peer on another branch
 *   is asked from its cursor, so its branch is followed and the most-work one
 *   wins whichever peer serves it.
 * - At most `maxConcurrent` requests are out at once, and never two from the
 *   same starting header: on one chain the download is serial across peers
 *   (no header is fetched twice), but when the peer being asked fails or
 *   stalls, the next free peer continues at once.
 * - A full answer (`MAX_HEADERS_PER_MESSAGE`) is followed by another request;
 *   a shorter one means the peer has nothing more: it is asked again after
 *   `recheckMs`, or at once when it announces a new header.
 * - An answer is judged as a whole before anything is stored: a header that
 *   fails decoding or validation (CHAIN_BAD_HEADER), or a batch that does not
 *   chain or does not connect to a stored header (CHAIN_UNKNOWN_PARENT), is
 *   refused and the peer penalised.
 */
import { hex, sameHash, type ChainAdapter, type ChainHeader, type Hash, type HeaderEntry } from '../chain/adapter.ts';
import { isPqnetError, type Reason } from '../core/errors.ts';
import { buildLocator } from './locator.ts';
import { MAX_HEADERS_PER_MESSAGE } from './messages.ts';

export interface HeaderSyncOptions {
  /** GETHEADERS requests out at once. */
  readonly maxConcurrent: number;
  /** A peer that had nothing more is asked again after this long. */
  readonly recheckMs: number;
}

export const DEFAULT_HEADER_SYNC_OPTIONS: HeaderSyncOptions = Object.freeze({ maxConcurrent: 3, recheckMs: 60_000 });

export type HeaderSyncAction =
  | { readonly type: 'request'; readonly peer: string; readonly locator: Hash[]; readonly stop: Hash | undefined }
  | { readonly type: 'penalize'; readonly peer: string; readonly reason: Reason; readonly detail: string }
  | { readonly type: 'best'; readonly header: HeaderEntry };

interface PeerState {
  /** Height the peer claims (HELLO) or has shown us. */
  height: number;
  /** Last header it gave us (stored). */
  cursor: Hash | undefined;
  /** Start header (hex) of its outstanding request. */
  inflight: string | undefined;
  /** When it last answered with less than a full batch. */
  caughtUpAt: number | undefined;
  /** When it was last asked (-1: never); ties between peers go to the one asked longest ago. */
  askedAt: number;
}

export interface HeaderSyncStats {
  readonly bestHeight: number;
  readonly peers: number;
  readonly inflight: number;
  readonly headersStored: number;
  readonly batchesRefused: number;
}

export class HeaderSync {
  readonly options: HeaderSyncOptions;
  readonly #chain: ChainAdapter;
  readonly #peers = new Map<string, PeerState>();
  #actions: HeaderSyncAction[] = [];
  #best: HeaderEntry;
  #stored = 0;
  #refused = 0;

  constructor(chain: ChainAdapter, options: Partial<HeaderSyncOptions> = {}) {
    this.#chain = chain;
    this.options = { ...DEFAULT_HEADER_SYNC_OPTIONS, ...options };
    this.#best = chain.bestHeader();
  }

  addPeer(peer: string, height: number): void {
    if (!this.#peers.has(peer)) this.#peers.set(peer, { height, cursor: undefined, inflight: undefined, caughtUpAt: undefined, askedAt: -1 });
  }

  removePeer(peer: string): void {
    this.#peers.delete(peer);
  }

  /** The peer says it has a header at `height` (HELLO, an announcement): ask it again now if that is beyond what we know. */
  onPeerHeight(peer: string, height: number): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    if (height > p.height) p.height = height;
    if (height > this.#best.height) p.caughtUpAt = undefined;
  }

  /** The answer to the peer's outstanding GETHEADERS. `nowMs` is wall-clock time, for the chain's timestamp rules. */
  onHeaders(peer: string, batch: readonly Uint8Array[], nowMs: number, now: number): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    p.inflight = undefined;
    const verdict = this.#judge(batch, nowMs);
    if ('reason' in verdict) {
      this.#refused++;
      this.#actions.push({ type: 'penalize', peer, reason: verdict.reason, detail: verdict.detail });
      // Whatever else it says, it is not to be believed now.
      p.caughtUpAt = now;
      return;
    }
    const { headers, fresh } = verdict;
    if (fresh.length > 0) {
      this.#chain.storeHeaders(fresh);
      this.#stored += fresh.length;
    }
    const last = headers.at(-1);
    if (last !== undefined) {
      p.cursor = last.hash;
      if (last.height > p.height) p.height = last.height;
    }
    if (batch.length < MAX_HEADERS_PER_MESSAGE) {
      p.caughtUpAt = now;
      // It has nothing more: what it claimed beyond what it showed is not a height to sync to.
      const shown = p.cursor === undefined ? undefined : this.#chain.header(p.cursor);
      p.height = shown?.height ?? 0;
    } else {
      p.caughtUpAt = undefined;
    }
    const best = this.#chain.bestHeader();
    if (!sameHash(best.hash, this.#best.hash)) {
      this.#best = best;
      this.#actions.push({ type: 'best', header: best });
    }
  }

  /** The outstanding request failed (timeout, closed, refused): the peer is free, and another may continue. */
  onFailed(peer: string, now: number): void {
    const p = this.#peers.get(peer);
    if (p === undefined) return;
    p.inflight = undefined;
    p.caughtUpAt = now;
  }

  /** Requests to send now, penalties to apply and best-header changes, in order. */
  poll(now: number): HeaderSyncAction[] {
    let inflight = 0;
    const starts = new Set<string>();
    for (const p of this.#peers.values()) {
      if (p.inflight === undefined) continue;
      inflight++;
      starts.add(p.inflight);
    }
    const bestHeight = this.#chain.bestHeader().height;
    const idle = [...this.#peers.entries()]
      .filter(([, p]) => p.inflight === undefined && this.#due(p, bestHeight, now))
      .sort(([, a], [, b]) => b.height - a.height || a.askedAt - b.askedAt);
    for (const [peer, p] of idle) {
      if (inflight >= this.options.maxConcurrent) break;
      const from = this.#startFor(p);
      const key = hex(from.hash);
      if (starts.has(key)) continue;
      starts.add(key);
      p.inflight = key;
      p.askedAt = now;
      inflight++;
      this.#actions.push({ type: 'request', peer, locator: buildLocator(this.#chain, from), stop: undefined });
    }
    const out = this.#actions;
    this.#actions = [];
    return out;
  }

  stats(): HeaderSyncStats {
    let inflight = 0;
    for (const p of this.#peers.values()) if (p.inflight !== undefined) inflight++;
    return { bestHeight: this.#best.height, peers: this.#peers.size, inflight, headersStored: this.#stored, batchesRefused: this.#refused };
  }

  /** The height the peer claims or has shown (undefined if unknown peer). */
  peerHeight(peer: string): number | undefined {
    return this.#peers.get(peer)?.height;
  }

  /** Highest height any peer has claimed or shown (a claim is dropped once the peer says it has nothing more). */
  targetHeight(): number {
    let h = this.#best.height;
    for (const p of this.#peers.values()) if (p.height > h) h = p.height;
    return h;
  }

  /**
   * Whether to ask the peer now: always once (it may be on another branch), then
   * while it may have more (its last answer was full, or it claims a height
   * above our best header), and otherwise every `recheckMs`.
   */
  #due(p: PeerState, bestHeight: number, now: number): boolean {
    if (p.askedAt < 0) return true;
    if (p.caughtUpAt === undefined) return p.height > bestHeight || p.cursor === undefined || !this.#cursorOnBest(p);
    return now - p.caughtUpAt >= this.options.recheckMs;
  }

  #cursorOnBest(p: PeerState): boolean {
    const cursor = p.cursor === undefined ? undefined : this.#chain.header(p.cursor);
    if (cursor === undefined) return false;
    const onBest = this.#chain.headerAt(cursor.height);
    return onBest !== undefined && sameHash(onBest.hash, cursor.hash);
  }

  /** Our best header, unless the peer's cursor is on another branch: then its cursor. */
  #startFor(p: PeerState): HeaderEntry {
    const best = this.#chain.bestHeader();
    if (p.cursor === undefined) return best;
    const cursor = this.#chain.header(p.cursor);
    if (cursor === undefined) return best;
    const onBest = this.#chain.headerAt(cursor.height, best.hash);
    return onBest !== undefined && sameHash(onBest.hash, cursor.hash) ? best : cursor;
  }

  /** Decode, chain and validate a whole batch; headers already stored are kept for the cursor but not stored again. */
  #judge(batch: readonly Uint8Array[], nowMs: number): { headers: ChainHeader[]; fresh: ChainHeader[] } | { reason: Reason; detail: string } {
    if (batch.length > MAX_HEADERS_PER_MESSAGE) return { reason: 'SYNC_BAD_RESPONSE', detail: `${batch.length} headers > ${MAX_HEADERS_PER_MESSAGE}` };
    const headers: ChainHeader[] = [];
    const fresh: ChainHeader[] = [];
    let parent: HeaderEntry | undefined;
    for (const [i, bytes] of batch.entries()) {
      let h: ChainHeader;
      try {
        h = this.#chain.decodeHeader(bytes);
      } catch (e) {
        return fault(e, 'CHAIN_BAD_HEADER', `header ${i}`);
      }
      if (parent === undefined) {
        parent = this.#chain.header(h.parent);
        if (parent === undefined) return { reason: 'CHAIN_UNKNOWN_PARENT', detail: `header ${i} (${hex(h.hash)}) does not connect to a known header` };
      } else if (!sameHash(h.parent, parent.hash)) {
        return { reason: 'CHAIN_UNKNOWN_PARENT', detail: `header ${i} does not follow header ${i - 1}` };
      }
      const stored = this.#chain.header(h.hash);
      if (stored === undefined) {
        try {
          this.#chain.validateHeader(h, parent, nowMs);
        } catch (e) {
          return fault(e, 'CHAIN_BAD_HEADER', `header ${i} (height ${h.height})`);
        }
        fresh.push(h);
      }
      headers.push(h);
      parent = stored ?? { ...h, totalWork: parent.totalWork + h.work, hasBlock: false };
    }
    return { headers, fresh };
  }
}

/** A PqnetError's own reason (the adapter names the fault), else `fallback`. */
function fault(e: unknown, fallback: Reason, where: string): { reason: Reason; detail: string } {
  if (isPqnetError(e) && e.code.startsWith('CHAIN_')) return { reason: e.code, detail: `${where}: ${e.message}` };
  if (isPqnetError(e)) throw e;
  return { reason: fallback, detail: `${where}: ${(e as Error).message}` };
}
