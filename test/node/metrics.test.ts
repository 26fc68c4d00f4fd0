/**
 * Prometheus metrics of a Node (src/node/metrics.ts), read the way Prometheus
 * reads them: the text exposition of the registry, parsed line by line, with
 * real nodes on loopback TCP doing the things the series count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { isPqnetError } from '../../src/core/errors.ts';
import { createNodeMetrics, type NodeMetrics } from '../../src/node/metrics.ts';
import type { Node } from '../../src/node/node.ts';
import { payload, Vote } from '../mux/_types.ts';
import { testIdentity } from '../secure/_drive.ts';
import { CHAIN, testNodes, until } from './_nodes.ts';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;

/** `name{a="x",b="y"} value` lines of the text format; comments and blank lines skipped. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    assert.ok(m !== null, `unparseable line: ${line}`);
    const [, name, rawLabels, rawValue] = m as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    for (const l of (rawLabels ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    // prom-client writes NaN as `Nan`.
    const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue);
    assert.ok(!Number.isNaN(value) || /^nan$/i.test(rawValue), `bad value in: ${line}`);
    out.push({ name, labels, value });
  }
  return out;
}

class Scrape {
  readonly samples: readonly Sample[];
  readonly text: string;
  constructor(text: string) {
    this.text = text;
    this.samples = parse(text);
  }

  /** Samples of `name` whose labels include `labels`. */
  find(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** The one sample of `name` with exactly these labels; undefined if there is none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const hits = this.samples.filter((s) => s.name === name && sameLabels(s.labels, labels));
    assert.ok(hits.length <= 1, `${hits.length} samples of ${name}${JSON.stringify(labels)}`);
    return hits[0]?.value;
  }

  /** Like `value`, but a missing series counts 0 (a counter not yet incremented). */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.value(name, labels) ?? 0;
  }
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

async function scrape(m: NodeMetrics): Promise<Scrape> {
  return new Scrape(await m.registry.metrics());
}

const STRANGER = testIdentity('stranger').peerId.toString();

/** Every `reason` series of `name` equals the node's own counter map. */
function sameCounts(s: Scrape, name: string, counts: Readonly<Record<string, number>>): void {
  const got = Object.fromEntries(s.find(name).map((x) => [x.labels['reason'], x.value]));
  assert.deepEqual(got, { ...counts }, name);
}

test('the text parser reads labels, escapes and special values', () => {
  const s = new Scrape('# HELP x y\n# TYPE x counter\nx 3\ny{a="1",b="q\\"uote"} 2.5\nz_bucket{le="+Inf"} +Inf\n');
  assert.equal(s.value('x'), 3);
  assert.equal(s.value('y', { a: '1', b: 'q"uote' }), 2.5);
  assert.equal(s.value('z_bucket', { le: '+Inf' }), Infinity);
  assert.equal(s.value('y', { a: '1' }), undefined);
  assert.equal(s.find('y', { a: '1' }).length, 1);
});

