/**
 * The `pqnet peer|info|stats` commands: they talk to a running node through its
 * HTTP API (rpc/client.ts) and print tables, or the API's JSON with `--json`.
 *
 * Which node: `--api HOST:PORT` (or an http:// URL), else the address the node
 * wrote to `<data dir>/api.addr` when it started, else the configuration's
 * `api.listen`. Which token (operator actions only): `--token`, else
 * `$PQNET_API_TOKEN`, else the configuration's `api.token`, else the
 * `<data dir>/api.token` file. The configuration is read only when one of
 * those needs it, so `--api` and `--token` work whatever the local setup.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { normalizeCidr, parseCidr } from '../core/ip.ts';
import { loadConfig, type ResolvedConfig } from '../node/config.ts';
import { ApiClient } from '../rpc/client.ts';
import type { BanJson, PeerJson, StatsResponse } from '../rpc/types.ts';
import { PeerId, PEER_ID_PREFIX } from '../secure/identity.ts';
import { parseHostPort } from '../transport/address.ts';

/** A bad command line: main.ts prints it and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const PEER_USAGE = `usage: pqnet peer <subcommand> [flags]

subcommands:
  list [--all]                               connections (active ones unless --all)
  connect --addr tcp://HOST:PORT|ws://HOST:PORT [--peer-id ID]
                                             dial a peer and wait for the handshake
  disconnect PEER-ID                         close a peer's connection
  ban PEER-ID|IP|CIDR|ADDR [--for DURATION] [--note TEXT]
                                             ban a peer or an address (DURATION: 90s, 15m, 2h, 7d, 1w)
  unban PEER-ID|IP|CIDR|ADDR                 lift a ban
  bans                                       list bans
${clientFlagsHelp()}`;

export const INFO_USAGE = `usage: pqnet info [flags]

the node's identity, addresses and algorithms
${clientFlagsHelp()}`;

export const STATS_USAGE = `usage: pqnet stats [flags]

traffic, rejects, disconnects, offenses and handshakes since the node started
${clientFlagsHelp()}`;

export function clientFlagsHelp(): string {
  return `
flags (every command):
  --api HOST:PORT | URL   the node's API (default: <data dir>/api.addr, else api.listen)
  --token TOKEN           API token for connect/disconnect/ban/unban (default: $PQNET_API_TOKEN,
                          api.token, else <data dir>/api.token)
  --data-dir DIR          the node's data directory
  --config FILE           the node's configuration file
  --json                  print the API's JSON answer`;
}

// ---- Pure helpers ----

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const DURATION_UNITS: Record<string, number> = { s: SECOND, m: MINUTE, h: HOUR, d: DAY, w: 7 * DAY };
/** Longest `--for`: ten years of 365 days. */
export const MAX_DURATION_MS = 3650 * DAY;

/** `90s`, `15m`, `2h`, `7d`, `1w`, `1.5h`, or a plain number of seconds, in milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw]?)$/.exec(s.trim());
  const shown = JSON.stringify(s.slice(0, 40));
  if (m === null) throw new Error(`${shown} is not a duration (expected a number with an optional unit s, m, h, d or w, e.g. 90s, 15m, 2h, 7d, 1w)`);
  const ms = Math.round(Number(m[1]) * (DURATION_UNITS[m[2] || 's'] as number));
  if (!(ms >= 1)) throw new Error(`${shown} is not a positive duration`);
  if (ms > MAX_DURATION_MS) throw new Error(`${shown} is longer than 10 years (3650d)`);
  return ms;
}

/**
 * What a ban or unban is about: a `pq1…` peer id, or an IP / CIDR, given as it
 * is or as the host of a `tcp://HOST:PORT` / `ws://HOST:PORT` address. The
 * address comes back canonical (`2001:DB8::1` → `2001:db8::1`, `10.1.2.3/8` → `10.0.0.0/8`).
 */
