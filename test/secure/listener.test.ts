/**
 * SecureListener caps: concurrent handshakes, handshakes per remote host and
 * the retry-cookie threshold, probed with raw TCP clients and real dials.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { equalBytes } from '../../src/core/bytes.ts';
import { isPqnetError, PqnetError, Reasons, type Reason } from '../../src/core/errors.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { encodeRecord, RecordType } from '../../src/secure/handshake-records.ts';
import { dialSecure, SecureListener, type SecureListenerOptions } from '../../src/secure/listener.ts';
import type { SecureSession } from '../../src/secure/session.ts';
import { MemoryNetwork } from '../../src/transport/memory.ts';
import { TcpTransport } from '../../src/transport/tcp.ts';
import type { ByteStream, Transport } from '../../src/transport/types.ts';
import type { Limits } from '../../src/core/limits.ts';
import { endpoint } from './_endpoints.ts';
import { rawConnect, until, within, type RawClient } from './_evil.ts';

const alice = endpoint('alice');

function rejectRecord(code: Reason): Uint8Array {
  return encodeRecord(RecordType.REJECT, encodeCbor([Reasons[code].wire]));
}

async function listen(transport: Transport, address: string, limits: Partial<Limits>, extra: Partial<SecureListenerOptions> = {}): Promise<{ listener: SecureListener; sessions: SecureSession[]; errors: PqnetError[] }> {
  const sessions: SecureSession[] = [];
  const errors: PqnetError[] = [];
  const listener = await SecureListener.listen({
    ...endpoint('bob', { limits }),
    transport,
    address,
    onSession: (s) => {
      sessions.push(s);
      s.start(() => undefined);
    },
    onHandshakeError: (e) => errors.push(e),
    ...extra,
  });
  return { listener, sessions, errors };
}

async function expectRefusedDial(transport: Transport, address: string, code: Reason, from?: string): Promise<void> {
  const dial = from === undefined ? dialSecure(transport, address, alice) : dialFrom(transport as MemoryNetwork, address, from);
  await assert.rejects(dial, (e: unknown) => {
    assert.ok(isPqnetError(e), String(e));
    assert.equal(e.code, 'HS_REJECTED');
    assert.equal(e.details?.remoteReason, code);
    return true;
  });
}

/** dialSecure from a named memory host (MemoryNetwork.dial's `fromHost`). */
function dialFrom(network: MemoryNetwork, address: string, host: string): Promise<SecureSession> {
  const hosted: Transport = {
    scheme: 'mem',
    dial: (a, o) => network.dial(a, { ...o, fromHost: host }),
    listen: (a, f) => network.listen(a, f),
  };
  return dialSecure(hosted, address, alice);
}

async function capTest(limits: Partial<Limits>, code: Reason): Promise<void> {
  const { listener, sessions, errors } = await listen(new TcpTransport(), 'tcp://127.0.0.1:0', limits);
  const silent: RawClient[] = [];
  try {
    for (let i = 0; i < 2; i++) silent.push(await rawConnect(listener.address));
    await until(() => listener.stats.handshakesInProgress === 2, 3_000, 'two handshakes in progress');
    const third = await rawConnect(listener.address);
    silent.push(third);
    await within(third.closed, 3_000, 'the refused connection to close');
    assert.ok(equalBytes(third.received(), rejectRecord(code)), `got ${Buffer.from(third.received()).toString('hex')}`);
    assert.equal(third.received()[4], RecordType.REJECT);
    // A real dial is refused the same way, with the reason readable.
    await expectRefusedDial(new TcpTransport(), listener.address, code);
    assert.equal(listener.stats.refused, 2);
    assert.equal(listener.stats.failuresByReason.get(code), 2);
    assert.equal(listener.stats.handshakesInProgress, 2, 'refusals do not count as handshakes');
    assert.deepEqual(
      errors.map((e) => e.code),
      [code, code],
    );
    // Once the silent ones go away, dials are served again.
    for (const c of silent) c.socket.destroy();
    await until(() => listener.stats.handshakesInProgress === 0, 3_000, 'slots to free');
    const s = await dialSecure(new TcpTransport(), listener.address, alice);
    s.close();
    await until(() => sessions.length === 1, 3_000, 'the session');
  } finally {
    for (const c of silent) c.socket.destroy();
    await listener.close();
  }
}

test('maxConcurrentHandshakes 2: a third concurrent connection gets REJECT{HS_BUSY} and is closed', async () => {
  await capTest({ maxConcurrentHandshakes: 2 }, 'HS_BUSY');
});

test('maxHandshakesPerIp 2: a third connection from the same host gets REJECT{TOO_MANY_PER_IP} and is closed', async () => {
  await capTest({ maxHandshakesPerIp: 2 }, 'TOO_MANY_PER_IP');
});

