/**
 * Block locators and the GETHEADERS answer (docs/spec/sync.md, Headers).
 *
 * A locator describes a chain to a peer in few hashes: the tip and the nine
 * headers below it, then steps that double (2, 4, 8, …) down to genesis,
 * which is always last. The peer answers with the headers that follow the
 * first locator hash on its own best chain, so two chains that share a long
 * prefix find their fork point in one round trip.
 */
import { sameHash, type ChainAdapter, type Hash, type HeaderEntry } from '../chain/adapter.ts';
import { MAX_HEADERS_PER_MESSAGE, MAX_LOCATOR_HASHES } from './messages.ts';

const DENSE_STEPS = 10;

/** Heights a locator for a tip at `height` names, highest first, ending at 0. */
export function locatorHeights(height: number): number[] {
  const out: number[] = [];
  let step = 1;
  for (let h = height; h > 0; h -= step) {
    out.push(h);
    if (out.length >= DENSE_STEPS) step *= 2;
  }
  if (out.length > MAX_LOCATOR_HASHES - 1) out.length = MAX_LOCATOR_HASHES - 1;
  out.push(0);
  return out;
}

/** The locator of the chain ending at `tip`. */
export function buildLocator(chain: ChainAdapter, tip: HeaderEntry): Hash[] {
  const out: Hash[] = [];
  for (const h of locatorHeights(tip.height)) {
    const e = h === tip.height ? tip : chain.headerAt(h, tip.hash);
    if (e !== undefined) out.push(e.hash);
  }
  return out;
}

/**
 * The fork point of a locator with our best header chain: the first locator
 * hash that is on it (genesis if none is — a locator from another network
 * still gets an answer, which its sender will refuse).
 */
export function forkPoint(chain: ChainAdapter, locator: readonly Hash[]): HeaderEntry {
  for (const hash of locator) {
    const e = chain.header(hash);
    if (e === undefined) continue;
    const onBest = chain.headerAt(e.height);
    if (onBest !== undefined && sameHash(onBest.hash, e.hash)) return e;
  }
  return chain.genesis;
}

/** The answer to GETHEADERS: encoded headers after the fork point on our best chain, up to `stop` (inclusive) or `max`. */
export function headersAfter(chain: ChainAdapter, locator: readonly Hash[], stop: Hash | undefined, max = MAX_HEADERS_PER_MESSAGE): Uint8Array[] {
  const from = forkPoint(chain, locator);
  const best = chain.bestHeader();
  const out: Uint8Array[] = [];
  for (let h = from.height + 1; h <= best.height && out.length < max; h++) {
    const e = chain.headerAt(h, best.hash);
    if (e === undefined) break;
    out.push(e.bytes);
    if (stop !== undefined && sameHash(e.hash, stop)) break;
  }
  return out;
}