export function banTarget(s: string): { peerId: string } | { address: string } {
  const text = s.trim();
  const shown = JSON.stringify(text.slice(0, 80));
  if (text.startsWith(PEER_ID_PREFIX)) {
    try {
      return { peerId: PeerId.parse(text).toString() };
    } catch {
      throw new Error(`${shown} is not a valid peer id (pq1 followed by 52 base32 characters)`);
    }
  }
  let host = text;
  if (text.includes('://')) {
    let hp;
    try {
      hp = parseHostPort(text);
    } catch {
      throw new Error(`${shown} is not an address (expected tcp://HOST:PORT or ws://HOST:PORT, IPv6 hosts in brackets)`);
    }
    if (hp.scheme !== 'tcp' && hp.scheme !== 'ws') throw new Error(`${shown}: only tcp:// and ws:// addresses can be banned`);
    host = hp.host;
  } else if (text.startsWith('[') && text.endsWith(']')) {
    host = text.slice(1, -1);
  }
  try {
    parseCidr(host);
    return { address: normalizeCidr(host) };
  } catch {
    throw new Error(`${shown} is not a peer id, an IP address, a CIDR range or a tcp:// address with an IP host`);
  }
}

/** Control characters (a peer's agent string may hold any) shown as `?`, so a cell cannot move the cursor or break a row. */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
}

/** Left-aligned columns, two spaces apart, no trailing spaces. */
export function formatTable(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows].map((r) => r.map(printable));
  const columns = Math.max(...all.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => Array.from({ length: columns }, (_, i) => (r[i] ?? '').padEnd(widths[i] as number)).join('  ').trimEnd()).join('\n');
}

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** `0 B`, `1023 B`, `1.5 KiB`, `12.0 MiB` (binary units, one decimal). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-';
  if (Math.round(n) < 1024) return `${Math.round(n)} B`;
  let v = n;
  let unit = -1;
  // Move up while the value would print as 1024.0 or more in this unit.
  while (unit < BYTE_UNITS.length - 1 && Number(v.toFixed(1)) >= 1024) {
    v /= 1024;
    unit++;
  }
  return `${v.toFixed(1)} ${BYTE_UNITS[unit] as string}`;
}

/** `45s`, `12m`, `3h05m`, `2d04h` (rounded down). */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  const t = Math.max(0, Math.floor(ms));
  if (t < MINUTE) return `${Math.floor(t / SECOND)}s`;
  if (t < HOUR) return `${Math.floor(t / MINUTE)}m`;
  const pad = (x: number): string => String(x).padStart(2, '0');
  if (t < DAY) return `${Math.floor(t / HOUR)}h${pad(Math.floor((t % HOUR) / MINUTE))}m`;
  return `${Math.floor(t / DAY)}d${pad(Math.floor((t % DAY) / HOUR))}h`;
}

/** `0.4 ms`, `12 ms`: one decimal below 10 ms. */
function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

function formatScore(score: number | null): string {
  return score === null ? '-' : Number.isInteger(score) ? String(score) : score.toFixed(1);
}

/** `a=3, b=1` by count (largest first), or `none`. */
function formatCounts(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).filter(([, n]) => n !== 0);
  if (entries.length === 0) return 'none';
  return entries
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([k, n]) => `${k}=${n}`)
    .join(', ');
}

function list(items: readonly string[]): string {
  return items.length === 0 ? '-' : items.join(', ');
}

// ---- Flags and the node's address ----

export type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON_OPTIONS: Options = {
  api: { type: 'string' },
  token: { type: 'string' },
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export interface Parsed {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
}

export function parse(argv: string[], options: Options, positionals: number): Parsed {
  let out: ReturnType<typeof parseArgs>;
  try {
    out = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, strict: true, allowPositionals: positionals > 0 });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const values = out.values as Record<string, string | boolean | undefined>;
  if (values['help'] !== true && out.positionals.length > positionals) throw new UsageError(`unexpected argument ${JSON.stringify(out.positionals[positionals])}`);
  return { values, positionals: out.positionals };
}

