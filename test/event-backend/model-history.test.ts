/**
 * The event backend's model history from Hat's time series: another writer's events (AIMM) count
 * as revisions like ours, numbers stay exact when the time series has lost the oldest events (the
 * newest part is listed), and a model whose every event was pruned lists its current revision only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RegisterEvent } from '../../src/hat/eventer/common.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  aimmEvent,
  openBackend,
  PREFIX,
  peerContext,
  startPeer,
  str,
  text,
  waitFor,
} from './support.js';

const tombstone = (id: number): RegisterEvent => ({
  type: [...PREFIX, String(id)],
  sourceTimestamp: null,
  payload: null,
});

describe('event backend: model history', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer({ flushDelayMs: 5 });
  });
  after(async () => {
    await peer.close();
  });

  it('numbers our and other writers’ events alike, and serves each revision’s bytes', async () => {
    const b = await openBackend(peerContext(peer));
    try {
      const { meta } = await b.createModel('t.A', text('ours-1'));
      peer.register([aimmEvent(meta.instanceId, 'aimm-2', 't.B')]);
      await waitFor(() => b.getModel(meta.instanceId).then((m) => m?.revision === 2), 'remote');
      await b.updateModel(meta.instanceId, 't.A', text('ours-3'));
      peer.register([
        {
          type: [...PREFIX, String(meta.instanceId)],
          sourceTimestamp: null,
          payload: { kind: 'json', text: '"not a model"' },
        },
      ]);
      peer.register([tombstone(meta.instanceId)]);
      await waitFor(async () => (await b.getModel(meta.instanceId)) === null, 'deleted');
      const h = await b.getHistory(meta.instanceId);
      assert.deepEqual(
        h?.map((r) => [r.revision, r.modelType, r.deleted, r.current]),
        [
          [1, 't.A', false, false],
          [2, 't.B', false, false],
          [3, 't.A', false, false],
          [4, 't.A', true, true],
        ],
        'the malformed event is not a revision',
      );
      assert.equal(str((await b.getRevision(meta.instanceId, 2))?.instance ?? text('')), 'aimm-2');
      assert.equal(str((await b.getRevision(meta.instanceId, 3))?.instance ?? text('')), 'ours-3');
    } finally {
      await b.close();
    }
  });

  it('keeps exact numbers when the time series lost the oldest events', async () => {
    peer.resetStore();
    const b = await openBackend(peerContext(peer));
    try {
      const { meta } = await b.createModel('t.A', text('v1'));
      for (let r = 2; r <= 5; r++) await b.updateModel(meta.instanceId, 't.A', text(`v${r}`));
      // Prune up to and including our second event (earlier entries are other types).
      const ours = peer.events.filter(
        (e) => e.type.join('/') === [...PREFIX, meta.instanceId].join('/'),
      );
      assert.equal(ours.length, 5);
      peer.pruneTimeseries(peer.events.indexOf(ours[1] as (typeof ours)[number]) + 1);
      const h = await b.getHistory(meta.instanceId);
      assert.deepEqual(
        h?.map((r) => r.revision),
        [3, 4, 5],
      );
      assert.equal(await b.getRevision(meta.instanceId, 1), null);
      assert.equal(str((await b.getRevision(meta.instanceId, 4))?.instance ?? text('')), 'v4');
      // Every event pruned (`latest` still has the newest): the current revision alone.
      peer.pruneTimeseries(peer.events.length);
      const only = await b.getHistory(meta.instanceId);
      assert.deepEqual(
        only?.map((r) => [r.revision, r.current, r.available]),
        [[5, true, true]],
      );
      assert.equal(str((await b.getRevision(meta.instanceId, 5))?.instance ?? text('')), 'v5');
    } finally {
      await b.close();
    }
  });
});
