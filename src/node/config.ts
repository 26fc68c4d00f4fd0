/**
 * Node configuration (DESIGN.md, Node and operations): a TOML file, then
 * `PQNET_*` environment variables, then command-line flags, each overriding
 * the one before; every setting has a default (docs/CONFIG.md lists them).
 *
 * The three sources are merged into one raw tree of TOML-style keys
 * (`peers.max_peers`) that remembers where each value came from, and the tree
 * is validated by one zod schema: an unknown key, a wrong type or an
 * out-of-range value fails with CONFIG_INVALID naming the key, its source and
 * what is allowed. Environment variable names follow the keys:
 * `peers.max_peers` is `PQNET_PEERS_MAX_PEERS`. Their values are read as TOML
 * values when they parse as one (`20`, `true`, `["a", "b"]`) and as strings
 * otherwise; list settings also take a comma-separated string.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { PqnetError } from '../core/errors.ts';
import { DEFAULT_LIMITS, makeLimits, type Limits } from '../core/limits.ts';
import { isLoopbackHost, normalizeCidr } from '../core/ip.ts';
import { DEFAULT_RATE_LIMITS, type RateLimits } from '../peer/limiter.ts';
import { DEFAULT_PEER_SET_OPTIONS } from '../peer/peer-set.ts';
import { AEAD_ALGS, KEM_ALGS, SIG_ALGS, type AeadAlg, type KemAlg, type SigAlg } from '../secure/algorithms.ts';
import { PeerId } from '../secure/identity.ts';
import { compilePolicy, DEFAULT_POLICY, type AlgorithmPolicy } from '../secure/policy.ts';
import { DEFAULT_DEVCHAIN_PARAMS, MAX_STATE_ACCOUNTS } from '../chain/devchain/params.ts';
import { DEFAULT_BLOCK_SYNC_OPTIONS, type BlockSyncOptions } from '../sync/blocks.ts';
import { gossipSection, resolveGossip, type GossipConfig } from './config-gossip.ts';
import { count, list } from './config-schema.ts';
import { MAX_BLOCKS_PER_MESSAGE } from '../sync/messages.ts';
import { parseHostPort } from '../transport/address.ts';
import type { MustConnectPeer } from './node.ts';

/** Larger configuration files are refused unread. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

export const DEFAULT_LISTEN = 'tcp://127.0.0.1:41000';
export const DEFAULT_API_LISTEN = '127.0.0.1:41080';
export const DEFAULT_CHAIN_ID = 1;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

// ---- Schema ----

const address = z.string().superRefine((v, ctx) => {
  try {
    parseHostPort(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `${(e as Error).message}` });
  }
});

/** Schemes the node's transport serves (TcpTransport and WebSocketTransport, src/node/node.ts). */
const DIALABLE_SCHEMES = ['tcp', 'ws'];

const dialableAddress = address.refine((v) => DIALABLE_SCHEMES.some((s) => v.startsWith(`${s}://`)), { message: 'only tcp:// and ws:// addresses are supported by this version' });

const peerId = z.string().superRefine((v, ctx) => {
  try {
    PeerId.parse(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a peer id (pq1...)' });
  }
});

const cidr = z.string().superRefine((v, ctx) => {
  try {
    normalizeCidr(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not an IP address or CIDR range' });
  }
});

/** `tcp://host:port` (or `ws://`), `PEERID@tcp://host:port`, or `{ address, peer_id }`: the string forms become the table form. */
const mustConnect = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    const at = v.indexOf('@');
    return at < 0 ? { address: v } : { address: v.slice(at + 1), peer_id: v.slice(0, at) };
  },
  z.strictObject({ address: dialableAddress, peer_id: peerId.optional() }).transform((v): MustConnectPeer => (v.peer_id === undefined ? { address: v.address } : { address: v.address, peerId: v.peer_id })),
);

const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** `[limits]`: every key of `Limits`, in snake_case, a non-negative number. */
const limitsSection = z.strictObject(Object.fromEntries(Object.keys(DEFAULT_LIMITS).map((k) => [snake(k), z.number().min(0).optional()])) as Record<string, z.ZodOptional<z.ZodNumber>>);

