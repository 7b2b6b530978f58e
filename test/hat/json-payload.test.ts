/**
 * Large JSON payload texts kept as the received bytes (src/hat/eventer/payload.ts): decoded only
 * when asked for, re-encoded byte-identically, compared as bytes; small ones stay strings; a text
 * given in parts encodes like the joined text.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decodeEventsNotify,
  decodeRegisterReq,
  encodeEventsNotify,
  encodeRegisterReq,
} from '../../src/hat/eventer/codec.js';
import {
  type Event,
  type EventPayloadJson,
  parseJsonPayload,
} from '../../src/hat/eventer/common.js';
import {
  BASE64_STEP,
  Base64TextPart,
  jsonPayloadSize,
  LARGE_JSON_TEXT_BYTES,
  PartsJsonPayload,
  ReceivedJsonPayload,
  sameJsonText,
} from '../../src/hat/eventer/payload.js';
import { spyTextReads } from '../support/text-reads.js';

function event(text: string): Event {
  return {
    id: { server: 1, session: 2, instance: 3 },
    type: ['a', 'b'],
    timestamp: { s: 10, us: 5 },
    sourceTimestamp: null,
    payload: { kind: 'json', text },
  };
}

/** A large text with multi-byte characters (2, 3 and 4 bytes) spread through it. */
function largeText(bytes: number): string {
  const unit = 'abcdefgh-é-模-😀-'.repeat(64);
  let s = '';
  while (Buffer.byteLength(s) < bytes) s += unit;
  return JSON.stringify({ type: 'm', instance: s });
}

/** Counts decodes of received payload texts while `fn` runs. */
function countTextReads(fn: () => void): number {
  const spy = spyTextReads();
  try {
    fn();
  } finally {
    spy.restore();
  }
  return spy.count();
}

describe('large JSON payloads kept as bytes', () => {
  const text = largeText(LARGE_JSON_TEXT_BYTES + 1000);
  const wire = encodeEventsNotify([event(text)]);

  test('a received large text is kept as its bytes and decodes to the original text', () => {
    const [e] = decodeEventsNotify(wire);
    const p = e?.payload as EventPayloadJson;
    assert.ok(p instanceof ReceivedJsonPayload);
    assert.equal(p.bytes.length, Buffer.byteLength(text));
    assert.equal(jsonPayloadSize(p), Buffer.byteLength(text));
    assert.equal(p.text, text);
    assert.deepEqual(parseJsonPayload(p), JSON.parse(text));
  });

  test('re-encoding a received event writes its bytes as they came, without decoding', () => {
    const events = decodeEventsNotify(wire);
    let again: Buffer = Buffer.alloc(0);
    assert.equal(
      countTextReads(() => {
        again = encodeEventsNotify(events);
      }),
      0,
    );
    assert.ok(again.equals(wire));
  });

  test('a text at the threshold is kept as bytes, one byte below stays a string', () => {
    for (const n of [LARGE_JSON_TEXT_BYTES - 1, LARGE_JSON_TEXT_BYTES]) {
      const t = `"${'x'.repeat(n - 2)}"`;
      const p = decodeEventsNotify(encodeEventsNotify([event(t)]))[0]?.payload as EventPayloadJson;
      assert.equal(p instanceof ReceivedJsonPayload, n >= LARGE_JSON_TEXT_BYTES);
      assert.equal(p.text, t);
    }
  });

  test('small payloads decode to plain objects as before', () => {
    const [e] = decodeEventsNotify(encodeEventsNotify([event('{"a": 1}')]));
    assert.deepEqual(e?.payload, { kind: 'json', text: '{"a": 1}' });
  });

  test('invalid UTF-8 in a large text is still refused when received', () => {
    const bad = Buffer.from(wire);
    const at = bad.indexOf(Buffer.from('abcdefgh'));
    bad[at] = 0xff;
    assert.throws(() => decodeEventsNotify(bad), /invalid UTF-8/);
  });
});

