/**
 * A pqnet Node in its own process for e2e tests. argv: <name> <storePath>.
 * Prints JSON lines on stdout (events), reads JSON commands on stdin; exits
 * when stdin closes, so a killed parent leaves nothing behind.
 */
import { createInterface } from 'node:readline';
import { toPqnetError } from '../../src/core/errors.ts';
import { Node } from '../../src/node/node.ts';
import { testIdentity } from '../secure/_drive.ts';
import { payload, Tx, Vote } from '../mux/_types.ts';

const [name, storePath] = process.argv.slice(2);
if (name === undefined || storePath === undefined) throw new Error('usage: _node.ts <name> <storePath>');

const out = (event: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(event)}\n`);

const node = new Node({
  identity: testIdentity(name, 'ml-dsa-65'),
  chainId: 7,
  storePath,
  listen: ['tcp://127.0.0.1:0'],
  agent: `e2e/${name}`,
  timers: { pingIntervalMs: 100 },
});
node.register(Vote);
node.register(Tx);
node.subscribe(Vote, ([v], peer) => out({ event: 'message', type: 'vote', from: peer.peerId, size: v.length }));
node.on('peer:active', (p) => out({ event: 'active', peerId: p.peerId }));
node.on('peer:closed', (p, reason) => out({ event: 'closed', peerId: p.peerId, code: reason.code, remoteReason: reason.details?.remoteReason }));
await node.start();
out({ event: 'ready', peerId: node.peerId, address: node.listenAddresses[0], bans: node.bans(), peerBook: node.health().peerBook });

type Command =
  | { cmd: 'connect'; address: string }
  | { cmd: 'send-tx'; peerId: string; size: number }
  | { cmd: 'ban'; peerId: string }
  | { cmd: 'peers' }
  | { cmd: 'stop' };

async function run(c: Command): Promise<Record<string, unknown>> {
  switch (c.cmd) {
    case 'connect':
      return { peer: await node.connect(c.address) };
    case 'send-tx':
      await node.send(c.peerId, Tx, [payload(c.size)]);
      return {};
    case 'ban':
      return { ban: node.ban({ peerId: c.peerId }) };
    case 'peers':
      return { peers: node.peers() };
    case 'stop':
      await node.stop();
      return {};
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const c = JSON.parse(line) as Command;
  try {
    out({ event: 'result', cmd: c.cmd, ok: true, ...(await run(c)) });
  } catch (e) {
    out({ event: 'result', cmd: c.cmd, ok: false, code: toPqnetError(e).code });
  }
  if (c.cmd === 'stop') process.exit(0);
}
await node.stop();