const sections = {
  peers: z.strictObject({
    max_peers: count(1, 100_000).default(DEFAULT_PEER_SET_OPTIONS.maxPeers),
    max_outbound: count(0, 10_000).default(DEFAULT_PEER_SET_OPTIONS.maxOutbound),
    max_per_ip: count(1, 100_000).default(DEFAULT_PEER_SET_OPTIONS.maxPeersPerIp),
    max_per_subnet: count(1, 100_000).default(DEFAULT_PEER_SET_OPTIONS.maxPeersPerSubnet),
    must_connect: list(mustConnect).default([]),
    allow: list(cidr).default([]),
    deny: list(cidr).default([]),
  }),
  rate: z.strictObject({
    messages_per_second: z.number().positive().max(1e9).default(DEFAULT_RATE_LIMITS.messagesPerSecond),
    bytes_per_second: z.number().positive().max(1e12).default(DEFAULT_RATE_LIMITS.bytesPerSecond),
  }),
  limits: limitsSection,
  crypto: z.strictObject({
    kem: list(z.enum(KEM_ALGS as [KemAlg, ...KemAlg[]]), 1).default([...DEFAULT_POLICY.kem]),
    aead: list(z.enum(AEAD_ALGS as [AeadAlg, ...AeadAlg[]]), 1).default([...DEFAULT_POLICY.aead]),
    sig: list(z.enum(SIG_ALGS as [SigAlg, ...SigAlg[]]), 1).default([...DEFAULT_POLICY.sig]),
    /** Algorithm of the key generated at first start. */
    identity: z.enum(SIG_ALGS as [SigAlg, ...SigAlg[]]).default('ml-dsa-65'),
  }),
  api: z.strictObject({
    enabled: z.boolean().default(true),
    listen: z.string().default(DEFAULT_API_LISTEN),
    /** Printable ASCII without spaces: it travels in an `Authorization: Bearer` header. */
    token: z
      .string()
      .regex(/^[\x21-\x7e]{16,256}$/, 'expected 16 to 256 printable ASCII characters without spaces')
      .optional(),
    max_body_bytes: count(256, 1024 * 1024).default(16 * 1024),
  }),
  sync: z.strictObject({
    /** Run chain sync (the devchain in `db`) with peers that speak pqnet/sync/1. */
    enabled: z.boolean().default(true),
    /** The chain's SQLite file (default `<data dir>/chain.sqlite`). */
    db: z.string().min(1).optional(),
    /** `full`: every block from genesis; `state`: a state snapshot from peers first, then the blocks above it. */
    mode: z.enum(['full', 'state']).default('full'),
    window_blocks: count(1, 100_000).default(DEFAULT_BLOCK_SYNC_OPTIONS.windowBlocks),
    range_blocks: count(1, MAX_BLOCKS_PER_MESSAGE).default(DEFAULT_BLOCK_SYNC_OPTIONS.rangeBlocks),
    requests_per_peer: count(1, 64).default(DEFAULT_BLOCK_SYNC_OPTIONS.maxRequestsPerPeer),
    stall_ms: count(100, 600_000).default(DEFAULT_BLOCK_SYNC_OPTIONS.stallMs),
  }),
  devchain: z.strictObject({
    /** Accounts in the genesis state; every node of a network must use the same value. */
    genesis_accounts: count(2, MAX_STATE_ACCOUNTS).default(DEFAULT_DEVCHAIN_PARAMS.genesisAccounts),
  }),
  gossip: gossipSection,
  log: z.strictObject({
    level: z.enum(LOG_LEVELS).default('info'),
    format: z.enum(['json', 'text']).default('json'),
  }),
};

