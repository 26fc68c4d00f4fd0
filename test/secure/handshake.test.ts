import { test } from 'node:test';
import assert from 'node:assert/strict';
import { equalBytes } from '../../src/core/bytes.ts';
import { Handshake } from '../../src/secure/handshake.ts';
import { drive, makePair } from './_drive.ts';

test('default handshake completes with hybrid KEM and ChaCha20-Poly1305; keys agree', () => {
  const p = makePair();
  drive(p);
  assert.equal(p.initiator.status, 'complete', p.initiator.error?.message);
  assert.equal(p.responder.status, 'complete', p.responder.error?.message);
  const i = p.initiator.result();
  const r = p.responder.result();
  assert.equal(i.kem, 'x25519-ml-kem-768');
  assert.equal(i.aead, 'chacha20-poly1305');
  assert.ok(equalBytes(i.txKey, r.rxKey));
  assert.ok(equalBytes(i.rxKey, r.txKey));
  assert.ok(!equalBytes(i.txKey, i.rxKey));
  assert.ok(equalBytes(i.sessionId, r.sessionId));
  assert.ok(i.remote.peerId.equals(p.rCfg.identity.peerId));
  assert.ok(r.remote.peerId.equals(p.iCfg.identity.peerId));
  assert.equal(new TextDecoder().decode(r.remote.identify), 'alice-identify');
});

test('the responder hands out HELLO_R before it signs AUTH_R (the signature overlaps the network)', () => {
  const p = makePair();
  let signs = 0;
  const id = p.rCfg.identity;
  const counting = { ...id, sign: (m: Uint8Array) => (signs++, id.sign(m)) };
  const responder = Handshake.respond({ ...p.rCfg, identity: counting }, 0);
  responder.receive(p.initiator.pollTransmit()!, 0);
  const first = responder.pollTransmit()!;
  assert.equal(first[4], 2, 'HELLO_R first');
  assert.equal(signs, 0, 'nothing signed yet');
  const second = responder.pollTransmit()!;
  assert.equal(second[4], 3, 'then AUTH_R');
  assert.equal(signs, 1);
  assert.equal(responder.pollTransmit(), undefined);
  p.initiator.receive(first, 0);
  p.initiator.receive(second, 0);
  responder.receive(p.initiator.pollTransmit()!, 0);
  assert.equal(p.initiator.status, 'complete');
  assert.equal(responder.status, 'complete');
});
