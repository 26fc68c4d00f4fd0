/**
 * Spammers in a gossip scenario: each pushes invalid items (first byte
 * `INVALID`) to every gossip peer at `spamFactor` × the topic rate cap, from
 * `spamAtMs`, through the real wire (bypassing its own router, which would
 * never forward them); and the honest nodes' view of their links to
 * spammers: which were active when the spam began, and when each was closed.
 */
import { gossipMessages } from '../src/gossip/messages.ts';
import type { VirtualClock } from './clock.ts';
import type { GossipScenarioResult } from './scenario-types.ts';
import { INVALID, TOPIC, type SimNode } from './sim-node.ts';
import { round } from './_stats.ts';

/** A spammer pushes invalid items to every active gossip peer, `perSecond` each, in 10 ms rounds. */
export function scheduleSpam(sp: SimNode, clock: VirtualClock, startMs: number, perSecond: number, bytes: number): void {
  const perRound = Math.max(1, Math.round(perSecond / 100));
  let seq = 0;
  const burst = (): void => {
    const peers = sp.node.peers().filter((p) => p.state === 'active' && p.peerId !== undefined);
    if (peers.length === 0) return;
    for (const p of peers) {
      for (let k = 0; k < perRound; k++) {
        const payload = new Uint8Array(bytes);
        payload[0] = INVALID;
        new DataView(payload.buffer).setUint32(1, seq++);
        sp.node.send(p.peerId!, gossipMessages.item.gossip, [TOPIC, payload]).catch(() => undefined);
      }
    }
    clock.setTimer(10, burst);
  };
  clock.schedule(startMs, burst);
}

/**
 * Honest nodes' links to spammers (cycling nodes left out: their leaving
 * would count as a close), and when they closed them, in ms after the spam
 * began. Constructing it starts the spam.
 */
export class SpamWatch {
  readonly spammers: number;
  /** `${honest}|${spammer}` -> closed at (undefined: still open). */
  readonly #links = new Map<string, number | undefined>();

  /** `nodes`: the first process of each node; `perSecond`: each spammer's rate per peer. */
  constructor(nodes: readonly SimNode[], cycling: ReadonlySet<number>, clock: VirtualClock, startMs: number, perSecond: number, bytes: number) {
    const links = this.#links;
    const spammerIds = new Set(nodes.filter((n) => n.role === 'spammer').map((n) => n.node.peerId));
    this.spammers = spammerIds.size;
    const watching = nodes.filter((n) => n.role !== 'spammer' && !cycling.has(n.index));
    for (const n of watching) {
      n.node.on('peer:closed', (p) => {
        const key = `${n.index}|${p.peerId}`;
        if (p.peerId !== undefined && spammerIds.has(p.peerId) && links.has(key) && links.get(key) === undefined) links.set(key, clock.now() - startMs);
      });
    }
    if (spammerIds.size === 0) return;
    clock.schedule(startMs, () => {
      for (const n of watching) {
        for (const p of n.node.peers()) if (p.peerId !== undefined && spammerIds.has(p.peerId) && p.state === 'active') links.set(`${n.index}|${p.peerId}`, undefined);
      }
    });
    for (const sp of nodes.filter((n) => n.role === 'spammer')) scheduleSpam(sp, clock, startMs, perSecond, bytes);
  }

  /** Close times so far (ms after the spam began). */
  closes(): number[] {
    return [...this.#links.values()].filter((v): v is number => v !== undefined);
  }

  /** The result's `spam`, with the close times taken at the run's end (`closes()`). */
  figures(closes: readonly number[]): GossipScenarioResult['spam'] {
    return { links: this.#links.size, closed: closes.length, lastCloseMs: round(Math.max(0, ...closes)) };
  }
}
