/**
 * The event backend against the test peer (real sockets, real eventer client): writes, reads,
 * events on the wire, other writers, tombstones, compare-and-set, malformed events.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BackendError } from '../../src/backend/types.js';
import { jsonPayload } from '../../src/hat/eventer/common.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  ChangeLog,
  openBackend,
  PREFIX,
  peerContext,
  startPeer,
  str,
  text,
  waitFor,
} from './support.js';

const modelEvents = (peer: HatPeer) =>
  peer.events.filter((e) => e.type.length === 3 && e.type[0] === 'aimm' && e.type[1] === 'model');

describe('event backend against the test peer', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer();
  });
  after(async () => {
    await peer.close();
  });

  it('creates, reads, updates and deletes; each write is one AIMM event in Hat', async () => {
    peer.resetStore();
    const ctx = peerContext(peer);
    const b = await openBackend(ctx);
    try {
      const log = new ChangeLog(b);
      const c = await b.createModel('text.Model', text('hello'));
      assert.equal(c.ack, 'registered');
      assert.equal(c.meta.instanceId, 1);
      assert.equal(c.meta.revision, 1);
      assert.equal(c.meta.size, 5);
      const evs = modelEvents(peer);
      assert.equal(evs.length, 1);
      assert.deepEqual(evs[0]?.type, ['aimm', 'model', '1']);
      assert.equal(evs[0]?.sourceTimestamp, null);
      assert.deepEqual(evs[0]?.payload, {
        kind: 'json',
        text: '{"type": "text.Model", "instance": "aGVsbG8="}',
      });

      const u = await b.updateModel(1, 'text.Model', text('hello2'));
      assert.equal(u.meta.revision, 2);
      const got = await b.getModel(1);
      assert.equal(str(got?.instance ?? new Uint8Array()), 'hello2');
      assert.deepEqual(
        (await b.getModels()).map((m) => [m.instanceId, m.revision]),
        [[1, 2]],
      );

      const d = await b.deleteModel(1);
      assert.equal(d.revision, 3);
      assert.equal(d.modelType, 'text.Model');
      const tomb = modelEvents(peer).at(-1);
      assert.deepEqual(tomb?.type, ['aimm', 'model', '1']);
      assert.equal(tomb?.payload, null, 'a delete is a payload-less tombstone');
      assert.equal(await b.getModel(1), null);
      assert.deepEqual(await b.getModels(), []);

      const c2 = await b.createModel('text.Model', text('x'));
      assert.equal(c2.meta.instanceId, 2, 'ids are never reused');
      assert.deepEqual(
        log.changes.map((ch) => [ch.change, ch.instanceId, ch.revision, ch.origin]),
        [
          ['created', 1, 1, 'local'],
          ['updated', 1, 2, 'local'],
          ['deleted', 1, 3, 'local'],
          ['created', 2, 1, 'local'],
        ],
      );
    } finally {
      await b.close();
    }
  });

  it('applies events of other writers as remote changes (AIMM format, tombstones)', async () => {
    peer.resetStore();
    const ctx = peerContext(peer);
    const b = await openBackend(ctx);
    try {
      const log = new ChangeLog(b);
      // AIMM itself writing model 7 (exact AIMM payload text).
      peer.register([
        {
          type: [...PREFIX, '7'],
          sourceTimestamp: null,
          payload: { kind: 'json', text: '{"type": "my.Model", "instance": "+/+/AA=="}' },
        },
      ]);
      const created = await log.waitFor((c) => c.instanceId === 7, 'remote create');
      assert.equal(created.origin, 'remote');
      assert.equal(created.change, 'created');
      const m = await b.getModel(7);
      assert.deepEqual([...(m?.instance ?? [])], [0xfb, 0xff, 0xbf, 0x00]);
      assert.equal(m?.modelType, 'my.Model');
      // Our next id is above the remote one.
      const c = await b.createModel('t', text('a'));
      assert.equal(c.meta.instanceId, 8);
      // A remote tombstone deletes.
      peer.register([{ type: [...PREFIX, '7'], sourceTimestamp: null, payload: null }]);
      const del = await log.waitFor((ch) => ch.change === 'deleted', 'remote delete');
      assert.deepEqual([del.instanceId, del.revision, del.origin], [7, 2, 'remote']);
      assert.equal(await b.getModel(7), null);
    } finally {
      await b.close();
    }
  });

  it('compare-and-set: stale revisions fail, two CAS writes on one revision: one wins', async () => {
    peer.resetStore();
    const b = await openBackend(peerContext(peer));
    try {
      const c = await b.createModel('t', text('v1'));
      const id = c.meta.instanceId;
      await assert.rejects(
        b.updateModel(id, 't', text('v2'), { expectedRevision: 5 }),
        (e) => e instanceof BackendError && e.code === 'revision_conflict',
      );
      const results = await Promise.allSettled([
        b.updateModel(id, 't', text('a'), { expectedRevision: 1 }),
        b.updateModel(id, 't', text('b'), { expectedRevision: 1 }),
      ]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      const bad = results.filter((r) => r.status === 'rejected');
      assert.equal(ok.length, 1);
      assert.equal(bad.length, 1);
      assert.equal((bad[0] as PromiseRejectedResult).reason.code, 'revision_conflict');
      // A CAS chained on a write in flight is ordered after it.
      const [r3, r4] = await Promise.all([
        b.updateModel(id, 't', text('c'), { expectedRevision: 2 }),
        b.updateModel(id, 't', text('d'), { expectedRevision: 3 }),
      ]);
      assert.equal(r3.meta.revision, 3);
      assert.equal(r4.meta.revision, 4);
      assert.equal(str((await b.getModel(id))?.instance ?? new Uint8Array()), 'd');
      await assert.rejects(
        b.deleteModel(id, { expectedRevision: 3 }),
        (e) => e instanceof BackendError && e.code === 'revision_conflict',
      );
      await assert.rejects(
        b.updateModel(999, 't', text('x')),
        (e) => e instanceof BackendError && e.code === 'not_found',
      );
      await assert.rejects(
        b.deleteModel(999),
        (e) => e instanceof BackendError && e.code === 'not_found',
      );
    } finally {
      await b.close();
    }
  });

  it('skips malformed events, logs their event id, counts them, and survives', async () => {
    peer.resetStore();
    const ctx = peerContext(peer);
    const b = await openBackend(ctx);
    try {
      const bad = peer.register([
        {
          type: [...PREFIX],
          sourceTimestamp: null,
          payload: jsonPayload({ type: 'a', instance: '' }),
        },
        { type: [...PREFIX, 'abc'], sourceTimestamp: null, payload: null },
        { type: [...PREFIX, '0'], sourceTimestamp: null, payload: null },
        { type: [...PREFIX, '-3'], sourceTimestamp: null, payload: null },
        { type: [...PREFIX, '01'], sourceTimestamp: null, payload: null },
        { type: [...PREFIX, '5', 'x'], sourceTimestamp: null, payload: null },
        { type: [...PREFIX, '11'], sourceTimestamp: null, payload: jsonPayload([1, 2]) },
        { type: [...PREFIX, '12'], sourceTimestamp: null, payload: jsonPayload({ type: 'a' }) },
        {
          type: [...PREFIX, '13'],
          sourceTimestamp: null,
          payload: jsonPayload({ type: 'a', instance: 'not base64!' }),
        },
        {
          type: [...PREFIX, '14'],
          sourceTimestamp: null,
          payload: { kind: 'binary', type: 'x', data: new Uint8Array([1]) },
        },
        { type: [...PREFIX, '15'], sourceTimestamp: null, payload: jsonPayload('just a string') },
      ]);
      // A good event after them is applied.
      peer.register([
        {
          type: [...PREFIX, '3'],
          sourceTimestamp: null,
          payload: jsonPayload({ type: 'ok', instance: 'AQI=' }),
        },
      ]);
      await waitFor(
        () => b.status().ready && ctx.metrics.render().includes('reason="bad_base64"'),
        'skip metric',
      );
      await waitFor(async () => (await b.getModel(3)) !== null, 'good event');
      const skipped = ctx.logs.find(/skipped malformed event/);
      assert.equal(skipped.length, bad.length);
      const first = bad[0];
      assert.ok(first !== undefined);
      assert.ok(
        skipped.some(
          (l) => l.eventId === `${first.id.server}/${first.id.session}/${first.id.instance}`,
        ),
      );
      const metrics = ctx.metrics.render();
      for (const reason of [
        'bad_type',
        'bad_id',
        'not_aimm_shaped',
        'bad_base64',
        'binary_payload',
      ]) {
        assert.match(
          metrics,
          new RegExp(`aimm_store_event_skipped_events_total\\{reason="${reason}"\\} \\d+`),
        );
      }
      assert.deepEqual(
        (await b.getModels()).map((m) => m.instanceId),
        [3],
      );
      // Ids of malformed events with a valid id segment are never handed out.
      const c = await b.createModel('t', text('z'));
      assert.equal(c.meta.instanceId, 16);
    } finally {
      await b.close();
    }
  });
});
