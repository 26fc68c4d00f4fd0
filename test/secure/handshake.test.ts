import { test } from 'node:test';
import assert from 'node:assert/strict';
import { equalBytes } from '../../src/core/bytes.ts';
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
