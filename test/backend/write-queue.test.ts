/** Unit tests of the group-commit queue: batching per turn, bounds, per-write outcomes, drain. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Outcome, WriteQueue } from '../../src/backends/sqlite/write-queue.js';

function queue(
  options: {
    maxWrites?: number;
    maxBytes?: number;
    maxQueuedWrites?: number;
    maxQueuedBytes?: number;
    fail?: (op: number) => boolean;
  } = {},
): { q: WriteQueue<number, number>; batches: number[][] } {
  const batches: number[][] = [];
  const q = new WriteQueue<number, number>({
    maxWrites: options.maxWrites ?? 100,
    maxBytes: options.maxBytes ?? 1_000_000,
    maxQueuedWrites: options.maxQueuedWrites ?? 10_000,
    maxQueuedBytes: options.maxQueuedBytes ?? 100_000_000,
    sizeOf: (op) => op,
    execute: (ops): Outcome<number>[] => {
      batches.push([...ops]);
      return ops.map((op) =>
        options.fail?.(op)
          ? { ok: false, error: new Error(`op ${op} failed`) }
          : { ok: true, value: op * 2 },
      );
    },
  });
  return { q, batches };
}

test('writes pushed in one turn form one batch; later ones the next', async () => {
  const { q, batches } = queue();
  const first = [1, 2, 3].map((op) => q.push(op));
  assert.equal(q.length, 3);
  assert.deepEqual(batches, [], 'nothing runs synchronously');
  assert.deepEqual(await Promise.all(first), [2, 4, 6]);
  await q.push(4);
  assert.deepEqual(batches, [[1, 2, 3], [4]]);
});

test('batches are bounded by count and bytes; an oversized write goes alone', async () => {
  const { q, batches } = queue({ maxWrites: 2, maxBytes: 10 });
  await Promise.all([1, 1, 1, 1, 1].map((op) => q.push(op)));
  assert.deepEqual(batches, [[1, 1], [1, 1], [1]]);
  batches.length = 0;
  await Promise.all([4, 4, 4, 50, 3].map((op) => q.push(op)));
  assert.deepEqual(batches, [[4, 4], [4], [50], [3]]);
});

test('each write gets its own outcome; a throwing execute fails the whole batch', async () => {
  const { q } = queue({ fail: (op) => op === 2 });
  const r = await Promise.allSettled([1, 2, 3].map((op) => q.push(op)));
  assert.deepEqual(
    r.map((x) => x.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.match(String((r[1] as PromiseRejectedResult).reason), /op 2 failed/);

  const bad = new WriteQueue<number, number>({
    maxWrites: 10,
    maxBytes: 10,
    maxQueuedWrites: 100,
    maxQueuedBytes: 100,
    sizeOf: () => 1,
    execute: () => {
      throw new Error('boom');
    },
  });
  const r2 = await Promise.allSettled([1, 2].map((op) => bad.push(op)));
  assert.ok(r2.every((x) => x.status === 'rejected' && /boom/.test(String(x.reason))));
  const short = new WriteQueue<number, number>({
    maxWrites: 10,
    maxBytes: 10,
    maxQueuedWrites: 100,
    maxQueuedBytes: 100,
    sizeOf: () => 1,
    execute: () => [{ ok: true, value: 1 }],
  });
  const r3 = await Promise.allSettled([1, 2].map((op) => short.push(op)));
  assert.ok(r3.every((x) => x.status === 'rejected' && /2 writes/.test(String(x.reason))));
});

test('drain resolves once every queued write ran', async () => {
  const { q, batches } = queue({ maxWrites: 1 });
  await q.drain();
  const all = [1, 2, 3].map((op) => q.push(op));
  await q.drain();
  assert.equal(q.length, 0);
  assert.deepEqual(batches, [[1], [2], [3]]);
  await Promise.all(all);
});

test('the queue is bounded by count: writers over it wait, first come first served', async () => {
  const { q, batches } = queue({ maxWrites: 2, maxQueuedWrites: 3 });
  const settled: number[] = [];
  const all = [1, 2, 3, 4, 5, 6, 7].map((op) =>
    q.push(op).then((v) => {
      settled.push(v / 2);
      return v;
    }),
  );
  assert.equal(q.length, 3, 'three joined the queue');
  assert.equal(q.waiting, 4, 'four wait for room');
  let most = q.length;
  while (batches.length < 4) {
    await new Promise((r) => setImmediate(r));
    most = Math.max(most, q.length);
    assert.ok(q.length + batches.flat().length <= 7);
  }
  assert.ok(most <= 3, `never more than 3 queued (saw ${most})`);
  assert.deepEqual(await Promise.all(all), [2, 4, 6, 8, 10, 12, 14]);
  assert.deepEqual(settled, [1, 2, 3, 4, 5, 6, 7], 'settled in order');
  assert.deepEqual(batches.flat(), [1, 2, 3, 4, 5, 6, 7], 'executed in order');
  assert.equal(q.waiting, 0);
});

test('the queue is bounded by bytes; a larger single write joins an empty queue', async () => {
  const { q, batches } = queue({ maxQueuedBytes: 10 });
  const all = [4, 4, 4, 30, 2].map((op) => q.push(op));
  assert.equal(q.length, 2, 'two writes of 4 fit in 10 bytes');
  assert.equal(q.queuedBytes, 8);
  assert.equal(q.waiting, 3);
  await Promise.all(all);
  assert.deepEqual(batches, [[4, 4], [4], [30], [2]]);
  assert.equal(q.queuedBytes, 0);
});

test('drain waits for writers that were waiting for room', async () => {
  const { q, batches } = queue({ maxQueuedWrites: 1 });
  const all = [1, 2, 3].map((op) => q.push(op));
  await q.drain();
  assert.deepEqual(batches.flat(), [1, 2, 3]);
  assert.equal(q.length + q.waiting, 0);
  await Promise.all(all);
});