const ConfigSchema = z.strictObject({
  data_dir: z.string().min(1).optional(),
  chain_id: count(0, 0xffff_ffff).default(DEFAULT_CHAIN_ID),
  db: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  listen: list(dialableAddress).default([DEFAULT_LISTEN]),
  announce: list(address).default([]),
  seeds: list(dialableAddress).default([]),
  agent: z.string().min(1).max(64).default('pqnet/0.1'),
  peers: sections.peers.default(sections.peers.parse({})),
  rate: sections.rate.default(sections.rate.parse({})),
  limits: sections.limits.default({}),
  crypto: sections.crypto.default(sections.crypto.parse({})),
  api: sections.api.default(sections.api.parse({})),
  sync: sections.sync.default(sections.sync.parse({})),
  devchain: sections.devchain.default(sections.devchain.parse({})),
  gossip: sections.gossip.default(sections.gossip.parse({})),
  log: sections.log.default(sections.log.parse({})),
});

type RawConfig = z.output<typeof ConfigSchema>;

// ---- The validated configuration ----

export interface ResolvedConfig {
  readonly dataDir: string;
  readonly chainId: number;
  /** SQLite file of the peer book and bans. */
  readonly dbPath: string;
  /** Identity key file (generated at first start if missing). */
  readonly keyPath: string;
  /** Where the API token is kept when none is configured. */
  readonly tokenPath: string;
  readonly listen: readonly string[];
  readonly announce: readonly string[];
  readonly seeds: readonly string[];
  readonly agent: string;
  readonly peers: {
    readonly maxPeers: number;
    readonly maxOutbound: number;
    readonly maxPeersPerIp: number;
    readonly maxPeersPerSubnet: number;
    readonly mustConnect: readonly MustConnectPeer[];
    readonly allow: readonly string[];
    readonly deny: readonly string[];
  };
  readonly rateLimits: RateLimits;
  readonly limits: Partial<Limits>;
  readonly policy: AlgorithmPolicy;
  readonly identityAlg: SigAlg;
  readonly api: { readonly enabled: boolean; readonly host: string; readonly port: number; readonly token: string | undefined; readonly maxBodyBytes: number };
  readonly sync: {
    readonly enabled: boolean;
    /** The chain's SQLite file. */
    readonly chainPath: string;
    /** Where the sync's start (time and height) is recorded across restarts. */
    readonly progressPath: string;
    /** Where a state sync keeps its manifest and verified chunks. */
    readonly statePath: string;
    readonly mode: 'full' | 'state';
    readonly blocks: BlockSyncOptions;
  };
  readonly devchain: { readonly genesisAccounts: number };
  readonly gossip: GossipConfig;
  readonly log: { readonly level: LogLevel; readonly format: 'json' | 'text' };
  /** Where each set value came from (`file x.toml`, `env PQNET_...`, `flag --...`), by key. */
  readonly sources: ReadonlyMap<string, string>;
}

/** One configuration source: a tree of TOML-style keys, and how to name it in errors. */
export interface ConfigLayer {
  readonly values: Record<string, unknown>;
  /** Describes where a key came from, e.g. `(k) => 'flag --max-peers'`. */
  readonly describe: (key: string) => string;
}

export interface LoadConfigOptions {
  /** A TOML file (`--config`); it must exist. Without it: `PQNET_CONFIG`, else `<data dir>/config.toml` if present. */
  readonly file?: string;
  /** Usually `process.env`; only `PQNET_*` names are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values from command-line flags (already keyed like the TOML file). */
  readonly flags?: ConfigLayer;
  /** Default data directory (`~/.pqnet`). */
  readonly homeDir?: string;
}

function invalid(message: string): PqnetError {
  return new PqnetError('CONFIG_INVALID', message);
}

/** Read a TOML configuration file into a layer; `undefined` if it does not exist and is `optional`. */
export function readConfigFile(file: string, optional = false): ConfigLayer | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw invalid(`${file}: ${(e as Error).message}`);
  }
  if (buf.length > MAX_CONFIG_FILE_BYTES) throw invalid(`${file}: ${buf.length} bytes, larger than ${MAX_CONFIG_FILE_BYTES}`);
  const text = buf.toString('utf8');
  let values: Record<string, unknown>;
  try {
    values = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    const { line, column } = e as { line?: number; column?: number };
    const at = line === undefined ? '' : ` at line ${line}${column === undefined ? '' : `, column ${column}`}`;
    throw invalid(`${file}${at}: ${(e as Error).message.split('\n')[0]}`);
  }
  return { values, describe: () => `file ${file}` };
}

