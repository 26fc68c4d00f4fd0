/**
 * A syncing node in its own process that misbehaves, for e2e tests (the real
 * Node, ChainSync and devchain; only what it serves is wrong).
 * argv: <chain file> <store file> <mode>. Modes:
 *   bad-headers  serves headers above height 10 with their proof of work broken
 * Prints one JSON line `{"event":"ready","peerId","address"}`; exits when stdin closes.
 */
import { SystemClock } from '../../src/core/clock.ts';
import type { ChainAdapter, HeaderEntry } from '../../src/chain/adapter.ts';
import { Devchain } from '../../src/chain/devchain/index.ts';
import { ChainSync } from '../../src/node/chain-sync.ts';
import { Node } from '../../src/node/node.ts';
import { SYNC_PROTOCOL } from '../../src/sync/messages.ts';
import { testIdentity } from '../secure/_drive.ts';

const [chainFile, storePath, mode] = process.argv.slice(2);
if (chainFile === undefined || storePath === undefined || mode !== 'bad-headers') throw new Error('usage: _sync-node.ts <chain file> <store file> bad-headers');

const chain = Devchain.open(chainFile, { chainId: 1 });
/** Headers above height 10 with the last byte (the nonce's) flipped: the hash no longer meets the target. */
const broken = (e: HeaderEntry | undefined): HeaderEntry | undefined => {
  if (e === undefined || e.height <= 10) return e;
  const bytes = Uint8Array.from(e.bytes);
  bytes[bytes.length - 1]! ^= 0xff;
  return { ...e, bytes };
};
const served = new Proxy(chain, {
  get(target, prop) {
    if (prop === 'headerAt') return (height: number, tip?: Uint8Array) => broken(target.headerAt(height, tip));
    const v = Reflect.get(target, prop, target) as unknown;
    return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
  },
}) as ChainAdapter;

const clock = new SystemClock();
const node = new Node({
  identity: testIdentity(`sync-${mode}`),
  chainId: 1,
  storePath,
  listen: ['tcp://127.0.0.1:0'],
  protocols: [SYNC_PROTOCOL],
  height: () => chain.tip().height,
  clock,
  agent: `e2e/${mode}`,
});
const sync = new ChainSync(node, served, clock);
await node.start();
sync.start();
process.stdout.write(`${JSON.stringify({ event: 'ready', peerId: node.peerId, address: node.listenAddresses[0] })}\n`);
process.stdin.resume();
await new Promise((resolve) => process.stdin.once('end', resolve));
sync.stop();
await node.stop();
chain.close();
