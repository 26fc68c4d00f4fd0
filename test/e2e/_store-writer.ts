/**
 * Writes to a `PeerStore` as fast as it can until killed, for
 * `store-kill.test.ts`. Each iteration N upserts `writerPeer(N)`, every 10th also
 * saves `writerBan(N)`, then prints `N\n`: a number on stdout is a write
 * acknowledged (committed). Numbering continues after the highest N stored.
 * Stops by itself after 30 s so that an orphan cannot write forever.
 *
 * Usage: node test/e2e/_store-writer.ts <store path>
 * Imported (not run), it only exports the record builders the test checks with.
 */
import { PeerStore } from '../../src/peer/store.ts';
import type { AddressSource, BanRecord, PeerBookEntry } from '../../src/peer/types.ts';
import { PeerId } from '../../src/secure/identity.ts';

const SOURCES: AddressSource[] = ['static', 'must-connect', 'inbound', 'peer-exchange', 'dns', 'mdns', 'kademlia', 'operator'];
const T0 = 1_700_000_000_000;

export const writerAddress = (n: number): string => `tcp://writer-${n}.test:7420`;

export function writerNumber(address: string): number | undefined {
  const m = /^tcp:\/\/writer-(\d+)\.test:7420$/.exec(address);
  return m === null ? undefined : Number(m[1]);
}

function peerIdOf(n: number): string {
  const bytes = new Uint8Array(32).fill(0xab);
  new DataView(bytes.buffer).setUint32(0, n);
  return new PeerId(bytes).toString();
}

/** Every field depends on `n`, so a torn or misplaced write shows. */
export function writerPeer(n: number): PeerBookEntry {
  return {
    address: writerAddress(n),
    peerId: n % 3 === 0 ? null : peerIdOf(n),
    source: SOURCES[n % SOURCES.length]!,
    firstSeen: T0 + n,
    lastSeen: T0 + n + 0.25,
    lastAttempt: T0 + 2 * n,
    lastSuccess: n % 2 === 0 ? 0 : T0 + 3 * n,
    successes: n % 5,
    failures: n % 11,
    consecutiveFailures: n % 4,
    lastFailureReason: n % 2 === 0 ? 'DIAL_FAILED' : null,
  };
}

export function writerBan(n: number): BanRecord {
  const address = n % 20 === 0;
  return {
    kind: address ? 'address' : 'peer',
    target: address ? `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` : peerIdOf(n),
    reason: address ? 'OPERATOR_BAN' : 'INVALID_BLOCK',
    createdAt: T0 + n,
    expiresAt: T0 + n + 5_400_000.5,
    offenses: 1 + (n % 3),
    note: `writer ban ${n}`,
  };
}

if (import.meta.main) {
  const store = PeerStore.open(process.argv[2]!);
  let n = 0;
  for (const e of store.listPeers()) n = Math.max(n, (writerNumber(e.address) ?? -1) + 1);
  const stopAt = Date.now() + 30_000;
  for (; Date.now() < stopAt; n++) {
    store.upsertPeer(writerPeer(n));
    if (n % 10 === 0) store.saveBan(writerBan(n));
    process.stdout.write(`${n}\n`); // synchronous on a pipe (Linux): printed only after the commits above
  }
  store.close();
}
