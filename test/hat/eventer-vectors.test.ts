/**
 * `eventer-messages.json`: every HatEventer message and component encodes to its exact bytes and
 * decodes to its value, both through the generic schema types and through the typed codec that
 * the client and the peer use (decode → model → encode gives the same bytes).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as codec from '../../src/hat/eventer/codec.js';
import * as schema from '../../src/hat/eventer/schema.js';
import { decode, encode } from '../../src/hat/sbs/codec.js';
import { fromVectorValue, hex, loadVectors, toVectorValue, unhex } from './vectors.js';

interface Entry {
  name: string;
  value: unknown;
  hex: string;
  note?: string;
}
const file = loadVectors<{ messages: Entry[]; components: Entry[] }>('eventer-messages.json');

/** Typed codec round trip per message type: bytes → model → bytes. */
const typed: Record<string, (data: Uint8Array) => Uint8Array> = {
  'HatEventer.MsgInitReq': (d) => codec.encodeInitReq(codec.decodeInitReq(d)),
  'HatEventer.MsgInitRes': (d) => codec.encodeInitRes(codec.decodeInitRes(d)),
  'HatEventer.MsgStatusNotify': (d) => codec.encodeStatusNotify(codec.decodeStatusNotify(d)),
  'HatEventer.MsgEventsNotify': (d) => codec.encodeEventsNotify(codec.decodeEventsNotify(d)),
  'HatEventer.MsgEventsAck': (d) => {
    codec.decodeEventsAck(d);
    return codec.encodeEventsAck();
  },
  'HatEventer.MsgRegisterReq': (d) => codec.encodeRegisterReq(codec.decodeRegisterReq(d)),
  'HatEventer.MsgRegisterRes': (d) => codec.encodeRegisterRes(codec.decodeRegisterRes(d)),
  'HatEventer.MsgQueryReq': (d) => codec.encodeQueryReq(codec.decodeQueryReq(d)),
  'HatEventer.MsgQueryRes': (d) => codec.encodeQueryRes(codec.decodeQueryRes(d)),
};

describe('eventer-messages.json', () => {
  test('the file has the documented counts', () => {
    assert.equal(file.messages.length, 50);
    assert.equal(file.components.length, 20);
  });

  for (const [group, entries] of [
    ['messages', file.messages],
    ['components', file.components],
  ] as const) {
    for (const [i, e] of entries.entries()) {
      test(`${group} ${i}: ${e.name} ${e.note ?? ''}`, () => {
        const type = schema.types[e.name];
        assert.ok(type !== undefined, `no schema type ${e.name}`);
        assert.equal(hex(encode(type, fromVectorValue(e.value))), e.hex, 'encoding differs');
        assert.deepStrictEqual(toVectorValue(decode(type, unhex(e.hex))), e.value);
        const roundTrip = typed[e.name];
        if (roundTrip !== undefined) {
          assert.equal(hex(roundTrip(unhex(e.hex))), e.hex, 'typed codec round trip differs');
        }
      });
    }
  }

  test('the typed codec maps events to the data model', () => {
    const notify = file.messages.find(
      (m) => m.name === 'HatEventer.MsgEventsNotify' && m.hex.length > 2,
    ) as Entry;
    const [event] = codec.decodeEventsNotify(unhex(notify.hex));
    assert.deepStrictEqual(event, {
      id: { server: 1, session: 4, instance: 1 },
      type: ['a', 'b'],
      timestamp: { s: 1795777803, us: 71018 },
      sourceTimestamp: { s: 1700000000, us: 123456 },
      payload: { kind: 'json', text: '{"x": 1}' },
    });
  });

  test('min/max timestamps keep bigint seconds', () => {
    const q = file.messages.find((m) => m.hex.startsWith('8180817f')) as Entry;
    const params = codec.decodeQueryReq(unhex(q.hex));
    assert.equal(params.kind, 'timeseries');
    if (params.kind === 'timeseries') {
      assert.equal(params.tFrom?.s, -(2n ** 63n));
      assert.equal(params.tTo?.s, 2n ** 63n - 1n);
    }
  });
});