test('peers, bytes, messages by type, handshakes, failures, disconnects, rejects and bans are counted; totals survive a disconnect; no peer-id in any label but p2p_info', async () => {
  const t = testNodes();
  let m: NodeMetrics | undefined;
  try {
    const a = t.make('a');
    const b = t.make('b');
    for (const n of [a, b]) n.register(Vote);
    m = createNodeMetrics(a, { defaultMetrics: false });
    await a.start();
    await b.start();
    const addrA = a.listenAddresses[0]!;
    const addrB = b.listenAddresses[0]!;

    const s0 = await scrape(m);
    assert.equal(s0.value('p2p_info', { peer_id: a.peerId, sig: 'ml-dsa-65', provider: a.providerName, chain_id: String(CHAIN) }), 1);
    for (const state of ['connecting', 'handshaking', 'active', 'disconnecting']) {
      for (const direction of ['inbound', 'outbound']) assert.equal(s0.value('p2p_peers', { state, direction }), 0, `${state}/${direction}`);
    }
    assert.equal(s0.value('p2p_bytes_total', { dir: 'in' }), 0);
    assert.equal(s0.value('p2p_bytes_total', { dir: 'out' }), 0);
    assert.equal(s0.find('p2p_msgs_total').length, 0);
    assert.equal(s0.value('p2p_bans'), 0);
    // No process or runtime metrics when defaultMetrics is false.
    assert.ok(!s0.samples.some((x) => x.name.startsWith('process_') || x.name.startsWith('nodejs_')), 'default metrics present');

    // B dials A: on A that is one active inbound connection.
    await b.connect(addrA);
    await until(() => a.peer(b.peerId)?.state === 'active', 'A to see B active');
    const s1 = await scrape(m);
    assert.equal(s1.value('p2p_peers', { state: 'active', direction: 'inbound' }), 1);
    assert.equal(s1.value('p2p_peers', { state: 'active', direction: 'outbound' }), 0);
    const in1 = s1.value('p2p_bytes_total', { dir: 'in' })!;
    const out1 = s1.value('p2p_bytes_total', { dir: 'out' })!;
    assert.ok(in1 > 0, `bytes in ${in1}`);
    assert.ok(out1 > 0, `bytes out ${out1}`);
    const hs = { direction: 'inbound', kem: 'x25519-ml-kem-768' };
    assert.equal(s1.value('p2p_handshake_duration_seconds_count', hs), 1);
    assert.equal(s1.value('p2p_handshake_duration_seconds_bucket', { ...hs, le: '+Inf' }), 1);
    assert.ok(s1.value('p2p_handshake_duration_seconds_sum', hs)! >= 0);
    for (const dir of ['in', 'out']) {
      assert.equal(s1.value('p2p_msgs_total', { dir, type: 'hello' }), 1, dir);
      assert.equal(s1.value('p2p_msgs_total', { dir, type: 'hello-ack' }), 1, dir);
    }
    assert.equal(s1.count('p2p_msgs_total', { dir: 'in', type: 'vote' }), 0);

    // Four votes B -> A, two A -> B.
    for (let i = 0; i < 4; i++) await b.send(a.peerId, Vote, [payload(50 + i)]);
    for (let i = 0; i < 2; i++) await a.send(b.peerId, Vote, [payload(60 + i)]);
    await until(() => (a.messageCounts(b.peerId)?.in['vote'] ?? 0) === 4 && (b.messageCounts(a.peerId)?.in['vote'] ?? 0) === 2, 'the votes to arrive');
    const s2 = await scrape(m);
    assert.equal(s2.value('p2p_msgs_total', { dir: 'in', type: 'vote' }), 4);
    assert.equal(s2.value('p2p_msgs_total', { dir: 'out', type: 'vote' }), 2);
    assert.ok(s2.value('p2p_bytes_total', { dir: 'in' })! > in1);
    assert.ok(s2.value('p2p_bytes_total', { dir: 'out' })! > out1);

    // A dials B expecting someone else: the handshake fails on A.
    const mismatch = await a.connect(addrB, { peerId: STRANGER }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isPqnetError(mismatch), String(mismatch));
    assert.equal(mismatch.code, 'HS_PEER_ID_MISMATCH');
    await until(() => a.peers().length === 1, 'the failed dial gone');
    const s3 = await scrape(m);
    assert.equal(s3.value('p2p_handshake_failures_total', { reason: 'HS_PEER_ID_MISMATCH' }), 1);
    assert.equal(s3.value('p2p_disconnects_total', { reason: 'HS_PEER_ID_MISMATCH' }), 1);
    // The failed handshake is not a completed one.
    assert.equal(s3.find('p2p_handshake_duration_seconds_count').reduce((n, x) => n + x.value, 0), 1);
    assert.equal(s3.value('p2p_peers', { state: 'active', direction: 'inbound' }), 1);

    // A disconnects B: counted by reason; bytes and messages of the closed connection stay in the totals.
    const votesIn = s3.value('p2p_msgs_total', { dir: 'in', type: 'vote' })!;
    const votesOut = s3.value('p2p_msgs_total', { dir: 'out', type: 'vote' })!;
    const bytesIn = s3.value('p2p_bytes_total', { dir: 'in' })!;
    const bytesOut = s3.value('p2p_bytes_total', { dir: 'out' })!;
    assert.equal(a.disconnect(b.peerId), true);
    await until(() => a.peers().length === 0 && b.peers().length === 0, 'B gone');
    const s4 = await scrape(m);
    assert.equal(s4.value('p2p_disconnects_total', { reason: 'OPERATOR_DISCONNECT' }), 1);
    assert.equal(s4.value('p2p_peers', { state: 'active', direction: 'inbound' }), 0);
    assert.equal(s4.value('p2p_msgs_total', { dir: 'in', type: 'vote' }), votesIn);
    assert.equal(s4.value('p2p_msgs_total', { dir: 'out', type: 'vote' }), votesOut);
    assert.equal(s4.value('p2p_msgs_total', { dir: 'in', type: 'hello' }), 1);
    assert.ok(s4.value('p2p_bytes_total', { dir: 'in' })! >= bytesIn, 'bytes in went down');
    assert.ok(s4.value('p2p_bytes_total', { dir: 'out' })! >= bytesOut, 'bytes out went down');

    // B comes back, and is banned: a ban counted by kind and reason, and a disconnect.
    await b.connect(addrA);
    await until(() => a.peer(b.peerId)?.state === 'active', 'A to see B again');
    a.ban({ peerId: b.peerId });
    await until(() => a.peers().length === 0 && b.peers().length === 0, 'B banned away');
    const s5 = await scrape(m);
    assert.equal(s5.value('p2p_bans_total', { kind: 'peer', reason: 'OPERATOR_BAN' }), 1);
    assert.equal(s5.value('p2p_bans'), 1);
    assert.equal(s5.value('p2p_disconnects_total', { reason: 'PEER_BANNED' }), 1);
    assert.equal(s5.value('p2p_handshake_duration_seconds_count', hs), 2);
    // Totals over both of B's connections.
    assert.equal(s5.value('p2p_msgs_total', { dir: 'in', type: 'hello' }), 2);
    assert.equal(s5.value('p2p_msgs_total', { dir: 'in', type: 'vote' }), 4);

    // An address ban refuses B at admission: a reject, by reason.
    a.ban({ address: '127.0.0.1' }, { durationMs: 60_000 });
    await assert.rejects(b.connect(addrA));
    await until(() => (a.health().rejects['PEER_BANNED'] ?? 0) === 1, 'the reject counted');
    const s6 = await scrape(m);
    assert.equal(s6.value('p2p_bans_total', { kind: 'address', reason: 'OPERATOR_BAN' }), 1);
    assert.equal(s6.value('p2p_bans'), 2);
    assert.equal(s6.value('p2p_rejects_total', { reason: 'PEER_BANNED' }), 1);
    // A refusal at admission is not a failed handshake: none began.
    assert.equal(s6.value('p2p_handshake_failures_total', { reason: 'PEER_BANNED' }), undefined);
    assert.equal(a.health().handshakes.failed['PEER_BANNED'], undefined);

    // The event counters agree with the node's own.
    const h = a.health();
    sameCounts(s6, 'p2p_disconnects_total', h.disconnects);
    sameCounts(s6, 'p2p_handshake_failures_total', h.handshakes.failed);
    sameCounts(s6, 'p2p_rejects_total', h.rejects);
    const traffic = a.traffic();
    assert.equal(s6.value('p2p_bytes_total', { dir: 'in' }), traffic.bytesIn);
    assert.equal(s6.value('p2p_bytes_total', { dir: 'out' }), traffic.bytesOut);
    for (const dir of ['in', 'out'] as const) {
      const got = Object.fromEntries(s6.find('p2p_msgs_total', { dir }).map((x) => [x.labels['type'], x.value]));
      assert.deepEqual(got, traffic.messages[dir], dir);
    }

    // Bounded cardinality: a peer-id is a label value in p2p_info only, and only ours; no addresses anywhere.
    for (const id of [a.peerId, b.peerId, STRANGER]) {
      const carriers = s6.samples.filter((x) => Object.values(x.labels).some((v) => v.includes(id)));
      if (id === a.peerId) {
        assert.deepEqual(
          carriers.map((x) => x.name),
          ['p2p_info'],
        );
      } else assert.deepEqual(carriers, [], id);
    }
    assert.equal(s6.find('p2p_info').length, 1);
    assert.ok(!s6.samples.some((x) => Object.values(x.labels).some((v) => v.includes('127.0.0.1') || /:\d+$/.test(v))), 'an address in a label');
    assert.ok(!s6.samples.some((x) => Object.values(x.labels).some((v) => v.startsWith('pq1') && x.name !== 'p2p_info')), 'a peer-id in a label');
  } finally {
    m?.close();
    await t.cleanup();
  }
});

