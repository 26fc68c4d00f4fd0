/**
 * The pqnet handshake as a sans-I/O state machine (docs/spec/handshake.md).
 *
 * Theory of operation. Bytes from the transport go in through `receive(bytes,
 * now)`; bytes to send come out of `pollTransmit()`; the deadline comes out of
 * `pollTimeout()` and is fed back through `handleTimeout(now)`. Nothing here
 * touches a socket, a timer or the wall clock. `status` moves from
 * 'in-progress' to 'complete' (then `result()` holds the session keys) or to
 * 'failed' (then `error` holds the reason; a REJECT may still be waiting in
 * `pollTransmit()` and should be flushed before closing).
 *
 *   I -> R  HELLO_I   version, chain_id, policy_root, offers, nonce_I, ephemeral keys [, cookie]
 *   R -> I  RETRY     cookie                       (only under load; I resends HELLO_I with it)
 *   R -> I  HELLO_R   chosen kem/aead, nonce_R, ephemeral X25519 key, ML-KEM ciphertext
 *   R -> I  AUTH_R    AEAD_hsR{alg, pubkey, identify, sig_R(th2)}
 *   I -> R  AUTH_I    AEAD_hsI{alg, pubkey, identify, sig_I(th3)}
 *
 * States (initiator): await-hello-r -> await-auth-r -> complete
 * States (responder): await-hello-i -> await-auth-i -> complete
 * Any state -> failed. Each step computes on locals and commits them only when
 * every check passed; a failure tells the remote nothing (no REJECT), except the
 * plaintext configuration mismatches that REJECT exists for.
 */
import { concatBytes, equalBytes, wipe } from '../core/bytes.ts';
import { isPqnetError, PqnetError, Reasons, reasonFromWire, type Reason } from '../core/errors.ts';
import { HANDSHAKE_NONCE_BYTES, MAX_IDENTIFY_BYTES, PROTOCOL_VERSION, type Limits } from '../core/limits.ts';
import type { Random } from '../core/random.ts';
import { encodeCbor } from '../wire/cbor.ts';
import {
  AEAD_IDS,
  aeadFromId,
  KEM_IDS,
  kemFromId,
  kemUsesMlKem,
  kemUsesX25519,
  SIG_IDS,
  sigFromId,
  SIG_SIZES,
  type AeadAlg,
  type KemAlg,
  type SigAlg,
} from './algorithms.ts';
import type { CookieJar } from './cookie.ts';
import { AUTH_I_LABEL, AUTH_R_LABEL, authSignedData, deriveKeySchedule, deriveSessionKeys, HS_NONCE, transcriptHash, type KeySchedule } from './handshake-keys.ts';
import {
  AnyArraySchema,
  AuthSchema,
  decodeBody,
  encodeRecord,
  HelloISchema,
  HelloRSchema,
  RECORD_CAPS,
  RECORD_NAMES,
  recordHeader,
  RecordReader,
  RecordType,
  RejectSchema,
  RetrySchema,
  type HandshakeRecord,
  type HelloI,
} from './handshake-records.ts';
import { PeerId, type Identity } from './identity.ts';
import type { CompiledPolicy } from './policy.ts';
import type { CryptoProvider, MlKemKeyPair, X25519KeyPair } from './provider.ts';


export type Role = 'initiator' | 'responder';
export type HandshakeStatus = 'in-progress' | 'complete' | 'failed';

export interface HandshakeConfig {
  readonly provider: CryptoProvider;
  readonly random: Random;
  readonly identity: Identity;
  readonly chainId: number;
  readonly policy: CompiledPolicy;
  readonly limits: Limits;
  /** Opaque identify data for the remote (listen addresses, agent...), at most MAX_IDENTIFY_BYTES. */
  readonly identify?: Uint8Array;
  /** Protocol version to speak; tests use it to provoke a mismatch. */
  readonly version?: number;
}

export interface InitiatorConfig extends HandshakeConfig {
  /** Fail with HS_PEER_ID_MISMATCH unless the responder proves this identity. */
  readonly expectedPeerId?: PeerId;
  /** KEM offers, most preferred first (default: the policy's order). */
  readonly kemOffers?: readonly KemAlg[];
  /** AEAD offers, most preferred first (default: the policy's order). */
  readonly aeadOffers?: readonly AeadAlg[];
}

