/**
 * Two Nodes in separate processes over loopback TCP: HELLO, ping, messages on
 * channels both ways, a ban enforced across processes, and after `kill -9` the
 * restarted node still has its ban and its peer book.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PqnetError } from '../../src/core/errors.ts';
import { Node, type PeerInfo } from '../../src/node/node.ts';
import { testIdentity } from '../secure/_drive.ts';
import { payload, Tx, Vote } from '../mux/_types.ts';
import { until } from '../node/_nodes.ts';

const CHILD = fileURLToPath(new URL('./_node.ts', import.meta.url));

type Event = Record<string, unknown> & { event: string };

class Child {
  readonly proc: ChildProcess;
  readonly events: Event[] = [];
  readonly #lines: Interface;

  constructor(name: string, storePath: string) {
    this.proc = spawn(process.execPath, [CHILD, name, storePath], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#lines = createInterface({ input: this.proc.stdout! });
    this.#lines.on('line', (l) => this.events.push(JSON.parse(l) as Event));
  }

  async next(pred: (e: Event) => boolean, what: string): Promise<Event> {
    await until(() => this.events.some(pred), what, 4_000);
    const i = this.events.findIndex(pred);
    return this.events.splice(i, 1)[0]!;
  }

  async command(cmd: Record<string, unknown>): Promise<Event> {
    this.proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return this.next((e) => e.event === 'result' && e.cmd === cmd.cmd, `result of ${String(cmd.cmd)}`);
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = once(this.proc, 'exit');
    this.proc.kill('SIGKILL');
    await exited;
  }
}

test('two Node processes: HELLO, ping, channels, a ban across processes, and a restart after kill -9 that keeps bans and the peer book', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pqnet-e2e-'));
  const storeB = path.join(dir, 'b.sqlite');
  const a = new Node({
    identity: testIdentity('e2e-a', 'ml-dsa-65'),
    chainId: 7,
    storePath: path.join(dir, 'a.sqlite'),
    listen: ['tcp://127.0.0.1:0'],
    agent: 'e2e/a',
    timers: { pingIntervalMs: 100 },
  });
  a.register(Vote);
  a.register(Tx);
  const txs: number[] = [];
  a.subscribe(Tx, ([v]) => void txs.push(v.length));
  const children: Child[] = [];
  try {
    await a.start();
    const b = new Child('e2e-b', storeB);
    children.push(b);
    const ready = await b.next((e) => e.event === 'ready', 'b ready');
    const bId = ready.peerId as string;
    assert.equal(ready.peerBook, 0);

    // b dials a: both run HELLO and become active.
    const connected = await b.command({ cmd: 'connect', address: a.listenAddresses[0] });
    assert.equal(connected.ok, true);
    assert.equal((connected.peer as PeerInfo).peerId, a.peerId);
    assert.equal((connected.peer as PeerInfo).agent, 'e2e/a');
    await until(() => a.peer(bId)?.state === 'active', 'a to see b active');
    assert.equal(a.peer(bId)!.agent, 'e2e/e2e-b');

    // Channels both ways, including a message chunked over several frames.
    await a.send(bId, Vote, [payload(300)]);
    const vote = await b.next((e) => e.event === 'message', 'the vote at b');
    assert.deepEqual([vote.from, vote.size], [a.peerId, 300]);
    assert.equal((await b.command({ cmd: 'send-tx', peerId: a.peerId, size: 50_000 })).ok, true);
    await until(() => txs.length === 1, 'the tx at a');
    assert.deepEqual(txs, [50_000]);

    // Ping: both sides measure RTT.
    await until(() => a.peer(bId)?.rttMs !== undefined, 'an RTT at a');
    const peersAtB = (await b.command({ cmd: 'peers' })).peers as PeerInfo[];
    assert.equal(peersAtB.length, 1);

    // b bans a: a is disconnected with the reason.
    const closedAtA = once(a, 'peer:closed') as Promise<[PeerInfo, PqnetError]>;
    assert.equal((await b.command({ cmd: 'ban', peerId: a.peerId })).ok, true);
    const [, reason] = await closedAtA;
    assert.equal(reason.details?.remoteReason, 'PEER_BANNED');

    // kill -9 b and start it again on the same store.
    await b.kill();
    const b2 = new Child('e2e-b', storeB);
    children.push(b2);
    const again = await b2.next((e) => e.event === 'ready', 'b restarted');
    assert.equal(again.peerId, bId);
    assert.equal(again.peerBook, 1, 'b remembers the address of a');
    const bans = again.bans as { kind: string; target: string }[];
    assert.deepEqual(
      bans.map((x) => `${x.kind}:${x.target}`),
      [`peer:${a.peerId}`],
    );
    // The ban holds: b refuses a after the handshake.
    const refused = await b2.command({ cmd: 'connect', address: a.listenAddresses[0] });
    assert.equal(refused.ok, false);
    assert.equal(refused.code, 'PEER_BANNED');
    assert.equal((await b2.command({ cmd: 'stop' })).ok, true);
  } finally {
    await Promise.all(children.map((c) => c.kill()));
    await a.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
