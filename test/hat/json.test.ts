/**
 * JSON payload texts: `json-normalisation.json` (the real server's re-emitted text) against our
 * Python-style normaliser, the refused texts, float repr properties and the compact form.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { jsonPayload } from '../../src/hat/eventer/common.js';
import {
  checkJsonText,
  compactJson,
  isTrustedJsonPayload,
  JsonTextError,
  MAX_JSON_DEPTH,
  pythonFloatRepr,
  pythonJsonDumps,
} from '../../src/hat/eventer/json.js';
import { loadVectors } from './vectors.js';

const file = loadVectors<{
  cases: { sent: string; returned: string; note?: string }[];
  rejected: { sent: string; note?: string }[];
}>('json-normalisation.json');

describe('json-normalisation.json', () => {
  test('the file has the documented counts', () => {
    assert.equal(file.cases.length, 26);
    assert.equal(file.rejected.length, 9);
  });
  for (const [i, c] of file.cases.entries()) {
    test(`case ${i}: ${c.note ?? c.sent}`, () => {
      assert.equal(pythonJsonDumps(c.sent), c.returned);
      // Normalising is idempotent and keeps the value.
      assert.equal(pythonJsonDumps(c.returned), c.returned);
    });
  }
  for (const [i, c] of file.rejected.entries()) {
    test(`rejected ${i}: ${c.note ?? c.sent}`, () => {
      assert.throws(() => pythonJsonDumps(c.sent), JsonTextError);
      assert.throws(() => checkJsonText(c.sent), JsonTextError);
    });
  }
});

describe('Python float repr', () => {
  test('matches known Python outputs', () => {
    const known: [number, string][] = [
      [1, '1.0'],
      [0.1, '0.1'],
      [1e16, '1e+16'],
      [1e15, '1000000000000000.0'],
      [1.5e-5, '1.5e-05'],
      [0.0001, '0.0001'],
      [-0, '-0.0'],
      [Number('123456789.123456789'), '123456789.12345679'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [-2.5e-7, '-2.5e-07'],
      [1e100, '1e+100'],
      [123e20, '1.23e+22'],
    ];
    for (const [x, text] of known) assert.equal(pythonFloatRepr(x), text, String(x));
    assert.throws(() => pythonFloatRepr(Number.NaN), RangeError);
  });

  test('every finite double round-trips through its repr, which is JSON', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const text = pythonFloatRepr(x);
        assert.ok(Object.is(Number(text), x), `${text} reads back as ${x}`);
        assert.ok(Object.is(JSON.parse(text), x) || (x === 0 && JSON.parse(text) === 0));
        // Python writes a float with a '.' or an exponent, never as a bare integer.
        assert.match(text, /[.e]/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('JSON texts', () => {
  test('normalising keeps the value of anything JSON.stringify makes', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        const text = JSON.stringify(v);
        const norm = pythonJsonDumps(text);
        assert.deepStrictEqual(JSON.parse(norm), JSON.parse(text));
        assert.equal(pythonJsonDumps(norm), norm, 'idempotent');
        assert.match(norm, /^[\x20-\x7e]*$/, 'ASCII only');
        assert.deepStrictEqual(JSON.parse(compactJson(text)), JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  test('compact form keeps big integers and key order verbatim', () => {
    assert.equal(
      compactJson('{ "10" : 1e5 , "2": 12345678901234567890 }'),
      '{"10":1e5,"2":12345678901234567890}',
    );
    assert.equal(compactJson('"\\u017e\\n"'), '"ž\\n"');
  });

  test('nesting is bounded', () => {
    const deep = `${'['.repeat(MAX_JSON_DEPTH + 2)}${']'.repeat(MAX_JSON_DEPTH + 2)}`;
    assert.throws(() => checkJsonText(deep), /nesting deeper/);
    const ok = `${'['.repeat(100)}${']'.repeat(100)}`;
    assert.equal(pythonJsonDumps(ok), ok);
  });

  test('errors give the offset', () => {
    assert.throws(
      () => checkJsonText('[1, 2,, 3]'),
      (e: unknown) => e instanceof JsonTextError && e.offset === 6,
    );
  });

  test('jsonPayload() marks its payloads as known valid; other objects are not', () => {
    assert.equal(isTrustedJsonPayload(jsonPayload({ a: [1, Number.NaN] })), true);
    assert.equal(jsonPayload({ a: Number.NaN }).text, '{"a":null}');
    assert.equal(isTrustedJsonPayload({ kind: 'json', text: '1' }), false);
  });
});
