/**
 * Two pqnet Nodes on loopback: connect, HELLO, a message on a channel, a
 * request, the health snapshot, a graceful stop. Run: `npx node examples/node.ts`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Channel, defineMessage, defineRequest, generateIdentity, Node, schema } from '../src/index.ts';

const Vote = defineMessage({ id: 0x8001, name: 'vote', channel: Channel.CONSENSUS, maxBytes: 256, schema: schema.tuple(schema.uint(), schema.text(200)) });
const GetHeight = defineRequest({
  name: 'get-height',
  requestId: 0x8100,
  responseId: 0x8101,
  request: schema.tuple(),
  response: schema.uint(),
  maxRequestBytes: 8,
  maxResponseBytes: 16,
});

const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-example-'));
const make = (name: string, height: number): Node => {
  const node = new Node({
    identity: generateIdentity('ml-dsa-65'),
    chainId: 1,
    storePath: path.join(dir, `${name}.sqlite`), // peer book and bans survive restarts
    listen: ['tcp://127.0.0.1:0'],
    agent: `example/${name}`,
    height: () => height,
  });
  node.register(Vote);
  node.registerRequest(GetHeight);
  return node;
};

const alice = make('alice', 10);
const bob = make('bob', 12);
const voted = new Promise<void>((resolve) => {
  bob.subscribe(Vote, ([round, text], peer) => {
    console.log(`bob   <- ${peer.peerId}: vote ${round} "${text}"`);
    resolve();
  });
});
alice.handle(GetHeight, () => 10);
try {
  await alice.start();
  await bob.start();
  const peer = await alice.connect(bob.listenAddresses[0]!);
  console.log(`alice connected to ${peer.peerId} (agent ${peer.agent}, height ${peer.height})`);
  await alice.send(peer.peerId!, Vote, [1, 'yes']);
  await voted;
  console.log(`bob asks alice for her height: ${await bob.request(alice.peerId, GetHeight, [])}`);
  console.log(`alice health: ${JSON.stringify(alice.health().peers)}`);
} finally {
  await alice.stop();
  await bob.stop();
  rmSync(dir, { recursive: true, force: true });
}
