/**
 * The file format. AIMM's `models` table stays exactly as AIMM creates it; what AIMM lacks lives
 * beside it in `aimm_store_model_meta` (one row per id ever used: type, revision, size, sha256,
 * updated, deleted), kept up to date by triggers on `models`. The triggers live in the file and use
 * only SQL that every SQLite since 3.8 knows, so they also fire when AIMM itself (Python's sqlite3)
 * writes the file while aimm-store is not running: revisions stay honest. They leave `sha256` NULL;
 * aimm-store fills it in (for its own writes in the same transaction, for anyone else's at open).
 *
 * Format 2 adds history: before a write or delete replaces a revision, the same triggers copy it
 * (metadata and the old bytes, `OLD.instance`) into `aimm_store_history`, and drop the revisions
 * beyond the retention kept in `aimm_store_info` (`history_keep`, earlier revisions per model
 * besides the current one; no row = keep all). The current revision lives only in `models` and the
 * meta table, so history costs nothing until a model is rewritten. `origin` in the meta table is
 * 'local' for aimm-store's writes and NULL for anyone else's (the triggers cannot tell).
 *
 * Content types (still format 2: additive, an older aimm-store of format 2 opens the file as
 * before): `aimm_store_content_type` holds the media type aimm-store was given with a write,
 * keyed by id and valid only for the revision it names. Any other write (AIMM's, an older
 * aimm-store's) moves the revision on, so the recorded type no longer applies and the model's
 * type is unknown again, without a trigger having to know about the table. The archive copies the
 * type of the revision it archives into `aimm_store_history.content_type` (a nullable column added
 * to older files).
 */
import type { Database } from 'better-sqlite3';
import { BackendError } from '../../backend/types.js';

export const SCHEMA_VERSION = 2;

/** AIMM's table, byte for byte as AIMM's sqlite backend creates it. */
export const MODELS_DDL = `CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    instance BLOB
)`;

const NOW = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;

/**
 * The size in bytes of an instance. A BLOB's length() is read from the record header without
 * loading the value (and without expanding a zeroblob(n) the store writes first: src/common/sqlite-blob-io.ts),
 * where CAST would load it; CAST is only for another writer's TEXT (its length in bytes, not
 * characters); NULL counts 0.
 */
const sizeOf = (value: string) => `CASE WHEN typeof(${value}) = 'blob' THEN length(${value})
    ELSE COALESCE(length(CAST(${value} AS BLOB)), 0) END`;
const SIZE_OF_NEW = sizeOf('NEW.instance');

/** How many earlier revisions to keep (NULL: all), as the triggers read it. */
const KEEP = `(SELECT CAST(value AS INTEGER) FROM aimm_store_info WHERE key = 'history_keep')`;

/** What the history keeps of a revision besides its bytes, from the meta row. */
const ARCHIVED_META = `id, revision, type, size, sha256, updated, deleted, origin`;
const META_OF_ARCHIVED = ARCHIVED_META.split(', ')
  .map((c) => `aimm_store_model_meta.${c}`)
  .join(', ');
const ARCHIVED_CONTENT_TYPE = `(SELECT c.content_type FROM aimm_store_content_type c
           WHERE c.id = aimm_store_model_meta.id AND c.revision = aimm_store_model_meta.revision)`;

/**
 * The meta row of `id` as the history archives it (columns as `aimm_store_history` names them, no
 * bytes), or no row when the retention keeps nothing. The store archives a large model itself
 * from it (src/common/sqlite-blob-io.ts), with the bytes copied in through blob handles.
 */
export function archivedMetaOf(id: string): string {
  return `SELECT ${ARCHIVED_META}, ${ARCHIVED_CONTENT_TYPE} AS content_type
    FROM aimm_store_model_meta WHERE id = ${id} AND COALESCE(${KEEP}, 1) > 0`;
}

/**
 * Copies the meta row of `id` with `bytes` into the history, when the retention keeps anything.
 * `bytes` may name `m.instance` when `from` joins `models m` (see CURRENT).
 */
function archiveRow(
  id: string,
  bytes: string,
  when: string,
  from = 'aimm_store_model_meta',
): string {
  return `INSERT OR REPLACE INTO aimm_store_history (${ARCHIVED_META}, instance, content_type)
  SELECT ${META_OF_ARCHIVED}, ${bytes}, ${ARCHIVED_CONTENT_TYPE}
    FROM ${from}
   WHERE aimm_store_model_meta.id = ${id} AND ${when} AND COALESCE(${KEEP}, 1) > 0`;
}

