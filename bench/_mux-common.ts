/**
 * What the mux benchmark's sender (bench/mux.ts) and receiver child
 * (bench/_mux-server.ts) share: the pqnet message types of each scenario, and
 * the record format of the baselines (raw TCP, libp2p streams).
 *
 * pqnet messages are CBOR `[bytes]`, like test/mux/_types.ts. Sizes are chosen
 * so that the encoded payload (what the mux carries and credits) is a round
 * figure, and the baselines send records whose body has that same size:
 *
 *   flow     65,528 B  one full frame (MAX_CHUNK_BYTES): CBOR overhead 4 B
 *   tx          100 B  small messages (channel 3, transactions)
 *   vote        100 B  consensus vote, first 4 body bytes carry a nonce (channel 1)
 *   bulk  1,048,582 B  1 MiB of bytes + 6 B CBOR (channel 6)
 *
 * Baseline record: u32be length (of what follows) | u8 kind | body.
 */
import { MAX_CHUNK_BYTES } from '../src/core/limits.ts';
import { Channel, type ChannelId } from '../src/wire/channels.ts';
import { createRegistry } from '../src/wire/messages.ts';
import { defineMessage, type MessageRegistry, type MessageType } from '../src/wire/registry.ts';
import { bytes, tuple } from '../src/wire/schema.ts';

export type Scenario = 'throughput' | 'small' | 'latency';
export type Blob = [Uint8Array];

export const MUX_RECORD_PROTOCOL = '/pqnet-bench/records/1.0.0';

// ------------------------------------------------------------------ scenarios

/** Concurrent senders in the throughput scenario. */
export const FLOWS = 10;
/**
 * Flow i uses data channel (i mod 6) + 1: channels 1-4 carry two flows each
 * (sharing that channel's FIFO and credit), channels 5 and 6 one each.
 */
export const FLOW_CHANNELS: readonly ChannelId[] = Array.from({ length: FLOWS }, (_, i) => ((i % 6) + 1) as ChannelId);
/** Byte-string length that makes CBOR [bytes] exactly one frame's chunk. */
export const FLOW_BODY_BYTES = MAX_CHUNK_BYTES - 4;
export const FLOW_MESSAGE_BYTES = MAX_CHUNK_BYTES;

/** 97-byte byte string: CBOR [bytes] is 1 + 2 + 97 = 100 bytes. */
export const SMALL_BODY_BYTES = 97;
export const SMALL_MESSAGE_BYTES = 100;

export const VOTE_BODY_BYTES = 97;
export const VOTE_MESSAGE_BYTES = 100;
export const BULK_BODY_BYTES = 1024 * 1024;
export const BULK_MESSAGE_BYTES = BULK_BODY_BYTES + 6;

function blob(id: number, name: string, channel: ChannelId, maxBytes: number, maxBody: number): MessageType<Blob> {
  return defineMessage({ id, name, channel, maxBytes, schema: tuple(bytes(0, maxBody)) });
}

export const FlowTypes: readonly MessageType<Blob>[] = FLOW_CHANNELS.map((ch, i) => blob(0x8100 + i, `flow${i}`, ch, MAX_CHUNK_BYTES, FLOW_BODY_BYTES));
export const Tx = blob(0x8003, 'tx', Channel.TRANSACTIONS, 128, 120);
export const Vote = blob(0x8001, 'vote', Channel.CONSENSUS, 512, 500);
/** Cap 4 MiB: the bulk channel's window is raised to 4 MiB, room for four 1 MiB messages in flight. */
export const Bulk = blob(0x8002, 'bulk', Channel.BULK, 4 * 1024 * 1024, 4 * 1024 * 1024 - 16);

/**
 * One registry per scenario, so each scenario runs with default windows
 * (1 MiB per channel) except where its own types raise them (bulk: 4 MiB).
 */
export function scenarioRegistry(scenario: Scenario): MessageRegistry {
  const r = createRegistry();
  const types: readonly MessageType<Blob>[] = scenario === 'throughput' ? FlowTypes : scenario === 'small' ? [Tx] : [Vote, Bulk];
  for (const t of types) r.register(t as MessageType<unknown>);
  return r;
}

// --------------------------------------------------------- baseline records

export const RECORD_HEADER_BYTES = 5;
export const KIND_VOTE = 1;
export const KIND_BULK = 6;
export const KIND_SMALL = 3;
/** Flow i is kind 0x10 + i. */
export const KIND_FLOW = 0x10;

export function record(kind: number, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + body.length);
  out.writeUInt32BE(1 + body.length, 0);
  out[4] = kind;
  out.set(body, RECORD_HEADER_BYTES);
  return out;
}

export type RecordHandler = (kind: number, bodyBytes: number, body: Uint8Array | undefined) => void;

/**
 * Incremental parser of `u32be len | u8 kind | body` records. Bodies up to
 * `materializeUpTo` bytes are handed over (a subarray when the body lies in
 * one chunk, a copy otherwise); larger ones are only counted, never copied.
 */
export class RecordReader {
  readonly #onRecord: RecordHandler;
  readonly #limit: number;
  readonly #head = Buffer.alloc(RECORD_HEADER_BYTES);
  #headFill = 0;
  #kind = 0;
  #size = 0;
  #remaining = -1;
  #parts: Uint8Array[] | undefined;

  constructor(onRecord: RecordHandler, materializeUpTo = 4096) {
    this.#onRecord = onRecord;
    this.#limit = materializeUpTo;
  }

  push(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.#remaining < 0) {
        const n = Math.min(RECORD_HEADER_BYTES - this.#headFill, chunk.length - off);
        this.#head.set(chunk.subarray(off, off + n), this.#headFill);
        this.#headFill += n;
        off += n;
        if (this.#headFill < RECORD_HEADER_BYTES) return;
        this.#headFill = 0;
        this.#size = this.#head.readUInt32BE(0) - 1;
        this.#kind = this.#head[4]!;
        this.#remaining = this.#size;
        this.#parts = this.#size <= this.#limit ? [] : undefined;
        if (this.#remaining === 0) this.#finish();
        continue;
      }
      const n = Math.min(this.#remaining, chunk.length - off);
      this.#parts?.push(chunk.subarray(off, off + n));
      this.#remaining -= n;
      off += n;
      if (this.#remaining === 0) this.#finish();
    }
  }

  #finish(): void {
    const parts = this.#parts;
    this.#remaining = -1;
    this.#parts = undefined;
    const body = parts === undefined ? undefined : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    this.#onRecord(this.#kind, this.#size, body);
  }
}

/** A libp2p 'message' event's data as one Uint8Array. */
export function asBytes(data: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}
