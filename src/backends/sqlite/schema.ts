/**
 * The file format. AIMM's `models` table stays exactly as AIMM creates it; what AIMM lacks lives
 * beside it in `aimm_store_model_meta` (one row per id ever used: type, revision, size, sha256,
 * updated, deleted), kept up to date by triggers on `models`. The triggers live in the file and use
 * only SQL that every SQLite since 3.8 knows, so they also fire when AIMM itself (Python's sqlite3)
 * writes the file while aimm-store is not running: revisions stay honest. They leave `sha256` NULL;
 * aimm-store fills it in (for its own writes in the same transaction, for anyone else's at open).
 */
import type { Database } from 'better-sqlite3';
import { BackendError } from '../../backend/types.js';

export const SCHEMA_VERSION = 1;

/** AIMM's table, byte for byte as AIMM's sqlite backend creates it. */
export const MODELS_DDL = `CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    instance BLOB
)`;

const NOW = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;
const SIZE_OF_NEW = 'COALESCE(length(CAST(NEW.instance AS BLOB)), 0)';

/** Sets the meta row of NEW.id to a live model with the next revision (1 if the id is new). */
const UPSERT_NEW = `
  UPDATE aimm_store_model_meta
     SET type = NEW.type, revision = revision + 1, size = ${SIZE_OF_NEW}, sha256 = NULL,
         updated = ${NOW}, deleted = 0
   WHERE id = NEW.id;
  INSERT INTO aimm_store_model_meta (id, type, revision, size, sha256, updated, deleted)
  SELECT NEW.id, NEW.type, 1, ${SIZE_OF_NEW}, NULL, ${NOW}, 0
   WHERE NOT EXISTS (SELECT 1 FROM aimm_store_model_meta WHERE id = NEW.id);`;

const TOMBSTONE = `revision = revision + 1, size = 0, sha256 = NULL, updated = ${NOW}, deleted = 1`;

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
    deleted INTEGER NOT NULL DEFAULT 0
)`,
  `CREATE TRIGGER IF NOT EXISTS aimm_store_models_insert AFTER INSERT ON models
BEGIN${UPSERT_NEW}
END`,
  `CREATE TRIGGER IF NOT EXISTS aimm_store_models_update AFTER UPDATE OF id, type, instance ON models
BEGIN
  UPDATE aimm_store_model_meta SET ${TOMBSTONE} WHERE id = OLD.id AND OLD.id <> NEW.id;${UPSERT_NEW}
END`,
  `CREATE TRIGGER IF NOT EXISTS aimm_store_models_delete AFTER DELETE ON models
BEGIN
  UPDATE aimm_store_model_meta SET ${TOMBSTONE} WHERE id = OLD.id;
END`,
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
export function installSchema(db: Database, path: string): ReconcileReport {
  db.exec(MODELS_DDL);
  for (const ddl of SIDE_DDL) db.exec(ddl);
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
  if (version === undefined) {
    db.prepare(`INSERT INTO aimm_store_info (key, value) VALUES ('schema_version', ?)`).run(
      String(SCHEMA_VERSION),
    );
  }
  return reconcile(db);
}

function reconcile(db: Database): ReconcileReport {
  const size = 'COALESCE(length(CAST(m.instance AS BLOB)), 0)';
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