test('maxHandshakesPerIp counts per host: another host is still served (memory transport)', async () => {
  const network = new MemoryNetwork();
  const { listener, sessions } = await listen(network, 'mem://bob', { maxHandshakesPerIp: 1 });
  const silent: ByteStream[] = [];
  try {
    const s = await network.dial('mem://bob', { fromHost: 'crowded' });
    s.setHandlers({ data: () => undefined, drain: () => undefined, close: () => undefined });
    silent.push(s);
    await until(() => listener.stats.handshakesInProgress === 1, 3_000, 'one handshake in progress');
    await expectRefusedDial(network, 'mem://bob', 'TOO_MANY_PER_IP', 'crowded');
    const other = await dialFrom(network, 'mem://bob', 'elsewhere');
    other.close();
    await until(() => sessions.length === 1, 3_000, 'the server session');
    assert.equal(listener.stats.accepted, 1);
    assert.equal(listener.stats.refused, 1);
  } finally {
    for (const s of silent) s.destroy();
    await listener.close();
  }
});

test('cookieThreshold 0: a real dialSecure completes after exactly one RETRY', async () => {
  for (const [name, transport, address] of [
    ['tcp', new TcpTransport(), 'tcp://127.0.0.1:0'],
    ['memory', new MemoryNetwork(), 'mem://bob'],
  ] as [string, Transport, string][]) {
    const { listener, sessions } = await listen(transport, address, { cookieThreshold: 0 });
    try {
      const s = await dialSecure(transport, listener.address, alice, { expectedPeerId: endpoint('bob').identity.peerId });
      try {
        assert.equal(s.retries, 1, name);
        await until(() => sessions.length === 1, 3_000, 'server session');
        assert.ok(sessions[0]!.remotePeerId.equals(alice.identity.peerId));
        assert.ok(equalBytes(sessions[0]!.sessionId, s.sessionId));
        s.start(() => undefined);
        assert.ok((await within(s.ping(), 3_000, 'ping')) >= 0);
        assert.equal(listener.stats.accepted, 1);
        assert.equal(listener.stats.failed, 0);
      } finally {
        s.close();
      }
    } finally {
      await listener.close();
    }
  }
});

test('cookieThreshold 0: listener.stats.retriesSent counts the RETRY records actually sent', async () => {
  const transport = new MemoryNetwork();
  const { listener } = await listen(transport, 'mem://bob', { cookieThreshold: 0 });
  try {
    const sessions = [];
    for (let i = 0; i < 3; i++) sessions.push(await dialSecure(transport, listener.address, alice));
    for (const s of sessions) {
      assert.equal(s.retries, 1);
      s.close();
    }
    // Three dials, one RETRY each (counted when each server handshake ends).
    await until(() => listener.stats.accepted === 3, 3_000, 'the server handshakes to end');
    assert.equal(listener.stats.retriesSent, 3);
  } finally {
    await listener.close();
  }
});

test('30 concurrent dials over TCP from one address all complete when the per-host burst allows them', async () => {
  const transport = new TcpTransport();
  // The default per-host burst (20) would refuse ten of these: see listener-limits.test.ts.
  const { listener, sessions } = await listen(transport, 'tcp://127.0.0.1:0', { handshakeBurstPerHost: 64 });
  const dialled: SecureSession[] = [];
  try {
    const results = await within(
      Promise.allSettled(Array.from({ length: 30 }, () => dialSecure(transport, listener.address, alice))),
      20_000,
      '30 dials',
    );
    for (const r of results) if (r.status === 'fulfilled') dialled.push(r.value);
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message)] : []));
    assert.deepEqual(failures, []);
    await until(() => sessions.length === 30, 5_000, 'all server sessions');
    assert.equal(listener.stats.accepted, 30);
    assert.equal(listener.stats.refused, 0);
    assert.equal(listener.stats.failed, 0);
    assert.equal(listener.stats.handshakesInProgress, 0);
    const ids = new Set(dialled.map((s) => Buffer.from(s.sessionId).toString('hex')));
    assert.equal(ids.size, 30, 'session ids are unique');
    for (const s of dialled) s.start(() => undefined);
    const rtts = await within(Promise.all(dialled.map((s) => s.ping())), 5_000, 'pings');
    assert.equal(rtts.length, 30);
  } finally {
    for (const s of dialled) s.close();
    await listener.close();
  }
});

test('listener.close() aborts handshakes in progress with SHUTDOWN', async () => {
  const { listener } = await listen(new TcpTransport(), 'tcp://127.0.0.1:0', {});
  const c = await rawConnect(listener.address);
  try {
    await until(() => listener.stats.handshakesInProgress === 1, 3_000, 'handshake in progress');
    await listener.close();
    await within(c.closed, 3_000, 'client close');
    await until(() => listener.stats.handshakesInProgress === 0, 3_000, 'handshake to end');
    assert.equal(listener.stats.failuresByReason.get('SHUTDOWN'), 1);
  } finally {
    c.socket.destroy();
  }
});
