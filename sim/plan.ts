/**
 * The seeded plan of a gossip scenario, drawn before anything runs: the
 * scenario's checks, each node's role, and who dials whom. Roles and dials
 * (then the publishers, scenario.ts) come from the run's `/plan` generator in
 * that order; churn (churn.ts) and partitions (partition.ts) draw from their
 * own, so adding a fault leaves the rest of the plan as it was.
 */
import { uniformInt, type SeededRandom } from '../src/core/random.ts';
import type { GossipScenario } from './scenario-types.ts';
import type { Role } from './sim-node.ts';

/** Throws a RangeError for a churn or partition spec out of range. */
export function checkScenario(s: GossipScenario): void {
  const bad = (what: string): never => {
    throw new RangeError(`gossip scenario: ${what}`);
  };
  const c = s.churn;
  if (c !== undefined) {
    if (!(c.share >= 0 && c.share <= 1)) bad(`churn.share ${c.share} is not in [0, 1]`);
    if (!(c.everyMs > 0 && Number.isFinite(c.everyMs))) bad(`churn.everyMs ${c.everyMs} must be positive`);
    if (!(c.downMs > 0 && c.downMs < c.everyMs)) bad(`churn.downMs ${c.downMs} must be in (0, everyMs)`);
    if ((c.settleMs ?? 0) < 0 || (c.graceMs ?? 0) < 0) bad('churn.settleMs and graceMs must be >= 0');
  }
  const p = s.partition;
  if (p !== undefined) {
    if (!(p.share > 0 && p.share < 1)) bad(`partition.share ${p.share} is not in (0, 1)`);
    if (!(p.atMs >= 0 && p.healMs > 0)) bad('partition.atMs must be >= 0 and healMs > 0');
    if ((p.graceMs ?? 0) < 0) bad('partition.graceMs must be >= 0');
  }
}

/** Droppers and spammers: the first shares of a seeded shuffle of the nodes; the rest are honest. */
export function assignRoles(s: GossipScenario, rng: SeededRandom): Role[] {
  const roles: Role[] = Array.from({ length: s.nodes }, () => 'honest');
  const order = shuffled(Array.from({ length: s.nodes }, (_, i) => i), rng);
  const nd = Math.round((s.droppers ?? 0) * s.nodes);
  const ns = Math.round((s.spammers ?? 0) * s.nodes);
  for (const i of order.slice(0, nd)) roles[i] = 'dropper';
  for (const i of order.slice(nd, nd + ns)) roles[i] = 'spammer';
  return roles;
}

/** Each node dials `outbound` distinct random others; no pair twice. */
export function dialPlan(s: GossipScenario, rng: SeededRandom): [number, number][] {
  const paired = new Set<string>();
  const edges: [number, number][] = [];
  for (let a = 0; a < s.nodes; a++) {
    let tries = 0;
    for (let k = 0; k < s.outbound && tries < 100 * s.outbound; tries++) {
      const b = uniformInt(rng, s.nodes);
      const key = a < b ? `${a}-${b}` : `${b}-${a}`;
      if (b === a || paired.has(key)) continue;
      paired.add(key);
      edges.push([a, b]);
      k++;
    }
  }
  return edges;
}

/** Fisher–Yates, in place. */
export function shuffled(xs: number[], rng: SeededRandom): number[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = uniformInt(rng, i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
