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
