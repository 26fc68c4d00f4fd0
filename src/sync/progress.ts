/**
 * Sync progress (docs/spec/sync.md, Progress): where a node is against the
 * network, how fast it is moving, and when it will be done. Pure: the service
 * samples counters on its clock and asks for the report.
 */

/**
 * - `waiting`: no peer that serves sync is connected.
 * - `headers`: a peer has shown or claims headers beyond our best header.
 * - `blocks`: the best header is known; blocks are being fetched up to it.
 * - `synced`: the validated tip is the best header, and no peer claims more.
 * - `state`: a state snapshot is being fetched (before blocks above it).
 */
export type SyncState = 'waiting' | 'headers' | 'blocks' | 'synced' | 'state';

export interface SyncProgress {
  readonly state: SyncState;
  readonly tipHeight: number;
  /** Hex of the validated tip's hash. */
  readonly tipHash: string;
  readonly bestHeaderHeight: number;
  /** The height we are syncing to: the best header, or a higher one a peer claims. */
  readonly targetHeight: number;
  readonly peers: number;
  /** Over the last `RATE_WINDOW_MS`. */
  readonly headersPerSecond: number;
  readonly blocksPerSecond: number;
  readonly blockBytesPerSecond: number;
  /** Seconds until the tip reaches the target at the current block rate; null when synced or not moving. */
  readonly etaSeconds: number | null;
  /** Share of the target reached since this sync began, 0–1 (1 when synced). */
  readonly fraction: number;
  /** When this sync began (wall clock, ms) and at which tip height; kept across restarts. */
  readonly startedAtMs: number | null;
  readonly startHeight: number | null;
}

/** Rates are measured over this much recent time. */
export const RATE_WINDOW_MS = 10_000;

interface Sample {
  readonly at: number;
  readonly headers: number;
  readonly blocks: number;
  readonly bytes: number;
}

/** Counter samples over a sliding window, turned into per-second rates. */
export class RateMeter {
  readonly #windowMs: number;
  #samples: Sample[] = [];

  constructor(windowMs = RATE_WINDOW_MS) {
    this.#windowMs = windowMs;
  }

  /** Record cumulative counters at `now` (monotonic ms). */
  sample(now: number, headers: number, blocks: number, bytes: number): void {
    this.#samples.push({ at: now, headers, blocks, bytes });
    // Keep one sample older than the window, so the window is fully covered.
    while (this.#samples.length > 2 && this.#samples[1]!.at <= now - this.#windowMs) this.#samples.shift();
    // Idle time before the work began is not part of the rate: drop leading samples that did not move.
    while (this.#samples.length > 2 && sameCounts(this.#samples[0]!, this.#samples[1]!)) this.#samples.shift();
  }

  rates(): { headers: number; blocks: number; bytes: number } {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (first === undefined || last === undefined || last.at <= first.at) return { headers: 0, blocks: 0, bytes: 0 };
    const s = (last.at - first.at) / 1_000;
    return { headers: (last.headers - first.headers) / s, blocks: (last.blocks - first.blocks) / s, bytes: (last.bytes - first.bytes) / s };
  }
}

function sameCounts(a: Sample, b: Sample): boolean {
  return a.headers === b.headers && a.blocks === b.blocks && a.bytes === b.bytes;
}

export interface ProgressInputs {
  readonly peers: number;
  readonly tipHeight: number;
  readonly tipHash: string;
  readonly bestHeaderHeight: number;
  /** Highest height a peer claims or showed. */
  readonly claimedHeight: number;
  readonly rates: { headers: number; blocks: number; bytes: number };
  readonly startedAtMs: number | null;
  readonly startHeight: number | null;
}

export function syncState(i: Pick<ProgressInputs, 'peers' | 'tipHeight' | 'bestHeaderHeight' | 'claimedHeight'>): SyncState {
  if (i.peers === 0) return 'waiting';
  if (i.claimedHeight > i.bestHeaderHeight) return 'headers';
  if (i.tipHeight < i.bestHeaderHeight) return 'blocks';
  return 'synced';
}

export function makeProgress(i: ProgressInputs): SyncProgress {
  const state = syncState(i);
  const target = Math.max(i.bestHeaderHeight, i.claimedHeight, i.tipHeight);
  const left = target - i.tipHeight;
  const start = i.startHeight ?? i.tipHeight;
  const fraction = left <= 0 ? 1 : target <= start ? 0 : Math.min(1, Math.max(0, (i.tipHeight - start) / (target - start)));
  const round = (n: number): number => Math.round(n * 10) / 10;
  return {
    state,
    tipHeight: i.tipHeight,
    tipHash: i.tipHash,
    bestHeaderHeight: i.bestHeaderHeight,
    targetHeight: target,
    peers: i.peers,
    headersPerSecond: round(i.rates.headers),
    blocksPerSecond: round(i.rates.blocks),
    blockBytesPerSecond: Math.round(i.rates.bytes),
    etaSeconds: left > 0 && i.rates.blocks > 0 ? Math.ceil(left / i.rates.blocks) : null,
    fraction: Math.round(fraction * 10_000) / 10_000,
    startedAtMs: i.startedAtMs,
    startHeight: i.startHeight,
  };
}
