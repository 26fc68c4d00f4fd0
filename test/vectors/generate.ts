/**
 * Generates test/vectors/handshake-v1.json: handshake and frame test vectors for
 * pqnet/1 (docs/spec/handshake.md, docs/spec/wire.md).
 *
 *   node_modules/.bin/node test/vectors/generate.ts
 *
 * Each case runs two real `Handshake`s against each other with the portable
 * provider (deterministic ML-DSA signing, ML-KEM encapsulation message taken from
 * the handshake's `random`) and one `SeededRandom` shared by both roles, so the
 * whole run is byte-for-byte reproducible. Every random draw is recorded. The
 * intermediate secrets are then recomputed here from the spec formulas, using
 * only provider primitives and literal labels, and checked against what the
 * state machines produced: that recomputation is the check that the spec and
 * the code agree. test/secure/vectors.test.ts re-runs `buildVectors()` and
 * compares with the committed file, so a wire change cannot go unnoticed.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../src/core/clock.ts';
import { concatBytes, toHex, u32BE, u64BE, utf8 } from '../../src/core/bytes.ts';
import { Reasons } from '../../src/core/errors.ts';
import { makeLimits, PROTOCOL_VERSION } from '../../src/core/limits.ts';
import { SeededRandom, type Random } from '../../src/core/random.ts';
import { AEAD_IDS, KEM_IDS, kemUsesMlKem, kemUsesX25519, SIG_IDS, SIG_SIZES, type AeadAlg, type KemAlg, type SigAlg } from '../../src/secure/algorithms.ts';
import { CookieJar } from '../../src/secure/cookie.ts';
import { FrameOpener, FrameSealer } from '../../src/secure/frames.ts';
import { Handshake, type HandshakeResult, type InitiatorConfig, type ResponderConfig, type Role } from '../../src/secure/handshake.ts';
import { identityFromPrivateKey, type Identity } from '../../src/secure/identity.ts';
import { compilePolicy, DEFAULT_POLICY, type AlgorithmPolicy } from '../../src/secure/policy.ts';
import { createPortableProvider } from '../../src/secure/portable.ts';
import type { CryptoProvider } from '../../src/secure/provider.ts';
import { decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';
import { FLAG_MORE, FLAG_REKEY, FrameSplitter, type FrameHeader } from '../../src/wire/frame.ts';
import { createRegistry, Goodbye, Ping, Pong } from '../../src/wire/messages.ts';
import { drive, type Pair } from '../secure/_drive.ts';

export const VECTORS_FILE = fileURLToPath(new URL('./handshake-v1.json', import.meta.url));

// ---- JSON shape (shared with test/secure/vectors.test.ts). All byte strings are lowercase hex. ----

export interface PolicyVector {
  readonly kem: KemAlg[];
  readonly aead: AeadAlg[];
  readonly sig: SigAlg[];
  readonly encoding: string;
  readonly root: string;
}

export interface PartyVector {
  readonly sig_alg: SigAlg;
  readonly private_key: string;
  readonly public_key: string;
  readonly peer_id: string;
  readonly peer_id_hex: string;
  readonly identify: string;
}

export interface RandomDraw {
  readonly by: Role;
  readonly purpose: string;
  readonly hex: string;
}

export interface FrameVector {
  readonly key_generation: number;
  readonly key: string;
  readonly counter: number;
  readonly nonce: string;
  readonly channel: number;
  readonly msg_id: number;
  readonly seq: number;
  /** Flags as sealed (FLAG_REKEY is set by the sealer when its budget is spent). */
  readonly flags: number;
  readonly header: string;
  readonly chunk: string;
  /** The 4-byte length prefix, which is also the AAD. */
  readonly length_prefix: string;
  /** length_prefix || ciphertext || tag, as on the wire. */
  readonly frame: string;
}

export interface RetryVector {
  readonly remote_address: string;
  readonly now_ms: number;
  /** Responder-local (not a compatibility requirement): the CookieJar secret. */
  readonly cookie_secret: string;
  readonly hello_i_without_cookie: string;
  /** SHA3-256 of HELLO_I's body re-encoded with an empty cookie (what the cookie binds). */
  readonly hello_digest: string;
  readonly retry: string;
  readonly cookie: string;
}

