/**
 * `aimm-store --version` / `aimm-store version`: the package's version and what it runs on (Node,
 * better-sqlite3 and the SQLite library compiled into it, whether the install built aimm-store's
 * SQLite extension for large models), one `name version` line each. The
 * native addon is loaded only here, never for `--help`: a client-only install without it still
 * prints the rest, with the reason it could not be loaded.
 */
import { createRequire } from 'node:module';
import { blobIoExtension } from '../common/sqlite-blob-io.js';
import { packageVersion } from '../common/version.js';

const require = createRequire(import.meta.url);

interface SqliteDatabase {
  prepare(sql: string): { get(): unknown };
  close(): void;
}

/** better-sqlite3's version and its SQLite's, or why they cannot be told. */
export function sqliteVersions(): { betterSqlite3: string; sqlite: string } {
  let betterSqlite3 = 'not installed';
  try {
    const pkg = require('better-sqlite3/package.json') as { version?: unknown };
    betterSqlite3 = typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return { betterSqlite3, sqlite: 'unknown (no better-sqlite3)' };
  }
  try {
    const Database = require('better-sqlite3') as new (file: string) => SqliteDatabase;
    const db = new Database(':memory:');
    try {
      const row = db.prepare('SELECT sqlite_version() AS v').get() as { v?: unknown } | undefined;
      return { betterSqlite3, sqlite: String(row?.v ?? 'unknown') };
    } finally {
      db.close();
    }
  } catch (err) {
    const reason = ((err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '')
      .replace(/[\s.]*Tried:$/, '')
      .trim();
    return { betterSqlite3, sqlite: `unknown (better-sqlite3 cannot be loaded: ${reason})` };
  }
}

export function versionText(): string {
  const { betterSqlite3, sqlite } = sqliteVersions();
  return [
    `aimm-store ${packageVersion()}`,
    `node ${process.versions.node}`,
    `better-sqlite3 ${betterSqlite3}`,
    `sqlite ${sqlite}`,
    `sqlite-blob-io ${blobIoExtension() === undefined ? 'not built (npm install builds it; large models take more memory)' : 'built'}`,
    '',
  ].join('\n');
}
