/**
 * Evil peers for the Node tests: raw clients that complete the real secure
 * handshake against a listening `Node` (transport.dial + Handshake.initiate +
 * runHandshake, so the raw ByteStream stays at hand for bytes below the frame
 * layer), put a MuxConnection over the session and then misbehave as the test
 * asks. Every client made through an `Evils` is destroyed by `cleanup()`.
 */
import { SystemClock } from '../../src/core/clock.ts';
import { isPqnetError, PqnetError, type Reason } from '../../src/core/errors.ts';
import { makeLimits, type Limits } from '../../src/core/limits.ts';
import { systemRandom } from '../../src/core/random.ts';
import { MuxConnection } from '../../src/mux/connection.ts';
import type { InboundMessage } from '../../src/mux/mux.ts';
import type { Node } from '../../src/node/node.ts';
import { encodeIdentify, Hello, HelloAck, HelloStatus, PEER_MESSAGES, PEER_PROTOCOL_VERSION } from '../../src/peer/messages.ts';
import { Handshake } from '../../src/secure/handshake.ts';
import type { SecureConfig } from '../../src/secure/listener.ts';
import { compilePolicy, DEFAULT_POLICY } from '../../src/secure/policy.ts';
import { getProvider } from '../../src/secure/providers.ts';
import { runHandshake, type SecureSession } from '../../src/secure/session.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import type { ByteStream } from '../../src/transport/types.ts';
import { createRegistry } from '../../src/wire/messages.ts';
import type { MessageRegistry, MessageType } from '../../src/wire/registry.ts';
import { Block, Bulk, Extra, Header, Note, Tx, Vote } from '../mux/_types.ts';
import { testIdentity } from '../secure/_drive.ts';
import { rawConnect, type RawClient } from '../secure/_evil.ts';
import { CHAIN, until } from './_nodes.ts';

/** The application types of test/mux/_types.ts an evil peer can send (and the node may register). */
export const TEST_TYPES: readonly MessageType<unknown>[] = [Vote, Block, Tx, Bulk, Note, Header, Extra] as MessageType<unknown>[];

export interface EvilOptions {
  /** Identity name (testIdentity, ML-DSA-65): the same name is the same peer-id. */
  readonly name: string;
  /** Chain id of the secure handshake (default CHAIN, the nodes' chain). */
  readonly chainId?: number;
  /** Protocols announced in identify (what the node negotiates from). */
  readonly protocols?: readonly string[];
  /** Protocols our own mux lets us send (default: `protocols`); lying here is how a peer sends what was not negotiated. */
  readonly sendProtocols?: readonly string[];
  /** Message types registered besides PEER_MESSAGES and TEST_TYPES (e.g. ones the node does not know). */
  readonly types?: readonly MessageType<unknown>[];
  /** Answer the node's HELLO with HelloAck OK (default true). */
  readonly autoAck?: boolean;
  readonly limits?: Partial<Limits>;
  /** Raw identify bytes sent in AUTH instead of a valid record. */
  readonly identify?: Uint8Array;
}

export interface HelloFields {
  readonly version?: number;
  readonly chainId?: number;
  readonly height?: number;
  readonly capabilities?: number;
  readonly timestampMs?: number;
}

export interface Evil {
  readonly peerId: string;
  /** The raw transport stream under the session: writes here bypass the frame layer. */
  readonly stream: ByteStream;
  readonly session: SecureSession;
  readonly conn: MuxConnection;
  /** Every message the node sent us (HELLO, HelloAck, ...), in order. */
  readonly inbound: InboundMessage[];
  /** Resolves with the reason our connection closed (REMOTE_CLOSED + details.remoteReason for a GOODBYE). */
  readonly closed: Promise<PqnetError>;
  readonly closeReason: PqnetError | undefined;
  /** Send our HELLO (defaults: a valid one for CHAIN, timestamped now). */
  hello(fields?: HelloFields): void;
  /** Queue a message through our mux; resolves with the error if it failed (never rejects). */
  send<T>(type: MessageType<T>, value: T): Promise<PqnetError | undefined>;
  destroy(): void;
}

/** The reason the remote gave in its GOODBYE, if `e` is one. */
export function remoteReason(e: PqnetError | undefined): Reason | undefined {
  return e?.code === 'REMOTE_CLOSED' ? (e.details?.remoteReason as Reason | undefined) : undefined;
}

