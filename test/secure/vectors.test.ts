/**
 * Test vectors (test/vectors/handshake-v1.json, docs/spec/handshake.md §Test vectors):
 *  (i)   the portable provider, fed only the recorded inputs, reproduces every record, key and frame;
 *  (ii)  the native provider verifies each vector independently, from the spec formulas;
 *  (iii) the committed file is what test/vectors/generate.ts produces today.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ManualClock } from '../../src/core/clock.ts';
import { concatBytes, fromHex, toHex, u32BE, u64BE, utf8 } from '../../src/core/bytes.ts';
import { Reasons } from '../../src/core/errors.ts';
import { makeLimits } from '../../src/core/limits.ts';
import { SeededRandom } from '../../src/core/random.ts';
import { AEAD_IDS, KEM_IDS, SIG_IDS, type AeadAlg, type SigAlg } from '../../src/secure/algorithms.ts';
import { CookieJar } from '../../src/secure/cookie.ts';
import { FrameSealer } from '../../src/secure/frames.ts';
import { Handshake, type InitiatorConfig, type ResponderConfig } from '../../src/secure/handshake.ts';
import { identityFromPrivateKey } from '../../src/secure/identity.ts';
import { nativeProvider } from '../../src/secure/native.ts';
import { compilePolicy } from '../../src/secure/policy.ts';
import { createPortableProvider } from '../../src/secure/portable.ts';
import type { CryptoProvider } from '../../src/secure/provider.ts';
import { isNativeAvailable } from '../../src/secure/providers.ts';
import { decodeCbor, encodeCbor } from '../../src/wire/cbor.ts';
import { FLAG_REKEY } from '../../src/wire/frame.ts';
import { drive } from './_drive.ts';
import { buildVectors, serializeVectors, VECTORS_FILE, type CaseVector, type FrameVector, type VectorFile } from '../vectors/generate.ts';

const committed = readFileSync(VECTORS_FILE, 'utf8');
const vectors = JSON.parse(committed) as VectorFile;
const h = fromHex;
const eqHex = (actual: Uint8Array, expected: string, what: string): void => assert.equal(toHex(actual), expected, what);

test('vector file holds the required cases', () => {
  const byName = new Map(vectors.cases.map((c) => [c.name, c]));
  assert.equal(byName.get('a')?.derived.kem, 'x25519-ml-kem-768');
  assert.equal(byName.get('a')?.derived.aead, 'chacha20-poly1305');
  assert.equal(byName.get('a')?.inputs.initiator.sig_alg, 'ml-dsa-65');
  assert.equal(byName.get('b')?.derived.kem, 'ml-kem-768');
  assert.equal(byName.get('b')?.derived.aead, 'aes-256-gcm');
  assert.equal(byName.get('c')?.derived.kem, 'x25519');
  assert.equal(byName.get('c')?.inputs.initiator.sig_alg, 'ed25519');
  assert.ok(byName.get('d')?.retry !== undefined);
  for (const c of vectors.cases) {
    for (const dir of [c.frames.i2r, c.frames.r2i]) {
      assert.ok(dir.some((f) => (f.flags & FLAG_REKEY) !== 0), `${c.name}: a frame carries FLAG_REKEY`);
      assert.ok(dir.some((f) => f.key_generation === 1), `${c.name}: a frame is sealed after the rekey`);
    }
  }
});

// ---------------------------------------------------------------- (i) portable reproduction

for (const c of vectors.cases) {
  test(`(i) portable provider reproduces case ${c.name} from its inputs: ${c.title}`, () => {
    const provider = createPortableProvider({ signingRandom: null });
    const { inputs } = c;

    // The recorded draws are exactly SeededRandom(seed)'s output, in order.
    const check = new SeededRandom(c.seed);
    for (const d of inputs.random) eqHex(check.bytes(d.hex.length / 2), d.hex, `${c.name}: draw ${d.purpose}`);

    const policy = compilePolicy({ kem: inputs.policy.kem, aead: inputs.policy.aead, sig: inputs.policy.sig }, provider);
    eqHex(policy.encoding, inputs.policy.encoding, 'policy encoding');
    eqHex(policy.root, inputs.policy.root, 'policy root');
    const iId = identityFromPrivateKey(inputs.initiator.sig_alg, h(inputs.initiator.private_key), provider);
    const rId = identityFromPrivateKey(inputs.responder.sig_alg, h(inputs.responder.private_key), provider);
    eqHex(iId.publicKey, inputs.initiator.public_key, 'initiator public key');
    eqHex(rId.publicKey, inputs.responder.public_key, 'responder public key');
    assert.equal(iId.peerId.toString(), inputs.initiator.peer_id);
    assert.equal(rId.peerId.toString(), inputs.responder.peer_id);

    const limits = makeLimits({ rekeyAfterFrames: inputs.rekey_after_frames });
    const random = new SeededRandom(c.seed);
    const now = c.retry?.now_ms ?? 0;
    const iCfg: InitiatorConfig = {
      provider,
      random,
      identity: iId,
      chainId: inputs.chain_id,
      policy,
      limits,
      identify: h(inputs.initiator.identify),
      version: inputs.version,
      kemOffers: inputs.kem_offers,
      aeadOffers: inputs.aead_offers,
    };
    const cookieSecret = c.retry !== undefined ? h(c.retry.cookie_secret) : undefined;
    const rCfg: ResponderConfig = {
      provider,
      random,
      identity: rId,
      chainId: inputs.chain_id,
      policy,
      limits,
      identify: h(inputs.responder.identify),
      version: inputs.version,
      remoteAddress: c.retry?.remote_address ?? 'tcp://192.0.2.1:30303',
      ...(cookieSecret !== undefined ? { cookies: new CookieJar(provider, limits.cookieTtlMs, { bytes: () => cookieSecret.slice() }), requireCookie: () => true } : {}),
    };
    const clock = new ManualClock(now);
    const pair = { clock, iCfg, rCfg, initiator: Handshake.initiate(iCfg, now), responder: Handshake.respond(rCfg, now) };
    const trace = drive(pair);
    assert.equal(pair.initiator.status, 'complete', pair.initiator.error?.message);
    assert.equal(pair.responder.status, 'complete', pair.responder.error?.message);

    const r = c.records;
    const i2r = c.retry !== undefined ? [c.retry.hello_i_without_cookie, r.hello_i, r.auth_i] : [r.hello_i, r.auth_i];
    const r2i = c.retry !== undefined ? [c.retry.retry, r.hello_r, r.auth_r] : [r.hello_r, r.auth_r];
    assert.deepEqual(trace.i2r.map(toHex), i2r, 'initiator records');
    assert.deepEqual(trace.r2i.map(toHex), r2i, 'responder records');

    const ir = pair.initiator.result();
    const rr = pair.responder.result();
    assert.equal(ir.kem, c.derived.kem);
    assert.equal(ir.aead, c.derived.aead);
    eqHex(ir.txKey, c.derived.initiator_tx_key, 'initiator tx');
    eqHex(ir.rxKey, c.derived.initiator_rx_key, 'initiator rx');
    eqHex(rr.txKey, c.derived.responder_tx_key, 'responder tx');
    eqHex(rr.rxKey, c.derived.responder_rx_key, 'responder rx');
    eqHex(ir.sessionId, c.derived.session_id, 'session id (initiator)');
    eqHex(rr.sessionId, c.derived.session_id, 'session id (responder)');
    eqHex(ir.transcriptHash, c.derived.th4, 'th4');

    const reseal = (frames: FrameVector[], key: Uint8Array): void => {
      const sealer = new FrameSealer(provider, c.derived.aead, key, limits, now);
      for (const f of frames) {
        const wire = sealer.seal({ channel: f.channel, msgId: f.msg_id, seq: f.seq, flags: f.flags & ~FLAG_REKEY }, h(f.chunk), now);
        eqHex(wire, f.frame, `${c.name}: frame`);
      }
    };
    reseal(c.frames.i2r, ir.txKey);
    reseal(c.frames.r2i, rr.txKey);
  });
}

test('(i) reject example: a responder on another chain answers REJECT{HS_CHAIN_MISMATCH}', () => {
  const v = vectors.reject_example;
  const provider = createPortableProvider({ signingRandom: null });
  const a = vectors.cases.find((c) => c.name === 'a')!;
  const hs = Handshake.respond(
    {
      provider,
      random: new SeededRandom('unused'),
      identity: identityFromPrivateKey('ml-dsa-65', h(a.inputs.responder.private_key), provider),
      chainId: v.responder_chain_id,
      policy: compilePolicy({ kem: a.inputs.policy.kem, aead: a.inputs.policy.aead, sig: a.inputs.policy.sig }, provider),
      limits: makeLimits(),
      remoteAddress: 'tcp://192.0.2.1:30303',
    },
    0,
  );
  hs.receive(h(v.hello_i), 0);
  assert.equal(hs.error?.code, v.reason);
  eqHex(hs.pollTransmit()!, v.reject, 'REJECT record');
  assert.equal(Reasons.HS_CHAIN_MISMATCH.wire, v.wire_code);
});

// ---------------------------------------------------------------- (ii) native, from the spec

/** Split `u32be len || type || body`. */
function record(hexRecord: string, type: number): { header: Uint8Array; body: Uint8Array; raw: Uint8Array } {
  const raw = h(hexRecord);
  assert.equal(new DataView(raw.buffer, raw.byteOffset).getUint32(0), raw.length - 4, 'length counts type and body');
  assert.equal(raw[4], type, 'record type');
  return { header: raw.subarray(0, 5), body: raw.subarray(5), raw };
}

