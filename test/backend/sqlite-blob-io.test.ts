/**
 * Large models through SQLite blob handles (`blob_io`, src/common/sqlite-blob-io.ts and the
 * extension in native/blob_io.c): the install builds the extension wherever a C compiler is;
 * models from 1 MiB on are written as zeroblob(n) and copied in through a handle, read back and
 * read by ranges through one; the file holds exactly what AIMM's plain connection expects
 * (instance a BLOB of the model's bytes, history and sizes as before); `blob_io: off` and the
 * small models keep the plain path with the same results; the extension's functions refuse
 * what is outside the blob or out of turn.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseSqliteConf } from '../../src/backends/sqlite/conf.js';
import { SqliteStore } from '../../src/backends/sqlite/store.js';
import { create, type SqliteBackend } from '../../src/backends/sqlite.js';
import { BLOB_IO_MIN_BYTES, BlobIo, blobIoExtension } from '../../src/common/sqlite-blob-io.js';
import { testContext, withTempDir } from './support/context.js';

const MiB = 1024 * 1024;

/** A recognisable model: no two 4-byte words alike within it, different per seed. */
function model(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i + 4 <= bytes; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  for (let i = bytes - (bytes % 4); i < bytes; i++) b[i] = (seed + i) & 0xff;
  return b;
}

function bytesOf(got: Uint8Array | undefined): Buffer {
  assert.ok(got !== undefined);
  return Buffer.from(got.buffer, got.byteOffset, got.byteLength);
}

function openStore(path: string, extra: Record<string, unknown> = {}) {
  return SqliteStore.open(parseSqliteConf({ path, busy_timeout_ms: 100, ...extra }));
}

function openBackend(path: string, extra: Record<string, unknown> = {}): Promise<SqliteBackend> {
  return create(
    { module: 'aimm-store/backends/sqlite', path, busy_timeout_ms: 100, ...extra },
    testContext(),
  );
}

const hasCompiler = spawnSync(process.env.CC || 'cc', ['--version']).status === 0;

/** The options of a test that needs the extension. */
const NEEDS_EXTENSION = {
  skip: blobIoExtension() === undefined ? 'the extension is not built' : false,
};

/** What a write op that stores `size` bytes of model `seed` carries. */
function bytesOp(size: number, seed: number) {
  return {
    modelType: 't',
    instance: model(size, seed),
    sha256: 'x'.repeat(64),
    contentType: undefined,
  };
}

/** Sizes around the threshold and the 1 MiB chunks, with odd tails. */
const SIZES = [BLOB_IO_MIN_BYTES - 1, BLOB_IO_MIN_BYTES, 3 * MiB + 12_345, 2 * MiB];

