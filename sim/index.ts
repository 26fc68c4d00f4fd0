/** The deterministic network simulator's substrate: virtual time and a simulated transport (see README.md). */
export { VirtualClock, type RunOptions, type Settle, type VirtualClockOptions } from './clock.ts';
export {
  DEFAULT_SIM_HIGH_WATER,
  SimNetwork,
  SimTransport,
  type LinkSpec,
  type SimNetworkOptions,
  type SimNetworkStats,
} from './network.ts';
export { SimStream } from './stream.ts';
export { UniformRandom } from './uniform.ts';
