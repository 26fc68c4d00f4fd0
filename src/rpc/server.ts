/**
 * The node's HTTP API (docs/API.md), on `node:http`:
 *
 *   GET  /metrics          Prometheus text (prom-client registry)
 *   GET  /health           health snapshot; 503 once the node is stopped
 *   GET  /p2p/info         identity, addresses, algorithms, versions
 *   GET  /p2p/peers        connections with scores, traffic and message counts by type
 *   GET  /p2p/bans         bans in force
 *   GET  /p2p/stats        totals: bytes, messages by type, rejects, disconnects, offenses, handshakes
 *   POST /p2p/connect      {addr, peerId?}                   bearer token
 *   POST /p2p/disconnect   {peerId}                          bearer token
 *   POST /p2p/ban          {peerId | address, durationMs?, note?}  bearer token
 *   POST /p2p/unban        {peerId | address}                bearer token
 *   GET  /sync/status      chain sync progress and counters (404 without sync)
 *   POST /chain/publish    {kind: blocks | txs, count, txsPerBlock?}  bearer token
 *   GET  /gossip/status    gossip parameters, topics, control, caches, peers (404 without gossip)
 *   POST /gossip/publish   {topic, data (base64)}                    bearer token
 *
 * Reads are open (the API binds to loopback unless configured with a token);
 * every action needs `Authorization: Bearer <token>`. Bodies are JSON, capped
 * at `maxBodyBytes` and validated with zod; every failure is a 4xx/5xx with
 * `{"error": {"code", "message"}}`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { isPqnetError, type PqnetError } from '../core/errors.ts';
import { isLoopbackHost } from '../core/ip.ts';
import { PROTOCOL_VERSION } from '../core/limits.ts';
import type { Logger } from '../node/log.ts';
import type { Node, PeerInfo } from '../node/node.ts';
import { PEER_PROTOCOL_VERSION } from '../peer/messages.ts';
import type { BanRecord } from '../peer/types.ts';
import type { SyncProgress } from '../sync/progress.ts';
import type { GossipApi } from './gossip.ts';
import type {
  BanJson, GossipPublishResponse, GossipStatusResponse, HealthResponse, InfoResponse, PeerJson, PublishRequest, PublishResponse, StatsResponse, SyncProgressJson, SyncStatusResponse,
} from './types.ts';

export const PQNET_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Longest ban an operator can ask for through the API (ten years). */
const MAX_BAN_MS = 10 * 365 * 24 * 3_600_000;
/** The API serves a handful of operators and one scraper; more sockets than this are refused. */
const MAX_CONNECTIONS = 64;

/** What the API reads and drives of chain sync, when the node runs it. */
export interface ChainApi {
  readonly name: string;
  progress(): SyncProgress;
  /** The engines' counters, by part (`headers`, `blocks`, and more). */
  status(): Record<string, unknown>;
  /** Produce `count` blocks or transactions and announce them (a development chain's producer). */
  publish(request: PublishRequest): Promise<PublishResponse>;
}

export interface ApiServerOptions {
  readonly node: Node;
  readonly chain?: ChainApi;
  /** Gossip, when the node runs it (src/rpc/gossip.ts builds this from a `Gossip`). */
  readonly gossip?: GossipApi;
  readonly metrics: Registry;
  readonly host: string;
  /** 0 picks a free port (see `address`). */
  readonly port: number;
  /** Bearer token for the POST actions. */
  readonly token: string;
  readonly maxBodyBytes: number;
  readonly log?: Logger;
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

type Handler = (req: IncomingMessage, body: unknown) => Promise<{ status?: number; body: unknown; type?: string }> | { status?: number; body: unknown; type?: string };

interface Route {
  readonly auth: boolean;
  readonly schema?: z.ZodType;
  readonly handler: Handler;
}

const PeerIdField = z.string().min(1).max(200);
const ConnectBody = z.strictObject({ addr: z.string().min(1).max(300), peerId: PeerIdField.optional() });
const DisconnectBody = z.strictObject({ peerId: PeerIdField });
const Target = { peerId: PeerIdField.optional(), address: z.string().min(1).max(100).optional() };
const oneTarget = (b: { peerId?: string | undefined; address?: string | undefined }): boolean => (b.peerId === undefined) !== (b.address === undefined);
const TARGET_MESSAGE = { message: 'give exactly one of peerId and address' };
const BanBody = z
  .strictObject({ ...Target, durationMs: z.int().positive().max(MAX_BAN_MS).optional(), note: z.string().max(200).optional() })
  .refine(oneTarget, TARGET_MESSAGE);
const UnbanBody = z.strictObject(Target).refine(oneTarget, TARGET_MESSAGE);
/** Most blocks or transactions one publish call makes. */
export const MAX_PUBLISH = 100_000;
const PublishBody = z.strictObject({
  kind: z.enum(['blocks', 'txs']),
  count: z.int().min(1).max(MAX_PUBLISH),
  txsPerBlock: z.int().min(0).max(100_000).optional(),
});
/** Standard base64 with padding; the body cap (`maxBodyBytes`) bounds its length. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const GossipPublishBody = z.strictObject({
  topic: z.string().min(1).max(64),
  data: z.string().regex(BASE64, 'expected base64 (standard alphabet, padded)'),
});
/** How the router's refusals of a local publish are answered. */
const GOSSIP_PUBLISH_STATUS: Readonly<Record<string, number>> = { GOSSIP_UNKNOWN_TOPIC: 404, GOSSIP_OVERSIZE: 413, GOSSIP_DUPLICATE: 409 };

export class ApiServer {
  readonly #server: Server;
  readonly #o: ApiServerOptions;
  readonly #routes = new Map<string, Map<string, Route>>();
  readonly #tokenDigest: Buffer;
  readonly #loopback: boolean;
  readonly #startedAt = Date.now();
  #address = '';

