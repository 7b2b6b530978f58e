/**
 * The event backend's model history from Hat's time series: another writer's events (AIMM) count
 * as revisions like ours, numbers stay exact when the time series has lost the oldest events (the
 * newest part is listed), and a model whose every event was pruned lists its current revision only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ModelRevision } from '../../src/backend/types.js';
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

const malformed = (id: number): RegisterEvent => ({
  type: [...PREFIX, String(id)],
  sourceTimestamp: null,
  payload: { kind: 'json', text: '"not a model"' },
});

/** Every page of `limit` after `after`, as the CLI walks them; with the peer's walk per page. */
async function walkPages(
  b: Awaited<ReturnType<typeof openBackend>>,
  peer: HatPeer,
  id: number,
  limit: number,
  between: (page: number) => void = () => {},
) {
  const listed: ModelRevision[] = [];
  const walked: number[] = [];
  let after = 0;
  for (let page = 0; ; page++) {
    between(page);
    const w0 = peer.walked;
    const got = await b.getHistory(id, { after, limit });
    walked.push(peer.walked - w0);
    if (got === null || got.length === 0) break;
    assert.ok(got.length <= limit, 'at most limit');
    listed.push(...got);
    after = (got.at(-1) as ModelRevision).revision;
  }
  return { listed, walked };
}

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

  it('pages forward exactly, each page costing about one page of Hat reads', async () => {
    peer.resetStore();
    const b = await openBackend(peerContext(peer));
    try {
      const { meta } = await b.createModel('t.A', text('r1'));
      const id = meta.instanceId;
      // 300 revisions: other writers' events, malformed events (not revisions), tombstones at and
      // on page boundaries (listed with the type before them), unrelated models in between.
      const events: RegisterEvent[] = [];
      for (let r = 2; r <= 300; r++) {
        if (r % 7 === 0) events.push(malformed(id));
        if (r === 40 || r === 121) events.push(tombstone(id));
        else events.push(aimmEvent(id, `r${r}`, r % 2 === 0 ? 't.B' : 't.A'));
        events.push(aimmEvent(1000 + r, 'other'));
        if (events.length >= 10) peer.register(events.splice(0)); // sessions share a timestamp
      }
      peer.register(events.splice(0));
      await waitFor(() => b.getHistory(id).then((h) => h?.at(-1)?.revision === 300), 'applied');
      const whole = await b.getHistory(id, { limit: 1000 });
      assert.equal(whole?.length, 300);
      assert.deepEqual(
        whole?.slice(38, 42).map((r) => [r.revision, r.modelType, r.deleted]),
        [
          [39, 't.A', false],
          [40, 't.A', true],
          [41, 't.A', false],
          [42, 't.B', false],
        ],
      );
      const w0 = peer.walked;
      await b.getHistory(id, { limit: 1000 });
      const oneRead = peer.walked - w0;

      const { listed, walked } = await walkPages(b, peer, id, 40);
      assert.deepEqual(listed, whole, 'the pages list exactly what one call lists');
      assert.equal(walked.length, 9, '8 pages and the empty one');
      // The first page reads the series newest first; every later one reads about a page: its
      // revisions, the unrelated events between them, and the start of the cursor's session.
      const later = walked.slice(1, -1);
      assert.ok(
        later.every((w) => w <= 4 * 40),
        `pages after the first walk about one page each: ${walked.join(', ')} (one read: ${oneRead})`,
      );
      assert.equal(walked.at(-1), 0, 'nothing is read past the current revision');
      assert.ok(
        walked.reduce((a, x) => a + x, 0) < 2.5 * oneRead,
        `the whole walk costs about two reads: ${walked.join(', ')} (one read: ${oneRead})`,
      );

      // An old revision next to a cursor: read forward from it.
      const w1 = peer.walked;
      assert.equal(str((await b.getRevision(id, 81))?.instance ?? text('')), 'r81');
      assert.ok(peer.walked - w1 < 40, `getRevision from a cursor: ${peer.walked - w1}`);
      // The newest revisions are read newest first, down to them only.
      const w2 = peer.walked;
      assert.equal(str((await b.getRevision(id, 298))?.instance ?? text('')), 'r298');
      assert.ok(peer.walked - w2 < 50, `getRevision near the top: ${peer.walked - w2}`);
      // A window without a cursor (read newest first): its tombstone keeps the type before it.
      assert.deepEqual(
        (await b.getHistory(id, { after: 119, limit: 2 }))?.map((r) => [
          r.revision,
          r.modelType,
          r.deleted,
        ]),
        [
          [120, 't.B', false],
          [121, 't.B', true],
        ],
      );
    } finally {
      await b.close();
    }
  });

  it('stays exact when the model changes or the series is pruned between pages', async () => {
    peer.resetStore();
    const b = await openBackend(peerContext(peer));
    try {
      const { meta } = await b.createModel('t.A', text('r1'));
      const id = meta.instanceId;
      const events: RegisterEvent[] = [];
      for (let r = 2; r <= 100; r++) events.push(aimmEvent(id, `r${r}`));
      peer.register(events);
      await waitFor(() => b.getModel(id).then((m) => m?.revision === 100), 'applied');
      // A write between pages 2 and 3: the cursors are dropped, the numbers stay exact.
      const changed = await walkPages(b, peer, id, 30, (page) => {
        if (page === 2) peer.register([aimmEvent(id, 'r101')]);
      });
      await waitFor(() => b.getModel(id).then((m) => m?.revision === 101), 'r101');
      const now = await b.getHistory(id, { limit: 1000 });
      const revs = changed.listed.map((r) => r.revision);
      assert.deepEqual(
        revs,
        Array.from({ length: revs.length }, (_, i) => i + 1),
        'no revision listed twice or skipped',
      );
      for (const r of changed.listed) {
        const fresh = now?.find((x) => x.revision === r.revision);
        assert.equal(r.sha256, fresh?.sha256, `revision ${r.revision} is the same event`);
      }
      // Pruned between pages (the next page's cursor event is gone): read newest first again.
      const pruned = await walkPages(b, peer, id, 30, (page) => {
        if (page === 2) {
          const ours = peer.events.filter((e) => e.type.join('/') === [...PREFIX, id].join('/'));
          peer.pruneTimeseries(peer.events.indexOf(ours[69] as (typeof ours)[number]) + 1);
        }
      });
      assert.deepEqual(
        pruned.listed.map((r) => r.revision),
        [
          ...Array.from({ length: 60 }, (_, i) => i + 1),
          ...Array.from({ length: 31 }, (_, i) => i + 71),
        ],
        'after the pruning the listing goes on with the oldest revision kept',
      );
    } finally {
      await b.close();
    }
  });
});
