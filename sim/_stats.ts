/** Figure helpers for the scenario results: percentiles of sorted samples, rounding, and a latency summary. */
import type { LatencySummary } from './scenario-types.ts';

/** p50, p99 and max of `xs` (sorted in place), rounded to 0.01 ms; NaN when empty. */
export function summary(xs: number[]): LatencySummary {
  const sorted = xs.sort((a, b) => a - b);
  return { p50: round(pct(sorted, 50)), p99: round(pct(sorted, 99)), max: round(sorted.at(-1) ?? NaN) };
}

/** Nearest-rank percentile `p` of ascending `sorted` (NaN when empty). */
export function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