/**
 * The bytes of the model being archived, as they are before the statement that fired the trigger
 * (a BEFORE trigger's view of `models`): a column of the archive's own row, loaded only when the
 * row passes the WHERE. OLD.instance would be loaded whenever a trigger names it, with history
 * or without; a scalar subquery on OLD.id is a constant SQLite evaluates up front, and a
 * correlated one costs one more copy of the model.
 */
const CURRENT = {
  bytes: 'm.instance',
  from: 'aimm_store_model_meta JOIN models m ON m.id = aimm_store_model_meta.id',
};

/**
 * The store has archived the revision of `id` being replaced itself (a large model, its bytes
 * copied in through blob handles): it sets this mark around its UPDATE or DELETE, in the same
 * transaction, and the trigger leaves the history alone. (A mark in aimm_store_info, evaluated once
 * per statement: a condition on aimm_store_history would make SQLite stage the archive's rows
 * through a temporary table, ≈ 2 µs per update.)
 */
export const REVISION_ARCHIVED_KEY = 'revision_archived';
const NOT_ARCHIVED = (id: string) => `NOT EXISTS (SELECT 1 FROM aimm_store_info
           WHERE key = '${REVISION_ARCHIVED_KEY}' AND value = CAST(${id} AS TEXT))`;

/**
 * Copies the meta row of `id` (the revision about to be replaced) with `bytes` into the history,
 * then drops what the retention no longer keeps (keep 0: the copy itself).
 */
function archive(id: string, bytes: string, when = '1', from?: string): string {
  return `
  ${archiveRow(id, bytes, when, from)};
  DELETE FROM aimm_store_history
   WHERE id = ${id}
     AND revision <= (SELECT revision FROM aimm_store_model_meta WHERE id = ${id}) - ${KEEP};`;
}

/** Sets the meta row of NEW.id to a live model with the next revision (1 if the id is new). */
const UPSERT_NEW = `
  UPDATE aimm_store_model_meta
     SET type = NEW.type, revision = revision + 1, size = ${SIZE_OF_NEW}, sha256 = NULL,
         updated = ${NOW}, deleted = 0, origin = NULL
   WHERE id = NEW.id;
  INSERT INTO aimm_store_model_meta (id, type, revision, size, sha256, updated, deleted, origin)
  SELECT NEW.id, NEW.type, 1, ${SIZE_OF_NEW}, NULL, ${NOW}, 0, NULL
   WHERE NOT EXISTS (SELECT 1 FROM aimm_store_model_meta WHERE id = NEW.id);`;

const TOMBSTONE = `revision = revision + 1, size = 0, sha256 = NULL, updated = ${NOW}, deleted = 1, origin = NULL`;

/**
 * The triggers, dropped and created again at every open (so that an older file gets these). Update
 * and delete run BEFORE the change, so that the revision being replaced is archived with the bytes
 * still in `models`, read only when the retention keeps them (naming `OLD.instance` would make
 * SQLite load the old model for every update and delete); they change no row of `models`. Insert
 * runs AFTER (an autoincrement id is known only then).
 */
const TRIGGERS = [
  `CREATE TRIGGER aimm_store_models_insert AFTER INSERT ON models
BEGIN${archive('NEW.id', 'NULL')}${UPSERT_NEW}
END`,
  `CREATE TRIGGER aimm_store_models_update BEFORE UPDATE OF id, type, instance ON models
BEGIN${archive('OLD.id', CURRENT.bytes, NOT_ARCHIVED('OLD.id'), CURRENT.from)}
  UPDATE aimm_store_model_meta SET ${TOMBSTONE} WHERE id = OLD.id AND OLD.id <> NEW.id;${archive('NEW.id', 'NULL', 'OLD.id <> NEW.id')}${UPSERT_NEW}
END`,
  `CREATE TRIGGER aimm_store_models_delete BEFORE DELETE ON models
BEGIN${archive('OLD.id', CURRENT.bytes, NOT_ARCHIVED('OLD.id'), CURRENT.from)}
  UPDATE aimm_store_model_meta SET ${TOMBSTONE} WHERE id = OLD.id;
END`,
];

const TRIGGER_NAMES = [
  'aimm_store_models_insert',
  'aimm_store_models_update',
  'aimm_store_models_delete',
];

export const SIDE_DDL = [
  `CREATE TABLE IF NOT EXISTS aimm_store_info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)`,
  `CREATE TABLE IF NOT EXISTS aimm_store_model_meta (
    id INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    revision INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT,
    updated TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    origin TEXT
)`,
  `CREATE TABLE IF NOT EXISTS aimm_store_history (
    id INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT,
    updated TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    origin TEXT,
    instance BLOB,
    PRIMARY KEY (id, revision)
)`,
  `CREATE TABLE IF NOT EXISTS aimm_store_content_type (
    id INTEGER PRIMARY KEY,
    revision INTEGER NOT NULL,
    content_type TEXT NOT NULL
)`,
];

