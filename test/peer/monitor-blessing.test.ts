/**
 * The blessing algorithms of hat-monitor 0.8.21 (`hat/monitor/server/blessing.py`) as the monitor
 * double runs them, case by case, and the Python-equality key of component data.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type BlessingView,
  calculateBlessing,
  pythonDataKey,
  type Request,
} from './monitor-blessing.js';

describe('blessing rules (blessing.py)', () => {
  let next = 1;
  const issue = (): Request => ({ token: next++, timestamp: 100 + next });
  const c = (
    cid: number,
    o: Partial<Omit<BlessingView, 'blessingReq' | 'blessingRes'>> & {
      req?: [number, number];
      res?: number | null;
      ready?: boolean;
    } = {},
  ): BlessingView => ({
    cid,
    mid: o.mid ?? 0,
    group: o.group === undefined ? 'g' : o.group,
    rank: o.rank ?? 1,
    blessingReq: o.req
      ? { token: o.req[0], timestamp: o.req[1] }
      : { token: null, timestamp: null },
    blessingRes: { token: o.res ?? null, ready: o.ready ?? true },
  });
  const run = (cs: BlessingView[], algos: Record<string, 'BLESS_ONE' | 'BLESS_ALL'> = {}) => {
    next = 1;
    return calculateBlessing(cs, algos, 'BLESS_ONE', issue).map((x) => [
      x.cid,
      x.blessingReq.token,
    ]);
  };

  test('BLESS_ONE picks one ready component: lower rank, then a held blessing, then list order', () => {
    assert.deepEqual(run([c(1, { ready: false }), c(2, { ready: false })]), []);
    assert.deepEqual(run([c(1, { ready: false }), c(2), c(3)]), [[2, 1]]);
    assert.deepEqual(run([c(1), c(2, { rank: 0 })]), [[2, 1]]);
    // a blessed component keeps it against an earlier unblessed one of equal rank...
    assert.deepEqual(run([c(1), c(2, { req: [7, 5] })]), []);
    // ...but not against a lower rank: revoked now, the new one waits for the response token
    assert.deepEqual(run([c(1, { rank: 0 }), c(2, { req: [7, 5], res: 7 })]), [[2, null]]);
    assert.deepEqual(run([c(1, { rank: 0 }), c(2, { req: [7, 5], res: null })]), [
      [1, 1],
      [2, null],
    ]);
  });

  test('BLESS_ONE ties: earlier timestamp, then lower mid', () => {
    assert.deepEqual(run([c(1, { req: [3, 9] }), c(2, { req: [4, 8] })]), [[1, null]]);
    assert.deepEqual(run([c(1, { req: [3, 8] }), c(2, { req: [4, 9] })]), [[2, null]]);
    assert.deepEqual(run([c(1, { mid: 2 }), c(1, { mid: 1 })]).length, 1);
    const r = calculateBlessing([c(1, { mid: 2 }), c(1, { mid: 1 })], {}, 'BLESS_ONE', issue);
    assert.deepEqual(
      r.map((x) => [x.mid, x.cid]),
      [[1, 1]],
    );
    // a timestamp tie falls through to the mid
    const r2 = calculateBlessing(
      [c(5, { mid: 3, req: [1, 5] }), c(6, { mid: 2, req: [2, 5] })],
      {},
      'BLESS_ONE',
      issue,
    );
    assert.deepEqual(
      r2.map((x) => [x.cid, x.blessingReq.token]),
      [[5, null]],
    );
  });

  test('BLESS_ONE handover waits for every other response token (Python truthiness: 0 is none)', () => {
    assert.deepEqual(run([c(1, { ready: false, req: [1, 5], res: 1 }), c(2)]), [[1, null]]);
    assert.deepEqual(run([c(1, { ready: false, res: 1 }), c(2)]), []);
    assert.deepEqual(run([c(1, { ready: false, res: null }), c(2)]), [[2, 1]]);
    assert.deepEqual(run([c(1, { ready: false, res: 0 }), c(2)]), [[2, 1]]);
    // an active highlander keeps its blessing whatever the others hold
    assert.deepEqual(run([c(1, { req: [4, 5], res: 4 }), c(2, { ready: false, res: 3 })]), []);
  });

  test('BLESS_ALL, groups, the null group and the shared token counter', () => {
    const algos = { all: 'BLESS_ALL' } as const;
    assert.deepEqual(
      run(
        [
          c(1, { group: 'all' }),
          c(2, { group: 'x' }),
          c(3, { group: 'all', req: [9, 1] }),
          c(4, { group: 'all', ready: false, req: [8, 1] }),
          c(5, { group: 'all' }),
          c(6, { group: null }),
          c(7, { group: 'x' }),
        ],
        algos,
      ),
      [
        [1, 1],
        [4, null],
        [5, 2],
        [2, 3],
        [6, 4],
      ],
    );
  });
});

test('pythonDataKey compares like Python ==', () => {
  const eq = (a: string, b: string) => pythonDataKey(a) === pythonDataKey(b);
  assert.ok(eq('{"a": 1, "b": [true, 0.5]}', '{"b": [1, 0.5], "a": 1.0}'));
  assert.ok(eq('0', '-0.0') && eq('false', '0') && eq('1e+16', '10000000000000000'));
  assert.ok(!eq('9007199254740993', '9007199254740992.0'));
  assert.ok(!eq('"1"', '1') && !eq('null', '0') && !eq('[1, 2]', '[2, 1]') && !eq('{}', '[]'));
  assert.ok(!eq('{"a": 1}', '{"a": 1, "b": 1}'));
  assert.throws(() => pythonDataKey('1'.repeat(4301)), RangeError);
  assert.ok(eq(`-${'1'.repeat(4300)}`, `-${'1'.repeat(4300)}`));
});
