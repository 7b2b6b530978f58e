/**
 * The SQLite file: opening (folders, exclusive lock, page size of a new file, WAL, schema,
 * reconciliation, hash backfill), reads, and one batch of writes in one transaction (a savepoint
 * per write only when one of them fails). Synchronous, like better-sqlite3; the backend around it
 * does queueing, change events and metrics.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { sha256Hex } from '../../backend/sha256.js';
import {
  BackendError,
  type ByteSpan,
  type HistoryOptions,
  type Model,
  type ModelMeta,
  type ModelRange,
  type ModelRevision,
} from '../../backend/types.js';
import { BLOB_IO_MIN_BYTES, BlobIo, largeValueColumns } from '../../common/sqlite-blob-io.js';
import type { SqliteOptions } from './conf.js';
import {
  archivedMetaOf,
  installSchema,
  REVISION_ARCHIVED_KEY,
  type ReconcileReport,
} from './schema.js';
import type { Outcome } from './write-queue.js';

/** What every write that stores bytes carries. `contentType` undefined: unknown. */
interface BytesOp {
  modelType: string;
  instance: Buffer;
  sha256: string;
  contentType: string | undefined;
}

export type WriteOp =
  | ({ kind: 'create' } & BytesOp)
  | ({ kind: 'createAt'; instanceId: number } & BytesOp)
  | ({ kind: 'update'; instanceId: number; expectedRevision: number | undefined } & BytesOp)
  | { kind: 'delete'; instanceId: number; expectedRevision: number | undefined };

export type WriteOutcome =
  | { change: 'created' | 'updated'; meta: ModelMeta }
  | { change: 'deleted'; instanceId: number; modelType: string; revision: number };

interface MetaRow {
  id: number;
  type: string;
  revision: number;
  size: number;
  sha256: string | null;
  updated: string;
  /** The content type recorded for this very revision, if any. */
  content_type: string | null;
}

interface HistoryRow extends MetaRow {
  deleted: number;
  origin: string | null;
  available: number;
}

export interface OpenReport extends ReconcileReport {
  models: number;
  /** Whether large models go through blob handles (`blob_io`), and if not, why. */
  blobIo: { on: true } | { on: false; why: string };
  /** Models whose hash was computed at open (written by another program). */
  hashed: number;
}

/** The content type recorded for the meta row `s` (NULL unless recorded for its revision). */
const CONTENT_TYPE = `(SELECT c.content_type FROM aimm_store_content_type c
                        WHERE c.id = s.id AND c.revision = s.revision) AS content_type`;

export class SqliteStore {
  private closed = false;
  /**
   * Since open: models written, reads (whole or ranges) and replaced revisions archived through
   * blob handles.
   */
  readonly blobIoUse = { writes: 0, reads: 0, archives: 0 };
  private readonly stmt;

