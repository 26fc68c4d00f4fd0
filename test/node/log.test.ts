/** Structured logs: JSON and text lines, redaction, and no token in what a node with its API logs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, formatTextLine } from '../../src/node/log.ts';
import { createNodeMetrics } from '../../src/node/metrics.ts';
import { ApiServer } from '../../src/rpc/server.ts';
import { testNodes, until } from './_nodes.ts';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

test('JSON lines carry fields; fields named token, privateKey or authorization are redacted at any depth of one', async () => {
  const out = capture();
  const log = createLogger({ level: 'info', format: 'json', destination: out.stream });
  log.info({ peerId: 'pq1abc', rttMs: 0.4, token: 'secret-token-1', nested: { authorization: 'Bearer secret-2', privateKey: 'secret-3' } }, 'peer active');
  log.debug({ x: 1 }, 'below the level');
  await until(() => out.text().includes('\n'), 'the line written');
  const lines = out.text().trim().split('\n');
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(rec['msg'], 'peer active');
  assert.equal(rec['peerId'], 'pq1abc');
  assert.equal(rec['rttMs'], 0.4);
  assert.doesNotMatch(out.text(), /secret/);
  assert.equal(rec['token'], '[redacted]');
});

test('text lines: time, level, message, then key=value fields (values with spaces quoted)', () => {
  const line = formatTextLine(JSON.stringify({ level: 40, time: Date.UTC(2026, 10, 20), msg: 'ban', kind: 'peer', note: 'two words', n: 3 }));
  assert.equal(line, '2026-11-20T00:00:00.000Z WARN  ban kind=peer note="two words" n=3');
  assert.equal(formatTextLine('not json'), 'not json');
});

test('a node with its API at debug level never logs the API token, even from requests that carry it', async () => {
  const TOKEN = 'never-log-me-0123456789abcdef';
  const out = capture();
  const log = createLogger({ level: 'debug', format: 'json', destination: out.stream });
  const t = testNodes();
  let api: ApiServer | undefined;
  const metrics = { close: (): void => undefined };
  try {
    const a = t.make('a');
    const b = t.make('b');
    await a.start();
    await b.start();
    const m = createNodeMetrics(a, { defaultMetrics: false });
    metrics.close = () => m.close();
    api = await ApiServer.start({ node: a, metrics: m.registry, host: '127.0.0.1', port: 0, token: TOKEN, maxBodyBytes: 4096, log });
    const post = (path: string, body: unknown, token = TOKEN): Promise<Response> =>
      fetch(`${api!.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post('/p2p/connect', { addr: b.listenAddresses[0]! })).status, 200);
    assert.equal((await post('/p2p/ban', { address: '192.0.2.0/24', note: 'scanner' })).status, 200);
    assert.equal((await post('/p2p/ban', { address: '192.0.2.0/24' }, `${TOKEN}x`)).status, 401);
    assert.equal((await post('/p2p/ban', { token: TOKEN })).status, 400);
    await until(() => (out.text().match(/"api request"/g) ?? []).length >= 4, 'the request lines');
    const text = out.text();
    const recs = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(recs.some((r) => r['msg'] === 'api: connect' && r['addr'] === b.listenAddresses[0]));
    assert.ok(recs.some((r) => r['msg'] === 'api: ban' && r['note'] === 'scanner'));
    assert.deepEqual(
      recs.filter((r) => r['msg'] === 'api request').map((r) => r['status']),
      [200, 200, 401, 400],
    );
    assert.doesNotMatch(text, new RegExp(TOKEN));
  } finally {
    await api?.close();
    metrics.close();
    await t.cleanup();
  }
});
