/**
 * Uniform floats for the simulator, with all randomness from a `Random`
 * (src/core/random.ts) so that a seeded run repeats exactly.
 */
import type { Random } from '../src/core/random.ts';

/**
 * Uniform floats in [0, 1), 53 bits each. The generator (sfc32, a small fast
 * PRNG) is seeded with 16 bytes from the `Random` on the first draw, so all
 * randomness still comes from that `Random` while a draw costs nanoseconds
 * instead of a SHA3 block of `SeededRandom`.
 */
export class UniformRandom {
  readonly #random: Random;
  #s: Uint32Array | undefined;

  constructor(random: Random) {
    this.#random = random;
  }

  #u32(s: Uint32Array): number {
    // sfc32 (Chris Doty-Humphrey's Small Fast Counting generator).
    const t = (((s[0]! + s[1]!) | 0) + s[3]!) | 0;
    s[3] = (s[3]! + 1) | 0;
    s[0] = s[1]! ^ (s[1]! >>> 9);
    s[1] = (s[2]! + (s[2]! << 3)) | 0;
    s[2] = (s[2]! << 21) | (s[2]! >>> 11);
    s[2] = (s[2]! + t) | 0;
    return t >>> 0;
  }

  next(): number {
    let s = this.#s;
    if (s === undefined) {
      const seed = this.#random.bytes(16);
      s = this.#s = new Uint32Array(4);
      const v = new DataView(seed.buffer, seed.byteOffset, 16);
      for (let i = 0; i < 4; i++) s[i] = v.getUint32(4 * i);
      for (let i = 0; i < 12; i++) this.#u32(s); // mix the seed in
    }
    const hi = this.#u32(s) >>> 11;
    const lo = this.#u32(s);
    return (hi * 0x1_0000_0000 + lo) / 2 ** 53;
  }

  /** Uniform in [lo, hi). */
  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
}
