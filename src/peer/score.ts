/**
 * Peer scores (DESIGN.md, Peers): a number in [0, 100] per peer-id, starting
 * at 50 and decaying exponentially back toward 50. Penalties come from the
 * reason table (`Reasons[reason].penalty`); rewards and custom penalties go
 * through `adjust`. Sans-I/O: every call takes `now`, and decay is computed
 * when a score is read, never on a timer.
 */
import { Reasons, type Reason } from '../core/errors.ts';

export const MIN_SCORE = 0;
export const MAX_SCORE = 100;
/** Where every peer starts and where scores decay back to. */
export const NEUTRAL = 50;
/** Below this a peer is banned. */
export const BAN_BELOW = 10;
/** Below this (and not banned) a peer is greylisted: kept at arm's length, first to be evicted. */
export const GREYLIST_BELOW = 25;
/** From this up a peer is trusted. */
export const TRUSTED_FROM = 80;

/**
 * A score this close to neutral carries no information: it reads as exactly
 * `NEUTRAL` and is not kept. Decay takes a 50-point deviation below it in
 * about 16 half-lives.
 */
const NEUTRAL_EPSILON = 1e-3;

export type ScoreStatus = 'banned' | 'greylisted' | 'neutral' | 'trusted';

export interface ScoreOptions {
  /** Time for a score's distance from neutral to halve. */
  readonly scoreHalfLifeMs: number;
  readonly banBelow: number;
  readonly greylistBelow: number;
  readonly trustedFrom: number;
  /** Peers tracked at most; beyond it, those closest to neutral are forgotten first. */
  readonly maxTracked: number;
}

export const DEFAULT_SCORE_OPTIONS: ScoreOptions = Object.freeze({
  scoreHalfLifeMs: 15 * 60_000,
  banBelow: BAN_BELOW,
  greylistBelow: GREYLIST_BELOW,
  trustedFrom: TRUSTED_FROM,
  maxTracked: 10_000,
});

export interface ScoreChange {
  readonly score: number;
  readonly status: ScoreStatus;
  /** The status differs from the one just before this call: act on it (disconnect, ban) exactly once. */
  readonly crossed: boolean;
}

export interface ScoreEntry {
  readonly peerId: string;
  readonly score: number;
  readonly status: ScoreStatus;
}

interface Stored {
  /** Score at time `at`. */
  readonly score: number;
  readonly at: number;
}

export class ScoreBook {
  readonly options: ScoreOptions;
  readonly #scores = new Map<string, Stored>();

  constructor(options: Partial<ScoreOptions> = {}) {
    this.options = scoreOptions(options);
  }

  score(peerId: string, now: number): number {
    const s = this.#scores.get(peerId);
    return s === undefined ? NEUTRAL : this.#decayed(s, now);
  }

  status(peerId: string, now: number): ScoreStatus {
    return this.#statusOf(this.score(peerId, now));
  }

  /** Subtract `Reasons[reason].penalty × times`. */
  penalize(peerId: string, reason: Reason, now: number, times = 1): ScoreChange {
    if (!Number.isFinite(times) || times < 0) throw new RangeError('times must be a non-negative number');
    return this.adjust(peerId, -Reasons[reason].penalty * times, now);
  }

  /** Add `delta` (positive: reward, negative: penalty), clamped to [0, 100]. */
  adjust(peerId: string, delta: number, now: number): ScoreChange {
    if (!Number.isFinite(delta)) throw new RangeError('score delta must be finite');
    const before = this.score(peerId, now);
    const score = snap(Math.min(MAX_SCORE, Math.max(MIN_SCORE, before + delta)));
    if (score === NEUTRAL) this.#scores.delete(peerId);
    else {
      const isNew = !this.#scores.has(peerId);
      this.#scores.set(peerId, { score, at: now });
      if (isNew && this.#scores.size > this.options.maxTracked) this.#evict(now);
    }
    const status = this.#statusOf(score);
    return { score, status, crossed: status !== this.#statusOf(before) };
  }

  forget(peerId: string): void {
    this.#scores.delete(peerId);
  }

  /** Every peer whose score is not neutral, lowest score first. */
  snapshot(now: number): ScoreEntry[] {
    const out: ScoreEntry[] = [];
    for (const [peerId, s] of this.#scores) {
      const score = this.#decayed(s, now);
      if (score !== NEUTRAL) out.push({ peerId, score, status: this.#statusOf(score) });
    }
    return out.sort((a, b) => a.score - b.score || (a.peerId < b.peerId ? -1 : 1));
  }

  /** score(t) = 50 + (s0 − 50)·2^(−Δt / halfLife). */
  #decayed(s: Stored, now: number): number {
    const dt = Math.max(0, now - s.at);
    // At dt = 0 the formula would round (50 + (s − 50) ≠ s in floating point).
    if (dt === 0) return s.score;
    return snap(NEUTRAL + (s.score - NEUTRAL) * 2 ** (-dt / this.options.scoreHalfLifeMs));
  }

  #statusOf(score: number): ScoreStatus {
    const o = this.options;
    if (score < o.banBelow) return 'banned';
    if (score < o.greylistBelow) return 'greylisted';
    return score >= o.trustedFrom ? 'trusted' : 'neutral';
  }

  /**
   * Over `maxTracked`: forget the peers closest to neutral, down to 90% of the
   * cap, so that a stream of new peers costs one sort per tenth of the cap
   * rather than one per peer.
   */
  #evict(now: number): void {
    const { maxTracked } = this.options;
    const keep = maxTracked - Math.floor(maxTracked / 10);
    const byDistance = [...this.#scores].map(([id, s]) => [id, Math.abs(this.#decayed(s, now) - NEUTRAL)] as const).sort((a, b) => a[1] - b[1]);
    for (const [id] of byDistance.slice(0, this.#scores.size - keep)) this.#scores.delete(id);
  }
}

function snap(score: number): number {
  return Math.abs(score - NEUTRAL) < NEUTRAL_EPSILON ? NEUTRAL : score;
}

function scoreOptions(overrides: Partial<ScoreOptions>): ScoreOptions {
  const o = { ...DEFAULT_SCORE_OPTIONS, ...overrides };
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`score option ${k} must be a finite number`);
  }
  if (!(o.scoreHalfLifeMs > 0)) throw new RangeError('scoreHalfLifeMs must be positive');
  if (!Number.isInteger(o.maxTracked) || o.maxTracked < 1) throw new RangeError('maxTracked must be a positive integer');
  // A fresh peer (at NEUTRAL) must be neither greylisted nor trusted.
  if (!(MIN_SCORE <= o.banBelow && o.banBelow <= o.greylistBelow && o.greylistBelow <= NEUTRAL && NEUTRAL < o.trustedFrom && o.trustedFrom <= MAX_SCORE)) {
    throw new RangeError('score thresholds must satisfy 0 <= banBelow <= greylistBelow <= 50 < trustedFrom <= 100');
  }
  return Object.freeze(o);
}
