/**
 * Unit tests of the wire pieces: Python-format JSON (checked against every recorded text), 0.7
 * segmentation and reassembly, JSON Patch diffs (applied by the client's patch), strict base64.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { applyPatch } from '../../src/client/patch.js';
import { Decoder07, encode07 } from '../../src/client/wire.js';
import { decodeStrictBase64, decodeStrictBase64Ascii } from '../../src/controls/juggler/base64.js';
import {
  type AssembleResult,
  detectFraming,
  encodeFrames,
  peekRequestId,
  SegmentAssembler,
} from '../../src/controls/juggler/framing.js';
import { diff } from '../../src/controls/juggler/patch.js';
import { pyDumps, pyNumber, pyString } from '../../src/controls/juggler/pyjson.js';
import { loadRecordings } from './support/vectors.js';

describe('Python json.dumps format', () => {
  test('every recorded message text equals pyDumps(decoded)', () => {
    let checked = 0;
    for (const rec of loadRecordings()) {
      for (const step of rec.steps) {
        if (step.ws !== 'text' || step.decoded === undefined || step.text === undefined) continue;
        // 0.7 multi-segment texts are checked on the joined message below.
        if (step.segments !== undefined) continue;
        const isPrefixed =
          rec.framing === '0.7' ||
          (rec.framing === 'mismatch' &&
            (step.dir === 'c2s' ? rec.client_framing : rec.server_framing) === '0.7');
        const json = isPrefixed ? step.text.slice(1) : step.text;
        assert.equal(pyDumps(step.decoded), json, `${rec.file} t=${step.t_ms}`);
        checked++;
      }
    }
    assert.ok(checked > 60, `checked ${checked} texts`);
  });

  test('multi-segment recorded messages: same text and the same 65 536-character boundaries', () => {
    let checked = 0;
    for (const rec of loadRecordings().filter((r) => r.framing === '0.7')) {
      let parts: string[] = [];
      for (const step of rec.steps) {
        if (step.ws !== 'text' || step.text === undefined) continue;
        if (step.prefix === '1') parts.push(step.text);
        if (step.prefix === '0' && step.segments !== undefined) {
          parts.push(step.text);
          const json = parts.map((p) => p.slice(1)).join('');
          assert.equal(pyDumps(step.decoded), json);
          assert.deepEqual(encodeFrames('0.7', pyDumps(step.decoded), 65536), parts);
          parts = [];
          checked++;
        }
      }
    }
    assert.equal(checked, 3); // request, response, state of v07-d
  });

  test('escapes like Python: controls, quote, backslash, DEL, non-ASCII, astral', () => {
    assert.equal(pyString('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(pyString('\n\r\t\b\f\u0001\u001f'), '"\\n\\r\\t\\b\\f\\u0001\\u001f"');
    assert.equal(pyString('\u007f'), '"\\u007f"');
    assert.equal(pyString('é€'), '"\\u00e9\\u20ac"');
    assert.equal(pyString('😀'), '"\\ud83d\\ude00"');
    assert.equal(pyString('/'), '"/"');
    assert.equal(
      pyDumps({ a: [1, true, null, 'x'], b: {} }),
      '{"a": [1, true, null, "x"], "b": {}}',
    );
    assert.equal(pyDumps({ a: undefined, b: 1 }), '{"b": 1}');
    assert.equal(pyNumber(1e-7), '1e-07');
    assert.equal(pyNumber(1.5), '1.5');
  });

  test('pyDumps equals a plain recursive serializer in Python style (any JSON)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => assert.equal(pyDumps(v), referenceDumps(v))),
      { numRuns: 500 },
    );
    for (const s of ['\\"', 'a\\', '\\\\"x', '"', ',:', 'e-1', '1e-7']) {
      const v = { [s]: [s, 1e-7, -2.5e-8, 1e21] };
      assert.equal(pyDumps(v), referenceDumps(v), JSON.stringify(s));
    }
  });

  test('pyDumps parses back to the same value (any JSON)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = pyDumps(v);
        assert.ok(/^[\x20-\x7e]*$/.test(text), 'ASCII only');
        assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('framing', () => {
  test('detection by first character', () => {
    assert.equal(detectFraming('{"type": "request"}'), '0.6');
    for (const c of '0123') assert.equal(detectFraming(`${c}x`), '0.7');
    for (const t of ['', ' {', '4', 'x', '[1]']) assert.equal(detectFraming(t), null);
  });

  test('0.7 segments are exactly maxSegmentSize characters, then the rest', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.integer({ min: 1, max: 50 }), (s, max) => {
        const frames = encodeFrames('0.7', s, max);
        assert.equal(frames.map((f) => f.slice(1)).join(''), s);
        frames.forEach((f, i) => {
          const last = i === frames.length - 1;
          assert.equal(f[0], last ? '0' : '1');
          if (!last) assert.equal(f.length - 1, max);
          else assert.ok(f.length - 1 <= max);
        });
        const asm = new SegmentAssembler(1000);
        let out: unknown = null;
        for (const f of frames) out = asm.push(Buffer.from(f.slice(1)), f[0] === '0');
        assert.deepEqual(out, { kind: 'message', text: s });
      }),
    );
    assert.deepEqual(encodeFrames('0.6', 'x'.repeat(100), 10), ['x'.repeat(100)]);
  });

  test('the assembler drops a message over the limit but keeps its head and length', () => {
    const asm = new SegmentAssembler(100);
    const json = `{"type": "request", "id": 7, "name": "add_instance", "data": "${'x'.repeat(200)}"}`;
    const frames = encodeFrames('0.7', json, 30);
    const results = frames.map((f) => asm.push(Buffer.from(f.slice(1)), f[0] === '0'));
    const last = results.at(-1);
    assert.equal(last?.kind, 'too_large');
    assert.equal(last?.kind === 'too_large' && last.length, json.length);
    assert.equal(last?.kind === 'too_large' && peekRequestId(last.head), 7);
    assert.equal(asm.buffered, 0);
    // The next message is fine again.
    assert.deepEqual(asm.push(Buffer.from('{}'), true), { kind: 'message', text: '{}' });
  });

  test('large ASCII messages in several segments are joined in memory reused by the next one', () => {
    const asm = new SegmentAssembler(1 << 24);
    const message = (fill: string, n: number) =>
      `{"type": "request", "id": 1, "name": "x", "data": "${fill.repeat(n)}"}`;
    const feed = (json: string) => {
      let out: AssembleResult | null = null;
      for (const f of encodeFrames('0.7', json, 10_000)) {
        out = asm.push(Buffer.from(f.slice(1)), f[0] === '0');
      }
      assert.ok(out?.kind === 'ascii');
      return out.bytes;
    };
    const a = feed(message('a', 200_000));
    assert.equal(a.toString('latin1'), message('a', 200_000));
    const b = feed(message('b', 150_000));
    assert.equal(b.buffer, a.buffer, 'the same memory');
    assert.equal(b.toString('latin1'), message('b', 150_000));
    // A larger message gets larger memory; one segment is handed over as it came.
    const c = feed(message('c', 300_000));
    assert.notEqual(c.buffer, a.buffer);
    assert.equal(c.toString('latin1'), message('c', 300_000));
    const one = Buffer.from(message('d', 100_000));
    assert.deepEqual(asm.push(one, true), { kind: 'ascii', bytes: one });
  });

  test('peekRequestId reads only a request id before the data', () => {
    assert.equal(peekRequestId('{"type": "request", "id": 12, "name": "x", "data": {"id": 3'), 12);
    assert.equal(peekRequestId('{"type":"request","id":5,"name":"x"'), 5);
    assert.equal(peekRequestId('{"type": "request", "name": "x", "data": {"id": 3'), null);
    assert.equal(peekRequestId('{"type": "response", "id": 12'), null);
    assert.equal(peekRequestId('{"type": "request", "id": 99999999999999999'), null);
  });

  test('client encoder never splits a surrogate pair; decoder joins segments', () => {
    const json = JSON.stringify({ s: '😀'.repeat(50) });
    for (let max = 2; max < 20; max++) {
      const frames = encode07(json, max);
      for (const f of frames) assert.ok(Buffer.from(f).toString() === f, 'well-formed UTF-16');
      const dec = new Decoder07(1e6);
      let out: unknown;
      for (const f of frames) out = dec.push(f);
      assert.deepEqual(out, { kind: 'message', text: json });
    }
    const dec = new Decoder07(10);
    assert.throws(() => dec.push(`0${'x'.repeat(11)}`), /over 10/);
    assert.deepEqual(new Decoder07(10).push('2ab'), { kind: 'ping', payload: 'ab' });
    assert.throws(() => new Decoder07(10).push('{}'), /unsupported/);
  });
});

describe('JSON Patch', () => {
  test('diff(a, b) applied to a gives b (any JSON)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        const ops = diff(a, b);
        assert.deepEqual(applyPatch(structuredClone(a), ops as never), b);
        if (JSON.stringify(a) === JSON.stringify(b)) assert.equal(ops.length, 0);
      }),
      { numRuns: 500 },
    );
  });

  test('a member named __proto__ is a member like any other, never a prototype', () => {
    const b = JSON.parse('{"__proto__": {"x": 1}, "a": {"__proto__": null}}');
    const ops = diff({ a: {} }, b);
    const out = applyPatch({ a: {} }, ops as never) as Record<string, unknown>;
    assert.deepEqual(out, b);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(Object.getPrototypeOf(out.a), Object.prototype);
    const back = applyPatch(out, diff(out, { a: {} }) as never);
    assert.deepEqual(back, { a: {} });
  });

  test('object members: removed first, then added, then changed (recursively); keys escaped', () => {
    const a = { models: { '1': { x: 1, y: 2 }, '2': {} }, 'a/b~': 1 };
    const b = { models: { '1': { x: 1, y: 3 }, '3': {} }, 'a/b~': 2 };
    assert.deepEqual(diff(a, b), [
      { op: 'remove', path: '/models/2' },
      { op: 'add', path: '/models/3', value: {} },
      { op: 'replace', path: '/models/1/y', value: 3 },
      { op: 'replace', path: '/a~1b~0', value: 2 },
    ]);
    assert.deepEqual(diff(null, { a: 1 }), [{ op: 'replace', path: '', value: { a: 1 } }]);
    const shared = { big: 'x' };
    assert.deepEqual(diff({ s: shared }, { s: shared }), []);
  });

  test('the client applies move, copy, test and refuses bad pointers', () => {
    const doc = { a: { b: 1 }, c: [1, 2] };
    assert.deepEqual(applyPatch(doc, [{ op: 'move', from: '/a/b', path: '/d' }]), {
      a: {},
      c: [1, 2],
      d: 1,
    });
    assert.deepEqual(applyPatch(doc, [{ op: 'copy', from: '/c', path: '/e' }]), {
      a: { b: 1 },
      c: [1, 2],
      e: [1, 2],
    });
    assert.deepEqual(applyPatch(doc, [{ op: 'add', path: '/c/-', value: 3 }]), {
      a: { b: 1 },
      c: [1, 2, 3],
    });
    assert.deepEqual(doc, { a: { b: 1 }, c: [1, 2] }, 'input untouched');
    assert.throws(() => applyPatch(doc, [{ op: 'test', path: '/a/b', value: 2 }]), /test failed/);
    assert.throws(() => applyPatch(doc, [{ op: 'replace', path: '/zz', value: 1 }]), /no member/);
    assert.throws(() => applyPatch(doc, [{ op: 'remove', path: 'a' }]), /invalid JSON pointer/);
    assert.throws(() => applyPatch(doc, [{ op: 'add', path: '/c/9', value: 1 }]), /out of range/);
  });
});

describe('strict base64', () => {
  test('accepts exactly the canonical encoding of any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const b64 = Buffer.from(bytes).toString('base64');
        assert.deepEqual(decodeStrictBase64(b64), Buffer.from(bytes));
      }),
    );
  });

  test('refuses what lenient decoders accept', () => {
    for (const bad of [
      'aGVsbG8', // missing padding
      'aGVsbG8=\n',
      'aGVs bG8=',
      'aGVsbG8==',
      'aGVsbG9=', // non-zero trailing bits
      'aGVs*G8=',
      'aGVsbG8_', // URL-safe alphabet
      'aGVsbG-=',
      '\u0141UJD', // decodes as 'AUJD' (the low byte)
      'QU=D',
      'QQ==QQ==',
      '====',
      'aGVs\u0000G8=',
      '=',
      'a===',
    ]) {
      assert.equal(decodeStrictBase64(bad), null, JSON.stringify(bad));
    }
    assert.deepEqual(decodeStrictBase64(''), Buffer.alloc(0));
  });

  test('agrees with the re-encoding oracle on any text of the alphabet and padding', () => {
    const oracle = (t: string): Buffer | null => {
      if (t.length % 4 !== 0) return null;
      const bytes = Buffer.from(t, 'base64');
      return bytes.toString('base64') === t ? bytes : null;
    };
    // The alphabet, padding, the URL-safe pair, whitespace and controls, other ASCII, Latin-1,
    // and characters above U+00FF whose low byte is in the alphabet (Node's decoder reads those).
    const chars = [
      ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ '.split(''),
      ...[
        '\n',
        '\t',
        '\u0000',
        '!',
        '.',
        '\u007f',
        '\u00e9',
        '\u00ff',
        '\u0141',
        '\u012b',
        '\u2f2f',
        '\u{1F600}',
      ],
    ];
    const texts = fc.oneof(
      fc.array(fc.constantFrom(...chars), { maxLength: 16 }).map((a) => a.join('')),
      // Canonical texts with their last sextets and padding changed.
      fc
        .tuple(
          fc.uint8Array({ maxLength: 12 }),
          fc.constantFrom(...chars),
          fc.integer({ min: 0, max: 3 }),
        )
        .map(([bytes, c, back]) => {
          const t = Buffer.from(bytes).toString('base64');
          const at = Math.max(0, t.length - 1 - back);
          return t.slice(0, at) + c + t.slice(at + 1);
        }),
    );
    fc.assert(
      fc.property(texts, (t) => {
        assert.deepEqual(decodeStrictBase64(t), oracle(t), JSON.stringify(t));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('strict base64 read from ASCII bytes, piece by piece', () => {
  test('agrees with decodeStrictBase64 of the whole text, wherever the pieces are cut', () => {
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n!.'.split(
      '',
    );
    const texts = fc.oneof(
      fc.array(fc.constantFrom(...chars), { maxLength: 40 }).map((a) => a.join('')),
      // Canonical texts with one character changed anywhere (padding in the middle included).
      fc
        .tuple(fc.uint8Array({ maxLength: 30 }), fc.constantFrom(...chars), fc.nat())
        .map(([bytes, c, at]) => {
          const t = Buffer.from(bytes).toString('base64');
          if (t.length === 0) return t;
          const i = at % t.length;
          return t.slice(0, i) + c + t.slice(i + 1);
        }),
      fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('base64')),
    );
    fc.assert(
      fc.property(texts, fc.constantFrom(4, 8, 12, 64), fc.nat({ max: 3 }), (t, step, lead) => {
        // The text inside a larger message: `lead` bytes before it, one after.
        const bytes = Buffer.from(`${'{'.repeat(lead)}${t}}`, 'latin1');
        const got = decodeStrictBase64Ascii(bytes, lead, lead + t.length, step);
        assert.deepEqual(got, decodeStrictBase64(t), JSON.stringify({ t, step }));
      }),
      { numRuns: 5000 },
    );
  });

  test('padding at the end of a piece but not of the text is refused', () => {
    for (const t of ['QQ==QUFB', 'QUE=QUFB', 'QUFBQQ==QUFB', 'QQ==QQ==']) {
      assert.equal(decodeStrictBase64Ascii(Buffer.from(t), 0, t.length, 4), null, t);
      assert.equal(decodeStrictBase64(t), null, t);
    }
    assert.deepEqual(
      decodeStrictBase64Ascii(Buffer.from('QUFBQQ=='), 0, 8, 4),
      Buffer.from('AAAA'),
    );
  });
});

/** The obvious recursive serializer: the oracle for pyDumps' single-pass implementation. */
function referenceDumps(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return pyString(value);
  if (typeof value === 'number') return pyNumber(value);
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(referenceDumps).join(', ')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(
    ([, v]) => v !== undefined,
  );
  return `{${entries.map(([k, v]) => `${pyString(k)}: ${referenceDumps(v)}`).join(', ')}}`;
}
