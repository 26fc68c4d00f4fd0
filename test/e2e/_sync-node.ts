/**
 * A syncing node in its own process that misbehaves, for e2e tests (the real
 * Node, ChainSync and devchain; only what it serves is wrong).
 * argv: <chain file> <store file> <mode> [genesis accounts]. Modes:
 *   bad-headers  serves headers above height 10 with their proof of work broken
 *   bad-chunk    serves the first state chunk it is asked for with one byte flipped
 * Prints one JSON line `{"event":"ready","peerId","address"}`; exits when stdin closes.
 */
import { SystemClock } from '../../src/core/clock.ts';
import type { ChainAdapter, HeaderEntry } from '../../src/chain/adapter.ts';
import { Devchain } from '../../src/chain/devchain/index.ts';
import { ChainSync } from '../../src/node/chain-sync.ts';
import { Node } from '../../src/node/node.ts';
import { StateSyncService } from '../../src/node/state-sync.ts';
import { SYNC_PROTOCOL } from '../../src/sync/messages.ts';
import { testIdentity } from '../secure/_drive.ts';

const [chainFile, storePath, mode, accounts] = process.argv.slice(2);
if (chainFile === undefined || storePath === undefined || (mode !== 'bad-headers' && mode !== 'bad-chunk')) {
  throw new Error('usage: _sync-node.ts <chain file> <store file> bad-headers|bad-chunk [genesis accounts]');
}

const chain = Devchain.open(chainFile, { chainId: 1, ...(accounts === undefined ? {} : { genesisAccounts: Number(accounts) }) });
/** Headers above height 10 with the last byte (the nonce's) flipped: the hash no longer meets the target. */
const broken = (e: HeaderEntry | undefined): HeaderEntry | undefined => {
  if (e === undefined || e.height <= 10) return e;
  const bytes = Uint8Array.from(e.bytes);
  bytes[bytes.length - 1]! ^= 0xff;
  return { ...e, bytes };
};
/** The first chunk served, with its first byte flipped. */
let corrupted = false;
const corrupt = (c: Uint8Array | undefined): Uint8Array | undefined => {
  if (c === undefined || corrupted) return c;
  corrupted = true;
  const bad = Uint8Array.from(c);
  bad[0]! ^= 0xff;
  return bad;
};
const served = new Proxy(chain, {
  get(target, prop) {
    if (prop === 'headerAt' && mode === 'bad-headers') return (height: number, tip?: Uint8Array) => broken(target.headerAt(height, tip));
    if (prop === 'stateChunk' && mode === 'bad-chunk') return (root: Uint8Array, index: number) => corrupt(target.stateChunk(root, index));
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
const state = new StateSyncService(node, served, clock, { storePath: `${storePath}.state` });
await node.start();
sync.start();
process.stdout.write(`${JSON.stringify({ event: 'ready', peerId: node.peerId, address: node.listenAddresses[0] })}\n`);
process.stdin.resume();
await new Promise((resolve) => process.stdin.once('end', resolve));
sync.stop();
state.stop();
await node.stop();
chain.close();