export function evilRegistry(extra: readonly MessageType<unknown>[] = []): MessageRegistry {
  const r = createRegistry();
  for (const t of [...PEER_MESSAGES, ...TEST_TYPES, ...extra]) r.register(t as MessageType<unknown>);
  return r;
}

/** A SecureConfig for the evil identity `name`, with an identify blob. */
export function evilConfig(o: EvilOptions): SecureConfig {
  const provider = getProvider();
  return {
    provider,
    random: systemRandom,
    clock: new SystemClock(),
    identity: testIdentity(o.name, 'ml-dsa-65', provider),
    chainId: o.chainId ?? CHAIN,
    policy: compilePolicy(DEFAULT_POLICY, provider),
    limits: makeLimits(o.limits),
    identify: o.identify ?? encodeIdentify({ listenAddresses: [], agent: `evil/${o.name}`, protocols: [...(o.protocols ?? [])] }),
    registry: evilRegistry(o.types),
  };
}

const transport = new TcpTransport();

export class Evils {
  readonly #evils: Evil[] = [];
  readonly #raw: RawClient[] = [];

  /** Complete the secure handshake with the node at `address` and start a mux; nothing else is sent. */
  async connect(address: string, o: EvilOptions): Promise<Evil> {
    const cfg = evilConfig(o);
    const stream = await transport.dial(address);
    let session: SecureSession;
    try {
      session = await runHandshake(stream, Handshake.initiate(cfg, cfg.clock.now()), cfg);
    } catch (e) {
      stream.destroy();
      throw e;
    }
    const conn = new MuxConnection(session, { registry: cfg.registry!, limits: cfg.limits, clock: cfg.clock });
    conn.setNegotiated(o.sendProtocols ?? o.protocols ?? []);
    const inbound: InboundMessage[] = [];
    let closeReason: PqnetError | undefined;
    const closed = new Promise<PqnetError>((resolve) =>
      conn.once('close', (r) => {
        closeReason = r;
        resolve(r);
      }),
    );
    const send = <T>(type: MessageType<T>, value: T): Promise<PqnetError | undefined> =>
      conn.send(type, value).then(
        () => undefined,
        (e: unknown) => (isPqnetError(e) ? e : new PqnetError('INTERNAL', String(e))),
      );
    conn.start((msg) => {
      inbound.push(msg);
      if (msg.type.id === Hello.id && o.autoAck !== false) void send(HelloAck, [HelloStatus.OK, Date.now()]);
    });
    const evil: Evil = {
      peerId: cfg.identity.peerId.toString(),
      stream,
      session,
      conn,
      inbound,
      closed,
      get closeReason() {
        return closeReason;
      },
      hello: (f = {}) =>
        void send(Hello, [f.version ?? PEER_PROTOCOL_VERSION, f.chainId ?? CHAIN, f.height ?? 0, f.capabilities ?? 0, f.timestampMs ?? Date.now()]),
      send,
      destroy: () => {
        conn.destroy(new PqnetError('CLOSED', 'test cleanup'));
        stream.destroy();
      },
    };
    this.#evils.push(evil);
    return evil;
  }

  /** Connect, send a valid HELLO (plus `hello` overrides) and wait until `node` holds us active. */
  async active(node: Node, o: EvilOptions, hello: HelloFields = {}): Promise<Evil> {
    const evil = await this.connect(node.listenAddresses[0]!, o);
    evil.hello(hello);
    await until(() => node.peer(evil.peerId)?.state === 'active' || evil.closeReason !== undefined, `${o.name} active`);
    if (evil.closeReason !== undefined) throw evil.closeReason;
    return evil;
  }

  /** A plain TCP connection that sends nothing. */
  async raw(address: string): Promise<RawClient> {
    const c = await rawConnect(address);
    this.#raw.push(c);
    return c;
  }

  /**
   * A plain TCP connection that sends a genuine HELLO_I for identity `name` and
   * records what comes back: a HELLO_R means the listener ran the handshake.
   */
  async rawHelloI(address: string, name: string): Promise<RawClient> {
    const cfg = evilConfig({ name });
    const c = await this.raw(address);
    const hs = Handshake.initiate(cfg, cfg.clock.now());
    for (let b = hs.pollTransmit(); b !== undefined; b = hs.pollTransmit()) c.socket.write(b);
    return c;
  }

  cleanup(): void {
    for (const e of this.#evils.splice(0)) e.destroy();
    for (const c of this.#raw.splice(0)) c.socket.destroy();
  }
}
