/**
 * hat-monitor's observer protocol against the golden vectors of `monitor-vectors/`:
 * `monitor-messages.json` (every message and component value encodes to its hex and decodes back)
 * and every HatObserver payload of the recorded conversations (decodes, equals the recorded value,
 * re-encodes to the same bytes). Decoding garbage or the wrong message type raises ProtocolError
 * and nothing else.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ProtocolError } from '../../src/hat/chatter/errors.js';
import {
  blessingReqFromSbs,
  blessingResFromSbs,
  componentInfoFromSbs,
  decodeClientMsg,
  decodeComponentMessage,
  decodeMonitorMessage,
  decodeServerMsg,
  encodeClientMsg,
  encodeClose,
  encodeServerMsg,
  MSG_CLIENT,
  MSG_CLOSE,
  MSG_MASTER,
  MSG_SERVER,
  MSG_SLAVE,
} from '../../src/hat/monitor/codec.js';
import type { ClientMsg, ServerMsg } from '../../src/hat/monitor/common.js';
import * as S from '../../src/hat/monitor/schema.js';
import { decode, encode, type SbsType } from '../../src/hat/sbs/codec.js';
import { hex, loadMonitorConversations, loadMonitorVectors, unhex } from './monitor-vectors.js';

interface Entry {
  name: string;
  value: unknown;
  hex: string;
  note?: string;
  captured?: string;
}
const file = loadMonitorVectors<{ messages: Entry[]; components: Entry[] }>(
  'monitor-messages.json',
);
const conversations = new Map(
  [...loadMonitorConversations()].map(([name, conv]) => [name, conv.steps]),
);

/** The schema type of a message or component name (`HatObserver.X`). */
const schemaTypes: Record<string, SbsType<unknown>> = {
  ...S.messageTypes,
  'HatObserver.BlessingReq': S.BlessingReq as SbsType<unknown>,
  'HatObserver.BlessingRes': S.BlessingRes as SbsType<unknown>,
  'HatObserver.ComponentInfo': S.ComponentInfo as SbsType<unknown>,
};

/** Encodes a message value through the codec (schema types for the master-port messages). */
function encodeMessage(name: string, value: unknown): Buffer {
  switch (name) {
    case MSG_CLIENT:
      return encodeClientMsg(value as ClientMsg);
    case MSG_SERVER:
      return encodeServerMsg(value as ServerMsg);
    case MSG_CLOSE:
      assert.equal(value, null);
      return encodeClose();
    default:
      return encode(schemaTypes[name] as SbsType<unknown>, value);
  }
}

/** Decodes a message through the codec, checking the receiving side's view as well. */
function decodeMessage(name: string, data: Uint8Array): unknown {
  switch (name) {
    case MSG_CLIENT: {
      const v = decodeClientMsg(data);
      assert.deepEqual(decodeComponentMessage(name, data), v);
      assert.throws(() => decodeMonitorMessage(name, data), ProtocolError);
      return v;
    }
    case MSG_SERVER: {
      const v = decodeServerMsg(data);
      assert.deepEqual(decodeMonitorMessage(name, data), { kind: 'server', msg: v });
      assert.throws(() => decodeComponentMessage(name, data), ProtocolError);
      return v;
    }
    case MSG_CLOSE:
      assert.deepEqual(decodeMonitorMessage(name, data), { kind: 'close' });
      assert.throws(() => decodeComponentMessage(name, data), ProtocolError);
      return null;
    default:
      // MsgSlave / MsgMaster travel between monitors only: both sides of the component port refuse them.
      assert.throws(() => decodeMonitorMessage(name, data), ProtocolError);
      assert.throws(() => decodeComponentMessage(name, data), ProtocolError);
      return decode(schemaTypes[name] as SbsType<unknown>, data);
  }
}

