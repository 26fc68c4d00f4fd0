/**
 * The operator surface end to end, with real processes: two `pqnet listen`
 * nodes driven only through the `pqnet` command and the HTTP API.
 *
 * A listens; B is told `peer connect` to A; `peer list --json` on both shows
 * the other active with the post-quantum handshake; `/metrics` on both shows
 * the handshake and byte counters moved; `peer ban` on A drops B, which cannot
 * reconnect until `peer unban`; SIGTERM stops both cleanly, and after a
 * restart A still has its bans and B redials A from its peer book.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BansResponse, PeerJson } from '../../src/rpc/types.ts';
import { eventually, NodeProcess, ok, pqnet } from './_cli.ts';

function activePeer(peers: readonly PeerJson[], peerId: string): PeerJson | undefined {
  return peers.find((p) => p.peerId === peerId && p.state === 'active');
}

test('operator: connect, list, metrics, ban and unban through pqnet and the API; SIGTERM and restart keep peers and bans', { timeout: 180_000 }, async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pqnet-operator-'));
  const a = new NodeProcess(path.join(root, 'a'));
  const b = new NodeProcess(path.join(root, 'b'));
  try {
    const A = await a.start('tcp://127.0.0.1:0');
    const B = await b.start('tcp://127.0.0.1:0');
    assert.equal(readFileSync(path.join(a.dir, 'api.addr'), 'utf8').trim(), A.api.replace('http://', ''));
    const handshakesA = 'p2p_handshake_duration_seconds_count{direction="inbound",kem="x25519-ml-kem-768"}';
    const handshakesB = 'p2p_handshake_duration_seconds_count{direction="outbound",kem="x25519-ml-kem-768"}';
    const beforeA = await a.metrics(A.api);
    const beforeB = await b.metrics(B.api);
    assert.equal(beforeA.get('p2p_bytes_total{dir="in"}'), 0);
    assert.equal(beforeA.get(handshakesA) ?? 0, 0);

    // B is told to connect to A.
    const connected = JSON.parse(await ok(['peer', 'connect', '--addr', A.listen, '--data-dir', b.dir, '--json'])) as { peer: PeerJson };
    assert.equal(connected.peer.peerId, A.peerId);
    assert.equal(connected.peer.state, 'active');

    // Both list the other as active, with the post-quantum handshake.
    await eventually(async () => activePeer(await a.peers(), B.peerId) !== undefined, 'A to list B as active');
    for (const [node, other] of [
      [a, B.peerId],
      [b, A.peerId],
    ] as const) {
      const p = activePeer(await node.peers(), other)!;
      assert.ok(p !== undefined, `${node.dir} lists ${other}`);
      assert.deepEqual({ kem: p.handshake?.kem, sig: p.handshake?.sig }, { kem: 'x25519-ml-kem-768', sig: 'ml-dsa-65' });
      assert.ok(p.bytesIn > 0 && p.bytesOut > 0);
      assert.equal(p.messages.in['hello'], 1);
    }
    // The human table names the peer too.
    assert.match(await ok(['peer', 'list', '--data-dir', a.dir]), new RegExp(`${B.peerId}\\s+in\\s+active`));

    // The handshake and byte counters moved on both.
    const afterA = await a.metrics(A.api);
    const afterB = await b.metrics(B.api);
    assert.equal(afterA.get(handshakesA), 1);
    assert.equal(afterB.get(handshakesB), 1);
    for (const [before, after] of [
      [beforeA, afterA],
      [beforeB, afterB],
    ]) {
      for (const dir of ['in', 'out']) assert.ok(after.get(`p2p_bytes_total{dir="${dir}"}`)! > (before.get(`p2p_bytes_total{dir="${dir}"}`) ?? 0), `bytes ${dir} moved`);
      assert.equal(after.get('p2p_msgs_total{dir="in",type="hello"}'), 1);
    }
    assert.equal(afterA.get('p2p_peers{state="active",direction="inbound"}'), 1);
    assert.equal(afterB.get('p2p_peers{state="active",direction="outbound"}'), 1);

    // A bans B: B is dropped and cannot reconnect until unbanned.
    assert.match(await ok(['peer', 'ban', B.peerId, '--for', '2h', '--note', 'e2e', '--data-dir', a.dir]), /^banned pq1/);
    await eventually(async () => activePeer(await a.peers(), B.peerId) === undefined, 'A to drop B');
    await eventually(async () => activePeer(await b.peers(), A.peerId) === undefined, 'B to see A gone');
    const refused = await pqnet(['peer', 'connect', '--addr', A.listen, '--data-dir', b.dir]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /PEER_BANNED/);
    assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
    const bans = JSON.parse(await ok(['peer', 'bans', '--json', '--data-dir', a.dir])) as BansResponse;
    assert.deepEqual(
      bans.bans.map((x) => [x.kind, x.target, x.note]),
      [['peer', B.peerId, 'e2e']],
    );
    assert.equal((await a.metrics(A.api)).get('p2p_bans_total{kind="peer",reason="OPERATOR_BAN"}'), 1);

    await ok(['peer', 'unban', B.peerId, '--data-dir', a.dir]);
    // B's peer book may redial A by itself first; connect then returns that connection.
    await ok(['peer', 'connect', '--addr', A.listen, '--data-dir', b.dir]);
    await eventually(async () => activePeer(await a.peers(), B.peerId) !== undefined, 'B back at A');

    // A ban in force at shutdown, to be found after the restart.
    await ok(['peer', 'ban', '203.0.113.0/24', '--for', '1h', '--data-dir', a.dir]);

    // SIGTERM: both stop gracefully and remove api.addr.
    assert.equal(await b.stop(), 0);
    assert.equal(await a.stop(), 0);
    for (const n of [a, b]) {
      assert.ok(n.lines.some((l) => l['msg'] === 'node stopped'), `${n.dir} logged node stopped`);
      assert.ok(!existsSync(path.join(n.dir, 'api.addr')), `${n.dir}/api.addr removed`);
    }
    const down = await pqnet(['peer', 'list', '--api', A.api]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^pqnet: cannot reach the node API at .*\n$/);

    // Restart: A on the same address, so B's peer book entry for it is still right.
    const A2 = await a.start(A.listen);
    assert.equal(A2.peerId, A.peerId);
    const bans2 = JSON.parse(await ok(['peer', 'bans', '--json', '--data-dir', a.dir])) as BansResponse;
    assert.deepEqual(
      bans2.bans.map((x) => [x.kind, x.target]),
      [['address', '203.0.113.0/24']],
    );
    const B2 = await b.start('tcp://127.0.0.1:0');
    assert.equal(B2.peerId, B.peerId);
    // Nobody tells B to connect: it redials A from its peer book.
    await eventually(async () => activePeer(await b.peers(), A.peerId) !== undefined, 'B to redial A from its peer book', 150);
    await eventually(async () => activePeer(await a.peers(), B.peerId) !== undefined, 'A to list B after the restart');
    assert.equal(await b.stop(), 0);
    assert.equal(await a.stop(), 0);
  } finally {
    a.kill();
    b.kill();
    rmSync(root, { recursive: true, force: true });
  }
});