export function str(values: Parsed['values'], name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** `HOST:PORT`, `[V6]:PORT` or an `http(s)://` URL as a base URL; a wildcard host becomes loopback. */
function apiBase(v: string, from: string): string {
  const text = v.trim();
  if (/^https?:\/\//i.test(text)) {
    try {
      new URL(text);
    } catch {
      throw new UsageError(`${from}: ${JSON.stringify(text)} is not a URL`);
    }
    return text;
  }
  let hp;
  try {
    hp = parseHostPort(`http://${text}`);
  } catch {
    throw new UsageError(`${from}: expected HOST:PORT, [IPV6]:PORT or an http:// URL, got ${JSON.stringify(text.slice(0, 80))}`);
  }
  // A node listening on every interface is reached on loopback.
  const host = hp.host === '0.0.0.0' ? '127.0.0.1' : hp.host === '::' ? '::1' : hp.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${hp.port}`;
}

/** Reads the configuration once, on first need. */
function configLoader(values: Parsed['values']): () => ResolvedConfig {
  let config: ResolvedConfig | undefined;
  return () => {
    if (config !== undefined) return config;
    const dataDir = str(values, 'data-dir');
    const file = str(values, 'config');
    // PQNET_API_TOKEN stays in: a non-loopback api.listen is valid only with a token, and the node reads it too.
    config = loadConfig({
      env: process.env,
      flags: { values: dataDir === undefined ? {} : { data_dir: dataDir }, describe: () => 'flag --data-dir' },
      ...(file === undefined ? {} : { file }),
    });
    return config;
  };
}

/** The first line of a file, or undefined if it does not exist or is empty. */
function readLine(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  const line = text.split(/\r?\n/)[0]?.trim() ?? '';
  return line === '' ? undefined : line;
}

/** A client for the node the flags name; `withToken` for operator actions. */
export function clientFor(values: Parsed['values'], withToken: boolean): ApiClient {
  const config = configLoader(values);
  const flag = str(values, 'api');
  let base: string;
  if (flag !== undefined) {
    base = apiBase(flag, '--api');
  } else {
    const c = config();
    const addrFile = path.join(c.dataDir, 'api.addr');
    const written = readLine(addrFile);
    base = written !== undefined ? apiBase(written, addrFile) : apiBase(`${c.api.host.includes(':') ? `[${c.api.host}]` : c.api.host}:${c.api.port}`, 'api.listen');
  }
  if (!withToken) return new ApiClient({ base });
  // A node named by --api alone is not the one whose data directory we would read the token from:
  // the local token is sent only where --data-dir or --config (or their defaults, without --api) point.
  const localToken = flag === undefined || str(values, 'data-dir') !== undefined || str(values, 'config') !== undefined;
  const { token, tokenFile } = tokenFor(values, config, localToken);
  return new ApiClient({ base, token, tokenFile });
}

function tokenFor(values: Parsed['values'], config: () => ResolvedConfig, localToken: boolean): { token: string | undefined; tokenFile: string | undefined } {
  const flag = str(values, 'token');
  if (flag !== undefined && flag !== '') return { token: flag, tokenFile: undefined };
  const env = process.env['PQNET_API_TOKEN'];
  if (env !== undefined && env !== '') return { token: env, tokenFile: undefined };
  if (!localToken) return { token: undefined, tokenFile: undefined };
  const c = config();
  if (c.api.token !== undefined) return { token: c.api.token, tokenFile: c.tokenPath };
  let token: string | undefined;
  try {
    token = readFileSync(c.tokenPath, 'utf8').trim();
  } catch {
    token = undefined;
  }
  return { token: token === '' ? undefined : token, tokenFile: c.tokenPath };
}

export function printJson(body: unknown): void {
  console.log(JSON.stringify(body, null, 2));
}

// ---- pqnet peer ----

export async function peerCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'list':
    case 'ls':
      return peerList(rest);
    case 'connect':
      return peerConnect(rest);
    case 'disconnect':
      return peerDisconnect(rest);
    case 'ban':
      return peerBan(rest);
    case 'unban':
      return peerUnban(rest);
    case 'bans':
      return peerBans(rest);
    case 'help':
    case '--help':
    case '-h':
      console.log(PEER_USAGE);
      return;
    case undefined:
      throw new UsageError('peer: missing subcommand (list, connect, disconnect, ban, unban, bans); run pqnet peer help');
    default:
      throw new UsageError(`peer: unknown subcommand ${JSON.stringify(sub)} (list, connect, disconnect, ban, unban, bans)`);
  }
}

function peerRow(p: PeerJson): string[] {
  return [
    p.peerId ?? '-',
    p.direction === 'inbound' ? 'in' : 'out',
    p.state,
    p.address,
    formatMs(p.rttMs),
    formatScore(p.score),
    formatBytes(p.bytesIn),
    formatBytes(p.bytesOut),
    formatAge(p.connectedForMs),
    p.agent ?? '-',
  ];
}

async function peerList(argv: string[]): Promise<void> {
  const { values } = parse(argv, { all: { type: 'boolean' } }, 0);
  if (values['help'] === true) return void console.log(PEER_USAGE);
  const res = await clientFor(values, false).peers();
  if (values['json'] === true) return printJson(res);
  const peers = res.peers;
  const shown = values['all'] === true ? peers : peers.filter((p) => p.state === 'active');
  if (shown.length === 0) {
    const hidden = peers.length - shown.length;
    console.log(hidden === 0 ? 'no peers' : `no active peers (${hidden} connecting or closing; --all lists them)`);
    return;
  }
  console.log(formatTable(['PEER-ID', 'DIR', 'STATE', 'ADDRESS', 'RTT', 'SCORE', 'IN', 'OUT', 'UP', 'AGENT'], shown.map(peerRow)));
}

async function peerConnect(argv: string[]): Promise<void> {
  const { values } = parse(argv, { addr: { type: 'string' }, 'peer-id': { type: 'string' } }, 0);
  if (values['help'] === true) return void console.log(PEER_USAGE);
  const addr = str(values, 'addr');
  if (addr === undefined) throw new UsageError('peer connect: --addr tcp://HOST:PORT (or ws://HOST:PORT) is required');
  let scheme: string | undefined;
  try {
    scheme = parseHostPort(addr).scheme;
  } catch {
    scheme = undefined;
  }
  if (scheme !== 'tcp' && scheme !== 'ws') throw new UsageError(`--addr: expected tcp://HOST:PORT or ws://HOST:PORT (IPv6 hosts in brackets), got ${JSON.stringify(addr.slice(0, 80))}`);
  const peerId = str(values, 'peer-id');
  if (peerId !== undefined) checkPeerId(peerId, '--peer-id');
  const res = await clientFor(values, true).connect(peerId === undefined ? { addr } : { addr, peerId });
  if (values['json'] === true) return printJson(res);
  const p = res.peer;
  const hs = p.handshake === null ? '' : ` (${p.handshake.kem}, ${p.handshake.sig}, handshake ${formatMs(p.handshake.ms)})`;
  console.log(printable(`connected to ${p.peerId ?? 'unknown peer'} at ${p.address}${hs}`));
}

function checkPeerId(s: string, what: string): void {
  try {
    PeerId.parse(s);
  } catch {
    throw new UsageError(`${what}: ${JSON.stringify(s.slice(0, 80))} is not a peer id (pq1...)`);
  }
}

async function peerDisconnect(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {}, 1);
  if (values['help'] === true) return void console.log(PEER_USAGE);
  const id = positionals[0];
  if (id === undefined) throw new UsageError('peer disconnect: missing PEER-ID');
  checkPeerId(id, 'peer disconnect');
  const res = await clientFor(values, true).disconnect({ peerId: id });
  if (values['json'] === true) return printJson(res);
  console.log(`disconnected ${id}`);
}

