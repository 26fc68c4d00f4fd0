/** SimNetwork: connection setup, delivery times, back-pressure, loss, partitions, churn, closes and determinism, on virtual time only. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPqnetError, PqnetError } from '../../src/core/errors.ts';
import { SeededRandom } from '../../src/core/random.ts';
import { Node, type PeerInfo } from '../../src/node/node.ts';
import { parseHostPort } from '../../src/transport/address.ts';
import type { ByteStream, StreamHandlers } from '../../src/transport/types.ts';
import { VirtualClock } from '../../sim/clock.ts';
import { SimNetwork, type LinkSpec, type SimNetworkOptions } from '../../sim/network.ts';
import { UniformRandom } from '../../sim/uniform.ts';
import { testIdentity } from '../secure/_drive.ts';
import { conformance } from '../transport/_conformance.ts';

const A = '10.0.0.1';
const B = '10.0.0.2';
const C = '10.0.0.3';

const isCode = (code: string) => (e: unknown) => isPqnetError(e) && e.code === code;

function setup(link: LinkSpec = { latencyMs: 20 }, options: Partial<SimNetworkOptions> = {}) {
  const clock = new VirtualClock();
  const net = new SimNetwork({ clock, random: new SeededRandom('sim test'), defaultLink: link, ...options });
  return { clock, net, a: net.host('a', A), b: net.host('b', B), c: net.host('c', C) };
}

/** Handlers that log every event with its virtual time. */
class Log implements StreamHandlers {
  readonly clock: VirtualClock;
  readonly data_: { at: number; bytes: Uint8Array }[] = [];
  drains: number[] = [];
  closes: { at: number; error: PqnetError | undefined }[] = [];
  onDrain: (() => void) | undefined;

  constructor(clock: VirtualClock) {
    this.clock = clock;
  }

  data(chunk: Uint8Array): void {
    this.data_.push({ at: this.clock.now(), bytes: chunk });
  }

  drain(): void {
    this.drains.push(this.clock.now());
    this.onDrain?.();
  }

  close(error?: PqnetError): void {
    this.closes.push({ at: this.clock.now(), error });
  }

  get times(): number[] {
    return this.data_.map((d) => d.at);
  }

  get sizes(): number[] {
    return this.data_.map((d) => d.bytes.length);
  }
}

/** b listens on :7000, a dials it; returns both ends once connected (time 2 * latency). */
async function connected(s: ReturnType<typeof setup>) {
  let server: ByteStream | undefined;
  const listener = await s.b.listen(`sim://${B}:7000`, (st) => (server = st));
  const dialling = s.a.dial(listener.address);
  await s.clock.run(s.clock.now() + 1_000, { maxEvents: 2 });
  const client = await dialling;
  assert.ok(server !== undefined);
  const c = new Log(s.clock);
  const sv = new Log(s.clock);
  client.setHandlers(c);
  server.setHandlers(sv);
  return { listener, client, server, c, sv };
}

const bytes = (n: number, fill = n % 251): Uint8Array => new Uint8Array(n).fill(fill);

test('setup takes a round trip: onStream after one latency, dial after two; addresses pair up', async () => {
  const s = setup({ latencyMs: 25 });
  const events: string[] = [];
  let server: ByteStream | undefined;
  const l = await s.b.listen(`sim://${B}:7000`, (st) => {
    server = st;
    events.push(`accept@${s.clock.now()}`);
  });
  assert.equal(l.address, 'sim://10.0.0.2:7000');
  const dialling = s.a.dial(l.address).then((st) => {
    events.push(`dialled@${s.clock.now()}`);
    return st;
  });
  await s.clock.run(100);
  const client = await dialling;
  assert.deepEqual(events, ['accept@25', 'dialled@50']);
  assert.ok(server !== undefined);
  assert.equal(client.remoteAddress, l.address);
  assert.equal(client.remoteHost, B);
  assert.equal(server.localAddress, l.address);
  assert.equal(server.remoteAddress, client.localAddress);
  assert.equal(server.remoteHost, A);
  const hp = parseHostPort(server.remoteAddress, 'sim');
  assert.equal(hp.host, A);
  assert.ok(hp.port > 0);
  assert.equal(s.net.streamsOpen, 2);
  // Port 0 picks a free port.
  const l2 = await s.b.listen(`sim://${B}:0`, () => undefined);
  assert.match(l2.address, /^sim:\/\/10\.0\.0\.2:[1-9]\d*$/);
});

