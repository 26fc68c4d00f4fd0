/**
 * Real `pqnet` processes for e2e tests: one-shot client commands, and
 * `pqnet listen` nodes in their own data directories (JSON log lines kept),
 * stopped with SIGTERM or killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { PeerJson, PeersResponse } from '../../src/rpc/types.ts';

export const CLI = fileURLToPath(new URL('../../bin/pqnet.js', import.meta.url));

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** One `pqnet` client command, bounded to 30 s. */
export async function pqnet(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

export async function ok(args: string[]): Promise<string> {
  const r = await pqnet(args);
  assert.equal(r.code, 0, `pqnet ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Poll an async condition every 100 ms, at most `tries` times. */
export async function eventually(cond: () => Promise<boolean>, what: string, tries = 100): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

export class NodeProcess {
  readonly dir: string;
  readonly lines: Record<string, unknown>[] = [];
  child: ChildProcess | undefined;
  #exited: Promise<[number | null, NodeJS.Signals | null]> | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Start `pqnet listen` (with `extra` flags) and wait for its 'node started' line. */
  async start(listen: string, extra: readonly string[] = [], logLevel = 'debug', env: Readonly<Record<string, string>> = {}): Promise<{ peerId: string; listen: string; api: string }> {
    this.lines.length = 0;
    const child = spawn(process.execPath, [CLI, 'listen', '--data-dir', this.dir, '--listen', listen, '--api', '127.0.0.1:0', '--log-level', logLevel, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.child = child;
    this.#exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      buf += c;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        this.lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
      }
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    for (let i = 0; i < 300 && this.started() === undefined; i++) {
      if (child.exitCode !== null) assert.fail(`pqnet listen exited ${child.exitCode}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const started = this.started();
    assert.ok(started !== undefined, `node in ${this.dir} did not start: ${stderr}`);
    return { peerId: started['peerId'] as string, listen: (started['listen'] as string[])[0]!, api: started['api'] as string };
  }

  started(): Record<string, unknown> | undefined {
    return this.lines.find((l) => l['msg'] === 'node started');
  }

  async stop(): Promise<number | null> {
    this.child!.kill('SIGTERM');
    const [code] = await this.#exited!;
    return code;
  }

  /** Resolves when the process has exited (after `kill`). */
  async exited(): Promise<void> {
    await this.#exited;
  }

  kill(): void {
    if (this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  async peers(): Promise<readonly PeerJson[]> {
    return (JSON.parse(await ok(['peer', 'list', '--json', '--data-dir', this.dir])) as PeersResponse).peers;
  }

  async metrics(api: string): Promise<Map<string, number>> {
    const text = await (await fetch(`${api}/metrics`)).text();
    const m = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const sp = line.lastIndexOf(' ');
      m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
    return m;
  }
}
