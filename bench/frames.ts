/**
 * Frame codec cost in one process, without sockets: the CPU a session spends
 * per byte sealing and opening 64 KiB frames, beside the bare AEAD doing the
 * same encryption with no framing, measured in the same run. The byte stream is
 * cut into 65,536-byte pieces, the size of a Node socket read, so frames span
 * reads as they do over TCP. Less noisy than the two-process `channel` bench,
 * so it is the one to judge codec changes by.
 */
import crypto from 'node:crypto';
import { MAX_CHUNK_BYTES, makeLimits } from '../src/core/limits.ts';
import { FrameOpener, FrameSealer } from '../src/secure/frames.ts';
import { getProvider } from '../src/secure/providers.ts';
import type { AeadAlg } from '../src/secure/algorithms.ts';
import { FrameSplitter } from '../src/wire/frame.ts';
import { emit, emitEnvironment, log, round, type BenchOptions } from './_util.ts';

const READ_BYTES = 65_536;

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

export async function main(opts: BenchOptions): Promise<void> {
  emitEnvironment('frames', opts);
  const totalBytes = (opts.quick ? 64 : 256) * 1024 * 1024;
  const frames = Math.floor(totalBytes / MAX_CHUNK_BYTES);
  const runs = opts.quick ? 3 : 7;
  const provider = getProvider();
  const chunk = crypto.randomBytes(MAX_CHUNK_BYTES);
  const key = crypto.randomBytes(32);
  const limits = makeLimits();
  for (const aead of ['chacha20-poly1305', 'aes-256-gcm'] as AeadAlg[]) {
    log(`frames: ${aead}, ${frames} frames of ${MAX_CHUNK_BYTES} B, best of ${runs}`);
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
    // Baseline: bare node:crypto AEAD over the same payload, 64 KiB records, no framing.
    const cipherName = aead;
    const nonce = Buffer.alloc(12);
    const rawSealMs = best(runs, () => {
      const t = performance.now();
      for (let i = 0; i < frames; i++) {
        nonce.writeUInt32BE(i, 8);
        const c = crypto.createCipheriv(cipherName as 'chacha20-poly1305', key, nonce, { authTagLength: 16 });
        c.update(chunk);
        c.final();
        c.getAuthTag();
      }
      return performance.now() - t;
    });
    const rawCt = crypto.createCipheriv(cipherName as 'chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 }).update(chunk);
    const rawOpenMs = best(runs, () => {
      const t = performance.now();
      for (let i = 0; i < frames; i++) {
        const d = crypto.createDecipheriv(cipherName as 'chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
        d.update(rawCt);
      }
      return performance.now() - t;
    });
    const mb = (frames * MAX_CHUNK_BYTES) / 1e6;
    for (const [impl, op, ms] of [
      ['pqnet-frames', 'seal', sealMs],
      ['pqnet-frames', 'open', openMs],
      ['aead-bare', 'seal', rawSealMs],
      ['aead-bare', 'open', rawOpenMs],
    ] as [string, string, number][]) {
      emit({ bench: 'frames', impl, aead, op, metric: 'throughput', value: round(mb / (ms / 1000), 1), unit: 'MB/s', frames, ms: round(ms, 1) });
    }
    emit({ bench: 'frames', aead, metric: 'overhead_vs_bare', seal: round(sealMs / rawSealMs, 3), open: round(openMs / rawOpenMs, 3), unit: 'ratio (1 = no framing cost)' });
  }
  await Promise.resolve();
}
