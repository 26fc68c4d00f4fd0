/** Nodes over the WebSocket transport: the default transport serves ws:// next to tcp://. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPqnetError, type PqnetError } from '../../src/core/errors.ts';
import { loadConfig } from '../../src/node/config.ts';
import type { PeerInfo } from '../../src/node/node.ts';
import { Block, Echo, payload, Vote } from '../mux/_types.ts';
import { testNodes, until } from './_nodes.ts';

test('two nodes on ws:// connect, go active, announce their ws addresses and exchange messages, requests and a large block', async () => {
  const t = testNodes();
  try {
    const a = t.make('a', { listen: ['ws://127.0.0.1:0'] });
    const b = t.make('b', { listen: ['ws://127.0.0.1:0'] });
    const votes: [string, number][] = [];
    const blocks: Uint8Array[] = [];
    for (const n of [a, b]) {
      n.register(Vote);
      n.register(Block);
      n.registerRequest(Echo);
    }
    b.subscribe(Vote, ([v], peer) => void votes.push([peer.peerId!, v.length]));
    a.subscribe(Block, ([blk]) => void blocks.push(blk));
    b.handle(Echo, ([text, n]) => payload(n + text.length));
    await a.start();
    await b.start();
    assert.match(b.listenAddresses[0]!, /^ws:\/\/127\.0\.0\.1:[1-9]\d*$/);

    const info = await a.connect(b.listenAddresses[0]!);
    assert.equal(info.peerId, b.peerId);
    assert.equal(info.state, 'active');
    assert.equal(info.address, b.listenAddresses[0]);
    assert.deepEqual(info.listenAddresses, b.listenAddresses, 'identify announces the ws address');
    await until(() => b.peer(a.peerId)?.state === 'active', 'b to see a active');
    const inbound = b.peer(a.peerId)!;
    assert.equal(inbound.direction, 'inbound');
    assert.match(inbound.address, /^ws:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(inbound.listenAddresses, a.listenAddresses);

    await a.send(b.peerId, Vote, [payload(100)]);
    await until(() => votes.length === 1, 'the vote');
    assert.deepEqual(votes, [[a.peerId, 100]]);
    assert.deepEqual(await a.request(b.peerId, Echo, ['abc', 10]), payload(13));
    // Many frames, credit and back-pressure through the ws stream.
    const big = payload(3 * 1024 * 1024, 9);
    await b.send(a.peerId, Block, [big]);
    await until(() => blocks.length === 1, 'the block');
    assert.deepEqual(blocks[0], big);

    const closed = once(b, 'peer:closed') as Promise<[PeerInfo, PqnetError]>;
    await a.stop();
    const [, reason] = await closed;
    assert.equal(reason.code, 'REMOTE_CLOSED');
    assert.equal(reason.details?.remoteReason, 'SHUTDOWN');
  } finally {
    await t.cleanup();
  }
});

test('a node listening on tcp:// and ws:// accepts a peer on each, and a must-connect peer over ws', async () => {
  const t = testNodes();
  try {
    const hub = t.make('hub', { listen: ['tcp://127.0.0.1:0', 'ws://127.0.0.1:0'] });
    hub.registerRequest(Echo);
    hub.handle(Echo, ([text, n]) => payload(n + text.length));
    await hub.start();
    const [tcpAddr, wsAddr] = hub.listenAddresses;
    assert.match(tcpAddr!, /^tcp:\/\//);
    assert.match(wsAddr!, /^ws:\/\//);

    const viaTcp = t.make('via-tcp', { listen: [] });
    const viaWs = t.make('via-ws', { listen: [], mustConnect: [{ address: wsAddr!, peerId: hub.peerId }] });
    for (const n of [viaTcp, viaWs]) n.registerRequest(Echo);
    await viaTcp.start();
    await viaWs.start();
    const onTcp = await viaTcp.connect(tcpAddr!);
    assert.deepEqual(onTcp.listenAddresses, [tcpAddr, wsAddr], 'identify announces both');
    await until(() => viaWs.peer(hub.peerId)?.state === 'active', 'the must-connect peer over ws');
    await until(() => hub.peer(viaTcp.peerId)?.state === 'active' && hub.peer(viaWs.peerId)?.state === 'active', 'the hub to see both active');
    assert.match(hub.peer(viaTcp.peerId)!.address, /^tcp:\/\//);
    assert.match(hub.peer(viaWs.peerId)!.address, /^ws:\/\//);
    assert.equal(hub.health().peers.active, 2);
    assert.deepEqual(await viaTcp.request(hub.peerId, Echo, ['x', 1]), payload(2));
    assert.deepEqual(await viaWs.request(hub.peerId, Echo, ['yy', 1]), payload(3));
  } finally {
    await t.cleanup();
  }
});

test('configuration: ws:// is accepted for listen, seeds and must-connect peers; other schemes are refused naming tcp:// and ws://', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-ws-config-'));
  try {
    const env = {
      PQNET_LISTEN: 'ws://0.0.0.0:41001,tcp://0.0.0.0:41000',
      PQNET_SEEDS: 'ws://192.0.2.1:41001',
      PQNET_PEERS_MUST_CONNECT: 'ws://192.0.2.2:41001',
      PQNET_ANNOUNCE: 'ws://203.0.113.7:41001',
    };
    const c = loadConfig({ homeDir: dir, env });
    assert.deepEqual(c.listen, ['ws://0.0.0.0:41001', 'tcp://0.0.0.0:41000']);
    assert.deepEqual(c.seeds, ['ws://192.0.2.1:41001']);
    assert.deepEqual(c.peers.mustConnect, [{ address: 'ws://192.0.2.2:41001' }]);
    assert.deepEqual(c.announce, ['ws://203.0.113.7:41001']);
    for (const [key, value] of [
      ['PQNET_LISTEN', 'wss://127.0.0.1:1'],
      ['PQNET_SEEDS', 'udp://127.0.0.1:1'],
      ['PQNET_PEERS_MUST_CONNECT', 'http://127.0.0.1:1'],
    ] as const) {
      assert.throws(
        () => loadConfig({ homeDir: dir, env: { [key]: value } }),
        (e: unknown) => isPqnetError(e) && e.code === 'CONFIG_INVALID' && e.message.includes('only tcp:// and ws:// addresses are supported'),
        key,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