/** Names the configuration file, like `--config` (not a key: it says where the keys are). */
export const CONFIG_ENV = 'PQNET_CONFIG';

/** Every key the schema knows, `section.key` for nested ones. */
export function configKeys(): string[] {
  const keys: string[] = [];
  for (const k of Object.keys(ConfigSchema.shape)) {
    const section = (sections as Record<string, z.ZodObject | undefined>)[k];
    if (section === undefined) keys.push(k);
    else for (const sk of Object.keys(section.shape)) keys.push(`${k}.${sk}`);
  }
  return keys;
}

/** The environment variable for a key: `peers.max_peers` → `PQNET_PEERS_MAX_PEERS`. */
export function envName(key: string): string {
  return `PQNET_${key.replace(/\./g, '_').toUpperCase()}`;
}

/** `PQNET_*` variables as a layer; an unknown `PQNET_*` name is an error. */
export function envLayer(env: Readonly<Record<string, string | undefined>>): ConfigLayer {
  const byName = new Map(configKeys().map((k) => [envName(k), k]));
  const values: Record<string, unknown> = {};
  const names = new Map<string, string>();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('PQNET_') || name === CONFIG_ENV || raw === undefined) continue;
    const key = byName.get(name);
    if (key === undefined) throw invalid(`unknown environment variable ${name} (known: ${[...byName.keys()].sort().join(', ')})`);
    // The API token is taken verbatim: read as TOML, a token of digits would become a number and a
    // quoted one would lose its quotes here but not in the client, which sends PQNET_API_TOKEN as it is.
    setKey(values, key, key === 'api.token' ? raw : readValue(raw));
    names.set(key, name);
  }
  // A key inside a table value (`gossip.topic.x.burst` from PQNET_GOSSIP_TOPIC) came from the table's variable.
  const nameOf = (k: string): string | undefined => names.get(k) ?? (k.includes('.') ? nameOf(k.slice(0, k.lastIndexOf('.'))) : undefined);
  return { values, describe: (k) => `env ${nameOf(k) ?? envName(k)}` };
}

/** A TOML value if `raw` is one (`20`, `true`, `["a"]`, `"quoted"`), else the string itself (environment and flag values). */
export function readValue(raw: string): unknown {
  try {
    return (parseToml(`v = ${raw}`) as { v: unknown }).v;
  } catch {
    return raw;
  }
}

export function setKey(tree: Record<string, unknown>, key: string, value: unknown): void {
  const dot = key.indexOf('.');
  if (dot < 0) {
    tree[key] = value;
    return;
  }
  const head = key.slice(0, dot);
  const sub = tree[head];
  const child = typeof sub === 'object' && sub !== null && !Array.isArray(sub) ? (sub as Record<string, unknown>) : {};
  tree[head] = child;
  setKey(child, key.slice(dot + 1), value);
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * Merge layers (later wins) key by key, recording each key's source: a
 * section's keys one by one, and tables within a section (`[gossip.topic.x]`)
 * key by key too. A list is one value.
 */
function merge(layers: readonly ConfigLayer[]): { values: Record<string, unknown>; sources: Map<string, string> } {
  const values: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  const into = (target: Record<string, unknown>, tree: Record<string, unknown>, prefix: string, layer: ConfigLayer, deep: boolean): void => {
    for (const [k, v] of Object.entries(tree)) {
      const key = `${prefix}${k}`;
      // TOML and JSON may carry it as an own key; assigned, it would reach Object.prototype.
      if (k === '__proto__') throw invalid(`${key} (${layer.describe(key)}): "__proto__" is not allowed as a key`);
      const current = Object.hasOwn(target, k) ? target[k] : undefined;
      if (deep && isTable(v)) {
        const child = isTable(current) ? current : {};
        target[k] = child;
        sources.set(key, layer.describe(key));
        into(child, v, `${key}.`, layer, true);
        continue;
      }
      target[k] = v;
      sources.set(key, layer.describe(key));
    }
  };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.values)) {
      if (Object.hasOwn(sections, k) && isTable(v)) {
        const target = isTable(values[k]) ? values[k] : {};
        values[k] = target;
        into(target, v, `${k}.`, layer, true);
      } else {
        into(values, { [k]: v }, '', layer, false);
      }
    }
  }
  return { values, sources };
}

