/** The `[gossip]` section of the node configuration: defaults, overrides from every source, and every refusal. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { configError, flags, withDir } from './_config.ts';
import { DEFAULT_GOSSIP_PARAMS } from '../../src/gossip/params.ts';
import { DEFAULT_GOSSIP_TOPICS } from '../../src/node/config-gossip.ts';
import { configKeys, loadConfig, type ResolvedConfig } from '../../src/node/config.ts';

function load(dir: string, o: { file?: string; env?: Record<string, string>; flags?: Record<string, unknown> } = {}): ResolvedConfig {
  return loadConfig({ homeDir: dir, env: o.env ?? {}, ...(o.file === undefined ? {} : { file: o.file }), ...(o.flags === undefined ? {} : { flags: flags(o.flags) }) });
}

test('defaults: gossip on, mesh mode, blocks/txs/votes joined, chain through the topics, the router\'s default parameters', () => {
  withDir((dir) => {
    const g = load(dir).gossip;
    assert.equal(g.enabled, true);
    assert.equal(g.chain, true);
    assert.deepEqual(g.topics, ['blocks', 'txs', 'votes']);
    assert.deepEqual(g.topics, DEFAULT_GOSSIP_TOPICS);
    assert.deepEqual(g.params, { ...DEFAULT_GOSSIP_PARAMS });
    assert.equal(g.params.flood, false);
    assert.deepEqual(g.define, {});
  });
});

test('a file sets everything; environment and flags override key by key, topic tables merged per topic and key', () => {
  withDir((dir) => {
    const file = path.join(dir, 'node.toml');
    writeFileSync(
      file,
      `[gossip]
enabled = true
flood = true
chain = false
topics = ["blocks", "app/chat"]
d = 3
d_lo = 2
d_hi = 5
d_lazy = 2
d_unchoked = 0
heartbeat_ms = 200

[gossip.topic."app/chat"]
max_bytes = 2048
rate_per_second = 5
burst = 10
priority = "bulk"

[gossip.topic.txs]
max_bytes = 4096
`,
    );
    const c = load(dir, { file, env: { PQNET_GOSSIP_D_HI: '6', PQNET_GOSSIP_TOPIC: '{ txs = { burst = 7 }, votes = { rate_per_second = 0.5 } }' }, flags: { gossip: { heartbeat_ms: 250 } } });
    const g = c.gossip;
    assert.equal(g.enabled, true);
    assert.equal(g.chain, false);
    assert.deepEqual(g.topics, ['blocks', 'app/chat']);
    assert.equal(g.params.flood, true);
    assert.deepEqual([g.params.D, g.params.Dlo, g.params.Dhi, g.params.Dlazy, g.params.Dunchoked, g.params.heartbeatMs], [3, 2, 6, 2, 0, 250]);
    // Not settable, so they follow D and D_low down to stay valid.
    assert.equal(g.params.Dscore, 3);
    assert.equal(g.params.Dout, 1);
    assert.deepEqual(g.define['app/chat'], { maxBytes: 2048, priority: 'bulk', rate: { count: 5, perMs: 1000, burst: 10 } });
    // The file's max_bytes for txs survives the environment's burst; the built-in rate of 200/s is kept.
    assert.deepEqual(g.define['txs'], { maxBytes: 4096, rate: { count: 200, perMs: 1000, burst: 7 } });
    // A rate alone keeps the built-in burst (votes: 2,000).
    assert.deepEqual(g.define['votes'], { rate: { count: 0.5, perMs: 1000, burst: 2000 } });
    assert.equal(c.sources.get('gossip.d_hi'), 'env PQNET_GOSSIP_D_HI');
    assert.equal(c.sources.get('gossip.heartbeat_ms'), 'flag --gossip.heartbeat_ms');
    assert.equal(c.sources.get('gossip.topic.txs.max_bytes'), `file ${file}`);
    assert.equal(c.sources.get('gossip.topic.txs.burst'), 'env PQNET_GOSSIP_TOPIC');
  });
});

test('environment: PQNET_GOSSIP_ENABLED, _FLOOD, _TOPICS (comma-separated or empty), _D...', () => {
  withDir((dir) => {
    const c = load(dir, { env: { PQNET_GOSSIP_ENABLED: 'false', PQNET_GOSSIP_FLOOD: 'true', PQNET_GOSSIP_TOPICS: 'txs, blocks,txs', PQNET_GOSSIP_D: '8', PQNET_GOSSIP_CHAIN: 'false' } });
    assert.equal(c.gossip.enabled, false);
    assert.equal(c.gossip.chain, false);
    assert.equal(c.gossip.params.flood, true);
    assert.equal(c.gossip.params.D, 8);
    assert.deepEqual(c.gossip.topics, ['txs', 'blocks'], 'listed twice is joined once');
    assert.deepEqual(load(dir, { env: { PQNET_GOSSIP_TOPICS: '' } }).gossip.topics, []);
    for (const k of ['gossip.enabled', 'gossip.flood', 'gossip.chain', 'gossip.topics', 'gossip.d', 'gossip.d_lo', 'gossip.d_hi', 'gossip.d_lazy', 'gossip.d_unchoked', 'gossip.heartbeat_ms', 'gossip.topic']) {
      assert.ok(configKeys().includes(k), k);
    }
  });
});

test('every bad value is CONFIG_INVALID naming the key, its source and what is allowed', () => {
  withDir((dir) => {
    const bad: [Record<string, string> | Record<string, unknown>, RegExp, 'env' | 'flags'][] = [
      [{ PQNET_GOSSIP_ENABLED: 'yes' }, /gossip\.enabled \(env PQNET_GOSSIP_ENABLED\): .*boolean/, 'env'],
      [{ PQNET_GOSSIP_FLOOD: '1' }, /gossip\.flood \(env PQNET_GOSSIP_FLOOD\): .*boolean/, 'env'],
      [{ PQNET_GOSSIP_CHAIN: 'maybe' }, /gossip\.chain \(env PQNET_GOSSIP_CHAIN\): .*boolean/, 'env'],
      [{ PQNET_GOSSIP_TOPICS: 'blocks,nope' }, /gossip\.topics \(env PQNET_GOSSIP_TOPICS\): unknown topic "nope"; the built-in topics are blocks, headers, txs, votes, shares, blobs, peers, others need a \[gossip\.topic\.nope\] table/, 'env'],
      [{ PQNET_GOSSIP_TOPICS: 'Blocks' }, /gossip\.topics\[0\] \(env PQNET_GOSSIP_TOPICS\): expected a topic name/, 'env'],
      [{ PQNET_GOSSIP_D: '0' }, /gossip\.d \(env PQNET_GOSSIP_D\): .*>=1/, 'env'],
      [{ PQNET_GOSSIP_D: '2.5' }, /gossip\.d \(env PQNET_GOSSIP_D\): .*int/i, 'env'],
      [{ PQNET_GOSSIP_D_LO: '0' }, /gossip\.d_lo \(env PQNET_GOSSIP_D_LO\): .*>=1/, 'env'],
      [{ PQNET_GOSSIP_D_LAZY: '-1' }, /gossip\.d_lazy \(env PQNET_GOSSIP_D_LAZY\)/, 'env'],
      [{ PQNET_GOSSIP_D_UNCHOKED: 'x' }, /gossip\.d_unchoked \(env PQNET_GOSSIP_D_UNCHOKED\): .*number/, 'env'],
      [{ PQNET_GOSSIP_HEARTBEAT_MS: '5' }, /gossip\.heartbeat_ms \(env PQNET_GOSSIP_HEARTBEAT_MS\): .*>=10/, 'env'],
      // checkParams' relations, with the operator's key names and the section's sources.
      [{ PQNET_GOSSIP_D: '13' }, /^invalid configuration: gossip \(env PQNET_GOSSIP_D\): need gossip\.d_lo <= gossip\.d <= gossip\.d_hi \(got 4, 13, 12\)$/, 'env'],
      [{ gossip: { d_lo: 7, d: 6 } }, /^invalid configuration: gossip \(flag --gossip\.d, flag --gossip\.d_lo\): need gossip\.d_lo <= gossip\.d <= gossip\.d_hi \(got 7, 6, 12\)$/, 'flags'],
      [{ gossip: { topics: ['blocks'], bogus: 1 } }, /gossip\.bogus \(flag --gossip\.bogus\): unknown key \(known: enabled, flood, chain, topics, d, d_lo, d_hi, d_lazy, d_unchoked, heartbeat_ms, topic\)/, 'flags'],
      [{ gossip: { topic: { BAD: { max_bytes: 1 } } } }, /gossip\.topic\.BAD \(flag --gossip\.topic\.BAD\): expected a topic name: 1 to 64 of a-z 0-9/, 'flags'],
      [{ gossip: { topic: { [`t${'x'.repeat(64)}`]: {} } } }, /expected a topic name/, 'flags'],
      [{ gossip: { topic: { chat: { maxBytes: 3 } } } }, /gossip\.topic\.chat\.maxBytes \(flag --gossip\.topic\.chat\.maxBytes\): unknown key \(known: max_bytes, rate_per_second, burst, priority\)/, 'flags'],
      [{ gossip: { topic: { chat: { max_bytes: 0 } } } }, /gossip\.topic\.chat\.max_bytes \(flag --gossip\.topic\.chat\.max_bytes\): .*>=1/, 'flags'],
      [{ gossip: { topic: { chat: { max_bytes: 300_000, priority: 'consensus' } } } }, /gossip\.topic\.chat\.max_bytes \(flag --gossip\.topic\.chat\.max_bytes\): 300000 is more than 262144, the largest item of priority consensus/, 'flags'],
      [{ gossip: { topic: { chat: { max_bytes: 2_000_000 } } } }, /gossip\.topic\.chat\.max_bytes .*: 2000000 is more than 1048576, the largest item of priority gossip/, 'flags'],
      // A built-in topic moved to a class whose cap is below its size.
      [{ gossip: { topic: { blocks: { priority: 'consensus' } } } }, /gossip\.topic\.blocks \(flag --gossip\.topic\.blocks\.priority\): max_bytes must be 1\.\.262144 for priority consensus/, 'flags'],
      [{ gossip: { topic: { chat: { priority: 'urgent' } } } }, /gossip\.topic\.chat\.priority .*expected one of "consensus"\|"gossip"\|"blocks"\|"transactions"\|"bulk"/, 'flags'],
      [{ gossip: { topic: { chat: { rate_per_second: 0 } } } }, /gossip\.topic\.chat\.rate_per_second .*>0/, 'flags'],
      [{ gossip: { topic: { chat: { burst: 0.5 } } } }, /gossip\.topic\.chat\.burst .*>=1/, 'flags'],
      [{ gossip: { topic: 5 } }, /gossip\.topic \(flag --gossip\.topic\): .*record/, 'flags'],
      [{ gossip: { topics: Array.from({ length: 65 }, (_, i) => `t${i}`), topic: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`t${i}`, {}])) } }, /gossip\.topics .*65 topics, at most 64 can be joined/, 'flags'],
    ];
    for (const [values, re, where] of bad) {
      const message = configError(() => (where === 'env' ? load(dir, { env: values as Record<string, string> }) : load(dir, { flags: values as Record<string, unknown> })));
      assert.match(message, re, JSON.stringify(values));
    }
  });
});

test('a file\'s bad [gossip.topic] table names the file', () => {
  withDir((dir) => {
    const file = path.join(dir, 'bad.toml');
    writeFileSync(file, '[gossip.topic.chat]\nmax_bytes = "big"\n');
    assert.match(configError(() => load(dir, { file })), /gossip\.topic\.chat\.max_bytes \(file .*bad\.toml\): .*number/);
    writeFileSync(file, '[gossip]\ntopics = ["chat"]\n');
    assert.match(configError(() => load(dir, { file })), /gossip\.topics \(file .*bad\.toml\): unknown topic "chat"/);
    // An own "__proto__" key (TOML allows it) is refused before it can reach Object.prototype.
    writeFileSync(file, '[gossip.topic.__proto__]\nmax_bytes = 5\n');
    assert.match(configError(() => load(dir, { file })), /gossip\.topic\.__proto__ \(file .*bad\.toml\): "__proto__" is not allowed as a key/);
    assert.equal(({} as Record<string, unknown>)['max_bytes'], undefined);
    assert.match(configError(() => load(dir, { env: { PQNET_GOSSIP_TOPIC: '{ __proto__ = { burst = 2 } }' } })), /\(env PQNET_GOSSIP_TOPIC\): "__proto__" is not allowed/);
    // Defined, it can be joined.
    writeFileSync(file, '[gossip]\ntopics = ["chat"]\n[gossip.topic.chat]\n');
    const g = load(dir, { file }).gossip;
    assert.deepEqual(g.topics, ['chat']);
    assert.deepEqual(g.define, { chat: {} });
  });
});
