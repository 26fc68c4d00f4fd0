/**
 * Choking (docs/spec/gossip.md, "Choking"): a node keeps eager pushes from
 * only the `Dunchoked` mesh members that deliver it items first, and asks the
 * others (CHOKE) to announce items by IHAVE instead. The mesh stays D strong
 * for robustness, but each item crosses about `Dunchoked` links per node
 * instead of D: eager push in a mesh costs about one copy per mesh edge
 * direction, most of them duplicates.
 *
 * The tracker is per topic and sans-I/O. It counts, per mesh member, first
 * deliveries and duplicates since the window opened; after `window` items it
 * ranks the unchoked members and chokes all but the best (a new member
 * joins choked when `Dunchoked` others already push). It unchokes (the router sends UNCHOKE) when the unchoked set
 * falls below `Dunchoked` (members left), when a choked member's IHAVE got us
 * an item before any push did (our pushers are slower than it), and one
 * random choked member every `exploreWindows` decisions, at the window's
 * boundary so the next window judges it in full: a member that has become
 * faster gets measured again. Exploring by windows, not by time, keeps a
 * low-rate topic (a window longer than the exploration period) from having
 * every window spoilt by a member unchoked halfway through it.
 */
import type { Random } from '../core/random.ts';
import { uniformInt } from '../core/random.ts';

interface Tally {
  firsts: number;
  duplicates: number;
}

export class ChokeTracker {
  /** Mesh members we choked: they announce instead of pushing to us. */
  readonly choking = new Set<string>();
  /** Mesh members that choked us: we announce to them instead of pushing. */
  readonly chokedBy = new Set<string>();
  readonly #tally = new Map<string, Tally>();
  /** Since when each member's tally is comparable (joined the mesh or was unchoked). */
  readonly #since = new Map<string, number>();
  #items = 0;
  #windowStart = 0;

  /** Members kept pushing (0: choking off), items per decision window, and decisions between explorations (0: none). */
  readonly unchoked: number;
  readonly window: number;
  readonly exploreWindows: number;
  #decisions = 0;

  constructor(unchoked: number, window: number, exploreWindows = 0) {
    this.unchoked = unchoked;
    this.window = window;
    this.exploreWindows = exploreWindows;
  }

  get enabled(): boolean {
    return this.unchoked > 0;
  }

  /** A new mesh member; true when it should be choked at once (`unchoked` others already push to us). */
  joined(peer: string, mesh: ReadonlySet<string>, now: number): boolean {
    if (!this.enabled) return false;
    this.#since.set(peer, now);
    let open = 0;
    for (const p of mesh) if (p !== peer && !this.choking.has(p)) open++;
    if (open < this.unchoked) return false;
    this.choking.add(peer);
    return true;
  }

  left(peer: string): void {
    this.choking.delete(peer);
    this.chokedBy.delete(peer);
    this.#tally.delete(peer);
    this.#since.delete(peer);
  }

  /** `peer` (a mesh member) delivered an item first; true when a decision is due. */
  first(peer: string | undefined): boolean {
    if (!this.enabled) return false;
    if (peer !== undefined) this.#t(peer).firsts++;
    return ++this.#items >= this.window;
  }

  duplicate(peer: string): void {
    if (this.enabled) this.#t(peer).duplicates++;
  }

  /**
   * Close the window: the members to choke, so that at most `unchoked` stay
   * unchoked, and every `exploreWindows` decisions one member choked before
   * to unchoke (already taken out of `choking`). Nobody is choked while a
   * member that joined or was unchoked during the window is open (its tally
   * is partial).
   */
  decide(mesh: ReadonlySet<string>, now: number, random: Random): { choke: string[]; unchoke: string | undefined } {
    const start = this.#windowStart;
    this.#windowStart = now;
    this.#items = 0;
    const tallies = this.#tally;
    const open = [...mesh].filter((p) => !this.choking.has(p));
    // Members that joined or were unchoked during the window have partial tallies: decide next window, when all are comparable.
    const judged = open.filter((p) => (this.#since.get(p) ?? 0) <= start);
    const excess = open.length - this.unchoked;
    let choke: string[] = [];
    if (excess > 0 && judged.length === open.length) {
      // Best first: most first deliveries, then most duplicates (a live but slower pusher beats a silent one).
      const zero: Tally = { firsts: 0, duplicates: 0 };
      const ranked = judged.sort((a, b) => {
        const x = tallies.get(a) ?? zero;
        const y = tallies.get(b) ?? zero;
        return y.firsts - x.firsts || y.duplicates - x.duplicates || (a < b ? -1 : 1);
      });
      choke = ranked.slice(Math.max(0, judged.length - excess));
    }
    tallies.clear();
    let unchoke: string | undefined;
    if (this.exploreWindows > 0 && ++this.#decisions % this.exploreWindows === 0) {
      const before = [...this.choking];
      if (before.length > 0) unchoke = before[uniformInt(random, before.length)];
      if (unchoke !== undefined) this.unchoke(unchoke, now);
    }
    for (const p of choke) this.choking.add(p);
    return { choke, unchoke };
  }

  /** Unchoke `peer` (if we choked it); true if it was. */
  unchoke(peer: string, now: number): boolean {
    if (!this.choking.delete(peer)) return false;
    this.#since.set(peer, now);
    return true;
  }

  /** Choked members to unchoke so that `unchoked` members push to us again. */
  refill(mesh: ReadonlySet<string>, random: Random): string[] {
    const open = [...mesh].filter((p) => !this.choking.has(p)).length;
    const out: string[] = [];
    const choked = [...this.choking];
    while (open + out.length < this.unchoked && choked.length > 0) {
      out.push(choked.splice(uniformInt(random, choked.length), 1)[0]!);
    }
    return out;
  }

  #t(peer: string): Tally {
    let t = this.#tally.get(peer);
    if (t === undefined) this.#tally.set(peer, (t = { firsts: 0, duplicates: 0 }));
    return t;
  }
}
