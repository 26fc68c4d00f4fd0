/**
 * Request/response over the mux (docs/spec/mux.md, Requests). A request type
 * is a pair of message types sharing an envelope:
 *
 *   request  = [req_id u32, body]
 *   response = [req_id u32, status u16, body or null]
 *
 * status 0 is success and carries the body; any other status is a reason's
 * wire code (REQ_NO_HANDLER, REQ_TOO_MANY, INVALID_DATA, ...) and carries null.
 * Request ids are per connection and per direction.
 *
 * `RequestTable` is the sans-I/O book of our outstanding requests: ids,
 * the in-flight cap, deadlines (`pollTimeout` / `expire`) and recently timed-out
 * ids, so that a late answer is told apart from one nobody asked for.
 */
import { PqnetError, Reasons, reasonFromWire } from '../core/errors.ts';
import { Channel, type ChannelId } from '../wire/channels.ts';
import { defineMessage, type MessageRegistry, type MessageType } from '../wire/registry.ts';
import { tuple, uint, type Schema } from '../wire/schema.ts';

export type RequestEnvelope<Req> = [number, Req];
export type ResponseEnvelope<Res> = [number, number, Res | null];

export interface RequestType<Req, Res> {
  readonly name: string;
  readonly request: MessageType<RequestEnvelope<Req>>;
  readonly response: MessageType<ResponseEnvelope<Res>>;
  /** Deadline for an answer; the connection's `requestTimeoutMs` if absent. */
  readonly timeoutMs: number | undefined;
}

export interface RequestSpec<Req, Res> {
  readonly name: string;
  readonly requestId: number;
  readonly responseId: number;
  readonly request: Schema<Req>;
  readonly response: Schema<Res>;
  /** Size caps of the encoded request and response. */
  readonly maxRequestBytes: number;
  readonly maxResponseBytes: number;
  /** Defaults to the requests channel. */
  readonly channel?: ChannelId;
  readonly protocol?: string;
  readonly timeoutMs?: number;
}

/** Envelope overhead: array header, a u32 id and a u16 status. */
const ENVELOPE_BYTES = 1 + 5 + 3;

function responseSchema<Res>(body: Schema<Res>): Schema<ResponseEnvelope<Res>> {
  const head = tuple(uint(0xffffffff), uint(0xffff));
  return {
    describe: `[u32, u16, ${body.describe} | null]`,
    check(v, path) {
      if (!Array.isArray(v) || v.length !== 3) return head.check(v, path) as never;
      const [id, status] = head.check(v.slice(0, 2), path);
      if (status === 0) return [id, 0, body.check(v[2], `${path}[2]`)];
      if (v[2] !== null) throw new PqnetError('MSG_SCHEMA', `${path}[2]: an error response carries null`);
      return [id, status, null];
    },
  };
}

export function defineRequest<Req, Res>(spec: RequestSpec<Req, Res>): RequestType<Req, Res> {
  const channel = spec.channel ?? Channel.REQUESTS;
  const common = spec.protocol === undefined ? { channel } : { channel, protocol: spec.protocol };
  return Object.freeze({
    name: spec.name,
    timeoutMs: spec.timeoutMs,
    request: defineMessage({
      ...common,
      id: spec.requestId,
      name: `${spec.name}.request`,
      rpc: { role: 'request', pair: spec.responseId },
      maxBytes: spec.maxRequestBytes + ENVELOPE_BYTES,
      schema: tuple(uint(0xffffffff), spec.request),
    }),
    response: defineMessage({
      ...common,
      id: spec.responseId,
      name: `${spec.name}.response`,
      rpc: { role: 'response', pair: spec.requestId },
      maxBytes: spec.maxResponseBytes + ENVELOPE_BYTES,
      schema: responseSchema(spec.response),
    }),
  });
}

export function registerRequest<Req, Res>(registry: MessageRegistry, rt: RequestType<Req, Res>): void {
  registry.register(rt.request);
  registry.register(rt.response);
}

/** The error a non-zero response status stands for. */
export function responseError(rt: RequestType<unknown, unknown>, status: number): PqnetError {
  const reason = reasonFromWire(status);
  return new PqnetError('REQ_FAILED', `${rt.name}: ${reason === undefined ? `status ${status}` : `${reason} (${Reasons[reason].description})`}`, {
    details: { status, remoteReason: reason },
  });
}

export interface PendingRequest {
  readonly id: number;
  readonly type: RequestType<unknown, unknown>;
  readonly sentAt: number;
  readonly deadline: number;
}

/** How many timed-out ids are remembered to recognise late answers. */
const LATE_MEMORY = 256;

export class RequestTable {
  readonly #pending = new Map<number, PendingRequest>();
  readonly #timedOut = new Set<number>();
  readonly #cap: number;
  #nextId = 0;

  constructor(maxInFlight: number) {
    this.#cap = maxInFlight;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Allocate an id; throws REQ_TOO_MANY at the in-flight cap. */
  open(type: RequestType<unknown, unknown>, now: number, timeoutMs: number): PendingRequest {
    if (this.#pending.size >= this.#cap) throw new PqnetError('REQ_TOO_MANY', `${this.#pending.size} requests in flight (cap ${this.#cap})`);
    let id = this.#nextId;
    while (this.#pending.has(id)) id = (id + 1) >>> 0;
    this.#nextId = (id + 1) >>> 0;
    const p: PendingRequest = { id, type, sentAt: now, deadline: now + timeoutMs };
    this.#pending.set(id, p);
    this.#timedOut.delete(id);
    return p;
  }

  /**
   * Match a response. 'late' for an id that timed out or was abandoned recently (harmless),
   * 'unsolicited' for one never asked or answered by the wrong type.
   */
  settle(id: number, responseId: number): PendingRequest | 'late' | 'unsolicited' {
    const p = this.#pending.get(id);
    if (p === undefined) return this.#timedOut.delete(id) ? 'late' : 'unsolicited';
    if (p.type.response.id !== responseId) return 'unsolicited';
    this.#pending.delete(id);
    return p;
  }

  /** Forget a request without an answer (the local caller gave up); a later answer counts as late. */
  cancel(id: number): PendingRequest | undefined {
    const p = this.#pending.get(id);
    if (p !== undefined) this.#abandon(p);
    return p;
  }

  /** The earliest deadline, if any request is pending. */
  pollTimeout(): number | undefined {
    let min: number | undefined;
    for (const p of this.#pending.values()) if (min === undefined || p.deadline < min) min = p.deadline;
    return min;
  }

  /** Remove and return the requests whose deadline has passed. */
  expire(now: number): PendingRequest[] {
    const out: PendingRequest[] = [];
    for (const p of this.#pending.values()) {
      if (p.deadline > now) continue;
      out.push(p);
      this.#abandon(p);
    }
    return out;
  }

  #abandon(p: PendingRequest): void {
    this.#pending.delete(p.id);
    this.#timedOut.add(p.id);
    if (this.#timedOut.size > LATE_MEMORY) this.#timedOut.delete(this.#timedOut.values().next().value!);
  }

  /** Remove and return everything (the connection closed). */
  drain(): PendingRequest[] {
    const out = [...this.#pending.values()];
    this.#pending.clear();
    return out;
  }
}
