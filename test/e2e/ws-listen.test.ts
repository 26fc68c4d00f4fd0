/** `pqnet listen` on ws:// and tcp:// at once, as a real process, reached by a peer on each. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CHAIN_ID } from '../../src/node/config.ts';
import { until } from '../mux/_pair.ts';
import { testNodes } from '../node/_nodes.ts';

const CLI = fileURLToPath(new URL('../../bin/pqnet.js', import.meta.url));

test('listen --listen ws://... --listen tcp://...: both are bound and accept peers; SIGTERM stops it with 0', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-ws-cli-'));
  const nodes = testNodes();
  const child = spawn(process.execPath, [CLI, 'listen', '--data-dir', dir, '--listen', 'ws://127.0.0.1:0', '--listen', 'tcp://127.0.0.1:0', '--no-api'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (stderr += c));
    child.stdout.on('data', (c: string) => {
      buf += c;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
      }
    });
    const exited = once(child, 'exit') as Promise<[number | null]>;
    await until(() => lines.some((l) => l['msg'] === 'node started') || child.exitCode !== null, 'the node to start', 6_000);
    const started = lines.find((l) => l['msg'] === 'node started');
    assert.ok(started !== undefined, `no 'node started' line; stderr: ${stderr}`);
    const listen = started['listen'] as string[];
    assert.equal(listen.length, 2);
    assert.match(listen[0]!, /^ws:\/\/127\.0\.0\.1:[1-9]\d*$/);
    assert.match(listen[1]!, /^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);

    // A peer on each address completes the handshake and HELLO with the process.
    for (const [i, address] of listen.entries()) {
      const peer = nodes.make(`peer-${i}`, { chainId: DEFAULT_CHAIN_ID, listen: [] });
      await peer.start();
      const info = await peer.connect(address);
      assert.equal(info.state, 'active');
      assert.equal(info.peerId, started['peerId']);
      assert.deepEqual(info.listenAddresses, listen, 'identify announces both addresses');
    }

    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    assert.ok(lines.some((l) => l['msg'] === 'node stopped'));
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await nodes.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