test('close(): event counters stop; scrape-time figures still read the node', async () => {
  const t = testNodes();
  let m: NodeMetrics | undefined;
  try {
    const a = t.make('a');
    const b = t.make('b');
    m = createNodeMetrics(a, { defaultMetrics: false });
    await a.start();
    await b.start();
    await b.connect(a.listenAddresses[0]!);
    await until(() => a.peer(b.peerId)?.state === 'active', 'A to see B active');
    const before = await scrape(m);
    assert.equal(before.value('p2p_handshake_duration_seconds_count', { direction: 'inbound', kem: 'x25519-ml-kem-768' }), 1);
    assert.equal(before.count('p2p_disconnects_total', { reason: 'OPERATOR_DISCONNECT' }), 0);

    m.close();
    a.disconnect(b.peerId);
    await until(() => a.peers().length === 0 && b.peers().length === 0, 'B gone');
    await b.connect(a.listenAddresses[0]!);
    await until(() => a.peer(b.peerId)?.state === 'active', 'A to see B again');
    a.ban({ peerId: b.peerId });
    await until(() => a.peers().length === 0, 'B banned away');
    // The node counted all of it...
    assert.equal(a.health().disconnects['OPERATOR_DISCONNECT'], 1);
    assert.equal(a.health().handshakes.completed, 2);
    const after = await scrape(m);
    // ...the closed metrics did not.
    assert.equal(after.count('p2p_disconnects_total', { reason: 'OPERATOR_DISCONNECT' }), 0);
    assert.equal(after.count('p2p_disconnects_total', { reason: 'PEER_BANNED' }), 0);
    assert.equal(after.value('p2p_handshake_duration_seconds_count', { direction: 'inbound', kem: 'x25519-ml-kem-768' }), 1);
    assert.equal(after.count('p2p_bans_total', { kind: 'peer', reason: 'OPERATOR_BAN' }), 0);
    // Read at scrape time from the node, as before.
    assert.equal(after.value('p2p_bans'), 1);
    assert.equal(after.value('p2p_msgs_total', { dir: 'in', type: 'hello' }), 2);
    assert.equal(after.value('p2p_peers', { state: 'active', direction: 'inbound' }), 0);
  } finally {
    m?.close();
    await t.cleanup();
  }
});