  private constructor(o: ApiServerOptions) {
    this.#o = o;
    this.#tokenDigest = digest(o.token);
    this.#loopback = isLoopbackHost(o.host);
    this.#server = createServer({ requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => void this.#serve(req, res));
    this.#server.maxConnections = MAX_CONNECTIONS;
    this.#routes.set('/metrics', new Map([['GET', { auth: false, handler: () => this.#metrics() }]]));
    this.#get('/health', () => this.#health());
    this.#get('/p2p/info', () => ({ body: this.#info() }));
    this.#get('/p2p/peers', () => ({ body: { peers: this.#o.node.peers().map((p) => this.#peerJson(p)) } }));
    this.#get('/p2p/bans', () => ({ body: { bans: this.#o.node.bans().map(banJson) } }));
    this.#get('/p2p/stats', () => ({ body: this.#stats() }));
    this.#post('/p2p/connect', ConnectBody, (b) => this.#connect(b));
    this.#post('/p2p/disconnect', DisconnectBody, (b) => this.#disconnect(b));
    this.#post('/p2p/ban', BanBody, (b) => this.#ban(b));
    this.#post('/p2p/unban', UnbanBody, (b) => this.#unban(b));
    this.#get('/sync/status', () => ({ body: this.#syncStatus() }));
    this.#post('/chain/publish', PublishBody, (b) => this.#publish(b));
    this.#get('/gossip/status', () => ({ body: this.#gossipStatus() }));
    this.#post('/gossip/publish', GossipPublishBody, (b) => this.#gossipPublish(b));
  }

