/** Two MuxConnections over a real secure session (memory or TCP), not yet started. */
import assert from 'node:assert/strict';
import { isPqnetError, PqnetError, type Reason } from '../../src/core/errors.ts';
import type { Limits } from '../../src/core/limits.ts';
import { MuxConnection, type ConnectionContext } from '../../src/mux/connection.ts';
import type { InboundLimiter } from '../../src/mux/mux.ts';
import { dialSecure, SecureListener } from '../../src/secure/listener.ts';
import type { SecureSession } from '../../src/secure/session.ts';
import { MemoryNetwork } from '../../src/transport/memory.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import { endpoint } from '../secure/_endpoints.ts';
import { registry } from './_types.ts';

export interface Pair {
  readonly a: MuxConnection;
  readonly b: MuxConnection;
  close(): Promise<void>;
}

export interface PairOptions {
  readonly tcp?: boolean;
  readonly limitsA?: Partial<Limits>;
  readonly limitsB?: Partial<Limits>;
  readonly limiterB?: InboundLimiter;
}

let counter = 0;

export async function connectedPair(o: PairOptions = {}): Promise<Pair> {
  const transport = o.tcp === true ? new TcpTransport() : new MemoryNetwork();
  const address = o.tcp === true ? 'tcp://127.0.0.1:0' : `mem://mux-${++counter}`;
  const alice = endpoint('alice', { limits: o.limitsA ?? {} });
  const bob = endpoint('bob', { limits: o.limitsB ?? {} });
  let resolveInbound: (s: SecureSession) => void = () => undefined;
  const inbound = new Promise<SecureSession>((r) => (resolveInbound = r));
  const listener = await SecureListener.listen({ ...bob, transport, address, onSession: (s) => resolveInbound(s) });
  try {
    const sa = await dialSecure(transport, listener.address, alice);
    const sb = await inbound;
    const ctx = (cfg: typeof alice, limiter?: InboundLimiter): ConnectionContext => {
      const base = { registry: registry(), limits: cfg.limits, clock: cfg.clock };
      return limiter === undefined ? base : { ...base, limiter };
    };
    const a = new MuxConnection(sa, ctx(alice));
    const b = new MuxConnection(sb, ctx(bob, o.limiterB));
    return {
      a,
      b,
      close: async () => {
        a.destroy(new PqnetError('CLOSED', 'test over'));
        b.destroy(new PqnetError('CLOSED', 'test over'));
        await listener.close();
      },
    };
  } catch (e) {
    await listener.close();
    throw e;
  }
}

/** Resolve once `cond()` holds, checking every few milliseconds; reject after `maxWaits` checks. */
export async function until(cond: () => boolean, what: string, maxWaits = 2_000): Promise<void> {
  for (let i = 0; i < maxWaits; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Await `p` and check it rejected with a PqnetError of `code`; returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: Reason): Promise<PqnetError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isPqnetError(e), String(e));
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}`);
}

/** Let pending I/O settle: a few turns of the event loop. */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setTimeout(r, 2));
}
