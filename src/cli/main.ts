#!/usr/bin/env node
/**
 * The `pqnet` command (DESIGN.md, Node and operations). Thin: it parses flags,
 * builds the configuration and calls into node/ (and rpc/ clients); no
 * protocol logic lives here. Every failure is one line on stderr and a
 * non-zero exit: 2 for a usage error (bad flag, bad value), 1 for anything
 * else (unreachable node, key file problems, a port in use).
 */
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isPqnetError } from '../core/errors.ts';
import { loadConfig, readValue, setKey, type ConfigLayer } from '../node/config.ts';
import { createLogger } from '../node/log.ts';
import { startNodeService } from '../node/service.ts';
import { SIG_ALGS, type SigAlg } from '../secure/algorithms.ts';
import { generateIdentity } from '../secure/identity.ts';
import { saveIdentity } from '../secure/keyfile.ts';
import { infoCommand, peerCommand, statsCommand, UsageError } from './client-commands.ts';
import { publishCommand, statusCommand } from './chain-commands.ts';
import { gossipCommand } from './gossip-commands.ts';

const USAGE = `usage: pqnet <command> [flags]

commands:
  keygen [--alg ml-dsa-65|slh-dsa-shake-128s|ed25519] [--out FILE] [--force]
      generate a node key (default: <data dir>/node.key) and print its peer id
  listen [--data-dir DIR] [--config FILE] [--listen tcp://HOST:PORT|ws://HOST:PORT ...] [--chain-id N]
         [--db sqlite:PATH] [--key FILE] [--api HOST:PORT | --no-api] [--seed ADDR ...]
         [--must-connect [PEERID@]ADDR ...] [--max-peers N] [--log-level LEVEL] [--log-format json|text]
         [--chain-db PATH] [--sync-mode full|state] [--no-sync] [--gossip-topic TOPIC ...] [--no-gossip]
      run a node (sync its chain, join gossip topics) until SIGINT or SIGTERM
  peer list [--all] | connect --addr tcp://HOST:PORT|ws://... [--peer-id ID] | disconnect PEER-ID
       | ban PEER-ID|IP|CIDR|ADDR [--for DURATION] [--note TEXT] | unban PEER-ID|IP|CIDR|ADDR | bans
      manage a running node's peers through its HTTP API (pqnet peer help for details)
  info      the running node's identity, addresses and algorithms
  stats     the running node's traffic, rejects, disconnects, offenses and handshakes
  status [--watch]
      chain sync: state, heights, progress bar, rates and time left
  publish blocks|headers|txs --count N [--txs-per-block K]
      make the running node produce blocks or transactions on its dev chain and announce them
  gossip status | publish TOPIC (--hex DATA | --file PATH)
      gossip topics, meshes, counters and peers; publish one item on a topic
      client flags: [--api HOST:PORT|URL] [--token TOKEN] [--data-dir DIR] [--config FILE] [--json]

The data directory is --data-dir, else $PQNET_DATA_DIR, else ~/.pqnet. Settings come from
<data dir>/config.toml (or --config), then PQNET_* variables, then flags: see docs/CONFIG.md.`;

type Options = NonNullable<ParseArgsConfig['options']>;

function parse(argv: string[], options: Options): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function keygen(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    alg: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
    'data-dir': { type: 'string' },
  });
  if (values['help'] === true) return void console.log(USAGE);
  let alg = values['alg'] as string | undefined;
  if (alg !== undefined && !SIG_ALGS.includes(alg as SigAlg)) throw new UsageError(`--alg: ${JSON.stringify(alg)} is not one of ${SIG_ALGS.join(', ')}`);
  let out = values['out'] as string | undefined;
  if (out === undefined) {
    // The data directory's key, of the configured identity algorithm unless --alg says otherwise.
    const flags: ConfigLayer = { values: values['data-dir'] === undefined ? {} : { data_dir: values['data-dir'] }, describe: () => 'flag --data-dir' };
    const config = loadConfig({ env: process.env, flags });
    out = config.keyPath;
    alg ??= config.identityAlg;
  }
  alg ??= 'ml-dsa-65';
  const identity = generateIdentity(alg as SigAlg);
  await saveIdentity(path.resolve(out), identity, { overwrite: values['force'] === true });
  console.log(identity.peerId.toString());
  console.error(`pqnet: wrote ${alg} key to ${path.resolve(out)}`);
}