  private constructor(
    readonly path: string,
    private readonly db: Database.Database,
    /** Blob handles for large models; undefined: whole values through better-sqlite3. */
    private readonly blobIo: BlobIo | undefined,
  ) {
    const p = (sql: string) => db.prepare(sql);
    this.stmt = {
      begin: p('BEGIN IMMEDIATE'),
      commit: p('COMMIT'),
      rollback: p('ROLLBACK'),
      savepoint: p('SAVEPOINT w'),
      release: p('RELEASE w'),
      rollbackTo: p('ROLLBACK TO w'),
      insert: p('INSERT INTO models (type, instance) VALUES (?, ?)'),
      insertAt: p('INSERT INTO models (id, type, instance) VALUES (?, ?, ?)'),
      // A large model's row: its bytes are then copied in through a blob handle.
      insertZero: p('INSERT INTO models (type, instance) VALUES (?, zeroblob(?))'),
      insertAtZero: p('INSERT INTO models (id, type, instance) VALUES (?, ?, zeroblob(?))'),
      updateZero: p('UPDATE models SET type = ?, instance = zeroblob(?) WHERE id = ?'),
      blobSize: p(
        `SELECT length(instance) FROM models WHERE id = ? AND typeof(instance) = 'blob'`,
      ).pluck(),
      // The revision about to be replaced, its bytes then copied in through blob handles. (VALUES,
      // not INSERT … SELECT: that expands the zeroblob, 2× the model measured.)
      archivedMeta: p(archivedMetaOf('?')),
      markArchived: p(
        `INSERT OR REPLACE INTO aimm_store_info (key, value) VALUES ('${REVISION_ARCHIVED_KEY}', ?)`,
      ),
      unmarkArchived: p(`DELETE FROM aimm_store_info WHERE key = '${REVISION_ARCHIVED_KEY}'`),
      archiveZero: p(
        `INSERT OR REPLACE INTO aimm_store_history
                (id, revision, type, size, sha256, updated, deleted, origin, instance, content_type)
         VALUES (@id, @revision, @type, @size, @sha256, @updated, @deleted, @origin,
                 zeroblob(@bytes), @content_type)`,
      ),
      used: p('SELECT revision, deleted FROM aimm_store_model_meta WHERE id = ?'),
      occupied: p('SELECT 1 AS one FROM models WHERE id = ?'),
      update: p('UPDATE models SET type = ?, instance = ? WHERE id = ?'),
      delete: p('DELETE FROM models WHERE id = ?'),
      // (A separate SELECT is measurably cheaper than UPDATE ... RETURNING.)
      setHash: p(
        `UPDATE aimm_store_model_meta SET sha256 = ?, size = ?, origin = 'local' WHERE id = ?`,
      ),
      backfillHash: p('UPDATE aimm_store_model_meta SET sha256 = ?, size = ? WHERE id = ?'),
      setContentType: p(
        `INSERT OR REPLACE INTO aimm_store_content_type (id, revision, content_type)
         SELECT id, revision, ? FROM aimm_store_model_meta WHERE id = ?`,
      ),
      history: p(
        `SELECT id, revision, type, size, sha256, updated, deleted, origin, content_type,
                instance IS NOT NULL AS available
           FROM aimm_store_history WHERE id = ? AND revision > ? ORDER BY revision LIMIT ?`,
      ),
      currentRevision: p(
        `SELECT id, revision, type, size, sha256, updated, deleted, origin, ${CONTENT_TYPE},
                1 - deleted AS available
           FROM aimm_store_model_meta s WHERE id = ? AND revision > ?`,
      ),
      // (typeof(), not IS NOT NULL: that loads the value.)
      oldRevision: p(
        `SELECT rowid AS row, id, type, revision, size, sha256, updated, content_type,
                ${largeValueColumns('instance', blobIo !== undefined)}
           FROM aimm_store_history
          WHERE id = ? AND revision = ? AND deleted = 0 AND typeof(instance) <> 'null'`,
      ),
      historyInstance: p('SELECT instance FROM aimm_store_history WHERE rowid = ?').pluck(),
      setOldHash: p('UPDATE aimm_store_history SET sha256 = ? WHERE id = ? AND revision = ?'),
      pruneOlderThan: p(
        `DELETE FROM aimm_store_history WHERE updated < ?
            AND revision < (SELECT m.revision FROM aimm_store_model_meta m
                             WHERE m.id = aimm_store_history.id)`,
      ),
      meta: p(
        `SELECT id, type, revision, size, sha256, updated, ${CONTENT_TYPE}
           FROM aimm_store_model_meta s WHERE id = ?`,
      ),
      // Two columns instead of the whole row with its content-type lookup: ≈ 1 µs less per write.
      written: p('SELECT revision, updated FROM aimm_store_model_meta WHERE id = ?'),
      current: p(
        `SELECT s.type AS type, s.revision AS revision, s.size AS size
           FROM aimm_store_model_meta s WHERE s.id = ? AND s.deleted = 0`,
      ),
      tombstone: p('SELECT type, revision FROM aimm_store_model_meta WHERE id = ?'),
      list: p(
        `SELECT id, type, revision, size, sha256, updated, ${CONTENT_TYPE}
           FROM aimm_store_model_meta s WHERE deleted = 0 ORDER BY id`,
      ),
      listPage: p(
        `SELECT id, type, revision, size, sha256, updated, ${CONTENT_TYPE}
           FROM aimm_store_model_meta s WHERE deleted = 0 AND id > ? ORDER BY id LIMIT ?`,
      ),
      // With blob handles a large model's bytes are read through one, not loaded with the row
      // (typeof() and length() read a value's type and size from the record header alone).
      get: p(
        `SELECT m.id AS id, m.type AS type, s.revision AS revision, s.size AS size,
                s.sha256 AS sha256, s.updated AS updated, ${CONTENT_TYPE},
                ${largeValueColumns('m.instance', blobIo !== undefined)}
           FROM models m JOIN aimm_store_model_meta s ON s.id = m.id WHERE m.id = ?`,
      ),
      instance: p('SELECT instance FROM models WHERE id = ?'),
      liveMeta: p(
        `SELECT s.id AS id, s.type AS type, s.revision AS revision, s.size AS size,
                s.sha256 AS sha256, s.updated AS updated, ${CONTENT_TYPE}
           FROM aimm_store_model_meta s WHERE s.id = ? AND s.deleted = 0`,
      ),
      // substr() of a BLOB counts bytes (1-based); CAST keeps another writer's TEXT as bytes.
      part: p('SELECT substr(CAST(instance AS BLOB), ?, ?) AS part FROM models WHERE id = ?'),
      count: p('SELECT count(*) AS n FROM aimm_store_model_meta WHERE deleted = 0'),
      unhashed: p(
        'SELECT id FROM aimm_store_model_meta WHERE deleted = 0 AND sha256 IS NULL ORDER BY id',
      ),
    };
  }

