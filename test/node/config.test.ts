import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { configError, flags, withDir } from './_config.ts';
import { DEFAULT_API_LISTEN, DEFAULT_LISTEN, configKeys, envName, loadConfig } from '../../src/node/config.ts';
import { DEFAULT_POLICY } from '../../src/secure/policy.ts';

test('no file, no environment, no flags: the embedded defaults, in ~/.pqnet', () => {
  withDir((home) => {
    const c = loadConfig({ homeDir: home, env: {} });
    assert.equal(c.dataDir, path.join(home, '.pqnet'));
    assert.equal(c.dbPath, path.join(home, '.pqnet', 'node.sqlite'));
    assert.equal(c.keyPath, path.join(home, '.pqnet', 'node.key'));
    assert.deepEqual(c.listen, [DEFAULT_LISTEN]);
    assert.equal(`${c.api.host}:${c.api.port}`, DEFAULT_API_LISTEN);
    assert.deepEqual(c.policy, { kem: [...DEFAULT_POLICY.kem], aead: [...DEFAULT_POLICY.aead], sig: [...DEFAULT_POLICY.sig] });
    assert.equal(c.peers.maxPeers, 50);
    assert.equal(c.peers.maxOutbound, 8);
    assert.equal(c.log.level, 'info');
    assert.deepEqual(c.limits, {});
  });
});

test('precedence: the file, then PQNET_* variables, then flags; sources are remembered', () => {
  withDir((dir) => {
    const file = path.join(dir, 'node.toml');
    writeFileSync(
      file,
      `chain_id = 5
listen = ["tcp://127.0.0.1:1"]
[peers]
max_peers = 20
max_outbound = 4
must_connect = ["tcp://10.0.0.1:7", { address = "tcp://10.0.0.2:7" }]
deny = ["10.9.0.0/16"]
[limits]
request_timeout_ms = 2500
[log]
level = "debug"
`,
    );
    const c = loadConfig({
      file,
      homeDir: dir,
      env: { PQNET_PEERS_MAX_PEERS: '30', PQNET_LISTEN: 'tcp://127.0.0.1:2,tcp://127.0.0.1:3', HOME: '/x', PQNET_LOG_FORMAT: 'text' },
      flags: flags({ peers: { max_peers: 40 }, data_dir: path.join(dir, 'data') }),
    });
    assert.equal(c.chainId, 5);
    assert.equal(c.peers.maxPeers, 40);
    assert.equal(c.peers.maxOutbound, 4);
    assert.deepEqual(c.listen, ['tcp://127.0.0.1:2', 'tcp://127.0.0.1:3']);
    assert.deepEqual(c.peers.mustConnect, [{ address: 'tcp://10.0.0.1:7' }, { address: 'tcp://10.0.0.2:7' }]);
    assert.deepEqual(c.peers.deny, ['10.9.0.0/16']);
    assert.deepEqual(c.limits, { requestTimeoutMs: 2500 });
    assert.equal(c.log.level, 'debug');
    assert.equal(c.log.format, 'text');
    assert.equal(c.dataDir, path.join(dir, 'data'));
    assert.equal(c.sources.get('chain_id'), `file ${file}`);
    assert.equal(c.sources.get('listen'), 'env PQNET_LISTEN');
    assert.equal(c.sources.get('peers.max_peers'), 'flag --peers.max_peers');
  });
});

test('config.toml in the data directory is read when no file is named', () => {
  withDir((dir) => {
    writeFileSync(path.join(dir, 'config.toml'), 'chain_id = 9\n');
    assert.equal(loadConfig({ env: { PQNET_DATA_DIR: dir } }).chainId, 9);
    assert.equal(loadConfig({ flags: flags({ data_dir: dir }), env: {} }).chainId, 9);
  });
});

