/**
 * In-process transport for tests and the simulator. Streams come in connected
 * pairs; bytes are delivered in order on a later turn (never synchronously
 * inside `write`), honouring `pause`, with back-pressure at `highWaterMark`.
 */
import { PqnetError } from '../core/errors.ts';
import type { ByteStream, DialOptions, StreamHandlers, Transport, TransportListener } from './types.ts';

export const DEFAULT_MEMORY_HIGH_WATER = 1024 * 1024;

export type Scheduler = (fn: () => void) => void;

const defaultScheduler: Scheduler = (fn) => setImmediate(fn);

export class MemoryStream implements ByteStream {
  readonly remoteAddress: string;
  readonly remoteHost: string;
  readonly localAddress: string;
  peer: MemoryStream | undefined;
  readonly #schedule: Scheduler;
  readonly #highWater: number;
  #handlers: StreamHandlers | undefined;
  #inbox: Uint8Array[] = [];
  #inboxBytes = 0;
  #paused = false;
  #scheduled = false;
  #closed = false;
  #closing: PqnetError | null | undefined; // undefined: open; null: orderly end; error: failure
  #wantDrain = false;

  constructor(localAddress: string, remoteAddress: string, schedule: Scheduler, highWater: number) {
    this.localAddress = localAddress;
    this.remoteAddress = remoteAddress;
    this.remoteHost = remoteAddress.replace(/^mem:\/\//, '').split(':')[0] ?? remoteAddress;
    this.#schedule = schedule;
    this.#highWater = highWater;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes written by us that the peer has not consumed yet. */
  get bufferedBytes(): number {
    const peer = this.peer;
    return peer === undefined ? 0 : peer.#inboxBytes;
  }

  setHandlers(handlers: StreamHandlers): void {
    this.#handlers = handlers;
    this.#kick();
  }

  write(data: Uint8Array): boolean {
    const peer = this.peer;
    if (this.#closed || this.#closing !== undefined || peer === undefined || peer.#closed) return false;
    peer.#inbox.push(data.slice());
    peer.#inboxBytes += data.length;
    peer.#kick();
    // Every write asks for a drain once the peer has taken its bytes, so a writer
    // that stops below the high-water mark (the mux's low-water gate) is woken too.
    this.#wantDrain = true;
    return peer.#inboxBytes < this.#highWater;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#kick();
  }

  end(): void {
    if (this.#closed || this.#closing !== undefined) return;
    this.#closing = null;
    // The peer sees the end after every byte already written.
    const peer = this.peer;
    if (peer !== undefined) peer.#remoteEnded();
    this.#finish(undefined);
  }

  destroy(error?: PqnetError): void {
    if (this.#closed) return;
    this.#closing = error ?? null;
    const peer = this.peer;
    if (peer !== undefined) peer.#remoteEnded(new PqnetError('IO_ERROR', 'connection reset by peer'));
    this.#inbox = [];
    this.#inboxBytes = 0;
    this.#finish(error);
  }

  #pendingEnd: PqnetError | null | undefined;

  #remoteEnded(error?: PqnetError): void {
    if (error !== undefined) {
      this.#inbox = [];
      this.#inboxBytes = 0;
    }
    this.#pendingEnd = error ?? null;
    this.#kick();
  }

  #finish(error: PqnetError | undefined): void {
    this.#schedule(() => {
      if (this.#closed) return;
      this.#closed = true;
      const h = this.#handlers;
      this.#handlers = undefined;
      h?.close(error);
    });
  }

  #kick(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#schedule(() => {
      this.#scheduled = false;
      this.#deliver();
    });
  }

  #deliver(): void {
    while (this.#handlers !== undefined && !this.#paused && this.#inbox.length > 0) {
      const b = this.#inbox.shift()!;
      this.#inboxBytes -= b.length;
      this.#handlers.data(b);
    }
    const writer = this.peer;
    if (writer !== undefined && writer.#wantDrain && this.#inboxBytes < writer.#highWater) {
      writer.#wantDrain = false;
      writer.#handlers?.drain();
    }
    if (this.#inbox.length === 0 && this.#pendingEnd !== undefined && !this.#closed && this.#handlers !== undefined) {
      const err = this.#pendingEnd ?? undefined;
      this.#closing ??= null;
      this.#closed = true;
      const h = this.#handlers;
      this.#handlers = undefined;
      h.close(err);
    }
  }
}

interface MemoryListenerEntry {
  readonly onStream: (s: ByteStream) => void;
}

/** A namespace of in-memory listeners: `mem://name` addresses. */
export class MemoryNetwork implements Transport {
  readonly scheme = 'mem';
  readonly #listeners = new Map<string, MemoryListenerEntry>();
  readonly #schedule: Scheduler;
  readonly #highWater: number;
  #nextEphemeral = 1;

  constructor(options: { schedule?: Scheduler; highWaterMark?: number } = {}) {
    this.#schedule = options.schedule ?? defaultScheduler;
    this.#highWater = options.highWaterMark ?? DEFAULT_MEMORY_HIGH_WATER;
  }

  #check(address: string): void {
    if (!/^mem:\/\/[A-Za-z0-9._:-]{1,128}$/.test(address)) throw new PqnetError('ADDRESS_INVALID', `${JSON.stringify(address)}: expected mem://name`);
  }

  dial(address: string, options: DialOptions & { fromHost?: string } = {}): Promise<ByteStream> {
    try {
      this.#check(address);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (options.signal?.aborted === true) return Promise.reject(new PqnetError('CLOSED', `dial to ${address} aborted`));
    const listener = this.#listeners.get(address);
    if (listener === undefined) return Promise.reject(new PqnetError('DIAL_FAILED', `${address}: nobody listening`));
    const local = `mem://${options.fromHost ?? 'client'}:${this.#nextEphemeral++}`;
    const a = new MemoryStream(local, address, this.#schedule, this.#highWater);
    const b = new MemoryStream(address, local, this.#schedule, this.#highWater);
    a.peer = b;
    b.peer = a;
    this.#schedule(() => listener.onStream(b));
    return Promise.resolve(a);
  }

  listen(address: string, onStream: (stream: ByteStream) => void): Promise<TransportListener> {
    try {
      this.#check(address);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (this.#listeners.has(address)) return Promise.reject(new PqnetError('LISTEN_FAILED', `${address} is in use`));
    this.#listeners.set(address, { onStream });
    return Promise.resolve({
      address,
      close: () => {
        this.#listeners.delete(address);
        return Promise.resolve();
      },
    });
  }
}
