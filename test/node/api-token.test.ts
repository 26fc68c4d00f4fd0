/**
 * The API's protection outside the server: the generated token file
 * (loadOrCreateApiToken), the loopback test (isLoopbackHost), and the
 * configuration rule that a non-loopback API needs an explicit token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPqnetError } from '../../src/core/errors.ts';
import { isLoopbackHost } from '../../src/core/ip.ts';
import { loadConfig } from '../../src/node/config.ts';
import { loadOrCreateApiToken } from '../../src/node/service.ts';
import { configError } from './_config.ts';

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-token-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function configInvalid(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(isPqnetError(e), String(e));
    assert.equal(e.code, 'CONFIG_INVALID', e.message);
    return e.message;
  }
  assert.fail('expected CONFIG_INVALID');
}

test('loadOrCreateApiToken: creates a 0600 file with a long random token, then returns the same token', async () => {
  await withDir(async (dir) => {
    const file = path.join(dir, 'api.token');
    const token = await loadOrCreateApiToken(file);
    assert.ok(token.length >= 32, `token of ${token.length} characters`);
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8').trim(), token);
    assert.equal(await loadOrCreateApiToken(file), token);
    assert.equal(await loadOrCreateApiToken(file), token);
    // Another file, another token.
    const other = await loadOrCreateApiToken(path.join(dir, 'other.token'));
    assert.notEqual(other, token);
  });
});

test('loadOrCreateApiToken: a token of the operator\'s own (0600) is used as written, without the newline', async () => {
  await withDir(async (dir) => {
    const file = path.join(dir, 'api.token');
    writeFileSync(file, 'my-own-token-of-some-length\n', { mode: 0o600 });
    assert.equal(await loadOrCreateApiToken(file), 'my-own-token-of-some-length');
  });
});

test('loadOrCreateApiToken: refuses a token file others can read, and one without a usable token', async () => {
  await withDir(async (dir) => {
    const open = path.join(dir, 'open.token');
    writeFileSync(open, `${'t'.repeat(40)}\n`);
    chmodSync(open, 0o644);
    assert.match(await configInvalid(loadOrCreateApiToken(open)), /readable by others.*644/);
    chmodSync(open, 0o640);
    assert.match(await configInvalid(loadOrCreateApiToken(open)), /readable by others/);
    // The file was not replaced.
    assert.equal(readFileSync(open, 'utf8'), `${'t'.repeat(40)}\n`);

    for (const [name, content] of [
      ['empty', ''],
      ['blank', '\n\n'],
      ['short', 'abc123\n'],
      ['fifteen', `${'x'.repeat(15)}\n`],
      ['two words', 'first-half-of-it second-half-of-it\n'],
      ['too long', `${'y'.repeat(257)}\n`],
    ] as const) {
      const file = path.join(dir, `${name.replace(' ', '-')}.token`);
      writeFileSync(file, content, { mode: 0o600 });
      chmodSync(file, 0o600);
      assert.match(await configInvalid(loadOrCreateApiToken(file)), /expected one token/, name);
    }
  });
});

test('loadOrCreateApiToken: a token file in a directory that does not exist is CONFIG_INVALID', async () => {
  await withDir(async (dir) => {
    assert.match(await configInvalid(loadOrCreateApiToken(path.join(dir, 'missing', 'api.token'))), /cannot write the API token file/);
  });
});

test('isLoopbackHost', () => {
  for (const host of ['127.0.0.1', '127.8.9.10', '127.255.255.255', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
    assert.equal(isLoopbackHost(host), true, host);
  }
  for (const host of ['0.0.0.0', '10.0.0.1', '128.0.0.1', '126.255.255.255', '::', '[::]', '::2', 'example.com', 'localhost.example.com', '', '::ffff:10.0.0.1', '192.168.1.1']) {
    assert.equal(isLoopbackHost(host), false, host);
  }
});

test('loadConfig: an API beyond loopback needs api.token; loopback, a token, or a disabled API are fine', async () => {
  await withDir((home) => {
    const message = configError(() => loadConfig({ homeDir: home, env: { PQNET_API_LISTEN: '0.0.0.0:41080' } }));
    assert.match(message, /api\.listen \(env PQNET_API_LISTEN\): 0\.0\.0\.0:41080 is not a loopback address; set api\.token/);
    assert.match(configError(() => loadConfig({ homeDir: home, env: { PQNET_API_LISTEN: '[::]:41080' } })), /api\.listen .*not a loopback address/);
    assert.match(configError(() => loadConfig({ homeDir: home, env: { PQNET_API_LISTEN: '10.1.2.3:41080' } })), /api\.listen .*not a loopback address/);

    const token = 'a-token-of-sixteen-or-more';
    const withToken = loadConfig({ homeDir: home, env: { PQNET_API_LISTEN: '0.0.0.0:41080', PQNET_API_TOKEN: token } });
    assert.equal(withToken.api.host, '0.0.0.0');
    assert.equal(withToken.api.port, 41080);
    assert.equal(withToken.api.token, token);
    assert.equal(withToken.api.enabled, true);

    const disabled = loadConfig({ homeDir: home, env: { PQNET_API_LISTEN: '0.0.0.0:41080', PQNET_API_ENABLED: 'false' } });
    assert.equal(disabled.api.enabled, false);
    assert.equal(disabled.api.token, undefined);

    for (const listen of ['127.0.0.1:41080', '127.3.2.1:41080', '[::1]:41080', 'localhost:41080']) {
      const c = loadConfig({ homeDir: home, env: { PQNET_API_LISTEN: listen } });
      assert.equal(c.api.token, undefined, listen);
      assert.equal(c.api.port, 41080, listen);
    }
    // The generated token lives in the data directory.
    assert.equal(loadConfig({ homeDir: home, env: {} }).tokenPath, path.join(home, '.pqnet', 'api.token'));

    // The same rule from a config file.
    const file = path.join(home, 'node.toml');
    writeFileSync(file, '[api]\nlisten = "0.0.0.0:41080"\n');
    assert.match(configError(() => loadConfig({ file, homeDir: home, env: {} })), /api\.listen \(file .*node\.toml\): 0\.0\.0\.0:41080 is not a loopback address/);
    writeFileSync(file, `[api]\nlisten = "0.0.0.0:41080"\ntoken = "${token}"\n`);
    assert.equal(loadConfig({ file, homeDir: home, env: {} }).api.token, token);
    writeFileSync(file, '[api]\nlisten = "0.0.0.0:41080"\nenabled = false\n');
    assert.equal(loadConfig({ file, homeDir: home, env: {} }).api.enabled, false);
    // A token shorter than 16 characters is refused outright.
    writeFileSync(file, '[api]\ntoken = "short"\n');
    assert.match(configError(() => loadConfig({ file, homeDir: home, env: {} })), /api\.token/);
  });
});

test('PQNET_API_TOKEN is taken verbatim (digits stay a string, quotes stay); api.token refuses spaces and control characters', async () => {
  await withDir((home) => {
    const digits = '1234567890123456';
    assert.equal(loadConfig({ homeDir: home, env: { PQNET_API_TOKEN: digits } }).api.token, digits);
    assert.equal(loadConfig({ homeDir: home, env: { PQNET_API_TOKEN: '"quoted-token-value"' } }).api.token, '"quoted-token-value"');
    for (const bad of ['my secret token with spaces', 'tab\tseparated-token-value', 'non-ascii-tökenvalue-xx']) {
      assert.match(configError(() => loadConfig({ homeDir: home, env: { PQNET_API_TOKEN: bad } })), /api\.token \(env PQNET_API_TOKEN\): expected 16 to 256 printable ASCII/, bad);
    }
    const file = path.join(home, 'spaces.toml');
    writeFileSync(file, '[api]\ntoken = "a token with spaces in it"\n');
    assert.match(configError(() => loadConfig({ homeDir: home, file, env: {} })), /api\.token .*printable ASCII characters without spaces/);
  });
});