describe('texts in parts', () => {
  test('a parts payload encodes like its joined text, and its text is the joined text', () => {
    const parts = ['{"type": "m", "instance": "', 'é模😀'.repeat(30_000), '"}'];
    const joined = parts.join('');
    const reg = (payload: EventPayloadJson) => [{ type: ['x'], sourceTimestamp: null, payload }];
    const p = new PartsJsonPayload(parts);
    assert.equal(p.text, joined);
    assert.equal(jsonPayloadSize(p), joined.length);
    const wire = encodeRegisterReq(reg(p));
    assert.ok(wire.equals(encodeRegisterReq(reg({ kind: 'json', text: joined }))));
    // What the server would see comes back as bytes equal to what was sent.
    const back = decodeRegisterReq(wire)[0]?.payload as EventPayloadJson;
    assert.ok(back instanceof ReceivedJsonPayload);
    assert.equal(
      countTextReads(() => assert.ok(sameJsonText(back, p))),
      0,
    );
  });
});

describe('sameJsonText', () => {
  const base = largeText(LARGE_JSON_TEXT_BYTES * 2);
  const received = (t: string) =>
    decodeEventsNotify(encodeEventsNotify([event(t)]))[0]?.payload as EventPayloadJson;

  test('equal texts in every form compare equal', () => {
    const forms: EventPayloadJson[] = [
      { kind: 'json', text: base },
      new PartsJsonPayload([base.slice(0, 100), base.slice(100, 70_001), base.slice(70_001)]),
      received(base),
    ];
    for (const a of forms) for (const b of forms) assert.ok(sameJsonText(a, b));
  });

  test('a text differing in one character, or in length, compares different', () => {
    const i = base.lastIndexOf('é');
    const changed = `${base.slice(0, i)}e${base.slice(i + 1)}`;
    const r = received(base);
    assert.ok(!sameJsonText(r, { kind: 'json', text: changed }));
    assert.ok(!sameJsonText(r, received(changed)));
    assert.ok(!sameJsonText(r, new PartsJsonPayload([base, ' '])));
    assert.ok(!sameJsonText(r, new PartsJsonPayload([base.slice(0, -1)])));
    assert.ok(!sameJsonText({ kind: 'json', text: base }, { kind: 'json', text: changed }));
  });

  test('a small text and parts (a register answer and what we sent) compare without joining', () => {
    const text = '{"type": "m", "instance": "QUJD", "é": 1}';
    const at = [0, 5, 12, 30, text.length];
    const parts = new PartsJsonPayload(at.slice(1).map((end, k) => text.slice(at[k], end)));
    const plain = { kind: 'json' as const, text };
    assert.ok(sameJsonText(plain, parts) && sameJsonText(parts, plain));
    assert.ok(sameJsonText(plain, new PartsJsonPayload(['', text, ''])));
    for (const other of [
      new PartsJsonPayload([text.slice(0, 10), 'X', text.slice(11)]),
      new PartsJsonPayload([text, ' ']),
      new PartsJsonPayload([text.slice(0, -1)]),
      new PartsJsonPayload([]),
    ]) {
      assert.ok(!sameJsonText(plain, other), other.text);
      assert.ok(!sameJsonText(other, plain), other.text);
    }
    assert.ok(!sameJsonText({ kind: 'json', text: `${text} ` }, parts));
    assert.ok(!sameJsonText({ kind: 'json', text: '' }, parts));
    assert.ok(sameJsonText({ kind: 'json', text: '' }, new PartsJsonPayload([])));
  });
});

