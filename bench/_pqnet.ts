/** pqnet configurations used by the benchmarks (both processes build the same policy). */
import { SystemClock } from '../src/core/clock.ts';
import { makeLimits, type Limits } from '../src/core/limits.ts';
import { systemRandom } from '../src/core/random.ts';
import type { AeadAlg, SigAlg } from '../src/secure/algorithms.ts';
import { generateIdentity } from '../src/secure/identity.ts';
import type { SecureConfig } from '../src/secure/listener.ts';
import { compilePolicy, DEFAULT_POLICY, type AlgorithmPolicy } from '../src/secure/policy.ts';
import type { ProviderName } from '../src/secure/provider.ts';
import { getProvider } from '../src/secure/providers.ts';
import type { SecureSession } from '../src/secure/session.ts';
import { MAX_CHUNK_BYTES } from '../src/core/limits.ts';

/** 'pq': the default policy (hybrid x25519-ml-kem-768, ML-DSA-65). 'classic': x25519 + ed25519 only. */
export type Suite = 'pq' | 'classic';

export const CLASSIC_POLICY: AlgorithmPolicy = {
  kem: ['x25519'],
  aead: ['chacha20-poly1305', 'aes-256-gcm'],
  sig: ['ed25519'],
};

export const BENCH_CHAIN_ID = 7;

export function suiteAlgs(suite: Suite): { kem: string; sig: SigAlg } {
  return suite === 'pq' ? { kem: 'x25519-ml-kem-768', sig: 'ml-dsa-65' } : { kem: 'x25519', sig: 'ed25519' };
}

/**
 * A node's SecureConfig for `suite`, with default limits except the per-IP
 * handshake cap: every benchmark dial comes from 127.0.0.1, and a finished
 * initiator may start its next dial before the responder has processed AUTH_I,
 * so up to twice the client concurrency can be in progress from one host.
 */
export function benchConfig(providerName: ProviderName, suite: Suite, limits: Partial<Limits> = {}): SecureConfig {
  const provider = getProvider(providerName);
  const policy = suite === 'pq' ? DEFAULT_POLICY : CLASSIC_POLICY;
  return {
    provider,
    random: systemRandom,
    clock: new SystemClock(),
    identity: generateIdentity(suiteAlgs(suite).sig, provider),
    chainId: BENCH_CHAIN_ID,
    policy: compilePolicy(policy, provider),
    // The load generator is one address asking for as many handshakes as the server
    // can do: lift the per-address caps and the work budget, which exist to stop
    // exactly that from a stranger, so the figure is the handshake's own capacity.
    limits: makeLimits({
      maxHandshakesPerIp: 1024,
      handshakesPerHostPerSecond: 1e9,
      handshakeBurstPerHost: 1e9,
      handshakeCpuMsPerSecond: 1e9,
      handshakeCpuBurstMs: 1e9,
      ...limits,
    }),
  };
}

export function aeadOffer(aead: AeadAlg | undefined): { aeadOffers?: readonly AeadAlg[] } {
  return aead === undefined ? {} : { aeadOffers: [aead] };
}

/** The frame header of the bulk stream the channel baselines send. */
const BULK_HEADER = { channel: 6, msgId: 0x8001, flags: 0 } as const;

/** Send `total` bytes over `s` as full frames cut from `chunk` (at least MAX_CHUNK_BYTES long), waiting for drains; then close it. */
export async function streamFrames(s: SecureSession, total: number, chunk: Uint8Array): Promise<void> {
  let sent = 0;
  let seq = 0;
  while (sent < total) {
    const n = Math.min(MAX_CHUNK_BYTES, total - sent);
    const ok = s.sendFrame({ ...BULK_HEADER, seq: seq++ }, chunk.subarray(0, n));
    sent += n;
    if (!ok) await s.drained();
  }
  s.close();
}