/** The validated configuration from a file, the environment and flags (in that order of precedence). */
export function loadConfig(options: LoadConfigOptions = {}): ResolvedConfig {
  const layers: ConfigLayer[] = [];
  const env = options.env ?? {};
  const envL = envLayer(env);
  // The file is named by the caller (--config), by PQNET_CONFIG, or is `config.toml` in the data directory;
  // only that last one may be missing.
  const dataDirHint = pickString(options.flags?.values['data_dir']) ?? pickString(envL.values['data_dir']);
  const homeDir = options.homeDir ?? os.homedir();
  const named = options.file ?? pickString(env[CONFIG_ENV]);
  const file = named ?? path.join(expandHome(dataDirHint ?? path.join(homeDir, '.pqnet'), homeDir), 'config.toml');
  const fileLayer = readConfigFile(file, named === undefined);
  if (fileLayer !== undefined) layers.push(fileLayer);
  layers.push(envL);
  if (options.flags !== undefined) layers.push(options.flags);
  const { values, sources } = merge(layers);
  const parsed = ConfigSchema.safeParse(values);
  if (!parsed.success) throw invalid(describeIssues(parsed.error, sources));
  return resolve(parsed.data, sources, homeDir);
}

function pickString(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function expandHome(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? path.join(home, p.slice(2)) : p;
}

function describeIssues(error: z.ZodError, sources: ReadonlyMap<string, string>): string {
  const lines = error.issues.slice(0, 8).map((issue) => {
    // An unknown key is reported on its parent; name the key itself.
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    return paths
      .map((p) => {
        // Shown as `peers.must_connect[0].address`; its source is that of `peers.must_connect`.
        const key = p.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : `${i === 0 ? '' : '.'}${String(seg)}`)).join('');
        const names = p.filter((seg) => typeof seg === 'string');
        let from: string | undefined;
        for (let n = names.length; n > 0 && from === undefined; n--) from = sources.get(names.slice(0, n).join('.'));
        from ??= 'default';
        // A bad record key (`[gossip.topic.BAD]`): the key's own problem, not zod's "Invalid key in record".
        const what = issue.code === 'unrecognized_keys' ? `unknown key (known: ${allowedKeys(issue.path)})` : issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
        return `${key || '(top level)'} (${from}): ${what}`;
      })
      .join('\n');
  });
  return `${lines.join('\n')}${error.issues.length > 8 ? `\n(and ${error.issues.length - 8} more)` : ''}`;
}

