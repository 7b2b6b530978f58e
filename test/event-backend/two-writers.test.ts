/**
 * Two event backends (two daemons) on one prefix of one Hat: each sees the other's writes as remote
 * changes; with offset/stride id allocation their concurrent creates never collide.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ModelMeta } from '../../src/backend/types.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  ChangeLog,
  openBackend,
  peerContext,
  startPeer,
  str,
  tempDir,
  text,
  waitFor,
} from './support.js';

const shape = (ms: ModelMeta[]) => ms.map((m) => [m.instanceId, m.modelType, m.revision, m.sha256]);

describe('two backends on one prefix', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer();
  });
  after(async () => {
    await peer.close();
  });

  it('see each other’s writes as remote changes and converge', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const a = await openBackend(peerContext(peer, { name: 'a' }), {
      id_allocation: { stride: 2, offset: 1 },
    });
    const b = await openBackend(peerContext(peer, { name: 'b' }), {
      id_allocation: { stride: 2, offset: 0 },
      snapshot: { path: join(dir, 'b.db') },
    });
    try {
      const logA = new ChangeLog(a);
      const logB = new ChangeLog(b);
      const ca = await a.createModel('from.a', text('A1'));
      const cb = await b.createModel('from.b', text('B1'));
      assert.equal(ca.meta.instanceId % 2, 1);
      assert.equal(cb.meta.instanceId % 2, 0);
      const seenByB = await logB.waitFor((c) => c.instanceId === ca.meta.instanceId, 'a → b');
      assert.equal(seenByB.origin, 'remote');
      const seenByA = await logA.waitFor((c) => c.instanceId === cb.meta.instanceId, 'b → a');
      assert.equal(seenByA.origin, 'remote');
      assert.equal(str((await b.getModel(ca.meta.instanceId))?.instance ?? new Uint8Array()), 'A1');

      // b updates a's model with compare-and-set on the revision it saw; a sees it.
      const u = await b.updateModel(ca.meta.instanceId, 'from.a', text('A1-by-b'), {
        expectedRevision: 1,
      });
      assert.equal(u.meta.revision, 2);
      const upd = await logA.waitFor(
        (c) => c.instanceId === ca.meta.instanceId && c.change === 'updated',
        'update seen by a',
      );
      assert.deepEqual([upd.origin, upd.revision], ['remote', 2]);
      // a's stale CAS now fails: its view has revision 2.
      await assert.rejects(
        a.updateModel(ca.meta.instanceId, 'from.a', text('stale'), { expectedRevision: 1 }),
        /revision 2, expected 1/,
      );

      // Concurrent creates from both: no id collides, both converge to the same state.
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? a : b).createModel(`m${i}`, text(`v${i}`)),
        ),
      );
      const ids = results.map((r) => r.meta.instanceId);
      assert.equal(new Set(ids).size, ids.length, 'no two writes got the same id');
      await a.deleteModel(cb.meta.instanceId);
      await waitFor(
        async () =>
          JSON.stringify(shape(await a.getModels())) === JSON.stringify(shape(await b.getModels())),
        'convergence',
      );
      assert.equal((await a.getModels()).length, 41);
      assert.equal(await b.getModel(cb.meta.instanceId), null);
      assert.ok(logB.changes.some((c) => c.change === 'deleted' && c.origin === 'remote'));
    } finally {
      await a.close();
      await b.close();
      remove();
    }
  });

  it('without a stride, ids are max+1 of everything seen, including the other writer’s', async () => {
    peer.resetStore();
    const a = await openBackend(peerContext(peer, { name: 'a' }));
    const b = await openBackend(peerContext(peer, { name: 'b' }));
    try {
      const logB = new ChangeLog(b);
      const r = await a.createModel('t', text('1'));
      await logB.waitFor((c) => c.instanceId === r.meta.instanceId, 'seen');
      const r2 = await b.createModel('t', text('2'));
      assert.equal(r2.meta.instanceId, r.meta.instanceId + 1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
