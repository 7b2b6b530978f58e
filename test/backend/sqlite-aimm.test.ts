/**
 * AIMM compatibility of the sqlite file, both ways (design §1, aimm-compat.md): a file written as
 * AIMM writes it (its exact DDL, plain autocommit INSERT/UPDATE) opens and is served with revisions;
 * a file we wrote reads in AIMM's way (same table, same bytes, ids 1, 2, 3...). When python3 is
 * installed, AIMM's own connection code (`file:...?nolock=1`, autocommit) runs against our file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { BackendError } from '../../src/backend/types.js';
import { create, type SqliteBackend } from '../../src/backends/sqlite.js';
import { tempDir, testContext } from './support/context.js';

/** AIMM's DDL, as its sqlite backend executes it. */
const AIMM_DDL = `
        CREATE TABLE IF NOT EXISTS models (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            instance BLOB
        );`;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const buf = (s: string) => Buffer.from(s, 'utf8');
const text = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('utf8');

function open(path: string): Promise<SqliteBackend> {
  return create(
    { module: 'aimm-store/backends/sqlite', path, busy_timeout_ms: 200 },
    testContext(),
  );
}

/** A plain connection as AIMM has one: default rollback journal, autocommit. */
function aimmConnection(path: string): Database.Database {
  const db = new Database(path);
  db.exec(AIMM_DDL);
  return db;
}

function aimmInsert(db: Database.Database, type: string, instance: unknown): number {
  return Number(
    db
      .prepare('INSERT INTO models (type, instance) VALUES (:type, :instance)')
      .run({ type, instance }).lastInsertRowid,
  );
}

function aimmUpdate(db: Database.Database, id: number, instance: Buffer): void {
  db.prepare('UPDATE models SET instance=:instance WHERE id=:instance_id').run({
    instance,
    instance_id: id,
  });
}

/** Byte 18 of the header: 1 = rollback journal, 2 = WAL. */
function headerJournalByte(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(20);
    readSync(fd, b, 0, 20, 0);
    return b[18] ?? -1;
  } finally {
    closeSync(fd);
  }
}

