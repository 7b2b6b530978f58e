/**
 * The sqlite backend's configuration: the `backend` section validated against
 * `aimm://server/backend/sqlite.yaml#` and turned into options with their defaults.
 */
import { join, resolve } from 'node:path';
import { BackendError } from '../../backend/types.js';
import { SCHEMAS_DIR, SchemaRegistry } from '../../common/schema.js';

export const SQLITE_SCHEMA_ID = 'aimm://server/backend/sqlite.yaml#';

export type SynchronousLevel = 'full' | 'normal' | 'extra';

export interface SqliteOptions {
  /** Absolute path of the SQLite file. */
  path: string;
  synchronous: SynchronousLevel;
  /** Page size of a file created here; an existing file keeps its own. */
  pageSize: number;
  busyTimeoutMs: number;
  maxInstanceBytes: number;
  groupCommit: { maxWrites: number; maxBytes: number };
  /** Backpressure: writes (and their bytes) queued for a transaction before writers wait. */
  maxQueuedWrites: number;
  maxQueuedBytes: number;
  /**
   * `auto`: large models go through SQLite blob handles when the install built the extension;
   * `off`: never (whole values through better-sqlite3, one more copy per upload).
   */
  blobIo: 'auto' | 'off';
  /** Earlier revisions kept per model (null: all) and for how long (null: forever). */
  history: { keep: number | null; keepDays: number | null };
}

export const DEFAULTS = {
  synchronous: 'full' as SynchronousLevel,
  /**
   * SQLite's own default (and AIMM's): larger pages measured no faster through HTTP and raised a
   * 64 MiB upload's peak RSS (docs/performance.md, "Page size and huge pages").
   */
  pageSize: 4096,
  busyTimeoutMs: 5000,
  /** SQLite's own default limit on a blob (SQLITE_MAX_LENGTH). */
  maxInstanceBytes: 1_000_000_000,
  maxWrites: 256,
  maxBytes: 16 * 1024 * 1024,
  maxQueuedWrites: 4096,
  maxQueuedBytes: 64 * 1024 * 1024,
  historyKeep: 10,
};

let registry: SchemaRegistry | undefined;

/**
 * Validates `conf` (throws `BackendError('invalid')` naming every issue) and applies defaults.
 * Only this backend's schema is loaded for it, not every schema of the package.
 */
export function parseSqliteConf(conf: unknown): SqliteOptions {
  if (registry === undefined) {
    registry = new SchemaRegistry([]);
    registry.addFile(join(SCHEMAS_DIR, 'backend', 'sqlite.yaml'));
  }
  const issues = registry.validate(SQLITE_SCHEMA_ID, conf, '$.backend');
  if (issues.length > 0) {
    const text = issues.map((i) => `${i.path}: ${i.message} (rule: ${i.rule})`).join('; ');
    throw new BackendError('invalid', `invalid sqlite backend configuration: ${text}`);
  }
  const c = conf as {
    path: string;
    synchronous?: SynchronousLevel;
    page_size?: number;
    busy_timeout_ms?: number;
    max_instance_bytes?: number;
    group_commit?: { max_writes?: number; max_bytes?: number };
    max_queued_writes?: number;
    max_queued_bytes?: number;
    history?: { keep?: number | 'all'; keep_days?: number };
    blob_io?: 'auto' | 'off';
  };
  const keep = c.history?.keep ?? DEFAULTS.historyKeep;
  return {
    path: resolve(c.path),
    synchronous: c.synchronous ?? DEFAULTS.synchronous,
    pageSize: c.page_size ?? DEFAULTS.pageSize,
    busyTimeoutMs: c.busy_timeout_ms ?? DEFAULTS.busyTimeoutMs,
    maxInstanceBytes: c.max_instance_bytes ?? DEFAULTS.maxInstanceBytes,
    groupCommit: {
      maxWrites: c.group_commit?.max_writes ?? DEFAULTS.maxWrites,
      maxBytes: c.group_commit?.max_bytes ?? DEFAULTS.maxBytes,
    },
    maxQueuedWrites: c.max_queued_writes ?? DEFAULTS.maxQueuedWrites,
    maxQueuedBytes: c.max_queued_bytes ?? DEFAULTS.maxQueuedBytes,
    history: { keep: keep === 'all' ? null : keep, keepDays: c.history?.keep_days ?? null },
    blobIo: c.blob_io ?? 'auto',
  };
}