test('RTT: answered PINGs are observed in p2p_rtt_seconds', async () => {
  const t = testNodes();
  let m: NodeMetrics | undefined;
  try {
    // The peer's first timer runs at helloTimeoutMs (it is not re-armed when the peer turns active),
    // so a short HELLO timeout brings the first PING forward too.
    const timers = { pingIntervalMs: 20, helloTimeoutMs: 400 };
    const a = t.make('a', { timers });
    const b = t.make('b', { timers });
    m = createNodeMetrics(a, { defaultMetrics: false });
    let samples = 0;
    a.on('rtt', () => samples++);
    await a.start();
    await b.start();
    assert.equal((await scrape(m)).value('p2p_rtt_seconds_count'), 0);
    await a.connect(b.listenAddresses[0]!);
    await until(() => samples >= 2, 'two RTT samples');
    const s = await scrape(m);
    const n = s.value('p2p_rtt_seconds_count')!;
    assert.ok(n >= 2, `p2p_rtt_seconds_count ${n}`);
    assert.equal(s.value('p2p_rtt_seconds_bucket', { le: '+Inf' }), n);
    assert.ok(s.value('p2p_rtt_seconds_sum')! >= 0);
    // Buckets are cumulative.
    const buckets = s.find('p2p_rtt_seconds_bucket').map((x) => x.value);
    assert.deepEqual(
      buckets,
      [...buckets].sort((x, y) => x - y),
    );
    assert.ok(a.peer(b.peerId)!.rttMs! >= 0);
  } finally {
    m?.close();
    await t.cleanup();
  }
});

test('options: default process metrics, constant labels, an existing registry', async () => {
  const t = testNodes();
  const made: NodeMetrics[] = [];
  try {
    const a: Node = t.make('a');
    const b: Node = t.make('b');
    const withDefaults = createNodeMetrics(a);
    made.push(withDefaults);
    const s = await scrape(withDefaults);
    assert.ok(s.samples.some((x) => x.name.startsWith('process_')), 'process metrics');
    assert.ok(s.samples.some((x) => x.name.startsWith('nodejs_')), 'nodejs metrics');
    assert.equal(s.value('p2p_info', { peer_id: a.peerId, sig: 'ml-dsa-65', provider: a.providerName, chain_id: String(CHAIN) }), 1);

    const registry = new Registry();
    new Counter({ name: 'app_things_total', help: 'the application\'s own', registers: [registry] }).inc(3);
    const labelled = createNodeMetrics(b, { registry, defaultMetrics: false, labels: { node: 'b' } });
    made.push(labelled);
    assert.equal(labelled.registry, registry);
    const sb = await scrape(labelled);
    assert.equal(sb.value('app_things_total', { node: 'b' }), 3);
    assert.equal(sb.value('p2p_bans', { node: 'b' }), 0);
    assert.ok(sb.samples.length > 0);
    for (const x of sb.samples) assert.equal(x.labels['node'], 'b', `${x.name} without the constant label`);
  } finally {
    for (const m of made) m.close();
    await t.cleanup();
  }
});