test('dial and listen failures: refused after a round trip, bad addresses, ports in use, timeouts, aborts', async () => {
  const s = setup({ latencyMs: 30 });
  let failedAt = -1;
  const refused = assert.rejects(s.a.dial(`sim://${B}:7000`), (e) => {
    failedAt = s.clock.now();
    return isCode('DIAL_FAILED')(e);
  });
  await s.clock.run(59);
  assert.equal(failedAt, -1, 'not before the round trip');
  await s.clock.run(100);
  await refused;
  assert.equal(failedAt, 60);
  const unknownHost = assert.rejects(s.a.dial('sim://10.9.9.9:1'), isCode('DIAL_FAILED'));
  await s.clock.advance(100);
  await unknownHost;
  await assert.rejects(s.a.dial('sim://nope'), isCode('ADDRESS_INVALID'));
  await assert.rejects(s.a.dial(`tcp://${B}:7000`), isCode('ADDRESS_INVALID'));
  await assert.rejects(s.a.listen(`mem://x`, () => undefined), isCode('ADDRESS_INVALID'));
  await assert.rejects(s.a.listen(`sim://${B}:7000`, () => undefined), isCode('LISTEN_FAILED'));
  const l = await s.b.listen(`sim://0.0.0.0:7000`, () => undefined);
  assert.equal(l.address, `sim://${B}:7000`);
  await assert.rejects(s.b.listen(l.address, () => undefined), isCode('LISTEN_FAILED'));
  // A timeout shorter than the round trip.
  const t0 = s.clock.now();
  const slow = assert.rejects(s.a.dial(l.address, { timeoutMs: 45 }), (e) => {
    failedAt = s.clock.now() - t0;
    return isCode('DIAL_FAILED')(e);
  });
  await s.clock.run(t0 + 200);
  await slow;
  assert.equal(failedAt, 45);
  assert.equal(s.net.streamsOpen, 0, 'the half-open server end was reset');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(s.a.dial(l.address, { signal: ac.signal }), isCode('CLOSED'));
  const ac2 = new AbortController();
  const aborted = assert.rejects(s.a.dial(l.address, { signal: ac2.signal }), isCode('CLOSED'));
  await s.clock.advance(10);
  ac2.abort();
  await aborted;
  await l.close();
  const closed = assert.rejects(s.a.dial(l.address), isCode('DIAL_FAILED'));
  await s.clock.advance(100);
  await closed;
});

test('delivery time = serialisation at the bandwidth + latency; successive writes queue; chunks arrive in order', async () => {
  const s = setup({ latencyMs: 20, bandwidthBytesPerSec: 100_000 }); // 100 bytes per ms
  const { client, sv } = await connected(s);
  const t0 = s.clock.now();
  assert.equal(t0, 40);
  client.write(bytes(1000, 1));
  client.write(bytes(500, 2));
  client.write(bytes(1000, 3));
  await s.clock.run(t0 + 100);
  assert.deepEqual(sv.times, [t0 + 30, t0 + 35, t0 + 45]);
  assert.deepEqual(
    sv.data_.map((d) => [d.bytes.length, d.bytes[0]]),
    [
      [1000, 1],
      [500, 2],
      [1000, 3],
    ],
  );
  // An idle link: no queueing.
  const t1 = s.clock.now();
  client.write(bytes(200));
  await s.clock.run(t1 + 100);
  assert.equal(sv.times.at(-1), t1 + 2 + 20);
});

test('connections between the same two hosts share each direction of the link; the two directions are independent', async () => {
  const s = setup({ latencyMs: 10, bandwidthBytesPerSec: 1_000_000 }); // 1000 bytes per ms
  const one = await connected(s);
  let second: ByteStream | undefined;
  await s.b.listen(`sim://${B}:7001`, (st) => (second = st));
  const dialling = s.a.dial(`sim://${B}:7001`);
  await s.clock.advance(100);
  const client2 = await dialling;
  const sv2 = new Log(s.clock);
  second!.setHandlers(sv2);
  const t0 = s.clock.now();
  one.client.write(bytes(5000));
  client2.write(bytes(5000));
  one.server.write(bytes(5000));
  await s.clock.advance(100);
  assert.deepEqual(one.sv.times, [t0 + 5 + 10]);
  assert.deepEqual(sv2.times, [t0 + 10 + 10]);
  assert.deepEqual(one.c.times, [t0 + 5 + 10]);
});

