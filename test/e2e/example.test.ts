import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);

test('the README example runs and the two nodes greet each other', async () => {
  const example = fileURLToPath(new URL('../../examples/two-nodes.ts', import.meta.url));
  const { stdout } = await run(process.execPath, [example], { timeout: 30_000 });
  assert.match(stdout, /alice connected to pq1[a-z2-7]{52} with x25519-ml-kem-768 \+ chacha20-poly1305/);
  assert.match(stdout, /bob {3}<- pq1.*: hello bob/);
  assert.match(stdout, /alice <- pq1.*: hello alice/);
  assert.match(stdout, /rtt \d+\.\d+ ms/);
});

test('the Node example runs: connect, HELLO, a vote, a request, health', async () => {
  const example = fileURLToPath(new URL('../../examples/node.ts', import.meta.url));
  const { stdout } = await run(process.execPath, [example], { timeout: 30_000 });
  assert.match(stdout, /alice connected to pq1[a-z2-7]{52} \(agent example\/bob, height 12\)/);
  assert.match(stdout, /bob {3}<- pq1.*: vote 1 "yes"/);
  assert.match(stdout, /bob asks alice for her height: 10/);
  assert.match(stdout, /alice health: \{"connecting":0,"handshaking":0,"active":1,"disconnecting":0,"closed":0\}/);
});
