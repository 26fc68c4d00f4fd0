/**
 * Several transports behind one: `dial` and `listen` go to the transport that
 * serves the address's scheme (`tcp://` to TcpTransport, `ws://` to
 * WebSocketTransport, ...). An address of any other scheme is ADDRESS_INVALID,
 * naming the schemes served.
 */
import { PqnetError } from '../core/errors.ts';
import { schemeOf } from './address.ts';
import type { ByteStream, DialOptions, Transport, TransportListener } from './types.ts';

export class MultiTransport implements Transport {
  /** Not an address scheme: see `schemes`. */
  readonly scheme = 'multi';
  /** The schemes served, in the order the transports were given. */
  readonly schemes: readonly string[];
  readonly #byScheme: ReadonlyMap<string, Transport>;

  constructor(transports: readonly Transport[]) {
    const byScheme = new Map<string, Transport>();
    for (const t of transports) {
      // A MultiTransport inside another serves each of its schemes.
      for (const s of t instanceof MultiTransport ? t.schemes : [t.scheme]) {
        if (byScheme.has(s)) throw new PqnetError('INVALID_ARGUMENT', `two transports for ${s}://`);
        byScheme.set(s, t);
      }
    }
    if (byScheme.size === 0) throw new PqnetError('INVALID_ARGUMENT', 'MultiTransport needs at least one transport');
    this.#byScheme = byScheme;
    this.schemes = [...byScheme.keys()];
  }

  // async: an address of no or another scheme is a rejection, never a synchronous throw.
  async dial(address: string, options?: DialOptions): Promise<ByteStream> {
    return await this.#for(address).dial(address, options);
  }

  async listen(address: string, onStream: (stream: ByteStream) => void): Promise<TransportListener> {
    return await this.#for(address).listen(address, onStream);
  }

  #for(address: string): Transport {
    const scheme = schemeOf(address);
    const t = this.#byScheme.get(scheme);
    if (t === undefined) {
      throw new PqnetError('ADDRESS_INVALID', `${JSON.stringify(address)}: no transport for ${scheme}://; supported: ${this.schemes.map((s) => `${s}://`).join(', ')}`);
    }
    return t;
  }
}
