/**
 * `full_replay: latest_then_history` (issue 15, goal 1): ready from one `latest` query — nothing
 * walked beyond LMDB's latest table before readiness, however many unrelated events the
 * catch-all partition holds — and every revision made exact in the background from the history;
 * meanwhile reads serve the latest bytes, compare-and-set waits, plain writes are accepted, and
 * events that arrive during the background read (own writes, other writers, deletes, re-creates)
 * leave the revisions exact.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BackendError, type ModelChange } from '../../src/backend/types.js';
import type { QueryParams, RegisterEvent } from '../../src/hat/eventer/common.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  aimmEvent,
  assertMatchesHat,
  hatView,
  interceptQueries,
  openBackend,
  PREFIX,
  peerContext,
  recovered,
  sleep,
  startPeer,
  type TestContext,
  tempDir,
  text,
  waitFor,
} from './support.js';

const MODE = { full_replay: 'latest_then_history' } as const;

let noiseSeq = 0;
function noise(n: number): RegisterEvent[] {
  return Array.from({ length: n }, () => {
    const k = noiseSeq++;
    return {
      type: ['gateway', `device${k % 7}`, 'value'],
      sourceTimestamp: null,
      payload: { kind: 'json', text: String(k) },
    };
  });
}

const tombstone = (id: number): RegisterEvent => ({
  type: [...PREFIX, String(id)],
  sourceTimestamp: null,
  payload: null,
});

/** Holds every query but `latest` until `open()`; `onFirst` runs before the first held one goes. */
function gate(ctx: TestContext, onFirst: () => Promise<void> = async () => {}) {
  let release!: () => void;
  const opened = new Promise<void>((r) => {
    release = r;
  });
  let first = true;
  let held = 0;
  interceptQueries(ctx, async (params: QueryParams, client) => {
    if (params.kind !== 'latest') {
      held++;
      await opened;
      if (first) {
        first = false;
        await onFirst();
      }
    }
    return client.query(params);
  });
  return { open: () => release(), held: () => held };
}

const complete = (ctx: TestContext) => ctx.logs.find(/history complete/).length > 0;

