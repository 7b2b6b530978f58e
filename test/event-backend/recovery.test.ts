/**
 * Recovery against the test peer and real SQLite snapshot files: restart without a snapshot
 * (full replay: `history`, and AIMM's `latest`), restart from a snapshot (only the delta), 10k models, catch-up while another
 * writer keeps writing, snapshot rebuilds (Hat reset, corrupt file, other prefix).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { RegisterEvent } from '../../src/hat/eventer/common.js';
import type { HatPeer } from '../peer/hat-peer.js';
import {
  aimmEvent,
  assertMatchesHat,
  ChangeLog,
  hatView,
  openBackend,
  peerContext,
  recovered,
  sleep,
  startPeer,
  str,
  tempDir,
  text,
  waitFor,
} from './support.js';

/** Registers `count` models (ids from..from+count-1) as another writer, in batches. */
function seed(peer: HatPeer, from: number, count: number, tag = 'v'): void {
  for (let i = 0; i < count; i += 1000) {
    const batch: RegisterEvent[] = [];
    for (let id = from + i; id < from + Math.min(count, i + 1000); id++)
      batch.push(aimmEvent(id, `${tag}${id}`));
    peer.register(batch);
  }
}

describe('event backend recovery', () => {
  let peer: HatPeer;
  before(async () => {
    peer = await startPeer();
  });
  after(async () => {
    await peer.close();
  });

  it('without a snapshot: a full replay restores models, revisions, tombstones and the id counter', async () => {
    peer.resetStore();
    let b = await openBackend(peerContext(peer));
    await b.createModel('a', text('1'));
    const two = await b.createModel('b', text('2'));
    await b.createModel('c', text('3'));
    await b.deleteModel(3);
    await b.updateModel(2, 'b2', text('22'));
    await b.close();

    const ctx = peerContext(peer);
    b = await openBackend(ctx, { full_replay: 'history' });
    try {
      assert.equal(recovered(ctx).mode, 'history');
      const models = await b.getModels();
      assert.deepEqual(
        models.map((m) => [m.instanceId, m.modelType, m.revision]),
        [
          [1, 'a', 1],
          [2, 'b2', 2],
        ],
      );
      assert.equal(str((await b.getModel(2))?.instance ?? new Uint8Array()), '22');
      assert.notEqual(models[1]?.sha256, two.meta.sha256, 'model 2 was updated');
      assert.equal(await b.getModel(3), null);
      // max(known incl. the tombstone of 3) + 1: AIMM would have reused 3.
      const c = await b.createModel('d', text('4'));
      assert.equal(c.meta.instanceId, 4);
    } finally {
      await b.close();
    }
    // full_replay: latest is AIMM's scan only: same models, but revisions start again at 1.
    const ctx2 = peerContext(peer);
    b = await openBackend(ctx2, { full_replay: 'latest' });
    try {
      assert.equal(recovered(ctx2).mode, 'latest');
      assert.deepEqual(
        (await b.getModels()).map((m) => [m.instanceId, m.modelType, m.revision]),
        [
          [1, 'a', 1],
          [2, 'b2', 1],
          [4, 'd', 1],
        ],
      );
      const c = await b.createModel('e', text('5'));
      assert.equal(c.meta.instanceId, 5);
    } finally {
      await b.close();
    }
  });

  it('10k models: snapshot + delta replays only the delta; full latest replay restores all', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'snap', 'event.db') };
    try {
      seed(peer, 1, 10_000);
      const ctx1 = peerContext(peer);
      let b = await openBackend(ctx1, { snapshot, full_replay: 'history' });
      assert.equal(recovered(ctx1).mode, 'history');
      assert.equal((await b.getModels()).length, 10_000);
      await b.close();

      // While the daemon is down: 100 updates and 50 new models by another writer.
      for (let id = 1; id <= 100; id++) peer.register([aimmEvent(id, `u${id}`)]);
      seed(peer, 10_001, 50, 'n');

      const ctx2 = peerContext(peer);
      b = await openBackend(ctx2, { snapshot, catch_up_page_size: 64 });
      const rec = recovered(ctx2);
      assert.equal(rec.mode, 'catch_up');
      assert.equal(rec.events, 150, 'only the delta is replayed');
      assert.equal(rec.models, 10_050);
      assert.equal(str((await b.getModel(7))?.instance ?? new Uint8Array()), 'u7');
      assert.equal((await b.getModel(7))?.revision, 2);
      assert.equal(str((await b.getModel(5000))?.instance ?? new Uint8Array()), 'v5000');
      assert.equal(str((await b.getModel(10_050))?.instance ?? new Uint8Array()), 'n10050');
      await b.close();

      // Without the snapshot: a full replay (latest + history) restores everything too.
      const ctx3 = peerContext(peer);
      b = await openBackend(ctx3, { full_replay: 'history' });
      assert.equal(recovered(ctx3).mode, 'history');
      assert.equal((await b.getModels()).length, 10_050);
      assert.equal(str((await b.getModel(100))?.instance ?? new Uint8Array()), 'u100');
      assert.equal((await b.getModel(100))?.revision, 2);
      await b.close();
      // And AIMM's way, one latest query.
      const ctx4 = peerContext(peer);
      b = await openBackend(ctx4, { full_replay: 'latest' });
      assert.equal(recovered(ctx4).mode, 'latest');
      assert.equal(recovered(ctx4).events, 10_050);
      assert.equal((await b.getModels()).length, 10_050);
      await b.close();
    } finally {
      remove();
    }
  });

  it('catch-up while another writer keeps writing: every event applied once, in order', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'event.db') };
    try {
      seed(peer, 1, 200);
      let b = await openBackend(peerContext(peer), { snapshot, full_replay: 'history' });
      await b.close();
      // A delta of 3000 events to catch up with, in pages of 50.
      for (let round = 0; round < 15; round++) {
        const batch: RegisterEvent[] = [];
        for (let id = 1; id <= 200; id++) batch.push(aimmEvent(id, `r${round}-${id}`));
        peer.register(batch);
      }
      const ctx = peerContext(peer);
      let writing = true;
      let written = 0;
      const writer = (async () => {
        while (writing) {
          const id = 1 + (written % 250); // also new ids 201..250
          peer.register([aimmEvent(id, `w${written}`)]);
          written++;
          await new Promise((r) => setImmediate(r));
        }
      })();
      b = await openBackend(ctx, { snapshot, catch_up_page_size: 50, full_replay: 'history' });
      const duringRecovery = written;
      await sleep(30);
      writing = false;
      await writer;
      assert.ok(duringRecovery > 0, 'the writer wrote while the backend recovered');
      try {
        const view = hatView(peer);
        await waitFor(async () => (await b.getModels()).length === view.size, 'all models');
        // Wait until the last write is applied.
        const lastId = 1 + ((written - 1) % 250);
        await waitFor(
          async () =>
            str((await b.getModel(lastId))?.instance ?? new Uint8Array()) === `w${written - 1}`,
          'last write applied',
        );
        await assertMatchesHat(b, peer, 'after the catch-up');
        assert.equal(recovered(ctx).mode, 'catch_up');
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('reads come from the snapshot file; a restart from it needs no latest query', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'event.db') };
    try {
      let b = await openBackend(peerContext(peer), { snapshot });
      await b.createModel('t', text('from-snapshot'));
      await b.close();
      const ctx = peerContext(peer);
      b = await openBackend(ctx, { snapshot });
      const rec = recovered(ctx);
      assert.equal(rec.mode, 'catch_up');
      assert.equal(rec.events, 0);
      assert.equal(str((await b.getModel(1))?.instance ?? new Uint8Array()), 'from-snapshot');
      await b.close();
    } finally {
      remove();
    }
  });

  it('a snapshot ahead of Hat (store reset) is detected and rebuilt, with a log line', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'event.db') };
    try {
      let b = await openBackend(peerContext(peer), { snapshot });
      for (let i = 0; i < 5; i++) await b.createModel('old', text(`old${i}`));
      await b.close();

      peer.resetStore();
      // The new Hat has other models (and more events than before, so ids alone would not tell).
      for (let i = 0; i < 20; i++) peer.register([aimmEvent(1 + (i % 2), `new${i}`, 'new')]);

      const ctx = peerContext(peer);
      b = await openBackend(ctx, { snapshot });
      try {
        const rebuilt = ctx.logs.find(/rebuilding state from Hat/);
        assert.equal(rebuilt.length, 1);
        assert.equal(recovered(ctx).rebuilt, true);
        assert.deepEqual(
          (await b.getModels()).map((m) => [m.instanceId, m.modelType]),
          [
            [1, 'new'],
            [2, 'new'],
          ],
        );
        assert.equal(str((await b.getModel(2))?.instance ?? new Uint8Array()), 'new19');
        // Ids stay above everything ever seen (old 1..5), never reused.
        const c = await b.createModel('t', text('x'));
        assert.equal(c.meta.instanceId, 6);
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('Hat reset while connected: the reconnect rebuilds and announces vanished models', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const snapshot = { path: join(dir, 'event.db') };
    try {
      const ctx = peerContext(peer);
      const b = await openBackend(ctx, { snapshot });
      try {
        await b.createModel('a', text('a'));
        await b.createModel('b', text('b'));
        const log = new ChangeLog(b);
        peer.resetStore();
        peer.register([aimmEvent(2, 'b-new', 'b')]);
        peer.cutConnections();
        await log.waitFor((c) => c.change === 'deleted' && c.instanceId === 1, 'model 1 gone');
        await waitFor(() => b.status().ready, 'ready again');
        assert.deepEqual(
          (await b.getModels()).map((m) => m.instanceId),
          [2],
        );
        assert.equal(str((await b.getModel(2))?.instance ?? new Uint8Array()), 'b-new');
        assert.equal(ctx.logs.find(/rebuilding state from Hat/).length, 1);
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('a corrupt snapshot file is moved aside and rebuilt from Hat', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const path = join(dir, 'event.db');
    try {
      let b = await openBackend(peerContext(peer), { snapshot: { path } });
      await b.createModel('t', text('keep'));
      await b.close();
      writeFileSync(path, Buffer.alloc(8192, 0x5a));
      const ctx = peerContext(peer);
      b = await openBackend(ctx, { snapshot: { path }, full_replay: 'history' });
      try {
        const warn = ctx.logs.find(/snapshot unusable/);
        assert.equal(warn.length, 1);
        assert.equal(warn[0]?.issue, 'corrupt');
        assert.ok(readdirSync(dir).some((f) => f.startsWith('event.db.corrupt-')));
        assert.equal(recovered(ctx).mode, 'history');
        assert.equal(str((await b.getModel(1))?.instance ?? new Uint8Array()), 'keep');
        assert.ok(existsSync(path));
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('a snapshot with damaged tables (readable by SQLite, not by us) is replaced and rebuilt', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const path = join(dir, 'event.db');
    try {
      let b = await openBackend(peerContext(peer), { snapshot: { path } });
      await b.createModel('t', text('keep'));
      await b.close();
      const db = new Database(path);
      db.exec('DROP TABLE snapshot_models; CREATE TABLE snapshot_models (id INTEGER PRIMARY KEY)');
      db.close();
      const ctx = peerContext(peer);
      b = await openBackend(ctx, { snapshot: { path } });
      try {
        assert.equal(ctx.logs.find(/snapshot unusable/)[0]?.issue, 'corrupt');
        assert.equal(str((await b.getModel(1))?.instance ?? new Uint8Array()), 'keep');
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('a snapshot written for another prefix is cleared and rebuilt', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const path = join(dir, 'event.db');
    try {
      let b = await openBackend(peerContext(peer), { snapshot: { path }, model_prefix: ['other'] });
      await b.createModel('t', text('other-prefix'));
      await b.close();
      const ctx = peerContext(peer);
      b = await openBackend(ctx, { snapshot: { path } });
      try {
        const warn = ctx.logs.find(/snapshot unusable/);
        assert.equal(warn[0]?.issue, 'mismatch');
        assert.deepEqual(await b.getModels(), []);
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });

  it('a second backend on the same snapshot file is refused', async () => {
    peer.resetStore();
    const { dir, remove } = tempDir();
    const path = join(dir, 'event.db');
    try {
      const b = await openBackend(peerContext(peer), { snapshot: { path } });
      try {
        await assert.rejects(
          openBackend(peerContext(peer), { snapshot: { path } }, false),
          /in use by another process/,
        );
      } finally {
        await b.close();
      }
    } finally {
      remove();
    }
  });
});
