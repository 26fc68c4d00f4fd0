/**
 * `pqnet gossip status|publish`: the running node's gossip through its HTTP
 * API (`GET /gossip/status`, `POST /gossip/publish`), with the same flags as
 * `pqnet peer` (client-commands.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import { TOPIC_NAME } from '../gossip/topics.ts';
import type { GossipPeerJson, GossipStatusResponse, GossipTopicJson } from '../rpc/types.ts';
import { clientFlagsHelp, clientFor, formatTable, keyValues, parse, printJson, str, UsageError } from './client-commands.ts';

export const GOSSIP_USAGE = `usage: pqnet gossip <subcommand> [flags]

subcommands:
  status                                     parameters, topics (meshes, counters), control, caches and peers
  publish TOPIC (--hex DATA | --file PATH)   publish one item on a topic (the topic's validator runs first);
                                             DATA is hex (an optional 0x is dropped), PATH a file of raw bytes
${clientFlagsHelp()}`;

/** Largest payload `--file` reads: the largest item any topic class can carry (8 MiB); the API caps bodies lower. */
export const MAX_PUBLISH_FILE_BYTES = 8 * 1024 * 1024;

export async function gossipCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'status':
      return gossipStatus(rest);
    case 'publish':
      return gossipPublish(rest);
    case 'help':
    case '--help':
    case '-h':
      console.log(GOSSIP_USAGE);
      return;
    case undefined:
      throw new UsageError('gossip: missing subcommand (status, publish); run pqnet gossip help');
    default:
      throw new UsageError(`gossip: unknown subcommand ${JSON.stringify(sub)} (status, publish)`);
  }
}

// ---- status ----

async function gossipStatus(argv: string[]): Promise<void> {
  const { values } = parse(argv, {}, 0);
  if (values['help'] === true) return void console.log(GOSSIP_USAGE);
  const s = await clientFor(values, false).gossipStatus();
  if (values['json'] === true) return printJson(s);
  console.log(formatGossipStatus(s));
}

const sum = (xs: Iterable<number>): number => {
  let n = 0;
  for (const x of xs) n += x;
  return n;
};

/** Topics worth a row: subscribed, or with any peers or traffic. */
function active(t: GossipTopicJson): boolean {
  return t.subscribed || t.peers + t.mesh + t.fanout + t.sent + t.announced + t.published + sum(Object.values(t.received)) > 0;
}

function topicRow(t: GossipTopicJson): string[] {
  const r = t.received;
  const other = sum(Object.values(r)) - (r['accepted'] ?? 0) - (r['duplicate'] ?? 0) - (r['rejected'] ?? 0);
  return [
    t.topic, t.subscribed ? 'yes' : 'no', String(t.mesh), String(t.fanout), String(t.peers), `${t.choking}/${t.chokedBy}`,
    String(r['accepted'] ?? 0), String(r['duplicate'] ?? 0), String(r['rejected'] ?? 0), String(other), String(t.sent), String(t.announced), String(t.published),
  ];
}

function peerRow(p: GossipPeerJson): string[] {
  const score = sum(p.scores.map((s) => s.score));
  const names = (xs: readonly string[]): string => (xs.length === 0 ? '-' : xs.join(','));
  return [p.peerId, p.outbound ? 'out' : 'in', names(p.topics), names(p.mesh), names(p.choking), names(p.chokedBy), score.toFixed(2)];
}

/** The human form of `/gossip/status`: summary lines, then the topic and peer tables. */
export function formatGossipStatus(s: GossipStatusResponse): string {
  const p = s.params;
  const control = Object.entries(s.control)
    .filter(([, c]) => c.sent + c.received > 0)
    .map(([k, c]) => `${k} ${c.sent}/${c.received}`)
    .join(', ');
  const out = [
    keyValues([
      ['mode', p['flood'] === true ? 'flood (no mesh)' : `mesh D=${String(p['D'])} (${String(p['Dlo'])}..${String(p['Dhi'])}), D_lazy=${String(p['Dlazy'])}, D_unchoked=${String(p['Dunchoked'])}`],
      ['heartbeat', `${String(p['heartbeatMs'])} ms`],
      ['peers', `${s.peers.length} speak gossip`],
      ['control', control === '' ? 'none' : `${control} (sent/received)`],
      ['caches', `seen ${s.cache.seen}, mcache ${s.cache.mcache}, wanted ${s.cache.wanted}, validating ${s.cache.validating}; broken promises ${s.brokenPromises}`],
    ]),
  ];
  const shown = s.topics.filter(active);
  out.push('', 'topics:');
  if (shown.length === 0) out.push('  none subscribed');
  else {
    const table = formatTable(['TOPIC', 'SUB', 'MESH', 'FANOUT', 'PEERS', 'CHOKE', 'ACCEPTED', 'DUP', 'REJECTED', 'OTHER', 'SENT', 'ANNOUNCED', 'PUBLISHED'], shown.map(topicRow));
    out.push(indent(table));
  }
  const idle = s.topics.length - shown.length;
  if (idle > 0) out.push(`  (${idle} other topic${idle === 1 ? '' : 's'} idle; --json lists every one)`);
  out.push('', 'peers:');
  if (s.peers.length === 0) out.push('  none');
  else out.push(indent(formatTable(['PEER-ID', 'DIR', 'TOPICS', 'MESH', 'CHOKING', 'CHOKED-BY', 'SCORE'], s.peers.map(peerRow))));
  return out.join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

// ---- publish ----

/** `--hex` text as bytes: an even number of hex digits, `0x` allowed in front. */
export function parseHex(text: string): Uint8Array {
  const t = text.trim().replace(/^0x/i, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(t)) throw new UsageError(`--hex: expected an even number of hex digits, got ${JSON.stringify(text.slice(0, 40))}${text.length > 40 ? '...' : ''}`);
  return Buffer.from(t, 'hex');
}

function readPayloadFile(file: string): Uint8Array {
  try {
    const size = statSync(file).size;
    if (size > MAX_PUBLISH_FILE_BYTES) throw new UsageError(`--file: ${file} is ${size} bytes, more than the largest gossip item (${MAX_PUBLISH_FILE_BYTES})`);
    return readFileSync(file);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--file: cannot read ${file}: ${(e as Error).message}`);
  }
}

async function gossipPublish(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { hex: { type: 'string' }, file: { type: 'string' } }, 1);
  if (values['help'] === true) return void console.log(GOSSIP_USAGE);
  const topic = positionals[0];
  if (topic === undefined) throw new UsageError('gossip publish: missing TOPIC');
  if (!TOPIC_NAME.test(topic)) throw new UsageError(`gossip publish: ${JSON.stringify(topic.slice(0, 80))} is not a topic name (1 to 64 of a-z 0-9 / _ . -)`);
  const hex = str(values, 'hex');
  const file = str(values, 'file');
  if ((hex === undefined) === (file === undefined)) throw new UsageError('gossip publish: give the payload with exactly one of --hex DATA and --file PATH');
  const payload = hex !== undefined ? parseHex(hex) : readPayloadFile(file!);
  const r = await clientFor(values, true).gossipPublish({ topic, data: Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('base64') });
  if (values['json'] === true) return printJson(r);
  console.log(`published ${r.bytes} byte${r.bytes === 1 ? '' : 's'} on ${r.topic}: id ${r.id}, sent to ${r.peers} peer${r.peers === 1 ? '' : 's'}`);
}
