#!/usr/bin/env node
// The `pqnet` command. The CLI is TypeScript run directly by Node 24 (the
// project's runtime, pinned as the `node` dev dependency). Under `npx pqnet` or
// an npm script, `node` already is Node 24; started by an older `node`, this
// shim re-runs the CLI on the pinned one, forwarding arguments, stdio, signals
// and the exit status. Plain JavaScript, so any Node can run it.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const major = Number(process.versions.node.split('.')[0]);

if (major >= 24) {
  const { main } = await import(cli);
  process.exitCode = await main(process.argv.slice(2));
} else {
  let node24;
  try {
    node24 = createRequire(import.meta.url).resolve('node/bin/node');
  } catch {
    console.error(`pqnet: needs Node.js 24 (this is ${process.version}); run npm ci in the pqnet directory`);
    process.exit(1);
  }
  const child = spawn(node24, [cli, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (signal !== null) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