export interface CaseVector {
  readonly name: string;
  readonly title: string;
  readonly seed: string;
  readonly inputs: {
    readonly version: number;
    readonly chain_id: number;
    readonly policy: PolicyVector;
    readonly kem_offers: KemAlg[];
    readonly aead_offers: AeadAlg[];
    readonly rekey_after_frames: number;
    readonly initiator: PartyVector;
    readonly responder: PartyVector;
    readonly random: RandomDraw[];
  };
  readonly retry?: RetryVector;
  readonly records: { readonly hello_i: string; readonly hello_r: string; readonly auth_r: string; readonly auth_i: string };
  readonly decoded: {
    readonly hello_i: {
      readonly version: number;
      readonly chain_id: number;
      readonly policy_root: string;
      readonly kem_offers: number[];
      readonly aead_offers: number[];
      readonly nonce_i: string;
      readonly x25519_pk: string;
      readonly mlkem_ek: string;
      readonly cookie: string;
    };
    readonly hello_r: {
      readonly version: number;
      readonly kem: number;
      readonly aead: number;
      readonly nonce_r: string;
      readonly x25519_pk: string;
      readonly mlkem_ct: string;
    };
    readonly auth_r_plaintext: string;
    readonly auth_i_plaintext: string;
  };
  readonly derived: {
    readonly kem: KemAlg;
    readonly aead: AeadAlg;
    readonly x25519_shared_secret: string;
    readonly mlkem_shared_secret: string;
    readonly ikm: string;
    readonly th2: string;
    readonly hs_key_r2i: string;
    readonly hs_key_i2r: string;
    readonly auth_r_signed_data: string;
    readonly th3: string;
    readonly auth_i_signed_data: string;
    readonly th4: string;
    readonly app_key_i2r: string;
    readonly app_key_r2i: string;
    readonly session_id: string;
    readonly initiator_tx_key: string;
    readonly initiator_rx_key: string;
    readonly responder_tx_key: string;
    readonly responder_rx_key: string;
    readonly rekey_i2r_generation_1: string;
    readonly rekey_r2i_generation_1: string;
  };
  readonly frames: { readonly i2r: FrameVector[]; readonly r2i: FrameVector[] };
}

export interface RejectVector {
  readonly title: string;
  readonly hello_i: string;
  readonly responder_chain_id: number;
  readonly reason: string;
  readonly wire_code: number;
  readonly reject: string;
}

export interface VectorFile {
  readonly format: string;
  readonly spec: string[];
  readonly generator: string;
  readonly check: string;
  readonly seeded_random: string;
  readonly notes: string[];
  readonly cases: CaseVector[];
  readonly reject_example: RejectVector;
}

// ---- Case definitions. ----

interface CaseSpec {
  readonly name: string;
  readonly title: string;
  readonly policy: AlgorithmPolicy;
  readonly kemOffers?: KemAlg[];
  readonly aeadOffers?: AeadAlg[];
  readonly sig: SigAlg;
  readonly retry?: boolean;
}

const CHAIN_ID = 7;
const NOW_MS = 1_000;
const REKEY_AFTER_FRAMES = 3;
const REMOTE_ADDRESS = 'tcp://192.0.2.1:30303';

const CASES: readonly CaseSpec[] = [
  {
    name: 'a',
    title: 'default policy: x25519-ml-kem-768 + chacha20-poly1305, ml-dsa-65 identities',
    policy: DEFAULT_POLICY,
    sig: 'ml-dsa-65',
  },
  {
    name: 'b',
    title: 'default policy, initiator offers ml-kem-768 only and prefers aes-256-gcm: ml-kem-768 + aes-256-gcm',
    policy: DEFAULT_POLICY,
    kemOffers: ['ml-kem-768'],
    aeadOffers: ['aes-256-gcm', 'chacha20-poly1305'],
    sig: 'ml-dsa-65',
  },
  {
    name: 'c',
    title: 'classic policy: x25519 + chacha20-poly1305, ed25519 identities',
    policy: { kem: ['x25519'], aead: ['chacha20-poly1305'], sig: ['ed25519'] },
    sig: 'ed25519',
  },
  {
    name: 'd',
    title: 'default policy under load: RETRY{cookie}, then HELLO_I echoing the cookie',
    policy: DEFAULT_POLICY,
    sig: 'ml-dsa-65',
    retry: true,
  },
];

// ---- Helpers. ----

const hex = toHex;

class RecordingRandom implements Random {
  readonly #inner: Random;
  readonly #by: Role;
  readonly #log: { by: Role; bytes: Uint8Array }[];

  constructor(inner: Random, by: Role, log: { by: Role; bytes: Uint8Array }[]) {
    this.#inner = inner;
    this.#by = by;
    this.#log = log;
  }