describe('monitor-messages.json', () => {
  test('has the documented counts', () => {
    assert.equal(file.messages.length, 17);
    assert.equal(file.components.length, 9);
    const count = (n: string) => file.messages.filter((m) => m.name === `HatObserver.${n}`).length;
    assert.deepEqual(
      ['MsgClient', 'MsgServer', 'MsgClose', 'MsgSlave', 'MsgMaster'].map(count),
      [8, 5, 1, 2, 1],
    );
  });

  for (const [i, m] of file.messages.entries()) {
    test(`message ${i}: ${m.name} ${m.note ?? ''}`, () => {
      assert.equal(hex(encodeMessage(m.name, m.value)), m.hex);
      assert.deepEqual(decodeMessage(m.name, unhex(m.hex)), m.value);
    });
  }

  for (const [i, c] of file.components.entries()) {
    test(`component ${i}: ${c.name} ${c.note ?? ''}`, () => {
      const type = schemaTypes[c.name];
      assert.ok(type !== undefined, c.name);
      assert.equal(hex(encode(type, c.value)), c.hex);
      const v = decode(type, unhex(c.hex));
      assert.deepEqual(v, c.value);
      // ... and through the model converters (the values are all within 2^53).
      const model =
        c.name === 'HatObserver.BlessingReq'
          ? blessingReqFromSbs(v as S.SbsBlessingReq)
          : c.name === 'HatObserver.BlessingRes'
            ? blessingResFromSbs(v as S.SbsBlessingRes)
            : componentInfoFromSbs(v as S.SbsComponentInfo);
      assert.deepEqual(model, c.value);
    });
  }

  test('every "captured" entry carries the bytes of the named conversation step', () => {
    const captured = [...file.messages, ...file.components].filter((m) => m.captured);
    assert.equal(captured.length, 12);
    for (const m of captured) {
      const [conv, , index] = (m.captured as string).split(' ');
      const step = conversations.get(conv as string)?.[Number(index)];
      assert.ok(step?.decoded, `${m.captured} is a frame`);
      assert.equal(step.decoded.data.type, m.name, m.captured);
      assert.equal(step.decoded.data.data_hex, m.hex, m.captured);
    }
  });
});

describe('recorded HatObserver payloads', () => {
  test('all 12 conversations are present', () => {
    assert.equal(conversations.size, 12);
  });

  for (const [name, steps] of conversations) {
    test(name, () => {
      let n = 0;
      for (const [i, step] of steps.entries()) {
        const d = step.decoded;
        if (d === undefined || !d.data.type.startsWith('HatObserver.')) continue;
        n++;
        const where = `${name} step ${i} (${step.conn} ${step.dir} ${d.data.type})`;
        const data = unhex(d.data.data_hex);
        const value = decodeMessage(d.data.type, data);
        assert.deepEqual(value, d.payload, where);
        assert.equal(hex(encodeMessage(d.data.type, value)), d.data.data_hex, where);
        // the direction's decoder accepts it (MsgSlave is the one refused on the component port)
        if (step.dir === 's2c') decodeMonitorMessage(d.data.type, data);
        else if (d.data.type === MSG_CLIENT) decodeComponentMessage(d.data.type, data);
        else assert.equal(d.data.type, MSG_SLAVE, where);
      }
      assert.ok(n > 0, 'the conversation has HatObserver frames');
    });
  }
});

