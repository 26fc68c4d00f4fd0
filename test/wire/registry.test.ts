import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isPqnetError, type Reason } from '../../src/core/errors.ts';
import { MAX_CHUNK_BYTES } from '../../src/core/limits.ts';
import { encodeCbor } from '../../src/wire/cbor.ts';
import { Channel } from '../../src/wire/channels.ts';
import { APP_MESSAGE_ID_MIN, CONTROL_MESSAGES, createRegistry, Credit, Goodbye, MAX_SINGLE_FRAME_PAYLOAD, Ping, Pong } from '../../src/wire/messages.ts';
import { defineMessage, MessageRegistry } from '../../src/wire/registry.ts';
import { arrayOf, bytes, text, tuple, uint } from '../../src/wire/schema.ts';

function assertCode(fn: () => unknown, code: Reason, fragment?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isPqnetError(e), `expected a PqnetError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (fragment !== undefined) assert.ok(e.message.includes(fragment), `"${e.message}" lacks "${fragment}"`);
    return true;
  });
}

const Blocks = defineMessage({
  id: 0x8001,
  name: 'app.blocks',
  channel: Channel.BLOCKS,
  maxBytes: 64,
  schema: tuple(uint(1_000_000), arrayOf(bytes(4), 0, 8)),
});

describe('defineMessage', () => {
  test('validates the id and the cap, and freezes the result', () => {
    assert.ok(Object.isFrozen(Blocks));
    const base = { name: 'x', channel: Channel.CONTROL, maxBytes: 10, schema: uint() };
    for (const id of [-1, 0x10000, 1.5, Number.NaN]) assert.throws(() => defineMessage({ ...base, id }), RangeError, String(id));
    for (const maxBytes of [0, -1, 2.5]) assert.throws(() => defineMessage({ ...base, id: 1, maxBytes }), RangeError, String(maxBytes));
    assert.equal(defineMessage({ ...base, id: 0 }).id, 0);
    assert.equal(defineMessage({ ...base, id: 0xffff }).id, 0xffff);
  });
});

describe('MessageRegistry', () => {
  test('register, get, byName, types in id order', () => {
    const r = new MessageRegistry();
    const b = defineMessage({ id: 0x9000, name: 'b', channel: Channel.GOSSIP, maxBytes: 8, schema: uint() });
    assert.equal(r.register(b), b);
    r.register(Blocks);
    assert.equal(r.get(0x8001), Blocks);
    assert.equal(r.byName('app.blocks'), Blocks);
    assert.equal(r.get(0x8002), undefined);
    assert.equal(r.byName('nope'), undefined);
    assert.deepEqual(r.types().map((t) => t.id), [0x8001, 0x9000]);
  });

  test('a duplicate id or name is refused, and the refused type is not half-registered', () => {
    const r = new MessageRegistry([Blocks]);
    const sameId = defineMessage({ ...Blocks, name: 'other' });
    const sameName = defineMessage({ ...Blocks, id: 0x8002 });
    assertCode(() => r.register(sameId), 'INVALID_ARGUMENT', 'app.blocks');
    assertCode(() => r.register(sameName), 'INVALID_ARGUMENT', 'app.blocks');
    assert.equal(r.byName('other'), undefined);
    assert.equal(r.get(0x8002), undefined);
    assert.deepEqual(r.types(), [Blocks]);
    assertCode(() => new MessageRegistry([Blocks, Blocks]), 'INVALID_ARGUMENT');
  });

  test('encode -> decode round trip', () => {
    const r = new MessageRegistry([Blocks]);
    const value: [number, Uint8Array[]] = [42, [Uint8Array.of(1, 2, 3, 4), Uint8Array.of(5, 6, 7, 8)]];
    const payload = r.encode(Blocks, value);
    const d = r.decode(0x8001, Channel.BLOCKS, payload);
    assert.equal(d.type, Blocks);
    assert.deepEqual(d.value, value);
  });

  test('encode checks the schema (path = message name) and enforces the cap', () => {
    const r = new MessageRegistry([Blocks]);
    assertCode(() => r.encode(Blocks, [1_000_001, []]), 'MSG_SCHEMA', 'app.blocks[0]');
    assertCode(() => r.encode(Blocks, [1, [Uint8Array.of(1)]]), 'MSG_SCHEMA', 'app.blocks[1][0]');
    // Schema allows 100 bytes, the cap 5: a 4-byte string encodes to 5 bytes, a 5-byte one to 6.
    const Tight = defineMessage({ id: 0x8003, name: 'tight', channel: Channel.BULK, maxBytes: 5, schema: bytes(0, 100) });
    assert.equal(r.encode(Tight, new Uint8Array(4)).length, 5);
    assertCode(() => r.encode(Tight, new Uint8Array(5)), 'MSG_OVERSIZE', 'tight: 6 > 5');
  });

  describe('decode checks, in order', () => {
    const r = new MessageRegistry([Blocks]);
    const good = r.encode(Blocks, [1, []]);

    test('unknown id -> MSG_UNKNOWN_ID', () => {
      assertCode(() => r.decode(0x8002, Channel.BLOCKS, good), 'MSG_UNKNOWN_ID', '0x8002');
      assertCode(() => r.decode(0x0063, Channel.BLOCKS, good), 'MSG_UNKNOWN_ID', '0x0063');
      // The id is checked before anything else.
      assertCode(() => r.decode(0x0001, 99, new Uint8Array(10_000)), 'MSG_UNKNOWN_ID');
    });

    test('wrong channel -> MSG_WRONG_CHANNEL, before size or parsing', () => {
      assertCode(() => r.decode(0x8001, Channel.CONTROL, good), 'MSG_WRONG_CHANNEL', 'app.blocks on channel 0');
      assertCode(() => r.decode(0x8001, Channel.TRANSACTIONS, new Uint8Array(10_000).fill(0xff)), 'MSG_WRONG_CHANNEL');
    });

    test('oversize -> MSG_OVERSIZE before parsing', () => {
      assertCode(() => r.decode(0x8001, Channel.BLOCKS, new Uint8Array(65).fill(0xff)), 'MSG_OVERSIZE', '65 > 64');
      // A valid encoding over the cap is refused too (1 + 1 + 1 + 13 * 5 = 68 bytes).
      const big = encodeCbor([1, Array.from({ length: 13 }, () => new Uint8Array(4))]);
      assert.equal(big.length, 68);
      assertCode(() => r.decode(0x8001, Channel.BLOCKS, big), 'MSG_OVERSIZE');
    });

    test('bad CBOR -> MSG_MALFORMED / MSG_NON_CANONICAL', () => {
      assertCode(() => r.decode(0x8001, Channel.BLOCKS, Uint8Array.of(0x82, 0x01)), 'MSG_MALFORMED');
      assertCode(() => r.decode(0x8001, Channel.BLOCKS, Uint8Array.of(0x82, 0x18, 0x01, 0x80)), 'MSG_MALFORMED');
      assertCode(() => r.decode(0x8001, Channel.BLOCKS, Uint8Array.of(0x82, 0xf9, 0x3c, 0x00, 0x80)), 'MSG_NON_CANONICAL');
    });

    test('schema mismatch -> MSG_SCHEMA naming the path', () => {
      assertCode(() => r.decode(0x8001, Channel.BLOCKS, encodeCbor([1])), 'MSG_SCHEMA', 'app.blocks: expected array of 2');
      assertCode(() => r.decode(0x8001, Channel.BLOCKS, encodeCbor(['1', []])), 'MSG_SCHEMA', 'app.blocks[0]');
      assertCode(() => r.decode(0x8001, Channel.BLOCKS, encodeCbor([1, [new Uint8Array(3)]])), 'MSG_SCHEMA', 'app.blocks[1][0]: expected bytes[4], got bytes(3)');
      assertCode(() => r.decode(0x8001, Channel.BLOCKS, encodeCbor({ a: 1 })), 'MSG_SCHEMA');
    });
  });
});

describe('control messages', () => {
  test('createRegistry holds ping, pong, goodbye and credit on the control channel; app ids are free', () => {
    const r = createRegistry();
    assert.deepEqual(r.types(), [Ping, Pong, Goodbye, Credit]);
    assert.deepEqual([...CONTROL_MESSAGES], [Ping, Pong, Goodbye, Credit]);
    for (const t of CONTROL_MESSAGES) {
      assert.equal(t.channel, Channel.CONTROL);
      assert.ok(t.id < APP_MESSAGE_ID_MIN);
    }
    assert.equal(MAX_SINGLE_FRAME_PAYLOAD, MAX_CHUNK_BYTES);
    // Registries are independent: adding to one leaves another alone.
    r.register(Blocks);
    assert.equal(createRegistry().get(Blocks.id), undefined);
  });

  test('ping/pong carry exactly 8 bytes; goodbye a u16 code and at most 256 bytes of text', () => {
    const r = createRegistry();
    const nonce = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    assert.deepEqual(r.decode(Ping.id, Channel.CONTROL, r.encode(Ping, [nonce])).value, [nonce]);
    assert.deepEqual(r.decode(Pong.id, Channel.CONTROL, r.encode(Pong, [nonce])).value, [nonce]);
    assertCode(() => r.encode(Ping, [nonce.subarray(0, 7)]), 'MSG_SCHEMA', 'ping[0]');
    assertCode(() => r.decode(Ping.id, Channel.CONTROL, encodeCbor([new Uint8Array(9)])), 'MSG_SCHEMA', 'ping[0]');
    assertCode(() => r.decode(Pong.id, Channel.BLOCKS, r.encode(Pong, [nonce])), 'MSG_WRONG_CHANNEL');

    const bye: [number, string] = [0xffff, 'x'.repeat(256)];
    assert.deepEqual(r.decode(Goodbye.id, Channel.CONTROL, r.encode(Goodbye, bye)).value, bye);
    assertCode(() => r.encode(Goodbye, [5, 'é'.repeat(129)]), 'MSG_SCHEMA', 'goodbye[1]');
    assertCode(() => r.encode(Goodbye, [0x10000, 'x']), 'MSG_SCHEMA', 'goodbye[0]');
    assertCode(() => r.decode(Goodbye.id, Channel.CONTROL, encodeCbor([1, 'x'.repeat(257)])), 'MSG_SCHEMA', 'goodbye[1]');
    assertCode(() => r.decode(Goodbye.id, Channel.CONTROL, encodeCbor([1, 'x'.repeat(400)])), 'MSG_OVERSIZE');
  });
});

test('text schema bound used by goodbye is in UTF-8 bytes', () => {
  assert.equal(text(256).check('é'.repeat(128), 'x').length, 128);
});
