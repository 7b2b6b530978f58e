/**
 * Backpressure in the event backend: the pipeline towards Hat holds at most `max_queued_writes`
 * writes and `max_queued_bytes` model bytes; further writers wait for room, first come first
 * served, instead of growing the queue. A stalled Hat peer fills it; the gauges stay at the bound
 * while callers wait; once the peer reads again every write completes, in order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BackendError } from '../../src/backend/types.js';
import { Admission } from '../../src/backends/event/admission.js';
import type { HatPeer } from '../peer/hat-peer.js';
import { metricValue, openBackend, peerContext, startPeer, text, waitFor } from './support.js';

describe('Admission (room in the write pipeline)', () => {
  test('grants at once while it fits, then first come first served as room is given back', async () => {
    const a = new Admission(2, 100);
    const t1 = await a.acquire(10);
    const t2 = await a.acquire(10);
    const order: number[] = [];
    const p3 = a.acquire(10).then((t) => {
      order.push(3);
      return t;
    });
    const p4 = a.acquire(0).then((t) => {
      order.push(4);
      return t;
    });
    assert.deepEqual([a.held, a.heldBytes, a.waiting], [2, 20, 2]);
    t1.release();
    t1.release(); // idempotent
    const t3 = await p3;
    assert.deepEqual([a.held, a.waiting], [2, 1]);
    t2.release();
    t3.release();
    const t4 = await p4;
    assert.deepEqual(order, [3, 4]);
    t4.release();
    assert.deepEqual([a.held, a.heldBytes, a.waiting], [0, 0, 0]);
  });

  test('the byte bound: a write larger than the bound goes alone; a small one does not overtake a waiting big one', async () => {
    const a = new Admission(100, 100);
    const small = await a.acquire(60);
    let bigIn = false;
    const big = a.acquire(500).then((t) => {
      bigIn = true;
      return t;
    });
    let smallIn = false;
    const later = a.acquire(1).then((t) => {
      smallIn = true;
      return t;
    });
    await Promise.resolve();
    assert.equal(bigIn || smallIn, false);
    small.release();
    const tb = await big;
    assert.equal(a.heldBytes, 500);
    await Promise.resolve();
    assert.equal(smallIn, false, 'waits behind the big write');
    tb.release();
    (await later).release();
    assert.equal(a.held, 0);
  });

  test('force takes room over the bound; failWaiting rejects the waiting callers', async () => {
    const a = new Admission(1, 10);
    const f = a.force(50);
    const f2 = a.force(50);
    assert.deepEqual([a.held, a.heldBytes], [2, 100]);
    const w = a.acquire(1);
    a.failWaiting(new BackendError('closed', 'closing'));
    await assert.rejects(w, /closing/);
    f.release();
    f2.release();
    assert.equal(a.waiting, 0);
  });
});

describe('a stalled Hat slows writers down; the pipeline stays bounded', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer();
  });
  after(() => peer.close());

  test('writers wait for room while the peer does not read; all complete in order after', async () => {
    const ctx = peerContext(peer);
    const b = await openBackend(ctx, { max_queued_writes: 8, max_queued_bytes: 6000 });
    try {
      peer.stall(true);
      const n = 40;
      const size = 1000;
      const writes = Array.from({ length: n }, (_, i) =>
        b.createModel('bp.Model', text(String(i).padEnd(size, '.'))),
      );
      // The byte bound (6000) is hit before the count (8): 6 writes hold room, 34 wait.
      await waitFor(
        () => metricValue(ctx, 'event_pipeline_waiting_writes') === n - 6,
        'writers waiting for room',
      );
      assert.equal(metricValue(ctx, 'event_pipeline_writes'), 6);
      assert.equal(metricValue(ctx, 'event_pipeline_bytes'), 6 * size);
      assert.ok(metricValue(ctx, 'event_pipeline_depth') <= 6);
      assert.equal(metricValue(ctx, 'event_writes_total', 'op="create",result="failed"'), 0);

      peer.stall(false);
      const results = await Promise.all(writes);
      assert.deepEqual(
        results.map((r) => r.meta.instanceId),
        Array.from({ length: n }, (_, i) => i + 1),
        'ids in the order the writes were made',
      );
      assert.ok(results.every((r) => r.ack === 'registered'));
      const registered = peer.events.filter((e) => e.type[0] === 'aimm').map((e) => e.type[2]);
      assert.deepEqual(
        registered,
        results.map((r) => String(r.meta.instanceId)),
        'reached Hat in order',
      );
      assert.equal(metricValue(ctx, 'event_pipeline_writes'), 0);
      assert.equal(metricValue(ctx, 'event_pipeline_waiting_writes'), 0);
    } finally {
      peer.stall(false);
      await b.close();
    }
  });

  test('writers waiting for room when the backend closes fail with closed', async () => {
    const ctx = peerContext(peer);
    const b = await openBackend(ctx, { max_queued_writes: 1, close_timeout_ms: 0 });
    try {
      peer.stall(true);
      const first = b.createModel('bp.Model', text('first'));
      const second = b.createModel('bp.Model', text('second'));
      first.catch(() => {});
      await waitFor(() => metricValue(ctx, 'event_pipeline_waiting_writes') === 1, 'one waiting');
      const closing = b.close();
      await assert.rejects(second, (err: BackendError) => err.code === 'closed');
      peer.stall(false);
      await closing;
    } finally {
      peer.stall(false);
    }
  });
});
