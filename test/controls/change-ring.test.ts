import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ModelChange } from '../../src/backend/types.js';
import { ChangeRing } from '../../src/controls/http/change-ring.js';

const BOOT = '0123456789abcdef';

function change(instanceId: number, revision = 1): ModelChange {
  return { change: 'created', instanceId, modelType: 't', revision, origin: 'local' };
}

function ring(capacity: number): ChangeRing {
  return new ChangeRing(capacity, (c) => JSON.stringify({ id: c.instanceId }), BOOT);
}

describe('ChangeRing', () => {
  test('numbers changes from 1 and holds the last `capacity` of them', () => {
    const r = ring(3);
    assert.equal(r.seq, 0);
    assert.equal(r.oldest, 1);
    for (let i = 1; i <= 5; i++) assert.equal(r.push(change(i)).seq, i);
    assert.equal(r.seq, 5);
    assert.equal(r.oldest, 3);
    assert.equal(r.get(2), undefined);
    assert.equal(r.get(6), undefined);
    assert.deepEqual(
      [3, 4, 5].map((s) => r.get(s)?.change.instanceId),
      [3, 4, 5],
    );
    assert.equal(r.get(4)?.data, '{"id":4}');
  });

  test("a change's text is made once, when first asked for (never without a stream)", () => {
    let made = 0;
    const r = new ChangeRing(
      4,
      (c) => {
        made++;
        return JSON.stringify({ id: c.instanceId });
      },
      BOOT,
    );
    for (let i = 1; i <= 6; i++) r.push(change(i));
    assert.equal(made, 0);
    assert.equal(r.get(5)?.data, '{"id":5}');
    assert.equal(r.get(5)?.data, '{"id":5}');
    assert.equal(made, 1);
  });

  test('event ids are <boot>-<seq>; a random boot per ring', () => {
    assert.equal(ring(2).id(7), `${BOOT}-7`);
    const a = new ChangeRing(2, () => '');
    const b = new ChangeRing(2, () => '');
    assert.match(a.boot, /^[0-9a-f]{16}$/);
    assert.notEqual(a.boot, b.boot);
  });

  test('a resume inside the ring replays from the position after the id', () => {
    const r = ring(3);
    assert.deepEqual(r.resumePoint(`${BOOT}-0`), { kind: 'resume', seq: 0 });
    for (let i = 1; i <= 5; i++) r.push(change(i));
    // 3, 4, 5 are held: after 2 (nothing missed) up to after 5 (nothing to replay).
    for (const seq of [2, 3, 4, 5]) {
      assert.deepEqual(r.resumePoint(`${BOOT}-${seq}`), { kind: 'resume', seq });
    }
  });

  test('too old, another boot, ahead of the ring or malformed: a reset with its reason', () => {
    const r = ring(3);
    for (let i = 1; i <= 5; i++) r.push(change(i));
    assert.deepEqual(r.resumePoint(`${BOOT}-1`), { kind: 'reset', reason: 'too_old' });
    assert.deepEqual(r.resumePoint(`${BOOT}-0`), { kind: 'reset', reason: 'too_old' });
    assert.deepEqual(r.resumePoint('fedcba9876543210-4'), {
      kind: 'reset',
      reason: 'unknown_boot',
    });
    for (const bad of [
      `${BOOT}-6`,
      `${BOOT}-04`,
      `${BOOT}--1`,
      `${BOOT}-1e3`,
      `${BOOT}-99999999999999999`,
      `${BOOT}4`,
      `${BOOT.toUpperCase()}-4`,
      '',
      '4',
      `${BOOT}-4 `,
      `\n${BOOT}-4`,
    ]) {
      assert.deepEqual(r.resumePoint(bad), { kind: 'reset', reason: 'invalid' }, bad);
    }
  });

  test('refuses a capacity that is not a positive integer', () => {
    for (const c of [0, -1, 1.5, Number.NaN]) assert.throws(() => ring(c), RangeError);
  });
});
