/**
 * Sync benchmark server child process (bench/sync.ts):
 * `node bench/_sync-server.ts --chain <devchain file> --store <peer store file> [--chain-id <n>]`.
 *
 * Opens its own copy of the served chain, runs a Node (loopback TCP, port 0,
 * `pqnet/sync/1`, the default pqnet policy) with a ChainSync that serves
 * GETHEADERS and GETBLOCKS from it, and prints
 * `{"event":"ready","address","peerId","height"}`. Commands on stdin:
 * `{"cmd":"stats"}` answers `{"event":"stats","cpuSeconds","bytesIn","bytesOut","responses"}`
 * (CPU time of this whole process since it started, bytes on the wire and
 * sync responses sent since `node.start()`). Exits when stdin closes.
 */
import { Devchain } from '../src/chain/devchain/index.ts';
import { SystemClock } from '../src/core/clock.ts';
import { ChainSync } from '../src/node/chain-sync.ts';
import { Node } from '../src/node/node.ts';
import { generateIdentity } from '../src/secure/identity.ts';
import { SYNC_PROTOCOL } from '../src/sync/messages.ts';
import { BENCH_CHAIN_ID } from './_pqnet.ts';
import { parseFlags, serveParent } from './_util.ts';

const flags = parseFlags(process.argv.slice(2));
const chainFile = flags.get('chain');
const storePath = flags.get('store');
if (chainFile === undefined || storePath === undefined) throw new Error('usage: _sync-server.ts --chain <file> --store <file> [--chain-id <n>]');
const chainId = Number(flags.get('chain-id') ?? BENCH_CHAIN_ID);

const clock = new SystemClock();
const chain = Devchain.open(chainFile, { chainId });
const node = new Node({
  identity: generateIdentity('ml-dsa-65'),
  chainId,
  storePath,
  listen: ['tcp://127.0.0.1:0'],
  protocols: [SYNC_PROTOCOL],
  height: () => chain.tip().height,
  clock,
  agent: 'pqnet-bench/sync-server',
});
const sync = new ChainSync(node, chain, clock);
await node.start();
sync.start();

serveParent(
  { address: node.listenAddresses[0], peerId: node.peerId, height: chain.tip().height },
  (cmd) => {
    if (cmd.cmd !== 'stats') return { event: 'error', message: `unknown command ${JSON.stringify(cmd)}` };
    const cpu = process.cpuUsage();
    const t = node.traffic();
    return {
      event: 'stats',
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      bytesIn: t.bytesIn,
      bytesOut: t.bytesOut,
      responses: { headers: t.messages.out['sync.getheaders.response'] ?? 0, blocks: t.messages.out['sync.getblocks.response'] ?? 0 },
    };
  },
  async () => {
    sync.stop();
    await node.stop();
    chain.close();
  },
);