test('bad values name the key, where it came from and what is allowed', () => {
  withDir((dir) => {
    const file = path.join(dir, 'bad.toml');
    writeFileSync(file, '[peers]\nmax_peerz = 3\n');
    assert.match(configError(() => loadConfig({ file, homeDir: dir, env: {} })), /peers\.max_peerz \(file .*bad\.toml\): unknown key \(known: max_peers, max_outbound/);
    writeFileSync(file, 'chain_id = "one"\n');
    assert.match(configError(() => loadConfig({ file, homeDir: dir, env: {} })), /chain_id \(file .*\): .*number/i);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_PEERS_MAX_PEERS: '0' } })), /peers\.max_peers \(env PQNET_PEERS_MAX_PEERS\): .*>=\s*1/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_PEERS_MAX_PEER: '3' } })), /unknown environment variable PQNET_PEERS_MAX_PEER/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: {}, flags: flags({ listen: ['udp://1.2.3.4:5'] }) })), /listen\[0\] \(flag --listen\): only tcp/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_CRYPTO_KEM: 'kyber512' } })), /crypto\.kem\[0\] \(env PQNET_CRYPTO_KEM\): Invalid option: expected one of "x25519-ml-kem-768"/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_PEERS_DENY: '10.0.0.0/33' } })), /peers\.deny.*not an IP address or CIDR/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_PEERS_MUST_CONNECT: 'nope@tcp://1.2.3.4:5' } })), /peers\.must_connect/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_LIMITS_REQUEST_TIMEOUT_MS: '-1' } })), /limits\.request_timeout_ms/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_API_LISTEN: 'localhost' } })), /api\.listen \(env PQNET_API_LISTEN\): expected HOST:PORT/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_PEERS_MAX_OUTBOUND: '60' } })), /max_outbound .* more than peers\.max_peers/);
    writeFileSync(file, 'chain_id = = 1\n');
    assert.match(configError(() => loadConfig({ file, homeDir: dir, env: {} })), /bad\.toml at line 1, column \d+: /);
    assert.match(configError(() => loadConfig({ file: path.join(dir, 'missing.toml'), homeDir: dir, env: {} })), /missing\.toml/);
  });
});

test('limits, algorithms and the identity algorithm are checked when the configuration loads, not at start', () => {
  withDir((dir) => {
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_LIMITS_MUX_CHUNK_BYTES: '100' } })), /limits\.mux_chunk_bytes must be in/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_CRYPTO_KEM: 'ml-kem-768,ml-kem-768' } })), /crypto \(env PQNET_CRYPTO_KEM\)/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_CRYPTO_IDENTITY: 'ed25519' } })), /crypto\.identity \(env PQNET_CRYPTO_IDENTITY\): ed25519 is not in crypto\.sig/);
    const ok = loadConfig({ homeDir: dir, env: { PQNET_CRYPTO_IDENTITY: 'ed25519', PQNET_CRYPTO_SIG: 'ed25519,ml-dsa-65' } });
    assert.equal(ok.identityAlg, 'ed25519');
  });
});

test('must-connect entries: every form needs tcp:// or ws://, and a bad peer id is named', () => {
  withDir((dir) => {
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_PEERS_MUST_CONNECT: 'udp://1.2.3.4:5' } })), /peers\.must_connect\[0\]\.address \(env PQNET_PEERS_MUST_CONNECT\): only tcp/);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_PEERS_MUST_CONNECT: 'nope@tcp://1.2.3.4:5' } })), /peers\.must_connect\[0\]\.peer_id .*not a peer id/);
  });
});

test('PQNET_CONFIG names the file like --config (and it must exist)', () => {
  withDir((dir) => {
    const file = path.join(dir, 'elsewhere.toml');
    writeFileSync(file, 'chain_id = 11\n');
    assert.equal(loadConfig({ homeDir: dir, env: { PQNET_CONFIG: file } }).chainId, 11);
    assert.match(configError(() => loadConfig({ homeDir: dir, env: { PQNET_CONFIG: path.join(dir, 'gone.toml') } })), /gone\.toml/);
  });
});

test('every key has an environment variable, and the names are unique', () => {
  const keys = configKeys();
  assert.ok(keys.includes('peers.max_peers') && keys.includes('limits.request_timeout_ms') && keys.includes('api.token'));
  assert.equal(new Set(keys.map(envName)).size, keys.length);
});
