/**
 * A Hat whose time series no longer holds the prefix's whole history (LMDB's partition `limit`
 * pruned it; `latest` keeps one event per type): a restart from an old snapshot, and a start
 * without one, must not lose a model, an update or a delete.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Event, RegisterEvent } from '../../src/hat/eventer/common.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  aimmEvent,
  assertMatchesHat,
  hatView,
  openBackend,
  PREFIX,
  peerContext,
  recovered,
  startPeer,
  str,
  tempDir,
  text,
  waitFor,
} from './support.js';

function noise(peer: HatPeer, n: number): void {
  const batch: RegisterEvent[] = [];
  for (let i = 0; i < n; i++)
    batch.push({ type: ['noise', String(i % 7)], sourceTimestamp: null, payload: null });
  peer.register(batch);
}

const tombstone = (id: number): RegisterEvent => ({
  type: [...PREFIX, String(id)],
  sourceTimestamp: null,
  payload: null,
});

/** Index in the time series (ascending) of an event: how many entries to prune to drop it. */
function position(peer: HatPeer, e: Event): number {
  return peer.events.indexOf(e) + 1;
}

/** The backend serves Hat's latest view: every live model with its newest bytes, no deleted one. */
async function assertLatest(
  b: Awaited<ReturnType<typeof openBackend>>,
  peer: HatPeer,
): Promise<void> {
  const view = hatView(peer);
  const live = [...view].filter(([, v]) => v.last !== null);
  const models = await b.getModels();
  assert.deepEqual(
    models.map((m) => m.instanceId),
    live.map(([id]) => id).sort((x, y) => x - y),
    'live models',
  );
  for (const [id, v] of live) {
    const m = models.find((x) => x.instanceId === id);
    assert.ok(m !== undefined);
    assert.ok(m.revision >= 1 && m.revision <= v.count, `revision of ${id} is a lower bound`);
    const want = JSON.parse(v.last as string) as { instance: string };
    const got = await b.getModel(id);
    assert.equal(
      Buffer.from(got?.instance ?? []).toString('base64'),
      want.instance,
      `bytes of ${id}`,
    );
  }
}

describe('event backend on a pruned time series', () => {
  let peer: HatPeer;
  const tmp = tempDir();
  before(async () => {
    peer = await startPeer();
  });
  after(async () => {
    await peer.close();
    tmp.remove();
  });

  for (const fullReplay of ['history', 'latest_then_history']) {
    it(`${fullReplay}: a snapshot older than the time series: nothing lost, the gap detected`, async () => {
      peer.resetStore();
      const path = join(tmp.dir, `pruned-${fullReplay}.db`);
      for (let id = 1; id <= 6; id++) peer.register([aimmEvent(id, `v${id}`)]);
      // The snapshot's checkpoint: model 6's create.
      let b = await openBackend(peerContext(peer), { snapshot: { path }, full_replay: fullReplay });
      await waitFor(() => !/completing history/.test(b.status().detail ?? ''), 'history complete');
      await b.close();
      // While the daemon is down: updates, a delete, unrelated traffic.
      noise(peer, 50);
      const up6 = peer.register([aimmEvent(6, 'v6b')])[0] as Event;
      const up3 = peer.register([aimmEvent(3, 'v3b')])[0] as Event;
      peer.register([tombstone(4)]);
      noise(peer, 50);
      peer.register([aimmEvent(5, 'v5b')]);
      noise(peer, 20);
      // Prune past the checkpoint and past the updates of 6 and 3 and the delete of 4: only
      // `latest` holds models 1, 2, 3, 4 and 6 now; the checkpoint event is gone everywhere.
      peer.pruneTimeseries(position(peer, up3) + 1);
      const ctx = peerContext(peer);
      b = await openBackend(ctx, { snapshot: { path }, full_replay: fullReplay });
      try {
        assert.equal(recovered(ctx).rebuilt, true);
        await assertLatest(b, peer);
        assert.equal(await b.getModel(4), null, 'the delete is not lost');
        assert.equal(str((await b.getModel(3))?.instance ?? new Uint8Array()), 'v3b');
        assert.equal(str((await b.getModel(6))?.instance ?? new Uint8Array()), 'v6b');
        await waitFor(
          () => !/completing history/.test(b.status().detail ?? ''),
          'history complete',
        );
        // history: the replay found the gap (latest check); latest_then_history: the count did.
        assert.ok(
          ctx.logs.find(/lacks the newest event/).length > 0,
          'the gap in the time series is reported',
        );
        // Compare-and-set against the revision served works; ids continue past the deleted 4's.
        const m3 = (await b.getModels()).find((m) => m.instanceId === 3);
        const w = await b.updateModel(3, 'x', text('v3c'), { expectedRevision: m3?.revision });
        assert.equal(w.meta.revision, (m3?.revision ?? 0) + 1);
        const c = await b.createModel('n', text('new'));
        assert.equal(c.meta.instanceId, 7);
        void up6;
      } finally {
        await b.close();
      }
    });
  }

  it('a snapshot older than the time series whose checkpoint `latest` still holds: server catch-up, nothing lost', async () => {
    peer.resetStore();
    const path = join(tmp.dir, 'pruned-latest-cp.db');
    for (let id = 1; id <= 6; id++) peer.register([aimmEvent(id, `v${id}`)]);
    let b = await openBackend(peerContext(peer), { snapshot: { path } });
    // Exact before it closes: a snapshot closed while revisions are provisional replays again.
    await waitFor(() => !/completing history/.test(b.status().detail ?? ''), 'history complete');
    await b.close();
    noise(peer, 50);
    const up3 = peer.register([aimmEvent(3, 'v3b')])[0] as Event;
    peer.register([tombstone(4)]);
    noise(peer, 50);
    peer.register([aimmEvent(5, 'v5b')]);
    // The checkpoint (model 6's create) is pruned from the series but is still 6's newest event.
    peer.pruneTimeseries(position(peer, up3) + 1);
    const ctx = peerContext(peer);
    b = await openBackend(ctx, { snapshot: { path } });
    try {
      const rec = recovered(ctx);
      assert.deepEqual([rec.mode, rec.via, rec.rebuilt], ['catch_up', 'server', false]);
      await assertMatchesHat(b, peer, 'server catch-up after pruning');
    } finally {
      await b.close();
    }
  });

  it('without a snapshot (full_replay history): models only `latest` still holds are not lost', async () => {
    peer.resetStore();
    for (let id = 1; id <= 4; id++) peer.register([aimmEvent(id, `v${id}`)]);
    noise(peer, 30);
    peer.register([tombstone(2)]);
    peer.register([aimmEvent(3, 'v3b')]);
    peer.pruneTimeseries(10);
    const ctx = peerContext(peer);
    const b = await openBackend(ctx, { full_replay: 'history' });
    try {
      await assertLatest(b, peer);
      assert.equal(await b.getModel(2), null);
      assert.equal(recovered(ctx).mode, 'latest_then_history', 'completed from latest');
      await waitFor(() => !/completing history/.test(b.status().detail ?? ''), 'history complete');
      // Model 3's create was pruned: its revision counts the events the series still holds.
      assert.equal((await b.getModels()).find((m) => m.instanceId === 3)?.revision, 1);
    } finally {
      await b.close();
    }
  });
});
