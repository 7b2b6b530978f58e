/**
 * `export`, `import` and `migrate` as child processes on real stores: an AIMM sqlite file (AIMM's
 * DDL and statements, ids with gaps) exported and imported byte-exact, re-runs idempotent,
 * conflicts reported and nothing overwritten, migrate into the event backend on the Hat test peer,
 * and a migrate killed (-9) part-way then run again ending identical to an uninterrupted one.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { Event } from '../../src/hat/eventer/common.js';
import { MAIN, runCli, tempDir, writeJson } from '../daemon/harness.js';
import { type HatPeer, startHatPeer } from '../peer/hat-peer.js';

const { dir, cleanup } = tempDir('aimm-transfer-');
const T = { timeout: 120_000 };
let peer: HatPeer;

before(async () => {
  peer = await startHatPeer({ flushDelayMs: 5 });
});
after(async () => {
  await peer.close();
  cleanup();
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** An AIMM sqlite file as AIMM writes it: its DDL, autocommit inserts, a few deletes (id gaps). */
function aimmFile(path: string, count: number, size: number): Map<number, [string, Buffer]> {
  const db = new Database(path);
  db.exec(`CREATE TABLE IF NOT EXISTS models (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            instance BLOB
        );`);
  const models = new Map<number, [string, Buffer]>();
  for (let i = 0; i < count; i++) {
    const type = `plugins.m${i % 3}`;
    const bytes = randomBytes(size + (i % 7));
    const id = Number(
      db.prepare('INSERT INTO models (type, instance) VALUES (:type, :instance)').run({
        type,
        instance: bytes,
      }).lastInsertRowid,
    );
    models.set(id, [type, bytes]);
  }
  for (const id of [2, 5]) {
    if (id <= count) {
      db.prepare('DELETE FROM models WHERE id = ?').run(id);
      models.delete(id);
    }
  }
  db.close();
  return models;
}

function readSqlite(path: string): Map<number, [string, string]> {
  const db = new Database(path, { readonly: true });
  const rows = db.prepare('SELECT id, type, instance FROM models ORDER BY id').all() as {
    id: number;
    type: string;
    instance: Buffer;
  }[];
  db.close();
  return new Map(rows.map((r) => [r.id, [r.type, sha(r.instance)]]));
}

const expected = (m: Map<number, [string, Buffer]>) =>
  new Map([...m].map(([id, [type, b]]) => [id, [type, sha(b)] as [string, string]]));

/** A daemon's config has controls; the commands use only its backend and hat sections. */
const CONTROLS = [
  { module: 'aimm-store/controls/juggler', server: { host: '127.0.0.1', port: 0 } },
];

let n = 0;
function sqliteConf(path: string): string {
  return writeJson(join(dir, `sqlite-${++n}.json`), {
    backend: { module: 'aimm-store/backends/sqlite', path },
    control: CONTROLS,
  });
}
function eventConf(prefix: string): string {
  return writeJson(join(dir, `event-${++n}.json`), {
    backend: { module: 'aimm-store/backends/event', model_prefix: ['aimm', prefix] },
    hat: { eventer_server: { host: peer.host, port: peer.port } },
    control: CONTROLS,
  });
}

/** Hat's view of a prefix: per id, the last event's type and bytes' hash (tombstones dropped). */
function hatModels(prefix: string): Map<number, [string, string]> {
  const last = new Map<number, Event>();
  for (const e of peer.events) {
    if (e.type.length === 3 && e.type[0] === 'aimm' && e.type[1] === prefix)
      last.set(Number(e.type[2]), e);
  }
  const out = new Map<number, [string, string]>();
  for (const [id, e] of [...last].sort((a, b) => a[0] - b[0])) {
    if (e.payload === null || e.payload.kind !== 'json') continue;
    const p = JSON.parse(e.payload.text) as { type: string; instance: string };
    out.set(id, [p.type, sha(Buffer.from(p.instance, 'base64'))]);
  }
  return out;
}

function report(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as Record<string, unknown>;
}

