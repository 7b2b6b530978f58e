/**
 * The sqlite backend's history (file format 2): the triggers archive each replaced revision with its
 * bytes, aimm-store's writes are `local` and anyone else's (AIMM writing the file while we are not
 * running) `remote`, deleted models keep their history, and the retention stored in the file
 * (`history.keep`) is obeyed by every writer.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { create, type SqliteBackend } from '../../src/backends/sqlite.js';
import { tempDir, testContext } from './support/context.js';

const buf = (s: string) => Buffer.from(s, 'utf8');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function open(path: string, history?: Record<string, unknown>): Promise<SqliteBackend> {
  return create(
    {
      module: 'aimm-store/backends/sqlite',
      path,
      busy_timeout_ms: 200,
      ...(history === undefined ? {} : { history }),
    },
    testContext(),
  );
}

const dirs: (() => void)[] = [];
after(() => {
  for (const remove of dirs) remove();
});

function dir(): string {
  const t = tempDir();
  dirs.push(t.remove);
  return t.dir;
}

describe('sqlite history', () => {
  it('lists every revision oldest first and serves the bytes of each', async () => {
    const path = join(dir(), 'm.db');
    const b = await open(path);
    try {
      const { meta } = await b.createModel('t.A', buf('one'));
      await b.updateModel(meta.instanceId, 't.A', buf('two'));
      await b.updateModel(meta.instanceId, 't.B', buf('three!'));
      const h = await b.getHistory(meta.instanceId);
      assert.ok(h !== null);
      assert.deepEqual(
        h.map((r) => [r.revision, r.modelType, r.size, r.sha256, r.deleted, r.origin, r.current]),
        [
          [1, 't.A', 3, sha(buf('one')), false, 'local', false],
          [2, 't.A', 3, sha(buf('two')), false, 'local', false],
          [3, 't.B', 6, sha(buf('three!')), false, 'local', true],
        ],
      );
      assert.ok(h.every((r) => r.available));
      for (const [rev, text] of [
        [1, 'one'],
        [2, 'two'],
        [3, 'three!'],
      ] as const) {
        const m = await b.getRevision(meta.instanceId, rev);
        assert.equal(Buffer.from(m?.instance ?? []).toString(), text);
        assert.equal(m?.revision, rev);
      }
      assert.equal(await b.getRevision(meta.instanceId, 4), null);
      assert.equal(await b.getHistory(999), null);
      // Paging.
      const page = await b.getHistory(meta.instanceId, { after: 1, limit: 1 });
      assert.deepEqual(
        page?.map((r) => r.revision),
        [2],
      );
      const rest = await b.getHistory(meta.instanceId, { after: 2, limit: 5 });
      assert.deepEqual(
        rest?.map((r) => r.revision),
        [3],
      );
    } finally {
      await b.close();
    }
  });

  it('keeps the history of a deleted model, its tombstone as the current revision', async () => {
    const path = join(dir(), 'm.db');
    const b = await open(path);
    try {
      const { meta } = await b.createModel('t.A', buf('one'));
      await b.updateModel(meta.instanceId, 't.A', buf('two'));
      await b.deleteModel(meta.instanceId);
      const h = await b.getHistory(meta.instanceId);
      assert.deepEqual(
        h?.map((r) => [r.revision, r.deleted, r.available, r.current, r.sha256 === null]),
        [
          [1, false, true, false, false],
          [2, false, true, false, false],
          [3, true, false, true, true],
        ],
      );
      assert.equal(
        Buffer.from((await b.getRevision(meta.instanceId, 2))?.instance ?? []).toString(),
        'two',
      );
      assert.equal(await b.getRevision(meta.instanceId, 3), null);
    } finally {
      await b.close();
    }
  });

  it('records writes made by AIMM while aimm-store is not running, as remote', async () => {
    const path = join(dir(), 'm.db');
    let b = await open(path);
    const { meta } = await b.createModel('t.A', buf('ours'));
    await b.close();
    // AIMM's own statements on its own connection.
    const db = new Database(path);
    db.prepare('UPDATE models SET instance=:instance WHERE id=:instance_id').run({
      instance: buf('aimm'),
      instance_id: meta.instanceId,
    });
    const id2 = Number(
      db
        .prepare('INSERT INTO models (type, instance) VALUES (:type, :instance)')
        .run({ type: 't.C', instance: buf('new') }).lastInsertRowid,
    );
    db.close();
    b = await open(path);
    try {
      const h = await b.getHistory(meta.instanceId);
      assert.deepEqual(
        h?.map((r) => [r.revision, r.origin, r.sha256]),
        [
          [1, 'local', sha(buf('ours'))],
          [2, 'remote', sha(buf('aimm'))],
        ],
      );
      const h2 = await b.getHistory(id2);
      assert.deepEqual(
        h2?.map((r) => [r.revision, r.origin, r.current]),
        [[1, 'remote', true]],
      );
    } finally {
      await b.close();
    }
  });

  it('keeps `keep` earlier revisions, also for writes by another program, and 0 keeps none', async () => {
    const path = join(dir(), 'm.db');
    let b = await open(path, { keep: 2 });
    const { meta } = await b.createModel('t.A', buf('r1'));
    for (let r = 2; r <= 5; r++) await b.updateModel(meta.instanceId, 't.A', buf(`r${r}`));
    assert.deepEqual(
      (await b.getHistory(meta.instanceId))?.map((r) => r.revision),
      [3, 4, 5],
    );
    await b.close();
    const db = new Database(path);
    db.prepare('UPDATE models SET instance = ? WHERE id = ?').run(buf('r6'), meta.instanceId);
    db.close();
    b = await open(path, { keep: 2 });
    assert.deepEqual(
      (await b.getHistory(meta.instanceId))?.map((r) => r.revision),
      [4, 5, 6],
    );
    await b.close();
    // A smaller retention applies at open; 0 keeps only the current revision.
    b = await open(path, { keep: 0 });
    try {
      assert.deepEqual(
        (await b.getHistory(meta.instanceId))?.map((r) => r.revision),
        [6],
      );
      await b.updateModel(meta.instanceId, 't.A', buf('r7'));
      assert.deepEqual(
        (await b.getHistory(meta.instanceId))?.map((r) => r.revision),
        [7],
      );
    } finally {
      await b.close();
    }
  });

  it('upgrades a format 1 file: earlier models start their history at their current revision', async () => {
    const path = join(dir(), 'm.db');
    let b = await open(path);
    const { meta } = await b.createModel('t.A', buf('one'));
    await b.close();
    // Turn the file back into format 1 (no history table, no origin column, old triggers).
    const db = new Database(path);
    db.exec(`DROP TABLE aimm_store_history;
      DROP TRIGGER aimm_store_models_insert; DROP TRIGGER aimm_store_models_update;
      DROP TRIGGER aimm_store_models_delete;
      ALTER TABLE aimm_store_model_meta DROP COLUMN origin;
      UPDATE aimm_store_info SET value = '1' WHERE key = 'schema_version';`);
    db.close();
    b = await open(path);
    try {
      await b.updateModel(meta.instanceId, 't.A', buf('two'));
      assert.deepEqual(
        (await b.getHistory(meta.instanceId))?.map((r) => [r.revision, r.origin]),
        [
          [1, 'remote'],
          [2, 'local'],
        ],
      );
    } finally {
      await b.close();
    }
  });

  it('content types: a write by AIMM resets the type to unknown; the archive keeps the old one', async () => {
    const path = join(dir(), 'm.db');
    let b = await open(path);
    const { meta } = await b.createModel('t.A', buf('ours'), { contentType: 'text/plain' });
    await b.close();
    const db = new Database(path);
    db.prepare('UPDATE models SET instance=:instance WHERE id=:instance_id').run({
      instance: buf('aimm'),
      instance_id: meta.instanceId,
    });
    db.close();
    b = await open(path);
    try {
      const m = await b.getModel(meta.instanceId);
      assert.equal(m?.revision, 2);
      assert.equal(m?.contentType, undefined, "AIMM's write has no content type");
      assert.deepEqual(
        (await b.getHistory(meta.instanceId))?.map((r) => [r.revision, r.origin, r.contentType]),
        [
          [1, 'local', 'text/plain'],
          [2, 'remote', undefined],
        ],
      );
    } finally {
      await b.close();
    }
  });

  it('opens a format 2 file from before content types: stays format 2, gains the table and column', async () => {
    const path = join(dir(), 'm.db');
    let b = await open(path);
    const { meta } = await b.createModel('t.A', buf('one'));
    await b.close();
    // As an aimm-store without content types left it (its triggers archive no content_type).
    let db = new Database(path);
    db.exec(`DROP TABLE aimm_store_content_type;
      DROP TRIGGER aimm_store_models_insert; DROP TRIGGER aimm_store_models_update;
      DROP TRIGGER aimm_store_models_delete;
      ALTER TABLE aimm_store_history DROP COLUMN content_type;`);
    db.close();
    b = await open(path);
    try {
      const u = await b.updateModel(meta.instanceId, 't.A', buf('two'), {
        contentType: 'application/json',
      });
      assert.equal(u.meta.contentType, 'application/json');
      await b.updateModel(meta.instanceId, 't.A', buf('three'));
      assert.deepEqual(
        (await b.getHistory(meta.instanceId))?.map((r) => [r.revision, r.contentType]),
        [
          [1, undefined],
          [2, 'application/json'],
          [3, undefined],
        ],
      );
    } finally {
      await b.close();
    }
    db = new Database(path, { readonly: true });
    try {
      const v = db.prepare(`SELECT value FROM aimm_store_info WHERE key = 'schema_version'`).get();
      assert.deepEqual(v, { value: '2' }, 'no format bump: an older aimm-store still opens it');
    } finally {
      db.close();
    }
  });
});
