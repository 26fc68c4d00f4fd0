/**
 * A client for the node's HTTP API (types.ts has the JSON shapes): what the
 * `pqnet peer|info|stats` commands use, and what scripts can use too.
 *
 * Every failure is one `ApiError` with a one-line message: the node could not
 * be reached (`UNREACHABLE`, status 0), did not answer in time (`TIMEOUT`),
 * answered something that is not the API (`BAD_RESPONSE`), or refused the
 * request (the server's `error.code`, with the HTTP status). Operator actions
 * (POST) need the bearer token; without one they fail with `NO_TOKEN` before
 * anything is sent. Read-only requests never send the token.
 */
import type {
  ApiErrorBody,
  BanRequest,
  BanResponse,
  BansResponse,
  ConnectRequest,
  ConnectResponse,
  DisconnectRequest,
  DisconnectResponse,
  GossipPublishRequest,
  GossipPublishResponse,
  GossipStatusResponse,
  HealthResponse,
  InfoResponse,
  PeersResponse,
  PublishRequest,
  PublishResponse,
  StatsResponse,
  SyncStatusResponse,
  UnbanRequest,
  UnbanResponse,
} from './types.ts';

/** How long a request may take, answer included. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** `connect` waits for a dial and a handshake: at least this long. */
export const CONNECT_TIMEOUT_MS = 30_000;
/** A publish of many blocks takes a while (mining 100,000 blocks: tens of seconds). */
export const PUBLISH_TIMEOUT_MS = 300_000;
/** Longest server error message repeated in an `ApiError` (it is one line of a terminal). */
const MAX_SERVER_MESSAGE_CHARS = 300;

/** Causes of a failed fetch that mean nothing is listening there (or the host is not there). */
const NOT_LISTENING = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

export interface ApiClientOptions {
  /** Where the API is, e.g. `http://127.0.0.1:41080` (a trailing `/` is ignored). */
  readonly base: string;
  /** Bearer token for operator actions (POST). */
  readonly token?: string | undefined;
  /** Per request; `connect` uses the larger of this and `CONNECT_TIMEOUT_MS`. Default `DEFAULT_TIMEOUT_MS`. */
  readonly timeoutMs?: number | undefined;
  /** Named in the `NO_TOKEN` message: the token file the caller looked for. */
  readonly tokenFile?: string | undefined;
}

/** A failed API call. `status` is 0 when no HTTP answer came. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** HTTP status, or 0 when the node was not reached or did not answer in time. */
  readonly status: number;
  /** The server's `error.code`, or `UNREACHABLE`, `TIMEOUT`, `BAD_RESPONSE`, `NO_TOKEN`. */
  readonly code: string;

  constructor(status: number, code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    this.code = code;
  }
}

type Json = Record<string, unknown>;

interface Answer {
  readonly status: number;
  readonly text: string;
}

export class ApiClient {
  readonly base: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #tokenFile: string | undefined;

  constructor(options: ApiClientOptions) {
    let url: URL;
    try {
      url = new URL(options.base);
    } catch {
      throw new TypeError(`API base ${JSON.stringify(options.base)} is not a URL; expected http://HOST:PORT`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`API base ${JSON.stringify(options.base)}: expected http:// or https://`);
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new TypeError(`API base ${JSON.stringify(options.base)}: no query, fragment or credentials allowed`);
    }
    this.base = url.href.replace(/\/+$/, '');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
    this.#timeoutMs = timeoutMs;
    // A header value cannot carry controls or spaces; say so here rather than as a fetch failure.
    if (options.token !== undefined && options.token !== '' && !/^[\x21-\x7e]+$/.test(options.token)) {
      throw new TypeError('the API token contains spaces, control or non-ASCII characters');
    }
    this.#token = options.token === '' ? undefined : options.token;
    this.#tokenFile = options.tokenFile;
  }

  // ---- Read-only ----

  /** `GET /health`. A stopped node answers 503 with the same shape; that is returned, not thrown. */
  async health(): Promise<HealthResponse> {
    const a = await this.#send('GET', '/health', undefined, this.#timeoutMs);
    if (a.status === 503) {
      const body = tryJson(a.text);
      if (body !== undefined && typeof body['status'] === 'string' && !('error' in body)) return body as unknown as HealthResponse;
    }
    return this.#expect(a, 'GET', '/health', 'status', (b) => typeof b['status'] === 'string');
  }