function targetArg(positionals: string[], what: string): { peerId: string } | { address: string } {
  const raw = positionals[0];
  if (raw === undefined) throw new UsageError(`${what}: missing PEER-ID, IP, CIDR or ADDR`);
  try {
    return banTarget(raw);
  } catch (e) {
    throw new UsageError(`${what}: ${(e as Error).message}`);
  }
}

function targetText(t: { peerId: string } | { address: string }): string {
  return 'peerId' in t ? t.peerId : t.address;
}

async function peerBan(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { for: { type: 'string' }, note: { type: 'string' } }, 1);
  if (values['help'] === true) return void console.log(PEER_USAGE);
  const target = targetArg(positionals, 'peer ban');
  const forText = str(values, 'for');
  let durationMs: number | undefined;
  if (forText !== undefined) {
    try {
      durationMs = parseDuration(forText);
    } catch (e) {
      throw new UsageError(`--for: ${(e as Error).message}`);
    }
  }
  const note = str(values, 'note');
  const res = await clientFor(values, true).ban({ ...target, ...(durationMs === undefined ? {} : { durationMs }), ...(note === undefined ? {} : { note }) });
  if (values['json'] === true) return printJson(res);
  console.log(printable(`banned ${res.ban.target} until ${res.ban.expiresAt} (${res.ban.reason})`));
}

