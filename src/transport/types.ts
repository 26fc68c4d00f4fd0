/**
 * Byte streams: the only thing the layers above need from a transport. A
 * stream delivers bytes in order, reports back-pressure from `write`, can stop
 * reading (`pause`) and closes once, with a reason.
 */
import type { PqnetError } from '../core/errors.ts';

export interface StreamHandlers {
  data(chunk: Uint8Array): void;
  /**
   * The write buffer shrank: always after a `write` that returned false, once the
   * buffer is below its mark; a transport may also call it more often.
   */
  drain(): void;
  /** Called once. `error` is undefined for an orderly close by either side. */
  close(error?: PqnetError): void;
}

export interface ByteStream {
  /** Full address of the remote end, e.g. tcp://127.0.0.1:41000. */
  readonly remoteAddress: string;
  /** The remote host alone, for per-IP accounting. */
  readonly remoteHost: string;
  readonly localAddress: string;
  /** Bytes received before handlers are set are held, not lost. */
  setHandlers(handlers: StreamHandlers): void;
  /** Queue bytes; returns false when the caller should wait for `drain`. */
  write(data: Uint8Array): boolean;
  /** Bytes queued but not yet handed to the operating system. */
  readonly bufferedBytes: number;
  pause(): void;
  resume(): void;
  /** Flush what is queued, then close. */
  end(): void;
  /** Close now, dropping anything queued. */
  destroy(error?: PqnetError): void;
  readonly closed: boolean;
}

export interface TransportListener {
  /** The bound address (with the real port when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

export interface DialOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

export interface Transport {
  /** Address scheme this transport serves: 'tcp', 'mem', ... */
  readonly scheme: string;
  dial(address: string, options?: DialOptions): Promise<ByteStream>;
  listen(address: string, onStream: (stream: ByteStream) => void): Promise<TransportListener>;
}