  /** `GET /p2p/info`. */
  async info(): Promise<InfoResponse> {
    return this.#json('GET', '/p2p/info', undefined, 'peerId', (b) => typeof b['peerId'] === 'string');
  }

  /** `GET /p2p/peers`: every connection, whatever its state. */
  async peers(): Promise<PeersResponse> {
    return this.#json('GET', '/p2p/peers', undefined, 'peers', (b) => Array.isArray(b['peers']));
  }

  /** `GET /p2p/bans`. */
  async bans(): Promise<BansResponse> {
    return this.#json('GET', '/p2p/bans', undefined, 'bans', (b) => Array.isArray(b['bans']));
  }

  /** `GET /p2p/stats`. */
  async stats(): Promise<StatsResponse> {
    return this.#json('GET', '/p2p/stats', undefined, 'peers, bytes and messages', (b) => isObject(b['peers']) && isObject(b['bytes']) && isObject(b['messages']));
  }

  /** `GET /metrics`: the Prometheus text exposition, as it came. */
  async metrics(): Promise<string> {
    const a = await this.#send('GET', '/metrics', undefined, this.#timeoutMs);
    if (a.status < 200 || a.status > 299) throw this.#failure(a, 'GET', '/metrics');
    return a.text;
  }

  /** `GET /sync/status`: chain sync progress and counters (404 NO_SYNC if the node does not sync). */
  async syncStatus(): Promise<SyncStatusResponse> {
    return this.#json('GET', '/sync/status', undefined, 'progress', (b) => isObject(b['progress']));
  }

  /** `GET /gossip/status`: parameters, topics, control, caches and peers (404 NO_GOSSIP if the node runs no gossip). */
  async gossipStatus(): Promise<GossipStatusResponse> {
    return this.#json('GET', '/gossip/status', undefined, 'params, topics and peers', (b) => isObject(b['params']) && Array.isArray(b['topics']) && Array.isArray(b['peers']));
  }

  // ---- Operator actions (bearer token) ----

  /**
   * `POST /gossip/publish`: the node publishes one item on a topic (after the
   * topic's validator). `data` is the payload, base64 (`Buffer.toString('base64')`).
   */
  async gossipPublish(req: GossipPublishRequest): Promise<GossipPublishResponse> {
    return this.#json('POST', '/gossip/publish', req, 'id', (b) => typeof b['id'] === 'string' && typeof b['peers'] === 'number');
  }

  /** `POST /chain/publish`: the node makes blocks or transactions and announces them. */
  async publish(req: PublishRequest): Promise<PublishResponse> {
    return this.#json('POST', '/chain/publish', req, 'count', (b) => typeof b['count'] === 'number', Math.max(this.#timeoutMs, PUBLISH_TIMEOUT_MS));
  }

  /** `POST /p2p/connect`: dial, handshake, and answer with the new peer. */
  async connect(req: ConnectRequest): Promise<ConnectResponse> {
    return this.#json('POST', '/p2p/connect', req, 'peer', (b) => isObject(b['peer']), Math.max(this.#timeoutMs, CONNECT_TIMEOUT_MS));
  }

  /** `POST /p2p/disconnect`. */
  async disconnect(req: DisconnectRequest): Promise<DisconnectResponse> {
    return this.#json('POST', '/p2p/disconnect', req, 'disconnected', (b) => b['disconnected'] === true);
  }

  /** `POST /p2p/ban`. */
  async ban(req: BanRequest): Promise<BanResponse> {
    return this.#json('POST', '/p2p/ban', req, 'ban', (b) => isObject(b['ban']));
  }

  /** `POST /p2p/unban`. */
  async unban(req: UnbanRequest): Promise<UnbanResponse> {
    return this.#json('POST', '/p2p/unban', req, 'unbanned', (b) => b['unbanned'] === true);
  }

  // ---- Plumbing ----