export interface ResponderConfig extends HandshakeConfig {
  /** Transport address of the initiator, bound into retry cookies. */
  readonly remoteAddress: string;
  readonly cookies?: CookieJar;
  /** Whether this HELLO_I must carry a valid cookie (asked once per HELLO_I). */
  readonly requireCookie?: () => boolean;
}

export interface RemoteIdentity {
  readonly alg: SigAlg;
  readonly publicKey: Uint8Array;
  readonly peerId: PeerId;
  readonly identify: Uint8Array;
}

export interface HandshakeResult {
  readonly role: Role;
  readonly kem: KemAlg;
  readonly aead: AeadAlg;
  readonly remote: RemoteIdentity;
  readonly txKey: Uint8Array;
  readonly rxKey: Uint8Array;
  /** Same on both sides; unique per connection (channel binding). */
  readonly sessionId: Uint8Array;
  readonly transcriptHash: Uint8Array;
  /** Bytes received after the last handshake record (the first frames). */
  readonly leftover: Uint8Array;
  /** Retry round trips taken. */
  readonly retries: number;
}

type State = 'await-hello-r' | 'await-auth-r' | 'await-hello-i' | 'await-auth-i' | 'complete' | 'failed';


/** Local misconfiguration, refused with INVALID_ARGUMENT before any connection uses it. */
export function validateHandshakeConfig(cfg: HandshakeConfig & Partial<Pick<InitiatorConfig, 'kemOffers' | 'aeadOffers'>>): void {
  if ((cfg.identify?.length ?? 0) > MAX_IDENTIFY_BYTES) throw new PqnetError('INVALID_ARGUMENT', `identify exceeds ${MAX_IDENTIFY_BYTES} bytes`);
  if (!cfg.policy.sig.includes(cfg.identity.alg)) throw new PqnetError('INVALID_ARGUMENT', `local identity ${cfg.identity.alg} is not allowed by the policy`);
  if (!Number.isSafeInteger(cfg.chainId) || cfg.chainId < 0) throw new PqnetError('INVALID_ARGUMENT', `chain id ${cfg.chainId} is not an unsigned integer`);
  for (const k of cfg.kemOffers ?? []) if (!cfg.policy.kem.includes(k)) throw new PqnetError('INVALID_ARGUMENT', `KEM ${k} is not allowed by the policy`);
  for (const a of cfg.aeadOffers ?? []) if (!cfg.policy.aead.includes(a)) throw new PqnetError('INVALID_ARGUMENT', `AEAD ${a} is not allowed by the policy`);
  if (cfg.kemOffers?.length === 0 || cfg.aeadOffers?.length === 0) throw new PqnetError('INVALID_ARGUMENT', 'empty KEM or AEAD offer');
}

function badMessage(e: unknown): PqnetError {
  if (isPqnetError(e)) return e;
  return new PqnetError('HS_BAD_MESSAGE', e instanceof Error ? e.message : String(e), { cause: e });
}

export class Handshake {
  readonly role: Role;
  readonly #cfg: HandshakeConfig;
  readonly #initiator: InitiatorConfig | undefined;
  readonly #responder: ResponderConfig | undefined;
  readonly #reader = new RecordReader();
  readonly #deadline: number;
  /** Responder: HELLO_I must be in by this time (a connection that says nothing is cheap to hold). */
  readonly #helloDeadline: number;
  #state: State;
  #outbox: Uint8Array[] = [];
  #error: PqnetError | undefined;
  #result: HandshakeResult | undefined;
  #retries = 0;
  #retriesIssued = 0;
  #authRPending = false;

  // Initiator ephemeral state.
  #x25519: X25519KeyPair | undefined;
  #mlkem: MlKemKeyPair | undefined;
  #helloI: HelloI | undefined;
  // Transcript records in order, and the key schedule once HELLO_R is known.
  #transcript: Uint8Array[] = [];
  #schedule: KeySchedule | undefined;
  #kem: KemAlg | undefined;
  #aead: AeadAlg | undefined;
  #remote: RemoteIdentity | undefined;