  /** Bind and serve; rejects (with the socket error, e.g. EADDRINUSE) if the address cannot be bound. */
  static async start(o: ApiServerOptions): Promise<ApiServer> {
    const api = new ApiServer(o);
    await new Promise<void>((resolve, reject) => {
      api.#server.once('error', reject);
      api.#server.listen(o.port, o.host, () => {
        api.#server.off('error', reject);
        const a = api.#server.address() as AddressInfo;
        api.#address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
        resolve();
      });
    });
    return api;
  }

  /** `HOST:PORT` actually bound (IPv6 in brackets). */
  get address(): string {
    return this.#address;
  }

  get url(): string {
    return `http://${this.address}`;
  }

  /** Stop accepting, end idle keep-alive sockets, and wait for requests in progress. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    // A request still running (a connect waiting on its handshake) gets at most this long.
    const t = setTimeout(() => this.#server.closeAllConnections(), 2_000);
    await closed;
    clearTimeout(t);
  }

  // ---- Routing ----

  #get(path: string, handler: () => { status?: number; body: unknown }): void {
    this.#routes.set(path, new Map([['GET', { auth: false, handler }]]));
  }

  #post<T>(path: string, schema: z.ZodType<T>, handler: (body: T) => Promise<{ status?: number; body: unknown }> | { status?: number; body: unknown }): void {
    this.#routes.set(path, new Map([['POST', { auth: true, schema, handler: (_req, body) => handler(body as T) }]]));
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let status = 500;
    try {
      this.#checkHost(req);
      const url = parseUrl(req.url);
      const methods = this.#routes.get(url.pathname);
      if (methods === undefined) throw new HttpError(404, 'NOT_FOUND', `no such endpoint: ${url.pathname}`);
      const method = req.method === 'HEAD' ? 'GET' : (req.method ?? '');
      const route = methods.get(method);
      if (route === undefined) {
        const allow = [...methods.keys()].join(', ');
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method ?? '?'} ${url.pathname}: allowed ${allow}`, { Allow: allow });
      }
      if (route.auth) this.#authorize(req);
      let body: unknown;
      if (route.schema !== undefined) body = parseBody(route.schema, await this.#readBody(req));
      const out = await route.handler(req, body);
      status = out.status ?? 200;
      if (out.type !== undefined) send(res, status, out.type, String(out.body));
      else sendJson(res, status, out.body);
    } catch (e) {
      const err = toHttpError(e);
      status = err.status;
      if (status >= 500) this.#o.log?.error({ err: e, path: req.url }, 'api: request failed');
      for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
      // An oversized or unread body: do not keep the socket for more of it.
      if (status === 413 || (status < 500 && !req.complete)) res.setHeader('Connection', 'close');
      sendJson(res, status, { error: { code: err.code, message: err.message } });
    } finally {
      this.#o.log?.debug({ method: req.method, path: req.url, status, ms: Math.round((performance.now() - started) * 100) / 100 }, 'api request');
    }
  }

  /**
   * DNS rebinding: a web page can point a name of its own at 127.0.0.1 and read a
   * loopback API through the operator's browser. On a loopback bind, only requests
   * addressed to an IP literal or `localhost` are served.
   */
  #checkHost(req: IncomingMessage): void {
    if (!this.#loopback) return;
    const host = req.headers.host ?? '';
    const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '');
    if (name.toLowerCase() === 'localhost' || isIP(name) !== 0) return;
    throw new HttpError(403, 'FORBIDDEN_HOST', `Host ${JSON.stringify(host.slice(0, 100))} is not served: the API answers requests to an IP address or localhost`);
  }

  #authorize(req: IncomingMessage): void {
    const h = req.headers.authorization;
    const m = h === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(h);
    const challenge = { 'WWW-Authenticate': 'Bearer realm="pqnet"' };
    if (m === null) throw new HttpError(401, 'UNAUTHORIZED', 'this action needs Authorization: Bearer <api token>', challenge);
    // Fixed-length digests: the comparison takes the same time whatever the guess.
    if (!timingSafeEqual(digest(m[1]!), this.#tokenDigest)) throw new HttpError(401, 'UNAUTHORIZED', 'wrong API token', challenge);
  }

  async #readBody(req: IncomingMessage): Promise<unknown> {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\s*(;|$)/i.test(type)) throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `expected Content-Type: application/json, got ${JSON.stringify(type.slice(0, 80))}`);
    const max = this.#o.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) throw new HttpError(413, 'BODY_TOO_LARGE', `body of ${declared} bytes > ${max}`);
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) throw new HttpError(413, 'BODY_TOO_LARGE', `body larger than ${max} bytes`);
      parts.push(chunk);
    }
    try {
      return JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
    } catch (e) {
      throw new HttpError(400, 'BAD_REQUEST', `body is not JSON: ${(e as Error).message}`);
    }
  }

  // ---- Reads ----

  async #metrics(): Promise<{ body: string; type: string }> {
    return { body: await this.#o.metrics.metrics(), type: this.#o.metrics.contentType };
  }

  #health(): { status: number; body: HealthResponse } {
    const h = this.#o.node.health();
    const { scores, ...rest } = h;
    const gossip = h.running ? (this.#o.gossip?.health() ?? null) : null;
    const body: HealthResponse = {
      status: !h.running ? 'stopped' : gossip?.status === 'degraded' ? 'degraded' : 'ok',
      uptimeMs: Date.now() - this.#startedAt,
      peerId: rest.peerId,
      listening: rest.listening,
      peers: rest.peers,
      inbound: rest.inbound,
      outbound: rest.outbound,
      handshakesInProgress: rest.handshakesInProgress,
      queuedBytes: rest.queuedBytes,
      scores: { greylisted: scores.greylisted, trusted: scores.trusted, lowest: scores.lowest ?? null },
      bans: rest.bans,
      peerBook: rest.peerBook,
      rejects: rest.rejects,
      disconnects: rest.disconnects,
      sync: this.#o.chain === undefined ? null : progressJson(this.#o.chain.progress()),
      gossip,
    };
    return { status: h.running ? 200 : 503, body };
  }

  #chain(): ChainApi {
    if (this.#o.chain === undefined) throw new HttpError(404, 'NO_SYNC', 'this node does not run chain sync (sync.enabled = false)');
    return this.#o.chain;
  }

  #syncStatus(): SyncStatusResponse {
    const c = this.#chain();
    return { ...c.status(), chain: c.name, progress: progressJson(c.progress()) } as SyncStatusResponse;
  }

  async #publish(b: z.infer<typeof PublishBody>): Promise<{ body: PublishResponse }> {
    const c = this.#chain();
    this.#o.log?.info({ kind: b.kind, count: b.count, txsPerBlock: b.txsPerBlock }, 'api: publish');
    const request: PublishRequest = b.txsPerBlock === undefined ? { kind: b.kind, count: b.count } : { kind: b.kind, count: b.count, txsPerBlock: b.txsPerBlock };
    return { body: await c.publish(request) };
  }

  #gossip(): GossipApi {
    if (this.#o.gossip === undefined) throw new HttpError(404, 'NO_GOSSIP', 'this node does not run gossip (gossip.enabled = false)');
    return this.#o.gossip;
  }

  #gossipStatus(): GossipStatusResponse {
    return this.#gossip().status();
  }

  async #gossipPublish(b: z.infer<typeof GossipPublishBody>): Promise<{ body: GossipPublishResponse }> {
    const g = this.#gossip();
    // A copy of its own: the item is kept in the message cache, and a small Buffer would pin a pool slab.
    const payload = new Uint8Array(Buffer.from(b.data, 'base64'));
    this.#o.log?.info({ topic: b.topic, bytes: payload.length }, 'api: gossip publish');
    let r: Awaited<ReturnType<GossipApi['publish']>>;
    try {
      r = await g.publish(b.topic, payload);
    } catch (e) {
      const status = isPqnetError(e) ? GOSSIP_PUBLISH_STATUS[e.code] : undefined;
      if (status !== undefined) throw new HttpError(status, (e as PqnetError).code, (e as PqnetError).message);
      throw e;
    }
    if ('refused' in r) {
      if (r.refused === 'reject') throw new HttpError(400, 'GOSSIP_INVALID', `${b.topic}: the topic's validator rejected the item; not published`);
      throw new HttpError(400, 'GOSSIP_IGNORED', `${b.topic}: the topic's validator ignored the item; not published`);
    }
    return { body: r };
  }

  #info(): InfoResponse {
    const n = this.#o.node;
    return {
      peerId: n.peerId,
      identityAlg: n.identity.alg,
      chainId: n.chainId,
      agent: n.agent,
      version: PQNET_VERSION,
      protocolVersion: PROTOCOL_VERSION,
      peerProtocolVersion: PEER_PROTOCOL_VERSION,
      listen: n.listenAddresses,
      announce: n.announceAddresses,
      algorithms: { kem: [...n.policy.kem], aead: [...n.policy.aead], sig: [...n.policy.sig] },
      policyRoot: Buffer.from(n.policy.root).toString('hex'),
      provider: n.providerName,
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeMs: Date.now() - this.#startedAt,
    };
  }

  #stats(): StatsResponse {
    const n = this.#o.node;
    const h = n.health();
    const t = n.traffic();
    return {
      peers: { byState: h.peers, inbound: h.inbound, outbound: h.outbound },
      bytes: { in: t.bytesIn, out: t.bytesOut },
      messages: t.messages,
      scores: n.scores(),
      handshakes: h.handshakes,
      rejects: h.rejects,
      disconnects: h.disconnects,
      offenses: h.offenses,
      bans: h.bans,
      peerBook: h.peerBook,
    };
  }

  #peerJson(p: PeerInfo): PeerJson {
    const counts = p.peerId === undefined ? undefined : this.#o.node.messageCounts(p.peerId);
    return {
      peerId: p.peerId ?? null,
      direction: p.direction,
      state: p.state,
      address: p.address,
      host: p.host,
      mustConnect: p.mustConnect,
      agent: p.agent ?? null,
      listenAddresses: p.listenAddresses,
      protocols: p.protocols,
      height: p.height ?? null,
      rttMs: p.rttMs === undefined ? null : Math.round(p.rttMs * 1000) / 1000,
      score: p.score === undefined ? null : Math.round(p.score * 100) / 100,
      scoreStatus: p.scoreStatus ?? null,
      clockSkewMs: p.clockSkewMs ?? null,
      connectedForMs: Math.round(p.connectedForMs),
      bytesIn: p.bytesIn,
      bytesOut: p.bytesOut,
      queuedBytes: p.queuedBytes,
      requestsInFlight: p.requestsInFlight,
      handshake:
        p.kem === undefined || p.aead === undefined || p.sig === undefined || p.handshakeMs === undefined
          ? null
          : { kem: p.kem, aead: p.aead, sig: p.sig, ms: Math.round(p.handshakeMs * 100) / 100 },
      messages: counts ?? { in: {}, out: {} },
    };
  }

  // ---- Actions ----

  async #connect(b: z.infer<typeof ConnectBody>): Promise<{ body: { peer: PeerJson } }> {
    this.#o.log?.info({ addr: b.addr, peerId: b.peerId }, 'api: connect');
    try {
      const info = await this.#o.node.connect(b.addr, b.peerId === undefined ? {} : { peerId: b.peerId });
      return { body: { peer: this.#peerJson(info) } };
    } catch (e) {
      // Bad input is the caller's; anything else is the remote's or the network's.
      if (isPqnetError(e) && !CALLER_FAULTS.has(e.code) && e.code !== 'SHUTDOWN') throw new HttpError(502, e.code, `connecting to ${b.addr}: ${e.message || e.code}`);
      throw e;
    }
  }

  #disconnect(b: z.infer<typeof DisconnectBody>): { body: { disconnected: true } } {
    this.#o.log?.info({ peerId: b.peerId }, 'api: disconnect');
    if (!this.#o.node.disconnect(b.peerId)) throw new HttpError(404, 'PEER_NOT_FOUND', `no connection to ${b.peerId}`);
    return { body: { disconnected: true } };
  }

  #ban(b: z.infer<typeof BanBody>): { body: { ban: BanJson } } {
    const target = b.peerId !== undefined ? { peerId: b.peerId } : { address: b.address! };
    this.#o.log?.info({ ...target, durationMs: b.durationMs, note: b.note }, 'api: ban');
    const rec = this.#o.node.ban(target, { ...(b.durationMs === undefined ? {} : { durationMs: b.durationMs }), ...(b.note === undefined ? {} : { note: b.note }) });
    return { body: { ban: banJson(rec) } };
  }

  #unban(b: z.infer<typeof UnbanBody>): { body: { unbanned: true } } {
    const target = b.peerId !== undefined ? { peerId: b.peerId } : { address: b.address! };
    this.#o.log?.info(target, 'api: unban');
    if (!this.#o.node.unban(target)) throw new HttpError(404, 'BAN_NOT_FOUND', `no ban on ${b.peerId ?? b.address ?? ''}`);
    return { body: { unbanned: true } };
  }
}

