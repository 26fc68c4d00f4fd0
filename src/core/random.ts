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
