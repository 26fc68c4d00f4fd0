/**
 * Test helpers for adversarial ("evil peer") tests: record surgery, a replica of
 * the key schedule so that a test can play a man in the middle or a lying
 * initiator, and an evil client that completes a real handshake over a
 * transport and then writes whatever bytes it likes.
 */
import net from 'node:net';
import { concatBytes, u32BE } from '../../src/core/bytes.ts';
import { isPqnetError, PqnetError } from '../../src/core/errors.ts';
import { AEAD_TAG_BYTES, KEY_BYTES, LENGTH_PREFIX_BYTES, type Limits } from '../../src/core/limits.ts';
import type { Random } from '../../src/core/random.ts';
import { decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';
import { FrameSplitter, type FrameHeader } from '../../src/wire/frame.ts';
import { AEAD_IDS, aeadFromId, type AeadAlg } from '../../src/secure/algorithms.ts';
import { FrameOpener, FrameSealer, frameNonce, type OpenedFrame } from '../../src/secure/frames.ts';
import { Handshake, type HandshakeResult } from '../../src/secure/handshake.ts';
import { AUTH_I_LABEL, authSignedData, HS_KEY_LABEL_I2R, HS_KEY_LABEL_R2I, transcriptHash } from '../../src/secure/handshake-keys.ts';
import { encodeRecord, recordHeader, RECORD_HEADER_BYTES, type RecordTypeId } from '../../src/secure/handshake-records.ts';
import type { Identity } from '../../src/secure/identity.ts';
import type { SecureConfig } from '../../src/secure/listener.ts';
import type { CryptoProvider } from '../../src/secure/provider.ts';
import type { Transport, ByteStream } from '../../src/transport/types.ts';

const HS_NONCE = new Uint8Array(12);

/** A copy of `bytes` with byte `index` XORed with `mask`. */
export function flipByte(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  out[index]! ^= mask;
  return out;
}

export function recordType(raw: Uint8Array): number {
  return raw[LENGTH_PREFIX_BYTES]!;
}

export function recordBody(raw: Uint8Array): Uint8Array {
  return raw.subarray(RECORD_HEADER_BYTES);
}

/** Decode a CBOR record body as an array of fields. */
export function recordFields(raw: Uint8Array): unknown[] {
  return decodeCbor(recordBody(raw), 1 << 16) as unknown[];
}

/** Decode a record's CBOR body, let `edit` change the fields, re-encode canonically. */
export function rewriteRecord(raw: Uint8Array, edit: (fields: unknown[]) => unknown[] | void): Uint8Array {
  const fields = recordFields(raw);
  const edited = edit(fields) ?? fields;
  return encodeRecord(recordType(raw) as RecordTypeId, encodeCbor(edited));
}

// ---------------------------------------------------------------- key schedule replica

export interface ScheduleReplica {
  readonly th2: Uint8Array;
  readonly hsKeyR2I: Uint8Array;
  readonly hsKeyI2R: Uint8Array;
}

/** The spec's handshake key schedule, from the shared secret and [HELLO_I, HELLO_R]. */
export function replicaSchedule(provider: CryptoProvider, ikm: Uint8Array, helloI: Uint8Array, helloR: Uint8Array): ScheduleReplica {
  const th2 = transcriptHash(provider, [helloI, helloR]);
  return {
    th2,
    hsKeyR2I: provider.hkdfSha3_256(ikm, th2, HS_KEY_LABEL_R2I, KEY_BYTES),
    hsKeyI2R: provider.hkdfSha3_256(ikm, th2, HS_KEY_LABEL_I2R, KEY_BYTES),
  };
}

/** AUTH plaintext fields: [sig_alg id, identity public key, identify, signature]. */
export type AuthFields = [number, Uint8Array, Uint8Array, Uint8Array];

export function sealAuthRecord(provider: CryptoProvider, aead: AeadAlg, type: 3 | 4, key: Uint8Array, fields: AuthFields): Uint8Array {
  const body = encodeCbor(fields);
  const header = recordHeader(type, body.length + 16);
  return concatBytes(header, provider.aead(aead, key).seal(HS_NONCE, header, body));
}

/** Open an AUTH record; `undefined` when it does not authenticate under `key`. */
export function openAuthRecord(provider: CryptoProvider, aead: AeadAlg, key: Uint8Array, raw: Uint8Array): AuthFields | undefined {
  const pt = provider.aead(aead, key).open(HS_NONCE, raw.subarray(0, RECORD_HEADER_BYTES), recordBody(raw));
  return pt === null ? undefined : (decodeCbor(pt, 1 << 16) as AuthFields);
}

export interface EvilHelloOptions {
  readonly version?: number;
  readonly chainId: number;
  readonly policyRoot: Uint8Array;
  readonly kemIds?: readonly number[];
  readonly aeadIds?: readonly number[];
  readonly cookie?: Uint8Array;
  /** Override the ephemeral keys put on the wire (they no longer match ours). */
  readonly x25519Public?: Uint8Array;
  readonly mlKemPublic?: Uint8Array;
}

/**
 * An initiator written out by hand: it follows the protocol for the key
 * schedule but signs and sends whatever AUTH_I the test asks for. Offers only
 * KEMs that use X25519 and/or ML-KEM as given by `kemIds` (default hybrid).
 */
export class EvilInitiator {
  readonly provider: CryptoProvider;
  readonly helloI: Uint8Array;
  readonly #x25519;
  readonly #mlkem;
  #helloR: Uint8Array | undefined;
  #authR: Uint8Array | undefined;
  #schedule: ScheduleReplica | undefined;
  #aead: AeadAlg | undefined;

  constructor(provider: CryptoProvider, random: Random, o: EvilHelloOptions) {
    this.provider = provider;
    this.#x25519 = provider.x25519FromPrivate(random.bytes(32));
    this.#mlkem = provider.mlKem768FromSeed(random.bytes(64));
    const kemIds = o.kemIds ?? [1];
    const usesX = kemIds.some((k) => k !== 2);
    const usesK = kemIds.some((k) => k !== 3);
    this.helloI = encodeRecord(
      1,
      encodeCbor([
        o.version ?? 1,
        o.chainId,
        o.policyRoot,
        kemIds,
        o.aeadIds ?? [AEAD_IDS['chacha20-poly1305']],
        random.bytes(32),
        o.x25519Public ?? (usesX ? this.#x25519.publicKey : new Uint8Array(0)),
        o.mlKemPublic ?? (usesK ? this.#mlkem.publicKey : new Uint8Array(0)),
        o.cookie ?? new Uint8Array(0),
      ]),
    );
  }

  /** Take the responder's HELLO_R and AUTH_R; returns AUTH_R's plaintext fields. */
  accept(helloR: Uint8Array, authR: Uint8Array): AuthFields {
    const [, , aeadId, , xPk, ct] = recordFields(helloR) as [number, number, number, Uint8Array, Uint8Array, Uint8Array];
    const xSs = xPk.length > 0 ? this.#x25519.derive(xPk) : new Uint8Array(0);
    const kSs = ct.length > 0 ? this.#mlkem.decapsulate(ct) : new Uint8Array(0);
    this.#aead = aeadFromId(aeadId)!;
    this.#schedule = replicaSchedule(this.provider, concatBytes(xSs, kSs), this.helloI, helloR);
    this.#helloR = helloR;
    this.#authR = authR;
    const fields = openAuthRecord(this.provider, this.#aead, this.#schedule.hsKeyR2I, authR);
    if (fields === undefined) throw new Error('EvilInitiator: AUTH_R does not open');
    return fields;
  }

  /** th3 = transcript hash over HELLO_I, HELLO_R, AUTH_R: what AUTH_I must sign. */
  get th3(): Uint8Array {
    return transcriptHash(this.provider, [this.helloI, this.#helloR!, this.#authR!]);
  }

  /** What an honest `identity` would sign in AUTH_I. */
  signedData(identity: Identity, identify: Uint8Array, th: Uint8Array = this.th3): Uint8Array {
    return authSignedData(this.provider, AUTH_I_LABEL, th, identity.alg, identity.publicKey, identify);
  }

  /** An AUTH_I record with the given plaintext fields, sealed under the right key. */
  authI(fields: AuthFields): Uint8Array {
    return sealAuthRecord(this.provider, this.#aead!, 4, this.#schedule!.hsKeyI2R, fields);
  }

  /** An AUTH_I record whose plaintext is `plaintext` as is (not CBOR-encoded). */
  authIRaw(plaintext: Uint8Array): Uint8Array {
    const header = recordHeader(4, plaintext.length + 16);
    return concatBytes(header, this.provider.aead(this.#aead!, this.#schedule!.hsKeyI2R).seal(HS_NONCE, header, plaintext));
  }
}

// ---------------------------------------------------------------- evil client over a transport

export interface EvilPeer {
  readonly stream: ByteStream;
  readonly result: HandshakeResult;
  /** Seals with our tx key, so that frames we build are genuine. */
  readonly sealer: FrameSealer;
  readonly opener: FrameOpener;
  /** Frames the remote sent us (opened). */
  readonly frames: OpenedFrame[];
  /** Set when the remote's bytes fail to open (should not happen). */
  readonly errors: PqnetError[];
  /** Resolves when our stream closes, with the reason it gave. */
  readonly closed: Promise<PqnetError | undefined>;
  /** Seal one frame (without writing it). */
  seal(header: FrameHeader, chunk: Uint8Array): Uint8Array;
  /**
   * Seal an arbitrary plaintext (header bytes unchecked) as the next frame. It
   * bypasses `sealer`, whose counter does not move: use it last, and only
   * before any rekey.
   */
  sealPlaintext(plaintext: Uint8Array): Uint8Array;
  write(bytes: Uint8Array): void;
}

export interface EvilDialOptions {
  /** Limits for our own sealer (e.g. a small rekeyAfterFrames). */
  readonly limits?: Limits;
  /** Bytes to append to the AUTH_I write, in the same transport write (the first frames). */
  readonly piggyback?: (peer: EvilPeer) => Uint8Array;
}

/**
 * Dial `address` and complete a genuine handshake as initiator with `cfg`,
 * keeping the raw stream: afterwards the caller writes raw bytes.
 */
export async function evilDial(transport: Transport, address: string, cfg: SecureConfig, o: EvilDialOptions = {}): Promise<EvilPeer> {
  const limits = o.limits ?? cfg.limits;
  const stream = await transport.dial(address);
  const hs = Handshake.initiate(cfg, cfg.clock.now());
  let resolveClosed!: (e: PqnetError | undefined) => void;
  const closed = new Promise<PqnetError | undefined>((r) => (resolveClosed = r));
  return new Promise<EvilPeer>((resolve, reject) => {
    const flush = (): void => {
      for (let b = hs.pollTransmit(); b !== undefined; b = hs.pollTransmit()) stream.write(b);
    };
    let peer: EvilPeer | undefined;
    const splitter = new FrameSplitter();
    const onFrames = (bytes: Uint8Array): void => {
      if (peer === undefined || bytes.length === 0) return;
      try {
        splitter.push(bytes);
        for (let raw = splitter.next(); raw !== undefined; raw = splitter.next()) peer.frames.push(peer.opener.open(raw));
      } catch (e) {
        peer.errors.push(isPqnetError(e) ? e : new PqnetError('INTERNAL', String(e)));
      }
    };
    stream.setHandlers({
      data: (b) => {
        if (peer !== undefined) return onFrames(b);
        hs.receive(b, cfg.clock.now());
        if (hs.status !== 'complete') flush();
        if (hs.status === 'complete') {
          const result = hs.result();
          const now = cfg.clock.now();
          const sealer = new FrameSealer(cfg.provider, result.aead, result.txKey, limits, now);
          peer = {
            stream,
            result,
            sealer,
            opener: new FrameOpener(cfg.provider, result.aead, result.rxKey),
            frames: [],
            errors: [],
            closed,
            seal: (header, chunk) => sealer.seal(header, chunk, cfg.clock.now()),
            sealPlaintext: (plaintext) => {
              if (sealer.generation !== 0) throw new Error('sealPlaintext: only before the first rekey');
              const aad = u32BE(plaintext.length + AEAD_TAG_BYTES);
              const out = cfg.provider.aead(result.aead, result.txKey).seal(frameNonce(sealer.frames), aad, plaintext, LENGTH_PREFIX_BYTES);
              out.set(aad, 0);
              return out;
            },
            write: (bytes) => void stream.write(bytes),
          };
          const out: Uint8Array[] = [];
          for (let x = hs.pollTransmit(); x !== undefined; x = hs.pollTransmit()) out.push(x);
          if (o.piggyback !== undefined) out.push(o.piggyback(peer));
          stream.write(concatBytes(...out));
          onFrames(result.leftover);
          resolve(peer);
        } else if (hs.status === 'failed') {
          stream.destroy();
          reject(hs.error ?? new Error('evil handshake failed'));
        }
      },
      drain: () => undefined,
      close: (e) => {
        resolveClosed(e);
        if (peer === undefined) reject(e ?? new PqnetError('REMOTE_CLOSED', 'closed during the evil handshake'));
      },
    });
    flush();
  });
}

// ---------------------------------------------------------------- raw TCP

export interface RawClient {
  readonly socket: net.Socket;
  /** Everything received so far. */
  received(): Uint8Array;
  /** Resolves once the socket is fully closed. */
  readonly closed: Promise<void>;
}

export function portOf(address: string): number {
  const m = /:(\d+)$/.exec(address);
  if (m === null) throw new Error(`no port in ${address}`);
  return Number(m[1]);
}

/** A plain TCP client on 127.0.0.1 that records what it receives. */
export async function rawConnect(address: string): Promise<RawClient> {
  const socket = net.connect({ host: '127.0.0.1', port: portOf(address) });
  const chunks: Uint8Array[] = [];
  socket.on('data', (b: Buffer) => chunks.push(new Uint8Array(b)));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => concatBytes(...chunks), closed };
}

/** Resolve when `cond()` holds, polling every few ms; reject after `maxMs`. */
export async function until(cond: () => boolean, maxMs = 5_000, what = 'condition'): Promise<void> {
  for (let waited = 0; !cond(); waited += 5) {
    if (waited >= maxMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** `promise`, or a rejection after `ms` (so no test hangs on a bug). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