test('back-pressure: write returns false at the high-water mark; a paused receiver holds; drain after resume', async () => {
  const s = setup({ latencyMs: 10 }, { highWaterMark: 1000 });
  const { client, server, c, sv } = await connected(s);
  server.pause();
  const t0 = s.clock.now();
  assert.equal(client.write(bytes(600)), true);
  assert.equal(client.write(bytes(600)), false);
  assert.equal(client.bufferedBytes, 1200);
  await s.clock.advance(50);
  assert.equal(sv.data_.length, 0, 'paused: nothing handed over');
  assert.equal(client.bufferedBytes, 1200, 'held by the receiver still counts');
  assert.deepEqual(c.drains, []);
  let bufferedAtDrain = -1;
  c.onDrain = () => (bufferedAtDrain = client.bufferedBytes);
  server.resume();
  await s.clock.advance(50);
  assert.deepEqual(sv.times, [t0 + 50, t0 + 50]);
  assert.deepEqual(c.drains, [t0 + 50]);
  assert.equal(bufferedAtDrain, 0);
  assert.equal(client.write(bytes(10)), true);
  // Every write asks for a drain once delivered, even under the mark (as MemoryStream).
  await s.clock.advance(50);
  assert.deepEqual(c.drains, [t0 + 50, t0 + 110]);
});

