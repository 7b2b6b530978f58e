/** Wildcard matching exactly as §4.5 (`hat/event/common/matches.py`). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isValidQueryType, matches, matchesAny } from '../../src/hat/eventer/common.js';

/** The algorithm of the protocol notes, written out literally. */
function reference(eventType: string[], queryType: string[]): boolean {
  let q = queryType;
  const variable = q.length > 0 && q[q.length - 1] === '*';
  if (variable) q = q.slice(0, -1);
  if (eventType.length < q.length) return false;
  if (eventType.length > q.length && !variable) return false;
  return q.every((seg, i) => seg === '?' || seg === eventType[i]);
}

test('documented cases', () => {
  const cases: [string[], string[], boolean][] = [
    [['a'], ['a', '*'], true],
    [['a', 'b'], ['a', '*'], true],
    [['a', 'b', 'c'], ['a', '*'], true],
    [['b'], ['a', '*'], false],
    [['t', '0'], ['t', '?'], true],
    [['t'], ['t', '?'], false],
    [['t', '0'], ['t'], false],
    [[], [], true],
    [['a'], [], false],
    [[], ['*'], true],
    [['x', 'y'], ['*'], true],
    [['*'], ['a'], false],
    [['event', '1', 'eventer', 'gui/main'], ['event', '?', 'eventer', '*'], true],
  ];
  for (const [e, q, want] of cases)
    assert.equal(matches(e, q), want, `${e.join('/')} vs ${q.join('/')}`);
  assert.equal(
    matchesAny(
      ['b', 'x'],
      [
        ['a', '*'],
        ['b', '?'],
      ],
    ),
    true,
  );
  assert.equal(
    matchesAny(
      ['c'],
      [
        ['a', '*'],
        ['b', '?'],
      ],
    ),
    false,
  );
  assert.equal(matchesAny(['c'], []), false);
});

test('agrees with the reference algorithm on random types', () => {
  const seg = fc.constantFrom('a', 'b', '?', '*', '');
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('a', 'b', ''), { maxLength: 4 }),
      fc.array(seg, { maxLength: 4 }),
      (e, q) => {
        assert.equal(matches(e, q), reference(e, q));
      },
    ),
    { numRuns: 3000 },
  );
});

test("'*' is valid only as the last segment", () => {
  assert.equal(isValidQueryType(['a', '*']), true);
  assert.equal(isValidQueryType(['*']), true);
  assert.equal(isValidQueryType([]), true);
  assert.equal(isValidQueryType(['*', 'a']), false);
  assert.equal(isValidQueryType(['a', '*', 'b']), false);
});