function verifyNative(p: CryptoProvider, c: CaseVector): void {
  const { inputs, derived, decoded } = c;
  const aead: AeadAlg = derived.aead;
  const sha3 = (...parts: Uint8Array[]): Uint8Array => p.sha3_256(concatBytes(...parts));
  const hkdf = (ikm: Uint8Array, salt: Uint8Array, label: string): Uint8Array => p.hkdfSha3_256(ikm, salt, utf8(label), 32);
  const draw = (purpose: string): Uint8Array | undefined => {
    const d = inputs.random.find((x) => x.purpose === purpose);
    return d === undefined ? undefined : h(d.hex);
  };

  // Policy root and identities.
  eqHex(sha3(utf8('pqnet/1 policy'), h(inputs.policy.encoding)), inputs.policy.root, 'policy root');
  for (const party of [inputs.initiator, inputs.responder]) {
    eqHex(p.signingKey(party.sig_alg, h(party.private_key)).publicKey, party.public_key, 'identity public key from its private key');
    eqHex(sha3(Uint8Array.of(SIG_IDS[party.sig_alg]), h(party.public_key)), party.peer_id_hex, 'peer id = SHA3-256(alg_id || pk)');
  }

  // HELLO_I = [version, chain_id, policy_root, kem_offers, aead_offers, nonce_I, x25519_pk, mlkem_ek, cookie].
  const hi = record(c.records.hello_i, 1);
  const helloI = decodeCbor(hi.body, 2_048) as unknown[];
  assert.equal(helloI.length, 9);
  assert.deepEqual(helloI, [
    inputs.version,
    inputs.chain_id,
    h(inputs.policy.root),
    inputs.kem_offers.map((k) => KEM_IDS[k]),
    inputs.aead_offers.map((a) => AEAD_IDS[a]),
    h(decoded.hello_i.nonce_i),
    h(decoded.hello_i.x25519_pk),
    h(decoded.hello_i.mlkem_ek),
    h(decoded.hello_i.cookie),
  ]);
  eqHex(encodeCbor(helloI), toHex(hi.body), 'HELLO_I body is canonical CBOR');
  assert.equal(decoded.hello_i.nonce_i, toHex(draw('nonce_I')!));
  const xPrivI = draw('initiator ephemeral x25519 private key');
  const kemSeed = draw('initiator ephemeral ML-KEM-768 seed (d || z)');
  const xPrivR = draw('responder ephemeral x25519 private key');
  eqHex(xPrivI === undefined ? new Uint8Array(0) : p.x25519FromPrivate(xPrivI).publicKey, decoded.hello_i.x25519_pk, 'initiator x25519 pk');
  eqHex(kemSeed === undefined ? new Uint8Array(0) : p.mlKem768FromSeed(kemSeed).publicKey, decoded.hello_i.mlkem_ek, 'initiator ML-KEM ek from seed');

  // HELLO_R = [version, kem, aead, nonce_R, x25519_pk, mlkem_ct].
  const hr = record(c.records.hello_r, 2);
  const helloR = decodeCbor(hr.body, 2_048) as unknown[];
  assert.deepEqual(helloR, [
    inputs.version,
    KEM_IDS[derived.kem],
    AEAD_IDS[aead],
    h(decoded.hello_r.nonce_r),
    h(decoded.hello_r.x25519_pk),
    h(decoded.hello_r.mlkem_ct),
  ]);
  // Selection rule: first offered KEM, first offered AEAD.
  assert.equal(derived.kem, inputs.kem_offers[0]);
  assert.equal(aead, inputs.aead_offers[0]);
  assert.equal(decoded.hello_r.nonce_r, toHex(draw('nonce_R')!));
  eqHex(xPrivR === undefined ? new Uint8Array(0) : p.x25519FromPrivate(xPrivR).publicKey, decoded.hello_r.x25519_pk, 'responder x25519 pk');

  // Shared secrets and ikm = x25519_ss || mlkem_ss.
  let xSs: Uint8Array = new Uint8Array(0);
  if (xPrivR !== undefined) {
    xSs = p.x25519FromPrivate(xPrivI!).derive(h(decoded.hello_r.x25519_pk));
    eqHex(p.x25519FromPrivate(xPrivR).derive(h(decoded.hello_i.x25519_pk)), toHex(xSs), 'x25519 agreement is symmetric');
  }
  eqHex(xSs, derived.x25519_shared_secret, 'x25519 shared secret');
  const kSs = derived.kem === 'x25519' ? new Uint8Array(0) : p.mlKem768FromSeed(kemSeed!).decapsulate(h(decoded.hello_r.mlkem_ct));
  eqHex(kSs, derived.mlkem_shared_secret, 'ML-KEM shared secret (native decapsulation)');
  const ikm = concatBytes(xSs, kSs);
  eqHex(ikm, derived.ikm, 'ikm');

  // Transcript and handshake keys.
  const label = utf8('pqnet/1 transcript');
  const th2 = sha3(label, hi.raw, hr.raw);
  eqHex(th2, derived.th2, 'th2');
  const hsR2I = hkdf(ikm, th2, 'pqnet/1 hs r->i');
  const hsI2R = hkdf(ikm, th2, 'pqnet/1 hs i->r');
  eqHex(hsR2I, derived.hs_key_r2i, 'hs r->i');
  eqHex(hsI2R, derived.hs_key_i2r, 'hs i->r');

  // AUTH records: AEAD(hs key, nonce = 12 zero bytes, aad = the 5-byte record header).
  const auth = (rec: { header: Uint8Array; body: Uint8Array }, key: Uint8Array, plaintextHex: string, sigLabel: string, th: Uint8Array, signedHex: string, party: CaseVector['inputs']['initiator']): void => {
    const pt = p.aead(aead, key).open(new Uint8Array(12), rec.header, rec.body);
    assert.ok(pt !== null, `${sigLabel}: opens`);
    eqHex(pt, plaintextHex, `${sigLabel}: plaintext`);
    eqHex(p.aead(aead, key).seal(new Uint8Array(12), rec.header, pt), toHex(rec.body), `${sigLabel}: reseal`);
    const [algId, pk, identify, sig] = decodeCbor(pt, 16_384) as [number, Uint8Array, Uint8Array, Uint8Array];
    const alg: SigAlg = party.sig_alg;
    assert.equal(algId, SIG_IDS[alg]);
    eqHex(pk, party.public_key, `${sigLabel}: public key`);
    eqHex(identify, party.identify, `${sigLabel}: identify`);
    const signed = concatBytes(utf8(sigLabel), th, sha3(encodeCbor([algId, pk, identify])));
    eqHex(signed, signedHex, `${sigLabel}: signed data`);
    assert.ok(p.verify(alg, pk, signed, sig), `${sigLabel}: native signature verification`);
    // Ed25519 is deterministic everywhere: the native signer reproduces the signature.
    if (alg === 'ed25519') eqHex(p.signingKey(alg, h(party.private_key)).sign(signed), toHex(sig), `${sigLabel}: ed25519 signature`);
  };
  const ar = record(c.records.auth_r, 3);
  auth(ar, hsR2I, decoded.auth_r_plaintext, 'pqnet/1 auth-r', th2, derived.auth_r_signed_data, inputs.responder);
  const th3 = sha3(label, hi.raw, hr.raw, ar.raw);
  eqHex(th3, derived.th3, 'th3');
  const ai = record(c.records.auth_i, 4);
  auth(ai, hsI2R, decoded.auth_i_plaintext, 'pqnet/1 auth-i', th3, derived.auth_i_signed_data, inputs.initiator);

  // Application keys.
  const th4 = sha3(label, hi.raw, hr.raw, ar.raw, ai.raw);
  eqHex(th4, derived.th4, 'th4');
  const i2r = hkdf(ikm, th4, 'pqnet/1 app i->r');
  const r2i = hkdf(ikm, th4, 'pqnet/1 app r->i');
  eqHex(i2r, derived.app_key_i2r, 'app i->r');
  eqHex(r2i, derived.app_key_r2i, 'app r->i');
  eqHex(hkdf(ikm, th4, 'pqnet/1 session id'), derived.session_id, 'session id');
  assert.equal(derived.initiator_tx_key, derived.app_key_i2r);
  assert.equal(derived.responder_rx_key, derived.app_key_i2r);
  assert.equal(derived.responder_tx_key, derived.app_key_r2i);
  assert.equal(derived.initiator_rx_key, derived.app_key_r2i);
  const rekey = (k: Uint8Array): Uint8Array => hkdf(k, new Uint8Array(0), 'pqnet/1 rekey');
  eqHex(rekey(i2r), derived.rekey_i2r_generation_1, 'rekey i->r');
  eqHex(rekey(r2i), derived.rekey_r2i_generation_1, 'rekey r->i');

  // Frames, opened across the rekey: nonce = 4 zero bytes || u64be(counter), aad = length prefix.
  const open = (frames: FrameVector[], first: Uint8Array): void => {
    const stream = concatBytes(...frames.map((f) => h(f.frame)));
    let key = first;
    let counter = 0;
    let generation = 0;
    let off = 0;
    for (const f of frames) {
      const len = new DataView(stream.buffer, stream.byteOffset + off).getUint32(0);
      assert.ok(len >= 8 + 16 && len <= 65_536 + 16, 'length within [24, 65552]');
      const prefix = stream.subarray(off, off + 4);
      const sealed = stream.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      eqHex(key, f.key, 'frame key');
      assert.equal(generation, f.key_generation);
      assert.equal(counter, f.counter);
      const nonce = concatBytes(new Uint8Array(4), u64BE(counter));
      eqHex(nonce, f.nonce, 'frame nonce');
      const pt = p.aead(aead, key).open(nonce, prefix, sealed);
      assert.ok(pt !== null, 'frame opens');
      const [channel, msgHi, msgLo, s0, s1, s2, s3, flags] = pt.subarray(0, 8);
      assert.equal(flags! & ~0x03, 0, 'reserved flag bits are zero');
      assert.deepEqual(
        [channel, (msgHi! << 8) | msgLo!, new DataView(Uint8Array.of(s0!, s1!, s2!, s3!).buffer).getUint32(0), flags],
        [f.channel, f.msg_id, f.seq, f.flags],
      );
      eqHex(pt.subarray(0, 8), f.header, 'frame header');
      eqHex(pt.subarray(8), f.chunk, 'frame chunk');
      eqHex(u32BE(pt.length + 16), f.length_prefix, 'length prefix');
      counter++;
      if ((flags! & FLAG_REKEY) !== 0) {
        key = rekey(key);
        counter = 0;
        generation++;
      }
    }
    assert.equal(off, stream.length);
  };
  open(c.frames.i2r, i2r);
  open(c.frames.r2i, r2i);

  // RETRY: the echoed cookie is the RETRY's cookie; the cookie binds the HELLO_I digest.
  if (c.retry !== undefined) {
    const rt = record(c.retry.retry, 6);
    assert.deepEqual(decodeCbor(rt.body, 128), [h(c.retry.cookie)]);
    assert.equal(decoded.hello_i.cookie, c.retry.cookie);
    const first = decodeCbor(record(c.retry.hello_i_without_cookie, 1).body, 2_048) as unknown[];
    assert.deepEqual([...first.slice(0, 8), h(c.retry.cookie)], helloI, 'second HELLO_I = first with the cookie');
    eqHex(sha3(encodeCbor([...helloI.slice(0, 8), new Uint8Array(0)])), c.retry.hello_digest, 'hello digest');
    const remote = utf8(c.retry.remote_address);
    const issuedAt = u64BE(c.retry.now_ms);
    const mac = p.hmacSha3_256(h(c.retry.cookie_secret), concatBytes(utf8('pqnet/1 cookie'), issuedAt, u32BE(remote.length).subarray(2), remote, h(c.retry.hello_digest)));
    eqHex(concatBytes(issuedAt, mac), c.retry.cookie, 'recommended cookie format');
  }
}

for (const c of vectors.cases) {
  test(`(ii) native provider verifies case ${c.name} independently`, () => {
    // pqnet requires Node >= 24.7; without native ML-KEM/ML-DSA this must fail, not skip.
    assert.ok(isNativeAvailable(), 'node:crypto has ML-KEM-768 and ML-DSA-65');
    verifyNative(nativeProvider, c);
  });
}

test('(ii) reject example decodes to its wire code', () => {
  const rec = record(vectors.reject_example.reject, 5);
  assert.deepEqual(decodeCbor(rec.body, 64), [vectors.reject_example.wire_code]);
});

// ---------------------------------------------------------------- (iii) freshness

test('(iii) the committed vectors are what the generator produces today', () => {
  const fresh = serializeVectors(buildVectors());
  assert.deepEqual(JSON.parse(fresh), vectors, 'regenerate with: node_modules/.bin/node test/vectors/generate.ts');
  assert.equal(fresh, committed);
});