/** `listen` flags and the configuration keys they set. */
const LISTEN_FLAGS: Record<string, { key: string; multiple?: boolean; boolean?: boolean }> = {
  'data-dir': { key: 'data_dir' },
  listen: { key: 'listen', multiple: true },
  'chain-id': { key: 'chain_id' },
  db: { key: 'db' },
  key: { key: 'key' },
  api: { key: 'api.listen' },
  seed: { key: 'seeds', multiple: true },
  'must-connect': { key: 'peers.must_connect', multiple: true },
  'max-peers': { key: 'peers.max_peers' },
  'log-level': { key: 'log.level' },
  'log-format': { key: 'log.format' },
  'chain-db': { key: 'sync.db' },
  'sync-mode': { key: 'sync.mode' },
  'gossip-topic': { key: 'gossip.topics', multiple: true },
};

async function listen(argv: string[]): Promise<void> {
  const options: Options = { config: { type: 'string' }, 'no-api': { type: 'boolean' }, 'no-sync': { type: 'boolean' }, 'no-gossip': { type: 'boolean' } };
  for (const [flag, f] of Object.entries(LISTEN_FLAGS)) options[flag] = f.multiple === true ? { type: 'string', multiple: true } : { type: 'string' };
  const { values } = parse(argv, options);
  if (values['help'] === true) return void console.log(USAGE);
  const tree: Record<string, unknown> = {};
  const flagOf = new Map<string, string>();
  for (const [flag, f] of Object.entries(LISTEN_FLAGS)) {
    const v = values[flag];
    if (v === undefined) continue;
    if (flag === 'db' && typeof v === 'string' && !v.startsWith('sqlite:')) throw new UsageError(`--db: expected sqlite:PATH, got ${JSON.stringify(v)}`);
    setKey(tree, f.key, Array.isArray(v) ? v : readValue(v as string));
    flagOf.set(f.key, `flag --${flag}`);
  }
  if (values['no-api'] === true) {
    setKey(tree, 'api.enabled', false);
    flagOf.set('api.enabled', 'flag --no-api');
  }
  if (values['no-sync'] === true) {
    setKey(tree, 'sync.enabled', false);
    flagOf.set('sync.enabled', 'flag --no-sync');
  }
  if (values['no-gossip'] === true) {
    setKey(tree, 'gossip.enabled', false);
    flagOf.set('gossip.enabled', 'flag --no-gossip');
  }
  const configFile = values['config'] as string | undefined;
  const config = loadConfig({
    env: process.env,
    flags: { values: tree, describe: (k) => flagOf.get(k) ?? 'flags' },
    ...(configFile === undefined ? {} : { file: configFile }),
  });
  const log = createLogger({ level: config.log.level, format: config.log.format });
  // Signal handlers go in before the node starts: a SIGTERM that arrives while it starts (or right
  // after its 'node started' line) still stops it gracefully instead of killing the process.
  const signalled = new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutting down');
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve();
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  const service = await startNodeService(config, log);
  await signalled;
  await service.stop();
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'keygen':
        await keygen(rest);
        return 0;
      case 'listen':
        await listen(rest);
        return 0;
      case 'peer':
        await peerCommand(rest);
        return 0;
      case 'info':
        await infoCommand(rest);
        return 0;
      case 'stats':
        await statsCommand(rest);
        return 0;
      case 'status':
        await statusCommand(rest);
        return 0;
      case 'publish':
        await publishCommand(rest);
        return 0;
      case 'gossip':
        await gossipCommand(rest);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}; run pqnet help`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`pqnet: ${e.message}`);
      return 2;
    }
    if (isPqnetError(e)) {
      // CONFIG_INVALID lists one problem per line; everything else is one line.
      console.error(`pqnet: ${e.code === 'CONFIG_INVALID' ? e.message : `${e.code}: ${e.message}`}`);
      return e.code === 'CONFIG_INVALID' ? 2 : 1;
    }
    console.error(`pqnet: ${(e as Error).message ?? String(e)}`);
    return 1;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}