  private constructor(role: Role, cfg: HandshakeConfig, now: number, initiator?: InitiatorConfig, responder?: ResponderConfig) {
    validateHandshakeConfig(cfg);
    this.role = role;
    this.#cfg = cfg;
    this.#initiator = initiator;
    this.#responder = responder;
    this.#deadline = now + cfg.limits.handshakeTimeoutMs;
    this.#helloDeadline = role === 'responder' ? now + Math.min(cfg.limits.helloTimeoutMs, cfg.limits.handshakeTimeoutMs) : this.#deadline;
    this.#state = role === 'initiator' ? 'await-hello-r' : 'await-hello-i';
  }

  /** Start as initiator: HELLO_I is ready in `pollTransmit()` at once. */
  static initiate(cfg: InitiatorConfig, now: number): Handshake {
    const hs = new Handshake('initiator', cfg, now, cfg, undefined);
    hs.#startInitiator();
    return hs;
  }

  static respond(cfg: ResponderConfig, now: number): Handshake {
    return new Handshake('responder', cfg, now, undefined, cfg);
  }

  get status(): HandshakeStatus {
    return this.#state === 'complete' ? 'complete' : this.#state === 'failed' ? 'failed' : 'in-progress';
  }

  get state(): State {
    return this.#state;
  }

  get error(): PqnetError | undefined {
    return this.#error;
  }

  /** RETRY records this responder sent (at most one per connection). */
  get retriesIssued(): number {
    return this.#retriesIssued;
  }

  /** The remote identity once it is authenticated. */
  get remote(): RemoteIdentity | undefined {
    return this.#remote;
  }