describe('full_replay: latest_then_history', () => {
  const N = 20_000;
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer({ engineEvents: false });
    for (let i = 0; i < N; i += 2000) peer.register(noise(2000));
    peer.register(Array.from({ length: 30 }, (_, i) => aimmEvent(i + 1, `v${i + 1}`)));
    peer.register(noise(500));
    // Updates, deletes and a re-create: 3 has 3 events, 5 is deleted (2), 7 deleted and
    // re-created (3 events), 30 deleted last (the highest id is a tombstone).
    peer.register([aimmEvent(3, 'again'), aimmEvent(3, 'third'), tombstone(5)]);
    peer.register(noise(500));
    peer.register([tombstone(7), aimmEvent(7, 'back'), tombstone(30)]);
  });
  after(async () => {
    await peer.close();
  });

  it('is ready after one latest query, walking nothing, then completes the revisions', async () => {
    const ctx = peerContext(peer);
    const g = gate(ctx);
    const w0 = peer.walked;
    const b = await openBackend(ctx, MODE);
    try {
      assert.equal(peer.walked - w0, 0, 'nothing walked beyond the latest table before ready');
      assert.equal(recovered(ctx).mode, 'latest_then_history');
      assert.equal(complete(ctx), false);
      // Models readable with their latest bytes; tombstones respected; revisions lower bounds.
      const ids = (await b.getModels()).map((m) => m.instanceId);
      assert.equal(ids.includes(5), false);
      assert.equal(ids.includes(30), false);
      assert.equal(ids.length, 28);
      const m3 = await b.getModel(3);
      assert.equal(Buffer.from(m3?.instance ?? []).toString(), 'third');
      assert.equal(m3?.revision, 1, 'a lower bound until the history is complete');
      // ... and it says so, in every read and in the changes.
      assert.equal(m3?.revisionProvisional, true);
      assert.ok((await b.getModels()).every((m) => m.revisionProvisional === true));
      const changes: ModelChange[] = [];
      const sub = b.changes$.subscribe((c) => changes.push(c));
      assert.match(b.status().detail ?? '', /completing history/);
      assert.equal(b.status().ready, true);
      // Ids are allocated past every id seen, the tombstoned highest one included.
      const created = await b.createModel('seed.Model', text('new'));
      assert.equal(created.meta.instanceId, 31);
      assert.equal(created.meta.revision, 1, 'a model created after latest is exact at once');
      assert.equal(created.meta.revisionProvisional, undefined);
      const plain = await b.updateModel(2, 'seed.Model', text('plain'));
      assert.deepEqual([plain.meta.revision, plain.meta.revisionProvisional], [2, true]);
      assert.deepEqual(
        changes.map((c) => [
          c.instanceId,
          c.revision,
          c.revisionProvisional,
          c.meta?.revisionProvisional,
        ]),
        [
          [31, 1, undefined, undefined],
          [2, 2, true, true],
        ],
      );

      g.open();
      await waitFor(() => complete(ctx), 'history complete');
      assert.ok(peer.walked - w0 >= N, 'the background read walked the partition');
      await assertMatchesHat(b, peer, 'after completion');
      assert.equal((await b.getModel(3))?.revision, 3);
      assert.equal((await b.getModel(7))?.revision, 3);
      assert.equal(b.status().detail, 'online');
      assert.ok((await b.getModels()).every((m) => m.revisionProvisional === undefined));
      // Every live model that had a provisional revision gets an `updated` change with the exact
      // one (same bytes); 31 was exact from the start.
      sub.unsubscribe();
      const exactChanges = changes.slice(2);
      assert.equal(exactChanges.length, 28);
      for (const c of exactChanges) {
        assert.equal(c.change, 'updated');
        assert.equal(c.revisionProvisional, undefined);
        const m = await b.getModel(c.instanceId);
        assert.deepEqual([c.revision, c.meta?.sha256], [m?.revision, m?.sha256]);
      }
      assert.equal(exactChanges.find((c) => c.instanceId === 3)?.revision, 3);
      assert.equal(exactChanges.find((c) => c.instanceId === 2)?.revision, 2);
    } finally {
      await b.close();
    }
  });

  it('a compare-and-set write waits for exact revisions, then succeeds with the exact one', async () => {
    const ctx = peerContext(peer);
    const g = gate(ctx);
    const b = await openBackend(ctx, MODE);
    try {
      const exact = hatView(peer).get(3)?.count as number;
      assert.ok(exact >= 3);
      // A write without CAS is accepted at once (its revision a lower bound).
      const plain = await b.updateModel(4, 'seed.Model', text('plain'));
      assert.equal(plain.meta.revision, 2);
      let settled = false;
      const cas = b
        .updateModel(3, 'seed.Model', text('cas'), { expectedRevision: exact })
        .finally(() => {
          settled = true;
        });
      const stale = assert.rejects(
        b.updateModel(3, 'seed.Model', text('stale'), { expectedRevision: 1 }),
        (e: unknown) => (e as BackendError).code === 'revision_conflict',
      );
      await sleep(100);
      assert.equal(settled, false, 'the CAS write waits while revisions are provisional');
      g.open();
      const res = await cas;
      assert.equal(res.meta.revision, exact + 1);
      await stale;
      await waitFor(() => complete(ctx), 'history complete');
      await assertMatchesHat(b, peer, 'after CAS');
    } finally {
      await b.close();
    }
  });

  it('a compare-and-set write fails unavailable when completion takes longer than request_timeout_ms', async () => {
    const ctx = peerContext(peer);
    const g = gate(ctx);
    const b = await openBackend(ctx, { ...MODE, request_timeout_ms: 300 });
    try {
      await assert.rejects(
        b.updateModel(2, 'seed.Model', text('x'), { expectedRevision: 1 }),
        (e: unknown) =>
          e instanceof BackendError &&
          e.code === 'unavailable' &&
          /revisions not exact yet/.test(e.message),
      );
    } finally {
      g.open();
      await b.close();
    }
  });

  for (const catchUp of ['auto', 'server'] as const) {
    it(`remote writes, deletes and re-creates during the background read leave revisions exact (catch_up ${catchUp})`, async () => {
      const ctx = peerContext(peer);
      let b!: Awaited<ReturnType<typeof openBackend>>;
      const g = gate(ctx, async () => {
        // Between the history read's first query and its answer: other writers update, delete
        // and re-create models with a base, and create a new one; we write too.
        const before = hatView(peer);
        const fresh = Math.max(...before.keys()) + 1;
        peer.register([aimmEvent(1, 'r1'), aimmEvent(2, 'r2'), tombstone(6)]);
        peer.register(noise(50));
        peer.register([aimmEvent(6, 'six again'), tombstone(8), aimmEvent(5, 'five back')]);
        peer.register([aimmEvent(fresh, 'remote new'), aimmEvent(fresh, 'remote new 2')]);
        await waitFor(
          async () => (await b.getModel(fresh))?.revision === 2,
          'the remote events applied',
        );
        await b.updateModel(9, 'seed.Model', text('own during read'));
        await b.deleteModel(catchUp === 'auto' ? 10 : 11);
      });
      b = await openBackend(ctx, { ...MODE, catch_up: catchUp });
      try {
        g.open();
        await waitFor(() => complete(ctx), 'history complete');
        await assertMatchesHat(b, peer, `after completion (${catchUp})`);
        // And a CAS on the exact revision now passes at once.
        const m1 = await b.getModel(1);
        const res = await b.updateModel(1, 'seed.Model', text('cas'), {
          expectedRevision: m1?.revision as number,
        });
        assert.equal(res.meta.revision, hatView(peer).get(1)?.count);
        await b.sync();
        await assertMatchesHat(b, peer, `after sync (${catchUp})`);
      } finally {
        await b.close();
      }
    });
  }

  it('a reconnect during the background read starts it again with the same bases', async () => {
    const ctx = peerContext(peer);
    // The first history query is held until the connection is cut; everything after passes.
    let held = 0;
    let release!: () => void;
    const cut = new Promise<void>((r) => {
      release = r;
    });
    interceptQueries(ctx, async (params, client) => {
      if (params.kind !== 'latest' && held++ === 0) await cut;
      return client.query(params);
    });
    const b = await openBackend(ctx, MODE);
    try {
      await waitFor(() => held > 0, 'the history read started');
      peer.cutConnections();
      peer.register([aimmEvent(12, 'while away'), tombstone(13)]);
      release();
      await waitFor(() => complete(ctx), 'history complete');
      assert.ok(ctx.logs.find(/recovered from Hat/).length >= 2, 'recovered twice');
      assert.equal(recovered(ctx).mode, 'catch_up');
      await assertMatchesHat(b, peer, 'after a reconnect');
    } finally {
      await b.close();
    }
  });

  it('with a snapshot: a restart before completion replays again; after it, revisions are stored exact', async () => {
    const tmp = tempDir();
    const path = join(tmp.dir, 'snap.db');
    try {
      const ctx = peerContext(peer);
      gate(ctx); // never opened: stopped before completion
      const first = await openBackend(ctx, { ...MODE, snapshot: { path } });
      await first.close();

      const ctx2 = peerContext(peer);
      const b = await openBackend(ctx2, { ...MODE, snapshot: { path } });
      try {
        assert.equal(ctx2.logs.find(/provisional revisions/).length, 1);
        assert.equal(recovered(ctx2).mode, 'latest_then_history');
        await waitFor(() => complete(ctx2), 'history complete');
        await assertMatchesHat(b, peer, 'snapshot, completed');
      } finally {
        await b.close();
      }

      const ctx3 = peerContext(peer);
      const again = await openBackend(ctx3, { ...MODE, snapshot: { path } });
      try {
        assert.equal(recovered(ctx3).mode, 'catch_up');
        assert.equal(ctx3.logs.find(/provisional revisions/).length, 0);
        await assertMatchesHat(again, peer, 'snapshot restart');
      } finally {
        await again.close();
      }
    } finally {
      tmp.remove();
    }
  });
});
