/**
 * The crash checker on hand-made logs and observations: it accepts what may happen to an
 * unacknowledged write and flags every way an acknowledged one can be lost or bent.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CrashChecker, type ObservedModel, type ViolationKind } from './crash-checker.js';
import type { LogEntry } from './crash-log.js';

const H = (n: number) => n.toString(16).padStart(64, '0');

function model(id: number, revision: number, h: string, modelType = 't'): ObservedModel {
  return {
    instanceId: id,
    modelType,
    revision,
    sha256: h,
    size: 3,
    bytesSha256: h,
    bytesSize: 3,
  };
}

/** A checker that knows id 1 (revision 2, H(2)), id 2 (revision 1, H(3)) and id 3 deleted. */
function seeded(): CrashChecker {
  const c = new CrashChecker();
  const log: LogEntry[] = [
    { t: 'a', s: 1, op: 'create', h: H(1), n: 3, mt: 't' },
    { t: 'k', s: 1, id: 1, r: 1, h: H(1), mt: 't' },
    { t: 'a', s: 2, op: 'update', id: 1, er: 1, h: H(2), n: 3, mt: 't' },
    { t: 'k', s: 2, id: 1, r: 2, h: H(2), mt: 't' },
    { t: 'a', s: 3, op: 'create', h: H(3), n: 3, mt: 't' },
    { t: 'k', s: 3, id: 2, r: 1, h: H(3), mt: 't' },
    { t: 'a', s: 4, op: 'create', h: H(4), n: 3, mt: 't' },
    { t: 'k', s: 4, id: 3, r: 1, h: H(4), mt: 't' },
    { t: 'a', s: 5, op: 'delete', id: 3, er: 1 },
    { t: 'k', s: 5, id: 3, r: 2 },
  ];
  c.ingest(log);
  assert.deepEqual(c.violations, []);
  return c;
}

const good = () => [model(1, 2, H(2)), model(2, 1, H(3))];

function kinds(c: CrashChecker): ViolationKind[] {
  return c.violations.map((v) => v.kind);
}

describe('crash checker', () => {
  test('the exact acknowledged state passes; the baseline lists live ids and revisions', () => {
    const c = seeded();
    const r = c.check(good());
    assert.deepEqual(r.violations, []);
    assert.equal(r.idsChecked, 3);
    assert.deepEqual(c.baseline(), {
      live: [
        [1, 2],
        [2, 1],
      ],
      maxId: 3,
    });
  });

  test('a missing, resurrected, rolled-back or altered model is flagged', () => {
    const cases: [ObservedModel[], ViolationKind][] = [
      [[model(1, 2, H(2))], 'lost'],
      [[...good(), model(3, 1, H(4))], 'resurrected'],
      [[model(1, 1, H(1)), model(2, 1, H(3))], 'revision_backwards'],
      [[model(1, 2, H(9)), model(2, 1, H(3))], 'wrong_bytes'],
      [[model(1, 2, H(2), 'other'), model(2, 1, H(3))], 'wrong_bytes'],
      [[model(1, 3, H(9)), model(2, 1, H(3))], 'unexplained_revision'],
      [[...good(), model(4, 1, H(7))], 'phantom'],
      [[model(1, 2, H(2)), { ...model(2, 1, H(3)), bytesSha256: H(8) }], 'corrupt_read'],
    ];
    for (const [observed, kind] of cases) {
      const c = seeded();
      c.check(observed);
      assert.deepEqual(kinds(c), [kind], JSON.stringify(observed));
    }
  });

  test('an uncertain write may have landed, with its own bytes and exactly one revision more', () => {
    const c = seeded();
    c.ingest([
      { t: 'a', s: 6, op: 'update', id: 1, er: 2, h: H(5), n: 3, mt: 'u' },
      { t: 'a', s: 7, op: 'delete', id: 2, er: 1 },
      { t: 'a', s: 8, op: 'create', h: H(6), n: 3, mt: 't' },
    ]);
    const r = c.check([model(1, 3, H(5), 'u'), model(4, 1, H(6))]);
    assert.deepEqual(r.violations, []);
    assert.equal(r.uncertain, 3);
    assert.equal(r.uncertainLanded, 3);
    // ... or not have landed at all.
    const c2 = seeded();
    c2.ingest([{ t: 'a', s: 6, op: 'update', id: 1, er: 2, h: H(5), n: 3, mt: 'u' }]);
    assert.deepEqual(c2.check(good()).violations, []);
    // But not with other bytes, nor two revisions on.
    for (const bad of [model(1, 3, H(6), 'u'), model(1, 4, H(5), 'u')]) {
      const c3 = seeded();
      c3.ingest([{ t: 'a', s: 6, op: 'update', id: 1, er: 2, h: H(5), n: 3, mt: 'u' }]);
      c3.check([bad, model(2, 1, H(3))]);
      assert.equal(c3.violations.length, 1, JSON.stringify(bad));
    }
  });

  test('what a restarted daemon served is confirmed: a later check may not take it back', () => {
    const c = seeded();
    c.ingest([{ t: 'a', s: 6, op: 'update', id: 1, er: 2, h: H(5), n: 3, mt: 't' }]);
    c.check([model(1, 3, H(5)), model(2, 1, H(3))]);
    c.check(good()); // the landed revision 3 is gone again
    assert.deepEqual(kinds(c), ['revision_backwards']);
  });

  test('acknowledgements are checked: ids never reused, CAS revisions, reported hashes', () => {
    const cases: [LogEntry[], ViolationKind][] = [
      [
        [
          { t: 'a', s: 6, op: 'create', h: H(6), n: 3, mt: 't' },
          { t: 'k', s: 6, id: 3, r: 1, h: H(6), mt: 't' },
        ],
        'id_reused',
      ],
      [
        [
          { t: 'a', s: 6, op: 'update', id: 1, er: 2, h: H(6), n: 3, mt: 't' },
          { t: 'k', s: 6, id: 1, r: 4, h: H(6), mt: 't' },
        ],
        'bad_ack',
      ],
      [
        [
          { t: 'a', s: 6, op: 'update', id: 2, er: 1, h: H(6), n: 3, mt: 't' },
          { t: 'k', s: 6, id: 2, r: 2, h: H(7), mt: 't' },
        ],
        'bad_ack',
      ],
      [
        [
          { t: 'a', s: 6, op: 'update', id: 2, er: 1, h: H(6), n: 3, mt: 't' },
          { t: 'f', s: 6, e: 'model 2 is at revision 3, expected 1' },
        ],
        'error_response',
      ],
    ];
    for (const [log, kind] of cases) {
      const c = seeded();
      c.ingest(log);
      assert.deepEqual(kinds(c), [kind], JSON.stringify(log));
    }
    // After a restart, a new id must be above every id seen before it, even an unused gap.
    const c = seeded();
    c.check(good());
    c.ingest([
      { t: 'a', s: 6, op: 'create', h: H(6), n: 3, mt: 't' },
      { t: 'k', s: 6, id: 3, r: 1, h: H(6), mt: 't' },
    ]);
    assert.deepEqual(kinds(c), ['id_reused']);
  });
});
