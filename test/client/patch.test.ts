/** The client's JSON Patch: inputs never modified, containers copied once per patch, aliasing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyPatch, PatchError } from '../../src/client/patch.js';

test('a patch leaves its input untouched and shares what it did not change', () => {
  const doc = { models: { '1': { r: 1 }, '2': { r: 1 } }, actions: {} };
  const before = JSON.stringify(doc);
  const out = applyPatch(doc, [
    { op: 'add', path: '/models/3', value: { r: 1 } },
    { op: 'add', path: '/models/4', value: { r: 1 } },
    { op: 'replace', path: '/models/1/r', value: 2 },
    { op: 'remove', path: '/models/2' },
  ]) as typeof doc & { models: Record<string, unknown> };
  assert.equal(JSON.stringify(doc), before);
  assert.deepEqual(out, { models: { '1': { r: 2 }, '3': { r: 1 }, '4': { r: 1 } }, actions: {} });
  assert.equal(out.actions, doc.actions, 'untouched parts are shared');
  // A second patch on the result does not change the first result either.
  const again = applyPatch(out, [{ op: 'add', path: '/models/5', value: {} }]);
  assert.deepEqual(Object.keys(out.models), ['1', '3', '4']);
  assert.deepEqual(Object.keys((again as typeof out).models), ['1', '3', '4', '5']);
});

test('after move or copy, the places that share a value are changed independently', () => {
  const doc = { a: { x: 1 }, b: [1, 2] };
  const out = applyPatch(doc, [
    { op: 'replace', path: '/a/x', value: 2 },
    { op: 'copy', from: '/a', path: '/c' },
    { op: 'replace', path: '/a/x', value: 3 },
    { op: 'move', from: '/b', path: '/d' },
    { op: 'add', path: '/d/-', value: 3 },
  ]);
  assert.deepEqual(out, { a: { x: 3 }, c: { x: 2 }, d: [1, 2, 3] });
  assert.deepEqual(doc, { a: { x: 1 }, b: [1, 2] });
});

test('a failing operation throws and leaves the input untouched', () => {
  const doc = { a: { x: 1 } };
  assert.throws(
    () =>
      applyPatch(doc, [
        { op: 'replace', path: '/a/x', value: 2 },
        { op: 'remove', path: '/a/missing' },
      ]),
    PatchError,
  );
  assert.deepEqual(doc, { a: { x: 1 } });
});
