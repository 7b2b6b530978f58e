/** `sbs-primitives.json`: every case encodes to its exact bytes and decodes to its value. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decode, encode, SbsError } from '../../src/hat/sbs/codec.js';
import { Repository } from '../../src/hat/sbs/schema.js';
import { fromVectorValue, hex, loadVectors, toVectorValue, unhex } from './vectors.js';

interface Case {
  type: string;
  value: unknown;
  hex: string;
  note?: string;
  int64?: boolean;
}
interface ErrorCase {
  type: string;
  hex: string;
  note: string;
  py_serializer: { error?: string; value?: unknown };
}
const file = loadVectors<{
  schema: string;
  cases: Case[];
  decode_only: Case[];
  decode_errors: ErrorCase[];
}>('sbs-primitives.json');

const repo = new Repository(file.schema);

describe('sbs-primitives.json', () => {
  test('the file has the documented counts', () => {
    assert.equal(file.cases.length, 113);
    assert.equal(file.decode_only.length, 20);
    assert.equal(file.decode_errors.length, 14);
  });

  for (const [i, c] of file.cases.entries()) {
    test(`case ${i}: ${c.type} ${JSON.stringify(c.value).slice(0, 60)}`, () => {
      const type = repo.parseType(c.type, 'Test');
      const encoded = encode(type, fromVectorValue(c.value));
      assert.equal(hex(encoded), c.hex, 'encoding differs');
      const decoded = decode(type, unhex(c.hex));
      assert.deepStrictEqual(toVectorValue(decoded), c.value);
    });
  }

  for (const [i, c] of file.decode_only.entries()) {
    test(`decode_only ${i}: ${c.note}`, () => {
      const type = repo.parseType(c.type, 'Test');
      const trailing = c.note?.includes('trailing') ?? false;
      const decoded = decode(type, unhex(c.hex), trailing);
      assert.deepStrictEqual(toVectorValue(decoded), c.value);
      if (trailing) {
        assert.throws(
          () => decode(type, unhex(c.hex)),
          SbsError,
          'strict decode refuses trailing bytes',
        );
      }
    });
  }

  for (const [i, c] of file.decode_errors.entries()) {
    // Integers beyond int64 are exact here (the cases above require 2^100 to decode), so the 2^84
    // entry, which the C decoder wraps to 0, decodes to its exact value like the Python decoder.
    if (c.note.includes('beyond int64')) {
      test(`decode_errors ${i}: decodes exactly (no int64 wrap): ${c.note}`, () => {
        const type = repo.parseType(c.type, 'Test');
        assert.deepStrictEqual(toVectorValue(decode(type, unhex(c.hex))), c.py_serializer.value);
        assert.equal(decode(type, unhex(c.hex)), 2n ** 84n);
      });
      continue;
    }
    test(`decode_errors ${i}: ${c.note}`, () => {
      const type = repo.parseType(c.type, 'Test');
      assert.throws(
        () => decode(type, unhex(c.hex), true),
        (err: unknown) => {
          assert.ok(err instanceof SbsError, `expected SbsError, got ${String(err)}`);
          assert.match(err.message, /^SBS .+ at byte \d+: /);
          assert.ok(err.offset >= 0 && err.offset <= c.hex.length / 2);
          return true;
        },
      );
    });
  }
});