describe('sqlite backend: AIMM compatibility', () => {
  it('an AIMM-written file opens: its models are served with revision 1, hashes and bytes', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'aimm.db');
      const db = aimmConnection(path);
      const a = aimmInsert(db, 'plugins.sklearn.SVC', buf('svc-bytes'));
      const b = aimmInsert(db, 'text.Model', buf('hello'));
      const c = aimmInsert(db, 'text.Model', Buffer.from([0, 255, 0, 1]));
      aimmUpdate(db, b, buf('hello2'));
      db.close();
      assert.deepEqual([a, b, c], [1, 2, 3]);

      const backend = await open(path);
      try {
        const list = await backend.getModels();
        assert.deepEqual(
          list.map((m) => [m.instanceId, m.modelType, m.revision, m.size, m.sha256]),
          [
            [1, 'plugins.sklearn.SVC', 1, 9, sha(buf('svc-bytes'))],
            [2, 'text.Model', 1, 6, sha(buf('hello2'))],
            [3, 'text.Model', 1, 4, sha(Buffer.from([0, 255, 0, 1]))],
          ],
        );
        assert.deepEqual([...((await backend.getModel(3))?.instance ?? [])], [0, 255, 0, 1]);
        const u = await backend.updateModel(2, 'text.Model', buf('ours'), { expectedRevision: 1 });
        assert.equal(u.meta.revision, 2);
        assert.equal((await backend.createModel('t', buf('new'))).meta.instanceId, 4);
      } finally {
        await backend.close();
      }
    } finally {
      remove();
    }
  });

  it('ids AIMM used and deleted are never reused (AUTOINCREMENT)', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'aimm.db');
      const db = aimmConnection(path);
      for (let i = 0; i < 3; i++) aimmInsert(db, 't', buf(`${i}`));
      db.prepare('DELETE FROM models WHERE id = 3').run();
      db.close();
      const backend = await open(path);
      try {
        assert.deepEqual(
          (await backend.getModels()).map((m) => m.instanceId),
          [1, 2],
        );
        assert.equal((await backend.createModel('t', buf('x'))).meta.instanceId, 4);
      } finally {
        await backend.close();
      }
    } finally {
      remove();
    }
  });

  it('a file we wrote reads as AIMM reads it: same table, same bytes, ids 1, 2, 3; rollback journal after close', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'ours.db');
      const backend = await open(path);
      const payloads = [buf('first'), Buffer.from([0, 1, 2, 255]), Buffer.alloc(0)];
      for (const [i, p] of payloads.entries()) await backend.createModel(`type.${i}`, p);
      await backend.updateModel(2, 'type.1', buf('second, updated'));
      await backend.close();

      assert.equal(existsSync(`${path}-wal`), false, 'no WAL file left after close');
      assert.equal(headerJournalByte(path), 1, 'file is back in rollback-journal mode');

      const db = new Database(path, { readonly: true });
      try {
        assert.deepEqual(
          db
            .prepare('PRAGMA table_info(models)')
            .all()
            .map((c) => {
              const col = c as { name: string; type: string; notnull: number; pk: number };
              return [col.name, col.type, col.notnull, col.pk];
            }),
          [
            ['id', 'INTEGER', 0, 1],
            ['type', 'TEXT', 1, 0],
            ['instance', 'BLOB', 0, 0],
          ],
        );
        const seq = db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'models'`).get() as {
          seq: number;
        };
        assert.equal(seq.seq, 3, 'ids come from AUTOINCREMENT');
        const rows = db.prepare('SELECT * FROM models').all() as {
          id: number;
          type: string;
          instance: Buffer;
        }[];
        assert.deepEqual(
          rows.map((r) => [r.id, r.type, r.instance.toString('hex')]),
          [
            [1, 'type.0', buf('first').toString('hex')],
            [2, 'type.1', buf('second, updated').toString('hex')],
            [3, 'type.2', ''],
          ],
        );
        assert.ok(
          rows.every((r) => Buffer.isBuffer(r.instance)),
          'instances are BLOBs',
        );
      } finally {
        db.close();
      }
    } finally {
      remove();
    }
  });

  it('writes AIMM (or anyone) makes while we are down keep honest revisions through the triggers', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'shared.db');
      let backend = await open(path);
      for (const s of ['a', 'b', 'c']) await backend.createModel('t', buf(s));
      await backend.updateModel(1, 't', buf('a2'));
      await backend.close();

      const db = aimmConnection(path);
      aimmUpdate(db, 1, buf('a3 by aimm'));
      aimmUpdate(db, 2, buf('b2 by aimm'));
      const d = aimmInsert(db, 'aimm.Model', buf('d by aimm'));
      db.prepare('DELETE FROM models WHERE id = 3').run();
      db.close();
      assert.equal(d, 4);

      backend = await open(path);
      try {
        const list = await backend.getModels();
        assert.deepEqual(
          list.map((m) => [m.instanceId, m.modelType, m.revision, m.sha256]),
          [
            [1, 't', 3, sha(buf('a3 by aimm'))],
            [2, 't', 2, sha(buf('b2 by aimm'))],
            [4, 'aimm.Model', 1, sha(buf('d by aimm'))],
          ],
        );
        assert.equal(await backend.getModel(3), null);
        await assert.rejects(backend.updateModel(3, 't', buf('x')), { code: 'not_found' });
        assert.equal((await backend.createModel('t', buf('e'))).meta.instanceId, 5);
      } finally {
        await backend.close();
      }
    } finally {
      remove();
    }
  });

  it("AIMM's own connection code (python3 sqlite3, nolock=1, autocommit) reads and writes our file", async (t) => {
    const probe = spawnSync('python3', ['-c', 'import sqlite3; print(sqlite3.sqlite_version)'], {
      encoding: 'utf8',
    });
    if (probe.status !== 0) {
      t.skip('python3 with sqlite3 is not installed');
      return;
    }
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'ours.db');
      let backend = await open(path);
      await backend.createModel('text.Model', buf('hello'));
      await backend.createModel('text.Model', Buffer.from([0, 1, 2, 255]));
      await backend.close();

      // AIMM's _ext_db_connect / create_model / update_model / get_models, verbatim in effect.
      const script = `
import base64, json, sqlite3, sys
path = sys.argv[1]
conn = sqlite3.connect("file:{}?nolock=1".format(path), uri=True, isolation_level=None,
                       detect_types=sqlite3.PARSE_DECLTYPES)
conn.execute("""
        CREATE TABLE IF NOT EXISTS models (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            instance BLOB
        );""", {})
conn.commit()
rows = [[r[0], r[1], base64.b64encode(r[2]).decode()] for r in conn.execute("SELECT * FROM models", {})]
cur = conn.execute("INSERT INTO models (type, instance) VALUES (:type, :instance)",
                   {"type": "py.Model", "instance": b"from python"})
conn.commit()
conn.execute("UPDATE models SET instance=:instance WHERE id=:instance_id",
             {"instance": b"updated by python", "instance_id": 1})
conn.commit()
print(json.dumps({"rows": rows, "new_id": cur.lastrowid}))
conn.close()
`;
      const res = spawnSync('python3', ['-c', script, path], { encoding: 'utf8' });
      assert.equal(res.status, 0, `python failed: ${res.stderr}`);
      const out = JSON.parse(res.stdout) as { rows: [number, string, string][]; new_id: number };
      assert.deepEqual(out.rows, [
        [1, 'text.Model', buf('hello').toString('base64')],
        [2, 'text.Model', Buffer.from([0, 1, 2, 255]).toString('base64')],
      ]);
      assert.equal(out.new_id, 3);

      backend = await open(path);
      try {
        const list = await backend.getModels();
        assert.deepEqual(
          list.map((m) => [m.instanceId, m.modelType, m.revision, m.sha256]),
          [
            [1, 'text.Model', 2, sha(buf('updated by python'))],
            [2, 'text.Model', 1, sha(Buffer.from([0, 1, 2, 255]))],
            [3, 'py.Model', 1, sha(buf('from python'))],
          ],
        );
        assert.equal(text((await backend.getModel(3))?.instance), 'from python');
      } finally {
        await backend.close();
      }
    } finally {
      remove();
    }
  });

  it('changes made while the triggers were dropped are repaired at open, and the triggers come back', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'm.db');
      let backend = await open(path);
      for (const s of ['a', 'b', 'c']) await backend.createModel('t', buf(s));
      await backend.close();

      const db = new Database(path);
      const triggers = () =>
        (
          db
            .prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name`)
            .all() as {
            name: string;
          }[]
        ).map((r) => r.name);
      assert.deepEqual(triggers(), [
        'aimm_store_models_delete',
        'aimm_store_models_insert',
        'aimm_store_models_update',
      ]);
      for (const name of triggers()) db.exec(`DROP TRIGGER ${name}`);
      db.prepare(`UPDATE models SET type = 'changed' WHERE id = 1`).run();
      db.prepare('DELETE FROM models WHERE id = 2').run();
      aimmInsert(db, 'new', buf('d'));
      db.close();

      backend = await open(path);
      try {
        assert.deepEqual(
          (await backend.getModels()).map((m) => [m.instanceId, m.modelType, m.revision]),
          [
            [1, 'changed', 2],
            [3, 't', 1],
            [4, 'new', 1],
          ],
        );
        assert.equal(await backend.getModel(2), null);
        const d = await backend.createModel('t', buf('e'));
        assert.equal(d.meta.instanceId, 5);
      } finally {
        await backend.close();
      }
      const check = new Database(path, { readonly: true });
      try {
        assert.equal(
          (
            check
              .prepare(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'trigger'`)
              .get() as {
              n: number;
            }
          ).n,
          3,
        );
      } finally {
        check.close();
      }
    } finally {
      remove();
    }
  });

  it('TEXT and NULL instances written by others are served as UTF-8 bytes and as empty', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'm.db');
      const db = aimmConnection(path);
      aimmInsert(db, 'text', 'zwölf');
      aimmInsert(db, 'null', null);
      db.close();
      const backend = await open(path);
      try {
        const [t, n] = await backend.getModels();
        assert.equal(t?.size, Buffer.byteLength('zwölf'));
        assert.equal(t?.sha256, sha(buf('zwölf')));
        assert.equal(text((await backend.getModel(1))?.instance), 'zwölf');
        assert.equal(n?.size, 0);
        assert.equal((await backend.getModel(2))?.instance.length, 0);
      } finally {
        await backend.close();
      }
    } finally {
      remove();
    }
  });

  it('refuses a file of a newer aimm-store format, and a file that is no database, naming the file', async () => {
    const { dir, remove } = tempDir();
    try {
      const path = join(dir, 'm.db');
      await (await open(path)).close();
      const db = new Database(path);
      db.prepare(`UPDATE aimm_store_info SET value = '99' WHERE key = 'schema_version'`).run();
      db.close();
      await assert.rejects(open(path), (err: unknown) => {
        assert.ok(err instanceof BackendError);
        assert.equal(err.code, 'invalid');
        assert.ok(err.message.includes(path));
        assert.match(err.message, /format version 99/);
        return true;
      });

      const junk = join(dir, 'junk.db');
      writeFileSync(junk, Buffer.alloc(4096, 'not a database '));
      await assert.rejects(open(junk), (err: unknown) => {
        assert.ok(err instanceof BackendError);
        assert.equal(err.code, 'invalid');
        assert.ok(err.message.includes(junk));
        return true;
      });
    } finally {
      remove();
    }
  });
});
