/** SBS codec properties: exact integers, bounded decoding, typed errors; the schema-text parser. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import * as schema from '../../src/hat/eventer/schema.js';
import {
  array,
  boolean,
  bytes,
  choice,
  decode,
  encode,
  float,
  integer,
  none,
  optional,
  record,
  SbsError,
  type SbsType,
  string,
} from '../../src/hat/sbs/codec.js';
import { Repository, SbsSchemaError } from '../../src/hat/sbs/schema.js';
import { hex, loadVectors, toVectorValue, unhex } from './vectors.js';

/** The reference varint encoder of the protocol notes (§2.2), on BigInt. */
function referenceInteger(v: bigint): string {
  const out: number[] = [];
  for (;;) {
    let t = Number(v & 0x7fn);
    if (out.length === 0) t |= 0x80;
    out.unshift(t);
    v >>= 7n;
    if ((v === 0n && (t & 0x40) === 0) || (v === -1n && (t & 0x40) !== 0)) break;
  }
  return Buffer.from(out).toString('hex');
}

const canonical = (v: bigint): number | bigint =>
  v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;

describe('Integer', () => {
  test('encodes like the reference algorithm and decodes exactly, far beyond int64', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }), (v) => {
        const b = encode(integer, v);
        assert.equal(hex(b), referenceInteger(v));
        assert.equal(decode(integer, b), canonical(v));
        if (typeof canonical(v) === 'number') assert.equal(hex(encode(integer, Number(v))), hex(b));
      }),
      { numRuns: 2000 },
    );
  });

  test('numbers and bigints of the same value encode the same; safe results are numbers', () => {
    for (const v of [
      0,
      1,
      -1,
      63,
      64,
      -64,
      -65,
      2 ** 31,
      -(2 ** 31) - 1,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
    ]) {
      assert.equal(hex(encode(integer, v)), hex(encode(integer, BigInt(v))));
      assert.equal(typeof decode(integer, encode(integer, BigInt(v))), 'number');
    }
    assert.equal(typeof decode(integer, encode(integer, 2n ** 53n)), 'bigint');
  });

  test('non-integers are refused with a typed error', () => {
    for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null]) {
      assert.throws(() => encode(integer, bad as number), SbsError);
    }
  });

  test('over-long integers are refused, not looped over', () => {
    assert.throws(() => decode(integer, Buffer.alloc(100_000)), /integer longer than/);
  });
});

const Rec = record('T.Rec', { a: integer, b: string, c: optional(bytes), d: array(boolean) });
const Ch = choice('T.Ch', { x: none, y: Rec, z: float });
type RecValue = { a: number; b: string; c: Uint8Array | null; d: boolean[] };
const arbRec = fc.record({
  a: fc.integer(),
  b: fc.string({ unit: 'binary' }),
  c: fc.option(fc.uint8Array(), { nil: null }),
  d: fc.array(fc.boolean()),
});
const arbCh = fc.oneof(
  fc.constant(['x', null] as const),
  arbRec.map((r) => ['y', r] as const),
  fc.double().map((f) => ['z', f] as const),
);

describe('bounded decoding', () => {
  test('round trips', () => {
    fc.assert(
      fc.property(fc.array(arbCh, { maxLength: 5 }), (v) => {
        const t = array(Ch) as SbsType<unknown>;
        const b = encode(t, v);
        assert.deepStrictEqual(toVectorValue(decode(t, b)), toVectorValue(v));
      }),
      { numRuns: 300 },
    );
  });

  test('every strict prefix fails with an SbsError inside the prefix, never reading past it', () => {
    fc.assert(
      fc.property(arbRec, fc.nat(), (v, cut) => {
        const b = encode(Rec as SbsType<RecValue>, v);
        const k = cut % b.length;
        // The prefix is a view on a larger buffer: reading past it would see the real bytes.
        assert.throws(
          () => decode(Rec, b.subarray(0, k)),
          (e: unknown) =>
            e instanceof SbsError && e.offset <= k && /^SBS \S+ at byte \d+: /.test(e.message),
        );
      }),
      { numRuns: 500 },
    );
  });

  test('counts larger than the input are refused before allocating', () => {
    // Array(Integer) announcing 2^40 elements in 7 bytes.
    const b = encode(integer, 2 ** 40);
    assert.throws(() => decode(array(integer), b), /cannot fit/);
    assert.throws(() => decode(array(none), encode(integer, 2 ** 30)), /cannot fit/);
  });

  test('errors name the type and the offset', () => {
    assert.throws(
      () => decode(Ch, unhex('8185')),
      /SBS String at byte 2: unexpected end of input$/,
    );
    assert.throws(
      () => decode(Ch, unhex('84')),
      (e: unknown) => e instanceof SbsError && e.typeName === 'T.Ch' && e.offset === 0,
    );
    assert.throws(
      () => decode(Ch, unhex('09')),
      /SBS T.Ch at byte 1: unexpected end of input inside an integer$/,
    );
    assert.throws(() => decode(string, unhex('82c328')), /SBS String at byte 0: invalid UTF-8/);
    assert.throws(
      () => encode(Rec, { a: 1, b: 2 } as never),
      /SBS String at byte 1: expected a string/,
    );
  });
});