async function peerUnban(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {}, 1);
  if (values['help'] === true) return void console.log(PEER_USAGE);
  const target = targetArg(positionals, 'peer unban');
  const res = await clientFor(values, true).unban(target);
  if (values['json'] === true) return printJson(res);
  console.log(`unbanned ${targetText(target)}`);
}

function banRow(b: BanJson): string[] {
  return [b.kind, b.target, b.reason, b.expiresAt, String(b.offenses), b.note === '' ? '-' : b.note];
}

async function peerBans(argv: string[]): Promise<void> {
  const { values } = parse(argv, {}, 0);
  if (values['help'] === true) return void console.log(PEER_USAGE);
  const res = await clientFor(values, false).bans();
  if (values['json'] === true) return printJson(res);
  if (res.bans.length === 0) return void console.log('no bans');
  console.log(formatTable(['KIND', 'TARGET', 'REASON', 'EXPIRES', 'OFFENSES', 'NOTE'], res.bans.map(banRow)));
}

// ---- pqnet info ----

/** `key: value` lines with the values aligned. */
export function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => printable(`${`${k}:`.padEnd(width)} ${v}`).trimEnd()).join('\n');
}

export async function infoCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {}, 0);
  if (values['help'] === true) return void console.log(INFO_USAGE);
  const i = await clientFor(values, false).info();
  if (values['json'] === true) return printJson(i);
  console.log(
    keyValues([
      ['peer id', i.peerId],
      ['identity alg', i.identityAlg],
      ['chain id', String(i.chainId)],
      ['agent', i.agent],
      ['version', `${i.version} (protocol ${i.protocolVersion}, peer protocol ${i.peerProtocolVersion})`],
      ['listen', list(i.listen)],
      ['announce', list(i.announce)],
      ['kem', list(i.algorithms.kem)],
      ['aead', list(i.algorithms.aead)],
      ['sig', list(i.algorithms.sig)],
      ['policy root', i.policyRoot],
      ['provider', i.provider],
      ['uptime', `${formatAge(i.uptimeMs)} (since ${i.startedAt})`],
    ]),
  );
}

// ---- pqnet stats ----

export async function statsCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {}, 0);
  if (values['help'] === true) return void console.log(STATS_USAGE);
  const s = await clientFor(values, false).stats();
  if (values['json'] === true) return printJson(s);
  console.log(formatStats(s));
}

/** The human form of `/p2p/stats`: summary lines, then the message and score tables. */
export function formatStats(s: StatsResponse): string {
  const failed = Object.values(s.handshakes.failed).reduce((a, n) => a + n, 0);
  const out = [
    keyValues([
      ['peers', `${formatCounts(s.peers.byState)} (inbound ${s.peers.inbound}, outbound ${s.peers.outbound})`],
      ['bytes', `${formatBytes(s.bytes.in)} in, ${formatBytes(s.bytes.out)} out`],
      ['handshakes', `${s.handshakes.completed} completed, ${failed} failed${failed === 0 ? '' : ` (${formatCounts(s.handshakes.failed)})`}`],
      ['rejects', formatCounts(s.rejects)],
      ['disconnects', formatCounts(s.disconnects)],
      ['offenses', formatCounts(s.offenses)],
      ['bans', String(s.bans)],
      ['peer book', String(s.peerBook)],
    ]),
  ];
  const types = [...new Set([...Object.keys(s.messages.in), ...Object.keys(s.messages.out)])].sort();
  out.push('', 'messages:');
  if (types.length === 0) out.push('  none');
  else out.push(indent(formatTable(['TYPE', 'IN', 'OUT'], types.map((t) => [t, String(s.messages.in[t] ?? 0), String(s.messages.out[t] ?? 0)]))));
  out.push('', 'lowest scores:');
  if (s.scores.length === 0) out.push('  none (every peer is neutral)');
  else out.push(indent(formatTable(['PEER-ID', 'SCORE', 'STATUS'], s.scores.slice(0, 10).map((x) => [x.peerId, formatScore(x.score), x.status]))));
  return out.join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