  bytes(length: number): Uint8Array {
    const b = this.#inner.bytes(length);
    this.#log.push({ by: this.#by, bytes: b.slice() });
    return b;
  }
}

/** A record's parts: u32be len || type || body. */
function splitRecord(rec: Uint8Array): { type: number; header: Uint8Array; body: Uint8Array } {
  const len = new DataView(rec.buffer, rec.byteOffset, rec.byteLength).getUint32(0);
  assert.equal(len, rec.length - 4, 'record length prefix counts type + body');
  return { type: rec[4]!, header: rec.subarray(0, 5), body: rec.subarray(5) };
}

function policyVector(p: AlgorithmPolicy, provider: CryptoProvider): PolicyVector {
  const c = compilePolicy(p, provider);
  // Spec: root = SHA3-256("pqnet/1 policy" || CBOR([sorted kem ids, sorted aead ids, sorted sig ids])).
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  const encoding = encodeCbor([sorted(p.kem.map((k) => KEM_IDS[k])), sorted(p.aead.map((a) => AEAD_IDS[a])), sorted(p.sig.map((s) => SIG_IDS[s]))]);
  assert.deepEqual(c.encoding, encoding);
  assert.deepEqual(c.root, provider.sha3_256(concatBytes(utf8('pqnet/1 policy'), encoding)));
  return { kem: [...p.kem], aead: [...p.aead], sig: [...p.sig], encoding: hex(encoding), root: hex(c.root) };
}

function partyVector(id: Identity, identify: Uint8Array, provider: CryptoProvider): PartyVector {
  // Spec: peer id = SHA3-256(alg_id:u8 || public key).
  assert.deepEqual(id.peerId.bytes, provider.sha3_256(concatBytes(Uint8Array.of(SIG_IDS[id.alg]), id.publicKey)));
  return {
    sig_alg: id.alg,
    private_key: hex(id.privateKey),
    public_key: hex(id.publicKey),
    peer_id: id.peerId.toString(),
    peer_id_hex: id.peerId.hex(),
    identify: hex(identify),
  };
}

/** The spec's random draws, in order, for these offers and this selection. */
function expectedDraws(kemOffers: readonly KemAlg[], kem: KemAlg): { by: Role; purpose: string; length: number }[] {
  const out: { by: Role; purpose: string; length: number }[] = [];
  if (kemOffers.some(kemUsesX25519)) out.push({ by: 'initiator', purpose: 'initiator ephemeral x25519 private key', length: 32 });
  if (kemOffers.some(kemUsesMlKem)) out.push({ by: 'initiator', purpose: 'initiator ephemeral ML-KEM-768 seed (d || z)', length: 64 });
  out.push({ by: 'initiator', purpose: 'nonce_I', length: 32 });
  if (kemUsesX25519(kem)) out.push({ by: 'responder', purpose: 'responder ephemeral x25519 private key', length: 32 });
  if (kemUsesMlKem(kem)) out.push({ by: 'responder', purpose: 'ML-KEM-768 encapsulation message m', length: 32 });
  out.push({ by: 'responder', purpose: 'nonce_R', length: 32 });
  return out;
}

const RECORD_TYPE = { HELLO_I: 1, HELLO_R: 2, AUTH_R: 3, AUTH_I: 4, REJECT: 5, RETRY: 6 } as const;

function transcriptHash(p: CryptoProvider, ...records: Uint8Array[]): Uint8Array {
  return p.sha3_256(concatBytes(utf8('pqnet/1 transcript'), ...records));
}

function signedData(p: CryptoProvider, label: string, th: Uint8Array, algId: number, pk: Uint8Array, identify: Uint8Array): Uint8Array {
  return concatBytes(utf8(label), th, p.sha3_256(encodeCbor([algId, pk, identify])));
}

function openAuth(p: CryptoProvider, aead: AeadAlg, key: Uint8Array, rec: Uint8Array, type: number): { plaintext: Uint8Array; fields: [number, Uint8Array, Uint8Array, Uint8Array] } {
  const { type: t, header, body } = splitRecord(rec);
  assert.equal(t, type);
  const plaintext = p.aead(aead, key).open(new Uint8Array(12), header, body);
  assert.ok(plaintext !== null, 'AUTH record opens under its handshake key');
  // AEAD is deterministic: resealing gives the record back.
  assert.deepEqual(concatBytes(header, p.aead(aead, key).seal(new Uint8Array(12), header, plaintext)), rec);
  return { plaintext, fields: decodeCbor(plaintext, 16_384) as [number, Uint8Array, Uint8Array, Uint8Array] };
}

