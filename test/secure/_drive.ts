/** Test helpers: configurations and a bounded drive loop joining two handshakes. */
import { ManualClock } from '../../src/core/clock.ts';
import { makeLimits, type Limits } from '../../src/core/limits.ts';
import { SeededRandom, type Random } from '../../src/core/random.ts';
import type { SigAlg } from '../../src/secure/algorithms.ts';
import { Handshake, type InitiatorConfig, type ResponderConfig } from '../../src/secure/handshake.ts';
import { generateIdentity, type Identity } from '../../src/secure/identity.ts';
import { compilePolicy, DEFAULT_POLICY, type AlgorithmPolicy } from '../../src/secure/policy.ts';
import type { CryptoProvider } from '../../src/secure/provider.ts';
import { getProvider } from '../../src/secure/providers.ts';

export const ALL_POLICY: AlgorithmPolicy = {
  kem: ['x25519-ml-kem-768', 'ml-kem-768', 'x25519'],
  aead: ['chacha20-poly1305', 'aes-256-gcm'],
  sig: ['ml-dsa-65', 'slh-dsa-shake-128s', 'ed25519'],
};

const identities = new Map<string, Identity>();
/** Identities are cached per (alg, name, provider) so tests don't pay keygen repeatedly. */
export function testIdentity(name: string, alg: SigAlg = 'ml-dsa-65', provider: CryptoProvider = getProvider()): Identity {
  const key = `${alg}/${name}/${provider.name}`;
  let id = identities.get(key);
  if (id === undefined) {
    id = generateIdentity(alg, provider, new SeededRandom(`identity ${key}`));
    identities.set(key, id);
  }
  return id;
}

export interface PairOptions {
  readonly provider?: CryptoProvider;
  readonly responderProvider?: CryptoProvider;
  readonly policy?: AlgorithmPolicy;
  readonly responderPolicy?: AlgorithmPolicy;
  readonly alg?: SigAlg;
  readonly limits?: Partial<Limits>;
  readonly seed?: string;
  readonly initiator?: Partial<InitiatorConfig>;
  readonly responder?: Partial<ResponderConfig>;
}

export interface Pair {
  readonly clock: ManualClock;
  readonly initiator: Handshake;
  readonly responder: Handshake;
  readonly iCfg: InitiatorConfig;
  readonly rCfg: ResponderConfig;
}

export function makeConfigs(o: PairOptions = {}): { iCfg: InitiatorConfig; rCfg: ResponderConfig } {
  const provider = o.provider ?? getProvider();
  const rProvider = o.responderProvider ?? provider;
  const limits = makeLimits(o.limits);
  const random: Random = new SeededRandom(o.seed ?? 'pair');
  const alg = o.alg ?? 'ml-dsa-65';
  const iCfg: InitiatorConfig = {
    provider,
    random,
    identity: testIdentity('alice', alg, provider),
    chainId: 7,
    policy: compilePolicy(o.policy ?? DEFAULT_POLICY, provider),
    limits,
    identify: new TextEncoder().encode('alice-identify'),
    ...o.initiator,
  };
  const rCfg: ResponderConfig = {
    provider: rProvider,
    random,
    identity: testIdentity('bob', alg, rProvider),
    chainId: 7,
    policy: compilePolicy(o.responderPolicy ?? o.policy ?? DEFAULT_POLICY, rProvider),
    limits,
    identify: new TextEncoder().encode('bob-identify'),
    remoteAddress: 'tcp://127.0.0.1:5000',
    ...o.responder,
  };
  return { iCfg, rCfg };
}

export function makePair(o: PairOptions = {}): Pair {
  const clock = new ManualClock();
  const { iCfg, rCfg } = makeConfigs(o);
  return { clock, iCfg, rCfg, initiator: Handshake.initiate(iCfg, clock.now()), responder: Handshake.respond(rCfg, clock.now()) };
}

/** Every record each side sent, in order. */
export interface Trace {
  readonly i2r: Uint8Array[];
  readonly r2i: Uint8Array[];
}

/**
 * Shuttle bytes between the two until neither has anything to send. Bounded:
 * a handshake takes at most a handful of flights.
 */
export function drive(pair: Pair, tamper?: (dir: 'i2r' | 'r2i', index: number, bytes: Uint8Array) => Uint8Array | undefined): Trace {
  const trace: Trace = { i2r: [], r2i: [] };
  const now = pair.clock.now();
  for (let round = 0; round < 16; round++) {
    let moved = false;
    for (let b = pair.initiator.pollTransmit(); b !== undefined; b = pair.initiator.pollTransmit()) {
      const sent = tamper?.('i2r', trace.i2r.length, b) ?? b;
      trace.i2r.push(b);
      pair.responder.receive(sent, now);
      moved = true;
    }
    for (let b = pair.responder.pollTransmit(); b !== undefined; b = pair.responder.pollTransmit()) {
      const sent = tamper?.('r2i', trace.r2i.length, b) ?? b;
      trace.r2i.push(b);
      pair.initiator.receive(sent, now);
      moved = true;
    }
    if (!moved) break;
  }
  return trace;
}
