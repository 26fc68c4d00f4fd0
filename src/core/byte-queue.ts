/**
 * A FIFO of received byte chunks for streaming decoders. Reading a span that
 * lies inside one chunk returns a view, not a copy; only spans that cross
 * chunk boundaries are copied (once).
 */
export class ByteQueue {
  #chunks: Uint8Array[] = [];
  #head = 0; // offset into #chunks[0]
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** The byte at `index` from the front, without consuming. */
  peekByte(index: number): number {
    let i = index + this.#head;
    for (const c of this.#chunks) {
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    throw new RangeError('peek past end of queue');
  }

  /** Big-endian u32 at `index` from the front, without consuming. */
  peekU32BE(index: number): number {
    return ((this.peekByte(index) << 24) >>> 0) + (this.peekByte(index + 1) << 16) + (this.peekByte(index + 2) << 8) + this.peekByte(index + 3);
  }

  /** Remove and return the first `n` bytes (caller checks `length >= n`). */
  take(n: number): Uint8Array {
    if (n > this.#length) throw new RangeError('take past end of queue');
    const first = this.#chunks[0];
    if (first !== undefined && first.length - this.#head >= n) {
      const out = first.subarray(this.#head, this.#head + n);
      this.#consume(n);
      return out;
    }
    // Every byte is overwritten below, so skip the zero-fill (hot on the receive path:
    // most 64 KiB frames span two socket reads).
    const buf = Buffer.allocUnsafeSlow(n);
    const out = new Uint8Array(buf.buffer, buf.byteOffset, n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const m = Math.min(c.length - this.#head, n - off);
      out.set(c.subarray(this.#head, this.#head + m), off);
      off += m;
      this.#consume(m);
    }
    return out;
  }

  /** Remove and return everything. */
  drain(): Uint8Array {
    return this.take(this.#length);
  }

  #consume(n: number): void {
    this.#length -= n;
    this.#head += n;
    while (this.#chunks.length > 0 && this.#head >= this.#chunks[0]!.length) {
      this.#head -= this.#chunks[0]!.length;
      this.#chunks.shift();
    }
  }
}