describe('ASCII parts', () => {
  /** A large ASCII payload (as the event backend makes them: escaped JSON around base64). */
  const b64 = Buffer.alloc(3 * LARGE_JSON_TEXT_BYTES, 7).toString('base64');
  const parts = ['{"type": "m\\u00e9", "instance": "', b64, '"}'];
  const text = parts.join('');
  const reg = (payload: EventPayloadJson) => [{ type: ['x'], sourceTimestamp: null, payload }];
  const received = (t: string) =>
    decodeEventsNotify(encodeEventsNotify([event(t)]))[0]?.payload as EventPayloadJson;

  test('encode exactly like the same parts encoded as UTF-8', () => {
    for (const cut of [0, 1, 40, 50_000, b64.length - 1]) {
      const ps = [parts[0] as string, b64.slice(0, cut), b64.slice(cut), '"}'];
      const ascii = encodeRegisterReq(reg(new PartsJsonPayload(ps, true)));
      assert.ok(ascii.equals(encodeRegisterReq(reg(new PartsJsonPayload(ps)))), `cut ${cut}`);
      assert.ok(ascii.equals(encodeRegisterReq(reg({ kind: 'json', text }))), `cut ${cut}`);
    }
  });

  test('compare with received bytes: equal, one byte changed anywhere, longer or shorter', () => {
    const mine = new PartsJsonPayload(parts, true);
    assert.ok(sameJsonText(received(text), mine));
    assert.ok(sameJsonText(mine, received(text)));
    for (const at of [0, 10, text.length - 40_000, text.length - 3, text.length - 1]) {
      const c = text[at] === 'A' ? 'B' : 'A';
      const changed = `${text.slice(0, at)}${c}${text.slice(at + 1)}`;
      assert.ok(!sameJsonText(received(changed), mine), `changed at ${at}`);
    }
    assert.ok(!sameJsonText(received(`${text} `), mine));
    assert.ok(!sameJsonText(received(text.slice(0, -1)), mine));
    assert.ok(!sameJsonText(received(text), new PartsJsonPayload([...parts, ' '], true)));
  });
});

describe('base64 parts (encoded while written, never one string)', () => {
  const reg = (payload: EventPayloadJson) => [{ type: ['x'], sourceTimestamp: null, payload }];
  const received = (t: string) =>
    decodeEventsNotify(encodeEventsNotify([event(t)]))[0]?.payload as EventPayloadJson;

  test('encode, measure and compare like the same text given as a string, at every step edge', () => {
    for (const n of [
      0,
      1,
      2,
      3,
      4,
      BASE64_STEP - 1,
      BASE64_STEP,
      BASE64_STEP + 1,
      2 * BASE64_STEP + 5,
    ]) {
      const bytes = Buffer.alloc(n);
      for (let i = 0; i < n; i++) bytes[i] = (i * 7919) & 0xff;
      const b64 = bytes.toString('base64');
      const part = new Base64TextPart(bytes);
      assert.equal(part.length, b64.length, `length at ${n}`);
      assert.equal(String(part), b64);
      const p = new PartsJsonPayload(['{"i": "', part, '"}'], true);
      const text = `{"i": "${b64}"}`;
      assert.equal(p.text, text);
      assert.equal(jsonPayloadSize(p), text.length);
      assert.ok(
        encodeRegisterReq(reg(p)).equals(encodeRegisterReq(reg({ kind: 'json', text }))),
        `encoding at ${n}`,
      );
      assert.ok(sameJsonText(received(text), p), `received bytes or string at ${n}`);
      assert.ok(sameJsonText({ kind: 'json', text }, p));
      if (n > 0) {
        const other = Buffer.from(bytes);
        other[n - 1] = ((other[n - 1] as number) + 1) & 0xff;
        const q = new PartsJsonPayload(['{"i": "', new Base64TextPart(other), '"}'], true);
        assert.ok(!sameJsonText(received(text), q), `last byte changed at ${n}`);
        assert.ok(!sameJsonText({ kind: 'json', text }, q));
      }
    }
  });

  test('a payload compares equal to itself without reading it', () => {
    const p = new PartsJsonPayload([new Base64TextPart(Buffer.alloc(10))]);
    assert.ok(sameJsonText(p, p));
  });

  test('parts that are neither strings nor base64 parts are refused', () => {
    assert.throws(() => new PartsJsonPayload([7 as unknown as string]), TypeError);
  });
});
