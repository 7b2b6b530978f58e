/**
 * The built-in sqlite backend, `aimm-store/backends/sqlite` (design §4): every model in one SQLite
 * file that AIMM's own sqlite backend can also open. Config (seed schema, extras optional):
 *
 * ```yaml
 * backend:
 *   module: aimm-store/backends/sqlite
 *   path: ./data/models.db        # required
 *   synchronous: full             # full (default) | normal | extra
 *   busy_timeout_ms: 5000
 *   max_instance_bytes: 1000000000
 *   group_commit: { max_writes: 256, max_bytes: 16777216 }
 * ```
 */
import { pino } from 'pino';
import type { BackendConf, BackendContext } from '../backend/types.js';
import { MetricsRegistry } from '../common/metrics.js';
import { SqliteBackend } from './sqlite/backend.js';
import { parseSqliteConf, SQLITE_SCHEMA_ID } from './sqlite/conf.js';

export { SqliteBackend } from './sqlite/backend.js';
export { DEFAULTS, type SqliteOptions, type SynchronousLevel } from './sqlite/conf.js';

/** The schema the loader validates this backend's config with. */
export const confSchema = SQLITE_SCHEMA_ID;

/** The backend module factory: validates `conf` and opens the file. */
export async function create(conf: BackendConf, context: BackendContext): Promise<SqliteBackend> {
  return SqliteBackend.open(parseSqliteConf(conf), context);
}

/** The sqlite backend config without `module` (for library use). */
export interface SqliteBackendConf {
  path: string;
  synchronous?: 'full' | 'normal' | 'extra';
  /** Page size of a file created here (a power of two, 512–65536; default 4096). */
  page_size?: number;
  busy_timeout_ms?: number;
  max_instance_bytes?: number;
  group_commit?: { max_writes?: number; max_bytes?: number };
}

/**
 * Opens a sqlite backend outside the daemon: `await openSqliteBackend({ path: 'models.db' })`.
 * Missing context parts get defaults (a silent logger, a private metrics registry).
 */
export async function openSqliteBackend(
  conf: SqliteBackendConf,
  context: Partial<BackendContext> = {},
): Promise<SqliteBackend> {
  return create(
    { module: 'aimm-store/backends/sqlite', ...conf },
    {
      name: context.name ?? 'aimm-store',
      logger: context.logger ?? pino({ level: 'silent' }),
      metrics: context.metrics ?? new MetricsRegistry(),
      hat: context.hat ?? null,
    },
  );
}