  async #json<T>(method: 'GET' | 'POST', path: string, body: unknown, what: string, check: (b: Json) => boolean, timeoutMs = this.#timeoutMs): Promise<T> {
    const a = await this.#send(method, path, body, timeoutMs);
    return this.#expect(a, method, path, what, check);
  }

  /** A 2xx answer's JSON object when `check` accepts it; anything else thrown as an `ApiError`. */
  #expect<T>(a: Answer, method: string, path: string, what: string, check: (b: Json) => boolean): T {
    if (a.status < 200 || a.status > 299) throw this.#failure(a, method, path);
    const body = tryJson(a.text);
    const problem = body === undefined ? 'not a JSON object' : check(body) ? undefined : `no ${what} in it`;
    if (problem !== undefined) {
      throw new ApiError(a.status, 'BAD_RESPONSE', `unexpected answer from ${this.base} to ${method} ${path} (HTTP ${a.status}): ${problem}; is that the pqnet node API?`);
    }
    return body as T;
  }

  /** The error of a non-2xx answer: the server's own code and message, when it sent them. */
  #failure(a: Answer, method: string, path: string): ApiError {
    const body = tryJson(a.text) as Partial<ApiErrorBody> | undefined;
    const err = body?.error;
    if (isObject(err) && typeof err.code === 'string' && typeof err.message === 'string') {
      const text = err.message.replace(/\s+/g, ' ').trim().slice(0, MAX_SERVER_MESSAGE_CHARS);
      const hint = a.status === 401 || a.status === 403 ? `; check the token (--token, PQNET_API_TOKEN, api.token${this.#tokenFile === undefined ? '' : ` or ${this.#tokenFile}`})` : '';
      return new ApiError(a.status, err.code, `${method} ${path}: ${text} (${err.code})${hint}`);
    }
    return new ApiError(a.status, 'BAD_RESPONSE', `unexpected answer from ${this.base} to ${method} ${path}: HTTP ${a.status} without an error body; is that the pqnet node API?`);
  }

  async #send(method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<Answer> {
    const headers: Record<string, string> = { accept: path === '/metrics' ? 'text/plain' : 'application/json' };
    if (method === 'POST') {
      if (this.#token === undefined) {
        const where =
          this.#tokenFile === undefined
            ? 'pass --token or set PQNET_API_TOKEN (with --api, the local token is sent only if --data-dir or --config names the node)'
            : `pass --token, set PQNET_API_TOKEN, set api.token in the configuration file, or make ${this.#tokenFile} readable`;
        throw new ApiError(0, 'NO_TOKEN', `${method} ${path} needs the node's API token and none was found: ${where}`);
      }
      headers['authorization'] = `Bearer ${this.#token}`;
      headers['content-type'] = 'application/json';
    }
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      // No redirects: the API does not send them, and the token must not follow one.
      const res = await fetch(`${this.base}${path}`, { method, headers, signal, redirect: 'manual', ...(method === 'POST' ? { body: JSON.stringify(body) } : {}) });
      // The timeout covers the body too.
      return { status: res.status, text: await res.text() };
    } catch (e) {
      throw this.#transportError(e, method, path, timeoutMs);
    }
  }

  #transportError(e: unknown, method: string, path: string, timeoutMs: number): ApiError {
    const name = (e as { name?: unknown } | null)?.name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      return new ApiError(0, 'TIMEOUT', `the node API at ${this.base} did not answer ${method} ${path} within ${timeoutMs} ms`, { cause: e });
    }
    const code = causeCode(e);
    if (code === 'bad port') {
      // The Fetch standard blocks some ports (6000, 6665-6669, 10080, ...) whatever is listening there.
      return new ApiError(0, 'UNREACHABLE', `fetch refuses to connect to port ${new URL(this.base).port} of ${this.base} (a port the Fetch standard blocks); give the API another port`, { cause: e });
    }
    if (NOT_LISTENING.has(code)) {
      return new ApiError(0, 'UNREACHABLE', `cannot reach the node API at ${this.base} (${code}); is "pqnet listen" running?`, { cause: e });
    }
    return new ApiError(0, 'UNREACHABLE', `${method} ${path} to the node API at ${this.base} failed (${code})`, { cause: e });
  }
}

/** The code behind fetch's `TypeError('fetch failed')`: `cause.code`, or that of the first of an AggregateError's errors. */
function causeCode(e: unknown): string {
  const cause = (e as { cause?: unknown } | null)?.cause as { code?: unknown; errors?: unknown; message?: unknown } | undefined;
  if (typeof cause?.code === 'string') return cause.code;
  if (Array.isArray(cause?.errors)) {
    const first = (cause.errors as { code?: unknown }[]).find((x) => typeof x?.code === 'string');
    if (first !== undefined) return first.code as string;
  }
  if (typeof cause?.message === 'string' && cause.message !== '') return cause.message.split('\n')[0] as string;
  const own = e as { code?: unknown; message?: unknown } | null;
  if (typeof own?.code === 'string') return own.code;
  return typeof own?.message === 'string' ? own.message.split('\n')[0] as string : String(e);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function tryJson(text: string): Json | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
