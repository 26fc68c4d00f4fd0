/**
 * Randomness comes in through `Random` so that tests and test vectors can be
 * exactly repeatable. Production uses the operating system's CSPRNG.
 */
import { randomBytes as osRandomBytes } from 'node:crypto';
import { sha3_256 } from '@noble/hashes/sha3.js';

export interface Random {
  bytes(length: number): Uint8Array;
}

export const systemRandom: Random = {
  bytes(length: number): Uint8Array {
    return new Uint8Array(osRandomBytes(length));
  },
};

/**
 * Deterministic byte stream: SHA3-256(seed || counter) blocks. For tests,
 * vectors and the simulator only; never for keys of a real node.
 */
export class SeededRandom implements Random {
  readonly #seed: Uint8Array;
  #counter = 0;

  constructor(seed: string | Uint8Array) {
    this.#seed = typeof seed === 'string' ? new TextEncoder().encode(seed) : seed.slice();
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    let off = 0;
    while (off < length) {
      const ctr = new Uint8Array(8);
      new DataView(ctr.buffer).setBigUint64(0, BigInt(this.#counter++));
      const block = sha3_256(concatTwo(this.#seed, ctr));
      const n = Math.min(block.length, length - off);
      out.set(block.subarray(0, n), off);
      off += n;
    }
    return out;
  }
}

function concatTwo(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** A uniform integer in [0, n) from `random` (rejection sampling, no modulo bias; 1 <= n <= 2^32). */
export function uniformInt(random: Random, n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`uniformInt: bad range ${n}`);
  if (n === 1) return 0;
  const limit = 2 ** 32 - (2 ** 32 % n);
  for (;;) {
    const b = random.bytes(4);
    const x = ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!;
    if (x < limit) return x % n;
  }
}