export interface ReconcileReport {
  /** Models without meta (an AIMM file opened for the first time): given revision 1. */
  adopted: number;
  /** Meta rows fixed because someone changed `models` while the triggers were missing. */
  repaired: number;
}

/**
 * Creates what is missing (inside the caller's transaction) and brings the side table in line with
 * `models`. Throws when the file was written by a newer aimm-store.
 */
export function installSchema(
  db: Database,
  path: string,
  historyKeep: number | null = null,
): ReconcileReport {
  db.exec(MODELS_DDL);
  for (const ddl of SIDE_DDL) db.exec(ddl);
  const columns = db.prepare('PRAGMA table_info(aimm_store_model_meta)').all() as {
    name: string;
  }[];
  if (!columns.some((c) => c.name === 'origin')) {
    db.exec('ALTER TABLE aimm_store_model_meta ADD COLUMN origin TEXT');
  }
  const historyColumns = db.prepare('PRAGMA table_info(aimm_store_history)').all() as {
    name: string;
  }[];
  if (!historyColumns.some((c) => c.name === 'content_type')) {
    db.exec('ALTER TABLE aimm_store_history ADD COLUMN content_type TEXT');
  }
  const row = db.prepare(`SELECT value FROM aimm_store_info WHERE key = 'schema_version'`).get() as
    | { value: string }
    | undefined;
  const version = row === undefined ? undefined : Number(row.value);
  if (version !== undefined && !(version <= SCHEMA_VERSION)) {
    throw new BackendError(
      'invalid',
      `sqlite file '${path}' has aimm-store format version ${row?.value}, newer than this ` +
        `aimm-store understands (${SCHEMA_VERSION}); refusing to open it`,
    );
  }
  db.prepare(
    `INSERT OR REPLACE INTO aimm_store_info (key, value) VALUES ('schema_version', ?)`,
  ).run(String(SCHEMA_VERSION));
  if (historyKeep === null) db.exec(`DELETE FROM aimm_store_info WHERE key = 'history_keep'`);
  else {
    db.prepare(
      `INSERT OR REPLACE INTO aimm_store_info (key, value) VALUES ('history_keep', ?)`,
    ).run(String(historyKeep));
    // A smaller retention than the file had applies at once.
    db.prepare(
      `DELETE FROM aimm_store_history
        WHERE revision <= (SELECT m.revision FROM aimm_store_model_meta m
                            WHERE m.id = aimm_store_history.id) - ? - 1`,
    ).run(historyKeep);
  }
  // Reconciling first: its fixes are not history (they replace nothing the triggers saw).
  for (const name of TRIGGER_NAMES) db.exec(`DROP TRIGGER IF EXISTS ${name}`);
  const report = reconcile(db);
  for (const ddl of TRIGGERS) db.exec(ddl);
  return report;
}

function reconcile(db: Database): ReconcileReport {
  const size = sizeOf('m.instance');
  const adopted = db
    .prepare(
      `INSERT INTO aimm_store_model_meta (id, type, revision, size, sha256, updated, deleted)
       SELECT m.id, m.type, 1, ${size}, NULL, ${NOW}, 0 FROM models m
        WHERE NOT EXISTS (SELECT 1 FROM aimm_store_model_meta s WHERE s.id = m.id)`,
    )
    .run().changes;
  let repaired = 0;
  // An id re-inserted (explicitly) over a tombstone.
  repaired += db
    .prepare(
      `UPDATE aimm_store_model_meta
          SET deleted = 0, revision = revision + 1, sha256 = NULL, updated = ${NOW},
              type = (SELECT m.type FROM models m WHERE m.id = aimm_store_model_meta.id),
              size = (SELECT ${size} FROM models m WHERE m.id = aimm_store_model_meta.id)
        WHERE deleted = 1 AND id IN (SELECT id FROM models)`,
    )
    .run().changes;
  // Rows deleted from models.
  repaired += db
    .prepare(
      `UPDATE aimm_store_model_meta SET ${TOMBSTONE}
        WHERE deleted = 0 AND id NOT IN (SELECT id FROM models)`,
    )
    .run().changes;
  // Types changed in models.
  repaired += db
    .prepare(
      `UPDATE aimm_store_model_meta
          SET revision = revision + 1, sha256 = NULL, updated = ${NOW},
              type = (SELECT m.type FROM models m WHERE m.id = aimm_store_model_meta.id),
              size = (SELECT ${size} FROM models m WHERE m.id = aimm_store_model_meta.id)
        WHERE deleted = 0
          AND type IS NOT (SELECT m.type FROM models m WHERE m.id = aimm_store_model_meta.id)`,
    )
    .run().changes;
  return { adopted, repaired };
}
