/**
 * `pqnet status` and `pqnet publish`: chain sync as an operator sees it, and
 * the development chain's producer, through the node's HTTP API (the same
 * flags as `pqnet peer`: client-commands.ts).
 */
import type { SyncProgressJson, SyncStatusResponse } from '../rpc/types.ts';
import { clientFlagsHelp, clientFor, formatAge, formatBytes, keyValues, parse, printJson, UsageError } from './client-commands.ts';

export const STATUS_USAGE = `usage: pqnet status [--watch] [--interval DURATION] [flags]

chain sync: state, heights, a progress bar, rates and the time left
  --watch               print the status again every interval until the node is synced
  --interval DURATION   seconds between updates with --watch (default 1; e.g. 500ms is not allowed, 2 is)
${clientFlagsHelp()}`;

export const PUBLISH_USAGE = `usage: pqnet publish blocks|headers|txs --count N [--txs-per-block K] [flags]

make the running node produce blocks (headers is a synonym) or transactions on its
development chain and announce them to its peers
  --count N             how many (1 to 100000)
  --txs-per-block K     new transfers in each block (default: the node's pending transactions)
${clientFlagsHelp()}`;

const BAR_WIDTH = 30;

/** `[##########----------]  41.2%` for a fraction 0–1. */
export function progressBar(fraction: number, width = BAR_WIDTH): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${(f * 100).toFixed(1).padStart(5)}%`;
}

function num(n: number): string {
  return n.toLocaleString('en-US');
}

/** The human form of a sync status. */
export function formatStatus(s: SyncStatusResponse): string {
  const p = s.progress;
  const pairs: [string, string][] = [
    ['state', `${p.state} (${p.peers} sync peer${p.peers === 1 ? '' : 's'}, chain ${s.chain})`],
    ['tip', `${num(p.tipHeight)} / ${num(p.targetHeight)}  ${progressBar(p.fraction)}`],
    ['tip hash', p.tipHash],
    ['best header', num(p.bestHeaderHeight)],
    ['rate', `${num(p.blocksPerSecond)} blocks/s (${formatBytes(p.blockBytesPerSecond)}/s), ${num(p.headersPerSecond)} headers/s`],
    ['eta', eta(p)],
  ];
  if (p.startedAt !== null) pairs.push(['started', `${p.startedAt} at height ${num(p.startHeight ?? 0)}`]);
  const b = s.blocks;
  if (b !== undefined) pairs.push(['blocks', `${String(b['blocksInFlight'])} in flight, ${String(b['queuedBlocks'])} queued, ${String(b['stalls'])} stalls${b['backPressure'] === true ? ', import behind (paused)' : ''}`]);
  return keyValues(pairs);
}

function eta(p: SyncProgressJson): string {
  if (p.state === 'synced') return 'synced';
  if (p.etaSeconds === null) return p.state === 'waiting' ? 'waiting for sync peers' : 'unknown (not moving yet)';
  return formatAge(p.etaSeconds * 1000);
}

/** One line for `--watch`: state, heights, bar, rate, eta. */
export function statusLine(p: SyncProgressJson): string {
  return `${p.state.padEnd(7)} ${num(p.tipHeight)}/${num(p.targetHeight)} ${progressBar(p.fraction)} ${num(p.blocksPerSecond)} blocks/s eta ${eta(p)}`;
}

export async function statusCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, { watch: { type: 'boolean' }, interval: { type: 'string' } }, 0);
  if (values['help'] === true) return void console.log(STATUS_USAGE);
  const intervalText = typeof values['interval'] === 'string' ? values['interval'] : '1';
  const intervalS = Number(intervalText);
  if (!Number.isFinite(intervalS) || intervalS < 0.1 || intervalS > 3_600) throw new UsageError(`--interval: expected seconds between 0.1 and 3600, got ${JSON.stringify(intervalText.slice(0, 20))}`);
  const client = clientFor(values, false);
  const first = await client.syncStatus();
  if (values['json'] === true && values['watch'] !== true) return printJson(first);
  if (values['watch'] !== true) return void console.log(formatStatus(first));
  let s = first;
  for (;;) {
    console.log(values['json'] === true ? JSON.stringify(s.progress) : statusLine(s.progress));
    if (s.progress.state === 'synced') return;
    await new Promise((resolve) => setTimeout(resolve, intervalS * 1000));
    s = await client.syncStatus();
  }
}

export async function publishCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { count: { type: 'string' }, 'txs-per-block': { type: 'string' } }, 1);
  if (values['help'] === true) return void console.log(PUBLISH_USAGE);
  const what = positionals[0];
  if (what !== 'blocks' && what !== 'headers' && what !== 'txs') throw new UsageError(`publish: expected blocks, headers or txs, got ${what === undefined ? 'nothing' : JSON.stringify(what)}`);
  const count = intArg(values['count'], '--count', 1, 100_000);
  if (count === undefined) throw new UsageError('publish: --count N is required');
  const perBlock = intArg(values['txs-per-block'], '--txs-per-block', 0, 100_000);
  if (perBlock !== undefined && what === 'txs') throw new UsageError('publish txs: --txs-per-block is for blocks');
  const kind = what === 'txs' ? 'txs' : 'blocks';
  const r = await clientFor(values, true).publish(perBlock === undefined ? { kind, count } : { kind, count, txsPerBlock: perBlock });
  if (values['json'] === true) return printJson(r);
  const noun = r.kind === 'txs' ? 'transaction' : 'block';
  console.log(`published ${num(r.count)} ${noun}${r.count === 1 ? '' : 's'}; tip ${num(r.tipHeight)} ${r.tipHash}`);
}

function intArg(v: string | boolean | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const text = String(v);
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flag}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text.slice(0, 20))}`);
  return n;
}