/** The keys allowed in the table at `at` (a section, or a table within one such as `gossip.topic.x`). */
function allowedKeys(at: readonly PropertyKey[]): string {
  let schema: z.ZodType = ConfigSchema;
  for (const seg of at) {
    // Through defaults, optionals and records to the table's object schema.
    for (;;) {
      if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
      else if (schema instanceof z.ZodRecord) schema = schema.valueType as z.ZodType;
      else break;
    }
    const next = schema instanceof z.ZodObject ? (schema.shape as Record<string, z.ZodType | undefined>)[String(seg)] : undefined;
    if (next === undefined) break;
    schema = next;
  }
  while (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
  return schema instanceof z.ZodObject ? Object.keys(schema.shape).join(', ') : '';
}

function resolve(c: RawConfig, sources: ReadonlyMap<string, string>, homeDir: string): ResolvedConfig {
  const dataDir = path.resolve(expandHome(c.data_dir ?? path.join(homeDir, '.pqnet'), homeDir));
  const inDir = (p: string | undefined, name: string): string => (p === undefined ? path.join(dataDir, name) : path.resolve(dataDir, expandHome(p.replace(/^sqlite:/, ''), homeDir)));
  const api = parseApiListen(c.api.listen, sources.get('api.listen') ?? 'default');
  const limits: Record<string, number> = {};
  for (const k of Object.keys(DEFAULT_LIMITS)) {
    const v = (c.limits as Record<string, number | undefined>)[snake(k)];
    if (v !== undefined) limits[k] = v;
  }
  try {
    makeLimits(limits as Partial<Limits>);
  } catch (e) {
    // makeLimits names keys in camelCase; the operator wrote snake_case.
    const message = (e as Error).message.replace(/[a-z]+[A-Z][A-Za-z]*/g, (k) => (k in DEFAULT_LIMITS ? `limits.${snake(k)}` : k));
    throw invalid(message);
  }
  const policy: AlgorithmPolicy = { kem: c.crypto.kem, aead: c.crypto.aead, sig: c.crypto.sig };
  try {
    compilePolicy(policy);
  } catch (e) {
    throw invalid(`crypto (${sources.get('crypto.kem') ?? sources.get('crypto.aead') ?? sources.get('crypto.sig') ?? 'default'}): ${(e as Error).message}`);
  }
  if (!c.crypto.sig.includes(c.crypto.identity)) {
    throw invalid(`crypto.identity (${sources.get('crypto.identity') ?? 'default'}): ${c.crypto.identity} is not in crypto.sig (${c.crypto.sig.join(', ')}), so peers could not accept this node's key`);
  }
  if (c.api.enabled && c.api.token === undefined && !isLoopbackHost(api.host)) {
    throw invalid(
      `api.listen (${sources.get('api.listen') ?? 'default'}): ${c.api.listen} is not a loopback address; set api.token (or PQNET_API_TOKEN) to serve the API beyond this machine`,
    );
  }
  if (c.peers.max_outbound > c.peers.max_peers) {
    throw invalid(`peers.max_outbound (${sources.get('peers.max_outbound') ?? 'default'}): ${c.peers.max_outbound} is more than peers.max_peers (${c.peers.max_peers})`);
  }
  return {
    dataDir,
    chainId: c.chain_id,
    dbPath: inDir(c.db, 'node.sqlite'),
    keyPath: inDir(c.key, 'node.key'),
    tokenPath: path.join(dataDir, 'api.token'),
    listen: c.listen,
    announce: c.announce,
    seeds: c.seeds,
    agent: c.agent,
    peers: {
      maxPeers: c.peers.max_peers,
      maxOutbound: c.peers.max_outbound,
      maxPeersPerIp: c.peers.max_per_ip,
      maxPeersPerSubnet: c.peers.max_per_subnet,
      mustConnect: c.peers.must_connect,
      allow: c.peers.allow,
      deny: c.peers.deny,
    },
    rateLimits: { messagesPerSecond: c.rate.messages_per_second, bytesPerSecond: c.rate.bytes_per_second },
    limits: limits as Partial<Limits>,
    policy,
    identityAlg: c.crypto.identity,
    api: { enabled: c.api.enabled, host: api.host, port: api.port, token: c.api.token, maxBodyBytes: c.api.max_body_bytes },
    sync: {
      enabled: c.sync.enabled,
      chainPath: inDir(c.sync.db, 'chain.sqlite'),
      progressPath: path.join(dataDir, 'sync-progress.json'),
      statePath: path.join(dataDir, 'state-sync.sqlite'),
      mode: c.sync.mode,
      blocks: {
        ...DEFAULT_BLOCK_SYNC_OPTIONS,
        windowBlocks: c.sync.window_blocks,
        rangeBlocks: c.sync.range_blocks,
        maxRequestsPerPeer: c.sync.requests_per_peer,
        stallMs: c.sync.stall_ms,
      },
    },
    devchain: { genesisAccounts: c.devchain.genesis_accounts },
    gossip: resolveGossip(c.gossip, sources),
    log: c.log,
    sources,
  };
}

/** `HOST:PORT` or `[V6]:PORT` (no scheme). */
function parseApiListen(v: string, from: string): { host: string; port: number } {
  try {
    const hp = parseHostPort(`http://${v}`);
    return { host: hp.host, port: hp.port };
  } catch {
    throw invalid(`api.listen (${from}): expected HOST:PORT, got ${JSON.stringify(v)}`);
  }
}
