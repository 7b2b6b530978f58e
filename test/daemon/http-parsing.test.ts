/** The HTTP control's header parsing: ranges, ETags, write preconditions, declared lengths. */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { BodyError, declaredLength } from '../../src/controls/http/body.js';
import {
  etagList,
  etagOf,
  ifNoneMatchHits,
  ifRangeHolds,
  PreconditionSyntaxError,
  parseEtag,
  writePrecondition,
} from '../../src/controls/http/conditional.js';
import { rangeOf } from '../../src/controls/http/range.js';

const SHA = 'a'.repeat(64);

describe('Range', () => {
  test('one range, suffix, open end; clamped to the size', () => {
    assert.deepEqual(rangeOf(undefined, 10), { kind: 'full' });
    assert.deepEqual(rangeOf('bytes=0-0', 10), { kind: 'partial', start: 0, end: 0 });
    assert.deepEqual(rangeOf('bytes=2-', 10), { kind: 'partial', start: 2, end: 9 });
    assert.deepEqual(rangeOf('bytes=-3', 10), { kind: 'partial', start: 7, end: 9 });
    assert.deepEqual(rangeOf('bytes=-30', 10), { kind: 'partial', start: 0, end: 9 });
    assert.deepEqual(rangeOf('bytes=5-99999999999999999999', 10), {
      kind: 'partial',
      start: 5,
      end: 9,
    });
    assert.deepEqual(rangeOf(' Bytes = 1 - 2 ', 10), { kind: 'partial', start: 1, end: 2 });
  });
  test('unsatisfiable: start past the end, empty suffix, any range of an empty model', () => {
    for (const [h, size] of [
      ['bytes=10-', 10],
      ['bytes=10-20', 10],
      ['bytes=-0', 10],
      ['bytes=0-', 0],
      ['bytes=-1', 0],
      ['bytes=99999999999999999-', 10],
    ] as const) {
      assert.deepEqual(rangeOf(h, size), { kind: 'unsatisfiable' }, h);
    }
  });
  test('several ranges, other units, malformed and reversed ranges: the whole model', () => {
    for (const h of ['bytes=0-1,3-4', 'items=0-1', 'bytes=', 'bytes=-', 'bytes=a-b', 'bytes=5-2']) {
      assert.deepEqual(rangeOf(h, 10), { kind: 'full' }, h);
    }
  });
});

describe('ETags and preconditions', () => {
  test('the ETag names revision and hash; parse is its inverse and strict', () => {
    const tag = etagOf({ revision: 12, sha256: SHA });
    assert.equal(tag, `"12-${SHA}"`);
    assert.deepEqual(parseEtag(tag), { revision: 12, sha256: SHA });
    for (const bad of [`W/${tag}`, `12-${SHA}`, `"0-${SHA}"`, `"1-${SHA.slice(1)}"`, '"x"', '*'])
      assert.equal(parseEtag(bad), null, bad);
  });
  test('lists, If-None-Match (weak comparison), If-Range (exact)', () => {
    assert.deepEqual(etagList('"a", W/"b",  "c,d"'), ['"a"', 'W/"b"', '"c,d"']);
    assert.equal(ifNoneMatchHits('"x", W/"y"', '"y"'), true);
    assert.equal(ifNoneMatchHits('*', '"y"'), true);
    assert.equal(ifNoneMatchHits('"x"', '"y"'), false);
    assert.equal(ifNoneMatchHits(undefined, '"y"'), false);
    assert.equal(ifRangeHolds(undefined, '"y"'), true);
    assert.equal(ifRangeHolds('"y"', '"y"'), true);
    assert.equal(ifRangeHolds('W/"y"', '"y"'), false);
    assert.equal(ifRangeHolds('Wed, 21 Oct 2015 07:28:00 GMT', '"y"'), false);
  });
  test('write preconditions', () => {
    const tag = etagOf({ revision: 3, sha256: SHA });
    assert.deepEqual(writePrecondition(undefined, undefined, true), { kind: 'none' });
    assert.deepEqual(writePrecondition('*', undefined, true), { kind: 'exists' });
    assert.deepEqual(writePrecondition(tag, undefined, false), {
      kind: 'revision',
      revision: 3,
      sha256: SHA,
    });
    assert.deepEqual(writePrecondition('"nope"', undefined, true), {
      kind: 'never',
      tag: '"nope"',
    });
    assert.deepEqual(writePrecondition(undefined, ' * ', true), { kind: 'absent' });
    for (const [m, n, absent] of [
      [`${tag}, ${tag}`, undefined, true],
      ['*', '*', true],
      [undefined, tag, true],
      [undefined, '*', false],
    ] as const) {
      assert.throws(() => writePrecondition(m, n, absent), PreconditionSyntaxError);
    }
  });
});

describe('declared body length', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
  test('Content-Length within the limit, chunked, missing, over the limit', () => {
    assert.equal(declaredLength(req({ 'content-length': '10' }), 10), 10);
    assert.equal(declaredLength(req({ 'content-length': '0' }), 10), 0);
    assert.equal(declaredLength(req({ 'transfer-encoding': 'chunked' }), 10), null);
    const status = (h: Record<string, string>) => {
      try {
        declaredLength(req(h), 10);
        return 0;
      } catch (err) {
        return (err as BodyError).status;
      }
    };
    assert.equal(status({}), 411);
    assert.equal(status({ 'transfer-encoding': 'gzip' }), 411);
    assert.equal(status({ 'content-length': '11' }), 413);
    assert.equal(status({ 'content-length': '99999999999999999999' }), 400);
    assert.ok(new BodyError(413, 'x') instanceof Error);
  });
});