  result(): HandshakeResult {
    if (this.#result === undefined) throw new PqnetError('INVALID_ARGUMENT', `handshake is ${this.status}`);
    return this.#result;
  }

  /**
   * The next record to send. Poll until undefined after every `receive`: a
   * responder returns HELLO_R first and signs AUTH_R only on the next poll, so
   * writing each record as it comes lets the network work while we sign.
   */
  pollTransmit(): Uint8Array | undefined {
    if (this.#outbox.length === 0 && this.#authRPending && this.status === 'in-progress') {
      try {
        this.#sendPendingAuthR();
      } catch (e) {
        this.#fail(badMessage(e));
      }
    }
    return this.#outbox.shift();
  }

  pollTimeout(): number | undefined {
    if (this.status !== 'in-progress') return undefined;
    return this.#state === 'await-hello-i' ? this.#helloDeadline : this.#deadline;
  }

  handleTimeout(now: number): void {
    const deadline = this.pollTimeout();
    if (deadline !== undefined && now >= deadline) this.#fail(new PqnetError('HS_DEADLINE', `still in ${this.#state}`));
  }

  /** Abort from outside (transport closed, node stopping). */
  abort(reason: PqnetError): void {
    if (this.status === 'in-progress') this.#fail(reason);
  }

  /**
   * Feed received bytes. Nothing a peer sends makes this throw: a failure moves
   * to status 'failed'. (Feeding a completed handshake is local misuse and throws.)
   */
  receive(bytes: Uint8Array, now: number): void {
    if (this.status !== 'in-progress') {
      if (this.status === 'complete') throw new PqnetError('INVALID_ARGUMENT', 'handshake already complete; feed frames to the session');
      return;
    }
    const deadline = this.pollTimeout();
    if (deadline !== undefined && now >= deadline) {
      this.handleTimeout(now);
      return;
    }
    this.#reader.push(bytes);
    try {
      for (;;) {
        if (this.status !== 'in-progress') break;
        const rec = this.#reader.next();
        if (rec === undefined) break;
        this.#dispatch(rec, now);
      }
    } catch (e) {
      this.#fail(badMessage(e));
    }
    if (this.#state === 'complete' && this.#result !== undefined && this.#reader.queue.length > 0) {
      this.#result = { ...this.#result, leftover: this.#reader.queue.drain() };
    }
  }

  #dispatch(rec: HandshakeRecord, now: number): void {
    // REJECT is unauthenticated: it is believed only before HELLO_R, when a
    // configuration mismatch is the only thing it can report.
    if (rec.type === RecordType.REJECT && this.#state === 'await-hello-r') {
      const [code] = decodeBody(RejectSchema, rec.body, RECORD_CAPS[5], 'REJECT');
      const remoteReason = reasonFromWire(code);
      throw new PqnetError('HS_REJECTED', `remote says ${remoteReason ?? `code ${code}`}`, { details: { remoteCode: code, remoteReason } });
    }
    const expected: Partial<Record<State, number[]>> = {
      'await-hello-r': [RecordType.HELLO_R, RecordType.RETRY],
      'await-auth-r': [RecordType.AUTH_R],
      'await-hello-i': [RecordType.HELLO_I],
      'await-auth-i': [RecordType.AUTH_I],
    };
    if (!(expected[this.#state] ?? []).includes(rec.type)) {
      throw new PqnetError('HS_UNEXPECTED_MESSAGE', `${RECORD_NAMES[rec.type]} in state ${this.#state}`);
    }
    switch (rec.type) {
      case RecordType.RETRY:
        return this.#onRetry(rec);
      case RecordType.HELLO_R:
        return this.#onHelloR(rec);
      case RecordType.AUTH_R:
        return this.#onAuthR(rec);
      case RecordType.HELLO_I:
        return this.#onHelloI(rec, now);
      case RecordType.AUTH_I:
        return this.#onAuthI(rec);
    }
  }

  #fail(e: PqnetError): void {
    this.#state = 'failed';
    this.#error = e;
    this.#wipeEphemeral();
  }

  #wipeEphemeral(): void {
    if (this.#schedule !== undefined) wipe(this.#schedule.ikm, this.#schedule.hsKeyI2R, this.#schedule.hsKeyR2I);
    this.#schedule = undefined;
    this.#x25519 = undefined;
    this.#mlkem = undefined;
  }

  // ---------------------------------------------------------------- initiator

  #startInitiator(): void {
    const cfg = this.#initiator!;
    const p = this.#cfg.provider;
    validateHandshakeConfig(cfg);
    const kems = cfg.kemOffers ?? cfg.policy.kem;
    const aeads = cfg.aeadOffers ?? cfg.policy.aead;
    // Fresh ephemeral keys for this connection only.
    const xSeed = kems.some(kemUsesX25519) ? cfg.random.bytes(32) : undefined;
    const kSeed = kems.some(kemUsesMlKem) ? cfg.random.bytes(64) : undefined;
    this.#x25519 = xSeed !== undefined ? p.x25519FromPrivate(xSeed) : undefined;
    this.#mlkem = kSeed !== undefined ? p.mlKem768FromSeed(kSeed) : undefined;
    wipe(xSeed, kSeed);
    this.#helloI = [
      cfg.version ?? PROTOCOL_VERSION,
      cfg.chainId,
      cfg.policy.root,
      kems.map((k) => KEM_IDS[k]),
      aeads.map((a) => AEAD_IDS[a]),
      cfg.random.bytes(HANDSHAKE_NONCE_BYTES),
      this.#x25519?.publicKey ?? new Uint8Array(0),
      this.#mlkem?.publicKey ?? new Uint8Array(0),
      new Uint8Array(0),
    ];
    this.#sendHelloI();
  }

  #sendHelloI(): void {
    const rec = encodeRecord(RecordType.HELLO_I, encodeCbor(this.#helloI));
    this.#transcript = [rec];
    this.#outbox.push(rec);
  }

  #onRetry(rec: HandshakeRecord): void {
    const [cookie] = decodeBody(RetrySchema, rec.body, RECORD_CAPS[6], 'RETRY');
    if (this.#retries >= this.#cfg.limits.maxRetries) throw new PqnetError('HS_RETRY_LOOP', `${this.#retries} retries`);
    this.#retries++;
    const h = this.#helloI!;
    this.#helloI = [h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], cookie];
    this.#sendHelloI();
  }

  #onHelloR(rec: HandshakeRecord): void {
    const p = this.#cfg.provider;
    const [version, kemId, aeadId, , xPk, ct] = decodeBody(HelloRSchema, rec.body, RECORD_CAPS[2], 'HELLO_R');
    const h = this.#helloI!;
    if (version !== h[0]) throw new PqnetError('HS_VERSION_MISMATCH', `responder speaks ${version}`);
    const kem = kemFromId(kemId);
    const aead = aeadFromId(aeadId);
    if (kem === undefined || !h[3].includes(kemId)) throw new PqnetError('HS_DOWNGRADE', `KEM id ${kemId} was not offered`);
    if (aead === undefined || !h[4].includes(aeadId)) throw new PqnetError('HS_DOWNGRADE', `AEAD id ${aeadId} was not offered`);
    if ((xPk.length > 0) !== kemUsesX25519(kem)) throw new PqnetError('HS_BAD_MESSAGE', `HELLO_R x25519 key does not fit ${kem}`);
    if ((ct.length > 0) !== kemUsesMlKem(kem)) throw new PqnetError('HS_BAD_MESSAGE', `HELLO_R ML-KEM ciphertext does not fit ${kem}`);
    const xSs = kemUsesX25519(kem) ? this.#x25519!.derive(xPk) : new Uint8Array(0);
    const kSs = kemUsesMlKem(kem) ? this.#mlkem!.decapsulate(ct) : new Uint8Array(0);
    const ikm = concatBytes(xSs, kSs);
    wipe(xSs, kSs);
    const transcript = [...this.#transcript, rec.raw];
    const schedule = deriveKeySchedule(p, ikm, transcriptHash(p, transcript));
    // Commit.
    this.#kem = kem;
    this.#aead = aead;
    this.#transcript = transcript;
    this.#schedule = schedule;
    this.#x25519 = undefined;
    this.#mlkem = undefined;
    this.#state = 'await-auth-r';
  }

  #onAuthR(rec: HandshakeRecord): void {
    const s = this.#schedule!;
    const remote = this.#openAuth(rec, s.hsKeyR2I, AUTH_R_LABEL, s.th2, 'AUTH_R');
    const cfg = this.#initiator!;
    if (remote.peerId.equals(cfg.identity.peerId)) throw new PqnetError('HS_SELF_CONNECT');
    if (cfg.expectedPeerId !== undefined && !remote.peerId.equals(cfg.expectedPeerId)) {
      throw new PqnetError('HS_PEER_ID_MISMATCH', `expected ${cfg.expectedPeerId.toString()}, got ${remote.peerId.toString()}`);
    }
    const transcript = [...this.#transcript, rec.raw];
    const th3 = transcriptHash(this.#cfg.provider, transcript);
    const authI = this.#sealAuth(RecordType.AUTH_I, s.hsKeyI2R, AUTH_I_LABEL, th3);
    transcript.push(authI);
    this.#remote = remote;
    this.#transcript = transcript;
    this.#outbox.push(authI);
    this.#complete();
  }

  // ---------------------------------------------------------------- responder

  #onHelloI(rec: HandshakeRecord, now: number): void {
    const cfg = this.#responder!;
    const p = this.#cfg.provider;
    const localVersion = cfg.version ?? PROTOCOL_VERSION;
    // The version is read before the schema check, so a future version whose
    // HELLO_I has another layout still gets a readable REJECT.
    const raw = decodeBody(AnyArraySchema, rec.body, RECORD_CAPS[1], 'HELLO_I');
    if (Number.isSafeInteger(raw[0]) && (raw[0] as number) >= 0 && raw[0] !== localVersion) {
      return this.#reject('HS_VERSION_MISMATCH', `initiator speaks ${raw[0]}, we speak ${localVersion}`);
    }
    let hello: HelloI;
    try {
      hello = HelloISchema.check(raw, 'HELLO_I');
    } catch (e) {
      throw new PqnetError('HS_BAD_MESSAGE', `HELLO_I: ${(e as Error).message}`, { cause: e });
    }
    const [, chainId, root, kemIds, aeadIds, , xPk, ek, cookie] = hello;
    if (chainId !== cfg.chainId) return this.#reject('HS_CHAIN_MISMATCH', `initiator is on chain ${chainId}, we are on ${cfg.chainId}`);
    if (!equalBytes(root, cfg.policy.root)) return this.#reject('HS_POLICY_MISMATCH');
    if (new Set(kemIds).size !== kemIds.length || new Set(aeadIds).size !== aeadIds.length) throw new PqnetError('HS_BAD_MESSAGE', 'duplicate offers');
    const offeredKems = kemIds.map(kemFromId);
    const offeredAeads = aeadIds.map(aeadFromId);
    if (offeredKems.some((k) => k === undefined || !cfg.policy.kem.includes(k))) return this.#reject('HS_POLICY_MISMATCH', 'KEM offer outside the policy');
    if (offeredAeads.some((a) => a === undefined || !cfg.policy.aead.includes(a))) return this.#reject('HS_POLICY_MISMATCH', 'AEAD offer outside the policy');
    const kems = offeredKems as KemAlg[];
    if ((xPk.length > 0) !== kems.some(kemUsesX25519)) throw new PqnetError('HS_BAD_MESSAGE', 'HELLO_I x25519 key does not fit its offers');
    if ((ek.length > 0) !== kems.some(kemUsesMlKem)) throw new PqnetError('HS_BAD_MESSAGE', 'HELLO_I ML-KEM key does not fit its offers');
    // Both sides hold the same policy (the roots matched) and every offer is in
    // it, so the initiator's first offer is acceptable: it wins.
    const kem = kems[0]!;
    const aead = (offeredAeads as AeadAlg[])[0]!;

    // Stateless retry: before any public-key work.
    if (cfg.cookies !== undefined && cfg.requireCookie?.() === true) {
      const digest = p.sha3_256(encodeCbor([...hello.slice(0, 8), new Uint8Array(0)]));
      if (cookie.length === 0) {
        if (this.#retriesIssued > 0) throw new PqnetError('HS_BAD_COOKIE', 'second HELLO_I without the cookie');
        this.#retriesIssued++;
        this.#outbox.push(encodeRecord(RecordType.RETRY, encodeCbor([cfg.cookies.issue(cfg.remoteAddress, digest, now)])));
        return;
      }
      if (!cfg.cookies.verify(cookie, cfg.remoteAddress, digest, now)) throw new PqnetError('HS_BAD_COOKIE');
    }

    const xSeed = kemUsesX25519(kem) ? cfg.random.bytes(32) : undefined;
    const x = xSeed !== undefined ? p.x25519FromPrivate(xSeed) : undefined;
    wipe(xSeed);
    const xSs = x !== undefined ? x.derive(xPk) : new Uint8Array(0);
    // With the portable provider the encapsulation message comes from `random`, so a
    // seeded Random reproduces the whole transcript (test vectors).
    const enc = kemUsesMlKem(kem) ? p.mlKem768Encapsulate(ek, p.deterministicEncapsulation ? cfg.random.bytes(32) : undefined) : undefined;
    const ikm = concatBytes(xSs, enc?.sharedSecret ?? new Uint8Array(0));
    wipe(xSs, enc?.sharedSecret);
    const helloR = encodeRecord(
      RecordType.HELLO_R,
      encodeCbor([localVersion, KEM_IDS[kem], AEAD_IDS[aead], cfg.random.bytes(HANDSHAKE_NONCE_BYTES), x?.publicKey ?? new Uint8Array(0), enc?.ciphertext ?? new Uint8Array(0)]),
    );
    const transcript = [rec.raw, helloR];
    const schedule = deriveKeySchedule(p, ikm, transcriptHash(p, transcript));
    // Commit. AUTH_R (the signature, the expensive part) is made when the caller
    // next polls for output, after HELLO_R is on its way: the initiator's
    // decapsulation then overlaps our signing.
    this.#kem = kem;
    this.#aead = aead;
    this.#schedule = schedule;
    this.#transcript = transcript;
    this.#outbox.push(helloR);
    this.#authRPending = true;
    this.#state = 'await-auth-i';
  }

  /** Sign and queue AUTH_R if HELLO_R went out without it. */
  #sendPendingAuthR(): void {
    if (!this.#authRPending) return;
    this.#authRPending = false;
    const s = this.#schedule!;
    const authR = this.#sealAuth(RecordType.AUTH_R, s.hsKeyR2I, AUTH_R_LABEL, s.th2);
    this.#transcript.push(authR);
    this.#outbox.push(authR);
  }

  #onAuthI(rec: HandshakeRecord): void {
    // AUTH_I cannot honestly precede AUTH_R; this keeps the transcript right if a
    // peer sends bytes early anyway.
    this.#sendPendingAuthR();
    const th3 = transcriptHash(this.#cfg.provider, this.#transcript);
    const remote = this.#openAuth(rec, this.#schedule!.hsKeyI2R, AUTH_I_LABEL, th3, 'AUTH_I');
    if (remote.peerId.equals(this.#cfg.identity.peerId)) throw new PqnetError('HS_SELF_CONNECT');
    this.#remote = remote;
    this.#transcript.push(rec.raw);
    this.#complete();
  }

  #reject(code: Reason, message?: string): void {
    this.#outbox.push(encodeRecord(RecordType.REJECT, encodeCbor([Reasons[code].wire])));
    this.#fail(new PqnetError(code, message));
  }

  // ---------------------------------------------------------------- shared

  #sealAuth(type: 3 | 4, key: Uint8Array, label: Uint8Array, th: Uint8Array): Uint8Array {
    const { provider, identity } = this.#cfg;
    const identify = this.#cfg.identify ?? new Uint8Array(0);
    const sig = identity.sign(authSignedData(provider, label, th, identity.alg, identity.publicKey, identify));
    const body = encodeCbor([SIG_IDS[identity.alg], identity.publicKey, identify, sig]);
    const sealedLength = body.length + 16;
    const header = recordHeader(type, sealedLength);
    const aead = provider.aead(this.#aead!, key);
    const sealed = aead.seal(HS_NONCE, header, body);
    aead.destroy();
    return concatBytes(header, sealed);
  }

  #openAuth(rec: HandshakeRecord, key: Uint8Array, label: Uint8Array, th: Uint8Array, what: string): RemoteIdentity {
    const { provider, policy } = this.#cfg;
    const aead = provider.aead(this.#aead!, key);
    const body = aead.open(HS_NONCE, rec.header, rec.body);
    aead.destroy();
    if (body === null) throw new PqnetError('HS_AUTH_FAILED', what);
    const [algId, publicKey, identify, sig] = decodeBody(AuthSchema, body, RECORD_CAPS[3], what);
    const alg = sigFromId(algId);
    if (alg === undefined || !policy.sig.includes(alg)) throw new PqnetError('HS_UNSUPPORTED_IDENTITY', `${what} identity algorithm id ${algId}`);
    if (publicKey.length !== SIG_SIZES[alg].publicKey) throw new PqnetError('HS_BAD_KEY', `${what} ${alg} public key of ${publicKey.length} bytes`);
    if (!provider.verify(alg, publicKey, authSignedData(provider, label, th, alg, publicKey, identify), sig)) {
      throw new PqnetError('HS_BAD_SIGNATURE', what);
    }
    return { alg, publicKey, identify, peerId: PeerId.fromPublicKey(alg, publicKey, provider) };
  }

  #complete(): void {
    const p = this.#cfg.provider;
    const s = this.#schedule!;
    const th4 = transcriptHash(p, this.#transcript);
    const { i2r, r2i, sessionId } = deriveSessionKeys(p, s.ikm, th4);
    const initiator = this.role === 'initiator';
    this.#result = {
      role: this.role,
      kem: this.#kem!,
      aead: this.#aead!,
      remote: this.#remote!,
      txKey: initiator ? i2r : r2i,
      rxKey: initiator ? r2i : i2r,
      sessionId,
      transcriptHash: th4,
      leftover: new Uint8Array(0),
      retries: this.#retries,
    };
    this.#state = 'complete';
    this.#wipeEphemeral();
  }
}