describe('decoding refuses garbage with ProtocolError only', () => {
  const decoders: [string, (data: Uint8Array) => unknown][] = [
    ['decodeClientMsg', decodeClientMsg],
    ['decodeServerMsg', decodeServerMsg],
    ['decodeMonitorMessage(MsgServer)', (d) => decodeMonitorMessage(MSG_SERVER, d)],
    ['decodeMonitorMessage(MsgClose)', (d) => decodeMonitorMessage(MSG_CLOSE, d)],
    ['decodeComponentMessage(MsgClient)', (d) => decodeComponentMessage(MSG_CLIENT, d)],
  ];
  const onlyProtocolErrors = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      assert.ok(
        err instanceof ProtocolError,
        `${(err as Error)?.name}: ${(err as Error)?.message}`,
      );
    }
  };

  /** The decoders whose own type a message is. */
  const own: Record<string, string[]> = {
    [MSG_CLIENT]: ['decodeClientMsg', 'decodeComponentMessage(MsgClient)'],
    [MSG_SERVER]: ['decodeServerMsg', 'decodeMonitorMessage(MsgServer)'],
    [MSG_CLOSE]: ['decodeMonitorMessage(MsgClose)'],
  };

  test('every strict prefix and every extension of the vector payloads', () => {
    for (const m of file.messages) {
      const bytes = unhex(m.hex);
      for (const [label, f] of decoders) {
        const mine = own[m.name]?.includes(label) ?? false;
        for (let k = 0; k < bytes.length; k++) {
          // SBS values are self-delimiting: a strict prefix never decodes as the same type.
          if (mine) assert.throws(() => f(bytes.subarray(0, k)), ProtocolError, `${label} ${k}`);
          else onlyProtocolErrors(() => f(bytes.subarray(0, k)));
        }
        const longer = Buffer.concat([bytes, Buffer.of(0x80)]);
        if (mine) assert.throws(() => f(longer), ProtocolError, `${label}: trailing byte`);
        else onlyProtocolErrors(() => f(longer));
      }
    }
  });

  test('wrong message types on either side', () => {
    for (const type of [MSG_SLAVE, MSG_MASTER, 'HatObserver.Nope', '', 'HatChatter.Ping']) {
      assert.throws(() => decodeMonitorMessage(type, unhex('818080')), ProtocolError);
      assert.throws(() => decodeComponentMessage(type, unhex('8080808000')), ProtocolError);
    }
    assert.throws(() => decodeMonitorMessage(MSG_CLIENT, unhex('8080808000')), ProtocolError);
    assert.throws(() => decodeComponentMessage(MSG_SERVER, unhex('818080')), ProtocolError);
    assert.throws(() => decodeComponentMessage(MSG_CLOSE, new Uint8Array(0)), ProtocolError);
  });

  test('integers beyond 2^53 and invalid UTF-8', () => {
    // MsgServer {cid: 2^60, mid: 0, components: []}
    const big = encode(S.MsgServer, { cid: 2n ** 60n, mid: 0, components: [] });
    assert.throws(() => decodeServerMsg(big), ProtocolError);
    const bigToken = encode(S.MsgClient, {
      name: 'a',
      group: 'b',
      data: 'null',
      blessingRes: { token: -(2n ** 64n), ready: true },
    });
    assert.throws(() => decodeClientMsg(bigToken), ProtocolError);
    // name: 1 byte 0xff (not UTF-8); and a long one through the non-ASCII path
    assert.throws(() => decodeClientMsg(unhex('81ff80808000')), ProtocolError);
    const long = Buffer.concat([unhex('0181'), Buffer.alloc(129, 0xc3), unhex('80808000')]);
    assert.throws(() => decodeClientMsg(long), ProtocolError);
  });

  test('random bytes (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.string({ maxLength: 24 }), (bytes, type) => {
        for (const [, f] of decoders) onlyProtocolErrors(() => f(bytes));
        onlyProtocolErrors(() => decodeMonitorMessage(type, bytes));
        onlyProtocolErrors(() => decodeComponentMessage(type, bytes));
      }),
      { numRuns: 2000 },
    );
  });

  test('mutated vector payloads (fast-check)', () => {
    const payloads = file.messages.map((m) => unhex(m.hex)).filter((b) => b.length > 0);
    fc.assert(
      fc.property(
        fc.constantFrom(...payloads),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (payload, edits) => {
          const b = Buffer.from(payload);
          for (const [at, v] of edits) b[at % b.length] = v;
          for (const [, f] of decoders) onlyProtocolErrors(() => f(b));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
