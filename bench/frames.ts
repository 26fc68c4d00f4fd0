/**
 * Frame codec cost in one process, without sockets: the CPU a session spends
 * sealing and opening frames, beside the bare AEAD doing the same encryption
 * with no framing, measured in the same run. Two frame sizes:
 *
 *   - full 64 KiB chunks (MAX_CHUNK_BYTES): the cost per byte of bulk data;
 *   - 100-byte chunks (a vote, a transaction): the cost per frame, where the
 *     cipher's set-up and the codec's allocations dominate. The bare AEAD
 *     encrypts the same 108 bytes (header and chunk) with the same AAD.
 *
 * The byte stream is cut into 65,536-byte pieces, the size of a Node socket
 * read, so frames span reads as they do over TCP. Less noisy than the
 * two-process `channel` bench, so it is the one to judge codec changes by.
 */
import crypto from 'node:crypto';
import { AEAD_TAG_BYTES, FRAME_HEADER_BYTES, MAX_CHUNK_BYTES, makeLimits } from '../src/core/limits.ts';
import { FrameOpener, FrameSealer } from '../src/secure/frames.ts';
import { getProvider } from '../src/secure/providers.ts';
import type { AeadAlg } from '../src/secure/algorithms.ts';
import { FrameSplitter } from '../src/wire/frame.ts';
import { emit, emitEnvironment, log, round, type BenchOptions } from './_util.ts';

const READ_BYTES = 65_536;
const SMALL_CHUNK_BYTES = 100;

function cut(stream: Uint8Array[]): Uint8Array[] {
  const whole = Buffer.concat(stream);
  const out: Uint8Array[] = [];
  for (let off = 0; off < whole.length; off += READ_BYTES) out.push(whole.subarray(off, Math.min(whole.length, off + READ_BYTES)));
  return out;
}

function best(runs: number, fn: () => number): number {
  let b = Infinity;
  for (let i = 0; i < runs; i++) b = Math.min(b, fn());
  return b;
}

interface Case {
  readonly chunkBytes: number;
  /** Frames per timed run (full, quick). */
  readonly frames: readonly [number, number];
}

const CASES: readonly Case[] = [
  { chunkBytes: MAX_CHUNK_BYTES, frames: [4_096, 1_024] },
  { chunkBytes: SMALL_CHUNK_BYTES, frames: [400_000, 100_000] },
];

export async function main(opts: BenchOptions): Promise<void> {
  emitEnvironment('frames', opts);
  const runs = opts.quick ? 3 : 7;
  const provider = getProvider();
  const key = crypto.randomBytes(32);
  const limits = makeLimits();
  for (const { chunkBytes, frames: counts } of CASES) {
    const frames = counts[opts.quick ? 1 : 0];
    const chunk = crypto.randomBytes(chunkBytes);
    for (const aead of ['chacha20-poly1305', 'aes-256-gcm'] as AeadAlg[]) {
      log(`frames: ${aead}, ${frames} frames of ${chunkBytes} B, best of ${runs}`);
      // pqnet: FrameSealer -> bytes cut like socket reads -> FrameSplitter -> FrameOpener.
      let sealed: Uint8Array[] = [];
      const sealMs = best(runs, () => {
        const s = new FrameSealer(provider, aead, key, limits, 0);
        sealed = [];
        const t = performance.now();
        for (let i = 0; i < frames; i++) sealed.push(s.seal({ channel: 6, msgId: 0x8000, seq: i, flags: 0 }, chunk, 0));
        return performance.now() - t;
      });
      const reads = cut(sealed);
      const openMs = best(runs, () => {
        const o = new FrameOpener(provider, aead, key);
        const sp = new FrameSplitter();
        let n = 0;
        const t = performance.now();
        for (const r of reads) {
          sp.push(r);
          for (let f = sp.next(); f !== undefined; f = sp.next()) {
            o.open(f);
            n++;
          }
        }
        const ms = performance.now() - t;
        if (n !== frames) throw new Error(`opened ${n} of ${frames} frames`);
        return ms;
      });
      // Baseline: bare node:crypto AEAD over the same plaintext (header + chunk) and
      // a 4-byte AAD, one record per frame, no framing. The key is a KeyObject, as
      // in the native provider (a raw key buffer costs a key import per cipher).
      const cipherName = aead as 'chacha20-poly1305';
      const keyObject = crypto.createSecretKey(key);
      const plaintext = Buffer.concat([Buffer.alloc(FRAME_HEADER_BYTES), chunk]);
      const aad = Buffer.alloc(4);
      aad.writeUInt32BE(plaintext.length + AEAD_TAG_BYTES);
      const nonce = Buffer.alloc(12);
      const rawSealMs = best(runs, () => {
        const t = performance.now();
        for (let i = 0; i < frames; i++) {
          nonce.writeUInt32BE(i, 8);
          const c = crypto.createCipheriv(cipherName, keyObject, nonce, { authTagLength: 16 });
          c.setAAD(aad, { plaintextLength: plaintext.length });
          c.update(plaintext);
          c.final();
          c.getAuthTag();
        }
        return performance.now() - t;
      });
      const rawCipher = crypto.createCipheriv(cipherName, keyObject, Buffer.alloc(12), { authTagLength: 16 });
      rawCipher.setAAD(aad, { plaintextLength: plaintext.length });
      const rawCt = rawCipher.update(plaintext);
      rawCipher.final();
      const rawTag = rawCipher.getAuthTag();
      const rawOpenMs = best(runs, () => {
        const zero = Buffer.alloc(12);
        const t = performance.now();
        for (let i = 0; i < frames; i++) {
          const d = crypto.createDecipheriv(cipherName, keyObject, zero, { authTagLength: 16 });
          d.setAAD(aad, { plaintextLength: rawCt.length });
          d.setAuthTag(rawTag);
          d.update(rawCt);
          d.final();
        }
        return performance.now() - t;
      });
      const mb = (frames * chunkBytes) / 1e6;
      for (const [impl, op, ms] of [
        ['pqnet-frames', 'seal', sealMs],
        ['pqnet-frames', 'open', openMs],
        ['aead-bare', 'seal', rawSealMs],
        ['aead-bare', 'open', rawOpenMs],
      ] as [string, string, number][]) {
        emit({
          bench: 'frames',
          impl,
          aead,
          op,
          chunkBytes,
          metric: 'throughput',
          value: round(mb / (ms / 1000), 1),
          unit: 'MB/s',
          framesPerSecond: Math.round(frames / (ms / 1000)),
          usPerFrame: round((ms * 1000) / frames, 3),
          frames,
          ms: round(ms, 1),
        });
      }
      emit({ bench: 'frames', aead, chunkBytes, metric: 'overhead_vs_bare', seal: round(sealMs / rawSealMs, 3), open: round(openMs / rawOpenMs, 3), unit: 'ratio (1 = no framing cost)' });
    }
  }
  await Promise.resolve();
}
