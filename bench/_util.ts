/**
 * Shared benchmark helpers: options, JSON figures on stdout, statistics, and
 * child processes that announce themselves with a ready line and are always
 * killed when the parent exits.
 *
 * Parent <-> child protocol: newline-delimited JSON. The child's first stdout
 * line is `{"event":"ready",...}`; afterwards it sends events, and reads
 * commands (`{"cmd":...}`) from stdin. The child exits when its stdin closes,
 * so a parent killed with SIGKILL does not leave children behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { createInterface } from 'node:readline';

export interface BenchOptions {
  /** ~15 s smoke run instead of the full measurement. */
  readonly quick: boolean;
  /** Run only the implementations whose name contains this (e.g. `--only=pqnet-native`). */
  readonly only?: string;
}

export function selected(opts: BenchOptions, impl: string): boolean {
  return opts.only === undefined || impl.includes(opts.only);
}

export type Json = Record<string, unknown>;

/** One figure per line on stdout; nothing else goes to stdout. */
export function emit(figure: Json): void {
  process.stdout.write(`${JSON.stringify(figure)}\n`);
}

/** Progress and diagnostics go to stderr. */
export function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/**
 * One line describing the machine, so stored figures can be compared. Other
 * processes competing for the cores make every figure noisy: check loadavg.
 */
export function emitEnvironment(bench: string, opts: BenchOptions): void {
  const cpus = os.cpus();
  const load = os.loadavg().map((x) => round(x, 2));
  emit({
    bench,
    metric: 'environment',
    mode: opts.quick ? 'quick' : 'full',
    node: process.version,
    openssl: process.versions.openssl,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    loadavg: load,
    time: new Date().toISOString(),
  });
  if (load[0]! > 0.5) log(`load average ${load.join(' ')} before the run: other processes compete for the ${cpus.length} cores; figures will be noisy`);
}

export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Nearest-rank percentile of an ascending array (p in [0, 100]). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Payload megabytes (10^6 bytes) per second. */
export function mbPerSecond(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

export const MiB = 1024 * 1024;

/** Rejects after `ms` unless `p` settles first. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

// ------------------------------------------------------------------ parent side

const liveChildren = new Set<ChildProcess>();
let exitHooksInstalled = false;

function killAllChildren(): void {
  for (const c of liveChildren) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  liveChildren.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAllChildren);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAllChildren();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
  process.on('uncaughtException', (e) => {
    process.stderr.write(`[bench] uncaught: ${e.stack ?? String(e)}\n`);
    killAllChildren();
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`[bench] unhandled rejection: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    killAllChildren();
    process.exit(1);
  });
}

/** A benchmark child process speaking line-delimited JSON over stdin/stdout. */
export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** The ready line's fields. */
  info: Json = {};
  readonly #queue: Json[] = [];
  readonly #waiters: ((m: Json | undefined) => void)[] = [];
  #exited = false;
  readonly #exitPromise: Promise<void>;

  private constructor(name: string, proc: ChildProcess) {
    this.name = name;
    this.proc = proc;
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      let msg: Json;
      try {
        msg = JSON.parse(line) as Json;
      } catch {
        process.stderr.write(`[${name}] stdout: ${line}\n`);
        return;
      }
      const w = this.#waiters.shift();
      if (w !== undefined) w(msg);
      else this.#queue.push(msg);
    });
    this.#exitPromise = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.#exited = true;
        liveChildren.delete(proc);
        if (code !== 0 && signal !== 'SIGKILL') process.stderr.write(`[bench] child ${name} exited with ${code ?? signal}\n`);
        for (const w of this.#waiters.splice(0)) w(undefined);
        resolve();
      });
    });
    // A broken pipe to a dead child is reported through 'exit'.
    proc.stdin!.on('error', () => undefined);
  }

  /**
   * Spawn `script` (a .ts file) on this Node.js binary and wait for its ready
   * line. NODE_OPTIONS is inherited, so `NODE_OPTIONS=--cpu-prof` profiles
   * children too. `nodeArgs` go before the script (e.g. `--expose-gc`).
   */
  static async spawn(name: string, script: string, args: readonly string[], readyTimeoutMs = 30_000, nodeArgs: readonly string[] = []): Promise<Child> {
    installExitHooks();
    const proc = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    liveChildren.add(proc);
    const child = new Child(name, proc);
    try {
      const ready = await child.next(readyTimeoutMs);
      if (ready.event !== 'ready') throw new Error(`child ${name}: expected a ready line, got ${JSON.stringify(ready)}`);
      child.info = ready;
    } catch (e) {
      child.kill();
      throw e;
    }
    return child;
  }

  send(msg: Json): void {
    if (!this.#exited) this.proc.stdin!.write(`${JSON.stringify(msg)}\n`);
  }

  /** The next message from the child. */
  next(timeoutMs = 60_000): Promise<Json> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#exited) return Promise.reject(new Error(`child ${this.name} has exited`));
    const p = new Promise<Json>((resolve, reject) => {
      this.#waiters.push((m) => (m === undefined ? reject(new Error(`child ${this.name} exited`)) : resolve(m)));
    });
    return withTimeout(p, timeoutMs, `message from child ${this.name}`);
  }

  /** The next message whose `event` is `event` (others are logged and dropped). */
  async nextEvent(event: string, timeoutMs = 60_000): Promise<Json> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const m = await this.next(Math.max(1, deadline - performance.now()));
      if (m.event === event) return m;
      process.stderr.write(`[bench] child ${this.name}: unexpected ${JSON.stringify(m)}\n`);
    }
  }

  async request(cmd: Json, event: string, timeoutMs = 60_000): Promise<Json> {
    this.send(cmd);
    return this.nextEvent(event, timeoutMs);
  }

  /** Ask the child to exit (closing stdin), then kill it if it lingers. */
  async close(graceMs = 5_000): Promise<void> {
    if (this.#exited) return;
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.#exitPromise;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.#exited) this.proc.kill('SIGKILL');
  }
}

/** Run `fn` with the children it creates closed afterwards, whatever happens. */
export async function withChild<T>(name: string, script: string, args: readonly string[], fn: (c: Child) => Promise<T>, nodeArgs: readonly string[] = []): Promise<T> {
  const c = await Child.spawn(name, script, args, 30_000, nodeArgs);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

// ------------------------------------------------------------------- child side

/** Send one event to the parent. */
export function toParent(msg: Json): void {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
}

/**
 * Announce readiness and serve commands from the parent until stdin closes,
 * then run `onExit` and exit.
 */
export function serveParent(ready: Json, onCommand: (cmd: Json) => Promise<Json | undefined> | Json | undefined, onExit?: () => Promise<void>): void {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let cmd: Json;
    try {
      cmd = JSON.parse(line) as Json;
    } catch {
      process.stderr.write(`[child] bad command line: ${line}\n`);
      return;
    }
    Promise.resolve(onCommand(cmd)).then(
      (reply) => {
        if (reply !== undefined) toParent(reply);
      },
      (e: unknown) => toParent({ event: 'error', message: e instanceof Error ? e.message : String(e) }),
    );
  });
  rl.on('close', () => {
    const hard = setTimeout(() => process.exit(0), 3_000);
    hard.unref();
    void (onExit?.() ?? Promise.resolve()).finally(() => process.exit(0));
  });
  toParent({ event: 'ready', ...ready });
}

export function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) flags.set(a.slice(2), argv[++i]!);
    else flags.set(a.slice(2), 'true');
  }
  return flags;
}