function frameNonceSpec(counter: number): Uint8Array {
  return concatBytes(new Uint8Array(4), u64BE(counter));
}

function rekeySpec(p: CryptoProvider, key: Uint8Array): Uint8Array {
  return p.hkdfSha3_256(key, new Uint8Array(0), utf8('pqnet/1 rekey'), 32);
}

/** Seal `frames` with the code's FrameSealer, check them against the spec formulas and the FrameOpener. */
function sealFrames(p: CryptoProvider, aead: AeadAlg, txKey: Uint8Array, rxKey: Uint8Array, frames: readonly (FrameHeader & { chunk: Uint8Array })[]): FrameVector[] {
  const limits = makeLimits({ rekeyAfterFrames: REKEY_AFTER_FRAMES });
  const sealer = new FrameSealer(p, aead, txKey, limits, NOW_MS);
  const opener = new FrameOpener(p, aead, rxKey);
  const splitter = new FrameSplitter();
  let key = txKey;
  let generation = 0;
  let counter = 0;
  const out: FrameVector[] = [];
  for (const f of frames) {
    const wire = sealer.seal({ channel: f.channel, msgId: f.msgId, seq: f.seq, flags: f.flags }, f.chunk, NOW_MS);
    const rekey = counter + 1 >= REKEY_AFTER_FRAMES;
    const flags = rekey ? f.flags | FLAG_REKEY : f.flags;
    const header = Uint8Array.of(f.channel, f.msgId >>> 8, f.msgId & 0xff, ...u32BE(f.seq), flags);
    const prefix = u32BE(header.length + f.chunk.length + 16);
    const nonce = frameNonceSpec(counter);
    const expected = concatBytes(prefix, p.aead(aead, key).seal(nonce, prefix, concatBytes(header, f.chunk)));
    assert.deepEqual(wire, expected, 'FrameSealer output matches the spec formula');
    splitter.push(wire);
    const raw = splitter.next();
    assert.ok(raw !== undefined);
    const opened = opener.open(raw);
    assert.deepEqual([opened.channel, opened.msgId, opened.seq, opened.flags], [f.channel, f.msgId, f.seq, flags]);
    assert.deepEqual(opened.chunk, f.chunk);
    out.push({
      key_generation: generation,
      key: hex(key),
      counter,
      nonce: hex(nonce),
      channel: f.channel,
      msg_id: f.msgId,
      seq: f.seq,
      flags,
      header: hex(header),
      chunk: hex(f.chunk),
      length_prefix: hex(prefix),
      frame: hex(wire),
    });
    counter++;
    if (rekey) {
      key = rekeySpec(p, key);
      generation++;
      counter = 0;
    }
  }
  assert.equal(sealer.generation, generation);
  return out;
}

// ---- One case. ----