  /**
   * Opens (or creates) the file and takes it for this process: SQLite's exclusive locking mode
   * holds the file's lock from the first transaction until close, so a second aimm-store (another
   * process, or another backend in this one) is refused instead of writing beside us.
   */
  static open(options: SqliteOptions): { store: SqliteStore; report: OpenReport } {
    const { path } = options;
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (err) {
      throw new BackendError(
        'unavailable',
        `cannot create the folder of sqlite file '${path}': ${messageOf(err)}`,
        { cause: err },
      );
    }
    let db: Database.Database;
    try {
      db = new Database(path, { timeout: options.busyTimeoutMs });
    } catch (err) {
      throw new BackendError(
        'unavailable',
        `cannot open sqlite file '${path}': ${messageOf(err)}`,
        {
          cause: err,
        },
      );
    }
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      // Only a file without pages yet takes the configured size (before WAL writes the header);
      // an existing one keeps its own: changing it would need a VACUUM, never done implicitly.
      if (Number(db.pragma('page_count', { simple: true })) === 0) {
        db.pragma(`page_size = ${options.pageSize}`);
      }
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`cannot switch to WAL (journal mode stays '${mode}')`);
      db.pragma(`synchronous = ${options.synchronous.toUpperCase()}`);
      db.exec('BEGIN EXCLUSIVE');
      let reconciled: ReconcileReport;
      try {
        reconciled = installSchema(db, path, options.history.keep);
        db.exec('COMMIT');
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      }
      const loaded =
        options.blobIo === 'off'
          ? { io: undefined, why: 'blob_io is off in the configuration' }
          : BlobIo.load(db);
      const store = new SqliteStore(path, db, loaded.io);
      const hashed = store.backfillHashes();
      const blobIo =
        loaded.io !== undefined ? { on: true as const } : { on: false as const, why: loaded.why };
      return { store, report: { ...reconciled, hashed, models: store.count(), blobIo } };
    } catch (err) {
      db.close();
      throw openError(path, err);
    }
  }

  /** Computes the hash of models written by someone else (their triggers leave it NULL). */
  private backfillHashes(): number {
    const ids = (this.stmt.unhashed.all() as { id: number }[]).map((r) => r.id);
    const chunk = 64;
    for (let i = 0; i < ids.length; i += chunk) {
      this.db.transaction(() => {
        for (const id of ids.slice(i, i + chunk)) {
          const bytes = this.instanceOf(id);
          this.stmt.backfillHash.run(sha256Hex(bytes), bytes.length, id);
        }
      })();
    }
    return ids.length;
  }

  /** Whether `instanceId` holds a model now (a hint: the write's transaction checks again). */
  isLive(instanceId: number): boolean {
    this.checkOpen();
    return this.stmt.current.get(instanceId) !== undefined;
  }

  count(): number {
    this.checkOpen();
    return (this.stmt.count.get() as { n: number }).n;
  }

  /** Metadata of every model, ascending by id. */
  list(): ModelMeta[] {
    this.checkOpen();
    return (this.stmt.list.all() as MetaRow[]).map((r) => this.metaOf(r));
  }

  /** Live models with an id above `after`, ascending, at most `limit` (a keyset query). */
  listPage(after: number, limit: number): ModelMeta[] {
    this.checkOpen();
    return (this.stmt.listPage.all(after, limit) as MetaRow[]).map((r) => this.metaOf(r));
  }

  get(instanceId: number): Model | null {
    this.checkOpen();
    const row = this.stmt.get.get(instanceId) as
      | (MetaRow & { instance: unknown; large: number })
      | undefined;
    if (row === undefined) return null;
    const instance =
      row.large === 1
        ? this.throughHandle('models', instanceId, () => this.instanceOf(instanceId))
        : toBuffer(row.instance);
    const meta = this.metaOf(row, instance);
    return { ...meta, instance };
  }

  /**
   * A model's metadata and the span `pick` chooses, read in one go (no write can come between:
   * the store is synchronous). Only the span's bytes reach JavaScript.
   */
  range(instanceId: number, pick: (meta: ModelMeta) => ByteSpan | null): ModelRange | null {
    this.checkOpen();
    const row = this.stmt.liveMeta.get(instanceId) as MetaRow | undefined;
    if (row === undefined) return null;
    const meta = this.metaOf(row);
    const span = pick(meta);
    if (span === null || span.end <= span.start) return { meta, span, bytes: Buffer.alloc(0) };
    if (this.blobIo !== undefined && meta.size >= BLOB_IO_MIN_BYTES) {
      // Only the span's pages: substr() below loads the whole value first.
      const length = span.end - span.start;
      const bytes = this.blobIo.read('models', 'instance', instanceId, span.start, length);
      if (bytes !== undefined) {
        this.blobIoUse.reads++;
        return { meta, span, bytes };
      }
    }
    const r = this.stmt.part.get(span.start + 1, span.end - span.start, instanceId) as
      | { part: unknown }
      | undefined;
    return { meta, span, bytes: toBuffer(r?.part) };
  }

  /**
   * The revisions of `instanceId` above `after`, oldest first: the archived ones, then the current
   * one (the meta row). Null when the id was never used.
   */
  history(instanceId: number, options: HistoryOptions = {}): ModelRevision[] | null {
    this.checkOpen();
    const after = options.after ?? 0;
    const limit = Math.max(1, options.limit ?? 1000);
    const rows = this.stmt.history.all(instanceId, after, limit) as HistoryRow[];
    if (rows.length < limit) {
      const cur = this.stmt.currentRevision.get(instanceId, after) as HistoryRow | undefined;
      if (cur !== undefined) rows.push(cur);
      else if (rows.length === 0 && this.stmt.tombstone.get(instanceId) === undefined) return null;
    }
    const current = (this.stmt.tombstone.get(instanceId) as { revision: number } | undefined)
      ?.revision;
    return rows.map((r) => ({
      instanceId: r.id,
      revision: r.revision,
      modelType: r.type,
      size: r.deleted === 1 ? 0 : r.size,
      sha256: r.deleted === 1 ? null : (r.sha256 ?? this.hashOf(r)),
      updated: r.updated,
      deleted: r.deleted === 1,
      // aimm-store marks its own writes in the same transaction; NULL is anyone else's.
      origin: r.origin === 'local' ? 'local' : 'remote',
      available: r.available === 1,
      current: r.revision === current,
      ...(r.deleted === 0 && r.content_type !== null ? { contentType: r.content_type } : {}),
    }));
  }

  /** One revision with its bytes: the current one from `models`, an earlier one from the history. */
  revision(instanceId: number, revision: number): Model | null {
    this.checkOpen();
    // The current revision only when asked for (not its bytes read to compare revisions).
    const current = this.stmt.current.get(instanceId) as { revision: number } | undefined;
    if (current?.revision === revision) {
      const model = this.get(instanceId);
      if (model !== null && model.revision === revision) return model;
    }
    const row = this.stmt.oldRevision.get(instanceId, revision) as
      | (MetaRow & { row: number; instance: unknown; large: number })
      | undefined;
    if (row === undefined) return null;
    const instance =
      row.large === 1
        ? this.throughHandle('aimm_store_history', row.row, () =>
            this.stmt.historyInstance.get(row.row),
          )
        : toBuffer(row.instance);
    let { sha256 } = row;
    if (sha256 === null) {
      sha256 = sha256Hex(instance);
      this.stmt.setOldHash.run(sha256, instanceId, revision);
    }
    return {
      instanceId: row.id,
      modelType: row.type,
      revision: row.revision,
      size: instance.length,
      sha256,
      updated: row.updated,
      ...(row.content_type !== null ? { contentType: row.content_type } : {}),
      instance,
    };
  }

  /** Drops archived revisions written before `cutoff` (ISO time); the current ones stay. */
  pruneHistory(cutoff: string): number {
    this.checkOpen();
    return this.stmt.pruneOlderThan.run(cutoff).changes;
  }

  /** The hash of an archived revision written by another program (computed once, then stored). */
  private hashOf(row: HistoryRow): string | null {
    if (row.available !== 1) return null;
    return this.revision(row.id, row.revision)?.sha256 ?? null;
  }

  /**
   * Runs `ops` in one transaction (all at once; when one fails, again with a savepoint each): one
   * outcome per op, in order. `committed` says whether the transaction committed (when it did not,
   * every op failed and nothing is stored).
   */
  applyBatch(ops: readonly WriteOp[]): { committed: boolean; outcomes: Outcome<WriteOutcome>[] } {
    this.checkOpen();
    const outcomes: Outcome<WriteOutcome>[] = [];
    try {
      this.stmt.begin.run();
      if (ops.length === 1) {
        // Alone in its transaction: a failure rolls the whole transaction back, no savepoint needed.
        const value = this.applyOne(ops[0] as WriteOp);
        this.stmt.commit.run();
        return { committed: true, outcomes: [{ ok: true, value }] };
      }
      const values = this.tryAll(ops);
      if (values !== null) {
        this.stmt.commit.run();
        return { committed: true, outcomes: values.map((value) => ({ ok: true, value })) };
      }
      // One op failed: everything was rolled back; again, with a savepoint per op.
      this.stmt.begin.run();
      for (const op of ops) {
        this.stmt.savepoint.run();
        try {
          const value = this.applyOne(op);
          this.stmt.release.run();
          outcomes.push({ ok: true, value });
        } catch (err) {
          // SQLite rolled the whole transaction back (I/O error, disk full): nothing is stored.
          if (!this.db.inTransaction) throw err;
          this.stmt.rollbackTo.run();
          this.stmt.release.run();
          outcomes.push({ ok: false, error: writeError(this.path, err) });
        }
      }
      this.stmt.commit.run();
      return { committed: true, outcomes };
    } catch (err) {
      if (this.db.inTransaction) {
        try {
          this.stmt.rollback.run();
        } catch {
          // the error below is what the writers learn
        }
      }
      const error = ops.length === 1 ? writeError(this.path, err) : storageError(this.path, err);
      return { committed: false, outcomes: ops.map(() => ({ ok: false, error })) };
    }
  }

  /**
   * Every op of a batch without a savepoint each (two statements fewer per write: the usual case
   * is that none fails). When one fails, the transaction is rolled back and null returned.
   */
  private tryAll(ops: readonly WriteOp[]): WriteOutcome[] | null {
    const values: WriteOutcome[] = [];
    try {
      for (const op of ops) values.push(this.applyOne(op));
      return values;
    } catch (err) {
      // SQLite rolled the whole transaction back itself (I/O error, disk full): nothing is stored.
      if (!this.db.inTransaction) throw err;
      this.stmt.rollback.run();
      return null;
    }
  }

  private applyOne(op: WriteOp): WriteOutcome {
    const io = this.blobIoFor(op);
    if (op.kind === 'create') {
      const { lastInsertRowid } =
        io === undefined
          ? this.stmt.insert.run(op.modelType, op.instance)
          : this.stmt.insertZero.run(op.modelType, op.instance.length);
      const id = Number(lastInsertRowid);
      io?.write('models', 'instance', id, op.instance);
      return { change: 'created', meta: this.finishWrite(id, op) };
    }
    if (op.kind === 'createAt') {
      this.checkUnused(op.instanceId);
      if (io === undefined) this.stmt.insertAt.run(op.instanceId, op.modelType, op.instance);
      else {
        this.stmt.insertAtZero.run(op.instanceId, op.modelType, op.instance.length);
        io.write('models', 'instance', op.instanceId, op.instance);
      }
      return { change: 'created', meta: this.finishWrite(op.instanceId, op) };
    }
    const cur = this.stmt.current.get(op.instanceId) as
      | { type: string; revision: number; size: number }
      | undefined;
    if (cur === undefined) {
      throw new BackendError('not_found', `model ${op.instanceId} not found`);
    }
    if (op.expectedRevision !== undefined && op.expectedRevision !== cur.revision) {
      throw new BackendError(
        'revision_conflict',
        `model ${op.instanceId} is at revision ${cur.revision}, expected ${op.expectedRevision}`,
      );
    }
    const archived = cur.size >= BLOB_IO_MIN_BYTES && this.archiveLarge(op.instanceId);
    try {
      if (op.kind === 'update') {
        if (io === undefined) this.stmt.update.run(op.modelType, op.instance, op.instanceId);
        else this.stmt.updateZero.run(op.modelType, op.instance.length, op.instanceId);
      } else this.stmt.delete.run(op.instanceId);
    } finally {
      if (archived) this.stmt.unmarkArchived.run();
    }
    if (op.kind === 'update') {
      io?.write('models', 'instance', op.instanceId, op.instance);
      return { change: 'updated', meta: this.finishWrite(op.instanceId, op) };
    }
    const t = this.stmt.tombstone.get(op.instanceId) as { type: string; revision: number };
    return {
      change: 'deleted',
      instanceId: op.instanceId,
      modelType: t.type,
      revision: t.revision,
    };
  }

  /**
   * Archives the large model `id` holds before it is replaced or deleted, when the history keeps
   * revisions: its bytes copied into the history row through blob handles, and the mark set that
   * tells the trigger (which would read them whole, and copy them whole into the row) to leave the
   * history alone; the caller clears the mark after its statement. True when it archived.
   */
  private archiveLarge(id: number): boolean {
    if (this.blobIo === undefined) return false;
    const size = this.stmt.blobSize.get(id) as number | undefined;
    if (size === undefined || size < BLOB_IO_MIN_BYTES) return false;
    const meta = this.stmt.archivedMeta.get(id) as Record<string, unknown> | undefined;
    if (meta === undefined) return false; // the history keeps nothing
    const { lastInsertRowid } = this.stmt.archiveZero.run({ ...meta, bytes: size });
    this.blobIo.copy(
      { table: 'models', column: 'instance', rowid: id },
      { table: 'aimm_store_history', column: 'instance', rowid: Number(lastInsertRowid) },
    );
    this.stmt.markArchived.run(String(id));
    this.blobIoUse.archives++;
    return true;
  }

  /** The blob handles when `op` stores a large model and the extension is loaded. */
  private blobIoFor(op: WriteOp): BlobIo | undefined {
    if (op.kind === 'delete' || op.instance.length < BLOB_IO_MIN_BYTES) return undefined;
    if (this.blobIo !== undefined) this.blobIoUse.writes++;
    return this.blobIo;
  }

  /**
   * A chosen id must never have held a model: the side table has a row (tombstones included) for
   * every id used since aimm-store first opened the file. (Ids an AIMM deleted before that are
   * unknown; AUTOINCREMENT's counter moves past the chosen id by itself.)
   */
  private checkUnused(id: number): void {
    const used = this.stmt.used.get(id) as { revision: number; deleted: number } | undefined;
    if (used !== undefined) {
      throw new BackendError(
        'revision_conflict',
        used.deleted === 0
          ? `model ${id} exists (revision ${used.revision})`
          : `model ${id} was deleted (revision ${used.revision}); ids are never reused`,
      );
    }
    if (this.stmt.occupied.get(id) !== undefined) {
      throw new BackendError('revision_conflict', `model ${id} exists`);
    }
  }

  /** Stores the hash the triggers cannot compute and reads back what they wrote. */
  private finishWrite(id: number, op: BytesOp): ModelMeta {
    const { changes } = this.stmt.setHash.run(op.sha256, op.instance.length, id);
    if (op.contentType !== undefined) this.stmt.setContentType.run(op.contentType, id);
    if (changes !== 1) throw noMetadata(id);
    if (!storedAsGiven(op)) {
      const row = this.stmt.meta.get(id) as MetaRow | undefined;
      if (row === undefined) throw noMetadata(id);
      return this.metaOf(row);
    }
    // Only what the triggers chose is read back: the rest is what this write just stored.
    const row = this.stmt.written.get(id) as { revision: number; updated: string } | undefined;
    if (row === undefined) throw noMetadata(id);
    return {
      instanceId: id,
      modelType: op.modelType,
      revision: row.revision,
      size: op.instance.length,
      sha256: op.sha256,
      updated: row.updated,
      ...(op.contentType !== undefined ? { contentType: op.contentType } : {}),
    };
  }

  private metaOf(row: MetaRow, instance?: Buffer): ModelMeta {
    let { sha256, size } = row;
    if (sha256 === null) {
      // Written by another program since open (which the lock should prevent): hash it now.
      const bytes = instance ?? this.instanceOf(row.id);
      sha256 = sha256Hex(bytes);
      size = bytes.length;
    }
    return {
      instanceId: row.id,
      modelType: row.type,
      revision: row.revision,
      size,
      sha256,
      updated: row.updated,
      ...(row.content_type !== null && row.content_type !== undefined
        ? { contentType: row.content_type }
        : {}),
    };
  }

  /**
   * An instance a query left out for its size (`large`), read through a blob handle; `whole`
   * (a query of the whole value) when there is no handle on it.
   */
  private throughHandle(
    table: 'models' | 'aimm_store_history',
    rowid: number,
    whole: () => unknown,
  ): Buffer {
    const bytes = this.blobIo?.read(table, 'instance', rowid);
    if (bytes === undefined) return toBuffer(whole());
    this.blobIoUse.reads++;
    return bytes;
  }

  private instanceOf(id: number): Buffer {
    const row = this.stmt.instance.get(id) as { instance: unknown } | undefined;
    return toBuffer(row?.instance);
  }

  /**
   * Closes the file. It is switched back to a rollback journal first: AIMM opens its file with
   * `nolock=1`, which cannot open a WAL-mode database.
   */
  close(): { journalMode: string | undefined; error?: Error } {
    if (this.closed) return { journalMode: undefined };
    this.closed = true;
    let journalMode: string | undefined;
    let error: Error | undefined;
    try {
      journalMode = String(this.db.pragma('journal_mode = DELETE', { simple: true }));
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    this.db.close();
    return error === undefined ? { journalMode } : { journalMode, error };
  }

  /** The connection's settings, as SQLite reports them (for status pages and tests). */
  settings(): {
    journalMode: string;
    lockingMode: string;
    synchronous: string;
    pageSize: number;
    /** Whether large models go through blob handles. */
    blobIo: boolean;
  } {
    this.checkOpen();
    const levels = ['off', 'normal', 'full', 'extra'];
    const sync = Number(this.db.pragma('synchronous', { simple: true }));
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      lockingMode: String(this.db.pragma('locking_mode', { simple: true })),
      synchronous: levels[sync] ?? String(sync),
      pageSize: Number(this.db.pragma('page_size', { simple: true })),
      blobIo: this.blobIo !== undefined,
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private checkOpen(): void {
    if (this.closed) throw new BackendError('closed', 'backend is closed');
  }
}

/** AIMM stores bytes; a TEXT value (another writer) is served as its UTF-8 bytes, NULL as empty. */
function toBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v === null || v === undefined) return Buffer.alloc(0);
  return Buffer.from(String(v), 'utf8');
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function openError(path: string, err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  const code = codeOf(err);
  if (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED') {
    return new BackendError(
      'unavailable',
      `sqlite file '${path}' is in use by another aimm-store (another process, or another ` +
        'backend in this process): it stays locked while its owner runs; refusing to open it',
      { cause: err },
    );
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new BackendError(
      'invalid',
      `'${path}' is not a usable SQLite database: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  }
  return new BackendError('unavailable', `cannot open sqlite file '${path}': ${messageOf(err)}`, {
    cause: err,
  });
}

/** An error of one write (its savepoint was rolled back; neighbours are unaffected). */
function writeError(path: string, err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  const code = codeOf(err);
  if (code === 'SQLITE_TOOBIG') {
    return new BackendError('too_large', 'instance is larger than SQLite allows', { cause: err });
  }
  if (code.startsWith('SQLITE_CONSTRAINT')) {
    return new BackendError('invalid', `rejected by the database: ${messageOf(err)}`, {
      cause: err,
    });
  }
  return storageError(path, err);
}

/** A failure of the file itself: nothing of the batch was stored. */
function storageError(path: string, err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  const code = codeOf(err);
  const where = path === '' ? 'sqlite' : `sqlite file '${path}'`;
  if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_READONLY') {
    return new BackendError('unavailable', `${where}: write failed: ${messageOf(err)}`, {
      cause: err,
    });
  }
  return new BackendError('internal', `${where}: write failed: ${messageOf(err)}`, { cause: err });
}

function noMetadata(id: number): Error {
  return new Error(`no metadata for model ${id}: are the triggers missing?`);
}

/** A lone UTF-16 surrogate: SQLite gives back U+FFFD characters in its place. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Whether the strings of a write read back from SQLite exactly as given (true unless one holds a
 * lone surrogate), so that the metadata a write returns is what a later read returns.
 */
function storedAsGiven(op: BytesOp): boolean {
  return (
    !LONE_SURROGATE.test(op.modelType) &&
    (op.contentType === undefined || !LONE_SURROGATE.test(op.contentType))
  );
}