describe('export, import, migrate', () => {
  test(
    'AIMM file → archive → new sqlite store: byte-exact, ids kept; re-run idempotent; conflicts reported',
    T,
    async () => {
      const aimm = join(dir, 'aimm.db');
      const models = aimmFile(aimm, 40, 3000);
      const archive = join(dir, 'models.tar');
      const ex = await runCli(['export', '--conf', sqliteConf(aimm), '-o', archive]);
      assert.equal(ex.code, 0, ex.stderr);
      assert.equal(report(ex.stdout).created, models.size);

      const target = join(dir, 'target.db');
      const targetConf = sqliteConf(target);
      const im = await runCli(['import', '--conf', targetConf, archive]);
      assert.equal(im.code, 0, im.stderr);
      assert.deepEqual(
        [report(im.stdout).created, report(im.stdout).verified],
        [models.size, models.size],
      );
      assert.deepEqual(readSqlite(target), expected(models));
      const again = await runCli(['import', '--conf', targetConf, archive]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(
        [report(again.stdout).created, report(again.stdout).present],
        [0, models.size],
      );

      // A store that holds other bytes under id 3: reported, not overwritten; the rest imported.
      const other = join(dir, 'other.db');
      const db = new Database(other);
      db.exec(
        'CREATE TABLE models (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, instance BLOB)',
      );
      db.prepare('INSERT INTO models (id, type, instance) VALUES (3, ?, ?)').run(
        'mine',
        Buffer.from('mine'),
      );
      db.close();
      const conflict = await runCli(['import', '--conf', sqliteConf(other), archive]);
      assert.equal(conflict.code, 1);
      assert.match(conflict.stderr, /model 3: the target holds other bytes under id 3/);
      const r = report(conflict.stdout);
      assert.equal(r.created, models.size - 1);
      assert.deepEqual(readSqlite(other).get(3), ['mine', sha(Buffer.from('mine'))]);

      // --remap: the conflicting model gets a new id; a second run finds everything present.
      const remap = await runCli(['import', '--conf', sqliteConf(other), archive, '--remap']);
      assert.equal(remap.code, 0, remap.stderr);
      assert.equal(report(remap.stdout).created, 1);
      const remapAgain = await runCli(['import', '--conf', sqliteConf(other), archive, '--remap']);
      assert.deepEqual(
        [report(remapAgain.stdout).created, report(remapAgain.stdout).present],
        [0, models.size],
      );
    },
  );

  test(
    'migrate AIMM sqlite → Hat event backend, ids kept, verified; again: nothing to do',
    T,
    async () => {
      const aimm = join(dir, 'aimm2.db');
      const models = aimmFile(aimm, 30, 2000);
      const to = eventConf('m1');
      const m = await runCli(['migrate', '--from', sqliteConf(aimm), '--to', to]);
      assert.equal(m.code, 0, m.stderr);
      assert.deepEqual(
        [report(m.stdout).created, report(m.stdout).verified],
        [models.size, models.size],
      );
      assert.deepEqual(hatModels('m1'), expected(models));
      const again = await runCli(['migrate', '--from', sqliteConf(aimm), '--to', to]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(
        [report(again.stdout).created, report(again.stdout).present],
        [0, models.size],
      );
      // And back: Hat → a new sqlite file.
      const back = join(dir, 'back.db');
      const b = await runCli(['migrate', '--from', to, '--to', sqliteConf(back)]);
      assert.equal(b.code, 0, b.stderr);
      assert.deepEqual(readSqlite(back), expected(models));
    },
  );

  test(
    'a migrate killed with SIGKILL part-way, run again, ends as an uninterrupted one',
    T,
    async () => {
      const aimm = join(dir, 'aimm3.db');
      const models = aimmFile(aimm, 120, 20_000);
      const from = sqliteConf(aimm);
      const straight = await runCli(['migrate', '--from', from, '--to', eventConf('straight')]);
      assert.equal(straight.code, 0, straight.stderr);

      const to = eventConf('killed');
      for (const after of [10, 60]) {
        const child = spawn(process.execPath, [MAIN, 'migrate', '--from', from, '--to', to], {
          stdio: 'ignore',
        });
        const exited = new Promise((r) => child.on('exit', r));
        const stop = peer.onRegistered(() => {
          if (hatModels('killed').size >= after) child.kill('SIGKILL');
        });
        await exited;
        stop();
      }
      assert.ok(hatModels('killed').size < models.size, 'the kills interrupted the migration');
      const resumed = await runCli(['migrate', '--from', from, '--to', to]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.deepEqual(hatModels('killed'), hatModels('straight'));
      assert.deepEqual(hatModels('killed'), expected(models));
    },
  );
});