/** Errors in what the caller sent, answered 400 (not 502) when an action fails with them. */
const CALLER_FAULTS = new Set(['INVALID_ARGUMENT', 'ADDRESS_INVALID', 'BAD_PEER_ID']);

function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (isPqnetError(e)) {
    const err = e as PqnetError;
    if (CALLER_FAULTS.has(err.code)) return new HttpError(400, err.code, err.message);
    if (err.code === 'SHUTDOWN') return new HttpError(503, err.code, 'the node is shutting down');
    return new HttpError(500, err.code, err.message);
  }
  return new HttpError(500, 'INTERNAL', 'internal error');
}

function parseBody<T>(schema: z.ZodType<T>, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.slice(0, 5).map((i) => `${i.path.length === 0 ? 'body' : i.path.join('.')}: ${i.message}`);
  throw new HttpError(400, 'BAD_REQUEST', issues.join('; '));
}

function parseUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://api');
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', `cannot parse the request target ${JSON.stringify((raw ?? '').slice(0, 100))}`);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function progressJson(p: SyncProgress): SyncProgressJson {
  const { startedAtMs, ...rest } = p;
  return { ...rest, startedAt: startedAtMs === null ? null : new Date(startedAtMs).toISOString() };
}

function banJson(b: BanRecord): BanJson {
  return {
    kind: b.kind,
    target: b.target,
    reason: b.reason,
    createdAt: new Date(b.createdAt).toISOString(),
    expiresAt: new Date(b.expiresAt).toISOString(),
    offenses: b.offenses,
    note: b.note,
  };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}
