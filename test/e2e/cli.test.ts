/** The `pqnet` command as a real process: keygen, listen until SIGTERM, and one-line errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { until } from '../mux/_pair.ts';

const CLI = fileURLToPath(new URL('../../bin/pqnet.js', import.meta.url));

function pqnet(args: string[], env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'pqnet-cli-'));
}

test('keygen writes a 0600 key file and prints its peer id; it never overwrites without --force', () => {
  const dir = tempDir();
  try {
    const first = pqnet(['keygen', '--data-dir', dir]);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout.trim(), /^pq1[a-z2-7]+$/);
    assert.equal(statSync(path.join(dir, 'node.key')).mode & 0o777, 0o600);
    const again = pqnet(['keygen', '--data-dir', dir]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^pqnet: KEY_FILE_EXISTS: .*node\.key\n$/);
    const forced = pqnet(['keygen', '--data-dir', dir, '--force', '--alg', 'slh-dsa-shake-128s']);
    assert.equal(forced.status, 0, forced.stderr);
    assert.notEqual(forced.stdout, first.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad commands, flags and values: one line on stderr, exit 2, no stack trace', () => {
  const dir = tempDir();
  try {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['listen', '--bogus'], /Unknown option '--bogus'/],
      [['keygen', '--alg', 'rsa'], /--alg: "rsa" is not one of/],
      [['listen', '--data-dir', dir, '--max-peers', 'lots'], /peers\.max_peers \(flag --max-peers\)/],
      [['listen', '--data-dir', dir, '--listen', 'tcp://nowhere'], /listen\[0\] \(flag --listen\): .*expected scheme:\/\/host:port/],
      [['listen', '--data-dir', dir, '--db', 'peers.db'], /--db: expected sqlite:PATH/],
      [['listen', '--config', path.join(dir, 'missing.toml')], /missing\.toml/],
    ];
    for (const [args, message] of cases) {
      const r = pqnet(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${args.join(' ')}: no stack trace`);
    }
    const env = pqnet(['listen', '--data-dir', dir], { PQNET_PEERS_MAX_PEERZ: '3' });
    assert.equal(env.status, 2);
    assert.match(env.stderr, /unknown environment variable PQNET_PEERS_MAX_PEERZ/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listen: generates a key at first start, runs until SIGTERM, stops cleanly, and keeps its identity', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const run = async (): Promise<{ lines: Record<string, unknown>[]; code: number | null }> => {
    const child = spawn(process.execPath, [CLI, 'listen', '--data-dir', dir, '--listen', 'tcp://127.0.0.1:0', '--no-api'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      buf += c;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
      }
    });
    const exited = once(child, 'exit') as Promise<[number | null]>;
    try {
      await until(() => lines.some((l) => l['msg'] === 'node started'), 'the node to start', 6_000);
      child.kill('SIGTERM');
      const [code] = await exited;
      return { lines, code };
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  };
  try {
    const first = await run();
    assert.equal(first.code, 0);
    const started = first.lines.find((l) => l['msg'] === 'node started')!;
    assert.ok(first.lines.some((l) => l['msg'] === 'generated a new node key'));
    assert.ok(first.lines.some((l) => l['msg'] === 'node stopped'));
    assert.match(String((started['listen'] as string[])[0]), /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const second = await run();
    assert.equal(second.code, 0);
    assert.ok(!second.lines.some((l) => l['msg'] === 'generated a new node key'));
    assert.equal(second.lines.find((l) => l['msg'] === 'node started')!['peerId'], started['peerId']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