function buildCase(spec: CaseSpec): CaseVector {
  const provider = createPortableProvider({ signingRandom: null });
  const seed = `pqnet/1 test vector ${spec.name}`;
  const policy = compilePolicy(spec.policy, provider);
  const identity = (role: Role): Identity =>
    identityFromPrivateKey(spec.sig, new SeededRandom(`${seed} identity ${role}`).bytes(SIG_SIZES[spec.sig].privateKey), provider);
  const iId = identity('initiator');
  const rId = identity('responder');
  const iIdentify = utf8(`pqnet-vectors/${spec.name}/initiator`);
  const rIdentify = utf8(`pqnet-vectors/${spec.name}/responder`);
  const kemOffers = spec.kemOffers ?? [...spec.policy.kem];
  const aeadOffers = spec.aeadOffers ?? [...spec.policy.aead];
  const limits = makeLimits({ rekeyAfterFrames: REKEY_AFTER_FRAMES });

  const shared = new SeededRandom(seed);
  const log: { by: Role; bytes: Uint8Array }[] = [];
  const cookieSecretRandom = new SeededRandom(`${seed} cookie secret`);
  const cookieSecret = new SeededRandom(`${seed} cookie secret`).bytes(32);
  const cookies = spec.retry === true ? new CookieJar(provider, limits.cookieTtlMs, cookieSecretRandom) : undefined;

  const iCfg: InitiatorConfig = {
    provider,
    random: new RecordingRandom(shared, 'initiator', log),
    identity: iId,
    chainId: CHAIN_ID,
    policy,
    limits,
    identify: iIdentify,
    version: PROTOCOL_VERSION,
    ...(spec.kemOffers !== undefined ? { kemOffers: spec.kemOffers } : {}),
    ...(spec.aeadOffers !== undefined ? { aeadOffers: spec.aeadOffers } : {}),
  };
  const rCfg: ResponderConfig = {
    provider,
    random: new RecordingRandom(shared, 'responder', log),
    identity: rId,
    chainId: CHAIN_ID,
    policy,
    limits,
    identify: rIdentify,
    version: PROTOCOL_VERSION,
    remoteAddress: REMOTE_ADDRESS,
    ...(cookies !== undefined ? { cookies, requireCookie: () => true } : {}),
  };
  const clock = new ManualClock(NOW_MS);
  const pair: Pair = { clock, iCfg, rCfg, initiator: Handshake.initiate(iCfg, clock.now()), responder: Handshake.respond(rCfg, clock.now()) };
  const trace = drive(pair);
  assert.equal(pair.initiator.status, 'complete', pair.initiator.error?.message);
  assert.equal(pair.responder.status, 'complete', pair.responder.error?.message);
  const iRes: HandshakeResult = pair.initiator.result();
  const rRes: HandshakeResult = pair.responder.result();

  // Flights: [HELLO_I (, HELLO_I with cookie), AUTH_I] and [(RETRY,) HELLO_R, AUTH_R].
  const retried = spec.retry === true;
  assert.equal(trace.i2r.length, retried ? 3 : 2);
  assert.equal(trace.r2i.length, retried ? 3 : 2);
  const helloI = trace.i2r[retried ? 1 : 0]!;
  const authI = trace.i2r[retried ? 2 : 1]!;
  const helloR = trace.r2i[retried ? 1 : 0]!;
  const authR = trace.r2i[retried ? 2 : 1]!;
  assert.equal(iRes.retries, retried ? 1 : 0);

  // ---- HELLO_I / HELLO_R. ----
  const hi = splitRecord(helloI);
  assert.equal(hi.type, RECORD_TYPE.HELLO_I);
  const [version, chainId, root, kemIds, aeadIds, nonceI, xPkI, ekI, cookie] = decodeCbor(hi.body, 2_048) as [
    number,
    number,
    Uint8Array,
    number[],
    number[],
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  assert.equal(version, PROTOCOL_VERSION);
  assert.equal(chainId, CHAIN_ID);
  assert.deepEqual(root, policy.root);
  assert.deepEqual(kemIds, kemOffers.map((k) => KEM_IDS[k]));
  assert.deepEqual(aeadIds, aeadOffers.map((a) => AEAD_IDS[a]));
  const hr = splitRecord(helloR);
  assert.equal(hr.type, RECORD_TYPE.HELLO_R);
  const [rVersion, kemId, aeadId, nonceR, xPkR, ct] = decodeCbor(hr.body, 2_048) as [number, number, number, Uint8Array, Uint8Array, Uint8Array];
  assert.equal(rVersion, version);
  // Selection rule: the first offered KEM and the first offered AEAD.
  const kem = kemOffers[0]!;
  const aead = aeadOffers[0]!;
  assert.equal(kemId, KEM_IDS[kem]);
  assert.equal(aeadId, AEAD_IDS[aead]);
  assert.equal(iRes.kem, kem);
  assert.equal(iRes.aead, aead);

  // ---- Random draws, labelled by the spec's order and checked against the records. ----
  const expected = expectedDraws(kemOffers, kem);
  assert.deepEqual(
    log.map((d) => [d.by, d.bytes.length]),
    expected.map((d) => [d.by, d.length]),
    'random draws follow the spec order',
  );
  const draw = (purpose: string): Uint8Array | undefined => {
    const i = expected.findIndex((d) => d.purpose === purpose);
    return i < 0 ? undefined : log[i]!.bytes;
  };
  const xPrivI = draw('initiator ephemeral x25519 private key');
  const kemSeed = draw('initiator ephemeral ML-KEM-768 seed (d || z)');
  const xPrivR = draw('responder ephemeral x25519 private key');
  const kemMsg = draw('ML-KEM-768 encapsulation message m');
  assert.deepEqual(nonceI, draw('nonce_I'));
  assert.deepEqual(nonceR, draw('nonce_R'));
  assert.deepEqual(xPkI, xPrivI === undefined ? new Uint8Array(0) : provider.x25519FromPrivate(xPrivI).publicKey);
  assert.deepEqual(ekI, kemSeed === undefined ? new Uint8Array(0) : provider.mlKem768FromSeed(kemSeed).publicKey);
  assert.deepEqual(xPkR, xPrivR === undefined ? new Uint8Array(0) : provider.x25519FromPrivate(xPrivR).publicKey);

  // ---- Key schedule, from the spec formulas. ----
  let xSs: Uint8Array = new Uint8Array(0);
  if (kemUsesX25519(kem)) {
    xSs = provider.x25519FromPrivate(xPrivI!).derive(xPkR);
    assert.deepEqual(provider.x25519FromPrivate(xPrivR!).derive(xPkI), xSs);
  }
  let kSs: Uint8Array = new Uint8Array(0);
  if (kemUsesMlKem(kem)) {
    kSs = provider.mlKem768FromSeed(kemSeed!).decapsulate(ct);
    const enc = provider.mlKem768Encapsulate(ekI, kemMsg);
    assert.deepEqual(enc.ciphertext, ct);
    assert.deepEqual(enc.sharedSecret, kSs);
  }
  const ikm = concatBytes(xSs, kSs);
  const th2 = transcriptHash(provider, helloI, helloR);
  const hsR2I = provider.hkdfSha3_256(ikm, th2, utf8('pqnet/1 hs r->i'), 32);
  const hsI2R = provider.hkdfSha3_256(ikm, th2, utf8('pqnet/1 hs i->r'), 32);

  const ar = openAuth(provider, aead, hsR2I, authR, RECORD_TYPE.AUTH_R);
  const [rAlgId, rPk, rIdf, rSig] = ar.fields;
  assert.equal(rAlgId, SIG_IDS[spec.sig]);
  assert.deepEqual(rPk, rId.publicKey);
  assert.deepEqual(rIdf, rIdentify);
  const authRSigned = signedData(provider, 'pqnet/1 auth-r', th2, rAlgId, rPk, rIdf);
  assert.ok(provider.verify(spec.sig, rPk, authRSigned, rSig));
  assert.deepEqual(rId.sign(authRSigned), rSig, 'deterministic signature reproduces');

  const th3 = transcriptHash(provider, helloI, helloR, authR);
  const ai = openAuth(provider, aead, hsI2R, authI, RECORD_TYPE.AUTH_I);
  const [iAlgId, iPk, iIdf, iSig] = ai.fields;
  assert.equal(iAlgId, SIG_IDS[spec.sig]);
  assert.deepEqual(iPk, iId.publicKey);
  assert.deepEqual(iIdf, iIdentify);
  const authISigned = signedData(provider, 'pqnet/1 auth-i', th3, iAlgId, iPk, iIdf);
  assert.ok(provider.verify(spec.sig, iPk, authISigned, iSig));
  assert.deepEqual(iId.sign(authISigned), iSig);

  const th4 = transcriptHash(provider, helloI, helloR, authR, authI);
  const appI2R = provider.hkdfSha3_256(ikm, th4, utf8('pqnet/1 app i->r'), 32);
  const appR2I = provider.hkdfSha3_256(ikm, th4, utf8('pqnet/1 app r->i'), 32);
  const sessionId = provider.hkdfSha3_256(ikm, th4, utf8('pqnet/1 session id'), 32);
  assert.deepEqual(iRes.txKey, appI2R, 'initiator tx = app i->r');
  assert.deepEqual(iRes.rxKey, appR2I, 'initiator rx = app r->i');
  assert.deepEqual(rRes.txKey, appR2I, 'responder tx = app r->i');
  assert.deepEqual(rRes.rxKey, appI2R, 'responder rx = app i->r');
  assert.deepEqual(iRes.sessionId, sessionId);
  assert.deepEqual(rRes.sessionId, sessionId);
  assert.deepEqual(iRes.transcriptHash, th4);
  assert.deepEqual(rRes.transcriptHash, th4);
  assert.ok(iRes.remote.peerId.equals(rId.peerId) && rRes.remote.peerId.equals(iId.peerId));

  // ---- RETRY. ----
  let retry: RetryVector | undefined;
  if (retried) {
    const first = trace.i2r[0]!;
    const rt = trace.r2i[0]!;
    const rts = splitRecord(rt);
    assert.equal(rts.type, RECORD_TYPE.RETRY);
    const [echoed] = decodeCbor(rts.body, 128) as [Uint8Array];
    assert.deepEqual(echoed, cookie, 'the second HELLO_I echoes the cookie');
    // The second HELLO_I differs from the first only in its last element.
    const f = decodeCbor(splitRecord(first).body, 2_048) as unknown[];
    assert.deepEqual(f[8], new Uint8Array(0));
    const digest = provider.sha3_256(encodeCbor([...f.slice(0, 8), new Uint8Array(0)]));
    assert.deepEqual(encodeCbor([...f.slice(0, 8), cookie]), hi.body);
    // Recommended responder-local format (src/secure/cookie.ts).
    const issuedAt = u64BE(NOW_MS);
    const r = utf8(REMOTE_ADDRESS);
    const mac = provider.hmacSha3_256(cookieSecret, concatBytes(utf8('pqnet/1 cookie'), issuedAt, Uint8Array.of(r.length >>> 8, r.length & 0xff), r, digest));
    assert.deepEqual(cookie, concatBytes(issuedAt, mac));
    retry = {
      remote_address: REMOTE_ADDRESS,
      now_ms: NOW_MS,
      cookie_secret: hex(cookieSecret),
      hello_i_without_cookie: hex(first),
      hello_digest: hex(digest),
      retry: hex(rt),
      cookie: hex(cookie),
    };
  } else {
    assert.equal(cookie.length, 0);
  }

  // ---- Frames after the handshake. ----
  const reg = createRegistry();
  const pingNonce = u64BE(0x0102030405060708n);
  const i2r = sealFrames(provider, aead, iRes.txKey, rRes.rxKey, [
    { channel: Ping.channel, msgId: Ping.id, seq: 0, flags: 0, chunk: reg.encode(Ping, [pingNonce]) },
    { channel: 3, msgId: 0x8002, seq: 0, flags: 0, chunk: utf8('application payload on channel 3 (transactions)') },
    { channel: 2, msgId: 0x8001, seq: 0, flags: FLAG_MORE, chunk: utf8('first chunk; this frame carries MORE and, sealed by the budget, REKEY') },
    { channel: 2, msgId: 0x8001, seq: 0, flags: 0, chunk: utf8('last chunk, sealed under the next key at counter 0') },
  ]);
  const r2i = sealFrames(provider, aead, rRes.txKey, iRes.rxKey, [
    { channel: Pong.channel, msgId: Pong.id, seq: 0, flags: 0, chunk: reg.encode(Pong, [pingNonce]) },
    { channel: 5, msgId: 0x8010, seq: 0, flags: 0, chunk: Uint8Array.from({ length: 40 }, (_, i) => i) },
    { channel: 4, msgId: 0x8020, seq: 0, flags: 0, chunk: new Uint8Array(0) },
    { channel: Goodbye.channel, msgId: Goodbye.id, seq: 1, flags: 0, chunk: reg.encode(Goodbye, [Reasons.SHUTDOWN.wire, 'bye']) },
  ]);

  return {
    name: spec.name,
    title: spec.title,
    seed,
    inputs: {
      version: PROTOCOL_VERSION,
      chain_id: CHAIN_ID,
      policy: policyVector(spec.policy, provider),
      kem_offers: kemOffers,
      aead_offers: aeadOffers,
      rekey_after_frames: REKEY_AFTER_FRAMES,
      initiator: partyVector(iId, iIdentify, provider),
      responder: partyVector(rId, rIdentify, provider),
      random: expected.map((d, i) => ({ by: d.by, purpose: d.purpose, hex: hex(log[i]!.bytes) })),
    },
    ...(retry !== undefined ? { retry } : {}),
    records: { hello_i: hex(helloI), hello_r: hex(helloR), auth_r: hex(authR), auth_i: hex(authI) },
    decoded: {
      hello_i: {
        version,
        chain_id: chainId,
        policy_root: hex(root),
        kem_offers: kemIds,
        aead_offers: aeadIds,
        nonce_i: hex(nonceI),
        x25519_pk: hex(xPkI),
        mlkem_ek: hex(ekI),
        cookie: hex(cookie),
      },
      hello_r: { version: rVersion, kem: kemId, aead: aeadId, nonce_r: hex(nonceR), x25519_pk: hex(xPkR), mlkem_ct: hex(ct) },
      auth_r_plaintext: hex(ar.plaintext),
      auth_i_plaintext: hex(ai.plaintext),
    },
    derived: {
      kem,
      aead,
      x25519_shared_secret: hex(xSs),
      mlkem_shared_secret: hex(kSs),
      ikm: hex(ikm),
      th2: hex(th2),
      hs_key_r2i: hex(hsR2I),
      hs_key_i2r: hex(hsI2R),
      auth_r_signed_data: hex(authRSigned),
      th3: hex(th3),
      auth_i_signed_data: hex(authISigned),
      th4: hex(th4),
      app_key_i2r: hex(appI2R),
      app_key_r2i: hex(appR2I),
      session_id: hex(sessionId),
      initiator_tx_key: hex(iRes.txKey),
      initiator_rx_key: hex(iRes.rxKey),
      responder_tx_key: hex(rRes.txKey),
      responder_rx_key: hex(rRes.rxKey),
      rekey_i2r_generation_1: hex(rekeySpec(provider, appI2R)),
      rekey_r2i_generation_1: hex(rekeySpec(provider, appR2I)),
    },
    frames: { i2r, r2i },
  };
}

/** HELLO_I of case (a) offered to a responder on another chain: plaintext REJECT. */
function buildReject(helloIHex: string): RejectVector {
  const provider = createPortableProvider({ signingRandom: null });
  const responderChain = CHAIN_ID + 1;
  const hs = Handshake.respond(
    {
      provider,
      random: new SeededRandom('pqnet/1 test vector reject'),
      identity: identityFromPrivateKey('ml-dsa-65', new SeededRandom('pqnet/1 test vector reject identity').bytes(32), provider),
      chainId: responderChain,
      policy: compilePolicy(DEFAULT_POLICY, provider),
      limits: makeLimits(),
      remoteAddress: REMOTE_ADDRESS,
    },
    NOW_MS,
  );
  hs.receive(Buffer.from(helloIHex, 'hex'), NOW_MS);
  const reject = hs.pollTransmit();
  assert.ok(reject !== undefined);
  assert.equal(hs.status, 'failed');
  assert.equal(hs.error?.code, 'HS_CHAIN_MISMATCH');
  const wire = Reasons.HS_CHAIN_MISMATCH.wire;
  assert.deepEqual(reject, concatBytes(u32BE(4), Uint8Array.of(RECORD_TYPE.REJECT), encodeCbor([wire])));
  return {
    title: "case (a)'s HELLO_I received by a responder on chain 8: REJECT{HS_CHAIN_MISMATCH}, then close",
    hello_i: helloIHex,
    responder_chain_id: responderChain,
    reason: 'HS_CHAIN_MISMATCH',
    wire_code: wire,
    reject: hex(reject),
  };
}

export function buildVectors(): VectorFile {
  const cases = CASES.map(buildCase);
  return {
    format: 'pqnet/1 handshake and frame test vectors (protocol version 1); byte strings are lowercase hex',
    spec: ['docs/spec/handshake.md', 'docs/spec/wire.md'],
    generator: 'test/vectors/generate.ts',
    check: 'test/secure/vectors.test.ts',
    seeded_random:
      'SeededRandom(seed): block_k = SHA3-256(utf8(seed) || u64be(k)) for k = 0, 1, 2, ... over the whole run; a draw of n bytes takes the next ceil(n/32) blocks and keeps the first n bytes. One instance per case is shared by both roles; inputs.random lists every draw in order.',
    notes: [
      'Identity private keys are SeededRandom(seed + " identity initiator"|" identity responder").bytes(n): the 32-byte ML-DSA-65 seed xi (FIPS 204 ML-DSA.KeyGen_internal) or the 32-byte Ed25519 private key (RFC 8032).',
      'Signatures are ML-DSA-65 in its deterministic variant (rnd = 32 zero bytes, empty context) and Ed25519; a hedged signer produces other, equally valid signatures, so an implementation reproduces AUTH_R/AUTH_I only with deterministic signing.',
      'The ML-KEM-768 encapsulation message m is drawn from the handshake random (portable provider); an implementation reproduces HELLO_R only if it can encapsulate with a given m, but any implementation can decapsulate mlkem_ct with the recorded seed.',
      'Frames: the sender rekeys after rekey_after_frames frames under one key (a local budget, not a spec value), so the third frame of each direction carries FLAG_REKEY and the fourth is sealed under the next key at counter 0. Channels, message ids and payloads of application frames are illustrative; chunk and message semantics belong to the mux layer.',
      'Case d: the cookie is responder-local; cookie_secret, now_ms and remote_address are recorded so that the recommended format of docs/spec/handshake.md can be checked, but only the second HELLO_I (which echoes the cookie) is in the transcript.',
    ],
    cases,
    reject_example: buildReject(cases[0]!.records.hello_i),
  };
}

export function serializeVectors(v: VectorFile): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}

if (import.meta.main) {
  const v = buildVectors();
  writeFileSync(VECTORS_FILE, serializeVectors(v));
  console.log(`wrote ${VECTORS_FILE}: ${v.cases.length} cases`);
}
