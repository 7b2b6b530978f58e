/**
 * The sqlite backend's `page_size`: a file it creates gets the configured size (default 4096); an
 * existing file keeps its own (AIMM's, or one created earlier with another size) and stays
 * readable and writable by AIMM's plain connection; values that are not a power of two from 512
 * to 65536 are refused naming the config path and rule.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { BackendError } from '../../src/backend/types.js';
import { create, type SqliteBackend } from '../../src/backends/sqlite.js';
import { testContext, withTempDir } from './support/context.js';

const AIMM_DDL = `
        CREATE TABLE IF NOT EXISTS models (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            instance BLOB
        );`;

const MiB = 1024 * 1024;

function open(path: string, extra: Record<string, unknown> = {}): Promise<SqliteBackend> {
  return create(
    { module: 'aimm-store/backends/sqlite', path, busy_timeout_ms: 100, ...extra },
    testContext(),
  );
}

/** The page size recorded in the file, read by a connection of its own. */
function filePageSize(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return Number(db.pragma('page_size', { simple: true }));
  } finally {
    db.close();
  }
}

/** A recognisable blob spanning many overflow pages. */
function blob(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return b;
}

function same(got: Uint8Array | undefined, want: Buffer): boolean {
  return got !== undefined && Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want);
}

describe('sqlite backend: page_size', () => {
  it('a file it creates gets 4096 by default, or the configured size', async () => {
    await withTempDir(async (dir) => {
      for (const [name, extra, want] of [
        ['default.db', {}, 4096],
        ['mid.db', { page_size: 16384 }, 16384],
        ['small.db', { page_size: 4096 }, 4096],
        ['large.db', { page_size: 65536 }, 65536],
      ] as const) {
        const path = join(dir, name);
        const b = await open(path, extra);
        try {
          assert.equal(b.settings().pageSize, want, name);
          await b.createModel('t', blob(MiB, 1));
        } finally {
          await b.close();
        }
        assert.equal(filePageSize(path), want, `${name} after close`);
        const again = await open(path, extra);
        try {
          assert.ok(same((await again.getModel(1))?.instance, blob(MiB, 1)), name);
        } finally {
          await again.close();
        }
      }
    });
  });

  it('a file created earlier with another size keeps it (no implicit VACUUM)', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'ours.db');
      const first = await open(path, { page_size: 8192 });
      await first.createModel('t', blob(MiB, 2));
      await first.close();
      const b = await open(path, { page_size: 65536 });
      try {
        assert.equal(b.settings().pageSize, 8192);
        await b.createModel('t', blob(MiB, 3));
        assert.ok(same((await b.getModel(1))?.instance, blob(MiB, 2)));
      } finally {
        await b.close();
      }
      assert.equal(filePageSize(path), 8192);
    });
  });

  it("an AIMM-created file keeps its page size and stays readable and writable by AIMM's connection", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'aimm.db');
      let db = new Database(path);
      db.exec(AIMM_DDL);
      const aimmSize = Number(db.pragma('page_size', { simple: true }));
      db.prepare('INSERT INTO models (type, instance) VALUES (?, ?)').run('aimm.A', blob(MiB, 4));
      db.close();
      const configured = aimmSize === 65536 ? 4096 : 65536;

      const b = await open(path, { page_size: configured });
      try {
        assert.equal(b.settings().pageSize, aimmSize);
        assert.ok(same((await b.getModel(1))?.instance, blob(MiB, 4)));
        await b.createModel('ours.B', blob(3 * MiB, 5));
        await b.updateModel(1, 'aimm.A', blob(2 * MiB, 6));
      } finally {
        await b.close();
      }
      assert.equal(filePageSize(path), aimmSize);

      db = new Database(path);
      try {
        db.exec(AIMM_DDL);
        const read = (id: number) =>
          (db.prepare('SELECT instance FROM models WHERE id = ?').get(id) as { instance: Buffer })
            .instance;
        assert.ok(read(1).equals(blob(2 * MiB, 6)));
        assert.ok(read(2).equals(blob(3 * MiB, 5)));
        db.prepare('INSERT INTO models (type, instance) VALUES (?, ?)').run('aimm.C', blob(MiB, 7));
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      } finally {
        db.close();
      }
      const again = await open(path, { page_size: configured });
      try {
        assert.ok(same((await again.getModel(3))?.instance, blob(MiB, 7)));
      } finally {
        await again.close();
      }
    });
  });

  it('refuses a page size that is not a power of two from 512 to 65536, naming path and rule', async () => {
    await withTempDir(async (dir) => {
      for (const bad of [10_000, 256, 131072, 0, '16384', 16384.5]) {
        await assert.rejects(
          open(join(dir, 'never.db'), { page_size: bad }),
          (err: unknown) => {
            assert.ok(err instanceof BackendError);
            assert.equal(err.code, 'invalid');
            assert.match(
              err.message,
              /\$\.backend\.page_size: must be one of 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, not .* \(rule: enum\)/,
            );
            return true;
          },
          `page_size ${bad}`,
        );
      }
    });
  });
});