describe('schema text', () => {
  test('recursive definitions, commas, comments and cross-module references', () => {
    const repo = new Repository(
      `module A
       # a tree
       Tree = Record { value: Integer, children: Array(Tree) }
       MaybeTree = Choice { none: None value: Tree }`,
      'module B\nForest = Array(A.Tree)',
    );
    const tree = {
      value: 1,
      children: [
        { value: 2, children: [] },
        { value: 3, children: [{ value: 4, children: [] }] },
      ],
    };
    const t = repo.get('A.Tree');
    assert.deepStrictEqual(decode(t, encode(t, tree)), tree);
    assert.equal(
      hex(encode(repo.get('A.MaybeTree'), null)),
      '80',
      'a none/value choice has the Optional form',
    );
    const forest = repo.get('B.Forest');
    assert.deepStrictEqual(decode(forest, encode(forest, [tree, tree])), [tree, tree]);
    assert.deepStrictEqual(repo.names().sort(), ['A.MaybeTree', 'A.Tree', 'B.Forest']);
  });

  test('syntax and reference errors give line and column', () => {
    assert.throws(
      () => new Repository('module X\nA = Record {\n  a Integer\n}'),
      (e: unknown) => e instanceof SbsSchemaError && e.line === 3,
    );
    assert.throws(() => new Repository('module X\nA = Record { }'), /at least one entry/);
    assert.throws(() => new Repository('modul X'), /expected 'module'/);
    assert.throws(() => new Repository('module X\nA = Integer\nA = String'), /defined twice/);
    const repo = new Repository('module X\nP(T) = Array(T)\nQ = Unknown');
    assert.throws(() => repo.get('X.Q'), /unknown type Unknown|unknown type X.Unknown/);
    assert.throws(() => repo.parseType('X.P'), /takes 1 argument/);
    assert.throws(() => repo.parseType('Array(Integer) trailing'), /unexpected text/);
    assert.throws(() => repo.parseType('Array(Integer, String)'), /exactly one argument/);
  });

  test('the eventer schema as .sbs text equals the TypeScript definitions on every vector', () => {
    const repo = new Repository(EVENTER_SBS);
    const file = loadVectors<{
      messages: { name: string; hex: string }[];
      components: { name: string; hex: string }[];
    }>('eventer-messages.json');
    for (const m of [...file.messages, ...file.components]) {
      const fromText = repo.get(m.name);
      const fromTs = schema.types[m.name] as SbsType<unknown>;
      const value = decode(fromText, unhex(m.hex));
      assert.deepStrictEqual(
        toVectorValue(value),
        toVectorValue(decode(fromTs, unhex(m.hex))),
        m.name,
      );
      assert.equal(hex(encode(fromText, value)), m.hex, m.name);
    }
  });
});

/** `HatEventer` written out from the protocol notes §3.1, in .sbs syntax. */
const EVENTER_SBS = `module HatEventer

MsgInitReq = Record {
    clientName: String
    clientToken: Optional(String)
    subscriptions: Array(EventType)
    serverId: Optional(Integer)
    persisted: Boolean
}
MsgInitRes = Choice { success: Status  error: String }
MsgStatusNotify = Status
MsgEventsNotify = Array(Event)
MsgEventsAck = None
MsgRegisterReq = Array(RegisterEvent)
MsgRegisterRes = Choice { events: Array(Event)  failure: None }
MsgQueryReq = QueryParams
MsgQueryRes = QueryResult

Status = Choice { standby: None starting: None operational: None stopping: None }
Timestamp = Record { s: Integer us: Integer }
EventId = Record { server: Integer session: Integer instance: Integer }
Order = Choice { descending: None ascending: None }
OrderBy = Choice { timestamp: None sourceTimestamp: None }
EventType = Array(String)
EventPayload = Choice { binary: EventPayloadBinary json: EventPayloadJson }
EventPayloadBinary = Record { type: String data: Bytes }
EventPayloadJson = String
Event = Record {
    id: EventId
    type: EventType
    timestamp: Timestamp
    sourceTimestamp: Optional(Timestamp)
    payload: Optional(EventPayload)
}
RegisterEvent = Record {
    type: EventType
    sourceTimestamp: Optional(Timestamp)
    payload: Optional(EventPayload)
}
QueryParams = Choice {
    latest: QueryLatestParams
    timeseries: QueryTimeseriesParams
    server: QueryServerParams
}
QueryLatestParams = Record { eventTypes: Optional(Array(EventType)) }
QueryTimeseriesParams = Record {
    eventTypes: Optional(Array(EventType))
    tFrom: Optional(Timestamp)
    tTo: Optional(Timestamp)
    sourceTFrom: Optional(Timestamp)
    sourceTTo: Optional(Timestamp)
    order: Order
    orderBy: OrderBy
    maxResults: Optional(Integer)
    lastEventId: Optional(EventId)
}
QueryServerParams = Record {
    serverId: Integer
    persisted: Boolean
    maxResults: Optional(Integer)
    lastEventId: Optional(EventId)
}
QueryResult = Record { events: Array(Event) moreFollows: Boolean }
`;
