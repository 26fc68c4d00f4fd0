/** Test helpers: SecureConfig for a named node, with a real clock. */
import { SystemClock, type Clock } from '../../src/core/clock.ts';
import { makeLimits, type Limits } from '../../src/core/limits.ts';
import { systemRandom } from '../../src/core/random.ts';
import type { SigAlg } from '../../src/secure/algorithms.ts';
import type { SecureConfig } from '../../src/secure/listener.ts';
import { compilePolicy, DEFAULT_POLICY, type AlgorithmPolicy } from '../../src/secure/policy.ts';
import type { CryptoProvider } from '../../src/secure/provider.ts';
import { getProvider } from '../../src/secure/providers.ts';
import { testIdentity } from './_drive.ts';

export interface EndpointOptions {
  readonly provider?: CryptoProvider;
  readonly policy?: AlgorithmPolicy;
  readonly alg?: SigAlg;
  readonly limits?: Partial<Limits>;
  readonly chainId?: number;
  readonly clock?: Clock;
}

export function endpoint(name: string, o: EndpointOptions = {}): SecureConfig {
  const provider = o.provider ?? getProvider();
  return {
    provider,
    random: systemRandom,
    clock: o.clock ?? new SystemClock(),
    identity: testIdentity(name, o.alg ?? 'ml-dsa-65', provider),
    chainId: o.chainId ?? 7,
    policy: compilePolicy(o.policy ?? DEFAULT_POLICY, provider),
    limits: makeLimits(o.limits),
    identify: new TextEncoder().encode(`${name}-identify`),
  };
}
