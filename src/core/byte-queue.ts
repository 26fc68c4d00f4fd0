/**
 * A FIFO of received byte chunks for streaming decoders. Reading a span that
 * lies inside one chunk returns a view, not a copy; only spans that cross
 * chunk boundaries are copied (once).
 *
 * Small chunks are coalesced: a peer that trickles one byte per TCP segment
 * would otherwise leave one buffer object per byte in the queue (megabytes of
 * overhead and quadratic reads for one 64 KiB frame). Chunks shorter than
 * SMALL_CHUNK_BYTES are copied into a shared tail buffer, so the number of
 * chunks held is at most about `length / SMALL_CHUNK_BYTES` plus the large ones.
 *
 * An empty queue holds no buffer at all: every idle connection has one queue
 * (the frame splitter's), so a tail kept past the last byte would cost each of
 * them TAIL_CAPACITY bytes for nothing (a drained tail is never written again).
 */
export const SMALL_CHUNK_BYTES = 4_096;
const TAIL_CAPACITY = 16_384;

export class ByteQueue {
  #chunks: Uint8Array[] = [];
  #first = 0; // index of the first live chunk in #chunks
  #head = 0; // offset into #chunks[#first]
  #length = 0;
  // The tail buffer small chunks are copied into. Defined only while the last
  // chunk is a view of it that may still grow; dropped as soon as it may not (a
  // large chunk follows, or the queue empties), so it is never kept for nothing.
  #tail: Uint8Array | undefined;
  #tailUsed = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    this.#length += n;
    if (n >= SMALL_CHUNK_BYTES) {
      this.#chunks.push(chunk);
      this.#tail = undefined;
      return;
    }
    if (this.#tail !== undefined && this.#tailUsed + n <= this.#tail.length) {
      // Grow the last chunk (a view of the tail) in place.
      const start = this.#tailUsed - this.#chunks[this.#chunks.length - 1]!.length;
      this.#tail.set(chunk, this.#tailUsed);
      this.#tailUsed += n;
      this.#chunks[this.#chunks.length - 1] = this.#tail.subarray(start, this.#tailUsed);
      return;
    }
    this.#tail = new Uint8Array(TAIL_CAPACITY);
    this.#tail.set(chunk, 0);
    this.#tailUsed = n;
    this.#chunks.push(this.#tail.subarray(0, n));
  }

  /** The byte at `index` from the front, without consuming. */
  peekByte(index: number): number {
    let i = index + this.#head;
    for (let c = this.#first; c < this.#chunks.length; c++) {
      const chunk = this.#chunks[c]!;
      if (i < chunk.length) return chunk[i]!;
      i -= chunk.length;
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
    const first = this.#chunks[this.#first];
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
      const c = this.#chunks[this.#first]!;
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
    while (this.#first < this.#chunks.length && this.#head >= this.#chunks[this.#first]!.length) {
      this.#head -= this.#chunks[this.#first]!.length;
      this.#first++;
    }
    if (this.#first === this.#chunks.length) {
      // Empty: start over, holding nothing. The tail's remaining room is not
      // reused; views already taken from it keep it alive as long as they need it.
      this.#chunks = [];
      this.#first = 0;
      this.#tail = undefined;
      this.#tailUsed = 0;
    } else if (this.#first > 64) {
      this.#chunks = this.#chunks.slice(this.#first);
      this.#first = 0;
    }
  }

  /** Chunks held (for tests of the coalescing bound). */
  get chunkCount(): number {
    return this.#chunks.length - this.#first;
  }

  /**
   * Bytes of memory the queue keeps alive: the whole backing buffer of every
   * chunk it holds (each counted once, whatever views of it are held) and of
   * the tail. For tests and diagnostics; O(chunks held).
   */
  get retainedBytes(): number {
    const buffers = new Set<ArrayBufferLike>();
    for (let c = this.#first; c < this.#chunks.length; c++) buffers.add(this.#chunks[c]!.buffer);
    if (this.#tail !== undefined) buffers.add(this.#tail.buffer);
    let bytes = 0;
    for (const b of buffers) bytes += b.byteLength;
    return bytes;
  }
}