describe('sqlite backend: blob handles for large models', () => {
  it('the install built the extension wherever a C compiler is, and the backend uses it', {
    skip: hasCompiler ? false : 'no C compiler (cc) on this machine',
  }, async () => {
    assert.ok(blobIoExtension() !== undefined, 'npm install (native/build.mjs) builds it');
    await withTempDir(async (dir) => {
      const { store, report } = openStore(join(dir, 'm.db'));
      try {
        assert.deepEqual(report.blobIo, { on: true });
        assert.equal(store.settings().blobIo, true);
      } finally {
        store.close();
      }
    });
  });

  for (const mode of ['auto', 'off'] as const) {
    it(`blob_io: ${mode} — create, create at an id, update, get, ranges and history give the stored bytes`, async () => {
      await withTempDir(async (dir) => {
        const path = join(dir, 'm.db');
        const b = await openBackend(path, { blob_io: mode, history: { keep: 2 } });
        const on = b.settings().blobIo;
        assert.equal(on, mode === 'auto' && blobIoExtension() !== undefined);
        try {
          for (const [i, size] of SIZES.entries()) {
            const first = model(size, i);
            const { meta } = await b.createModel(`t${i}`, first);
            assert.equal(meta.size, size);
            assert.ok(bytesOf((await b.getModel(meta.instanceId))?.instance).equals(first));
            const second = model(size + 7, 100 + i);
            const { meta: updated } = await b.updateModel(meta.instanceId, `u${i}`, second);
            assert.equal(updated.size, size + 7);
            assert.equal(updated.revision, 2);
            const got = await b.getModel(meta.instanceId);
            assert.ok(bytesOf(got?.instance).equals(second));
            assert.equal(got?.sha256, updated.sha256);
            const old = await b.getRevision(meta.instanceId, 1);
            assert.ok(bytesOf(old?.instance).equals(first), 'the history keeps the first bytes');
            for (const [start, end] of [
              [0, 1],
              [MiB - 3, MiB + 5],
              [size - 10, size + 7],
              [size + 6, size + 7],
            ] as const) {
              const r = await b.getModelRange(meta.instanceId, () => ({ start, end }));
              assert.ok(bytesOf(r?.bytes).equals(second.subarray(start, end)), `${start}-${end}`);
            }
          }
          const at = model(2 * MiB + 1, 7);
          await b.createModelAt(500, 't', at);
          assert.ok(bytesOf((await b.getModel(500))?.instance).equals(at));
        } finally {
          await b.close();
        }

        // What AIMM's plain connection reads: a BLOB of exactly the bytes, sizes as stored.
        const db = new Database(path, { readonly: true });
        try {
          const rows = db
            .prepare(
              `SELECT m.id AS id, typeof(m.instance) AS kind, length(m.instance) AS n,
                      s.size AS size, s.revision AS revision
                 FROM models m JOIN aimm_store_model_meta s ON s.id = m.id ORDER BY m.id`,
            )
            .all() as { id: number; kind: string; n: number; size: number; revision: number }[];
          assert.deepEqual(
            rows.map((r) => [r.kind, r.n, r.size, r.revision]),
            [...SIZES.map((n) => ['blob', n + 7, n + 7, 2]), ['blob', 2 * MiB + 1, 2 * MiB + 1, 1]],
          );
          const last = db.prepare('SELECT instance FROM models WHERE id = 500').pluck().get();
          assert.ok((last as Buffer).equals(model(2 * MiB + 1, 7)));
          assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        } finally {
          db.close();
        }
      });
    });
  }

  it(
    'only models from the threshold on go through handles, and only when it is on',
    NEEDS_EXTENSION,
    async () => {
      await withTempDir(async (dir) => {
        for (const [name, extra, large] of [
          ['auto.db', {}, 1],
          ['off.db', { blob_io: 'off' }, 0],
        ] as const) {
          const { store, report } = openStore(join(dir, name), extra);
          try {
            assert.equal(report.blobIo.on, large === 1, name);
            const op = (size: number, seed: number) => ({
              kind: 'create' as const,
              ...bytesOp(size, seed),
            });
            const { outcomes } = store.applyBatch([
              op(BLOB_IO_MIN_BYTES - 1, 1),
              op(BLOB_IO_MIN_BYTES, 2),
              op(1024, 3),
            ]);
            assert.ok(outcomes.every((o) => o.ok));
            assert.deepEqual(store.blobIoUse, { writes: large, reads: 0, archives: 0 }, name);
            assert.ok(bytesOf(store.get(2)?.instance).equals(model(BLOB_IO_MIN_BYTES, 2)));
            assert.ok(bytesOf(store.get(1)?.instance).equals(model(BLOB_IO_MIN_BYTES - 1, 1)));
            assert.deepEqual(store.blobIoUse, { writes: large, reads: large, archives: 0 }, name);
          } finally {
            store.close();
          }
        }
      });
    },
  );

  it(
    'the history archives a large revision through handles when it keeps any, else not at all',
    NEEDS_EXTENSION,
    async () => {
      await withTempDir(async (dir) => {
        for (const keep of [0, 3]) {
          const path = join(dir, `keep${keep}.db`);
          const { store } = openStore(path, { history: { keep } });
          try {
            const ok = (ops: Parameters<SqliteStore['applyBatch']>[0]) =>
              assert.ok(store.applyBatch(ops).outcomes.every((o) => o.ok));
            ok([{ kind: 'create', ...bytesOp(2 * MiB + 3, 1) }]);
            ok([{ kind: 'update', instanceId: 1, expectedRevision: 1, ...bytesOp(1000, 2) }]);
            ok([{ kind: 'update', instanceId: 1, expectedRevision: 2, ...bytesOp(3 * MiB, 3) }]);
            ok([{ kind: 'delete', instanceId: 1, expectedRevision: 3 }]);
            // Revisions 1 (large: through handles), 2 (small: the trigger), 3 (large, deleted).
            assert.equal(store.blobIoUse.archives, keep === 0 ? 0 : 2);
            const archived = store.history(1) ?? [];
            assert.deepEqual(
              archived.map((r) => [r.revision, r.deleted, r.available]),
              keep === 0
                ? [[4, true, false]]
                : [
                    [1, false, true],
                    [2, false, true],
                    [3, false, true],
                    [4, true, false],
                  ],
            );
            if (keep > 0) {
              assert.ok(bytesOf(store.revision(1, 1)?.instance).equals(model(2 * MiB + 3, 1)));
              assert.ok(bytesOf(store.revision(1, 2)?.instance).equals(model(1000, 2)));
              assert.ok(bytesOf(store.revision(1, 3)?.instance).equals(model(3 * MiB, 3)));
              // The two large revisions were read through handles, the small one with its row.
              assert.equal(store.blobIoUse.reads, 2);
            }
          } finally {
            store.close();
          }
          // The store's "archived it myself" mark never outlives its statement.
          const db = new Database(path, { readonly: true });
          try {
            const marks = db
              .prepare(`SELECT count(*) FROM aimm_store_info WHERE key = 'revision_archived'`)
              .pluck()
              .get();
            assert.equal(marks, 0);
          } finally {
            db.close();
          }
        }
      });
    },
  );

  it("AIMM's own updates and deletes of large models are archived by the triggers", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'm.db');
      const b = await openBackend(path, { history: { keep: 5 } });
      await b.createModel('t', model(2 * MiB, 1));
      await b.createModel('t', model(2 * MiB, 2));
      await b.close();
      const db = new Database(path); // AIMM's connection: no extension, plain statements
      db.prepare('UPDATE models SET instance = ? WHERE id = 1').run(model(MiB + 1, 3));
      db.prepare('DELETE FROM models WHERE id = 2').run();
      db.close();
      const again = await openBackend(path, { history: { keep: 5 } });
      try {
        assert.ok(bytesOf((await again.getRevision(1, 1))?.instance).equals(model(2 * MiB, 1)));
        assert.ok(bytesOf((await again.getModel(1))?.instance).equals(model(MiB + 1, 3)));
        assert.ok(bytesOf((await again.getRevision(2, 1))?.instance).equals(model(2 * MiB, 2)));
        assert.equal(await again.getModel(2), null);
      } finally {
        await again.close();
      }
    });
  });

  it('a TEXT or NULL instance another writer left is read as before', NEEDS_EXTENSION, async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'm.db');
      const text = 'é'.repeat(BLOB_IO_MIN_BYTES);
      const db = new Database(path);
      db.exec(
        'CREATE TABLE models (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, instance BLOB)',
      );
      db.prepare('INSERT INTO models (type, instance) VALUES (?, ?)').run('aimm.T', text);
      db.prepare('INSERT INTO models (type, instance) VALUES (?, NULL)').run('aimm.N');
      db.close();
      const b = await openBackend(path);
      try {
        assert.equal(b.settings().blobIo, true);
        const got = await b.getModel(1);
        assert.ok(bytesOf(got?.instance).equals(Buffer.from(text, 'utf8')));
        assert.equal(got?.size, 2 * BLOB_IO_MIN_BYTES);
        const r = await b.getModelRange(1, () => ({ start: 1, end: 3 }));
        assert.ok(bytesOf(r?.bytes).equals(Buffer.from(text, 'utf8').subarray(1, 3)));
        assert.equal((await b.getModel(2))?.instance.length, 0);
      } finally {
        await b.close();
      }
    });
  });

  it(
    "the extension's functions refuse what is outside the blob or out of turn",
    NEEDS_EXTENSION,
    () => {
      const db = new Database(':memory:');
      try {
        const loaded = BlobIo.load(db);
        assert.ok(loaded.io !== undefined);
        db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)');
        db.prepare('INSERT INTO t VALUES (1, zeroblob(10)), (2, NULL)').run();
        const one = (sql: string, ...args: unknown[]) =>
          db
            .prepare(sql)
            .pluck()
            .get(...args);
        assert.throws(() => one("SELECT aimm_blob_write(0, x'00')"), /no blob is open/);
        assert.throws(() => one("SELECT aimm_blob_open('t', 'b', 3, 1)"), /no such rowid/);
        assert.throws(() => one("SELECT aimm_blob_open('t', 'b', 2, 1)"), /cannot open value/);
        assert.throws(() => one("SELECT aimm_blob_open('t', 'b', 1.5, 1)"), /are required/);
        assert.equal(one("SELECT aimm_blob_open('t', 'b', 1, 1)"), 10);
        assert.throws(() => one("SELECT aimm_blob_open('t', 'b', 1, 1)"), /already open/);
        assert.throws(() => one("SELECT aimm_blob_write(8, x'010203')"), /outside the blob/);
        assert.throws(() => one("SELECT aimm_blob_write(-1, x'01')"), /outside the blob/);
        assert.throws(() => one('SELECT aimm_blob_read(9, 2)'), /outside the blob/);
        assert.equal(one("SELECT aimm_blob_write(7, x'010203')"), 3);
        assert.deepEqual([...(one('SELECT aimm_blob_read(6, 4)') as Buffer)], [0, 1, 2, 3]);
        assert.equal(one('SELECT aimm_blob_close()'), 1);
        assert.equal(one('SELECT aimm_blob_close()'), 0);
        // Not from a trigger or a view (SQLITE_DIRECTONLY): a file cannot make us write blobs.
        db.exec(
          "CREATE TABLE log (x); CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT aimm_blob_open('t', 'b', 1, 1); END",
        );
        assert.throws(() => db.prepare('INSERT INTO log VALUES (1)').run(), /unsafe use/);
        // A write through a handle whose row changed meanwhile is refused (SQLite expires it).
        one("SELECT aimm_blob_open('t', 'b', 1, 1)");
        db.prepare("UPDATE t SET b = x'00' WHERE id = 1").run();
        assert.throws(() => one("SELECT aimm_blob_write(0, x'01')"), /abort/i);
        one('SELECT aimm_blob_close()');
        assert.deepEqual(
          [...(db.prepare('SELECT b FROM t WHERE id = 1').pluck().get() as Buffer)],
          [0],
        );
      } finally {
        db.close();
      }
    },
  );
});