test('bytes written before the receiver sets handlers are held, in order', async () => {
  const s = setup({ latencyMs: 5 });
  let server: ByteStream | undefined;
  await s.b.listen(`sim://${B}:7000`, (st) => (server = st));
  const dialling = s.a.dial(`sim://${B}:7000`);
  await s.clock.advance(10);
  const client = await dialling;
  for (let i = 0; i < 10; i++) client.write(bytes(100 + i, i));
  await s.clock.advance(100);
  const sv = new Log(s.clock);
  const at = s.clock.now();
  server!.setHandlers(sv);
  await s.clock.advance(1);
  assert.deepEqual(sv.sizes, [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
  assert.deepEqual(sv.times, Array<number>(10).fill(at));
});

test('loss: a lost write arrives one retransmission timeout late and holds back every later write (head-of-line)', async () => {
  const seed = 'loss'; // with this seed writes 0-2 get through and write 3 is the first lost
  const s = setup({ latencyMs: 50, loss: 0.3 }, { random: new SeededRandom(seed) });
  const { client, sv } = await connected(s);
  const t0 = s.clock.now();
  const n = 40;
  for (let i = 0; i < n; i++) client.write(bytes(10, i));
  await s.clock.advance(1_000);
  // The same draws, in the same order, decide which writes were lost.
  const u = new UniformRandom(new SeededRandom(seed));
  let blocked = false;
  const expected: number[] = [];
  for (let i = 0; i < n; i++) {
    const lost = u.next() < 0.3;
    blocked ||= lost;
    expected.push(t0 + 50 + (blocked ? 200 : 0));
  }
  assert.deepEqual(sv.times, expected);
  assert.ok(expected.includes(t0 + 50) && expected.includes(t0 + 250), 'both fates occur with this seed');
  assert.deepEqual(
    sv.data_.map((d) => d.bytes[0]),
    Array.from({ length: n }, (_, i) => i),
  );
  assert.ok(s.net.stats().retransmits > 0);
  // The timeout is max(200, 2 * latency).
  s.net.setLink(A, B, { latencyMs: 150, loss: 0.999_999 });
  const t1 = s.clock.now();
  client.write(bytes(1));
  await s.clock.advance(1_000);
  assert.equal(sv.times.at(-1), t1 + 150 + 300);
});

test('partition holds bytes in flight and written across the cut; heal releases them in order; dials across fail', async () => {
  const s = setup({ latencyMs: 20 });
  const { client, server, c, sv } = await connected(s);
  const t0 = s.clock.now();
  client.write(bytes(10, 1)); // in flight when the cut comes
  await s.clock.advance(5);
  s.net.partition([[A], [B]]);
  client.write(bytes(10, 2));
  server.write(bytes(10, 3));
  await s.clock.advance(10_000);
  assert.equal(sv.data_.length, 0);
  assert.equal(c.data_.length, 0);
  assert.equal(client.bufferedBytes, 20, 'held, not lost');
  // Dials across the cut fail after a round trip; C is in neither group, so cut from both.
  const d1 = assert.rejects(s.a.dial(`sim://${B}:7000`), isCode('DIAL_FAILED'));
  const l = await s.c.listen(`sim://${C}:7000`, () => undefined);
  const d2 = assert.rejects(s.a.dial(l.address), isCode('DIAL_FAILED'));
  await s.clock.advance(40);
  await d1;
  await d2;
  const healAt = s.clock.now();
  s.net.heal();
  assert.equal(s.net.partitioned, false);
  await s.clock.advance(100);
  assert.deepEqual(
    sv.data_.map((d) => [d.at, d.bytes[0]]),
    [
      [healAt + 20, 1],
      [healAt + 20, 2],
    ],
  );
  assert.deepEqual(c.times, [healAt + 20]);
  assert.ok(healAt > t0);
  // Hosts in the same group still talk during a partition.
  s.net.partition([[A, B], [C]]);
  const t2 = s.clock.now();
  client.write(bytes(1));
  await s.clock.advance(100);
  assert.equal(sv.times.at(-1), t2 + 20);
});

test('disconnectHost resets every stream of the host (the remote sees IO_ERROR one latency later) and closes its listeners', async () => {
  const s = setup({ latencyMs: 15 });
  const { client, c, sv } = await connected(s);
  const la = await s.a.listen(`sim://${A}:7000`, () => undefined);
  const t0 = s.clock.now();
  client.write(bytes(10)); // dropped
  s.net.disconnectHost(A);
  await s.clock.advance(100);
  assert.equal(c.closes.length, 1);
  assert.equal(c.closes[0]!.at, t0);
  assert.equal(c.closes[0]!.error?.code, 'IO_ERROR');
  assert.deepEqual(sv.data_, []);
  assert.equal(sv.closes.length, 1);
  assert.equal(sv.closes[0]!.at, t0 + 15);
  assert.equal(sv.closes[0]!.error?.code, 'IO_ERROR');
  assert.match(sv.closes[0]!.error!.message, /connection reset by peer/);
  assert.equal(s.net.streamsOpen, 0);
  const d = assert.rejects(s.b.dial(la.address), isCode('DIAL_FAILED'));
  await s.clock.advance(100);
  await d;
});

test('end flushes what is in flight, then an orderly close on both sides; destroy drops it and the remote sees IO_ERROR', async () => {
  const s = setup({ latencyMs: 20, bandwidthBytesPerSec: 100_000 });
  const one = await connected(s);
  const t0 = s.clock.now();
  one.client.write(bytes(1000, 1));
  one.client.write(bytes(1000, 2));
  one.client.end();
  assert.equal(one.client.write(bytes(1)), false, 'write after end is refused');
  one.server.write(bytes(100, 9)); // the server may still answer until it sees the end
  await s.clock.advance(500);
  assert.deepEqual(one.sv.times, [t0 + 30, t0 + 40]);
  assert.deepEqual(one.sv.closes, [{ at: t0 + 40, error: undefined }]);
  assert.deepEqual(one.c.times, [t0 + 21]);
  assert.deepEqual(one.c.closes, [{ at: t0 + 60, error: undefined }], 'after the FIN comes back');
  assert.equal(one.client.closed, true);
  assert.equal(one.server.closed, true);

  let server2: ByteStream | undefined;
  await s.b.listen(`sim://${B}:7001`, (st) => (server2 = st));
  const dialling = s.a.dial(`sim://${B}:7001`);
  await s.clock.advance(100);
  const client2 = await dialling;
  const c2 = new Log(s.clock);
  const sv2 = new Log(s.clock);
  client2.setHandlers(c2);
  server2!.setHandlers(sv2);
  const t1 = s.clock.now();
  client2.write(bytes(1000));
  await s.clock.advance(5);
  const why = new PqnetError('PEER_BANNED', 'test');
  client2.destroy(why);
  client2.destroy();
  client2.end();
  assert.equal(client2.write(bytes(1)), false);
  await s.clock.advance(500);
  assert.deepEqual(sv2.data_, [], 'in-flight bytes dropped');
  assert.deepEqual(c2.closes, [{ at: t1 + 5, error: why }]);
  assert.equal(sv2.closes.length, 1);
  assert.equal(sv2.closes[0]!.at, t1 + 5 + 20);
  assert.equal(sv2.closes[0]!.error?.code, 'IO_ERROR');
  assert.equal(s.net.streamsOpen, 0);
});

test('end lingers: with no FIN back (partition) the stream is reset after endLingerMs', async () => {
  const s = setup({ latencyMs: 20 }, { endLingerMs: 500 });
  const { client, c } = await connected(s);
  s.net.partition([[A], [B]]);
  const t0 = s.clock.now();
  client.end();
  await s.clock.advance(1_000);
  assert.deepEqual(c.closes, [{ at: t0 + 500, error: undefined }]);
});

test('a stream destroyed before handlers were set reports its close to the handlers set later', async () => {
  const s = setup({ latencyMs: 5 });
  let server: ByteStream | undefined;
  await s.b.listen(`sim://${B}:7000`, (st) => (server = st));
  const dialling = s.a.dial(`sim://${B}:7000`);
  await s.clock.advance(10);
  await dialling;
  server!.destroy();
  await s.clock.advance(1);
  assert.equal(server!.closed, true);
  const log = new Log(s.clock);
  server!.setHandlers(log);
  await s.clock.advance(1);
  assert.equal(log.closes.length, 1);
  assert.equal(log.closes[0]!.error, undefined);
});

test('closing a listener resets the connections it accepted (TCP-like), unless told otherwise', async () => {
  for (const resets of [true, false]) {
    const s = setup({ latencyMs: 5 }, { listenerCloseResets: resets });
    const { listener, c, sv } = await connected(s);
    await listener.close();
    await s.clock.advance(100);
    assert.equal(sv.closes.length, resets ? 1 : 0);
    assert.equal(c.closes.length, resets ? 1 : 0);
    if (resets) assert.equal(c.closes[0]!.error?.code, 'IO_ERROR');
  }
});

test('statistics: bytes written, per host, streams open; resetStats', async () => {
  const s = setup({ latencyMs: 5 });
  const { client, server } = await connected(s);
  client.write(bytes(100));
  client.write(bytes(50));
  server.write(bytes(7));
  let st = s.net.stats();
  assert.equal(st.bytesWritten, 157);
  assert.equal(st.writes, 3);
  assert.equal(st.bytesWrittenByHost.get(A), 150);
  assert.equal(st.bytesWrittenByHost.get(B), 7);
  assert.equal(st.connectionsOpened, 1);
  assert.equal(st.streamsOpen, 2);
  s.net.resetStats();
  st = s.net.stats();
  assert.equal(st.bytesWritten, 0);
  assert.equal(st.bytesWrittenByHost.get(A), 0);
  assert.equal(st.streamsOpen, 2);
});

/** A run with latencies, bandwidths and loss drawn from `seed`: the arrival trace. */
async function trace(seed: string): Promise<string[]> {
  const clock = new VirtualClock();
  const random = new SeededRandom(seed);
  const draw = new UniformRandom(new SeededRandom(`${seed}/latency`));
  const net = new SimNetwork({ clock, random, defaultLink: { latencyMs: 0, bandwidthBytesPerSec: 1_000_000, loss: 0.05 }, latencyOf: () => Math.round(draw.between(10, 100)) });
  const ips = Array.from({ length: 6 }, (_, i) => `10.0.${i}.1`);
  const hosts = ips.map((ip, i) => net.host(`h${i}`, ip));
  const out: string[] = [];
  const ends: ByteStream[] = [];
  const sink = (name: string): StreamHandlers => ({
    data: (b) => out.push(`${clock.now()} ${name} ${b.length}`),
    drain: () => undefined,
    close: (e) => out.push(`${clock.now()} ${name} close ${e?.code ?? ''}`),
  });
  for (const [i, h] of hosts.entries()) {
    await h.listen(`sim://${ips[i]}:7000`, (st) => {
      st.setHandlers(sink(`${st.remoteHost}>${ips[i]}`));
      ends.push(st);
    });
  }
  for (let i = 0; i < hosts.length; i++) {
    for (let j = i + 1; j < hosts.length; j++) {
      void hosts[i]!.dial(`sim://${ips[j]}:7000`).then((st) => {
        st.setHandlers(sink(`${ips[j]}>${ips[i]}`));
        ends.push(st);
      });
    }
  }
  await clock.run(300);
  const sizes = new UniformRandom(new SeededRandom(`${seed}/sizes`));
  for (let round = 0; round < 20; round++) {
    for (const e of ends) e.write(new Uint8Array(1 + Math.floor(sizes.next() * 3000)));
    await clock.advance(7);
  }
  await clock.run(clock.now() + 5_000);
  return out;
}

test('determinism: the same seed gives the same arrival trace; another seed a different one', async () => {
  const one = await trace('seed-1');
  const again = await trace('seed-1');
  const other = await trace('seed-2');
  assert.equal(one.length, 600);
  assert.deepEqual(again, one);
  assert.notDeepEqual(other, one);
});

/** Two real Nodes on the simulated network: dial, handshake, HELLO, stop; the event trace in virtual time. */
async function twoNodes(): Promise<string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-sim-'));
  const clock = new VirtualClock();
  const net = new SimNetwork({ clock, random: new SeededRandom('nodes'), defaultLink: { latencyMs: 30, bandwidthBytesPerSec: 10_000_000 } });
  const log: string[] = [];
  const make = (name: string, ip: string): Node => {
    const node = new Node({
      identity: testIdentity(name),
      chainId: 7,
      storePath: path.join(dir, `${name}.sqlite`),
      listen: [`sim://${ip}:7000`],
      transport: net.host(name, ip),
      clock,
      random: new SeededRandom(`node ${name}`),
    });
    node.on('handshake', (h) => log.push(`${clock.now()} ${name} handshake ${h.direction} ${h.ms}`));
    node.on('peer:active', (p) => log.push(`${clock.now()} ${name} active ${p.direction} ${p.address}`));
    return node;
  };
  const a = make('a', A);
  const b = make('b', B);
  try {
    await a.start();
    await b.start();
    assert.deepEqual(b.listenAddresses, [`sim://${B}:7000`]);
    // Outcomes are recorded, never awaited: a promise that only the clock can settle must not hang the test.
    let info: PeerInfo | undefined;
    let failure: unknown;
    a.connect(b.listenAddresses[0]!).then(
      (i) => {
        info = i;
        log.push(`${clock.now()} a connected ${i.peerId === b.peerId}`);
      },
      (e: unknown) => (failure = e),
    );
    await clock.run(2_000);
    assert.equal(failure, undefined);
    assert.ok(info !== undefined, 'connected within 2 s of virtual time');
    assert.equal(info.peerId, b.peerId);
    assert.equal(info.state, 'active');
    const inbound = b.peer(a.peerId);
    assert.equal(inbound?.state, 'active');
    assert.equal(inbound.host, A);
    assert.match(inbound.address, /^sim:\/\/10\.0\.0\.1:\d+$/);
    log.push(`bytes ${net.stats().bytesWritten}`);
  } finally {
    let stopped = false;
    const stopping = Promise.all([a.stop(), b.stop()]).then(() => (stopped = true));
    await clock.run(clock.now() + 10_000);
    if (stopped) await stopping;
    rmSync(dir, { recursive: true, force: true });
    assert.ok(stopped, 'both nodes stopped within 10 s of virtual time');
  }
  assert.equal(net.streamsOpen, 0);
  return log;
}

test('integration: two pqnet Nodes handshake and become active over SimNetwork in virtual time, deterministically', async () => {
  const one = await twoNodes();
  const at = (what: RegExp): number => Number(one.find((l) => what.test(l))?.split(' ')[0] ?? NaN);
  // Connect is a round trip (60 ms); the handshake and HELLO take at least one more each.
  assert.ok(at(/a handshake outbound/) >= 120, one.join('\n'));
  assert.ok(at(/a connected true/) >= 180, one.join('\n'));
  assert.ok(at(/a connected true/) < 2_000);
  assert.ok(one.some((l) => /^[\d.]+ b active inbound sim:\/\/10\.0\.0\.1:\d+$/.test(l)), one.join('\n'));
  assert.deepEqual(await twoNodes(), one);
});

// The socket transports' ByteStream contract (test/transport/_conformance.ts), run against a sim
// host at 127.0.0.1. That suite waits in real time (bounded waits, no timing assertions), so here
// the clock runs free: a driver, started by the first transport made, advances it 0.05 ms per turn.
let driver: Promise<void> | undefined;
let stopDriver = false;
const freeClock = new VirtualClock();
after(async () => {
  stopDriver = true;
  await driver;
});
let conformanceRun = 0;
conformance('sim', () => {
  driver ??= (async () => {
    while (!stopDriver) {
      await freeClock.advance(0.05);
      await new Promise((r) => setImmediate(r));
    }
  })();
  const net = new SimNetwork({ clock: freeClock, random: new SeededRandom(`conformance ${conformanceRun++}`), defaultLink: { latencyMs: 1 } });
  return net.host('lo', '127.0.0.1');
});
